"""Feature selectors as scikit-learn transformers, fitted on training folds only.

The paper's chain is Mann-Whitney U filter -> Spearman redundancy filter -> LASSO. Each selector
here keeps at least ``min_features`` columns: when too few features pass its test it tops up
with the best-ranked ones and sets ``fallback_used_ = True``; when none passes at all it also
warns with :class:`SelectionFallbackWarning` (so a grid can count or silence it). NaN values are tolerated
(ignored by the statistics), though pipelines impute before selecting; constant columns never
pass a test (their p-value is 1 and their correlations undefined).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu, rankdata, spearmanr
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectorMixin
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.preprocessing import StandardScaler
from sklearn.utils import ClassifierTags
from sklearn.utils.validation import check_is_fitted, validate_data

from dlradiomics.models.inner_cv import PatientGroupKFold, patient_groups


class SelectionFallbackWarning(UserWarning):
    """Fewer features than ``min_features`` passed a selector's test; the best-ranked were kept."""


def _binary_labels(y) -> np.ndarray:
    labels = np.asarray(y)
    classes = np.unique(labels)
    if len(classes) != 2:
        # scikit-learn's wording for a binary-only estimator given more classes, so tools recognise it
        prefix = "Only binary classification is supported: " if len(classes) > 2 else ""
        found = "one class" if len(classes) == 1 else f"{len(classes)} classes"
        raise ValueError(
            f"{prefix}feature selection needs exactly two classes in y (benign/malignant), got {found}: {classes.tolist()}"
        )
    return labels == classes[1]


