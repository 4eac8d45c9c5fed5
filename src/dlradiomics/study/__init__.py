"""Studies: one YAML file (`settings`) run into a run folder with report and model bundle (`study.Study`).

Modules: `settings` (typed study settings), `study` (`Study`, the entry point), `run` (`run_study`
calls the stages in order; `StudyResult`), `stages` (the stages), `stage_timer` (wall time and
console headings of each stage), `result_cache` (grid results cached in the store), `features`
(feature tables via the store), `prediction` (a manifest of new patients to tables and a bundle's
predictions), `intensity` (intensity profiles of images), `explain` (Grad-CAM heads and overlays),
`run_folder` (the run folder and its provenance).
"""
