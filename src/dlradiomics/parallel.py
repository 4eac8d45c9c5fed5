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
from concurrent.futures import FIRST_COMPLETED, Future, wait
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
        Whatever a task raises, as soon as it is seen; no further task starts (tasks already
        running end on their own).
    """
    if n_jobs < 2:
        raise ValueError(f"n_jobs must be at least 2 (this process and a worker), got {n_jobs}")
    threads_per_worker = max((os.cpu_count() or 1) // n_jobs, 1)
    pending = _SharedTasks(tasks)
    done_here: queue.Queue = queue.Queue()

    def run_here() -> None:
        try:
            with threadpool_limits(limits=threads_per_worker):
                while (task := pending.take()) is not _NO_MORE:
                    done_here.put((True, function(task, shared)))
        except BaseException as error:  # noqa: BLE001 - handed to the consuming thread, raised there
            pending.stopped = True
            done_here.put((False, error))
        finally:
            done_here.put((True, _NO_MORE))

    with tempfile.TemporaryDirectory(prefix="dlradiomics-shared-") as folder:
        shared_path = str(Path(folder) / "shared.joblib")
        joblib.dump(shared, shared_path)
        # joblib's own loky executor, so that joblib's parallel loops elsewhere find the executor
        # they expect (they start their own when its settings differ)
        executor = get_memmapping_executor(n_jobs - 1, timeout=300,
                                           env=dict.fromkeys(_THREAD_VARIABLES, str(threads_per_worker)))
        local = threading.Thread(target=run_here, name="dlradiomics-tasks-here", daemon=True)
        local.start()
        running: set[Future] = set()
        local_running = True
        try:
            while True:
                while len(running) < n_jobs - 1 and (task := pending.take()) is not _NO_MORE:
                    running.add(executor.submit(_run_in_worker, function, task, shared_path))
                while True:  # what this process finished meanwhile
                    try:
                        ok, value = done_here.get_nowait()
                    except queue.Empty:
                        break
                    if not ok:
                        raise value
                    if value is _NO_MORE:
                        local_running = False
                    else:
                        yield value
                if not running and not local_running:
                    return
                if running:
                    finished, running = wait(running, timeout=0.05, return_when=FIRST_COMPLETED)
                    for future in finished:
                        yield future.result()
                else:
                    ok, value = done_here.get()
                    done_here.put((ok, value))  # handled at the top of the loop
        finally:
            # a consumer that stops early, or an error, starts nothing new; the worker processes'
            # tasks are cancelled where they have not started, and this process's task ends on its own
            pending.stopped = True
            for future in running:
                future.cancel()
            local.join()
