"""Times the stages of a study run and shows each one's start and end on the console."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

logger = logging.getLogger(__name__)


class StageTimer:
    """Logs each stage's start and end with rich status output, and keeps the wall times.

    Args:
        progress: show the stage headings and spinners (the log records are written either way).
    """

    def __init__(self, progress: bool):
        self.console = Console(stderr=True, quiet=not progress)
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, *, spinner: bool = False) -> Iterator[None]:
        """Time one stage under a rich heading.

        Args:
            name: the stage's name.
            spinner: show a live spinner with the elapsed time, for stages without progress bars
                of their own (extraction shows tqdm bars, which a live display would garble).
        """
        self.console.rule(f"[bold]{name}")
        logger.info("stage started: %s", name)
        started = time.perf_counter()
        try:
            if spinner:
                with self.console.status(f"{name} ..."):
                    yield
            else:
                yield
        finally:
            self.seconds[name] = time.perf_counter() - started
            logger.info("stage finished: %s (%.1f s)", name, self.seconds[name])
            self.console.print(f"[green]done[/green] {name} in {self.seconds[name]:.1f} s")
