"""Typed settings of a study, read from one YAML file.

Every key of the study file maps onto a field here. Validation errors are re-raised as
`StudySettingsError`, whose message names the key, the bad value and what is allowed, because a
researcher editing YAML needs to know which line to fix.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from sklearn.base import BaseEstimator, is_classifier

from dlradiomics.cohort.modalities import checked_modality
from dlradiomics.cohort.views import checked_view
from dlradiomics.cohort.patient_values import PerPatientRule
from dlradiomics.features.defaults import BACKBONES, DEFAULT_BACKBONE
from dlradiomics.features.radiomic import FAMILIES_SECTION, create_extractor, load_radiomics_params
from dlradiomics.io.atomic import write_text_atomic
from dlradiomics.io.safe_yaml import YamlInputError, load_yaml_file
from dlradiomics.schema import META_COLUMNS

# A free name (US, MG and MRI are the conventions; MRI_T2, DCE, DBT work alike), in the canonical
# spelling the cohort uses, so " us " in a study file matches "US" in a manifest.
Modality = Annotated[str, AfterValidator(checked_modality)]
# A view (CC, MLO ...): free text, canonical upper case, matched case-insensitively to the manifest.
ViewName = Annotated[str, AfterValidator(checked_view)]
ClassifierName = Literal[
    "svm", "knn", "rf", "extra_trees", "xgboost", "lightgbm", "logistic"
]
FeatureSource = Literal["radiomic", "deep", "dlr", "clinical", "radiomic+clinical"]
CLINICAL_SOURCES = ("clinical", "radiomic+clinical")
FusionStrategy = Literal["single", "early", "ensemble", "stacking"]
DLRCompositionName = Literal["paper", "whole_table"]
ThresholdRule = Literal["youden", "sensitivity"]
EvaluationProtocol = Literal["nested", "paper"]

STUDY_FILE_MAX_BYTES = 1024 * 1024
ALL_CLASSIFIERS: tuple[str, ...] = (
    "svm", "knn", "rf", "extra_trees", "xgboost", "lightgbm", "logistic"
)


class StudySettingsError(ValueError):
    """A study file that cannot be used; the message names the key, the value and what is allowed."""


class _Section(BaseModel):
    # A misspelt key must be an error, not silently ignored: it would run a different study.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CohortSettings(_Section):
    """Where the patients are.

    Args:
        manifest: CSV or YAML manifest (see `dlradiomics.cohort.read_manifest`); relative paths are
            resolved against the study file's folder.
        modalities: modalities to use; manifest rows of other modalities are left out.
        views: per modality, the views used (the manifest's `view` column, matched
            case-insensitively), e.g. `{MG: [CC]}` as the paper used craniocaudal mammograms only;
            rows of other views (or none) are left out and listed. Modalities not named keep all.
    """

    manifest: Path
    modalities: list[Modality] = Field(default_factory=lambda: ["US"], min_length=1)
    views: dict[Modality, list[ViewName]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _views_of_study_modalities(self) -> CohortSettings:
        for modality, views in self.views.items():
            if modality not in self.modalities:
                raise ValueError(f"views names {modality}, which is not among cohort.modalities "
                                 f"({', '.join(self.modalities)})")
            if not views:
                raise ValueError(f"views.{modality} is empty; list the views to use, or leave {modality} out")
        return self

    @field_validator("modalities")
    @classmethod
    def _each_once(cls, modalities: list[str]) -> list[str]:
        repeated = sorted({name for name in modalities if modalities.count(name) > 1})
        if repeated:
            raise ValueError(f"modality {repeated[0]} is listed more than once (names match case-insensitively)")
        return modalities


class QaSettings(_Section):
    """What data QA may let through.

    Args:
        allow_duplicates: run even when the same image (or a near-identical one) appears under
            two patients; the report then lists every pair. By default such a cohort stops the
            study: a duplicate on both sides of a fold split inflates every AUC.
        near_duplicate_distance: the largest perceptual-hash distance (of 64 bits) at which two
            images count as near-duplicates.
    """

    allow_duplicates: bool = False
    near_duplicate_distance: int = Field(4, ge=0, le=64)


class PeritumoralSettings(_Section):
    """The peritumoral ring: a band around the lesion, clipped to the image (features ``peri_...``).

    Args:
        width_px: the band's width in pixels, for images without a physical spacing (PNG, JPEG).
        width_mm: the band's width in millimetres, for images with one (DICOM, NIfTI); None uses
            ``width_px`` for those too.
    """

    width_px: float = Field(12.0, gt=0)
    width_mm: float | None = Field(None, gt=0)


class LoGSettings(_Section):
    """2D Laplacian of Gaussian images.

    Args:
        sigmas: Gaussian widths, in millimetres where the spacing is known, else pixels.
        bin_width: PyRadiomics' bin width for these images; None uses the original image's.
    """

    sigmas: list[float] = Field(default_factory=lambda: [1.0, 2.0, 4.0], min_length=1)
    bin_width: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _positive(self) -> LoGSettings:
        if any(sigma <= 0 for sigma in self.sigmas):
            raise ValueError(f"every sigma must be positive, got {self.sigmas}")
        return self


class WaveletSettings(_Section):
    """The four 2D stationary wavelet sub-bands (LL, LH, HL, HH) of one level.

    Args:
        name: a PyWavelets discrete wavelet (coif1 is PyRadiomics' default).
        bin_width: PyRadiomics' bin width for the sub-bands; None uses the original image's.
    """

    name: str = "coif1"
    bin_width: float | None = Field(None, gt=0)


Normalisation = Literal["none", "roi_zscore", "image_percentile"]


class RadiomicsSettings(_Section):
    """PyRadiomics settings and the feature families computed around it (see docs/ibsi.md).

    Args:
        params: a PyRadiomics parameter file; None uses the package's 2D defaults.
        overrides: settings merged over the file's, e.g. `{"setting": {"binWidth": 10}}`.
        peritumoral: features of a ring around the lesion; None (default) leaves them out.
        log: features of 2D Laplacian of Gaussian images; None leaves them out.
        wavelet: features of the 2D wavelet sub-bands; None leaves them out.
        normalisation: per modality, a per-image intensity normalisation before every family
            ("none", "roi_zscore", "image_percentile"); none of them learns from other images.
        dimension: "2D" (default: the slice with the largest lesion area) or "3D" (the whole
            lesion volume, PyRadiomics' 3D shape and texture), for every modality or per modality
            (`{MRI: 3D}`); a 3D modality needs volumes. Deep features always use the largest slice.
    """

    params: Path | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    peritumoral: PeritumoralSettings | None = None
    log: LoGSettings | None = None
    wavelet: WaveletSettings | None = None
    normalisation: dict[Modality, Normalisation] = Field(default_factory=dict)
    dimension: str | dict[Modality, str] = "2D"

    @field_validator("dimension", mode="before")
    @classmethod
    def _dimension(cls, value: Any) -> Any:
        # "3d" and "3D" alike, as a single value or per modality.
        values = value.values() if isinstance(value, dict) else [value]
        if not values or any(not isinstance(v, str) or v.strip().upper() not in ("2D", "3D") for v in values):
            raise ValueError(f"dimension must be 2D or 3D, or a mapping modality -> 2D/3D (e.g. {{MRI: 3D}}); "
                             f"got {value!r}")
        if isinstance(value, dict):
            return {modality: dim.strip().upper() for modality, dim in value.items()}
        return value.strip().upper()

    def families_section(self) -> dict[str, Any]:
        """The families as the `dlradiomics` section of a parameter mapping (empty when none is on)."""
        section: dict[str, Any] = {}
        for name in ("peritumoral", "log", "wavelet"):
            family = getattr(self, name)
            if family is not None:
                section[name] = family.model_dump()
        if self.normalisation:
            section["normalisation"] = dict(self.normalisation)
        if self.dimension != "2D":
            section["dimension"] = dict(self.dimension) if isinstance(self.dimension, dict) else self.dimension
        return section

    def parameter_mapping(self) -> dict[str, Any]:
        """The complete parameter mapping: the file (or the package's defaults), the overrides, the families.

        The families go into the mapping's `dlradiomics` section, so the run's radiomics_params.yaml,
        the provenance and the bundle describe every radiomic feature.

        Raises:
            OSError: the parameter file cannot be read.
            ValueError: the file is not a YAML mapping, or an override names an unknown section.
        """
        params = dict(load_radiomics_params(self.params, overrides=self.overrides or None))
        families = self.families_section()
        if families:
            params[FAMILIES_SECTION] = {**params.get(FAMILIES_SECTION, {}), **families}
        return params


class DeepSettings(_Section):
    """The ImageNet backbone whose frozen embeddings are the deep features.

    Args:
        backbone: backbone name known to `dlradiomics.features.deep.create_backbone`.
        weights: weights identifier (e.g. "imagenet") or a path to a state dict.
        pca_components: PCA dimensions per modality, fitted inside training folds.
        weights_dir: the folder of torchvision's ImageNet files and their recorded SHA-256
            (`dlradiomics weights download NAME...` fills it); None: $DLRADIOMICS_WEIGHTS, else
            ~/.cache/dlradiomics/weights. Relative to the study file.
    """

    backbone: str = DEFAULT_BACKBONE
    weights: str = "imagenet"
    pca_components: int = Field(32, ge=1)
    weights_dir: Path | None = None


class CnnTrainingSettings(_Section):
    """How the CNN baselines train inside each outer fold (`dlradiomics.features.deep.CnnClassifier`).

    Each network trains on the fold's training patients only, stops early on a patient-grouped
    fifth of them, and scores the fold's test patients with its own head.

    Args:
        trainable: "last_blocks" (the last `n_last_blocks` blocks and a new head; the frozen front
            runs once per image, ever), "all" (end to end: every epoch runs the whole network, a
            GPU's job) or "head" (the paper's frozen network with a new head).
        n_last_blocks: blocks trained with "last_blocks".
        image_size: network input side; None: the backbone's own (224, Inception-v3 299).
        epochs: most epochs.
        patience: epochs without a lower validation loss before stopping.
        batch_size: images per step.
        learning_rate: AdamW step size of the trained blocks (the head's is 10 times larger).
        threshold_source: "inner_oof" (the threshold from inner out-of-fold predictions, as for
            every other model: inner_folds more trainings per fold) or "train" (from the network's
            own training predictions: cheaper, optimistic).
    """

    trainable: Literal["last_blocks", "all", "head"] = "last_blocks"
    n_last_blocks: int = Field(1, ge=1)
    image_size: int | None = Field(None, ge=32)
    epochs: int = Field(15, ge=1)
    patience: int = Field(3, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    threshold_source: Literal["inner_oof", "train"] = "inner_oof"

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments of `CnnClassifier` (the threshold source is the cross-validation's)."""
        params = self.model_dump(exclude={"threshold_source"})
        params["head_learning_rate"] = 10 * self.learning_rate
        return params


class OwnClassifierSettings(_Section):
    """A scikit-learn classifier of your own, run in the grid beside the seven registered ones.

    Its class is imported and checked when the study file loads. Like a classifier object given to
    `dlradiomics.models.make_pipeline`, it gets standardised features (harmless for trees, needed
    by distance- and penalty-based models); when it takes a `random_state` that `params` leaves
    out, it gets the study's seed, so runs repeat.

    Args:
        name: the name results, tables and the bundle show it under (letters, digits, `_`, `-`).
        estimator: the import path of its class, e.g. `sklearn.ensemble.HistGradientBoostingClassifier`.
        params: keyword arguments of its constructor.
    """

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _importable_classifier(self) -> OwnClassifierSettings:
        if self.name in ALL_CLASSIFIERS:
            raise ValueError(f"name {self.name!r} is a registered classifier's; give your own classifier another")
        self.build(random_state=None)
        return self

    def build(self, random_state: int | None) -> BaseEstimator:
        """An unfitted instance, seeded with ``random_state`` unless `params` sets its own.

        Raises:
            ValueError: the class cannot be imported, does not take `params`, or is not a
                scikit-learn classifier with `predict_proba`.
        """
        module_name, _, class_name = self.estimator.rpartition(".")
        if not module_name:
            raise ValueError(f"estimator {self.estimator!r} is not an import path such as "
                             "'sklearn.ensemble.HistGradientBoostingClassifier'")
        try:
            estimator_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"estimator {self.estimator!r} cannot be imported: {error}") from None
        try:
            estimator = estimator_class(**self.params)
        except TypeError as error:
            raise ValueError(f"estimator {self.estimator!r} does not take params {self.params}: {error}") from None
        if not (isinstance(estimator, BaseEstimator) and is_classifier(estimator) and hasattr(estimator, "predict_proba")):
            raise ValueError(f"estimator {self.estimator!r} is not a scikit-learn classifier with predict_proba "
                             "(sklearn.base.is_classifier)")
        if random_state is not None and "random_state" in estimator.get_params() and "random_state" not in self.params:
            estimator.set_params(random_state=random_state)
        return estimator


def _classifier_entry_kind(value: Any) -> str:
    return _OWN_CLASSIFIER if isinstance(value, (dict, OwnClassifierSettings)) else _REGISTERED_CLASSIFIER


# Tags of the two kinds of `classifiers` entry; they appear in pydantic's error locations, and
# error messages leave them out so that a location is the key path of the study file.
_REGISTERED_CLASSIFIER = "registered classifier"
_OWN_CLASSIFIER = "own classifier"
ClassifierEntry = Annotated[
    Annotated[ClassifierName, Tag(_REGISTERED_CLASSIFIER)] | Annotated[OwnClassifierSettings, Tag(_OWN_CLASSIFIER)],
    Discriminator(_classifier_entry_kind),
]


class DLRSettings(_Section):
    """How DLR fusion compresses radiomic and deep features, inside each training fold.

    Args:
        composition: "paper" (Lu et al. 2024: each modality's deep block to
            `deep.pca_components`, then a deep part of `deep_components` and a radiomic part of
            `radiomic_components`, fused by the configuration's strategy) or "whole_table" (one
            PCA of `whole_table_components` over all blocks for early fusion, one per modality
            for late fusion).
        deep_components: components of the deep part (paper: 51).
        radiomic_components: components of the radiomic part (paper: 57).
        whole_table_components: components of the "whole_table" composition (paper's total: 108).

    Every count is a ceiling: a training fold with fewer patients keeps fewer components.
    """

    composition: DLRCompositionName = "paper"
    deep_components: int = Field(51, ge=1)
    radiomic_components: int = Field(57, ge=1)
    whole_table_components: int = Field(108, ge=1)


class SelectionSettings(_Section):
    """Feature selection, fitted inside each training fold.

    Args:
        mann_whitney_p: keep features whose Mann-Whitney U p-value is below this.
        correlation_threshold: drop one of each pair with |Spearman rho| above this.
        lasso: finish with LASSO (L1 logistic regression, C by inner CV).
    """

    mann_whitney_p: float = Field(0.05, gt=0, le=1)
    correlation_threshold: float = Field(0.9, gt=0, le=1)
    lasso: bool = True


# A clinical variable's name becomes part of model column names ("clinical__birads=4").
ClinicalName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]


class ClinicalSettings(_Section):
    """Manifest columns used as clinical variables: one feature block, fitted inside the folds like any other.

    Each variable holds one value per patient (see `per_patient`). Missing values are imputed
    inside each training fold (median, or most frequent category) with a missing-value indicator;
    categorical variables are one-hot encoded inside each training fold. The feature sources
    `clinical` (the variables alone) and `radiomic+clinical` use them.

    Args:
        columns: the manifest columns, e.g. `[birads, age]`.
        categorical: those of `columns` that are categories (one-hot), e.g. `[birads]`; the rest
            are numbers (BI-RADS listed here is categorical, left out it is ordinal).
        per_patient: how to combine a column's values when a patient's images differ: `same`
            (the default: they must agree, or the study stops naming the patient), `max`, `min`,
            `mean` (numbers) or `first`. E.g. `{birads: max}`: the most suspicious lesion.
    """

    columns: list[ClinicalName] = Field(min_length=1)
    categorical: list[ClinicalName] = Field(default_factory=list)
    per_patient: dict[str, PerPatientRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_columns(self) -> ClinicalSettings:
        repeated = sorted({name for name in self.columns if self.columns.count(name) > 1})
        if repeated:
            raise ValueError(f"columns: {repeated} listed more than once")
        if any("__" in name for name in self.columns):
            raise ValueError("a clinical column name may not hold '__' (it separates block and feature)")
        strangers = [name for name in self.categorical if name not in self.columns]
        if strangers:
            raise ValueError(f"categorical names {strangers}, which are not among columns {self.columns}")
        strangers = [name for name in self.per_patient if name not in self.columns]
        if strangers:
            raise ValueError(f"per_patient names {strangers}, which are not among columns {self.columns}")
        reserved = [name for name in self.columns if name in META_COLUMNS]
        if reserved:
            raise ValueError(f"{reserved} are manifest columns every row has, not clinical variables")
        return self

    def rule_for(self, column: str) -> str:
        """The per-patient rule of a column (`same` unless declared)."""
        return self.per_patient.get(column, "same")


class ReferenceSettings(_Section):
    """A clinical reference operating point the model is compared with on the same patients.

    Args:
        column: the manifest column holding the reference score of each patient, e.g. `birads`.
        positive_at: the score at and above which the reference calls a patient malignant
            (`4`: BI-RADS >= 4, biopsy).
        name: how tables name it; default "`column` >= `positive_at`".
        per_patient: how a patient's differing values combine (`same`, `max`, `min`, `mean`,
            `first`); default the clinical variable's rule for the same column, else `same`.
    """

    column: str = Field(min_length=1)
    positive_at: float
    name: str | None = None
    per_patient: PerPatientRule | None = None

    def label(self) -> str:
        """The reference's name in tables."""
        return self.name or f"{self.column} >= {self.positive_at:g}"


class ChoiceSettings(_Section):
    """How the model reported as chosen (and saved as the bundle) is picked, on training folds only.

    Two questions, one section: which configurations may compete (`require_full_coverage`), then
    which of them wins (`by`). Study files of earlier versions asked the first in a section of its
    own, `model_choice: {require_full_coverage: ...}`; it is still read, with a warning saying to
    write it here.

    Args:
        by: `auc` (the highest mean inner-CV AUC) or `specificity_at_sensitivity` (the highest mean
            inner-CV specificity at the target sensitivity of `threshold: {rule: sensitivity}`,
            ties broken by inner-CV AUC): the model that spares the most benign patients at the
            sensitivity the clinic works at.
        require_full_coverage: only configurations that score every patient of the study may be
            chosen (default). Early fusion scores only the patients having every modality of its
            set, and a single-modality model only the patients imaged in it: such a model can win
            on inner AUC measured on a third of the cohort and then cannot be used for the rest.
            False lets every completed configuration compete; the nested estimate is then
            computed over the patients every configuration scores.
    """

    by: Literal["auc", "specificity_at_sensitivity"] = "auc"
    require_full_coverage: bool = True


class CVSettings(_Section):
    """Nested, stratified, patient-grouped cross-validation.

    Args:
        outer_folds: folds of the outer loop (estimates performance).
        inner_folds: folds of the inner loop (chooses the configuration, ensemble weights, threshold).
        repeats: repeats of the outer loop with different seeds.
        seed: seed of the first repeat.
        fold_column: a manifest column giving each patient's outer fold instead (e.g. the
            publishers' folds); overrides outer_folds and repeats.
        split_file: a CSV `patient_id,repeat,fold` giving each patient's outer fold instead (a
            run folder's `folds.csv` is one).
        group_column: a manifest column naming each patient's site, scanner or centre (e.g.
            `device`); the chosen models are then also cross-validated leaving one group out at a
            time, and reported beside the main folds: how a model travels to a site it never saw.
    """

    outer_folds: int = Field(5, ge=2)
    inner_folds: int = Field(3, ge=2)
    repeats: int = Field(1, ge=1)
    seed: int = 42
    fold_column: str | None = None
    split_file: Path | None = None
    group_column: str | None = None

    @model_validator(mode="after")
    def _one_fold_source(self) -> CVSettings:
        if self.fold_column is not None and self.split_file is not None:
            raise ValueError("give either fold_column or split_file, not both")
        return self


class ThresholdSettings(_Section):
    """How the decision threshold is frozen (chosen on training folds only).

    Args:
        rule: "youden" (maximise sensitivity + specificity - 1) or "sensitivity" (the highest
            threshold reaching `value` sensitivity).
        value: the target sensitivity, in (0, 1].
    """

    rule: ThresholdRule = "youden"
    value: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _value_when_needed(self) -> ThresholdSettings:
        if self.rule == "sensitivity" and self.value is None:
            raise ValueError("threshold rule 'sensitivity' needs a value: the target sensitivity in (0, 1]")
        return self

    def as_rule(self) -> str | float:
        """The rule as `dlradiomics.evaluation.threshold.choose_threshold` takes it."""
        return "youden" if self.rule == "youden" else float(self.value)


class ReportSettings(_Section):
    """What the report shows.

    Args:
        bootstrap: patient-level bootstrap replicates for 95% confidence intervals.
        gradcam_examples: cases in the gallery of the chosen model's right and wrong calls (a quarter
            each of true/false positives/negatives, distinct patients), with Grad-CAM when the chosen
            model reads deep features.
        canary: run the permuted-label canary (the whole pipeline on shuffled labels).
        note: a sentence the report opens with (e.g. what the cohort is).
    """

    bootstrap: int = Field(1000, ge=0)
    gradcam_examples: int = Field(8, ge=0)
    canary: bool = True
    note: str | None = None


class StudySettings(_Section):
    """A whole study: what to read, what to compute, how to evaluate, where to write.

    Args:
        name: a short name, used in the report title.
        cohort: patients and modalities.
        qa: what data QA may let through (duplicates across patients).
        radiomics: PyRadiomics settings.
        deep: backbone for deep features.
        dlr: how DLR fusion compresses radiomic + deep features.
        selection: feature selection.
        classifiers: classifiers tried in every experiment: names of the seven registered ones, or
            mappings `{name, estimator, params}` of your own (see `OwnClassifierSettings`).
        baselines: CNNs trained on the images inside the same outer folds (resnet50, vgg19,
            googlenet, resnet101, inception_v3, efficientnet_lite0), reported beside the radiomic and
            DLR models; for comparison, never chosen as the final model.
        baseline_training: how the baselines train (see `CnnTrainingSettings`).
        feature_sources: "radiomic", "deep" and/or "dlr" (both, concatenated); with `clinical`,
            also "clinical" (the clinical variables alone) and "radiomic+clinical".
        clinical: manifest columns used as clinical variables (see `ClinicalSettings`).
        reference: a clinical reference operating point to compare with (see `ReferenceSettings`).
        choice: which configurations may be chosen and how one is picked (see `ChoiceSettings`;
            `model_choice:` of earlier study files is read into it, with a warning).
        fusion: "single" (each modality alone), "early", "ensemble", "stacking".
        cv: the cross-validation scheme.
        threshold: the frozen-threshold rule.
        report: report contents.
        protocols: evaluation protocols run on the same data: "nested" (the honest one, always
            run; it chooses and fits the saved model) and, beside it for comparison, "paper": the
            paper's leaky protocol (selection on every patient, one 80/20 split, ensemble weights
            and threshold on the test set, best test AUC reported), on real and permuted labels,
            with its difference from the nested estimate (docs/protocols.md). Never the saved model.
        output: folder under which each run gets `runs/<timestamp>/`; relative to the study file.
        store: the feature cache shared across runs; relative to the study file.
        n_jobs: parallel workers.
        scheduler: a Dask scheduler address (``tcp://host:8786``): the grid's cells run on that
            cluster (its workers need this package and the feature store's folder need not be shared:
            the modelling tables travel with the tasks). None: local worker processes (``n_jobs``).
        source_path: the study file this was read from (set by `from_yaml`).
    """

    name: str = "study"
    cohort: CohortSettings
    qa: QaSettings = QaSettings()
    radiomics: RadiomicsSettings = RadiomicsSettings()
    deep: DeepSettings = DeepSettings()
    dlr: DLRSettings = DLRSettings()
    selection: SelectionSettings = SelectionSettings()
    classifiers: list[ClassifierEntry] = Field(default_factory=lambda: list(ALL_CLASSIFIERS), min_length=1)
    baselines: list[str] = Field(default_factory=list)
    baseline_training: CnnTrainingSettings = CnnTrainingSettings()
    feature_sources: list[FeatureSource] = Field(default_factory=lambda: ["radiomic", "deep", "dlr"], min_length=1)
    fusion: list[FusionStrategy] = Field(default_factory=lambda: ["single", "early", "ensemble", "stacking"],
                                         min_length=1)
    clinical: ClinicalSettings | None = None
    reference: ReferenceSettings | None = None
    choice: ChoiceSettings = ChoiceSettings()
    cv: CVSettings = CVSettings()
    threshold: ThresholdSettings = ThresholdSettings()
    report: ReportSettings = ReportSettings()
    protocols: list[EvaluationProtocol] = Field(default_factory=lambda: ["nested"], min_length=1)
    output: Path = Path("output")
    store: Path = Path("feature-store")
    n_jobs: int = Field(1, ge=1)
    scheduler: str | None = Field(None, pattern=r"^(tcp|tls)://\S+$")
    source_path: Path | None = None
    _deprecation_warnings: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _renamed_sections(cls, data: Any, handler: ModelWrapValidatorHandler[StudySettings]) -> StudySettings:
        """Read `model_choice:` (earlier study files) into `choice:`, and remember to say so."""
        notes: list[str] = []
        if isinstance(data, dict) and "model_choice" in data:
            data = dict(data)
            old = data.pop("model_choice")
            old = {} if old is None else old
            if not isinstance(old, dict) or set(old) - {"require_full_coverage"}:
                raise ValueError(f"model_choice: {old!r} is not allowed; it is now part of `choice:` and takes only "
                                 "require_full_coverage, e.g. choice: {require_full_coverage: false}")
            choice = data.get("choice") or {}
            if not isinstance(choice, dict):
                raise ValueError(f"choice: expected a mapping, got {choice!r}")
            if old and "require_full_coverage" in choice:
                raise ValueError("require_full_coverage is given under both `choice:` and `model_choice:`; give it "
                                 "once, under choice:")
            data["choice"] = {**choice, **old}
            written = ", ".join(f"{key}: {str(value).lower() if isinstance(value, bool) else value}"
                                for key, value in data["choice"].items())
            notes.append(f"the study file's `model_choice:` section is now part of `choice:`; write "
                         f"`choice: {{{written}}}` instead (read as that this time)")
        settings = handler(data)
        if notes:
            settings._deprecation_warnings = tuple(notes)
        return settings

    @property
    def deprecation_warnings(self) -> tuple[str, ...]:
        """What the study file says in an older form, and what to write instead (shown before a run)."""
        return self._deprecation_warnings

    @model_validator(mode="after")
    def _distinct_classifier_names(self) -> StudySettings:
        names = self.classifier_names()
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"classifier names {repeated} appear more than once; give each own classifier "
                             f"a name of its own (registered names: {list(ALL_CLASSIFIERS)})")
        return self

    @field_validator("protocols")
    @classmethod
    def _nested_always_runs(cls, protocols: list[str]) -> list[str]:
        if "nested" not in protocols:
            raise ValueError("protocols must include 'nested': the honest protocol chooses and fits the saved model; "
                             "'paper' (the paper's leaky protocol) only runs beside it, for comparison")
        return list(dict.fromkeys(protocols))

    @field_validator("baselines")
    @classmethod
    def _known_baselines(cls, baselines: list[str]) -> list[str]:
        unknown = [name for name in baselines if name not in BACKBONES]
        if unknown:
            raise ValueError(f"unknown backbone {unknown[0]!r}; choose from {list(BACKBONES)}")
        repeated = sorted({name for name in baselines if baselines.count(name) > 1})
        if repeated:
            raise ValueError(f"baseline {repeated[0]} is listed more than once")
        return baselines

    @model_validator(mode="after")
    def _clinical_and_choice(self) -> StudySettings:
        clinical_sources = [source for source in self.feature_sources if source in CLINICAL_SOURCES]
        if clinical_sources and self.clinical is None:
            raise ValueError(f"feature_sources {clinical_sources} need a `clinical:` section naming the manifest's "
                             "clinical columns, e.g. clinical: {columns: [birads], categorical: [birads]}")
        if self.clinical is not None and not clinical_sources:
            raise ValueError("`clinical:` names clinical columns but no feature source uses them; add 'clinical' "
                             "and/or 'radiomic+clinical' to feature_sources")
        if self.choice.by == "specificity_at_sensitivity" and self.threshold.rule != "sensitivity":
            raise ValueError("choice.by 'specificity_at_sensitivity' needs threshold: {rule: sensitivity, value: ...} "
                             "(the sensitivity the specificity is read at)")
        return self

    def reference_rule(self) -> str:
        """The per-patient rule of the reference column (its own, the clinical column's, or `same`)."""
        if self.reference is None:
            raise ValueError("the study has no reference")
        if self.reference.per_patient is not None:
            return self.reference.per_patient
        return self.clinical.rule_for(self.reference.column) if self.clinical is not None else "same"

    def classifier_names(self) -> list[str]:
        """The names of the study's classifiers, as results show them."""
        return [entry if isinstance(entry, str) else entry.name for entry in self.classifiers]

    def own_classifiers(self) -> list[OwnClassifierSettings]:
        """The study's own classifiers (entries given as `{name, estimator, params}`)."""
        return [entry for entry in self.classifiers if isinstance(entry, OwnClassifierSettings)]

    @classmethod
    def from_mapping(cls, mapping: Any, *, source: str = "study file", base_dir: Path | None = None) -> StudySettings:
        """Validate a parsed study file.

        Args:
            mapping: the parsed YAML (a dict).
            source: what to call the input in error messages (usually its path).
            base_dir: folder that relative paths are resolved against; None leaves them as given.

        Returns:
            The validated settings, with paths made absolute when `base_dir` is given.

        Raises:
            StudySettingsError: a key is unknown, missing, or has a value that is not allowed,
                including a PyRadiomics parameter file that is missing or invalid and a backbone
                name the registry does not know (checked here, before any work starts).
        """
        if mapping is None:
            raise StudySettingsError(f"{source}: the study file is empty; `dlradiomics init` writes a commented "
                                     "example to start from")
        if not isinstance(mapping, dict):
            raise StudySettingsError(f"{source}: expected a mapping of keys at the top level, got "
                                     f"{type(mapping).__name__}")
        try:
            settings = cls.model_validate(mapping)
        except ValidationError as error:
            raise StudySettingsError(_describe_errors(error, source)) from None
        settings = settings._resolved(base_dir) if base_dir is not None else settings
        problems = settings._radiomics_problems() + settings._backbone_problems()
        if problems:
            lines = [f"  {key}: value {value!r} is not allowed: {message}" for key, value, message in problems]
            raise StudySettingsError("\n".join([f"{source}: {len(problems)} invalid setting(s):", *lines]))
        return settings

    def _radiomics_problems(self) -> list[tuple[str, Any, str]]:
        """The PyRadiomics settings, loaded and checked by PyRadiomics as extraction will use them."""
        radiomics = self.radiomics
        if radiomics.params is None and not radiomics.overrides and not radiomics.families_section():
            return []  # the package's own defaults
        if radiomics.params is not None:
            try:
                load_radiomics_params(radiomics.params)
            except (OSError, ValueError) as error:
                return [("radiomics.params", str(radiomics.params), str(error))]
        key, value = (("radiomics.overrides", radiomics.overrides) if radiomics.overrides
                      else ("radiomics.params", str(radiomics.params)) if radiomics.params is not None
                      else ("radiomics", radiomics.families_section()))
        try:
            create_extractor(radiomics.parameter_mapping())
        except (OSError, ValueError) as error:
            return [(key, value, str(error))]
        return []

    def _backbone_problems(self) -> list[tuple[str, Any, str]]:
        """The backbone name, checked against the registry's names when deep features are used."""
        if not {"deep", "dlr"} & set(self.feature_sources):
            return []
        if self.deep.backbone not in BACKBONES:
            return [("deep.backbone", self.deep.backbone, f"unknown backbone; choose one of {list(BACKBONES)}")]
        return []

    @classmethod
    def from_yaml(cls, path: str | Path) -> StudySettings:
        """Read and validate a study file; relative paths resolve against its folder.

        Args:
            path: the study YAML.

        Raises:
            StudySettingsError: the file is missing, is not YAML, or holds an invalid setting.
        """
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise StudySettingsError(f"{path}: study file not found" + (" (it is a folder)" if path.is_dir() else ""))
        try:
            # Sizes, aliases and repeated keys are limited: a study file is a few dozen lines.
            mapping = load_yaml_file(path, what="study file", max_bytes=STUDY_FILE_MAX_BYTES)
        except YamlInputError as error:
            raise StudySettingsError(str(error)) from None
        settings = cls.from_mapping(mapping, source=str(path), base_dir=path.parent)
        return settings.model_copy(update={"source_path": path})

    def _resolved(self, base_dir: Path) -> StudySettings:
        def absolute(path: Path | None) -> Path | None:
            return None if path is None else (base_dir / path).resolve()

        return self.model_copy(update={
            "cohort": self.cohort.model_copy(update={"manifest": absolute(self.cohort.manifest)}),
            "radiomics": self.radiomics.model_copy(update={"params": absolute(self.radiomics.params)}),
            "deep": self.deep.model_copy(update={"weights_dir": absolute(self.deep.weights_dir)}),
            "cv": self.cv.model_copy(update={"split_file": absolute(self.cv.split_file)}),
            "output": absolute(self.output),
            "store": absolute(self.store),
        })

    def to_yaml_dict(self) -> dict[str, Any]:
        """The settings as plain YAML/JSON-ready values (paths as strings), for the run folder."""
        return self.model_dump(mode="json")


def _describe_errors(error: ValidationError, source: str) -> str:
    lines = [f"{source}: {error.error_count()} invalid setting(s):"]
    for item in error.errors():
        path = [part for part in item["loc"] if part not in (_REGISTERED_CLASSIFIER, _OWN_CLASSIFIER)]
        key = ".".join(str(part) for part in path) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (value {item['input']!r}); check its spelling")
        elif item["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        else:
            # A validator's own message, without pydantic's "Value error, " in front of it.
            message = str(item["ctx"]["error"]) if item["type"] == "value_error" else item["msg"]
            lines.append(f"  {key}: value {item['input']!r} is not allowed: {message}")
    return "\n".join(lines)


EXAMPLE_STUDY = Path(__file__).with_name("example_study.yaml")


def write_example_study(path: str | Path) -> Path:
    """Write the commented example study file.

    Args:
        path: where to write it.

    Returns:
        The written path.
    """
    return write_text_atomic(path, EXAMPLE_STUDY.read_text(encoding="utf-8"))
