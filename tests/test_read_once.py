"""The read stage decodes every source chunk (Zarr) and every tile or strip (TIFF)
exactly once per pass, whatever the halo and the brick budget, and the store it
writes is bit-identical to the one written from the same pixels in memory.

Decodes are counted at the source: chunk-key ``get`` calls of a wrapping Zarr
store; for a sharded input, data decodes of the inner chunks (the ``BytesCodec``
step of the inner codec pipeline, for the data dtype and the input's chunk shape;
shard indexes are uint64 and not counted); for TIFF, the segment decodes of our tile
reader (:class:`~ngff_gpu.io.inputs.tiff_tiles.TiffTiles`), and for the layouts it
leaves to tifffile's zarr store, that store's segment reads (one ``get`` per tile or
strip, each decoding it).
"""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest
import tifffile
import tifffile.zarr
import zarr
from zarr.codecs import BytesCodec
from zarr.storage import MemoryStore, WrapperStore

import ngff_gpu as nz
from ngff_gpu.io.inputs import open_input
from ngff_gpu.io.inputs.common import RegionArray
from ngff_gpu.io.inputs.tiff_tiles import TiffTiles
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import write_multiscales
from ngff_gpu.levels.bricks import iter_bricks, plan_passes
from ngff_gpu.levels.derive import level_plans
from ngff_gpu.levels.source import Grid, ReadPlan, SourceReader, _boxes, decode_parallelism

METHODS = ["gaussian", "mean"]
#: per-brick budgets (bytes): tiny (many small bricks, several passes), small, the writer's own
BUDGETS = [30_000, 200_000, None]
CASES = {  # dims: (shape, source chunks, output chunks, factors)
    "yx": ((150, 134), (16, 24), 16, [2, 4]),
    "zyx": ((40, 52, 44), (8, 12, 16), 8, [2, 4]),
}


class _CountingStore(WrapperStore):
    """Counts ``get`` calls per key (class-level: zarr re-wraps stores on open)."""

    counts: collections.Counter = collections.Counter()

    async def get(self, key, prototype, byte_range=None):
        type(self).counts[key] += 1
        return await self._store.get(key, prototype, byte_range)


def _pixels(shape, seed=0):
    """Nonzero uint16 pixels (so every chunk is stored, none is the fill value)."""
    return np.random.default_rng(seed).integers(1, 65535, shape, dtype=np.uint16)


def _write(data, dims, chunks, factors, method, budget=None, record=None):
    """Write with ``budget`` bytes per brick (None: the writer's own); the brick counts
    of the passes go to ``record``."""
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=list(dims)), scale_factors=factors,
                           chunks=chunks, method=method)
    store = MemoryStore()
    report = write_multiscales(store, ms, memory_limit="16MiB", seams=Seams(brick_budget=budget))
    if record is not None:
        record.append([pp.bricks for pp in report.passes])
    root = zarr.open_group(store, mode="r")
    return [root[ds.path][...] for ds in ms.metadata.datasets]


def _assert_same_levels(got, want):
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == w.tobytes(), k


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dims", list(CASES))
def test_zarr_chunks_decoded_once(dims, method, budget):
    shape, src_chunks, chunks, factors = CASES[dims]
    pixels = _pixels(shape)
    src = MemoryStore()
    z = zarr.create_array(src, shape=shape, chunks=src_chunks, dtype="uint16")
    z[...] = pixels
    record: list = []
    _CountingStore.counts = collections.Counter()
    got = _write(zarr.open_array(_CountingStore(src), mode="r"), dims, chunks, factors, method,
                 budget, record)
    reads = {k: n for k, n in _CountingStore.counts.items() if k.startswith("c/")}
    assert len(reads) == z.nchunks
    assert collections.Counter(reads.values()) == {1: z.nchunks}
    if budget is not None:
        assert record[-1][0] > 1, record  # several bricks, so halos cross neighbours' chunks
    _assert_same_levels(got, _write(pixels, dims, chunks, factors, method))


