"""The manifest's column names, in the order every cohort table carries them."""

REQUIRED_COLUMNS = ("patient_id", "modality", "image", "mask", "label")
OPTIONAL_TEXT_COLUMNS = ("view", "group")
OPTIONAL_INTEGER_COLUMNS = ("mask_label", "slice")
FOLD_COLUMN = "fold"
# `site` is the multi-centre spelling of `group`; both mean "which centre / scanner / batch".
COLUMN_ALIASES = {"site": "group"}
PATH_COLUMNS = ("image", "mask")
TABLE_COLUMNS = ("roi_id",) + REQUIRED_COLUMNS + OPTIONAL_TEXT_COLUMNS + OPTIONAL_INTEGER_COLUMNS
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_TEXT_COLUMNS + OPTIONAL_INTEGER_COLUMNS + (FOLD_COLUMN,)
# Set by the CSV reader on a row it could not split into the header's columns; validation turns a
# non-empty value into a problem of that row and never keeps the column.
PARSE_PROBLEM_COLUMN = "__parse_problem__"
