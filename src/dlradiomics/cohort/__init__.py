"""The study's cohort: manifest reading and validation, public-data loaders, data QA.

Public API: :func:`read_manifest`, :func:`write_manifest`, :class:`Cohort`, :class:`ManifestProblem`,
:class:`ManifestError`, :func:`parse_label`, the view filter (:func:`view_filter`), the loaders (``bus_bra_manifest``, ``busi_manifest``,
``mini_mias_manifest``, ``breastdm_manifest``) and :func:`dlradiomics.cohort.qa.run_qa`.
"""

from dlradiomics.cohort.cohort import Cohort, load_row_roi
from dlradiomics.cohort.labels import parse_label
from dlradiomics.cohort.loaders import breastdm_manifest, bus_bra_manifest, busi_manifest, mini_mias_manifest
from dlradiomics.cohort.manifest import read_manifest, read_manifest_table, write_manifest
from dlradiomics.cohort.problems import ManifestError, ManifestProblem
from dlradiomics.cohort.views import ViewSelection, canonical_view, checked_view, view_filter, view_reason

__all__ = [
    "Cohort",
    "breastdm_manifest",
    "bus_bra_manifest",
    "busi_manifest",
    "mini_mias_manifest",
    "ManifestError",
    "ManifestProblem",
    "ViewSelection",
    "canonical_view",
    "checked_view",
    "load_row_roi",
    "parse_label",
    "read_manifest",
    "read_manifest_table",
    "view_filter",
    "view_reason",
    "write_manifest",
]
