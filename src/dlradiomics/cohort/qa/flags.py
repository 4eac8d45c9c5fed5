"""The names of the QA flags and what each means (the vocabulary of ``qa.csv``'s ``flags`` column)."""

QA_FLAGS = {
    "unreadable_image": "image file missing or unreadable",
    "unreadable_mask": "mask file missing or unreadable",
    "size_mismatch": "mask size differs from image size",
    "empty_mask": "mask holds no lesion",
    "label_missing": "mask_label value absent from the mask",
    "bad_slice": "slice missing or out of range",
    "mask_is_image": "the mask file holds the image's own pixels",
    "swapped_image_mask": "image and mask look swapped (a two-level image, a many-level mask)",
    "full_frame_mask": "the mask covers the whole image: it cannot outline a lesion",
    "inverted_mask": "lesion and background look inverted (the lesion surrounds the background)",
    "non_finite_pixels": "the image holds NaN or infinite values",
    "tiny_mask": "lesion smaller than the tiny-mask threshold",
    "several_components": "lesion made of several separate regions",
    "touches_border": "lesion touches the image border (cut off?)",
    "flat_roi": "one grey value inside the lesion (texture features are undefined)",
    "flat_image": "one grey value in the whole image",
    "exact_duplicate": "pixel-identical to another row",
    "duplicate_across_patients": "pixel-identical image under another patient",
    "duplicate_across_labels": "pixel-identical image with the other label",
    "near_duplicate_across_patients": "perceptually near-identical image under another patient",
    "near_duplicate_across_labels": "perceptually near-identical image with the other label",
    "qa_error": "the check itself failed (see error)",
}

# The manifest column each flag points at (the file to look at); flags not listed are about the image.
_MASK_FLAGS = {"unreadable_mask", "size_mismatch", "empty_mask", "label_missing", "mask_is_image",
               "swapped_image_mask", "full_frame_mask", "inverted_mask", "tiny_mask", "several_components",
               "touches_border", "flat_roi"}


def flag_column(flag: str) -> str:
    """The manifest column a QA flag is about: ``mask``, ``slice`` or ``image``."""
    if flag in _MASK_FLAGS:
        return "mask"
    return "slice" if flag == "bad_slice" else "image"
