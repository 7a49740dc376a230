"""The streaming engine: bit-identity with the in-memory reference whatever the
plan (passes, bricks, budgets), brick tiling and alignment, lazy inputs, and
"no OME metadata until complete"."""

from __future__ import annotations

import collections
import itertools
import tempfile
import tracemalloc
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from zarr.storage import LocalStore, MemoryStore, WrapperStore

import ngff_gpu as nz
from ngff_gpu.compute.methods import Methods, compute_dtype
from ngff_gpu.compute.reduce_numpy import reduce_full
from ngff_gpu.io.session import IN_PROGRESS_ATTR, PROGRESS_GROUP
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import shard_shapes, write_multiscales
from ngff_gpu.levels.bricks import alignment_unit, count_bricks, iter_bricks, plan_passes
from ngff_gpu.levels.derive import level_plans
from ngff_gpu.levels.engine import write_region

FACTOR_LISTS = [
    [2],
    [2, 4],
    [3],
    [2, 6],
    [{"z": 1, "y": 2, "x": 2}, {"z": 2, "y": 4, "x": 4}],
    [{"y": 3}, {"y": 3, "x": 2}],
]
DTYPES = ["uint8", "uint16", "int16", "float32"]
FLOAT_METHODS = [Methods.GAUSSIAN, Methods.MEAN, Methods.NEAREST, Methods.MIN, Methods.MAX]


# --------------------------------------------------------------------------- helpers


def _factors_for(factor_list, dims):
    """Drop dict entries naming dims the image does not have."""
    return [sf if isinstance(sf, int) else {d: f for d, f in sf.items() if d in dims}
            for sf in factor_list]


def _total_factor(factor_list, dim):
    if dim not in "zyx":
        return 1
    return max(sf if isinstance(sf, int) else sf.get(dim, 1) for sf in factor_list)


def _data(shape, dtype, method, seed):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if method is Methods.MODE:
        return rng.integers(0, 4, shape).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, shape, dtype=dtype)
    return (rng.standard_normal(shape) * 1000).astype(dtype)


def _reference(array, ms):
    """Every level with the NumPy reference, level by level."""
    out = [np.asarray(array)]
    for lv in level_plans(ms)[1:]:
        out.append(reduce_full(out[-1], lv.step))
    return out


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _levels_from_store(store, ms):
    root = zarr.open_group(store, mode="r")
    return [root[ds.path][...] for ds in ms.metadata.datasets]


