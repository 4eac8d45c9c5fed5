"""Tasks on local worker processes with the calling process as one of the workers (dlradiomics.parallel)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from dlradiomics.parallel import map_unordered_here_and_in_processes


def _where_and_what(task: int, shared: dict) -> tuple[int, int, float, bool]:
    time.sleep(0.05)  # long enough that both workers take tasks
    values = shared["values"]
    return task, os.getpid(), float(values[task]), bool(values.flags.writeable)


def _fail_on_three(task: int, shared: dict) -> int:
    if task == 3:
        raise ValueError(f"task {task} cannot run")
    time.sleep(0.02)
    return task


def test_every_task_runs_once_here_or_in_a_worker_reading_the_shared_data():
    shared = {"values": np.arange(200_000, dtype=float) * 0.5}  # 1.6 MB: memory-mapped in the worker
    results = list(map_unordered_here_and_in_processes(_where_and_what, range(16), shared, n_jobs=2))

    assert sorted(task for task, *_ in results) == list(range(16))
    assert all(value == task * 0.5 for task, _, value, _ in results)
    pids = {pid for _, pid, _, _ in results}
    assert os.getpid() in pids and len(pids) == 2, "this process and one worker process both ran tasks"
    # here the object itself; in the worker a read-only memory map of the file it was sent as
    assert {writeable for _, pid, _, writeable in results if pid == os.getpid()} == {True}
    assert {writeable for _, pid, _, writeable in results if pid != os.getpid()} == {False}


def test_a_failing_task_raises_its_error_here():
    with pytest.raises(ValueError, match="task 3 cannot run"):
        list(map_unordered_here_and_in_processes(_fail_on_three, range(40), None, n_jobs=2))


def test_fewer_than_two_workers_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        list(map_unordered_here_and_in_processes(_where_and_what, range(3), None, n_jobs=1))


def _sleep_briefly(task: int, shared: None) -> int:
    time.sleep(0.02)
    return task


def test_a_consumer_that_stops_early_ends_the_map_without_running_the_rest():
    started = time.perf_counter()
    results = map_unordered_here_and_in_processes(_sleep_briefly, range(1000), None, n_jobs=2)
    first = next(results)
    results.close()  # 1,000 tasks of 20 ms: running them all would take 10 s
    assert first in range(1000)
    assert time.perf_counter() - started < 5
