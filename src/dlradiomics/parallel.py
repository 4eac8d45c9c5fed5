"""Independent tasks on local worker processes, with the calling process as one of the workers.

A fresh worker process imports what its tasks need before it runs the first one: for the grid's
cells that is scikit-learn, SciPy, pandas and the package's models, 2 CPU-seconds per worker. The
calling process has imported them already, so with ``n_jobs`` workers wanted it runs tasks itself,
on a thread of its own, beside ``n_jobs - 1`` of joblib's loky worker processes, and every
task still runs exactly once. The tasks are taken in the order given, each by whichever worker is
free first.

A leaf: it imports nothing of the package, so every floor may use it.
"""

from __future__ import annotations

import functools
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import joblib
from joblib.executor import get_memmapping_executor
from threadpoolctl import threadpool_limits

Task = TypeVar("Task")
Result = TypeVar("Result")

# What loky and joblib set in a worker's environment to cap its BLAS and OpenMP threads.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_NO_MORE = object()


class _SharedTasks:
    """The tasks, handed out one at a time to whichever thread asks, until they run out or the map stops."""

    def __init__(self, tasks: Iterable[Any]):
        self._tasks = iter(tasks)
        self._lock = threading.Lock()
        self.stopped = False

    def take(self) -> Any:
        with self._lock:
            return _NO_MORE if self.stopped else next(self._tasks, _NO_MORE)


@functools.lru_cache(maxsize=1)
def _shared_in_worker(path: str) -> Any:
    # once per worker and map: the large arrays are memory-mapped from the file, not copied
    return joblib.load(path, mmap_mode="r")


def _run_in_worker(function: Callable[[Any, Any], Any], task: Any, shared_path: str) -> Any:
    return function(task, _shared_in_worker(shared_path))


def map_unordered_here_and_in_processes(
    function: Callable[[Task, Any], Result], tasks: Iterable[Task], shared: Any, n_jobs: int
) -> Iterator[Result]:
    """``function(task, shared)`` for every task, yielded as each finishes; this process is one of ``n_jobs`` workers.

    ``n_jobs - 1`` tasks at a time run in loky's worker processes (fresh interpreters, not forks of
    a parent that holds threads) and one on a thread of this process, each under the BLAS/OpenMP
    thread limit of one of ``n_jobs`` workers. ``shared`` (the large read-only data every task
    reads) travels to each worker process once, through a file it memory-maps, not with every
    task. ``function``, the tasks and the results must be picklable.

    Args:
        function: what to run: ``function(task, shared)``.
        tasks: the tasks, in the order to start them.
        shared: what every task reads; never modified.
        n_jobs: workers in all, this process included (at least 2).

    Yields:
        The results, in the order they finish.

    Raises:
        Whatever a task raises, once the task running in this process (if any) has finished: no
        further task starts, and the workers' tasks not yet started are cancelled.
    """
    if n_jobs < 2:
        raise ValueError(f"n_jobs must be at least 2 (this process and a worker), got {n_jobs}")
    threads_per_worker = max((os.cpu_count() or 1) // n_jobs, 1)
    pending = _SharedTasks(tasks)
    # One queue for both kinds of finished work: a worker's future (its done-callback puts it here)
    # and this process's ``(ok, result)``, so the loop below sleeps until something finishes.
    finished: queue.Queue = queue.Queue()

    def run_here() -> None:
        try:
            with threadpool_limits(limits=threads_per_worker):
                while (task := pending.take()) is not _NO_MORE:
                    finished.put((True, function(task, shared)))
        except BaseException as error:  # noqa: BLE001 - handed to the consuming thread, raised there
            pending.stopped = True
            finished.put((False, error))
        finally:
            finished.put((True, _NO_MORE))

    with tempfile.TemporaryDirectory(prefix="dlradiomics-shared-") as folder:
        shared_path = str(Path(folder) / "shared.joblib")
        joblib.dump(shared, shared_path)
        # joblib's own loky executor, so that joblib's parallel loops elsewhere find the executor
        # they expect (they start their own when its settings differ)
        executor = get_memmapping_executor(n_jobs - 1, timeout=300,
                                           env=dict.fromkeys(_THREAD_VARIABLES, str(threads_per_worker)))
        submitted: list[Future] = []

        def submit_next() -> bool:
            task = pending.take()
            if task is _NO_MORE:
                return False
            future = executor.submit(_run_in_worker, function, task, shared_path)
            submitted.append(future)
            future.add_done_callback(finished.put)
            return True

        local = threading.Thread(target=run_here, name="dlradiomics-tasks-here", daemon=True)
        local.start()
        in_workers = sum(submit_next() for _ in range(n_jobs - 1))
        here_running = True
        try:
            while in_workers or here_running:
                item = finished.get()
                if isinstance(item, Future):
                    in_workers -= 1
                    result = item.result()  # a task's error is raised here
                    in_workers += submit_next()
                    yield result
                    continue
                ok, value = item
                if not ok:
                    raise value
                if value is _NO_MORE:
                    here_running = False
                else:
                    yield value
        finally:
            # a consumer that stops early, or an error, starts nothing new; the workers' tasks not
            # started are cancelled, and the task running here is waited for, so that no thread of
            # this map outlives it
            pending.stopped = True
            for future in submitted:
                future.cancel()
            local.join()
