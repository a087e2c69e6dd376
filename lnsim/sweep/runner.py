"""Run a sweep's unfinished tasks through joblib (local worker processes, or a Dask cluster), saving each result
as soon as it arrives, under one progress bar with ETA."""

from __future__ import annotations

import contextlib
import sys

from lnsim.sweep.store import PointStore
from lnsim.sweep.tasks import RESULT_FORMAT, run_task
from lnsim.validation import check_choice

__all__ = ["BACKENDS", "TaskFailed", "check_backend", "load_finished", "run_tasks"]


class TaskFailed(RuntimeError):
    """A sweep task raised: the message names the task and the original error, on one line."""


def _describe(task) -> str:
    m = task.meta
    what = [m.get("series", task.kind)] + [f"{name} {m[name]}" for name in ("bits", "seed") if m.get(name) is not None]
    return ", ".join(str(x) for x in what)


def _run_named(task):
    """:func:`run_task`, re-raising any error as :class:`TaskFailed` that names the task (in the worker)."""
    try:
        return run_task(task)
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise TaskFailed(f"{_describe(task)}: {type(e).__name__}: {first}") from None

#: joblib backends ``--backend`` accepts: local processes, or a Dask cluster at ``--scheduler``.
BACKENDS = ("loky", "dask")


def check_backend(backend: str, scheduler: str | None, jobs: int) -> None:
    """Raise ``ValueError`` (one line) unless ``backend`` can run here with ``scheduler`` and ``jobs``."""
    check_choice("backend", backend, BACKENDS)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not (1 <= jobs <= 1024 or jobs == -1):
        raise ValueError(f"jobs must be an integer in 1..1024 or -1 (one per core), not {jobs!r}")
    if backend == "dask":
        if not scheduler:
            raise ValueError("scheduler must be given with --backend dask, e.g. --scheduler tcp://host:8786")
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise ValueError("backend dask needs the distributed package: pip install distributed "
                             "(or pip install 'lnsim[dask]')") from None
    elif scheduler:
        raise ValueError(f"scheduler applies to --backend dask, not to {backend!r}")


@contextlib.contextmanager
def _backend(backend: str, scheduler: str | None, jobs: int):
    from joblib import parallel_config

    if backend == "dask":
        from distributed import Client

        with Client(scheduler), parallel_config(backend="dask"):
            yield -1
    else:
        with parallel_config(backend="loky"):
            yield jobs


def load_finished(tasks, store: PointStore, log) -> dict:
    """The stored records of ``tasks`` by key; a damaged file is reported through ``log`` and left to recompute."""
    done = {}
    for task in tasks:
        record, problem = store.load(task.key, RESULT_FORMAT)
        if problem:
            log(f"warning: {problem}; recomputing it")
        if record is not None:
            done[task.key] = record
    return done


def run_tasks(tasks, store: PointStore, *, jobs: int = 1, backend: str = "loky", scheduler: str | None = None,
              progress: bool = True, log=None, on_record=None) -> dict:
    """Run every task of ``tasks`` that ``store`` does not hold yet; return all their records by key.

    Each record is saved the moment it arrives (so an interruption loses only the tasks in flight), then
    ``on_record(record)`` is called. ``progress``: one tqdm bar over all tasks on stderr (only on a terminal).
    """
    from joblib import Parallel, delayed
    from tqdm import tqdm

    log = log or (lambda message: print(f"lnsim sweep: {message}", file=sys.stderr))
    check_backend(backend, scheduler, jobs)
    done = load_finished(tasks, store, log)
    todo = [t for t in tasks if t.key not in done]
    # smoothing=0: the ETA from the average rate, as parallel results arrive in bursts.
    bar = tqdm(total=len(tasks), initial=len(done), desc="lnsim sweep", unit="run", file=sys.stderr,
               disable=None if progress else True, dynamic_ncols=True, smoothing=0)
    try:
        if todo:
            with _backend(backend, scheduler, jobs) as n_jobs:
                parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered", batch_size=1)
                for record in parallel(delayed(_run_named)(t) for t in todo):
                    store.save(record)
                    done[record["key"]] = record
                    bar.update(1)
                    if on_record is not None:
                        on_record(record)
    finally:
        bar.close()
    return done
