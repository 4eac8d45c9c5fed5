"""What can be wrong with a manifest, and the error that lists all of it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ManifestProblem:
    """One problem found in a manifest.

    Args:
        row: 1-based data row (the first row under the CSV header, or the first YAML list item,
            is row 1); ``None`` for a problem of the whole file, such as a missing column.
        patient_id: the row's patient, or ``None`` when unknown.
        column: the column at fault; empty for a problem of the file as a whole.
        message: what is wrong, and where relevant which file.
    """

    row: int | None
    patient_id: str | None
    column: str
    message: str

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        who = f", patient {self.patient_id}" if self.patient_id else ""
        column = f", column {self.column}" if self.column else ""
        return f"{where}{who}{column}: {self.message}"


class ManifestError(ValueError):
    """A manifest with problems; the message lists every one of them, one per line.

    Args:
        source: the manifest file (or a description of the table).
        problems: every problem found.
    """

    def __init__(self, source: str, problems: list[ManifestProblem]):
        self.source = source
        self.problems = list(problems)
        lines = [f"{source}: {len(self.problems)} problem(s) in the manifest:"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))
