"""Counts and time left for the long steps of a run: a bar on a terminal, plain lines in a log.

A leaf: it imports nothing of the package, so every floor (cohort's QA, the deep features, the
grid, the study's stages) reports progress the same way. On a terminal the step is a tqdm bar
(count, rate, time left). When the output is not a terminal (a log file, CI, `nohup`), a bar's
carriage returns would garble the file, so the step writes a plain line instead every
`interval_s` seconds, e.g. ``embedding: 400/1875 ROIs (21%), 48 s elapsed, about 2 min 57 s left``,
and one closing line with the total time.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from types import TracebackType
from typing import TextIO

logger = logging.getLogger(__name__)

PLAIN_INTERVAL_S = 15.0


def format_duration(seconds: float) -> str:
    """A duration for people: ``"8 s"``, ``"2 min 5 s"``, ``"1 h 3 min"``.

    Args:
        seconds: the duration (negative or non-finite values read as unknown).
    """
    if not math.isfinite(seconds) or seconds < 0:
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


def is_terminal(stream: TextIO) -> bool:
    """Whether a stream is an interactive terminal (a closed or odd stream counts as not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """Progress of one step of known size: how many done, how long so far, about how long left.

    Use it as a context manager; a step that raises ends its display without a closing "done"
    line (the caller reports the failure).

    Args:
        total: items the step will process (those already done count in `initial`).
        description: what the step does, e.g. ``"embedding"`` or ``"Grad-CAM overlays"``.
        unit: what one item is, e.g. ``"ROI"`` (shown after the counts).
        enabled: show anything at all (``--no-progress`` turns it off).
        stream: where to write (default: stderr, read at construction).
        initial: items already done before the step started (e.g. read from a cache); the time
            left is estimated from the items done in this step only.
        interval_s: seconds between plain lines when the stream is not a terminal.
        terminal: force the terminal (bar) or plain-line display; default: ask the stream.
    """

    def __init__(self, total: int, description: str, *, unit: str = "item", enabled: bool = True,
                 stream: TextIO | None = None, initial: int = 0, interval_s: float = PLAIN_INTERVAL_S,
                 terminal: bool | None = None):
        self.total = int(total)
        self.description = description
        self.unit = unit
        self.done = int(initial)
        self._initial = int(initial)
        self._stream = sys.stderr if stream is None else stream
        self._enabled = enabled and self.total > 0
        self._interval_s = interval_s
        self._started = time.perf_counter()
        self._last_line = self._started
        self._bar = None
        self._terminal = is_terminal(self._stream) if terminal is None else terminal
        if not self._enabled:
            return
        if self._terminal:
            from tqdm.auto import tqdm  # imported on use: plain-line runs never need it

            self._bar = tqdm(total=self.total, initial=self.done, desc=description, unit=unit, file=self._stream,
                             dynamic_ncols=True)
        else:
            self._write(self.line())

    @property
    def elapsed_s(self) -> float:
        """Seconds since the step started."""
        return time.perf_counter() - self._started

    def remaining_s(self) -> float:
        """Estimated seconds left, from the pace of the items done in this step (NaN before the first)."""
        processed = self.done - self._initial
        if processed <= 0:
            return math.nan
        return self.elapsed_s / processed * max(self.total - self.done, 0)

    def line(self) -> str:
        """The plain progress line of the moment."""
        percent = 100 * self.done / self.total if self.total else 100.0
        text = (f"{self.description}: {self.done}/{self.total} {self.unit}s ({percent:.0f}%), "
                f"{format_duration(self.elapsed_s)} elapsed")
        remaining = self.remaining_s()
        if self.done < self.total and math.isfinite(remaining):
            text += f", about {format_duration(remaining)} left"
        return text

    def update(self, count: int = 1) -> None:
        """Count `count` more items as done."""
        self.done = min(self.done + count, self.total) if self.total else self.done + count
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(count)
            return
        now = time.perf_counter()
        if now - self._last_line >= self._interval_s and self.done < self.total:
            self._last_line = now
            self._write(self.line())

    def close(self, *, completed: bool = True) -> None:
        """End the display; a completed step writes its closing line (and logs it)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if completed:
            summary = (f"{self.description}: {self.done}/{self.total} {self.unit}s in "
                       f"{format_duration(self.elapsed_s)}")
            logger.info(summary)
            # A terminal bar already shows the final count; plain-line output needs a last line.
            if self._enabled and not self._terminal:
                self._write(summary)
        self._enabled = False

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # a closed pipe must not fail the computation it reports on
            self._enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close(completed=kind is None)
