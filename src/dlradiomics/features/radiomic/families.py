"""The feature families dlradiomics adds around PyRadiomics, read from a parameter mapping.

They live in the ``dlradiomics`` section of a PyRadiomics parameter mapping (see
:mod:`dlradiomics.features.radiomic.params`), for example::

    dlradiomics:
      peritumoral: {width_px: 12, width_mm: 3.0}   # a band around the lesion, features "peri_..."
      log: {sigmas: [1.0, 2.0, 4.0]}               # 2D Laplacian of Gaussian images
      wavelet: {name: coif1}                       # the four 2D stationary wavelet sub-bands
      normalisation: {US: none, MG: roi_zscore}    # per modality, applied before every family
      dimension: {MRI: 3D}                         # per modality (or one value for all): 2D or 3D

Each family is ``None`` (off) unless its key is given; with the section absent only the lesion's
features on the original image are computed, as before. ``dimension`` says where features are
computed: ``2D`` (the default) on the slice with the largest lesion area, ``3D`` on the whole
lesion volume (PyRadiomics' 3D shape and texture: :mod:`dlradiomics.features.radiomic.volume`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from dlradiomics.features.radiomic.params import FAMILIES_SECTION

# Per-image intensity normalisations. None of them learns anything from other images, so none
# needs fitting inside training folds:
# - "none": the intensities as io reads them (the bit-depth convention only);
# - "roi_zscore": (I - mean of the lesion) / standard deviation of the lesion, times 100 so that
#   PyRadiomics' bin width keeps a useful scale (about 24 bins of width 25 over +-3 SD);
# - "image_percentile": the image's 1st..99th percentile mapped linearly onto 0..255.
NORMALISATIONS = ("none", "roi_zscore", "image_percentile")
# Where radiomic features are computed: the largest lesion slice (2D) or the whole volume (3D).
DIMENSIONS = ("2D", "3D")


class FamilySettingsError(ValueError):
    """A ``dlradiomics`` section that cannot be used; the message names the key and the value."""


@dataclass(frozen=True)
class PeritumoralRing:
    """A band around the lesion, clipped to the image; its features are prefixed ``peri_``.

    Args:
        width_px: the band's width in pixels, used when the image has no physical spacing
            (PNG, JPEG, TIFF: see :attr:`dlradiomics.io.RoiImage.spacing_unit`).
        width_mm: the band's width in millimetres, used when the image carries its spacing
            (DICOM, NIfTI, NRRD); ``None`` uses ``width_px`` for those too.
    """

    width_px: float = 12.0
    width_mm: float | None = None

    def __post_init__(self) -> None:
        _require_positive("peritumoral.width_px", self.width_px)
        if self.width_mm is not None:
            _require_positive("peritumoral.width_mm", self.width_mm)


@dataclass(frozen=True)
class LaplacianOfGaussian:
    """2D Laplacian of Gaussian images, one per sigma.

    Args:
        sigmas: Gaussian widths in the image's spacing unit (millimetres where the spacing is
            known, else pixels), as PyRadiomics' ``LoG`` image type takes them.
        bin_width: PyRadiomics' bin width for these images; ``None`` uses the original image's
            (PyRadiomics' own default; LoG responses span a narrower range, so fewer bins).
    """

    sigmas: tuple[float, ...] = (1.0, 2.0, 4.0)
    bin_width: float | None = None

    def __post_init__(self) -> None:
        if not self.sigmas:
            raise FamilySettingsError("log.sigmas: give at least one sigma, e.g. [1.0, 2.0, 4.0]")
        for sigma in self.sigmas:
            _require_positive("log.sigmas", sigma)
        if self.bin_width is not None:
            _require_positive("log.bin_width", self.bin_width)


@dataclass(frozen=True)
class Wavelet:
    """The 2D stationary (undecimated) wavelet sub-bands LL, LH, HL and HH of one level.

    Args:
        name: a PyWavelets discrete wavelet (``coif1`` is PyRadiomics' default).
        bin_width: PyRadiomics' bin width for the sub-bands; ``None`` uses the original image's.
    """

    name: str = "coif1"
    bin_width: float | None = None

    def __post_init__(self) -> None:
        import pywt

        if self.bin_width is not None:
            _require_positive("wavelet.bin_width", self.bin_width)
        if self.name not in pywt.wavelist(kind="discrete"):
            raise FamilySettingsError(
                f"wavelet.name: {self.name!r} is not a discrete PyWavelets wavelet (e.g. coif1, db2, haar, sym4)"
            )


@dataclass(frozen=True)
class FeatureFamilies:
    """Which families to compute besides the lesion's features on the original image.

    Args:
        peritumoral: the ring around the lesion, or ``None``.
        log: Laplacian of Gaussian images, or ``None``.
        wavelet: wavelet sub-bands, or ``None``.
        normalisation: modality -> one of :data:`NORMALISATIONS`; modalities not named get "none".
        dimension: one of :data:`DIMENSIONS` for every modality, or modality -> dimension
            (modalities not named get "2D").
    """

    peritumoral: PeritumoralRing | None = None
    log: LaplacianOfGaussian | None = None
    wavelet: Wavelet | None = None
    normalisation: Mapping[str, str] = field(default_factory=dict)
    dimension: str | Mapping[str, str] = "2D"

    def __post_init__(self) -> None:
        for modality, method in self.normalisation.items():
            if method not in NORMALISATIONS:
                raise FamilySettingsError(
                    f"normalisation.{modality}: {method!r} is not one of {', '.join(NORMALISATIONS)}"
                )
        named = self.dimension.items() if isinstance(self.dimension, Mapping) else [("", self.dimension)]
        for modality, dimension in named:
            if dimension not in DIMENSIONS:
                key = f"dimension.{modality}" if modality else "dimension"
                raise FamilySettingsError(f"{key}: {dimension!r} is not one of {', '.join(DIMENSIONS)}")

    def normalisation_for(self, modality: str | None) -> str:
        """The normalisation of ``modality`` (matched case-insensitively); "none" if not named."""
        return _named(self.normalisation, modality, "none")

    def dimension_for(self, modality: str | None) -> str:
        """Where ``modality``'s features are computed: "2D" (largest lesion slice) or "3D" (volume)."""
        if not isinstance(self.dimension, Mapping):
            return self.dimension
        return _named(self.dimension, modality, "2D")

    @property
    def any_3d(self) -> bool:
        """Whether any modality's features are computed in 3D."""
        values = self.dimension.values() if isinstance(self.dimension, Mapping) else [self.dimension]
        return "3D" in values

    def as_dict(self) -> dict[str, Any]:
        """The families as plain values (the ``dlradiomics`` section), for provenance."""
        section: dict[str, Any] = {}
        if self.peritumoral is not None:
            section["peritumoral"] = asdict(self.peritumoral)
        if self.log is not None:
            section["log"] = {"sigmas": list(self.log.sigmas), "bin_width": self.log.bin_width}
        if self.wavelet is not None:
            section["wavelet"] = asdict(self.wavelet)
        if self.normalisation:
            section["normalisation"] = dict(self.normalisation)
        if self.dimension != "2D" and self.dimension:
            section["dimension"] = dict(self.dimension) if isinstance(self.dimension, Mapping) else self.dimension
        return section

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> FeatureFamilies:
        """Parse the ``dlradiomics`` section of a parameter mapping (absent: no families).

        Raises:
            FamilySettingsError: an unknown key or a value that is not allowed, named.
        """
        section = params.get(FAMILIES_SECTION) or {}
        if not isinstance(section, Mapping):
            raise FamilySettingsError(f"{FAMILIES_SECTION}: expected a mapping, got {type(section).__name__}")
        _refuse_unknown(FAMILIES_SECTION, section, ("peritumoral", "log", "wavelet", "normalisation", "dimension"))
        return cls(
            peritumoral=_build(PeritumoralRing, "peritumoral", section.get("peritumoral"), ("width_px", "width_mm")),
            log=_build_log(section.get("log")),
            wavelet=_build(Wavelet, "wavelet", section.get("wavelet"), ("name", "bin_width")),
            normalisation=_normalisation(section.get("normalisation")),
            dimension=_dimension(section.get("dimension")),
        )


def _named(values: Mapping[str, str], modality: str | None, default: str) -> str:
    """The value a mapping names for ``modality`` (matched case-insensitively), else ``default``."""
    wanted = (modality or "").strip().upper()
    for name, value in values.items():
        if name.strip().upper() == wanted:
            return value
    return default


def _require_positive(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise FamilySettingsError(f"{key}: {value!r} must be a positive number")


def _refuse_unknown(where: str, mapping: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise FamilySettingsError(f"{where}: unknown key(s) {unknown}; expected {', '.join(allowed)}")


def _build(kind: type, key: str, value: Any, allowed: tuple[str, ...]):
    if value is None or value is False:
        return None
    if value is True:
        return kind()
    if not isinstance(value, Mapping):
        raise FamilySettingsError(f"{FAMILIES_SECTION}.{key}: expected a mapping or true, got {value!r}")
    _refuse_unknown(f"{FAMILIES_SECTION}.{key}", value, allowed)
    return kind(**dict(value))


def _build_log(value: Any) -> LaplacianOfGaussian | None:
    if isinstance(value, Mapping) and "sigmas" in value:
        _refuse_unknown(f"{FAMILIES_SECTION}.log", value, ("sigmas", "bin_width"))
        sigmas = value["sigmas"]
        if not isinstance(sigmas, (list, tuple)):
            raise FamilySettingsError(f"log.sigmas: expected a list of numbers, got {sigmas!r}")
        return LaplacianOfGaussian(sigmas=tuple(sigmas), bin_width=value.get("bin_width"))
    return _build(LaplacianOfGaussian, "log", value, ("sigmas", "bin_width"))


def _normalisation(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FamilySettingsError(f"normalisation: expected a mapping modality -> method, got {value!r}")
    return {str(modality): str(method) for modality, method in value.items()}


def _dimension(value: Any) -> str | dict[str, str]:
    """``"2D"``/``"3D"`` (any case) for every modality, or a mapping modality -> dimension."""
    if value is None:
        return "2D"
    if isinstance(value, Mapping):
        return {str(modality): str(dimension).strip().upper() for modality, dimension in value.items()}
    if isinstance(value, str):
        return value.strip().upper()
    raise FamilySettingsError(f"dimension: expected 2D, 3D or a mapping modality -> 2D/3D, got {value!r}")
