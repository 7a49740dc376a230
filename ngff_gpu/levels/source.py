"""The read stage: every source chunk decoded once per pass, whatever the halo.

A brick reads its region of the source level plus a halo on every side, so the
source chunks along a brick's border are also read by its neighbours. Read
naively, those chunks are decoded by every brick whose read region touches them
(up to 2 per axis: 8 times in 3-D). This module reads a chunked source (a zarr
array, a TIFF tile reader or tifffile's zarr store, a dask array) one *grid
cell* at a time instead:

- the bricks of a pass run in C order (march along the slowest axis, then the
  next), so a chunk's later users follow soon after its first;
- a brick reads, in chunk-aligned boxes one chunk layer thick (layers merged
  while a box holds fewer than twice the CPU count of chunks; decoded in
  parallel by the zarr codec pipeline, see :func:`ngff_gpu.io.read_pipeline.parallel_source`,
  or the TIFF tile reader's thread pool), only the chunks no earlier brick decoded;
- of every chunk a later brick still needs, the parts those bricks read stay in
  a cache (one piece per distinct part, a part inside another shares it), each
  freed after its last user has copied it out.

:class:`ReadPlan` derives all of this from the regions alone, before any data
is touched, and gives the cache's peak size, which the writer charges to
``memory_limit`` (the brick budget shrinks accordingly). The cache never grows
past the capacity it is given: an entry that would not fit is simply not kept,
and its later users decode that chunk again (correct, only slower).

In-memory sources (NumPy, memory maps, CuPy) have no grid and are sliced
directly.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ngff_gpu.compute.step import Region
from ngff_gpu.levels.bricks import Brick, Pass, halo_total
from ngff_gpu.levels.plan import LevelPlan
from ngff_gpu.namespace import HostView, is_cupy, is_dask, is_numpy, is_zarr

Cell = tuple[int, ...]


def _slices(region: Region) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in region)


def _nbytes(region: Region, itemsize: int) -> int:
    n = itemsize
    for a, b in region:
        n *= max(0, b - a)
    return n


def _intersect(r: Region, s: Region) -> Region:
    return tuple((max(a, c), min(b, d)) for (a, b), (c, d) in zip(r, s))


def read_region(source: Any, region: Region) -> Any:
    """Read ``region`` of a lazy source (dask, zarr, memmap, NumPy, CuPy) into memory."""
    sub = source[_slices(region)]
    if is_dask(sub):
        sub = sub.compute(scheduler="synchronous")
    if is_numpy(sub) or is_cupy(sub):
        return sub
    return np.asarray(sub)


def read_into(source: Any, region: Region, out: np.ndarray) -> bool:
    """Decode ``region`` of ``source`` straight into ``out`` (of the region's shape),
    when the source can: a region array with ``read_into`` (the TIFF tile reader:
    any ``out``), or a zarr array when ``out`` is C-contiguous (the ``zarrs``
    pipeline takes nothing else). Returns False, having read nothing, otherwise.
    """
    if out.dtype != np.dtype(source.dtype):
        return False
    method = getattr(source, "read_into", None)
    if callable(method):
        method(region, out)
        return True
    if not (is_zarr(source) and out.flags.c_contiguous):
        return False
    from zarr.core.buffer.cpu import NDBuffer

    source.get_basic_selection(_slices(region), out=NDBuffer.from_numpy_array(out))
    return True


@dataclass(frozen=True)
class Grid:
    """The decode grid of a source: chunk boundaries per axis (``[0, ..., n]``)."""

    bounds: tuple[tuple[int, ...], ...]

    @classmethod
    def regular(cls, shape: Sequence[int], chunks: Sequence[int]) -> Grid:
        """A grid of ``chunks``-sized cells over ``shape`` (the last cell may be partial)."""
        return cls(tuple(tuple(range(0, n, c)) + (n,) if n else (0,)
                         for n, c in zip(shape, chunks)))

    def cell_range(self, region: Region) -> tuple[range, ...]:
        """Per axis, the cells that ``region`` overlaps."""
        out = []
        for (a, b), bounds in zip(region, self.bounds):
            first = int(np.searchsorted(bounds, a, side="right")) - 1
            last = int(np.searchsorted(bounds, b, side="left")) - 1
            out.append(range(max(first, 0), last + 1) if b > a else range(0))
        return tuple(out)

    def cell_region(self, cell: Cell) -> Region:
        """The samples of one cell."""
        return tuple((self.bounds[ax][i], self.bounds[ax][i + 1]) for ax, i in enumerate(cell))


def source_grid(source: Any) -> Grid | None:
    """The decode grid of ``source``: zarr chunks (the inner chunks of a sharded
    array: the unit zarr decodes), the ``chunks`` of a region array (TIFF tiles or
    strips, see :mod:`ngff_gpu.io.inputs.tiff_tiles`) or of tifffile's zarr
    store, dask chunks; None for in-memory arrays, which are sliced directly."""
    if is_numpy(source) or is_cupy(source) or isinstance(source, HostView):
        return None
    shape = tuple(int(n) for n in getattr(source, "shape", ()))
    chunks = getattr(source, "chunks", None)
    if chunks is None or len(chunks) != len(shape) or not shape:
        return None
    if all(isinstance(c, tuple) for c in chunks):  # dask: chunk sizes per axis
        return Grid(tuple(tuple(int(x) for x in np.concatenate([[0], np.cumsum(c)]))
                          for c in chunks))
    try:
        sizes = [int(c) for c in chunks]
    except (TypeError, ValueError):
        return None
    if any(c < 1 for c in sizes):
        return None
    return Grid.regular(shape, sizes)


def write_grid(array: Any) -> tuple[int, ...]:
    """The unit one writer owns in a written level: its shards when sharded, else
    its chunks (a zarr array's ``shards`` / ``chunks``)."""
    shards = getattr(array, "shards", None)
    return tuple(int(n) for n in (shards or array.chunks))


def usable_grid(source: Any, host_budget: int) -> Grid | None:
    """:func:`source_grid`, unless one cell would take more than an eighth of
    ``host_budget`` decoded: such a source (one huge chunk, a dask array in a few
    large pieces) is read brick by brick, as a region, instead."""
    grid = source_grid(source)
    if grid is None:
        return None
    cell = np.dtype(source.dtype).itemsize
    for bounds in grid.bounds:
        cell *= max((b - a for a, b in zip(bounds, bounds[1:])), default=1)
    return grid if cell <= host_budget // 8 else None


def read_order(levels: Sequence[LevelPlan], p: Pass, bricks: Sequence[Brick]) -> list[Brick]:
    """The bricks of ``p`` in the order the read stage takes them: C order over the
    brick grid with the axes permuted so the cache stays small.

    Between two slabs along the outermost axis the cache holds about one chunk
    layer of the whole cross-section of the others, so axes without a halo (``t``,
    ``c``, or factor 1) come first (nothing crosses their boundaries), then the
    axes with a halo from the longest to the shortest (the smallest cross-section
    outermost); for a cube this is plain C order.
    """
    shape = levels[p.source].shape
    halo = halo_total(levels, p.source, p.last)
    axes = sorted(range(len(shape)), key=lambda a: (halo[a] > 0, -shape[a] if halo[a] else 0, a))
    counts = [-(-n // b) for n, b in zip(shape, p.brick)]
    if axes == sorted(axes):
        return list(bricks)

    def key(b: Brick) -> tuple[int, ...]:
        idx = np.unravel_index(b.index, counts)
        return tuple(int(idx[a]) for a in axes)

    return sorted(bricks, key=key)


@dataclass
class ReadPlan:
    """Which bricks read which cells, and what the cache must hold between them.

    Parameters
    ----------
    grid : Grid
        Decode grid of the source level.
    bricks : sequence of Brick
        The bricks that will be read, in the order they will be read.
    itemsize : int
        Bytes per sample of the source.
    box_cells : int, optional
        Cells one read should decode together: consecutive one-layer boxes of a
        brick with the same cross-section are merged while a box holds fewer
        (default :func:`decode_parallelism`), so a read offers the decoders enough
        chunks to keep every core busy.

    Attributes
    ----------
    users : dict
        Per cell, the positions (in ``bricks``) of the bricks that read it.
    keep : dict
        Per cell with a later user, the pieces kept after its first read:
        ``(region, position of the last brick that reads it)``.
    cache_peak : int
        Largest number of bytes the cache holds at once.
    box_peak : int
        Largest chunk-aligned box read at once (decoded, before it is split).
    """

    grid: Grid
    bricks: Sequence[Brick]
    itemsize: int
    # (looked up when a plan is made, so the planner and the engine agree on it)
    box_cells: int = field(default_factory=lambda: decode_parallelism())
    users: dict[Cell, list[int]] = field(init=False)
    keep: dict[Cell, list[tuple[Region, int]]] = field(init=False)
    cache_peak: int = field(init=False)
    box_peak: int = field(init=False)

    def __post_init__(self) -> None:
        self.users = {}
        cells_of = []
        for pos, brick in enumerate(self.bricks):
            cells = list(itertools.product(*self.grid.cell_range(brick.read)))
            cells_of.append(cells)
            for c in cells:
                self.users.setdefault(c, []).append(pos)
        self.keep = {}
        for c, users in self.users.items():
            if len(users) > 1:
                self.keep[c] = _pieces(self.grid.cell_region(c),
                                       [(self.bricks[u].read, u) for u in users[1:]])
        # Simulate the cache over the read order: the pieces of a cell are added by its
        # first user and each is dropped after its last one.
        held = peak = box_peak = 0
        for pos, cells in enumerate(cells_of):
            new = [c for c in cells if self.users[c][0] == pos]
            held += sum(_nbytes(r, self.itemsize) for c in new for r, _ in self.keep.get(c, ()))
            peak = max(peak, held)
            for box in _boxes(new, self.box_cells):
                box_peak = max(box_peak, _nbytes(self._box_region(box), self.itemsize))
            held -= sum(_nbytes(r, self.itemsize) for c in cells for r, last in self.keep.get(c, ())
                        if last == pos)
        self.cache_peak, self.box_peak = peak, box_peak

    def _box_region(self, box: tuple[range, ...]) -> Region:
        return tuple((self.grid.bounds[ax][r.start], self.grid.bounds[ax][r.stop])
                     for ax, r in enumerate(box))


def _pieces(cell: Region, reads: Sequence[tuple[Region, int]]) -> list[tuple[Region, int]]:
    """The parts of ``cell`` that later bricks read, each with the last brick that
    reads from it: one piece per distinct part; a part inside a larger piece shares
    it only when that does not keep the larger piece longer (a thin halo strip read
    long after the rest of the chunk is kept on its own)."""
    parts: list[tuple[Region, int]] = []
    for read, pos in sorted(((_intersect(cell, r), pos) for r, pos in reads),
                            key=lambda rp: (-_nbytes(rp[0], 1), rp[1])):
        for k, (big, last) in enumerate(parts):
            inside = all(c <= a and b <= d for (a, b), (c, d) in zip(read, big))
            if read == big or (inside and pos <= last):
                parts[k] = (big, max(last, pos))
                break
        else:
            parts.append((read, pos))
    return parts


def decode_parallelism() -> int:
    """Cells a read should offer the decoders at once: twice the CPU count."""
    return 2 * (os.cpu_count() or 1)


def _boxes(cells: Sequence[Cell], min_cells: int = 1) -> list[tuple[range, ...]]:
    """Cover ``cells`` (grid cells) with boxes one cell thick along axis 0, each as
    large as possible: one box per layer when the layer's cells form a rectangle.
    Consecutive layers with the same cross-section are then merged into one box
    while it holds fewer than ``min_cells`` cells (few cells per layer would leave
    cores idle; more layers per box mean a larger box in memory)."""
    if not cells:
        return []
    layers: dict[int, list[Cell]] = {}
    for c in cells:
        layers.setdefault(c[0], []).append(c)
    out: list[tuple[range, ...]] = []
    for i in sorted(layers):
        for box in _rectangles([c[1:] for c in layers[i]]):
            last = out[-1] if out else None
            if last is not None and last[1:] == tuple(box) and last[0].stop == i and \
                    math.prod(len(r) for r in last) < min_cells:
                out[-1] = (range(last[0].start, i + 1), *box)
            else:
                out.append((range(i, i + 1), *box))
    return out


def _rectangles(cells: list[Cell]) -> list[tuple[range, ...]]:
    """Split a set of cells into rectangles (whole when it already is one)."""
    if not cells:
        return []
    if not cells[0]:
        return [()]
    ranges = tuple(range(min(c[ax] for c in cells), max(c[ax] for c in cells) + 1)
                   for ax in range(len(cells[0])))
    if len(set(cells)) == int(np.prod([len(r) for r in ranges])):
        return [ranges]
    rows: dict[int, list[Cell]] = {}
    for c in cells:
        rows.setdefault(c[0], []).append(c[1:])
    return [(range(i, i + 1), *rest) for i in sorted(rows) for rest in _rectangles(rows[i])]


class SourceReader:
    """Reads bricks of one pass from a chunked source, decoding each cell once.

    Parameters
    ----------
    source : array-like
        The source level (zarr array, region array such as the TIFF tile reader,
        dask array).
    plan : ReadPlan
        Cells and users of the bricks, which must then be read in that order.
    capacity : int
        Bytes the cache may hold; entries that would not fit are not kept.

    Attributes
    ----------
    decoded : int
        Cells read from the source so far (a cell read twice counts twice).
    """

    def __init__(self, source: Any, plan: ReadPlan, capacity: int) -> None:
        self.source, self.plan, self.capacity = source, plan, capacity
        self.cache: dict[Cell, list[tuple[Region, int, np.ndarray]]] = {}
        self.held = 0
        self.decoded = 0
        self.dtype = np.dtype(source.dtype)

    def read(self, pos: int) -> np.ndarray:
        """The source data of brick ``pos`` (its ``read`` region), in memory."""
        plan = self.plan
        brick = plan.bricks[pos]
        origin = [a for a, _ in brick.read]
        out = np.empty(tuple(b - a for a, b in brick.read), dtype=self.dtype)
        cells = list(itertools.product(*plan.grid.cell_range(brick.read)))
        new = [c for c in cells if c not in self.cache]
        fresh = set(new)
        for box in _boxes(new, plan.box_cells):
            region = plan._box_region(box)
            data = self._read_box(region, out, origin, brick.read)
            self.decoded += int(np.prod([len(r) for r in box]))
            for c in itertools.product(*box):
                self._keep(c, pos, data, region)
            del data
        for c in cells:
            pieces = self.cache.get(c)
            if pieces is None:
                continue
            if c not in fresh:
                for region, _, arr in pieces:
                    _paste(out, origin, arr, region, brick.read)
            kept = [piece for piece in pieces if piece[1] > pos]
            self.held -= sum(piece[2].nbytes for piece in pieces if piece[1] <= pos)
            if kept:
                self.cache[c] = kept
            else:
                del self.cache[c]
        return out

    def _read_box(self, region: Region, out: np.ndarray, origin: Sequence[int],
                  target: Region) -> np.ndarray:
        """Decode the box ``region`` and put its part inside ``target`` into ``out``; a
        box inside the brick is decoded in place when the source can (no
        intermediate array, no copy). Returns the box's data."""
        if all(t0 <= a and b <= t1 for (a, b), (t0, t1) in zip(region, target)):
            view = out[tuple(slice(a - o, b - o) for (a, b), o in zip(region, origin))]
            if read_into(self.source, region, view):
                return view
        data = read_region(self.source, region)
        _paste(out, origin, data, region, target)
        return data

    def _keep(self, c: Cell, pos: int, data: np.ndarray, region: Region) -> None:
        pieces = [(r, last) for r, last in self.plan.keep.get(c, ()) if last > pos]
        nbytes = sum(_nbytes(r, self.dtype.itemsize) for r, _ in pieces)
        if not pieces or self.held + nbytes > self.capacity:
            return  # nothing to keep, or over capacity: a later user decodes it again
        kept = []
        for r, last in pieces:
            local = tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(r, region))
            kept.append((r, last, np.array(data[local], copy=True)))
        self.cache[c] = kept
        self.held += nbytes


def _paste(out: np.ndarray, origin: Sequence[int], data: Any, region: Region,
           target: Region) -> None:
    """Copy the part of ``data`` (covering ``region``) that lies in ``target`` into ``out``."""
    common = _intersect(region, target)
    if any(a >= b for a, b in common):
        return
    dst = tuple(slice(a - o, b - o) for (a, b), o in zip(common, origin))
    src = tuple(slice(a - r, b - r) for (a, b), (r, _) in zip(common, region))
    out[dst] = data[src]
