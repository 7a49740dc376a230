"""The process-wide pool of threads the compiled CPU kernels run on.

One pool per process, shared by every caller (a single ``downsample`` call, the engine's
compute workers, dask's threads), so the number of kernels running at once never exceeds
the thread limit however many callers there are: a kernel holds one of ``threads`` slots
while it runs. A caller runs its own tasks too (it never just waits), so a call makes
progress even when the pool is busy with other callers' work, and no task ever waits on
another (no deadlock).

The limit is the number of CPUs this process may run on (``os.sched_getaffinity``), or
``NGFF_GPU_CPU_THREADS`` when set, or :func:`set_cpu_threads` (docs/design.md section 3.3).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ngff_gpu.errors import ArgumentError

#: The environment variable that limits the threads of the compiled CPU kernels.
THREADS_ENV = "NGFF_GPU_CPU_THREADS"


def machine_threads() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _env_threads() -> int | None:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ArgumentError(f"{THREADS_ENV}={raw!r}: expected a positive integer") from None
    if n < 1:
        raise ArgumentError(f"{THREADS_ENV}={raw!r}: expected a positive integer")
    return n


class _Pool:
    """``threads`` slots and ``threads - 1`` helper threads (the caller is the last one)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.slots = threading.BoundedSemaphore(threads)
        self.executor = (ThreadPoolExecutor(threads - 1, thread_name_prefix="ngff-cpu")
                         if threads > 1 else None)

    def run(self, fn: Callable[[Any], None], items: list[Any]) -> None:
        if not items:
            return
        lock = threading.Lock()
        todo = iter(items)
        state = {"left": len(items), "error": None}
        done = threading.Event()

        def work() -> None:
            while True:
                with lock:
                    item = next(todo, _END)
                if item is _END:
                    return
                try:
                    if state["error"] is None:
                        with self.slots:
                            fn(item)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    with lock:
                        if state["error"] is None:
                            state["error"] = exc
                finally:
                    with lock:
                        state["left"] -= 1
                        if state["left"] == 0:
                            done.set()

        if self.executor is not None:
            for _ in range(min(self.threads, len(items)) - 1):
                self.executor.submit(work)
        work()
        done.wait()
        if state["error"] is not None:
            raise state["error"]


_END = object()
_lock = threading.Lock()
_pool: _Pool | None = None
_override: int | None = None


def _forget_after_fork() -> None:
    """A forked child has none of the pool's threads and may inherit taken slots: it
    starts a pool of its own on first use."""
    global _pool, _lock
    _pool = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def cpu_threads() -> int:
    """The thread limit of the compiled CPU kernels (see the module docstring)."""
    if _override is not None:
        return _override
    env = _env_threads()
    return env if env is not None else machine_threads()


def set_cpu_threads(threads: int | None) -> None:
    """Limit the compiled CPU kernels to ``threads`` threads (None: back to the default).

    Raises
    ------
    ArgumentError
        If ``threads`` is not a positive integer.
    """
    global _override, _pool
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or threads < 1):
        raise ArgumentError(f"threads must be a positive integer or None, got {threads!r}")
    with _lock:
        _override = threads
        old, _pool = _pool, None
    if old is not None and old.executor is not None:
        old.executor.shutdown(wait=False)


def parallel_for(fn: Callable[[Any], None], items: Iterable[Any]) -> None:
    """Run ``fn(item)`` for every item on the pool (the caller takes part) and return when
    all are done; the first exception raised by any of them is raised here."""
    items = list(items)
    if len(items) <= 1:
        for item in items:
            pool = _current()
            with pool.slots:
                fn(item)
        return
    _current().run(fn, items)


def _current() -> _Pool:
    global _pool
    threads = cpu_threads()
    old = None
    with _lock:
        if _pool is None or _pool.threads != threads:
            old, _pool = _pool, _Pool(threads)
        pool = _pool
    if old is not None and old.executor is not None:
        old.executor.shutdown(wait=False)
    return pool
