"""The configuration space of the experiment grid: which model configurations a study runs.

A grid cell is a `dlradiomics.models.ModelConfiguration` (source x modality set x fusion x
classifier). A configuration with one feature block has one model whatever the fusion, so it is
run once as ``fusion="single"`` and its other fusions are listed as skipped, with the reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from dlradiomics.models import FUSIONS, SOURCES, ModelConfiguration

CONFIG_COLUMNS = ("source", "modalities", "fusion", "classifier")
# A grid cell is one model configuration; the grid's name for it stays for readers of the grid.
GridConfiguration = ModelConfiguration


def default_modality_sets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Each modality alone, every pair, and all together (without duplicates).

    Args:
        modalities: Available modalities.

    Returns:
        The modality sets.
    """
    ordered = list(dict.fromkeys(modalities))
    sets = [(modality,) for modality in ordered]
    sets += list(itertools.combinations(ordered, 2))
    if len(ordered) > 2:
        sets.append(tuple(ordered))
    return sets


def grid_configurations(
    sources: Sequence[str],
    modality_sets: Sequence[Sequence[str]],
    fusions: Sequence[str],
    classifiers: Sequence[str],
) -> tuple[list[ModelConfiguration], list[tuple[ModelConfiguration, str]]]:
    """Expand the grid into configurations to run and configurations skipped (with why).

    Args:
        sources: Feature sources.
        modality_sets: Modality sets.
        fusions: Fusion strategies.
        classifiers: Classifier names.

    Returns:
        ``(to_run, skipped)``; ``skipped`` pairs a configuration with the reason.
    """
    unknown = [source for source in sources if source not in SOURCES] + [f for f in fusions if f not in FUSIONS]
    if unknown:
        raise ValueError(f"unknown sources or fusions {unknown}; sources: {SOURCES}, fusions: {FUSIONS}")
    to_run: list[ModelConfiguration] = []
    skipped: list[tuple[ModelConfiguration, str]] = []
    for source, modalities, classifier in itertools.product(sources, modality_sets, classifiers):
        modalities = tuple(modalities)
        single = ModelConfiguration(source, modalities, "single", classifier)
        if len(single.blocks) == 1:
            to_run.append(single)
            for fusion in fusions:
                skipped.append(
                    (ModelConfiguration(source, modalities, fusion, classifier),
                     "one feature block: every fusion is the single-block model (fusion='single')")
                )
            continue
        to_run.extend(ModelConfiguration(source, modalities, fusion, classifier) for fusion in fusions)
    return to_run, skipped
