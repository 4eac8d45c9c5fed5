"""Progress of long steps: counts and time left, plain lines off a terminal, a failed stage never "done"."""

from __future__ import annotations

import io
import logging
import re

import pytest

from dlradiomics.progress import Progress, format_duration
from dlradiomics.study.stage_timer import StageTimer


class FakeClock:
    """perf_counter stand-in: the test decides how much time passes."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr("dlradiomics.progress.time.perf_counter", fake)
    return fake


def test_durations_read_like_a_person_wrote_them():
    assert format_duration(8.4) == "8 s"
    assert format_duration(125) == "2 min 5 s"
    assert format_duration(3 * 3600 + 7 * 60 + 9) == "3 h 7 min"
    assert format_duration(float("nan")) == "unknown"


def test_off_a_terminal_progress_is_plain_lines_with_counts_and_time_left(clock):
    stream = io.StringIO()  # not a terminal: no carriage returns may reach it
    with Progress(10, "embedding", unit="ROI", stream=stream, interval_s=5) as bar:
        clock.now += 2
        bar.update(2)  # within the interval: no line yet
        clock.now += 6  # 8 s for 3 ROIs
        bar.update()
        clock.now += 20
        bar.update(7)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0] == "embedding: 0/10 ROIs (0%), 0 s elapsed"
    # 3 ROIs in 8 s -> 7 left take about 8 / 3 * 7 = 18.7 s
    assert lines[1] == "embedding: 3/10 ROIs (30%), 8 s elapsed, about 19 s left"
    assert lines[-1] == "embedding: 10/10 ROIs in 28 s"
    assert len(lines) == 3


def test_time_left_counts_only_the_items_done_now_not_those_read_from_a_cache(clock):
    stream = io.StringIO()
    bar = Progress(100, "radiomic features", unit="ROI", stream=stream, initial=90, interval_s=0)
    clock.now += 10
    bar.update(5)  # 5 computed in 10 s, 5 left -> 10 s
    assert bar.line() == "radiomic features: 95/100 ROIs (95%), 10 s elapsed, about 10 s left"
    bar.close()


def test_a_step_that_raises_writes_no_closing_line(clock):
    stream = io.StringIO()
    with pytest.raises(RuntimeError):
        with Progress(4, "Grad-CAM overlays", unit="image", stream=stream) as bar:
            bar.update()
            raise RuntimeError("boom")
    assert " in " not in stream.getvalue().splitlines()[-1]


def test_disabled_progress_writes_nothing():
    stream = io.StringIO()
    with Progress(3, "QA", unit="image", stream=stream, enabled=False) as bar:
        bar.update(3)
    assert stream.getvalue() == ""


def test_a_failed_stage_is_reported_failed_and_never_done(capsys, caplog):
    timer = StageTimer(progress=True)
    caplog.set_level(logging.INFO, logger="dlradiomics")
    with pytest.raises(ValueError, match="no configuration"):
        with timer.stage("experiment grid [nested]", spinner=True):
            raise ValueError("no configuration [could] run")
    err = capsys.readouterr().err
    assert re.search(r"failed experiment grid \[nested\] after \d+ s: ValueError: no configuration \[could\] run", err)
    assert "done" not in err
    assert timer.failed == "experiment grid [nested]"
    assert any("stage failed: experiment grid" in record.getMessage() for record in caplog.records)
    assert not any("stage finished" in record.getMessage() for record in caplog.records)
