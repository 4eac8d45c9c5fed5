"""Studies: one YAML file (`settings`) run into a run folder with report and model bundle (`runner`).

Modules: `settings` (typed study settings), `runner` (`Study`, `StudyResult`), `pipeline` (the
stages), `features` (feature tables via the store), `prediction` (bundles on new patients),
`explain` (Grad-CAM heads and overlays), `run_folder` (provenance).
"""
