"""The names of the QA flags and what each means (the vocabulary of ``qa.csv``'s ``flags`` column)."""

QA_FLAGS = {
    "unreadable_image": "image file missing or unreadable",
    "unreadable_mask": "mask file missing or unreadable",
    "size_mismatch": "mask size differs from image size",
    "empty_mask": "mask holds no lesion",
    "label_missing": "mask_label value absent from the mask",
    "bad_slice": "slice missing or out of range",
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
