"""Column names that tables share across the package's floors.

A leaf: it imports nothing of the package, so every floor (io, cohort, features, models, study,
the bundle) may import it without climbing (see docs/architecture.md). The names are lists
because pandas selects columns by list; treat them as read-only.
"""

from __future__ import annotations

# Every image-level feature table (radiomic or deep) starts with these, one row per roi_id.
META_COLUMNS = ["roi_id", "patient_id", "modality", "image", "mask", "label"]

# Every table of ROIs whose features could not be computed: which ROI, where it failed, and why.
FAILURE_COLUMNS = ["roi_id", "patient_id", "image", "mask", "stage", "error"]