def _store_files(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _assert_same_store(got: Path, want: Path):
    """Same keys and bytes; a shard may differ only in the order of its inner chunks (zarr
    encodes them concurrently), so shards are compared decoded."""
    fg, fw = _store_files(got), _store_files(want)
    assert sorted(fg) == sorted(fw)
    g, w = zarr.open_group(got, mode="r"), zarr.open_group(want, mode="r")
    arrays = {n: a for n, a in w.members(max_depth=None) if isinstance(a, zarr.Array)}
    sharded = [n + "/c/" for n, a in arrays.items() if a.shards is not None]
    for key in fw:
        if not any(key.startswith(prefix) for prefix in sharded):
            assert fg[key] == fw[key], key
    for name, arr in arrays.items():
        assert _same_bits(g[name][...], arr[...]), name


def _write(store, ms, record=None, budget=None, write=write_region, **kwargs):
    """Write through the writer's seams: ``budget`` bytes per brick (None: the writer's own),
    ``write`` as the engine's write function; the plan run is appended to ``record``."""
    report = write_multiscales(store, ms, seams=Seams(write=write, brick_budget=budget),
                               **kwargs)
    if record is not None and not report.already_complete:
        record.append((tuple(pp.pass_ for pp in report.passes),
                       [pp.bricks for pp in report.passes]))
    return report


# --------------------------------------------------------------------------- property


@st.composite
def cases(draw):
    dims = draw(st.sampled_from(["yx", "zyx", "cyx"]))
    factor_list = _factors_for(draw(st.sampled_from(FACTOR_LISTS)), dims)
    three_d = sum(d in "zyx" for d in dims) == 3
    shape = []
    for d in dims:
        f = _total_factor(factor_list, d)
        if f == 1:
            shape.append(draw(st.integers(1, 3 if d == "c" else 9)))
        else:
            shape.append(draw(st.integers(f, max(f + 3, (24 if three_d else 70)))))
    dtype = draw(st.sampled_from(DTYPES))
    methods = FLOAT_METHODS + ([Methods.MODE] if dtype != "float32" else [])
    method = draw(st.sampled_from(methods))
    chunks = {d: draw(st.integers(1, 2)) if d == "c" else draw(st.integers(3 if three_d else 4, 17))
              for d in dims}
    version = draw(st.sampled_from(["0.5", "0.4"]))
    cps = draw(st.sampled_from([None, 2])) if version == "0.5" else None
    # plan budget: None -> the writer's own (from memory_limit), else bytes per brick (tiny ones
    # force several passes and many bricks).
    plan_budget = draw(st.one_of(st.none(), st.integers(1, 4000), st.integers(4000, 400_000)))
    memory_limit = draw(st.sampled_from([None, "16MiB", 16 << 20, "40MiB", "1GiB"]))
    default_limit = draw(st.sampled_from([16 << 20, 24 << 20, 1 << 30]))
    return {
        "dims": dims, "shape": tuple(shape), "factors": factor_list, "dtype": dtype,
        "method": method, "chunks": chunks, "version": version, "cps": cps,
        "plan_budget": plan_budget, "memory_limit": memory_limit,
        "default_limit": default_limit, "seed": draw(st.integers(0, 2**16)),
        "local": draw(st.booleans()),
    }


def _run_case(case, seen):
    array = _data(case["shape"], case["dtype"], case["method"], case["seed"])
    image = nz.to_ngff_image(array, dims=list(case["dims"]))
    ms = nz.to_multiscales(image, scale_factors=case["factors"], chunks=case["chunks"],
                           method=case["method"])
    ref = _reference(array, ms)
    assert [r.shape for r in ref] == [lv.shape for lv in level_plans(ms)]
    record: list = []
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(tmp) if case["local"] else MemoryStore()
        seams = Seams(brick_budget=case["plan_budget"],
                      default_memory_limit=case["default_limit"])
        report = write_multiscales(store, ms, version=case["version"],
                                   chunks_per_shard=case["cps"],
                                   memory_limit=case["memory_limit"], seams=seams)
        record.append((tuple(pp.pass_ for pp in report.passes),
                       [pp.bricks for pp in report.passes]))
        written = _levels_from_store(store, ms)
        root = zarr.open_group(store, mode="r")
        attrs = root.attrs.asdict()
        assert ("ome" in attrs) if case["version"] == "0.5" else ("multiscales" in attrs)
        assert PROGRESS_GROUP not in root
        assert IN_PROGRESS_ATTR not in attrs
    assert len(record) == 1
    seen.append(record[0])
    for k, (w, r) in enumerate(zip(written, ref)):
        assert _same_bits(w, r), f"level {k} of the store differs from the reference ({case})"
        assert _same_bits(ms.images[k].data.compute(), r), f"lazy level {k} differs ({case})"


_EXAMPLE_MULTIPASS = {
    "dims": "zyx", "shape": (19, 33, 47), "factors": [2, 4], "dtype": "uint16",
    "method": Methods.GAUSSIAN, "chunks": {"z": 4, "y": 5, "x": 6}, "version": "0.5", "cps": 2,
    "plan_budget": 500, "memory_limit": "16MiB", "default_limit": 1 << 30, "seed": 1,
    "local": True,
}
_EXAMPLE_SINGLE = {
    "dims": "yx", "shape": (61, 45), "factors": [2, 6], "dtype": "float32",
    "method": Methods.MEAN, "chunks": {"y": 7, "x": 9}, "version": "0.4", "cps": None,
    "plan_budget": None, "memory_limit": None, "default_limit": 16 << 20, "seed": 2,
    "local": False,
}
_EXAMPLE_MODE = {
    "dims": "cyx", "shape": (1, 37, 50), "factors": [{"y": 3}, {"y": 3, "x": 2}], "dtype": "int16",
    "method": Methods.MODE, "chunks": {"c": 1, "y": 4, "x": 5}, "version": "0.5", "cps": None,
    "plan_budget": 50, "memory_limit": "40MiB", "default_limit": 1 << 30, "seed": 3,
    "local": False,
}


def test_store_bit_identical_to_reference_any_plan():
    seen: list = []

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck),
              print_blob=True)
    @given(case=cases())
    @example(case=_EXAMPLE_MULTIPASS)
    @example(case=_EXAMPLE_SINGLE)
    @example(case=_EXAMPLE_MODE)
    def check(case):
        _run_case(case, seen)

    check()
    # The plans really varied: one pass and several, one brick and many.
    n_passes = {len(passes) for passes, _ in seen}
    n_bricks = {sum(counts) for _, counts in seen}
    assert 1 in n_passes and max(n_passes) >= 2, n_passes
    assert 1 in n_bricks and max(n_bricks) >= 20, n_bricks


