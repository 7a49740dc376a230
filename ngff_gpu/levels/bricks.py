"""Cut the work into passes and bricks (pure Python, no data touched).

A pass reads one *source* level (level 0 from the input, or a level written by
an earlier pass) and computes the levels after it. Its bricks are regions of
the source level aligned to the write grid (chunks, or shards) of every level
the pass writes, so each chunk or shard has exactly one writer. For each brick
the *need* regions are derived backwards from the coarsest level through
:meth:`LevelStep.input_window`: level ``k-1`` is computed over what level ``k``
reads (its halo included), so results are bit-identical whatever the brick.

Levels whose alignment unit and halo would not fit the memory budget go to a
further pass that starts from the last level written.

A one-level pass may also be cut into *hand-over* bricks
(:func:`iter_handover_bricks`): the same source regions, but each computes the
outputs whose input ends inside it, so it never reads past its end; their output
regions are not aligned and the engine assembles them into whole cells.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ngff_gpu.compute.step import LevelStep, Region
from ngff_gpu.levels.plan import LevelPlan


@dataclass(frozen=True)
class Pass:
    """One read of a source level computing the levels ``source+1 .. last``.

    Attributes
    ----------
    source : int
        Level read (0: the input).
    last : int
        Last level computed.
    brick : tuple of int
        Brick shape in source-level samples.
    """

    source: int
    last: int
    brick: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.last < self.source or any(b < 1 for b in self.brick):
            raise ValueError(f"invalid pass {self}")

    @property
    def levels(self) -> range:
        """Levels computed (not counting the source)."""
        return range(self.source + 1, self.last + 1)


@dataclass(frozen=True)
class Brick:
    """One unit of work: the regions read, computed and written.

    Attributes
    ----------
    index : int
        Position in the pass (C order).
    read : Region
        Source-level region read.
    need : dict
        Per computed level, the region computed (written region plus halo for the next).
    write : dict
        Per level (source included for pass 0), the region written.
    """

    index: int
    read: Region
    need: dict[int, Region]
    write: dict[int, Region]


def _rel(levels: Sequence[LevelPlan], src: int, k: int) -> tuple[int, ...]:
    """Factor per axis of level ``k`` relative to level ``src``."""
    out = [1] * len(levels[0].shape)
    for lv in levels[src + 1 : k + 1]:
        out = [a * b for a, b in zip(out, lv.step.factors)]
    return tuple(out)


def alignment_unit(levels: Sequence[LevelPlan], grids: Sequence[tuple[int, ...]], src: int,
                   last: int) -> tuple[int, ...]:
    """Smallest brick (in source samples) aligned to the grid of every level ``src..last``."""
    unit = list(grids[src])
    for k in range(src + 1, last + 1):
        rel = _rel(levels, src, k)
        unit = [math.lcm(u, g * f) for u, g, f in zip(unit, grids[k], rel)]
    return tuple(unit)


def halo_total(levels: Sequence[LevelPlan], src: int, last: int) -> tuple[int, ...]:
    """Source samples read beyond a brick on each side (cascaded halos)."""
    halo = [0] * len(levels[0].shape)
    for k in range(last, src, -1):
        step = levels[k].step
        halo = [f * h + max(lo, hi) for h, f, (lo, hi) in zip(halo, step.factors, step.halo())]
    return tuple(halo)


def brick_bytes(levels: Sequence[LevelPlan], src: int, last: int, brick: Sequence[int],
                itemsize: int, compute_itemsize: int) -> int:
    """Working memory of one brick: the read buffer plus compute intermediates."""
    halo = halo_total(levels, src, last)
    shape = levels[src].shape
    n = 1
    for b, h, s in zip(brick, halo, shape):
        n *= min(b + 2 * h, s + 2 * h)
    return n * (itemsize + 2 * compute_itemsize)


def plan_passes(levels: Sequence[LevelPlan], grids: Sequence[tuple[int, ...]], itemsize: int,
                compute_itemsize: int, budget: int,
                one_level: frozenset[int] = frozenset()) -> list[Pass]:
    """Passes and brick shapes so one brick's working memory fits ``budget`` bytes.

    A pass takes as many levels as fit with one alignment unit (one only when it
    reads a level in ``one_level``); the brick then grows by whole units (last
    axes first) while it fits.
    """
    passes: list[Pass] = []
    src, n_levels = 0, len(levels)
    while src < n_levels - 1 or not passes:
        last = src + 1 if n_levels > 1 else 0
        while last + 1 < n_levels and src not in one_level:
            unit = alignment_unit(levels, grids, src, last + 1)
            if brick_bytes(levels, src, last + 1, unit, itemsize, compute_itemsize) > budget:
                break
            last += 1
        unit = alignment_unit(levels, grids, src, last)
        shape = levels[src].shape
        brick = list(unit)
        for axis in reversed(range(len(brick))):
            while brick[axis] < shape[axis]:
                trial = brick.copy()
                trial[axis] = min(brick[axis] * 2, -(-shape[axis] // unit[axis]) * unit[axis])
                if brick_bytes(levels, src, last, trial, itemsize, compute_itemsize) > budget:
                    break
                brick = trial
        passes.append(Pass(src, last, tuple(brick)))
        if last == src:
            break
        src = last
    return passes


def iter_bricks(levels: Sequence[LevelPlan], p: Pass) -> Iterator[Brick]:
    """The bricks of pass ``p`` in C order, with their read, need and write regions."""
    shape = levels[p.source].shape
    counts = [-(-n // b) for n, b in zip(shape, p.brick)]
    rels = {k: _rel(levels, p.source, k) for k in p.levels}
    for index, idx in enumerate(itertools.product(*(range(c) for c in counts))):
        region = tuple((i * b, min((i + 1) * b, n)) for i, b, n in zip(idx, p.brick, shape))
        write: dict[int, Region] = {}
        if p.source == 0:
            write[0] = region
        for k in p.levels:
            out = tuple((a // f, min(b // f, n) if b < s else n)
                        for (a, b), f, n, s in zip(region, rels[k], levels[k].shape, shape))
            if all(a < b for a, b in out):
                write[k] = out
        need: dict[int, Region] = {}
        below: Region | None = None
        for k in range(p.last, p.source, -1):
            own = write.get(k)
            if below is None:
                cur = own
            elif own is None:
                cur = below
            else:
                cur = tuple((min(a, c), max(b, d)) for (a, b), (c, d) in zip(own, below))
            if cur is None:
                continue
            need[k] = cur
            below = levels[k].step.input_window(cur, levels[k - 1].shape)
        read = below if below is not None else region
        if p.source == 0:
            read = tuple((min(a, c), max(b, d)) for (a, b), (c, d) in zip(read, region))
        if not need and p.source != 0:
            continue
        yield Brick(index=index, read=read, need=need, write=write)


def count_bricks(levels: Sequence[LevelPlan], p: Pass) -> int:
    """Number of bricks of pass ``p`` (including ones that write nothing)."""
    return math.prod(-(-n // b) for n, b in zip(levels[p.source].shape, p.brick))


def handover_split(step: LevelStep, axis: int, bounds: Sequence[int], n: int, m: int) -> list[int]:
    """Output boundaries along ``axis`` for input brick boundaries ``bounds``
    (``[0, .., n]``): output ``i`` goes to the first brick whose end covers its whole
    input window, so no brick reads past its own end (``m`` outputs in all)."""
    f = step.factors[axis]
    _, last = step.taps(axis)
    out = [0]
    for b in bounds[1:-1]:
        # the smallest i whose window reaches past b: f*i + last + 1 > b
        out.append(min(max((b - last - 1) // f + 1, out[-1], 0), m))
    out.append(m)
    return out


def iter_handover_bricks(levels: Sequence[LevelPlan], p: Pass) -> Iterator[Brick]:
    """The bricks of a one-level pass (``p.last == p.source + 1``) in *hand-over*
    form, C order: a brick reads its source region ``[B_k, B_k+1)`` and below it
    the halo that its outputs need, never past its end; it computes every output of
    level ``p.last`` whose input window ends inside it and was not computable by the
    brick before (see :func:`handover_split`). So the source chunks a brick decodes
    are its own, and of them the later bricks need only the thin strips under their
    halo; the outputs no longer fall on the level's write grid, and the engine
    assembles them into whole chunks (see :mod:`ngff_gpu.levels.assemble`). The
    source level's own region (pass 0 writes it) stays aligned."""
    if p.last != p.source + 1:
        raise ValueError(f"hand-over bricks compute one level; pass {p} computes "
                         f"{p.last - p.source}")
    shape = levels[p.source].shape
    out_shape = levels[p.last].shape
    step = levels[p.last].step
    counts = [-(-n // b) for n, b in zip(shape, p.brick)]
    bounds = [[min(i * b, n) for i in range(c + 1)] for c, b, n in zip(counts, p.brick, shape)]
    splits = [handover_split(step, ax, bd, n, m)
              for ax, (bd, n, m) in enumerate(zip(bounds, shape, out_shape))]
    for index, idx in enumerate(itertools.product(*(range(c) for c in counts))):
        region = tuple((bd[i], bd[i + 1]) for bd, i in zip(bounds, idx))
        out = tuple((sp[i], sp[i + 1]) for sp, i in zip(splits, idx))
        write: dict[int, Region] = {}
        if p.source == 0:
            write[0] = region
        need: dict[int, Region] = {}
        read = region
        if all(a < b for a, b in out):
            write[p.last] = need[p.last] = out
            window = step.input_window(out, shape)
            read = tuple((min(a, c), max(b, d)) for (a, b), (c, d) in zip(window, region))
        if not need and p.source != 0:
            continue
        yield Brick(index=index, read=read, need=need, write=write)