@pytest.mark.parametrize("budget", [30_000, None])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dims", list(CASES))
def test_sharded_zarr_inner_chunks_decoded_once(monkeypatch, dims, method, budget):
    shape, src_chunks, chunks, factors = CASES[dims]
    pixels = _pixels(shape, seed=1)
    src = MemoryStore()
    shards = tuple(2 * c for c in src_chunks)
    z = zarr.create_array(src, shape=shape, chunks=src_chunks, shards=shards, dtype="uint16")
    z[...] = pixels
    n_inner = int(np.prod([-(-n // c) for n, c in zip(shape, src_chunks)]))
    decodes = collections.Counter()
    real = BytesCodec._decode_single

    async def counting(self, chunk_bytes, chunk_spec):
        if chunk_spec.dtype.to_native_dtype() == np.dtype("uint16"):
            decodes[tuple(chunk_spec.shape)] += 1
        return await real(self, chunk_bytes, chunk_spec)

    zin = zarr.open_array(src, mode="r")
    monkeypatch.setattr(BytesCodec, "_decode_single", counting)
    got = _write(zin, dims, chunks, factors, method, budget)
    monkeypatch.undo()
    # (the output levels, read back by a later pass, have other chunk shapes)
    assert decodes[tuple(src_chunks)] == n_inner, decodes
    _assert_same_levels(got, _write(pixels, dims, chunks, factors, method))


@pytest.fixture
def tiff_decodes(monkeypatch):
    """Segment decodes, keyed by (reader, page or chunk key, segment): our tile reader's
    and tifffile's zarr store's (for the layouts our reader leaves to it)."""
    counts: collections.Counter = collections.Counter()
    real_get = tifffile.zarr.ZarrTiffStore.get
    real_decode = TiffTiles._decode

    async def counting_get(self, key, prototype, byte_range=None):
        if not key.endswith(("zarr.json", ".zarray", ".zattrs", ".zgroup")):
            counts[("store", key)] += 1
        return await real_get(self, key, prototype, byte_range)

    def counting_decode(self, page, index):
        counts[("tiles", page, index)] += 1
        return real_decode(self, page, index)

    monkeypatch.setattr(tifffile.zarr.ZarrTiffStore, "get", counting_get)
    monkeypatch.setattr(TiffTiles, "_decode", counting_decode)
    return counts


#: TIFF layouts: how they are written, and which reader reads them
TIFF_LAYOUTS = {
    "tiles": ({"tile": (16, 32)}, "tiles"),
    "strips": ({"rowsperstrip": 8}, "tiles"),
    "tiles-predictor": ({"tile": (16, 16), "predictor": True}, "tiles"),
    # one contiguous uncompressed block: tifffile's store reads it
    "contiguous": ({"compression": None}, "store"),
}


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layout", list(TIFF_LAYOUTS))
@pytest.mark.parametrize("dims", list(CASES))
def test_tiff_tiles_and_strips_decoded_once(tmp_path, tiff_decodes, dims, layout, method,
                                            budget):
    shape, _src_chunks, chunks, factors = CASES[dims]
    pixels = _pixels(shape, seed=2)
    path = str(tmp_path / "in.tif")
    kw, reader = TIFF_LAYOUTS[layout]
    tifffile.imwrite(path, pixels, **{"compression": "zlib", **kw})
    with tifffile.TiffFile(path) as tif:
        pages = tif.series[0].pages
        n_segments = sum(len(p.dataoffsets) for p in pages)
    opened = open_input(path, dims=dims)
    assert isinstance(opened.data, RegionArray) == (reader == "tiles")
    got = _write(opened.data, dims, chunks, factors, method, budget)
    assert {k[0] for k in tiff_decodes} == {reader}
    assert sum(tiff_decodes.values()) == n_segments, tiff_decodes
    assert set(tiff_decodes.values()) == {1}
    _assert_same_levels(got, _write(pixels, dims, chunks, factors, method))


@pytest.mark.parametrize("box_cells", [1, 64])
def test_read_plan_cache_is_bounded_by_its_capacity(box_cells):
    """A cache too small for the plan keeps what fits: output still exact, some cells
    decoded again, and the cache never holds more than its capacity; the same with
    layers merged into boxes of up to 64 cells."""
    shape = (48, 40, 56)
    pixels = _pixels(shape, seed=3)
    src = zarr.create_array(MemoryStore(), shape=shape, chunks=(8, 8, 8), dtype="uint16")
    src[...] = pixels
    ms = nz.to_multiscales(pixels, scale_factors=[2, 4], chunks=8, method="gaussian")
    levels = level_plans(ms)
    [p] = plan_passes(levels, [lv.chunks for lv in levels], 2, 4, 1 << 30)[:1]
    p = type(p)(p.source, p.last, (16, 16, 16))
    bricks = list(iter_bricks(levels, p))
    plan = ReadPlan(Grid.regular(shape, (8, 8, 8)), bricks, 2, box_cells=box_cells)
    assert plan.cache_peak > 0
    single = ReadPlan(Grid.regular(shape, (8, 8, 8)), bricks, 2, box_cells=1)
    assert (plan.box_peak > single.box_peak) == (box_cells > 1)  # layers really merged
    for capacity, exact in ((plan.cache_peak, True), (plan.cache_peak // 3, False), (0, False)):
        reader = SourceReader(src, plan, capacity)
        held = []
        for pos, b in enumerate(bricks):
            data = reader.read(pos)
            held.append(reader.held)
            assert data.tobytes() == pixels[tuple(slice(a, c) for a, c in b.read)].tobytes()
        assert max(held) <= capacity and reader.held == 0 and not reader.cache
        n_cells = int(np.prod([n // 8 for n in shape]))
        assert (reader.decoded == n_cells) == exact, (capacity, reader.decoded)


def test_read_plan_order_and_boxes():
    """Cells are first read by the earliest brick, and each brick's new cells come as
    boxes one cell thick along the slowest axis."""
    shape = (32, 32)
    pixels = _pixels(shape, seed=4)
    ms = nz.to_multiscales(pixels, scale_factors=[2], chunks=8, method="gaussian")
    levels = level_plans(ms)
    p = plan_passes(levels, [lv.chunks for lv in levels], 2, 4, 1 << 30)[0]
    p = type(p)(p.source, p.last, (8, 8))
    bricks = list(iter_bricks(levels, p))
    plan = ReadPlan(Grid.regular(shape, (4, 4)), bricks, 2)
    for cell, users in plan.users.items():
        assert users == sorted(users)
        first = plan.bricks[users[0]].read
        region = plan.grid.cell_region(cell)
        assert all(a < d and c < b for (a, b), (c, d) in zip(region, first))
    for cell in itertools.product(range(8), range(8)):
        assert cell in plan.users


def test_boxes_merge_layers_up_to_the_parallelism():
    """Layers with the same cross-section merge while the box holds fewer than
    ``min_cells`` cells; other layers stay apart; every cell is covered once."""
    layer = [(i, j, k) for i in range(5) for j in range(2) for k in range(3)]  # 6 per layer
    assert _boxes(layer, 1) == [(range(i, i + 1), range(2), range(3)) for i in range(5)]
    merged = _boxes(layer, 12)  # 6 < 12: merge; 12 cells: stop
    assert merged == [(range(0, 2), range(2), range(3)), (range(2, 4), range(2), range(3)),
                      (range(4, 5), range(2), range(3))]
    ragged = layer + [(5, 0, 0)]  # a last layer of another cross-section stays apart
    boxes = _boxes(ragged, 1000)
    assert boxes[-1] == (range(5, 6), range(0, 1), range(0, 1))
    covered = [c for b in boxes for c in itertools.product(*b)]
    assert sorted(covered) == sorted(ragged)
    assert decode_parallelism() >= 2


@pytest.mark.parametrize("method", METHODS)
def test_merged_boxes_still_decode_each_chunk_once(monkeypatch, method):
    """With boxes of many layers (a many-core machine), each chunk is still decoded once
    and the levels are the same."""
    import ngff_gpu.levels.source as source

    monkeypatch.setattr(source, "decode_parallelism", lambda: 64)
    shape, src_chunks, chunks, factors = CASES["zyx"]
    pixels = _pixels(shape, seed=6)
    src = MemoryStore()
    z = zarr.create_array(src, shape=shape, chunks=src_chunks, dtype="uint16")
    z[...] = pixels
    _CountingStore.counts = collections.Counter()
    got = _write(zarr.open_array(_CountingStore(src), mode="r"), "zyx", chunks, factors, method,
                 30_000)
    reads = {k: n for k, n in _CountingStore.counts.items() if k.startswith("c/")}
    assert collections.Counter(reads.values()) == {1: z.nchunks}
    _assert_same_levels(got, _write(pixels, "zyx", chunks, factors, method))


def test_level_graphs_are_built_only_when_read():
    """``to_ngff_zarr`` streams through the engine and never builds the dask graphs of
    levels 1..N; ``images[k].data`` still gives the dask array, built on first access."""
    import dask.array as da

    pixels = _pixels((24, 40, 36), seed=5)
    ms = nz.to_multiscales(pixels, scale_factors=[2, 4], chunks=8, method="gaussian")
    store = MemoryStore()
    report = write_multiscales(store, ms)
    assert [im.pending() is not None for im in ms.images] == [False, True, True]
    assert len(report.passes) >= 1 and report.passes[0].segment.first == 0
    assert len(report.passes[-1].segment.levels) == 3  # levels 1, 2 computed from level 0
    level2 = ms.images[2].data
    assert isinstance(level2, da.Array)
    assert [im.pending() is None for im in ms.images] == [True, True, True]  # 1 built for 2
    assert ms.images[2].data is level2 and ms.images[1].data.shape == (12, 20, 18)
    root = zarr.open_group(store, mode="r")
    assert level2.compute().tobytes() == root[ms.metadata.datasets[2].path][...].tobytes()


def test_local_zarr_is_read_through_zarrs_and_huge_cells_as_regions(tmp_path, monkeypatch):
    import dask.array as da

    from ngff_gpu.io.read_pipeline import parallel_source
    from ngff_gpu.levels.source import source_grid, usable_grid

    pytest.importorskip("zarrs")
    pixels = _pixels((20, 30, 40), seed=6)
    local = zarr.create_array(str(tmp_path / "in.zarr"), shape=pixels.shape, chunks=(8, 8, 8),
                              dtype="uint16")
    local[...] = pixels
    opened = zarr.open_array(str(tmp_path / "in.zarr"), mode="r")
    fast = parallel_source(opened)
    assert type(fast.async_array.codec_pipeline).__name__ == "ZarrsCodecPipeline"
    assert fast[3:17, 5:29, 1:39].tobytes() == pixels[3:17, 5:29, 1:39].tobytes()
    in_memory = zarr.open_array(MemoryStore(), mode="w", shape=(4, 4), dtype="uint8")
    assert parallel_source(in_memory) is in_memory  # a store zarrs does not read
    monkeypatch.setenv("NGFF_GPU_CODEC_PIPELINE", "zarr")
    assert parallel_source(opened) is opened
    # Grids: zarr chunks, dask chunks; none for NumPy; none when one cell is too big.
    assert source_grid(opened).bounds[0] == (0, 8, 16, 20)
    assert source_grid(da.from_array(pixels, chunks=(7, 30, 40))).bounds[0] == (0, 7, 14, 20)
    assert source_grid(pixels) is None
    assert usable_grid(opened, 8 * 8 * 8 * 2 * 8) is not None
    assert usable_grid(opened, 8 * 8 * 8 * 2 * 8 - 1) is None


@pytest.mark.parametrize("method", METHODS)
def test_wide_image_marches_along_its_long_axis(method):
    """A wide 2-D image is read column slab by column slab (the smaller cross-section
    outermost): a smaller cache than row order, and still one decode per chunk."""
    from ngff_gpu.levels.source import read_order

    shape, src_chunks = (48, 400), (8, 16)
    pixels = _pixels(shape, seed=7)
    ms = nz.to_multiscales(pixels, scale_factors=[2, 4], chunks=8, method=method)
    levels = level_plans(ms)
    p = plan_passes(levels, [lv.chunks for lv in levels], 2, 4, 4000)[0]
    bricks = list(iter_bricks(levels, p))
    assert len(bricks) > 4
    grid = Grid.regular(shape, src_chunks)
    c_order = ReadPlan(grid, bricks, 2)
    ordered = ReadPlan(grid, read_order(levels, p, bricks), 2)
    if method == "gaussian":
        assert ordered.cache_peak < c_order.cache_peak
    src = MemoryStore()
    zarr.create_array(src, shape=shape, chunks=src_chunks, dtype="uint16")[...] = pixels
    record: list = []
    _CountingStore.counts = collections.Counter()
    got = _write(zarr.open_array(_CountingStore(src), mode="r"), "yx", 8, [2, 4], method,
                 4000, record)
    assert record[-1][0] > 4, record
    reads = [n for k, n in _CountingStore.counts.items() if k.startswith("c/")]
    assert len(reads) == grid_cells(shape, src_chunks) and set(reads) == {1}
    _assert_same_levels(got, _write(pixels, "yx", 8, [2, 4], method))


def grid_cells(shape, chunks):
    return int(np.prod([-(-n // c) for n, c in zip(shape, chunks)]))


@pytest.mark.parametrize("pipeline", ["zarr", "zarrs"])
@pytest.mark.parametrize("method", METHODS)
def test_boxes_inside_a_brick_are_decoded_in_place(tmp_path, monkeypatch, pipeline, method):
    """A box that lies inside its brick and maps to a contiguous part of it is decoded
    straight into the brick (no intermediate array, no copy): with no halo (MEAN)
    every box is; chunks never written read as the fill value; the bricks equal the
    pixels either way, and each chunk is still decoded once."""
    import ngff_gpu.levels.source as source
    from ngff_gpu.io.read_pipeline import parallel_source

    shape, chunks = (48, 40, 56), (8, 40, 56)  # boxes span whole (y, x) planes
    pixels = _pixels(shape, seed=9)
    pixels[:16] = 0  # chunks of zeros are not stored: read back as the fill value
    store = MemoryStore() if pipeline == "zarr" else str(tmp_path / "src.zarr")
    z = zarr.create_array(store, shape=shape, chunks=chunks, dtype="uint16", fill_value=0)
    z[...] = pixels
    src = z if pipeline == "zarr" else parallel_source(zarr.open_array(store, mode="r"))
    if pipeline == "zarrs":
        assert type(src.async_array.codec_pipeline).__name__ == "ZarrsCodecPipeline"
    ms = nz.to_multiscales(pixels, scale_factors=[2], chunks=8, method=method)
    levels = level_plans(ms)
    p = plan_passes(levels, [lv.chunks for lv in levels], 2, 4, 1 << 30)[0]
    p = type(p)(p.source, p.last, (16, 40, 56))
    bricks = list(iter_bricks(levels, p))
    copied = []
    real = source.read_region
    monkeypatch.setattr(source, "read_region", lambda s, r: copied.append(r) or real(s, r))
    reader = SourceReader(src, ReadPlan(Grid.regular(shape, chunks), bricks, 2), 1 << 30)
    for pos, b in enumerate(bricks):
        assert reader.read(pos).tobytes() == pixels[tuple(slice(a, c) for a, c in b.read)].tobytes()
    assert reader.decoded == z.nchunks
    if method == "mean":
        assert copied == []
    else:  # boxes under a halo reach past the brick: decoded apart, then pasted
        assert copied
