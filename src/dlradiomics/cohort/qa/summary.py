"""The QA summary for people, and the files QA writes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dlradiomics.cohort.problems import ManifestProblem
from dlradiomics.cohort.qa.flags import QA_FLAGS
from dlradiomics.io.atomic import write_csv_atomic, write_text_atomic


@dataclass
class QaSummary:
    """What QA found, for people: counts per flag, duplicate pairs, manifest problems.

    Attributes:
        n_rows: rows checked.
        n_patients: distinct patients among them.
        n_flagged: rows with at least one flag.
        flag_counts: rows carrying each flag (flags with no row are left out).
        duplicate_pairs: ``roi_a, roi_b, kind (exact|near), distance, same_patient, same_label``.
        manifest_problems: problems found when the manifest was validated (rows not checked).
        settings: the thresholds used.
    """

    n_rows: int
    n_patients: int
    n_flagged: int
    flag_counts: dict[str, int]
    duplicate_pairs: pd.DataFrame
    manifest_problems: list[ManifestProblem] = field(default_factory=list)
    settings: dict[str, float] = field(default_factory=dict)

    def to_markdown(self) -> str:
        """A short human summary in Markdown."""
        lines = [
            "# Data QA summary",
            "",
            f"- rows checked: {self.n_rows} ({self.n_patients} patients); rows with a flag: {self.n_flagged}",
            f"- manifest problems (rows left out of QA): {len(self.manifest_problems)}",
            f"- settings: {', '.join(f'{k} = {v}' for k, v in self.settings.items())}",
            "",
            "## Flags",
            "",
        ]
        if self.flag_counts:
            lines += ["| flag | rows | meaning |", "|---|---:|---|"]
            lines += [f"| {flag} | {count} | {QA_FLAGS[flag]} |" for flag, count in self.flag_counts.items()]
        else:
            lines.append("No case was flagged.")
        across = self.duplicate_pairs[~self.duplicate_pairs["same_patient"]] if len(self.duplicate_pairs) else []
        lines += ["", "## Duplicates across patients", ""]
        if len(across):
            lines += ["| roi a | roi b | kind | distance | same label |", "|---|---|---|---:|---|"]
            shown = across.head(50)
            lines += [
                f"| {r.roi_a} | {r.roi_b} | {r.kind} | {r.distance} | {'yes' if r.same_label else '**no**'} |"
                for r in shown.itertuples()
            ]
            if len(across) > len(shown):
                lines.append(f"\n... and {len(across) - len(shown)} more pairs (see qa_duplicates.csv).")
        else:
            lines.append("None found.")
        if self.manifest_problems:
            lines += ["", "## Manifest problems", ""] + [f"- {problem}" for problem in self.manifest_problems[:50]]
        return "\n".join(lines) + "\n"


def write_qa_report(table: pd.DataFrame, summary: QaSummary, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``qa.csv``, ``qa_duplicates.csv`` and ``qa_summary.md`` into ``out_dir``.

    Args:
        table: the per-row table of :func:`run_qa`.
        summary: its summary.
        out_dir: folder to write into; created if needed.

    Returns:
        The paths written, by name.
    """
    out = Path(out_dir)
    paths = {"table": out / "qa.csv", "duplicates": out / "qa_duplicates.csv", "summary": out / "qa_summary.md"}
    write_csv_atomic(table, paths["table"])
    write_csv_atomic(summary.duplicate_pairs, paths["duplicates"])
    write_text_atomic(paths["summary"], summary.to_markdown())
    return paths
