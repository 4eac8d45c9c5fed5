"""`Study`: one study file to a run folder with the report, the tables, the figures and the fitted model."""

from __future__ import annotations

from pathlib import Path

from dlradiomics.study.run import StudyResult, run_study
from dlradiomics.study.settings import StudySettings


class Study:
    """A study described by settings; `run()` does everything the study file asks.

    Args:
        settings: the validated study settings.
    """

    def __init__(self, settings: StudySettings):
        self.settings = settings

    @classmethod
    def from_yaml(cls, path: str | Path) -> Study:
        """Read a study file.

        Args:
            path: the study YAML.

        Raises:
            StudySettingsError: the file is missing or holds an invalid setting.
        """
        return cls(StudySettings.from_yaml(path))

    def run(self, *, progress: bool = True, opening: str | None = None) -> StudyResult:
        """Run the study into a new run folder (see `dlradiomics.study.run.run_study` for the stages).

        Args:
            progress: show a progress display for each long stage.
            opening: the report's first sentence (default: the study's `report.note`).

        Returns:
            The `StudyResult` with the paths of the report and the bundle.
        """
        return run_study(self.settings, progress=progress, opening=opening)
