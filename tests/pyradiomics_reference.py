"""PyRadiomics called directly on image files, the IBSI way: the reference our extraction must equal.

No dlradiomics code runs between the file and the features: SimpleITK reads the files, and
``JoinSeries`` turns each 2D image into the one-slice volume whose texture matrices follow IBSI (a
native 2D image does not; see docs/ibsi.md).
"""

from __future__ import annotations

import SimpleITK as sitk
from radiomics.featureextractor import RadiomicsFeatureExtractor

from dlradiomics.features.radiomic import DEFAULT_PARAMS_PATH


def direct_pyradiomics(image_path, mask_path, extractor: RadiomicsFeatureExtractor | None = None) -> dict[str, float]:
    """PyRadiomics' features of a 2D image file and its 0/255 mask file, as one-slice volumes."""
    extractor = extractor or RadiomicsFeatureExtractor(str(DEFAULT_PARAMS_PATH))
    # Float pixels: PyRadiomics' binning computes `maximum + 2 * binWidth` in the pixel type, which
    # overflows for 8-bit images. The masks are 0/255, so the lesion label is 255.
    image = sitk.JoinSeries(sitk.Cast(sitk.ReadImage(str(image_path)), sitk.sitkFloat32))
    mask = sitk.JoinSeries(sitk.ReadImage(str(mask_path)))
    result = extractor.execute(image, mask, label=255)
    return {name: float(value) for name, value in result.items() if not name.startswith("diagnostics_")}
