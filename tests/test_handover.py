"""Hand-over bricks: one-level passes whose bricks never read past their end, with the
computed level assembled into whole cells (``levels/assemble.py``,
``levels/schedule.py``). The stores they write are bit-identical to aligned bricks';
every output is computed once, every cell written once and whole; a failed run
resumes to the same store; the planner takes hand-over only where it holds less."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zarr.storage import MemoryStore

import ngff_gpu as nz
from ngff_gpu.compute.methods import Methods
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import write_multiscales
from ngff_gpu.levels.assemble import CellAssembler, hold_peak
from ngff_gpu.levels.bricks import Pass, iter_bricks, iter_handover_bricks
from ngff_gpu.levels.engine import write_region
from ngff_gpu.levels.plan import plan_levels
from ngff_gpu.levels.schedule import pass_memory
from ngff_gpu.levels.source import Grid, ReadPlan, read_order

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(1, 65535, shape, dtype=np.uint16)


def _zarr_source(pixels, chunks):
    z = zarr.create_array(MemoryStore(), shape=pixels.shape, chunks=chunks, dtype="uint16")
    z[...] = pixels
    return z


def _levels(store, n):
    root = zarr.open_group(store, mode="r")
    return [root[f"scale{k}/image"][...] if f"scale{k}" in root else None for k in range(n)]


def _write(src, dims, factors, chunks, budget, handover=True, write=write_region, **kw):
    """Write ``src`` with ``budget`` bytes per brick; ``handover=False`` plans aligned
    bricks only. Returns the store, the report."""
    ms = nz.to_multiscales(nz.to_ngff_image(src, dims=list(dims)), scale_factors=factors,
                           chunks=chunks, method="gaussian")
    store = kw.pop("store", None) or MemoryStore()
    report = write_multiscales(store, ms, memory_limit="16MiB",
                               seams=Seams(brick_budget=budget, write=write, handover=handover),
                               **kw)
    return store, report, ms


@st.composite
def _cases(draw):
    ndim = draw(st.integers(2, 3))
    shape = tuple(draw(st.integers(12, 40)) for _ in range(ndim))
    src_chunks = tuple(draw(st.integers(3, 16)) for _ in range(ndim))
    chunks = draw(st.sampled_from([4, 6, 8]))
    dims = "zyx"[-ndim:]
    factors = draw(st.sampled_from([[2], [2, 4], [dict(zip(dims, (1, 2, 2)[-ndim:]))]]))
    budget = draw(st.sampled_from([6_000, 20_000, 60_000]))
    cps = draw(st.sampled_from([None, 2]))
    return shape, src_chunks, chunks, factors, budget, cps


@SETTINGS
@given(_cases())
def test_handover_store_equals_aligned(case):
    """Same bits as aligned bricks for any shape, source chunks, output chunks, shards
    and brick budget; the computed levels pass through the assembler."""
    shape, src_chunks, chunks, factors, budget, cps = case
    dims = "zyx"[-len(shape):]
    pixels = _pixels(shape, seed=sum(shape))
    got, report, ms = _write(_zarr_source(pixels, src_chunks), dims, factors, chunks, budget,
                             version="0.5", chunks_per_shard=cps)
    want, ref, _ = _write(_zarr_source(pixels, src_chunks), dims, factors, chunks, budget,
                          handover=False, version="0.5", chunks_per_shard=cps)
    assert not any(pp.handover for pp in ref.passes)
    n = len(ms.images)
    for k, (g, w) in enumerate(zip(_levels(got, n), _levels(want, n))):
        assert g.tobytes() == w.tobytes(), k


def test_handover_runs_where_it_holds_less():
    """A GAUSSIAN one-level pass over a chunked source takes hand-over bricks; the
    planner's choice shows in the report, and the levels equal the in-memory write's."""
    pixels = _pixels((40, 52, 44), seed=2)
    store, report, _ = _write(_zarr_source(pixels, (8, 8, 8)), "zyx", [2, 4], 8, 20_000)
    assert report.passes[0].pass_.last == 1 and report.passes[0].handover
    ref = nz.to_multiscales(nz.to_ngff_image(pixels, dims=list("zyx")), scale_factors=[2, 4],
                            chunks=8, method="gaussian")
    mem = MemoryStore()
    write_multiscales(mem, ref, memory_limit="16MiB", seams=Seams(brick_budget=20_000))
    for g, w in zip(_levels(store, 3), _levels(mem, 3)):
        assert g.tobytes() == w.tobytes()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_handover_bricks_compute_each_output_once_and_read_nothing_past_their_end(data):
    ndim = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.integers(8, 60)) for _ in range(ndim))
    factors = [dict(zip("zyx"[-ndim:], data.draw(st.sampled_from([(2, 2, 2), (2, 1, 2),
                                                                   (4, 2, 3)]))[-ndim:]))]
    levels = plan_levels(list("zyx"[-ndim:]), shape, {}, {}, factors, 8, Methods.GAUSSIAN,
                         "scale_factors")
    brick = tuple(data.draw(st.integers(1, 5)) * 4 for _ in range(ndim))
    p = Pass(0, 1, brick)
    bricks = list(iter_handover_bricks(levels, p))
    step = levels[1].step
    seen = np.zeros(levels[1].shape, dtype=np.int32)
    src = np.zeros(shape, dtype=np.int32)
    for b in bricks:
        own = b.write[0]
        src[tuple(slice(a, c) for a, c in own)] += 1
        # reads its own region and below it less than one input window; never past its end
        widths = [last - first + 1 for first, last in map(step.taps, range(ndim))]
        assert all(r[1] == o[1] and o[0] + 1 - w <= r[0] <= o[0]
                   for r, o, w in zip(b.read, own, widths))
        if 1 in b.write:
            out = b.write[1]
            assert b.need[1] == out
            seen[tuple(slice(a, c) for a, c in out)] += 1
            window = step.input_window(out, shape)
            assert all(r[0] <= w[0] and w[1] <= r[1] for r, w in zip(b.read, window))
    assert (seen == 1).all() and (src == 1).all()


def test_assembler_writes_each_cell_once_whole_and_holds_what_the_plan_says():
    """Fed brick by brick (writes done at once), every cell is written once, whole and
    right; the buffers never hold more than :func:`hold_peak`; a brick is reported once, after
    the last cell it touched."""
    shape = (50, 38, 44)
    levels = plan_levels(list("zyx"), shape, {}, {}, [2], 6, Methods.GAUSSIAN, "scale_factors")
    p = Pass(0, 1, (12, 12, 24))
    bricks = read_order(levels, p, list(iter_handover_bricks(levels, p)))
    out_shape = levels[1].shape
    truth = _pixels(out_shape, seed=7)
    grid = Grid.regular(out_shape, (6, 6, 6))
    written, reported, order = [], [], []

    def write(region, data, on_written):
        written.append(region)
        assert np.array_equal(data, truth[tuple(slice(a, b) for a, b in region)])
        on_written()

    asm = CellAssembler(bricks, 1, grid, np.uint16, lambda i: False, write, reported.append)
    for b in bricks:
        order.append(b.index)
        region = b.write[1]
        asm.put(region, truth[tuple(slice(a, c) for a, c in region)])
        assert all(i in order for i in reported)
    cells = [grid.cell_region(c) for c in itertools.product(*(range(len(bd) - 1)
                                                              for bd in grid.bounds))]
    assert sorted(written) == sorted(cells)
    assert sorted(reported) == sorted(b.index for b in bricks)
    assert asm.unfinished == 0 and asm.held == 0
    assert 0 < asm.peak <= hold_peak(bricks, 1, grid, 2)  # the plan's charge bounds it


def test_assembler_drops_cells_an_earlier_run_wrote():
    """On resume, a cell with a contributor marked done was written whole: its pieces
    are dropped and the remaining bricks wait only on the other cells."""
    shape = (32, 32)
    levels = plan_levels(list("yx"), shape, {}, {}, [2], 8, Methods.GAUSSIAN, "scale_factors")
    p = Pass(0, 1, (16, 16))
    bricks = list(iter_handover_bricks(levels, p))
    grid = Grid.regular(levels[1].shape, (8, 8))
    done = {bricks[0].index}
    written, reported = [], []
    asm = CellAssembler(bricks, 1, grid, np.uint16, done.__contains__,
                        lambda r, d, cb: (written.append(r), cb()), reported.append)
    for b in bricks[1:]:
        asm.put(b.write[1], np.zeros([c - a for a, c in b.write[1]], np.uint16))
    first = set(itertools.product(*grid.cell_range(bricks[0].write[1])))
    every = set(itertools.product(*(range(len(bd) - 1) for bd in grid.bounds)))
    assert sorted(written) == sorted(grid.cell_region(c) for c in every - first)
    feeds = {b.index: set(itertools.product(*grid.cell_range(b.write[1]))) for b in bricks[1:]}
    assert sorted(reported) == sorted(i for i, cells in feeds.items() if cells - first)
    assert asm.unfinished == 0 and asm.cells_of(bricks[1].index) == 0


class _FailAfter:
    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, array, region, data):
        self.calls += 1
        if self.calls > self.n:
            raise OSError("disk full (simulated)")
        write_region(array, region, data)


@pytest.mark.parametrize("fail_at", [0.1, 0.5, 0.9])
def test_failed_handover_write_resumes_to_the_same_store(tmp_path: Path, fail_at):
    """A hand-over pass that fails part-way (cells still in buffers are lost) resumes to
    the clean store: a brick is marked done only once every cell it fed is written."""
    pixels = _pixels((40, 36, 44), seed=4)
    src = _zarr_source(pixels, (8, 8, 8))
    counting = _FailAfter(10**9)
    clean, report, ms = _write(src, "zyx", [2, 4], 8, 6_000, write=counting,
                               store=str(tmp_path / "clean.zarr"))
    assert report.passes[0].handover
    broken = str(tmp_path / "broken.zarr")
    with pytest.raises(OSError, match="simulated"):
        _write(src, "zyx", [2, 4], 8, 6_000, write=_FailAfter(int(fail_at * counting.calls)),
               store=broken)
    again = _FailAfter(10**9)
    _write(src, "zyx", [2, 4], 8, 6_000, write=again, store=broken, resume=True)
    for g, w in zip(_levels(broken, 3), _levels(clean, 3)):
        assert g.tobytes() == w.tobytes()
    nz.validate_store(broken)
    if fail_at >= 0.5:  # bricks flagged done before the failure are not run again
        assert again.calls < counting.calls


def test_every_handover_brick_is_flagged_once_its_cells_are_written():
    """The engine flags each brick once: after its own writes and the last cell it fed."""
    from ngff_gpu.compute.backends import get_backend
    from ngff_gpu.levels.bricks import brick_bytes, count_bricks
    from ngff_gpu.levels.engine import Engine

    shape = (40, 36, 44)
    src = _zarr_source(_pixels(shape, seed=5), (8, 8, 8))
    levels = plan_levels(list("zyx"), shape, {}, {}, [2], 8, Methods.GAUSSIAN, "scale_factors")
    p = Pass(0, 1, (16, 16, 16))
    arrays = {k: zarr.create_array(MemoryStore(), shape=lv.shape, chunks=lv.chunks,
                                   dtype="uint16") for k, lv in enumerate(levels)}
    written: set = set()
    flagged: list[int] = []

    def write(array, region, data):
        if array is arrays[1]:
            written.add(region)
        write_region(array, region, data)

    def mark(index):
        cells = Grid.regular(levels[1].shape, levels[1].chunks)
        fed = [cells.cell_region(c) for c in itertools.product(
            *cells.cell_range(bricks[index].write[1]))]
        assert all(r in written for r in fed)  # every cell it fed is stored already
        flagged.append(index)

    bricks = {b.index: b for b in iter_handover_bricks(levels, p)}
    Engine(get_backend("cpu"), 1 << 26, write=write).run_pass(
        levels, p, src, arrays, lambda i: False, mark, brick_bytes(levels, 0, 1, p.brick, 2, 4),
        handover=True)
    assert sorted(flagged) == list(range(count_bricks(levels, p)))


def test_planner_prefers_the_form_that_holds_less():
    """At 1024^3 with 128^3 chunks, hand-over bricks hold a fraction of what aligned
    bricks cache (one output cell layer instead of one input chunk layer); a pass
    without halo (MEAN) or on an in-memory source stays aligned; a cap below the
    hand-over total keeps aligned bricks."""
    shape = (1024,) * 3
    levels = plan_levels(list("zyx"), shape, {}, {}, [2, 4, 8], 128, Methods.GAUSSIAN,
                         "scale_factors")
    grids = [lv.chunks for lv in levels]
    p = Pass(0, 1, (256, 256, 256))
    grid = Grid.regular(shape, (128, 128, 128))
    mem = pass_memory(levels, grids, p, grid, 2, True, 1 << 30)
    aligned = ReadPlan(grid, read_order(levels, p, list(iter_bricks(levels, p))), 2)
    assert mem.handover and 3 * mem.total < aligned.cache_peak + aligned.box_peak
    assert mem.held == hold_peak(read_order(levels, p, list(iter_handover_bricks(levels, p))),
                                 1, Grid.regular(levels[1].shape, grids[1]), 2)
    assert not pass_memory(levels, grids, p, grid, 2, False, 1 << 30).handover
    assert not pass_memory(levels, grids, p, grid, 2, True, mem.total - 1).handover
    assert pass_memory(levels, grids, p, None, 2, True, 1 << 30).total == 0
    mean = plan_levels(list("zyx"), shape, {}, {}, [2], 128, Methods.MEAN, "scale_factors")
    assert not pass_memory(mean, [lv.chunks for lv in mean], p, grid, 2, True, 1 << 30).handover


def test_passes_whose_read_side_is_large_are_cut_to_one_level():
    """A pass of several levels runs aligned bricks; where its read side would hold more
    than an eighth of the budget, the planner cuts it into one-level passes that run
    hand-over bricks and hold less; without hand-over (a cluster) it stays whole."""
    from ngff_gpu.levels.bricks import plan_passes
    from ngff_gpu.levels.schedule import plan_with_read_cache

    shape = (256, 256, 256)
    levels = plan_levels(list("zyx"), shape, {}, {}, [2, 4, 8], 16, Methods.GAUSSIAN,
                         "scale_factors")
    grids = [lv.chunks for lv in levels]

    def grid_of(p):
        return Grid.regular(levels[p.source].shape, (32,) * 3 if p.source == 0 else grids[p.source])

    budget = 64 << 20
    whole, whole_mem = plan_with_read_cache(plan_passes, levels, grids, 2, 4, budget,
                                            lambda h: h // 3, grid_of, False)
    cut, cut_mem = plan_with_read_cache(plan_passes, levels, grids, 2, 4, budget,
                                        lambda h: h // 3, grid_of, True)
    assert whole[0].last > 1 and whole_mem[0].total > budget // 8 and not whole_mem[0].handover
    assert cut[0].last == 1 and cut_mem[0].handover
    assert max(m.total for m in cut_mem) < whole_mem[0].total
    assert all(m.total <= budget // 8 or p.last == p.source + 1 for p, m in zip(cut, cut_mem))
