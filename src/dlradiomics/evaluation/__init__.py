"""Evaluation: patient-grouped outer folds, nested cross-validation, metrics with bootstrap CIs,
DeLong tests, ROC / calibration / decision curves, the experiment grid and the leakage canary.

Every number reported here comes from out-of-fold predictions of patients whose data never
informed a fitted step, and every operating threshold is chosen on training patients only.
"""

from dlradiomics.evaluation.canary import (
    CanaryResult,
    permute_patient_labels,
    permute_table_labels,
    run_canary,
    run_grid_canary,
)
from dlradiomics.evaluation.configurations import (
    CONFIG_COLUMNS,
    GridConfiguration,
    default_modality_sets,
    grid_configurations,
)
from dlradiomics.evaluation.crossval import PREDICTION_COLUMNS, cross_validate_patients
from dlradiomics.evaluation.curves import calibration_table, decision_curve, roc_table
from dlradiomics.evaluation.grid import run_grid
from dlradiomics.evaluation.grid_result import CHOICE_SCORES, SELECTION_RULE, GridResult
from dlradiomics.evaluation.metrics import (
    METRIC_NAMES,
    bootstrap_metrics,
    classification_metrics,
    format_estimate,
    summarise_predictions,
)
from dlradiomics.evaluation.reference import (
    ClinicalComparison,
    McNemarResult,
    ReferenceComparison,
    compare_grid_with_reference,
    compare_with_reference,
    mcnemar_test,
    model_roles,
)
from dlradiomics.evaluation.site_validation import SiteValidation, per_site_metrics, reference_predictions
from dlradiomics.evaluation.splits import (
    PatientHoldout,
    RepeatedPatientKFold,
    fold_table_from_column,
    fold_table_from_groups,
    iter_outer_folds,
    load_fold_table,
)
from dlradiomics.evaluation.stats import (
    AucComparison,
    delong_auc_ci,
    delong_covariance,
    delong_test,
    paired_bootstrap_auc_test,
)
from dlradiomics.evaluation.threshold import choose_threshold, threshold_for_sensitivity, youden_threshold

__all__ = [
    "CHOICE_SCORES",
    "CONFIG_COLUMNS",
    "METRIC_NAMES",
    "PREDICTION_COLUMNS",
    "SELECTION_RULE",
    "AucComparison",
    "CanaryResult",
    "ClinicalComparison",
    "GridConfiguration",
    "GridResult",
    "McNemarResult",
    "PatientHoldout",
    "ReferenceComparison",
    "RepeatedPatientKFold",
    "SiteValidation",
    "bootstrap_metrics",
    "calibration_table",
    "choose_threshold",
    "classification_metrics",
    "compare_grid_with_reference",
    "compare_with_reference",
    "cross_validate_patients",
    "decision_curve",
    "default_modality_sets",
    "delong_auc_ci",
    "delong_covariance",
    "delong_test",
    "fold_table_from_column",
    "fold_table_from_groups",
    "format_estimate",
    "grid_configurations",
    "iter_outer_folds",
    "load_fold_table",
    "mcnemar_test",
    "model_roles",
    "paired_bootstrap_auc_test",
    "per_site_metrics",
    "reference_predictions",
    "permute_patient_labels",
    "permute_table_labels",
    "roc_table",
    "run_canary",
    "run_grid",
    "run_grid_canary",
    "summarise_predictions",
    "threshold_for_sensitivity",
    "youden_threshold",
]
