"""Times the stages of a study run and shows each one's start and end on the console."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

from dlradiomics.progress import format_duration

logger = logging.getLogger(__name__)


class StageTimer:
    """Logs each stage's start and end (or failure) with rich status output, and keeps the wall times.

    Args:
        progress: show the stage headings and spinners (the log records are written either way).
    """

    def __init__(self, progress: bool):
        self.console = Console(stderr=True, quiet=not progress)
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.failed: str | None = None

    @contextmanager
    def stage(self, name: str, *, spinner: bool = False) -> Iterator[None]:
        """Time one stage under a rich heading.

        Args:
            name: the stage's name.
            spinner: show a live spinner with the elapsed time, for stages without progress bars
                of their own (extraction shows tqdm bars, which a live display would garble).
        """
        self.console.rule(f"[bold]{escape(name)}")
        logger.info("stage started: %s", name)
        started = time.perf_counter()
        try:
            if spinner:
                with self.console.status(f"{name} ..."):
                    yield
            else:
                yield
        except BaseException as error:
            # A stage that raised is reported failed, never "done"; the run's error handler writes
            # the traceback to run.log.
            self.seconds[name] = time.perf_counter() - started
            self.failed = name
            logger.error("stage failed: %s after %.1f s: %s: %s", name, self.seconds[name], type(error).__name__,
                         error)
            self.console.print(f"[red]failed[/red] {escape(name)} after {format_duration(self.seconds[name])}: "
                               f"{escape(type(error).__name__)}: {escape(str(error))}", highlight=False, soft_wrap=True)
            raise
        self.seconds[name] = time.perf_counter() - started
        logger.info("stage finished: %s (%.1f s)", name, self.seconds[name])
        self.console.print(f"[green]done[/green] {escape(name)} in {format_duration(self.seconds[name])}")
