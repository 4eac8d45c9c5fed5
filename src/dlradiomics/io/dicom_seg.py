"""A DICOM Segmentation (DICOM-SEG) mask, laid onto the slices of the image it segments.

A SEG object stores its frames with references to the source images' SOPInstanceUIDs; highdicom
(the DICOM standard's reference implementation of SEG in Python) maps them back onto those
instances. The mask is read as a label map in the image's slice order, where each voxel holds the
number of the segment it belongs to (a manifest's ``mask_label`` names a segment number).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlradiomics.io.errors import ImageReadError
from dlradiomics.io.image_array import ImageArray

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def is_segmentation(dataset) -> bool:
    """Whether a pydicom dataset is a DICOM Segmentation object."""
    return str(dataset.get("SOPClassUID", "")) == SEGMENTATION_STORAGE


def read_segmentation(path: str | Path, reference: ImageArray | None, reference_path: str | Path | None) -> ImageArray:
    """The label map of a DICOM-SEG file on the grid of the image it segments.

    Args:
        path: the SEG file.
        reference: the image (a DICOM file or series folder, read first) the SEG refers to.
        reference_path: that image's path, for messages.

    Returns:
        A label array of the reference image's shape (segment numbers, 0 = background) with the
        reference's spacing and geometry.

    Raises:
        ImageReadError: the SEG is read without its image, refers to another series, refers to
            none of the image's slices, or its segments overlap.
    """
    import highdicom

    path = Path(path)
    if reference is None:
        raise ImageReadError(
            path, "a DICOM-SEG is a mask: it can only be read as the mask of the DICOM image (file or series "
            "folder) it segments", kind="unsupported")
    if not reference.instance_uids:
        raise ImageReadError(
            path, f"a DICOM-SEG mask needs a DICOM image (file or series folder) to lie on; its image "
            f"{reference_path} is not one", kind="unsupported")
    segmentation = highdicom.seg.segread(path)
    referenced = {str(series) for _, series, _ in segmentation.get_source_image_uids()}
    if reference.series_uid not in referenced:
        raise ImageReadError(
            path, f"the DICOM-SEG segments series {', '.join(sorted(referenced)) or '(none named)'}, but its image "
            f"{reference_path} is series {reference.series_uid}: the mask belongs to another image",
            kind="geometry_mismatch")
    referenced_instances = {str(instance) for _, _, instance in segmentation.get_source_image_uids()}
    if not referenced_instances & set(reference.instance_uids):
        raise ImageReadError(
            path, f"the DICOM-SEG refers to none of the {len(reference.instance_uids)} slices of its image "
            f"{reference_path}", kind="geometry_mismatch")
    try:
        labels = segmentation.get_pixels_by_source_instance(
            source_sop_instance_uids=list(reference.instance_uids), combine_segments=True)
    except RuntimeError as error:
        # highdicom refuses to combine overlapping segments into one label map.
        raise ImageReadError(path, f"the DICOM-SEG's segments overlap, so they cannot be one label map: {error}",
                             kind="unsupported") from error
    labels = np.asarray(labels)
    if reference.array.ndim == 2:
        labels = labels[0]
    if labels.shape != reference.array.shape:
        raise ImageReadError(
            path, f"the DICOM-SEG's frames are {labels.shape[-2:]} but its image {reference_path} is "
            f"{reference.array.shape[-2:]}", kind="size_mismatch")
    return ImageArray(array=labels, spacing=reference.spacing, spacing_unit=reference.spacing_unit,
                      dtype=str(labels.dtype), origin=reference.origin, direction=reference.direction,
                      series_uid=reference.series_uid, instance_uids=reference.instance_uids)
