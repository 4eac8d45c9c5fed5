"""Selection steps as typed values: what `make_pipeline` puts between scaling and the classifier.

A study's settings become these objects once, and they travel unchanged to the pipelines that
build the selectors inside each training fold. `parse_selection_step` reads the short text form
(``"mannwhitney:0.01"``, ``"pca:32"``) that `make_pipeline` also accepts, for interactive use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from sklearn.base import BaseEstimator

from dlradiomics.models.clinical import ClinicalEncodingStep
from dlradiomics.models.reduction import BoundedPCA
from dlradiomics.models.selectors import CorrelationFilter, LassoSelector, MannWhitneySelector


@dataclass(frozen=True)
class MannWhitneyStep:
    """Keep features whose Mann-Whitney U test between classes has p below ``p_threshold``.

    Args:
        p_threshold: the p-value a feature must stay under.
    """

    p_threshold: float = 0.05
    name: ClassVar[str] = "mannwhitney"
    needs_scaling: ClassVar[bool] = False

    def build(self, random_state: int | None) -> BaseEstimator:
        """The unfitted selector."""
        return MannWhitneySelector(p_threshold=self.p_threshold)


@dataclass(frozen=True)
class CorrelationStep:
    """Of two features with Spearman |rho| above ``threshold``, keep the one more related to the label.

    Args:
        threshold: the |rho| above which two features count as redundant.
    """

    threshold: float = 0.9
    name: ClassVar[str] = "correlation"
    needs_scaling: ClassVar[bool] = False

    def build(self, random_state: int | None) -> BaseEstimator:
        """The unfitted selector."""
        return CorrelationFilter(threshold=self.threshold)


@dataclass(frozen=True)
class LassoStep:
    """Keep the features with non-zero L1-penalised logistic coefficients (penalty by inner CV)."""

    name: ClassVar[str] = "lasso"
    needs_scaling: ClassVar[bool] = True

    def build(self, random_state: int | None) -> BaseEstimator:
        """The unfitted selector, its inner folds seeded by ``random_state``."""
        return LassoSelector(random_state=random_state)


@dataclass(frozen=True)
class PCAStep:
    """Project onto ``n_components`` principal components (capped by the training fold's size).

    Args:
        n_components: components wanted (the paper: 32 per modality's CNN embedding).
    """

    n_components: int = 32
    name: ClassVar[str] = "pca"
    needs_scaling: ClassVar[bool] = True

    def build(self, random_state: int | None) -> BaseEstimator:
        """The unfitted reducer."""
        return BoundedPCA(n_components=self.n_components, random_state=random_state)


# ClinicalEncodingStep prepares rather than selects; it travels with the selection steps so that every
# pipeline of a configuration (early fusion's one, each block's in late fusion) gets it.
SelectionStep = MannWhitneyStep | CorrelationStep | LassoStep | PCAStep | ClinicalEncodingStep


def describe_step(step: SelectionStep) -> dict[str, Any]:
    """A step as plain values, e.g. ``{"step": "pca", "n_components": 32}`` (for cache keys and records)."""
    return {"step": step.name, **asdict(step)}


def parse_selection_step(text: str) -> SelectionStep:
    """Read the short text form of a step: ``"mannwhitney[:p]"``, ``"correlation[:rho]"``, ``"lasso"``, ``"pca[:k]"``.

    Args:
        text: the step, optionally with its one argument after a colon.

    Returns:
        The typed step.

    Raises:
        ValueError: for an unknown step or an argument of the wrong type.
    """
    kind, _, argument = str(text).partition(":")
    try:
        if kind == "mannwhitney":
            return MannWhitneyStep(float(argument)) if argument else MannWhitneyStep()
        if kind == "correlation":
            return CorrelationStep(float(argument)) if argument else CorrelationStep()
        if kind == "lasso" and not argument:
            return LassoStep()
        if kind == "pca":
            return PCAStep(int(argument)) if argument else PCAStep()
        raise ValueError("unknown selector")
    except ValueError as error:
        raise ValueError(
            f"bad selection step {text!r} ({error}); use 'mannwhitney[:p]', 'correlation[:rho]', 'lasso', 'pca[:k]'"
        ) from None
