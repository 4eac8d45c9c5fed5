"""Studies: one YAML file (`settings`) run into a run folder with report and model bundle (`runner`).

Modules: `settings` (typed study settings), `runner` (`Study`, `StudyResult`), `pipeline` (the
stages), `features` (feature tables via the store), `prediction` (a manifest of new patients to
tables and a bundle's predictions), `intensity` (intensity profiles of images), `explain` (Grad-CAM
heads and overlays), `run_folder` (provenance).
"""
