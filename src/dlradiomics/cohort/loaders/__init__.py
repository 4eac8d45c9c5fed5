"""Loaders that turn published data-set layouts into manifest tables (pandas DataFrames).

Each returns one row per image with the manifest columns (``patient_id, modality, image, mask,
label``) first, absolute paths, and the data set's useful extras; anything skipped is listed in
``frame.attrs["skipped"]``. Write one with :func:`dlradiomics.cohort.write_manifest`.
"""

from dlradiomics.cohort.loaders.breastdm import breastdm_manifest
from dlradiomics.cohort.loaders.bus_bra import bus_bra_manifest
from dlradiomics.cohort.loaders.busi import busi_manifest
from dlradiomics.cohort.loaders.mini_mias import mini_mias_manifest, parse_mias_info

__all__ = ["breastdm_manifest", "bus_bra_manifest", "busi_manifest", "mini_mias_manifest", "parse_mias_info"]
