"""Read -> write -> read: any Multiscales that from_ngff_zarr returns, or that a user
edits, writes as it reads (the writer plans from images and metadata only)."""

from __future__ import annotations

import json
import warnings

import dask.array as da
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import write_multiscales
from ngff_gpu.levels.derive import level_plans

nzr = pytest.importorskip("ngff_zarr")
ome_writer = pytest.importorskip("ome_zarr.writer")
ome_format = pytest.importorskip("ome_zarr.format")

SHAPE = (12, 40, 52)


def _data(dtype="uint16"):
    rng = np.random.default_rng(3)
    z, y, x = np.indices(SHAPE, dtype=np.float32)
    smooth = 2000 + 900 * np.sin(x / 5) * np.cos(y / 4) + 30 * z
    return (smooth + rng.integers(0, 200, SHAPE)).astype(dtype)


def _write_ours(path, version):
    ms = nz.to_multiscales(nz.to_ngff_image(_data(), scale={"z": 2.0, "y": 0.5, "x": 0.5},
                                            translation={"z": 1.0, "y": 0.0, "x": -3.0},
                                            axes_units={"z": "micrometer", "y": "micrometer",
                                                        "x": "micrometer"}),
                           scale_factors=[{"y": 2, "x": 2}, {"z": 2, "y": 4, "x": 4}], chunks=16)
    nz.to_ngff_zarr(path, ms, version=version)


def _write_ngff_zarr(path, version):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = nzr.to_ngff_image(_data(), dims=["z", "y", "x"],
                                  scale={"z": 2.0, "y": 0.5, "x": 0.5})
        ms = nzr.to_multiscales(image, scale_factors=[2, 4], chunks=16)
        nzr.to_ngff_zarr(str(path), ms, version=version)


def _write_ome_zarr(path, version):
    fmt = ome_format.FormatV04() if version == "0.4" else ome_format.FormatV05()
    group = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ome_writer.write_image(_data(), group, axes="zyx", fmt=fmt, scale_factors=(2, 4))


WRITERS = {"ngff_gpu": _write_ours, "ngff-zarr": _write_ngff_zarr, "ome-zarr-py": _write_ome_zarr}


def _assert_same(a: nz.Multiscales, b: nz.Multiscales):
    assert a.metadata == b.metadata
    assert len(a.images) == len(b.images)
    for k, (x, y) in enumerate(zip(a.images, b.images)):
        assert x.dims == y.dims and x.scale == y.scale and x.translation == y.translation, k
        assert x.data.dtype == y.data.dtype and x.data.shape == y.data.shape, k
        assert np.array_equal(x.data.compute(), y.data.compute()), f"level {k} pixels differ"


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_read_write_read(tmp_path, writer, version):
    src = tmp_path / "src.ome.zarr"
    WRITERS[writer](src, version)
    first = nz.from_ngff_zarr(src, validate=True)
    assert len(first.images) == 3
    out = tmp_path / "out.ome.zarr"
    nz.to_ngff_zarr(out, first, version=version)
    assert nz.validate_store(out) == version
    second = nz.from_ngff_zarr(out, validate=True)
    _assert_same(first, second)
    # Chunks are the source's (the dask chunks), paths the source's.
    src_root, out_root = zarr.open_group(src, mode="r"), zarr.open_group(out, mode="r")
    for ds in first.metadata.datasets:
        assert out_root[ds.path].chunks == src_root[ds.path].chunks, ds.path
    # The other version too, and the store it writes reads back the same.
    other = "0.5" if version == "0.4" else "0.4"
    out2 = tmp_path / "other.ome.zarr"
    nz.to_ngff_zarr(out2, second, version=other)
    assert nz.validate_store(out2) == other
    third = nz.from_ngff_zarr(out2)
    assert third.metadata.datasets == first.metadata.datasets
    assert third.metadata.axes == first.metadata.axes
    for x, y in zip(first.images, third.images):
        assert np.array_equal(x.data.compute(), y.data.compute())


