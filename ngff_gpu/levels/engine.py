"""The engine: runs the passes of a plan as a pipeline of bounded stages.

Stages, each overlapping the next::

    read brick (reader thread; each source chunk decoded once, see
    :mod:`ngff_gpu.levels.source`) -> [H2D] compute all levels of the brick
    (compute workers, through the backend) -> [D2H] -> encode + write
    complete chunks/shards (writer thread pool) -> mark the brick done

Bounded queues and a byte budget on in-flight bricks make peak memory a
function of the budget, not of the volume. The same engine runs every backend;
with a ``dask.distributed`` client, bricks run as tasks on the cluster instead
(one task per brick, so never two writers on one chunk or shard).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ngff_gpu.compute.backends import Backend, get_backend
from ngff_gpu.levels.assemble import CellAssembler
from ngff_gpu.levels.bricks import Brick, Pass, iter_bricks, iter_handover_bricks
from ngff_gpu.levels.plan import LevelPlan
from ngff_gpu.levels.source import (
    Grid,
    ReadPlan,
    SourceReader,
    read_order,
    read_region,
    usable_grid,
    write_grid,
)
from ngff_gpu.namespace import HostView

__all__ = ["BrickJob", "Engine", "WriteFn", "compute_brick", "read_region", "run_distributed",
           "write_region"]

_STOP = object()

#: Writes ``data`` into ``region`` of a level array: ``write(array, region, data)``.
WriteFn = Callable[[Any, Any, np.ndarray], None]


def write_region(array: Any, region: Any, data: np.ndarray) -> None:
    """The default :data:`WriteFn`: ``array[region] = data`` (zarr encodes and stores)."""
    array[_slices(region)] = data


def _malloc_trim_fn() -> Callable[[], None]:
    """glibc's ``malloc_trim``: hands freed heap pages back to the OS after each brick,
    so that many bricks freed in many threads' arenas do not pile up as resident memory
    (peak memory then follows the budget, not the volume). A no-op elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


release_memory = _malloc_trim_fn()


def _slices(region) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in region)


@dataclass
class BrickJob:
    """Everything one brick needs, picklable for a distributed worker."""

    levels: Sequence[LevelPlan]
    pass_: Pass
    brick: Brick
    source: Any
    arrays: dict[int, Any]
    marker: Any
    device: str
    data: Any = None
    write: WriteFn = write_region

    def run(self) -> int:
        """Read, compute and write the brick (synchronously); return bytes written."""
        backend = get_backend(self.device)
        data = self.data if self.data is not None else read_region(self.source, self.brick.read)
        nbytes = 0
        for k, region, out in compute_brick(backend, self.levels, self.pass_, self.brick, data):
            if k not in self.arrays:
                continue  # a level kept as the store holds it (start_level)
            self.write(self.arrays[k], region, out)
            nbytes += out.nbytes
        if self.marker is not None:
            self.marker[self.brick.index] = 1
        return nbytes


def compute_brick(backend: Backend, levels: Sequence[LevelPlan], p: Pass, brick: Brick,
                  data: Any) -> Iterator[tuple[int, Any, np.ndarray]]:
    """Yield ``(level, region, host array)`` for every region the brick writes, each as
    soon as it is ready (the source level first), so writes overlap the compute.

    ``data`` holds ``brick.read`` of the source level. Level ``k`` is computed
    over ``brick.need[k]`` from level ``k-1``'s need region, then cropped to
    what the brick writes.
    """
    x = backend.asarray(data)
    origin = tuple(a for a, _ in brick.read)
    if p.source in brick.write:
        region = brick.write[p.source]
        crop = tuple(slice(a - o, b - o) for (a, b), o in zip(region, origin))
        yield p.source, region, backend.to_host(x[crop])
    for k in p.levels:
        if k not in brick.need:
            break
        region = brick.need[k]
        x = backend.reduce_region(x, levels[k].step, origin, levels[k - 1].shape, region)
        origin = tuple(a for a, _ in region)
        if k in brick.write:
            w = brick.write[k]
            crop = tuple(slice(a - o, b - o) for (a, b), o in zip(w, origin))
            yield k, w, backend.to_host(x[crop])
    backend.synchronize()


