"""Times the stages of a study run and shows each one's start and end on the console."""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
from rich.console import Console
from rich.markup import escape

from dlradiomics.progress import format_duration

logger = logging.getLogger(__name__)


def process_tree_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process, its live descendants and its reaped children.

    Worker processes (joblib's loky workers, a local Dask cluster) outlive a stage, so their
    CPU time is read while they live; children that ended and were waited for are counted by
    the operating system under this process. A descendant that ends between two readings
    without being waited for is missed, so this is a lower bound.
    """
    total = sum(psutil.Process(os.getpid()).cpu_times()[:2])
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + reaped.ru_utime + reaped.ru_stime


class StageTimer:
    """Logs each stage's start and end (or failure) with rich status output, and keeps the wall and CPU times.

    Args:
        progress: show the stage headings and spinners (the log records are written either way).
    """

    def __init__(self, progress: bool):
        self.console = Console(stderr=True, quiet=not progress)
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.failed: str | None = None
        self.cpu_seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, *, spinner: bool = False) -> Iterator[None]:
        """Time one stage under a rich heading.

        Args:
            name: the stage's name.
            spinner: show a live spinner with the elapsed time, for stages without progress lines
                of their own (extraction shows tqdm bars and the grid its own progress, which a
                live display would garble); never on a console that is not a terminal.
        """
        self.console.rule(f"[bold]{escape(name)}")
        logger.info("stage started: %s", name)
        started = time.perf_counter()
        cpu_started = process_tree_cpu_seconds()
        try:
            if spinner and self.console.is_terminal:
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
        self.cpu_seconds[name] = process_tree_cpu_seconds() - cpu_started
        logger.info("stage finished: %s (%.1f s, %.1f CPU-s)", name, self.seconds[name], self.cpu_seconds[name])
        self.console.print(f"[green]done[/green] {escape(name)} in {format_duration(self.seconds[name])}")
