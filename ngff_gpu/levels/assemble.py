"""Whole write cells from the pieces that hand-over bricks compute.

A hand-over brick (:func:`~ngff_gpu.levels.bricks.iter_handover_bricks`) computes
outputs that do not fall on the level's write grid: a chunk (or shard) of the
level gets its samples from up to two bricks per axis. :class:`CellAssembler`
copies each piece into a buffer per cell and hands the cell to the writer the
moment its last sample has arrived, so every cell is still written once, whole,
by one writer. It also tells the engine when every cell a brick contributed to
has been written: only then is the brick marked done, so a resumed run never
skips a brick whose samples were lost with an unwritten buffer.

On resume, a cell with a contributor marked done was written whole before (a
brick is marked only after all its cells are), so the pieces the remaining bricks
compute for it are dropped. :func:`hold_peak` gives the most bytes the buffers
hold at once for a brick order, which the planner charges to ``memory_limit``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ngff_gpu.compute.step import Region
from ngff_gpu.levels.bricks import Brick
from ngff_gpu.levels.source import Cell, Grid


def _slices(region: Region, origin: Sequence[int] = ()) -> tuple[slice, ...]:
    origin = tuple(origin) or (0,) * len(region)
    return tuple(slice(a - o, b - o) for (a, b), o in zip(region, origin))


def _size(region: Region) -> int:
    return int(np.prod([b - a for a, b in region]))


def _cells(grid: Grid, region: Region) -> list[Cell]:
    return list(itertools.product(*grid.cell_range(region)))


def _intersect(r: Region, s: Region) -> Region:
    return tuple((max(a, c), min(b, d)) for (a, b), (c, d) in zip(r, s))


def contributors(bricks: Sequence[Brick], level: int, grid: Grid) -> dict[Cell, list[int]]:
    """Per cell of ``grid``, the indices of the bricks whose ``write[level]`` touches it."""
    out: dict[Cell, list[int]] = {}
    for b in bricks:
        region = b.write.get(level)
        if region is None:
            continue
        for c in _cells(grid, region):
            out.setdefault(c, []).append(b.index)
    return out


def hold_peak(bricks: Sequence[Brick], level: int, grid: Grid, itemsize: int) -> int:
    """Most bytes the cell buffers hold at once when ``bricks`` run in this order
    (a cell is held from its first contributor to its last; a cell one brick
    writes whole is not buffered)."""
    pos = {b.index: i for i, b in enumerate(bricks)}
    events = [0] * (len(bricks) + 1)
    for c, users in contributors(bricks, level, grid).items():
        if len(users) < 2:
            continue
        first, last = min(pos[u] for u in users), max(pos[u] for u in users)
        events[first] += _size(grid.cell_region(c)) * itemsize
        events[last + 1] -= _size(grid.cell_region(c)) * itemsize
    return max(itertools.accumulate(events), default=0)


class CellAssembler:
    """Collects the pieces of one level's write cells and writes each cell whole.

    Parameters
    ----------
    bricks : sequence of Brick
        Every brick of the pass, those already done included (they tell which
        cells were written whole before).
    level : int
        The level assembled.
    grid : Grid
        The level's write grid (chunks, or shards when sharded).
    dtype : numpy.dtype
        The level's dtype.
    done : callable
        ``done(index)``: whether a brick was marked done by an earlier run.
    write : callable
        ``write(region, data, on_written)``: write one whole cell; the callee calls
        ``on_written()`` once the cell is stored (from any thread).
    brick_written : callable
        Called once per brick, with its index, when the last cell it contributed to
        is written (never for a brick whose cells were all written before).

    Attributes
    ----------
    held, peak : int
        Bytes in the cell buffers now, and at most so far.
    """

    def __init__(self, bricks: Sequence[Brick], level: int, grid: Grid, dtype: Any,
                 done: Callable[[int], bool], write: Callable[..., None],
                 brick_written: Callable[[int], None]) -> None:
        self.level, self.grid, self.dtype = level, grid, np.dtype(dtype)
        self._write, self._brick_written = write, brick_written
        self._lock = threading.Lock()
        self._users: dict[Cell, list[int]] = {}
        self._left: dict[Cell, int] = {}
        self._pending: dict[int, int] = {}
        self._buffers: dict[Cell, np.ndarray] = {}
        self.held = self.peak = 0
        for c, users in contributors(bricks, level, grid).items():
            if any(done(u) for u in users):
                continue  # written whole by an earlier run: drop its pieces
            self._users[c] = users
            self._left[c] = _size(grid.cell_region(c))
            for u in users:
                self._pending[u] = self._pending.get(u, 0) + 1

    def cells_of(self, index: int) -> int:
        """Cells brick ``index`` still has to see written."""
        return self._pending.get(index, 0)

    def put(self, region: Region, data: np.ndarray) -> None:
        """Add the samples ``data`` of ``region`` (a brick's ``write[level]``); write
        every cell this completes."""
        origin = tuple(a for a, _ in region)
        for c in _cells(self.grid, region):
            if c not in self._left:
                continue
            cell = self.grid.cell_region(c)
            part = _intersect(cell, region)
            n = _size(part)
            if n == 0:
                continue
            if n == _size(cell) and len(self._users[c]) == 1:  # whole: no buffer
                self._finish(c, cell, np.ascontiguousarray(data[_slices(part, origin)]), 0)
                continue
            with self._lock:
                buf = self._buffers.get(c)
                if buf is None:
                    buf = self._buffers[c] = np.empty(tuple(b - a for a, b in cell), self.dtype)
                    self.held += buf.nbytes
                    self.peak = max(self.peak, self.held)
            # pieces of one cell never overlap, so they are copied outside the lock
            buf[_slices(part, tuple(a for a, _ in cell))] = data[_slices(part, origin)]
            with self._lock:
                self._left[c] -= n
                complete = self._left[c] == 0
                if complete:
                    del self._buffers[c]
            if complete:
                self._finish(c, cell, buf, buf.nbytes)

    def _finish(self, c: Cell, cell: Region, data: np.ndarray, nbytes: int) -> None:
        """Write the complete cell ``c``; once stored, free its buffer and tell its bricks."""

        def written() -> None:
            ready = []
            with self._lock:
                self.held -= nbytes
                self._left.pop(c, None)
                for u in self._users.pop(c, ()):
                    self._pending[u] -= 1
                    if self._pending[u] == 0:
                        ready.append(u)
            for u in ready:
                self._brick_written(u)

        self._write(cell, data, written)

    @property
    def unfinished(self) -> int:
        """Cells not written yet (0 after a complete pass)."""
        return len(self._left)