def test_read_levels_are_copied_and_fresh_levels_computed(tmp_path):
    """A pyramid read back has no derived levels; a fresh one derives all but level 0."""
    src = tmp_path / "src.ome.zarr"
    _write_ours(src, "0.5")
    read = nz.from_ngff_zarr(src)
    assert [lv.step for lv in level_plans(read)] == [None, None, None]
    fresh = nz.to_multiscales(_data(), [2, 4], chunks=16)
    assert [lv.step is None for lv in level_plans(fresh)] == [True, False, False]
    assert fresh.images[0].reads_source()


def test_edited_levels_are_written_as_they_are(tmp_path):
    data = _data()
    ms = nz.to_multiscales(data, scale_factors=[2, 4], chunks=16, method="mean")
    # Level 1 replaced by other values, level 2 rechunked: both copied as they are now.
    ms.images[1].data = ms.images[1].data // 2
    ms.images[2].data = ms.images[2].data.rechunk((3, 5, 4))
    steps = [lv.step for lv in level_plans(ms)]
    assert steps == [None, None, None]
    out = tmp_path / "edited.ome.zarr"
    nz.to_ngff_zarr(out, ms, version="0.4")
    back = nz.from_ngff_zarr(out, validate=True)
    for k in range(3):
        assert np.array_equal(back.images[k].data.compute(), ms.images[k].data.compute()), k
    root = zarr.open_group(out, mode="r")
    assert root[ms.metadata.datasets[2].path].chunks == (3, 5, 4)
    assert root[ms.metadata.datasets[1].path].chunks == (6, 16, 16)


def test_replaced_level_then_derived_levels_follow_it(tmp_path):
    """A level derived lazily from a replaced level is computed from the new data."""
    data = _data()
    image = nz.to_ngff_image(data)
    ms = nz.to_multiscales(image, scale_factors=[2, 4], chunks=16)
    edited = nz.to_ngff_image(da.from_array(data[:, ::-1].copy(), chunks=16))
    ms2 = nz.to_multiscales(edited, scale_factors=[2, 4], chunks=16)
    ms.images = ms2.images  # whole images list replaced: derived from the new level 0
    assert [lv.step is None for lv in level_plans(ms)] == [True, False, False]
    out = tmp_path / "r.ome.zarr"
    nz.to_ngff_zarr(out, ms)
    back = nz.from_ngff_zarr(out)
    for k in range(3):
        assert np.array_equal(back.images[k].data.compute(), ms2.images[k].data.compute()), k


def test_changed_metadata_scale_is_written(tmp_path):
    ms = nz.to_multiscales(_data(), scale_factors=[2], chunks=16)
    for ds in ms.metadata.datasets:
        ds.coordinateTransformations[0].scale = [v * 3 for v in ds.coordinateTransformations[0].scale]
    out = tmp_path / "s.ome.zarr"
    nz.to_ngff_zarr(out, ms)
    back = nz.from_ngff_zarr(out)
    assert back.metadata == ms.metadata


def test_copied_levels_of_a_read_store_stream_in_bricks(tmp_path):
    src = tmp_path / "src.ome.zarr"
    _write_ours(src, "0.5")
    read = nz.from_ngff_zarr(src)
    report = write_multiscales(tmp_path / "o.ome.zarr", read, seams=Seams(brick_budget=5000))
    assert [pp.segment.first for pp in report.passes] == [0, 1, 2]
    assert sum(pp.bricks for pp in report.passes) > 3
    _assert_same(read, nz.from_ngff_zarr(tmp_path / "o.ome.zarr"))


