"""The one error type of the io room."""

from __future__ import annotations

import os

ERROR_KINDS = ("missing", "unreadable", "unsupported", "size_mismatch", "geometry_mismatch", "empty_mask",
               "label_missing", "bad_slice",
               # an ROI that reads but cannot be a lesion and its image (see dlradiomics.io.plausibility)
               "mask_is_image", "swapped_image_mask", "full_frame_mask", "inverted_mask", "non_finite_pixels")


class ImageReadError(ValueError):
    """An image or mask that cannot be used: missing, unreadable, corrupt, wrong size, empty.

    Args:
        path: the file at fault.
        problem: what is wrong with it, in words a user can act on.
        kind: a stable code for programs (QA tables, failure counts): one of :data:`ERROR_KINDS`.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, kind: str = "unreadable"):
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown ImageReadError kind {kind!r}; expected one of {ERROR_KINDS}")
        self.path = str(path)
        self.problem = problem
        self.kind = kind
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        # Worker processes send errors back pickled; rebuild from the fields, not from the message.
        return (type(self), (self.path, self.problem, self.kind))
