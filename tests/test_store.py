"""Writer and reader: OME-Zarr 0.5 (Zarr v3) and 0.4 (Zarr v2), stores, codecs, sharding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from zarr.storage import LocalStore, MemoryStore

import ngff_gpu as nz
from ngff_gpu.io.codecs import CODEC_NAMES


def _volume(shape=(40, 50, 61), dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    smooth = 1000 + 800 * np.sin(x / 7.0) * np.cos(y / 5.0) + 10 * z
    return (smooth + rng.integers(0, 50, shape)).astype(dtype)


@pytest.fixture
def ms():
    image = nz.to_ngff_image(_volume(), scale={"z": 2.0, "y": 0.5, "x": 0.5},
                             translation={"z": 1.0, "y": 0.0, "x": -3.0},
                             axes_units={"z": "micrometer", "y": "micrometer", "x": "micrometer"})
    return nz.to_multiscales(image, scale_factors=[{"z": 1, "y": 2, "x": 2}, {"z": 2, "y": 4, "x": 4}],
                             chunks=16)


def _assert_round_trip(store, ms, version):
    assert nz.validate_store(store) == version
    back = nz.from_ngff_zarr(store, validate=True)
    assert len(back.images) == len(ms.images)
    for a, b in zip(back.images, ms.images):
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())
        assert a.scale == b.scale and a.translation == b.translation and a.dims == b.dims
    assert back.images[0].axes_units == {"z": "micrometer", "y": "micrometer", "x": "micrometer"}
    return back


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_write_read_both_versions(tmp_path, ms, version):
    store = tmp_path / f"v{version}.ome.zarr"
    nz.to_ngff_zarr(store, ms, version=version)
    _assert_round_trip(store, ms, version)
    root = zarr.open_group(store, mode="r")
    assert root.metadata.zarr_format == (3 if version == "0.5" else 2)
    arr = root["scale1/image"]
    if version == "0.5":
        assert arr.metadata.dimension_names == ("z", "y", "x")
        assert json.loads((store / "zarr.json").read_text())["attributes"]["ome"]["version"] == "0.5"
    else:
        assert json.loads((store / ".zattrs").read_text())["multiscales"][0]["version"] == "0.4"
    assert "ngff_gpu_progress" not in root


def test_level0_round_trips_exactly_for_every_dtype(tmp_path):
    for dtype in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
                  "float32", "float64"):
        data = _volume((9, 12, 14), dtype=np.float64).astype(dtype)
        ms = nz.to_multiscales(nz.to_ngff_image(data), [2], method="mean")
        store = tmp_path / f"{dtype}.ome.zarr"
        nz.to_ngff_zarr(store, ms)
        back = nz.from_ngff_zarr(store, validate=True)
        np.testing.assert_array_equal(back.images[0].data.compute(), data)
        assert back.images[0].data.dtype == data.dtype


@pytest.mark.parametrize("codec", CODEC_NAMES)
@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_every_codec(tmp_path, ms, codec, version):
    store = tmp_path / "c.ome.zarr"
    nz.to_ngff_zarr(store, ms, version=version, codec=codec, codec_level=1 if codec != "none" else None)
    _assert_round_trip(store, ms, version)


def test_sharding(tmp_path, ms):
    store = tmp_path / "sharded.ome.zarr"
    nz.to_ngff_zarr(store, ms, chunks_per_shard=2)
    _assert_round_trip(store, ms, "0.5")
    arr = zarr.open_group(store, mode="r")["scale0/image"]
    assert arr.shards == (32, 32, 32) and arr.chunks == (16, 16, 16)
    with pytest.raises(ValueError, match="0.5"):
        nz.to_ngff_zarr(tmp_path / "x.ome.zarr", ms, version="0.4", chunks_per_shard=2)


@pytest.mark.parametrize("kind", ["memory", "local", "fsspec"])
def test_any_store(tmp_path, ms, kind):
    if kind == "memory":
        store = MemoryStore()
    elif kind == "local":
        store = LocalStore(tmp_path / "l.ome.zarr")
    else:
        pytest.importorskip("fsspec")
        store = f"memory://{tmp_path.name}/f.ome.zarr"
    nz.to_ngff_zarr(store, ms)
    _assert_round_trip(store, ms, "0.5")


def test_overwrite_false_refuses_existing_store(tmp_path, ms):
    store = tmp_path / "o.ome.zarr"
    nz.to_ngff_zarr(store, ms)
    with pytest.raises(nz.StoreExistsError, match="overwrite"):
        nz.to_ngff_zarr(store, ms, overwrite=False)
    nz.to_ngff_zarr(store, ms, overwrite=True)
    _assert_round_trip(store, ms, "0.5")


def test_bad_arguments_raise_clear_errors(tmp_path, ms):
    with pytest.raises(ValueError, match="codec"):
        nz.to_ngff_zarr(tmp_path / "a", ms, codec="snappy")
    with pytest.raises(ValueError, match="version"):
        nz.to_ngff_zarr(tmp_path / "b", ms, version="0.3")
    with pytest.raises(ValueError, match="memory_limit"):
        nz.to_ngff_zarr(tmp_path / "c", ms, memory_limit="lots")
    with pytest.raises(nz.InvalidStoreError):
        nz.from_ngff_zarr(tmp_path / "missing.ome.zarr")
    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    with pytest.raises(nz.InvalidStoreError, match="multiscales"):
        nz.validate_store(tmp_path / "plain.zarr")


@settings(max_examples=15, deadline=None)
@given(shape=st.tuples(st.integers(1, 5), st.integers(8, 40), st.integers(8, 40)),
       dtype=st.sampled_from(["uint8", "uint16", "int16", "uint32", "float32", "float64"]),
       chunk=st.integers(3, 20), version=st.sampled_from(["0.4", "0.5"]),
       method=st.sampled_from(["gaussian", "mean", "nearest", "min", "max"]))
def test_written_levels_equal_lazy_levels(shape, dtype, chunk, version, method):
    data = _volume(shape, dtype=np.float64).astype(dtype)
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=["c", "y", "x"]),
                           scale_factors=[2, 4] if min(shape[1:]) >= 4 else [2],
                           chunks=chunk, method=method)
    store = MemoryStore()
    nz.to_ngff_zarr(store, ms, version=version)
    back = nz.from_ngff_zarr(store, validate=True)
    for a, b in zip(back.images, ms.images):
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())
    # c is never downsampled and is chunked by 1
    assert all(im.data.shape[0] == shape[0] for im in back.images)
    assert back.images[0].data.chunksize[0] == 1


def test_omero_and_labels(tmp_path):
    data = _volume((20, 32, 32))
    labels = (data > 1500).astype(np.uint8) + (data > 2200).astype(np.uint8)
    ms = nz.to_multiscales(nz.to_ngff_image(data), [2, 4], chunks=16)
    for version in ("0.5", "0.4"):
        store = tmp_path / f"lab{version}.ome.zarr"
        omero = {"channels": [{"label": "ch0", "color": "FFFFFF", "active": True,
                               "window": {"min": 0, "max": 65535, "start": 900, "end": 2500}}]}
        nz.to_ngff_zarr(store, ms, version=version, omero=omero, labels={"cells": labels})
        nz.validate_store(store)
        nz.validate_store(store / "labels" / "cells")
        lab = nz.from_ngff_zarr(store / "labels" / "cells")
        assert lab.images[0].data.dtype == np.uint8
        np.testing.assert_array_equal(lab.images[0].data.compute(), labels)
        assert set(np.unique(lab.images[2].data.compute())) <= {0, 1, 2}


def test_never_clobbers_a_foreign_directory(tmp_path, ms):
    keep = tmp_path / "notzarr"
    keep.mkdir()
    (keep / "keep.txt").write_text("precious")
    with pytest.raises(nz.StoreExistsError, match="not a Zarr store"):
        nz.to_ngff_zarr(keep, ms, overwrite=True)
    assert (keep / "keep.txt").read_text() == "precious"


def test_replaced_level0_data_is_what_gets_written(tmp_path):
    data = _volume((8, 16, 16))
    ms = nz.to_multiscales(nz.to_ngff_image(data), [2], chunks=8, method="max")
    ms.images[0].data = ms.images[0].data + 1  # no longer the wrapped input
    nz.to_ngff_zarr(tmp_path / "r.ome.zarr", ms)
    back = nz.from_ngff_zarr(tmp_path / "r.ome.zarr")
    np.testing.assert_array_equal(back.images[0].data.compute(), data + 1)
    # Level 1 is still the lazy level of the original input: written as it holds.
    np.testing.assert_array_equal(back.images[1].data.compute(), ms.images[1].data.compute())