def test_default_memory_limit_is_used():
    array = _data((20, 30, 40), "uint16", Methods.GAUSSIAN, 0)
    ms = nz.to_multiscales(array, scale_factors=[2, 4], chunks=8)
    seams = Seams(default_memory_limit=24 << 20)
    default = write_multiscales(MemoryStore(), ms, seams=seams)
    given = write_multiscales(MemoryStore(), ms, memory_limit="48MiB", seams=seams)
    assert default.memory_limit == 24 << 20 and given.memory_limit == 48 << 20
    assert default.brick_budget < given.brick_budget <= 48 << 20
    assert default.brick_budget <= 24 << 20
    assert write_multiscales(MemoryStore(), ms).memory_limit == 1 << 30
    with pytest.raises(ValueError, match="too small"):
        nz.to_ngff_zarr(MemoryStore(), ms, memory_limit="1MiB")


# --------------------------------------------------------------------------- bricks


@st.composite
def plans(draw):
    dims = draw(st.sampled_from(["yx", "zyx", "cyx", "tzyx"]))
    factor_list = _factors_for(draw(st.sampled_from(FACTOR_LISTS + [[2, 4, 8], [2, 4, 8, 16]])),
                               dims)
    shape = []
    for d in dims:
        f = _total_factor(factor_list, d)
        shape.append(draw(st.integers(1, 3)) if f == 1 and d in "tc"
                     else draw(st.integers(max(f, 1), max(f + 5, 60 if len(dims) == 2 else 36))))
    chunks = {d: draw(st.integers(1, 2)) if d in "tc" else draw(st.integers(2, 19)) for d in dims}
    cps = draw(st.sampled_from([None, 2, 3, {"x": 2}]))
    method = draw(st.sampled_from(list(Methods)))
    itemsize = draw(st.sampled_from([1, 2, 4]))
    budget = draw(st.one_of(st.integers(1, 5000), st.integers(5000, 2_000_000)))
    return dims, tuple(shape), factor_list, chunks, cps, method, itemsize, budget