class Engine:
    """Runs bricks through read -> compute -> write stages with bounded memory.

    Parameters
    ----------
    backend : Backend
        Where compute runs.
    budget : int
        Host bytes allowed for bricks in flight.
    workers : int, optional
        Compute workers (CPU) and writer threads; default: CPU count.
    on_brick : callable, optional
        Called with the number of bytes written after each brick.
    write : WriteFn
        Writes one region of a level (default :func:`write_region`); the seam
        through which callers observe writes or inject write failures.
    read_cache : int
        Bytes the read stage may keep of decoded source chunks that later bricks
        still need (see :mod:`ngff_gpu.levels.source`); the caller charges them to
        its memory limit.

    Attributes
    ----------
    held_peak : int
        Most bytes the cell assembler of the last :meth:`run_pass` held (hand-over
        bricks; 0 otherwise).
    decoded : int
        Cells of the source's decode grid (chunks; for the TIFF tile reader, one tile
        or strip of a group of pages) decoded by the last :meth:`run_pass`
        (-1 for an in-memory source, which is sliced, not decoded).
    stats : dict
        Seconds spent per stage, summed over passes and threads: ``read`` (the
        reader decoding and assembling bricks), ``read_wait`` (the reader waiting
        for a free brick slot, i.e. for compute or writes), ``compute`` and
        ``write`` (summed over their workers), and ``wall``.
    """

    def __init__(self, backend: Backend, budget: int, workers: int | None = None,
                 on_brick: Callable[[int], None] | None = None,
                 write: WriteFn = write_region, read_cache: int = 0) -> None:
        self.backend = backend
        self.budget = budget
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.on_brick = on_brick
        self.write = write
        self.read_cache = read_cache
        self.decoded = -1
        self.held_peak = 0
        self.stats = dict.fromkeys(("read", "read_wait", "compute", "write", "wall"), 0.0)
        self._stats_lock = threading.Lock()

    def _add(self, stage: str, seconds: float) -> None:
        with self._stats_lock:
            self.stats[stage] += seconds

    def run_pass(self, levels: Sequence[LevelPlan], p: Pass, source: Any,
                 arrays: dict[int, Any], done: Callable[[int], bool],
                 mark: Callable[[int], None], brick_cost: int, handover: bool = False) -> None:
        """Run every brick of ``p`` not yet ``done``; raise the first error.

        ``arrays`` maps each level the pass writes to its array; a level the pass
        computes or reads but that is absent from ``arrays`` is not written (the source
        level of an append, which the store already holds).

        With ``handover`` the bricks are :func:`~ngff_gpu.levels.bricks.iter_handover_bricks`
        (a one-level pass): the computed level goes through a
        :class:`~ngff_gpu.levels.assemble.CellAssembler`, and a brick is marked done
        once every cell it contributed to is written.
        """
        # Bricks in flight: one being read plus one per compute worker; a brick keeps
        # its slot until its writes are done, so these bound the memory in use.
        n_compute = 1 if self.backend.on_device else self.workers
        in_flight = max(1, min(n_compute + 1, self.budget // max(brick_cost, 1)))
        n_compute = min(n_compute, in_flight)
        slots = threading.BoundedSemaphore(in_flight)
        read_q: queue.Queue = queue.Queue(maxsize=1)
        errors: list[BaseException] = []
        stop = threading.Event()

        def fail(exc: BaseException) -> None:
            errors.append(exc)
            stop.set()

        started = time.perf_counter()
        grid = usable_grid(source, self.budget)
        every = list(iter_handover_bricks(levels, p) if handover else iter_bricks(levels, p))
        bricks = [b for b in every if not done(b.index)]
        if grid is not None:
            bricks = read_order(levels, p, bricks)
        src = None if grid is None else SourceReader(
            source, ReadPlan(grid, bricks, np.dtype(source.dtype).itemsize),
            self.read_cache)
        writers = ThreadPoolExecutor(self.workers, thread_name_prefix="ngff-write")

        def timed_write(array: Any, region, data: np.ndarray) -> None:
            t0 = time.perf_counter()
            self.write(array, region, data)
            self._add("write", time.perf_counter() - t0)

        # A brick is marked done when its own writes are done and, with hand-over, the
        # assembler has reported every cell it contributed to written: parts left per brick.
        parts_lock = threading.Lock()

        def part_done(index: int) -> None:
            with parts_lock:
                parts[index] -= 1
                last = parts[index] == 0
            if last and not stop.is_set():
                try:
                    mark(index)
                except BaseException as exc:  # noqa: BLE001
                    fail(exc)

        def write_cell(region, data: np.ndarray, on_written: Callable[[], None]) -> None:
            def after(fut: Future) -> None:
                exc = fut.exception()
                if exc is not None:
                    fail(exc)
                else:
                    on_written()

            writers.submit(timed_write, arrays[p.last], region, data).add_done_callback(after)

        assembler = None
        if handover:
            out = arrays[p.last]
            assembler = CellAssembler(every, p.last, Grid.regular(out.shape, write_grid(out)),
                                      out.dtype, done, write_cell, part_done)
        parts = {b.index: 1 + (assembler is not None and assembler.cells_of(b.index) > 0)
                 for b in bricks}

        def reader() -> None:
            try:
                for pos, brick in enumerate(bricks):
                    if stop.is_set():
                        break
                    t0 = time.perf_counter()
                    while not slots.acquire(timeout=0.1):
                        if stop.is_set():
                            return
                    t1 = time.perf_counter()
                    data = read_region(source, brick.read) if src is None else src.read(pos)
                    t2 = time.perf_counter()
                    self._add("read_wait", t1 - t0)
                    self._add("read", t2 - t1)
                    read_q.put((brick, data))
                    del data
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fail(exc)
            finally:
                for _ in range(n_compute):
                    read_q.put(_STOP)

        def finish_brick(brick: Brick, futures: list[Future], nbytes: int) -> None:
            pending = [len(futures)]
            lock = threading.Lock()

            def one_done(fut: Future) -> None:
                exc = fut.exception()
                if exc is not None:
                    fail(exc)
                with lock:
                    pending[0] -= 1
                    last = pending[0] == 0
                if last:
                    try:
                        if not stop.is_set():
                            part_done(brick.index)
                            release_memory()
                            if self.on_brick:
                                self.on_brick(nbytes)
                    except BaseException as e:  # noqa: BLE001
                        fail(e)
                    finally:
                        slots.release()

            if not futures:
                part_done(brick.index)
                if self.on_brick:
                    self.on_brick(nbytes)
                slots.release()
            for fut in futures:
                fut.add_done_callback(one_done)

        def compute() -> None:
            while True:
                item = read_q.get()
                if item is _STOP:
                    return
                if stop.is_set():
                    slots.release()
                    continue
                brick, data = item
                try:
                    futures, nbytes = [], 0
                    t0 = time.perf_counter()
                    for k, region, arr in compute_brick(self.backend, levels, p, brick, data):
                        if assembler is not None and k == p.last:
                            assembler.put(region, arr)
                        elif k not in arrays:
                            continue  # a level kept as the store holds it (start_level)
                        else:
                            futures.append(writers.submit(timed_write, arrays[k], region, arr))
                        nbytes += arr.nbytes
                    self._add("compute", time.perf_counter() - t0)
                    del data
                    finish_brick(brick, futures, nbytes)
                except BaseException as exc:  # noqa: BLE001
                    slots.release()
                    fail(exc)

        threads = [threading.Thread(target=reader, name="ngff-read", daemon=True)]
        threads += [threading.Thread(target=compute, name=f"ngff-compute-{i}", daemon=True)
                    for i in range(n_compute)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        writers.shutdown(wait=True)
        self.decoded = -1 if src is None else src.decoded
        self.held_peak = 0 if assembler is None else assembler.peak
        self._add("wall", time.perf_counter() - started)
        if errors:
            raise errors[0]
        if assembler is not None and assembler.unfinished:
            raise RuntimeError(f"internal error: {assembler.unfinished} cells of level "
                               f"{p.last} were not completed by the pass's bricks")


def run_distributed(client: Any, levels: Sequence[LevelPlan], p: Pass, source: Any,
                    arrays: dict[int, Any], marker: Any, done: Callable[[int], bool],
                    device: str, on_brick: Callable[[int], None] | None = None,
                    write: WriteFn = write_region) -> None:
    """Run the bricks of ``p`` as tasks on a ``dask.distributed`` client.

    Each task reads, computes and writes one brick (through ``write``, which must
    pickle); bricks never share a chunk or shard, so tasks never race on a key.
    """
    from distributed import as_completed

    # An in-memory source would be pickled whole into every task: send each task
    # only its brick instead. Lazy sources (zarr, TIFF, dask) are read by the task.
    in_memory = isinstance(source, (np.ndarray, HostView))
    jobs = [BrickJob(levels, p, b, None if in_memory else source, arrays, marker, device,
                     read_region(source, b.read) if in_memory else None, write)
            for b in iter_bricks(levels, p) if not done(b.index)]
    futures = [client.submit(BrickJob.run, job, pure=False) for job in jobs]
    for fut in as_completed(futures):
        nbytes = fut.result()
        if on_brick:
            on_brick(nbytes)
