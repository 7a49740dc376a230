"""Per pass: which brick form runs it, and the memory its read stage may hold.

Two brick forms read a chunked source (see :mod:`ngff_gpu.levels.source`):

*aligned* (:func:`~ngff_gpu.levels.bricks.iter_bricks`)
    Bricks fall on the write grid of every level they write, so each brick
    writes whole cells. A brick's halo reaches into the first chunk layer past
    its end; that layer, decoded once, is kept whole for the next brick along
    the outermost axis: about one chunk layer of the whole cross-section.
*hand-over* (:func:`~ngff_gpu.levels.bricks.iter_handover_bricks`, one-level
passes only)
    A brick never reads past its end: it computes the outputs its own chunks
    (and thin strips kept from the bricks before it) allow, and the cells of the
    computed level are assembled from up to two bricks per axis
    (:class:`~ngff_gpu.levels.assemble.CellAssembler`). The read cache shrinks to
    the strips under the halos; the assembler holds about one *output* cell
    layer of the cross-section instead (an eighth of the input layer at factor 2).

For every pass the planner simulates both (no data is read) and takes the form
that needs less memory: read cache peak + largest decoded box + assembler peak.
Hand-over runs only in the local engine (a ``dask.distributed`` task writes its
own cells, so the cluster keeps aligned bricks) and only where it fits half the
budget. The chosen memory comes out of ``memory_limit`` before the bricks are
sized.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ngff_gpu.levels.assemble import hold_peak
from ngff_gpu.levels.bricks import Pass, halo_total, iter_bricks, iter_handover_bricks
from ngff_gpu.levels.plan import LevelPlan
from ngff_gpu.levels.source import Grid, ReadPlan, read_order


@dataclass(frozen=True)
class PassMemory:
    """What the read side of one pass holds, as planned.

    Attributes
    ----------
    handover : bool
        Whether the pass runs hand-over bricks.
    cache : int
        Bytes the read cache may hold.
    box : int
        Largest chunk-aligned box decoded at once.
    held : int
        Most bytes the cell assembler holds (0 for aligned bricks).
    """

    handover: bool = False
    cache: int = 0
    box: int = 0
    held: int = 0

    def __post_init__(self) -> None:
        if min(self.cache, self.box, self.held) < 0:
            raise ValueError(f"negative sizes in {self}")

    @property
    def total(self) -> int:
        """Bytes charged to the memory limit."""
        return self.cache + self.box + self.held


def pass_memory(levels: Sequence[LevelPlan], grids: Sequence[tuple[int, ...]], p: Pass,
                grid: Grid | None, itemsize: int, allow_handover: bool,
                limit: int) -> PassMemory:
    """The read-side memory of pass ``p`` in the brick form that needs less of it.

    Parameters
    ----------
    levels, grids
        The level plans and their write grids (shards or chunks).
    p : Pass
        The pass.
    grid : Grid or None
        Decode grid of the pass's source (None: in memory, sliced; nothing held).
    itemsize : int
        Bytes per sample.
    allow_handover : bool
        Whether hand-over bricks may run (not on a ``dask.distributed`` cluster).
    limit : int
        Hand-over is taken only when its total stays within this many bytes.
    """
    if grid is None:
        return PassMemory()
    aligned = ReadPlan(grid, read_order(levels, p, list(iter_bricks(levels, p))), itemsize)
    best = PassMemory(False, aligned.cache_peak, aligned.box_peak, 0)
    if allow_handover and p.last == p.source + 1 and any(halo_total(levels, p.source, p.last)):
        bricks = read_order(levels, p, list(iter_handover_bricks(levels, p)))
        rp = ReadPlan(grid, bricks, itemsize)
        out = Grid.regular(levels[p.last].shape, grids[p.last])
        ho = PassMemory(True, rp.cache_peak, rp.box_peak, hold_peak(bricks, p.last, out, itemsize))
        if ho.total < best.total and ho.total <= limit:
            best = ho
    return best


def plan_with_read_cache(plan_fn: Callable[..., list[Pass]], levels: Sequence[LevelPlan],
                         grids: Sequence[tuple[int, ...]], itemsize: int, compute_itemsize: int,
                         host_budget: int, per_brick: Callable[[int], int],
                         grid_of: Callable[[Pass], Grid | None],
                         allow_handover: bool = True) -> tuple[list[Pass], list[PassMemory]]:
    """Plan the passes with the read side's memory charged to the host budget.

    What a plan's read side needs (:func:`pass_memory`) comes out of
    ``host_budget`` before the bricks are sized (``per_brick`` maps the remaining
    host bytes to a brick budget); since smaller bricks change it a little, this
    repeats until the charge stops growing. The charge is capped at half the
    budget: an aligned pass whose cache would need more keeps what fits and lets
    later bricks decode the rest again (hand-over is taken only when it fits).

    A pass of several levels runs aligned bricks (hand-over assembles one level).
    Where such a pass's read side would hold more than an eighth of the budget, it
    is cut into one-level passes instead, each free to run hand-over bricks: the
    level it would have computed in-brick is then read back from the store (a
    decode of an eighth of the data at factor 2) rather than kept a chunk layer
    across the cross-section.

    Parameters
    ----------
    plan_fn : callable
        :func:`~ngff_gpu.levels.bricks.plan_passes` (or a stand-in).
    levels, grids, itemsize, compute_itemsize
        As for ``plan_fn``.
    host_budget : int
        The memory limit in bytes.
    per_brick : callable
        Host bytes left for bricks -> bytes one brick may use.
    grid_of : callable
        Pass -> decode grid of its source level (None for an in-memory source).
    allow_handover : bool
        Whether passes may run hand-over bricks (False on a cluster).

    Returns
    -------
    list of Pass, list of PassMemory
        The passes, and per pass its brick form and what its read side may hold
        (``cache``: the capacity given to the read cache).
    """
    charge = 0
    cap = host_budget // 2
    one_level: frozenset[int] = frozenset()
    for _ in range(4 + len(levels)):
        passes = plan_fn(levels, grids, itemsize, compute_itemsize, per_brick(host_budget - charge),
                         one_level=one_level)
        mems = [pass_memory(levels, grids, p, grid_of(p), itemsize, allow_handover, cap)
                for p in passes]
        split = {p.source for p, m in zip(passes, mems)
                 if allow_handover and p.last > p.source + 1 and m.total > host_budget // 8}
        if split - one_level:
            one_level |= split  # those passes compute one level each, with hand-over bricks
            continue
        need = min(max(m.total for m in mems), cap)
        if need <= charge:
            break
        charge = need
    return passes, [PassMemory(m.handover, min(m.cache, max(0, charge - m.box - m.held)), m.box,
                               m.held) for m in mems]