def univariate_auc(X: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mann-Whitney U test of every column: (AUC of each column, two-sided p-value).

    The AUC is U / (n_positive * n_negative); NaN values are left out column by column, and a
    column that cannot be tested (constant, or all NaN in one class) gets AUC 0.5 and p 1.

    Args:
        X: feature matrix (n_samples, n_features).
        positive: boolean mask of the positive class.

    Returns:
        Tuple of arrays (auc, p_value), one entry per column.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        nan_policy = "omit" if np.isnan(X).any() else "propagate"
        result = mannwhitneyu(X[positive], X[~positive], axis=0, nan_policy=nan_policy)
    n_positive = np.sum(~np.isnan(X[positive]), axis=0)
    n_negative = np.sum(~np.isnan(X[~positive]), axis=0)
    with np.errstate(all="ignore"):
        auc = np.asarray(result.statistic, dtype=float) / (n_positive * n_negative)
    p_value = np.asarray(result.pvalue, dtype=float)
    constant = np.nanmax(X, axis=0, initial=-np.inf) == np.nanmin(X, axis=0, initial=np.inf)
    untestable = ~np.isfinite(auc) | ~np.isfinite(p_value) | constant
    auc[untestable] = 0.5
    p_value[untestable] = 1.0
    return auc, p_value


def _inner_fold_auc(model: LogisticRegression, X: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC of a penalty-path model on an inner test fold: scikit-learn's ``"roc_auc"`` scorer, cheaper.

    The scorer validates its inputs on each of the path's calls (penalties x folds), which cost
    more than the path's fits on a small cohort. The score is the decision function as scikit-learn
    computes it (``X @ coef_.T + intercept_``) and the AUC as the Mann-Whitney statistic from
    average ranks, ties counting one half: the area under the ROC curve, exact for tied AUCs.
    """
    scores = np.ravel(X @ np.asarray(model.coef_).T + model.intercept_)
    positive = np.asarray(y) == model.classes_[-1]
    n_positive = int(positive.sum())
    n_negative = len(positive) - n_positive
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    rank_sum = rankdata(scores)[positive].sum()
    return float((rank_sum - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


def _keep_with_fallback(passed: np.ndarray, ranking: np.ndarray, min_features: int, selector: str) -> tuple[np.ndarray, bool]:
    """Boolean support: the passing columns, or the ``min_features`` best-ranked when too few pass."""
    if passed.sum() >= min_features:
        return passed, False
    keep = np.zeros_like(passed)
    keep[ranking[: min(min_features, len(ranking))]] = True
    keep |= passed
    if passed.any():
        # topping up to min_features is routine (recorded in fallback_used_); only an empty pass is news
        return keep, True
    warnings.warn(
        f"{selector}: no feature passed; keeping the {int(keep.sum())} best-ranked",
        SelectionFallbackWarning,
        stacklevel=3,
    )
    return keep, True


class _SupportSelector(SelectorMixin, BaseEstimator):
    """Shared plumbing of the selectors below: ``fit`` stores the boolean ``support_`` mask.

    Every selector here tests features against a binary label and tolerates NaN (see the module
    docstring), so the tags say so once; a selector that cannot skip NaN overrides the tag.
    """

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.required = True
        # A supervised transformer declares what targets it takes through classifier tags, as
        # scikit-learn's own RFE does: these tests compare two classes only.
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags


class MannWhitneySelector(_SupportSelector):
    """Keep features whose Mann-Whitney U test between classes has p below a threshold.

    Args:
        p_threshold: keep features with two-sided p-value strictly below this.
        min_features: keep at least this many (smallest p) when fewer pass.

    Attributes:
        p_values_: p-value of each input feature.
        auc_: univariate AUC (U / n1 n0) of each input feature.
        fallback_used_: True when fewer than ``min_features`` passed.
    """

    def __init__(self, p_threshold: float = 0.05, min_features: int = 5):
        self.p_threshold = p_threshold
        self.min_features = min_features

    def fit(self, X, y):
        """Test every feature on the training rows.

        Args:
            X: training features (n_samples, n_features); NaN allowed.
            y: binary labels.

        Returns:
            self
        """
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype=np.float64)
        self.auc_, self.p_values_ = univariate_auc(X, _binary_labels(y))
        ranking = np.argsort(self.p_values_, kind="stable")
        self.support_, self.fallback_used_ = _keep_with_fallback(
            self.p_values_ < self.p_threshold, ranking, self.min_features, type(self).__name__
        )
        return self


class CorrelationFilter(_SupportSelector):
    """Drop redundant features: of two with Spearman |rho| above a threshold, keep the one more related to the label.

    Features are visited from the most to the least related to the label (|AUC - 0.5| of the
    Mann-Whitney test); one is kept when its |rho| with every feature kept so far is at most the
    threshold. Constant columns have undefined correlations and are dropped.

    Args:
        threshold: |rho| above which two features count as redundant.
        min_features: keep at least this many (most related to the label).

    Attributes:
        relevance_: |AUC - 0.5| of each input feature.
        fallback_used_: True when fewer than ``min_features`` survived.
    """

    def __init__(self, threshold: float = 0.9, min_features: int = 1):
        self.threshold = threshold
        self.min_features = min_features

    def fit(self, X, y):
        """Find the redundant features on the training rows.

        Args:
            X: training features (n_samples, n_features); NaN allowed (pairs with NaN left out).
            y: binary labels.

        Returns:
            self
        """
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype=np.float64)
        auc, _ = univariate_auc(X, _binary_labels(y))
        self.relevance_ = np.abs(auc - 0.5)
        constant = np.nanmax(X, axis=0, initial=-np.inf) == np.nanmin(X, axis=0, initial=np.inf)
        candidates = np.flatnonzero(~constant)
        rho = self._spearman(X[:, candidates])
        order = np.argsort(-self.relevance_[candidates], kind="stable")
        kept_local: list[int] = []
        for local in order:
            if not kept_local or np.all(rho[local, kept_local] <= self.threshold):
                kept_local.append(local)
        passed = np.zeros(X.shape[1], dtype=bool)
        passed[candidates[kept_local]] = True
        ranking = np.argsort(-self.relevance_, kind="stable")
        self.support_, self.fallback_used_ = _keep_with_fallback(
            passed, ranking, self.min_features, type(self).__name__
        )
        return self

    @staticmethod
    def _spearman(X: np.ndarray) -> np.ndarray:
        n_features = X.shape[1]
        if n_features < 2:
            return np.zeros((n_features, n_features))
        nan_policy = "omit" if np.isnan(X).any() else "propagate"
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            rho = spearmanr(X, axis=0, nan_policy=nan_policy).statistic
        rho = np.asarray(rho, dtype=float)
        if rho.ndim == 0:
            # scipy returns a bare coefficient, not a matrix, for exactly two columns
            rho = np.array([[1.0, rho], [rho, 1.0]])
        rho = np.abs(rho)
        return np.nan_to_num(rho, nan=0.0)


class LassoSelector(_SupportSelector):
    """Keep the features with non-zero L1-penalised logistic regression coefficients.

    The penalty is chosen by inner cross-validation (``LogisticRegressionCV`` with an L1 penalty,
    scored by ROC AUC) on folds grouped by patient: the ``groups`` given to ``fit`` (or routed to
    it), else ``X.index`` when X is a DataFrame indexed by ``patient_id``, else one group per row. L1 logistic rather than LassoCV because the label is
    binary. By default the penalty follows the one-standard-error rule (glmnet's ``lambda.1se``):
    the strongest penalty whose mean inner-CV AUC is within one standard error of the best,
    since the best-scoring penalty on a flat AUC curve keeps many noise features. Features are standardised inside ``fit`` so the penalty treats them alike; the
    transform passes the original values through.

    Args:
        n_penalties: number of inverse penalty strengths C tried, log-spaced over ``C_bounds``.
        C_bounds: smallest and largest C. On standardised features C above a few units selects
            nearly every feature, and liblinear's L1 solver slows by orders of magnitude there
            (minutes per fit on 100 correlated radiomic features), so the path stops at 3.
        inner_cv: number of inner folds.
        min_features: keep at least this many (largest |coefficient|, then most related to the label).
        max_iter: solver iterations.
        penalty_rule: ``"one_standard_error"`` (sparser, default) or ``"best"`` (highest inner-CV AUC).
        random_state: seed of the inner folds.

    Attributes:
        coef_: coefficient of each input feature at the chosen penalty.
        C_: the chosen inverse penalty strength.
        n_iter_: the most solver iterations any inner fit needed.
        fallback_used_: True when fewer than ``min_features`` coefficients were non-zero.
    """

    def __init__(
        self,
        n_penalties: int = 10,
        C_bounds: tuple[float, float] = (1e-3, 3.0),
        inner_cv: int = 3,
        min_features: int = 1,
        max_iter: int = 1000,
        penalty_rule: str = "one_standard_error",
        random_state: int | None = 0,
    ):
        self.n_penalties = n_penalties
        self.C_bounds = C_bounds
        self.inner_cv = inner_cv
        self.min_features = min_features
        self.max_iter = max_iter
        self.penalty_rule = penalty_rule
        self.random_state = random_state

    def fit(self, X, y, groups=None):
        """Fit the L1 logistic path on the training rows and keep the non-zero coefficients.

        Args:
            X: training features; a DataFrame indexed by ``patient_id`` gives grouped inner folds.
            y: binary labels.
            groups: patient of each row for the inner folds; overrides ``X.index``. Routed by
                scikit-learn's metadata routing after ``set_fit_request(groups=True)``.

        Returns:
            self
        """
        if self.penalty_rule not in ("one_standard_error", "best"):
            raise ValueError(f"penalty_rule must be 'one_standard_error' or 'best', got {self.penalty_rule!r}")
        patients = X.index.to_numpy() if groups is None and isinstance(X, pd.DataFrame) else groups
        X, y = validate_data(self, X, y, dtype=np.float64)
        groups = patient_groups(X, patients)
        if len(groups) != len(y):
            raise ValueError(f"LassoSelector: groups has {len(groups)} entries but X has {len(y)} rows")
        positive = _binary_labels(y)
        splits = list(PatientGroupKFold(self.inner_cv, random_state=self.random_state).split(X, positive, groups))
        standardised = StandardScaler().fit_transform(X)
        path = LogisticRegressionCV(
            Cs=np.logspace(np.log10(self.C_bounds[0]), np.log10(self.C_bounds[1]), self.n_penalties),
            l1_ratios=(1.0,),
            solver="liblinear",
            scoring=_inner_fold_auc,
            cv=splits,
            max_iter=self.max_iter,
            random_state=self.random_state,
            refit=False,
            use_legacy_attributes=False,
        )
        with warnings.catch_warnings():
            # the strongest penalties zero every coefficient and the weakest may not converge:
            # both are expected on a penalty path and say nothing about the chosen fit
            warnings.simplefilter("ignore", category=UserWarning)
            warnings.simplefilter("ignore", category=RuntimeWarning)
            warnings.simplefilter("ignore", category=ConvergenceWarning)
            path.fit(standardised, positive.astype(int))
            self.C_ = self._chosen_penalty(path)
            final = LogisticRegression(
                C=self.C_, l1_ratio=1.0, solver="liblinear", max_iter=self.max_iter, random_state=self.random_state
            ).fit(standardised, positive.astype(int))
        self.coef_ = final.coef_.ravel()
        self.n_iter_ = int(np.max(final.n_iter_))
        auc, _ = univariate_auc(X, positive)
        ranking = np.lexsort((-np.abs(auc - 0.5), -np.abs(self.coef_)))
        self.support_, self.fallback_used_ = _keep_with_fallback(
            self.coef_ != 0, ranking, self.min_features, type(self).__name__
        )
        return self

    def _chosen_penalty(self, path: LogisticRegressionCV) -> float:
        """Inverse penalty C by the rule in ``penalty_rule`` from the inner-CV AUC of each C."""
        fold_scores = np.nan_to_num(np.asarray(path.scores_, dtype=float)[:, 0, :], nan=0.5)
        mean = fold_scores.mean(axis=0)
        best = int(np.argmax(mean))
        if self.penalty_rule == "best":
            return float(path.Cs_[best])
        standard_error = fold_scores.std(axis=0, ddof=1)[best] / np.sqrt(fold_scores.shape[0])
        # Cs_ ascend, so the first C within one standard error of the best is the strongest penalty
        within = np.flatnonzero(mean >= mean[best] - standard_error)
        return float(path.Cs_[within[0]])

    def __sklearn_tags__(self):
        # validate_data rejects NaN here (the L1 path cannot skip missing values), so the tag says so
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
