"""Progress of the grid (and its canary) on the console and in the run log: counts and time left.

On a terminal a live bar shows configuration-folds done, cells done, elapsed time and the time
left; anywhere else (a log file, a pipe, CI) a plain line is printed every few seconds, so a
long stage is never silent. The run log gets a line every half minute either way.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from dlradiomics.evaluation.scheduling import GridProgress
from dlradiomics.progress import format_duration

logger = logging.getLogger(__name__)
PLAIN_INTERVAL_S = 5.0
LOG_INTERVAL_S = 30.0


def describe_progress(label: str, state: GridProgress, elapsed_s: float) -> str:
    """One line: what is done, of how much, for how long, and the time left at the pace so far."""
    eta = state.eta_s
    if eta is not None:
        # Between cells the estimate counts down from the last one.
        eta = max(0.0, eta - (elapsed_s - state.elapsed_s))
    left = "estimating the time left" if eta is None else f"about {format_duration(eta)} left"
    return (f"{label}: {state.units_done}/{state.units_total} configuration-folds, "
            f"{state.cells_done}/{state.cells_total} cells, {format_duration(elapsed_s)} elapsed, {left}")


class GridProgressDisplay:
    """A `dlradiomics.evaluation.scheduling.ProgressCallback` that shows the grid's progress.

    Use as a context manager around the grid and pass the object as its ``progress``.

    Args:
        label: what runs (e.g. ``"grid and canary"``).
        console: where to show it (stderr); a quiet console shows nothing (the log still gets lines).
        plain_interval_s: seconds between plain lines when the console is not a terminal.
    """

    def __init__(self, label: str, console: Console, *, plain_interval_s: float = PLAIN_INTERVAL_S):
        self.label = label
        self.console = console
        self.plain_interval_s = plain_interval_s
        self._state: GridProgress | None = None
        self._started = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Progress | None = None
        self._task = None

    def __enter__(self) -> GridProgressDisplay:
        self._started = time.perf_counter()
        live = not self.console.quiet and self.console.is_terminal
        if live:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                 TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=self.console,
                                 transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=None, detail="")
        self._thread = threading.Thread(target=self._heartbeat, args=(not live,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.stop()
        if self._state is not None and kind is None:
            line = describe_progress(self.label, self._state, time.perf_counter() - self._started)
            logger.info(line)
            if self._bar is None and not self.console.quiet:
                self.console.print(line, markup=False, highlight=False)

    def __call__(self, state: GridProgress) -> None:
        """Take a new state (called by the grid as cells finish)."""
        with self._lock:
            self._state = state
        if self._bar is not None:
            self._bar.update(self._task, total=state.units_total, completed=state.units_done,
                             detail=self._detail(state))

    def _detail(self, state: GridProgress) -> str:
        line = describe_progress(self.label, state, time.perf_counter() - self._started)
        return line.split(": ", 1)[1].split(" configuration-folds, ", 1)[1]

    def _heartbeat(self, plain: bool) -> None:
        last_log = time.perf_counter()
        while not self._stop.wait(self.plain_interval_s if plain else 1.0):
            with self._lock:
                state = self._state
            if state is None:
                continue
            now = time.perf_counter()
            line = describe_progress(self.label, state, now - self._started)
            if plain and not self.console.quiet:
                self.console.print(line, markup=False, highlight=False)
            elif self._bar is not None:
                self._bar.update(self._task, detail=self._detail(state))
            if now - last_log >= LOG_INTERVAL_S:
                logger.info(line)
                last_log = now