def _grid_cells(region, grid):
    return itertools.product(*(range(a // g, -(-b // g)) for (a, b), g in zip(region, grid)))


@settings(max_examples=60, deadline=None)
@given(plan=plans())
def test_bricks_tile_every_level_once_and_align_to_write_grids(plan):
    dims, shape, factor_list, chunks, cps, method, itemsize, budget = plan
    array = da.zeros(shape, dtype="uint8", chunks=-1)
    ms = nz.to_multiscales(nz.to_ngff_image(array, dims=list(dims)), scale_factors=factor_list,
                           chunks=chunks, method=method)
    levels = level_plans(ms)
    grids = [s or lv.chunks for s, lv in zip(shard_shapes(levels, list(dims), cps), levels)]
    ct = np.dtype(compute_dtype(np.dtype(f"u{itemsize}"))).itemsize
    passes = plan_passes(levels, grids, itemsize, ct, budget)
    # Passes chain: pass 0 reads level 0, each next pass reads the last level of the one before.
    assert passes[0].source == 0
    assert passes[-1].last == len(levels) - 1
    for a, b in zip(passes, passes[1:]):
        assert b.source == a.last and b.last > b.source
    coverage = [np.zeros(lv.shape, np.int32) for lv in levels]
    for p in passes:
        unit = alignment_unit(levels, grids, p.source, p.last)
        assert all(b % u == 0 for b, u in zip(p.brick, unit)), (p, unit)
        owner: dict[tuple, int] = {}
        indices = []
        for brick in iter_bricks(levels, p):
            indices.append(brick.index)
            for k, region in brick.write.items():
                assert k == p.source == 0 or k in p.levels
                lv, grid = levels[k], grids[k]
                for (a, b), g, n in zip(region, grid, lv.shape):
                    assert 0 <= a < b <= n
                    assert a % g == 0 and (b % g == 0 or b == n), (k, region, grid)
                coverage[k][tuple(slice(a, b) for a, b in region)] += 1
                for cell in _grid_cells(region, grid):
                    assert owner.setdefault((k, cell), brick.index) == brick.index, (
                        f"two bricks write chunk/shard {cell} of level {k}")
            # The regions computed cover what is written and the next level's input window.
            for k, need in brick.need.items():
                if k in brick.write:
                    assert all(c <= a and b <= d for (a, b), (c, d) in zip(brick.write[k], need))
                window = levels[k].step.input_window(need, levels[k - 1].shape)
                src = brick.need.get(k - 1, brick.read)
                assert all(c <= a and b <= d for (a, b), (c, d) in zip(window, src)), (k, brick)
        assert indices == sorted(set(indices))
        assert all(0 <= i < count_bricks(levels, p) for i in indices)
    for k, cov in enumerate(coverage):
        assert (cov == 1).all(), f"level {k} not tiled exactly once: {np.unique(cov)}"


def test_tiny_budgets_give_more_passes_and_bricks():
    array = da.zeros((64, 96, 128), dtype="uint16", chunks=-1)
    ms = nz.to_multiscales(array, scale_factors=[2, 4, 8, 16], chunks=16)
    levels = level_plans(ms)
    grids = [lv.chunks for lv in levels]
    plans_ = [plan_passes(levels, grids, 2, 4, b) for b in (10, 200_000, 2_000_000, 1 << 30)]
    n_passes = [len(p) for p in plans_]
    n_bricks = [sum(count_bricks(levels, q) for q in p) for p in plans_]
    assert n_passes == sorted(n_passes, reverse=True) and n_passes[0] > n_passes[-1] == 1
    assert n_bricks == sorted(n_bricks, reverse=True) and n_bricks[0] > n_bricks[-1]


# --------------------------------------------------------------------------- streamed inputs


def _smooth(shape, dtype="uint16", z0=0):
    z, y, x = np.indices(shape, dtype=np.float32)
    z += z0
    return (1000 + 500 * np.sin(x / 9) * np.cos(y / 7) + 3 * z).astype(dtype)


def test_zarr_dask_and_memmap_inputs_give_identical_stores(tmp_path):
    array = _smooth((40, 50, 61)) + np.random.default_rng(0).integers(0, 9, (40, 50, 61)).astype(
        "uint16")
    np.save(tmp_path / "in.npy", array)
    zin = zarr.create_array(LocalStore(tmp_path / "in.zarr"), shape=array.shape, chunks=(8, 16, 32),
                            dtype=array.dtype)
    zin[...] = array
    inputs = {
        "zarr": zarr.open_array(LocalStore(tmp_path / "in.zarr", read_only=True), mode="r"),
        "dask": da.from_array(array.copy(), chunks=(13, 17, 19)),
        "npy": np.load(tmp_path / "in.npy", mmap_mode="r"),
        "numpy": array,
    }
    record: list = []
    stores = {}
    for name, data in inputs.items():
        ms = nz.to_multiscales(nz.to_ngff_image(data), scale_factors=[2, 4], chunks=8)
        out = tmp_path / f"{name}.ome.zarr"
        _write(out, ms, record, budget=3000, memory_limit="16MiB")  # many bricks and passes
        stores[name] = _store_files(out)
    assert len(record[0][0]) >= 2 and sum(record[0][1]) > 10
    ref = _reference(array, ms)
    for k, lvl in enumerate(_levels_from_store(tmp_path / "numpy.ome.zarr", ms)):
        assert _same_bits(lvl, ref[k])
    first = stores.pop("numpy")
    for name, files in stores.items():
        assert files.keys() == first.keys(), name
        assert all(files[k] == first[k] for k in first), name


class _CountingStore(WrapperStore):
    """Counts ``get`` calls per key (class-level: zarr re-wraps stores on open)."""

    counts: collections.Counter = collections.Counter()

    async def get(self, key, prototype, byte_range=None):
        type(self).counts[key] += 1
        return await self._store.get(key, prototype, byte_range)


def test_zarr_input_is_streamed(tmp_path):
    shape = (128, 256, 1024)  # 64 MiB of uint16
    src = MemoryStore()
    z = zarr.create_array(src, shape=shape, chunks=(32, 64, 128), dtype="uint16")
    for i in range(0, shape[0], 32):
        z[i:i + 32] = _smooth((32, *shape[1:]), z0=i)
    _CountingStore.counts = collections.Counter()
    zin = zarr.open_array(_CountingStore(src), mode="r")
    ms = nz.to_multiscales(nz.to_ngff_image(zin), scale_factors=[2, 4], chunks=64)
    nbytes = int(np.prod(shape)) * 2
    tracemalloc.start()
    try:
        nz.to_ngff_zarr(tmp_path / "out.ome.zarr", ms, memory_limit="16MiB")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    reads = [n for key, n in _CountingStore.counts.items() if key.startswith("c/")]
    assert len(reads) == z.nchunks  # every source chunk read...
    # ... a bounded number of times: by its own brick and by neighbours for their halo (at most
    # 3 per axis), never once per brick of the whole volume.
    assert max(reads) <= 8, collections.Counter(reads)
    assert peak < nbytes // 2, f"peak traced memory {peak / 2**20:.1f} MiB for a 64 MiB input"


def test_numpy_and_memmap_inputs_stream_bounded_memory(tmp_path):
    shape = (128, 256, 1024)
    path = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype="uint16", shape=shape)
    for i in range(0, shape[0], 32):
        mm[i:i + 32] = _smooth((32, *shape[1:]), z0=i)
    mm.flush()
    del mm
    data = np.load(path, mmap_mode="r")
    ms = nz.to_multiscales(nz.to_ngff_image(data), scale_factors=[2, 4], chunks=64)
    tracemalloc.start()
    try:
        nz.to_ngff_zarr(tmp_path / "out.ome.zarr", ms, memory_limit="16MiB")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < data.nbytes // 2, f"peak traced memory {peak / 2**20:.1f} MiB for 64 MiB"
    back = zarr.open_group(tmp_path / "out.ome.zarr", mode="r")
    assert _same_bits(back["scale0/image"][:8], data[:8])


# --------------------------------------------------------------------------- failure / resume


class _Writes:
    """Engine write functions: count the writes, and fail after ``fail_after`` of them."""

    def __init__(self, fail_after=None):
        self.calls, self.fail_after = 0, fail_after

    def __call__(self, array, region, data):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise OSError("disk full (simulated)")
        write_region(array, region, data)


@pytest.mark.parametrize("version,cps", [("0.5", None), ("0.5", 2), ("0.4", None)])
@pytest.mark.parametrize("fail_at", [0.0, 0.15, 0.7])
def test_failed_write_has_no_metadata_and_resumes(tmp_path, version, cps, fail_at):
    array = _smooth((33, 47, 70)) ^ np.random.default_rng(5).integers(0, 64, (33, 47, 70)).astype(
        "uint16")
    ms = nz.to_multiscales(array, scale_factors=[2, 4, 8], chunks=8)
    record: list = []
    opts = {"version": version, "chunks_per_shard": cps, "budget": 2000}  # many bricks, passes
    clean, counting = tmp_path / "clean.ome.zarr", _Writes()
    _write(clean, ms, record, write=counting, **opts)
    assert len(record[0][0]) >= 2 and sum(record[0][1]) > (40 if cps is None else 12)
    clean_writes = counting.calls
    broken = tmp_path / "broken.ome.zarr"
    with pytest.raises(OSError, match="simulated"):
        _write(broken, ms, write=_Writes(int(fail_at * clean_writes)), **opts)
    attrs = zarr.open_group(broken, mode="r").attrs.asdict()
    assert "ome" not in attrs and "multiscales" not in attrs
    assert IN_PROGRESS_ATTR in attrs
    with pytest.raises(nz.InvalidStoreError):
        nz.validate_store(broken)
    with pytest.raises(nz.InvalidStoreError):
        nz.from_ngff_zarr(broken)
    # Without resume (and overwrite=False) the partial store is refused.
    with pytest.raises(nz.StoreExistsError):
        _write(broken, ms, overwrite=False, **opts)

    # Resume writes only what is missing and gives the clean store.
    counting = _Writes()
    _write(broken, ms, write=counting, resume=True, **opts)
    assert nz.validate_store(broken) == version
    _assert_same_store(broken, clean)
    assert counting.calls <= clean_writes
    if fail_at >= 0.5:
        assert counting.calls < clean_writes
    # Resuming a complete store is a no-op.
    counting = _Writes()
    assert _write(broken, ms, write=counting, resume=True, **opts).already_complete
    assert counting.calls == 0
    _assert_same_store(broken, clean)


def test_resume_refuses_a_store_of_another_plan(tmp_path):
    array = _smooth((20, 30, 40))
    ms = nz.to_multiscales(array, scale_factors=[2, 4], chunks=8)
    with pytest.raises(OSError):
        _write(tmp_path / "s", ms, write=_Writes(0))
    other = nz.to_multiscales(array, scale_factors=[2], chunks=8)
    with pytest.raises(nz.InvalidStoreError):
        nz.to_ngff_zarr(tmp_path / "s", other, resume=True)


def test_resume_with_another_memory_limit_is_correct_or_refused(tmp_path):
    array = np.random.default_rng(0).integers(0, 60000, (64, 256, 512)).astype("uint16")
    ms = nz.to_multiscales(array, scale_factors=[2, 4], chunks=16)
    store = tmp_path / "s.ome.zarr"
    with pytest.raises(OSError):
        _write(store, ms, write=_Writes(30), memory_limit="16MiB")  # 32 bricks
    try:
        nz.to_ngff_zarr(store, ms, memory_limit="1GiB", resume=True)  # 1 brick
    except nz.InvalidStoreError:
        return  # refusing is fine
    ref = _reference(array, ms)
    for k, lvl in enumerate(_levels_from_store(store, ms)):
        assert _same_bits(lvl, ref[k]), f"level {k} is wrong after resuming with another budget"
