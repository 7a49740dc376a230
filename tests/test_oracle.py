"""ngff-zarr 0.50 as the oracle for GAUSSIAN and MEAN pixels and for level metadata."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.levels.derive import level_plans

nzr = pytest.importorskip("ngff_zarr")

ORACLE = {"gaussian": "ITKWASM_GAUSSIAN", "mean": "ITKWASM_BIN_SHRINK"}


def _both(data, dims, factors, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nzr.to_multiscales(nzr.to_ngff_image(data, dims=dims), scale_factors=factors,
                                 method=getattr(nzr.Methods, ORACLE[method]))
        ours = nz.to_multiscales(nz.to_ngff_image(data, dims=dims), scale_factors=factors,
                                 method=method)
    assert len(ref.images) == len(ours.images)
    return ref, ours


def _compare(ref, ours, data, exact_ints=True):
    for k in range(len(ref.images)):
        a = np.asarray(ref.images[k].data)
        b = ours.images[k].data.compute()
        assert a.shape == b.shape and a.dtype == b.dtype
        for d in ours.images[k].scale:
            assert ours.images[k].scale[d] == pytest.approx(ref.images[k].scale[d])
            assert ours.images[k].translation[d] == pytest.approx(ref.images[k].translation[d])
        if data.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6 * np.abs(a).max())
        elif exact_ints:
            np.testing.assert_array_equal(b, a)
        else:
            diff = np.abs(b.astype(np.int64) - a.astype(np.int64))
            assert diff.max() <= 1
            assert (diff > 0).mean() < 0.005


@st.composite
def oracle_case(draw):
    ndim = draw(st.integers(2, 3))
    dims = list("zyx"[-ndim:])
    factors = draw(st.sampled_from([[2], [3], [4], [2, 4], [3, 6], "dict"]))
    if factors == "dict":
        factors = [{d: draw(st.sampled_from([1, 2])) for d in dims}]
        factors[0][dims[-1]] = 2
    shape = tuple(draw(st.integers(9, 40)) for _ in range(ndim))
    dtype = np.dtype(draw(st.sampled_from(["uint8", "int16", "uint16", "float32"])))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    if dtype.kind == "f":
        data = (rng.standard_normal(shape) * 100).astype(dtype)
    elif dtype == np.uint8:
        data = rng.integers(0, 256, shape).astype(dtype)
    else:
        data = rng.integers(0, 200, shape).astype(dtype)  # small range: exact match
    return data, dims, factors


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(oracle_case(), st.sampled_from(["gaussian", "mean"]))
def test_pixels_and_metadata_match_ngff_zarr(case, method):
    data, dims, factors = case
    ref, ours = _both(data, dims, factors, method)
    _compare(ref, ours, data)


@pytest.mark.parametrize("dtype", ["uint16", "int16"])
def test_full_range_16bit_gaussian_within_one(dtype):
    """ITK rounds its separable passes differently from our fused weights: on full-range
    16-bit data a few pixels (< 0.5%) differ by one (see README, Decisions)."""
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype)
    data = rng.integers(max(info.min, -30000), min(info.max, 60000), (33, 41, 47)).astype(dtype)
    ref, ours = _both(data, ["z", "y", "x"], [2, 4], "gaussian")
    _compare(ref, ours, data, exact_ints=False)
    ref, ours = _both(data, ["z", "y", "x"], [2, 4], "mean")
    _compare(ref, ours, data)


def test_auto_ladder_matches_ngff_zarr():
    data = np.zeros((300, 520, 140), np.uint8)
    for chunks in (64, 32):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = nzr.to_multiscales(nzr.to_ngff_image(data, dims=["z", "y", "x"]),
                                     scale_factors=64, chunks=chunks)
        ours = nz.to_multiscales(nz.to_ngff_image(data), scale_factors=64, chunks=chunks)
        assert [im.data.shape for im in ours.images] == [im.data.shape for im in ref.images]
        assert level_plans(ours)[-1].factors == ref.scale_factors[-1]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_stores_interoperate_with_ngff_zarr(tmp_path, version):
    data = np.random.default_rng(0).integers(0, 255, (24, 40, 36)).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = nzr.to_multiscales(nzr.to_ngff_image(data, dims=["z", "y", "x"]), scale_factors=[2, 4])
        nzr.to_ngff_zarr(tmp_path / "theirs.ome.zarr", theirs, version=version)
    back = nz.from_ngff_zarr(tmp_path / "theirs.ome.zarr", validate=True)
    assert [im.data.shape for im in back.images] == [im.data.shape for im in theirs.images]
    np.testing.assert_array_equal(back.images[1].data.compute(), np.asarray(theirs.images[1].data))
    ours = nz.to_multiscales(nz.to_ngff_image(data), [2, 4])
    nz.to_ngff_zarr(tmp_path / "ours.ome.zarr", ours, version=version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read = nzr.from_ngff_zarr(str(tmp_path / "ours.ome.zarr"))
    for a, b in zip(read.images, ours.images):
        np.testing.assert_array_equal(np.asarray(a.data), b.data.compute())
        assert a.translation == pytest.approx(b.translation)
