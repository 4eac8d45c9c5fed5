"""The study's optional second protocol: the paper's (leaky) one, run beside the nested protocol.

``protocols: [nested, paper]`` in a study file runs `dlradiomics.evaluation.paper_protocol` on the
same feature tables and grid settings as the nested grid, once on the real labels and once on labels
permuted between patients (the same permutation as the canary's), for the report's comparison. It
never chooses or fits the saved model (docs/protocols.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dlradiomics.evaluation.paper_protocol import PAPER_PROTOCOL, PaperProtocolResult, run_paper_protocol
from dlradiomics.study.features import FeatureTables
from dlradiomics.study.settings import StudySettings
from dlradiomics.study.stages import grid_arguments

PAPER_TEST_SIZE = 0.2


@dataclass(frozen=True)
class PaperProtocolRuns:
    """The paper protocol on the real labels and on permuted labels."""

    real: PaperProtocolResult
    permuted: PaperProtocolResult


def wants_paper_protocol(settings: StudySettings) -> bool:
    """Whether the study file asks for the paper's protocol beside the nested one."""
    return PAPER_PROTOCOL in settings.protocols


def run_paper_protocols(settings: StudySettings, features: FeatureTables, table: pd.DataFrame) -> PaperProtocolRuns:
    """Run the paper's protocol on the real and on permuted labels, with the grid's settings.

    Args:
        settings: study settings (sources, modalities, fusions, classifiers, selection, DLR, seed).
        features: the feature tables.
        table: cohort rows (which modalities are present).

    Returns:
        The two runs.
    """
    modalities = [m for m in settings.cohort.modalities if m in set(table["modality"])]
    arguments = grid_arguments(settings, modalities)
    common = {name: arguments[name] for name in ("sources", "modality_sets", "fusions", "classifiers",
                                                  "custom_classifiers", "selections", "dlr", "n_boot", "seed")}
    common["inner_splits"] = arguments["inner_splits"]
    return PaperProtocolRuns(
        real=run_paper_protocol(features.tables, test_size=PAPER_TEST_SIZE, **common),
        permuted=run_paper_protocol(features.tables, test_size=PAPER_TEST_SIZE, permute_labels=True, **common),
    )