def test_lz4_on_04_is_blosc_lz4_that_other_readers_open(tmp_path):
    data = _data()
    ms = nz.to_multiscales(data, scale_factors=[2], chunks=16)
    out = tmp_path / "lz4.ome.zarr"
    nz.to_ngff_zarr(out, ms, version="0.4", codec="lz4")
    meta = json.loads((out / "scale0" / "image" / ".zarray").read_text())
    assert meta["compressor"]["id"] == "blosc"
    assert meta["compressor"]["cname"] == "lz4" and meta["compressor"]["shuffle"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = nzr.from_ngff_zarr(str(out))
    assert np.array_equal(np.asarray(theirs.images[0].data), data)
    ts = pytest.importorskip("tensorstore")
    arr = ts.open({"driver": "zarr", "kvstore": {"driver": "file",
                                                  "path": str(out / "scale0" / "image")}}).result()
    assert np.array_equal(arr.read().result(), data)


@st.composite
def edits(draw):
    dims = draw(st.sampled_from(["yx", "zyx", "cyx"]))
    shape = tuple(draw(st.integers(1, 3)) if d == "c" else draw(st.integers(8, 30)) for d in dims)
    n_levels = draw(st.integers(1, 3))
    method = draw(st.sampled_from(["gaussian", "mean", "nearest", "mode", "max"]))
    # per level >= 1: keep, replace the data (+1), rechunk, or touch (build the graph)
    actions = [draw(st.sampled_from(["keep", "replace", "rechunk", "touch"]))
               for _ in range(n_levels)]
    return {"dims": dims, "shape": shape, "n_levels": n_levels, "method": method,
            "actions": actions, "version": draw(st.sampled_from(["0.4", "0.5"])),
            "cps": draw(st.sampled_from([None, 2])), "chunks": draw(st.integers(3, 9)),
            "budget": draw(st.sampled_from([None, 500, 5000])),
            "seed": draw(st.integers(0, 1000))}


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=edits())
def test_any_edited_multiscales_writes_as_it_reads(case):
    rng = np.random.default_rng(case["seed"])
    data = rng.integers(0, 50, case["shape"]).astype("uint16")
    factors = [2 ** (k + 1) for k in range(case["n_levels"])]
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=list(case["dims"])),
                           scale_factors=factors, chunks=case["chunks"], method=case["method"])
    for k, action in enumerate(case["actions"], start=1):
        if action == "replace":
            ms.images[k].data = ms.images[k].data + 1
        elif action == "rechunk":
            ms.images[k].data = ms.images[k].data.rechunk(2)
        elif action == "touch":
            _ = ms.images[k].data
    want = [im.data.compute() for im in ms.images]  # what the images hold
    cps = case["cps"] if case["version"] == "0.5" else None
    store = zarr.storage.MemoryStore()
    write_multiscales(store, ms, version=case["version"], chunks_per_shard=cps,
                      seams=Seams(brick_budget=case["budget"]))
    back = nz.from_ngff_zarr(store)
    assert back.metadata.datasets == ms.metadata.datasets
    for k, w in enumerate(want):
        got = back.images[k].data.compute()
        assert got.dtype == w.dtype and np.array_equal(got, w), (k, case)
        assert back.images[k].data.chunksize == ms.images[k].data.chunksize, (k, case)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_an_image_name_with_slashes_nests_its_arrays_as_ngff_zarr_does(tmp_path, version):
    """ngff-zarr puts level k of an image named ``"Well A/1"`` at ``scale{k}/Well A/1``
    (its HCS example names images so); so do we, and both read it back."""
    data = np.arange(2 * 32 * 32, dtype=np.uint8).reshape(2, 32, 32)
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=["c", "y", "x"], name="Well A/1"),
                           scale_factors=[2])
    assert [ds.path for ds in ms.metadata.datasets] == ["scale0/Well A/1", "scale1/Well A/1"]
    theirs = nzr.to_multiscales(nzr.to_ngff_image(data, dims=["c", "y", "x"], name="Well A/1"),
                                scale_factors=[2])
    assert [ds.path for ds in ms.metadata.datasets] == [ds.path for ds in
                                                        theirs.metadata.datasets]
    out = tmp_path / "well.ome.zarr"
    nz.to_ngff_zarr(out, ms, version=version)
    assert nz.validate_store(str(out)) == version
    for read in (nz.from_ngff_zarr, nzr.from_ngff_zarr):
        back = read(str(out))
        assert back.metadata.name == "Well A/1"
        for k in range(2):
            np.testing.assert_array_equal(np.asarray(back.images[k].data),
                                          np.asarray(ms.images[k].data))
