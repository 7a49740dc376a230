"""Numerics of every method on the NumPy path: definitions, chunk independence, edges."""

from __future__ import annotations

import itertools
from contextlib import contextmanager

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.compute.methods import Methods, methods_for_dtype
from ngff_gpu.compute.reduce_numpy import reduce_full, reduce_region
from ngff_gpu.compute.step import LevelStep
from ngff_gpu.compute.weights import discrete_gaussian, gaussian_axis_weights, gaussian_sigma

DTYPES = [np.uint8, np.uint16, np.int16, np.uint32, np.float32, np.float64]
ANY_NDIM = st.integers(1, 3)


def _array(draw, shape, dtype):
    dtype = np.dtype(dtype)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype.kind == "b":  # balanced or mostly one value (MODE ties and runs)
        return rng.random(shape) < draw(st.sampled_from([0.5, 0.1]))
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dtype)
    info = np.iinfo(dtype)
    lo = draw(st.sampled_from([info.min, max(info.min, -50)]))
    hi = draw(st.sampled_from([info.max, min(info.max, 50)]))
    return rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype)


@st.composite
def cases(draw, ndim=ANY_NDIM):
    n = draw(ndim)
    factors = tuple(draw(st.sampled_from([1, 2, 3, 4])) for _ in range(n))
    shape = tuple(f * draw(st.integers(1, 6)) + draw(st.integers(0, f - 1 if f > 1 else 2))
                  for f in factors)
    dtype = draw(st.sampled_from(DTYPES + [np.bool_]))
    method = draw(st.sampled_from(methods_for_dtype(np.dtype(dtype))))
    return _array(draw, shape, dtype), LevelStep(factors, method)


def _blocks(x, factors):
    """All f^d block members stacked on a last axis (reference by reshaping)."""
    out_shape = tuple(n // f for n, f in zip(x.shape, factors))
    crop = x[tuple(slice(0, o * f) for o, f in zip(out_shape, factors))]
    shape = []
    for o, f in zip(out_shape, factors):
        shape += [o, f]
    b = crop.reshape(shape)
    nd = len(factors)
    b = b.transpose([2 * i for i in range(nd)] + [2 * i + 1 for i in range(nd)])
    return b.reshape(out_shape + (-1,))


def _int_mean(blocks):
    """The integer MEAN's definition: ``floor(S/K + 1/2)`` of the exact block sum ``S``
    (Python integers, no overflow), per output."""
    k = blocks.shape[-1]
    s = blocks.astype(object).sum(axis=-1)
    return np.vectorize(lambda v: (2 * v + k) // (2 * k), otypes=[object])(s)


@contextmanager
def _slab_bytes(n):
    """The NumPy path's slab size set to ``n`` bytes for the block."""
    import ngff_gpu.compute.reduce_numpy as rn

    old = rn.SLAB_BYTES
    rn.SLAB_BYTES = n
    try:
        yield
    finally:
        rn.SLAB_BYTES = old


@settings(max_examples=120, deadline=None)
@given(cases())
def test_block_methods_match_definitions(case):
    x, step = case
    out = reduce_full(x, step)
    assert out.dtype == x.dtype
    assert out.shape == tuple(n // f for n, f in zip(x.shape, step.factors))
    blocks = _blocks(x, step.factors)
    k = blocks.shape[-1]
    if step.method is Methods.MEAN:
        if x.dtype.kind == "f":
            ct = np.float32 if x.dtype.itemsize <= 4 else np.float64
            acc = blocks[..., 0].astype(ct)
            for j in range(1, k):
                acc = acc + blocks[..., j].astype(ct)
            np.testing.assert_array_equal(out, (acc / ct(k)).astype(x.dtype))
        else:
            np.testing.assert_array_equal(out.astype(object), _int_mean(blocks))
    elif step.method is Methods.MIN:
        np.testing.assert_array_equal(out, blocks.min(axis=-1))
    elif step.method is Methods.MAX:
        np.testing.assert_array_equal(out, blocks.max(axis=-1))
    elif step.method is Methods.NEAREST:
        sl = tuple(slice((f - 1) // 2, (n // f) * f, f) for n, f in zip(x.shape, step.factors))
        np.testing.assert_array_equal(out, x[sl])
    elif step.method is Methods.MODE:
        flat = blocks.reshape(-1, k)
        expect = []
        for row in flat:
            vals, counts = np.unique(row, return_counts=True)
            expect.append(vals[np.argmax(counts)])  # unique is sorted: ties -> smallest
        np.testing.assert_array_equal(out.ravel(), np.array(expect, dtype=x.dtype))


@settings(max_examples=120, deadline=None)
@given(cases(), st.data())
def test_any_region_from_any_brick_gives_the_same_bits(case, data):
    x, step = case
    full = reduce_full(x, step)
    region = []
    for n in full.shape:
        a = data.draw(st.integers(0, n - 1))
        b = data.draw(st.integers(a + 1, n))
        region.append((a, b))
    region = tuple(region)
    window = step.input_window(region, x.shape)
    # A brick larger than the window, anywhere around it.
    brick = tuple((data.draw(st.integers(0, lo)), data.draw(st.integers(hi, n)))
                  for (lo, hi), n in zip(window, x.shape))
    sub = x[tuple(slice(a, b) for a, b in brick)]
    out = reduce_region(sub, step, tuple(a for a, _ in brick), x.shape, region)
    np.testing.assert_array_equal(out, full[tuple(slice(a, b) for a, b in region)])


@settings(max_examples=40, deadline=None)
@given(cases(ndim=st.integers(2, 3)), st.data())
def test_lazy_levels_do_not_depend_on_chunking(case, data):
    x, step = case
    method = step.method
    factors = [dict(zip("zyx"[-x.ndim:], step.factors))]
    dims = list("zyx"[-x.ndim:])
    expect = reduce_full(x, step)
    for _ in range(2):
        in_chunks = tuple(data.draw(st.integers(1, n)) for n in x.shape)
        out_chunk = data.draw(st.integers(1, 8))
        image = nz.to_ngff_image(da.from_array(x, chunks=in_chunks), dims=dims)
        ms = nz.to_multiscales(image, scale_factors=factors, chunks=out_chunk, method=method)
        np.testing.assert_array_equal(ms.images[1].data.compute(), expect)


@pytest.mark.parametrize("method", list(dict.fromkeys(Methods)))
@pytest.mark.parametrize("dtype", DTYPES)
def test_constants_stay_constant(method, dtype):
    if method not in methods_for_dtype(np.dtype(dtype)):
        pytest.skip("method does not take this dtype")
    info = np.finfo(dtype) if np.dtype(dtype).kind == "f" else np.iinfo(dtype)
    is_float = np.dtype(dtype).kind == "f"
    # floats: sums of f^d values must stay finite (MEAN sums in the compute dtype)
    for value in (1, 1e30 if is_float else info.max, -3.25 if is_float else info.min):
        x = np.full((9, 10, 11), value, dtype=dtype)
        for factors in ((2, 2, 2), (3, 1, 4)):
            out = reduce_full(x, LevelStep(factors, method))
            if method in (Methods.GAUSSIAN, Methods.MEAN) and is_float:
                # float sums round: a few ulp
                np.testing.assert_allclose(out, x.flat[0], rtol=4e-7 if dtype == np.float32
                                           else 1e-15)
            else:
                assert (out == x.flat[0]).all(), (method, dtype, value, factors)


def test_gaussian_kernel_definition():
    assert abs(gaussian_sigma(2) - 0.7355) < 1e-4
    k = np.asarray(discrete_gaussian(2))
    assert abs(k.sum() - 1) < 1e-12 and np.allclose(k, k[::-1])
    w = gaussian_axis_weights(2)
    assert w.first == -2 and len(w.weights) == 6 and abs(sum(w.weights) - 1) < 1e-12
    # Odd factors: the fused vector is the kernel itself, centred on f*i + (f-1)/2.
    w3 = gaussian_axis_weights(3)
    np.testing.assert_allclose(w3.weights, discrete_gaussian(3))


def test_nan_propagates_and_integers_clip():
    x = np.ones((4, 4), np.float32)
    x[0, 0] = np.nan
    for m in (Methods.MEAN, Methods.MIN, Methods.MAX, Methods.GAUSSIAN):
        assert np.isnan(reduce_full(x, LevelStep((2, 2), m))[0, 0])
    edge = np.zeros((8,), np.uint8)
    edge[::2] = 255
    for m in (Methods.GAUSSIAN, Methods.MEAN):
        out = reduce_full(edge, LevelStep((2,), m))
        assert out.dtype == np.uint8 and out.max() <= 255


def test_mean_rounds_half_up_on_integers():
    x = np.array([1, 2, -1, -2, 3, 4], np.int16)
    np.testing.assert_array_equal(reduce_full(x, LevelStep((2,), Methods.MEAN)), [2, -1, 4])
    big = np.array([2**63 - 1, 2**63 - 2], np.int64)
    assert reduce_full(big, LevelStep((2,), Methods.MEAN))[0] == 2**63 - 1
    u = np.array([2**64 - 1, 2**64 - 2, 1, 2], np.uint64)
    np.testing.assert_array_equal(reduce_full(u, LevelStep((2,), Methods.MEAN)),
                                  np.array([2**64 - 1, 2], np.uint64))


@pytest.mark.parametrize("dtype", [bool, np.complex64, object])
def test_unsupported_dtypes_raise_type_error_naming_the_dtype(dtype):
    x = np.zeros((8, 8), dtype=dtype)
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        nz.to_multiscales(nz.to_ngff_image(x), [2])


@pytest.mark.parametrize("method", [Methods.GAUSSIAN, Methods.MEAN])
def test_bool_refuses_the_averaging_methods(method):
    with pytest.raises(nz.UnsupportedDtypeError, match="MODE"):
        nz.to_multiscales(nz.to_ngff_image(np.zeros((8, 8), bool)), [2], method=method)


def test_bool_mode_ties_go_to_false():
    """MODE on bool is MODE on ``False < True``: a tie is False (the smaller value)."""
    x = np.array([[True, False, True, True, False, False, True, True],
                  [False, True, True, False, False, True, True, True]])
    out = reduce_full(x, LevelStep((2, 2), Methods.MODE))
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, [[False, True, False, True]])
    ms = nz.to_multiscales(nz.to_ngff_image(x), [2], method=Methods.DASK_IMAGE_MODE)
    assert ms.images[1].data.dtype == np.bool_
    np.testing.assert_array_equal(ms.images[1].data.compute(), out)


def test_bool_levels_write_and_read_back(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.random((2, 12, 10)) < 0.3
    ms = nz.to_multiscales(nz.to_ngff_image(x, dims=["c", "y", "x"]), [2, 4], method="mode")
    for version in ("0.4", "0.5"):
        store = tmp_path / f"b{version}.ome.zarr"
        nz.to_ngff_zarr(store, ms, version=version)
        assert nz.validate_store(store) == version
        back = nz.from_ngff_zarr(store)
        for mine, read in zip(ms.images, back.images):
            assert read.data.dtype == np.bool_
            np.testing.assert_array_equal(read.data.compute(), mine.data.compute())


def test_mode_refuses_floats():
    with pytest.raises(TypeError, match="float32"):
        nz.to_multiscales(nz.to_ngff_image(np.zeros((8, 8), np.float32)), [2], method="mode")


def test_method_aliases():
    """ngff-zarr's names are members of their own (recorded by name) whose definition is
    one of ours; a step made with one holds the definition."""
    assert Methods.ITKWASM_GAUSSIAN is not Methods.GAUSSIAN
    assert Methods.ITKWASM_GAUSSIAN.definition is Methods.GAUSSIAN
    assert Methods("itkwasm_bin_shrink").definition is Methods.MEAN
    assert Methods("DASK_IMAGE_MODE").definition is Methods.MODE
    assert Methods("dask_image_nearest").definition is Methods.NEAREST
    assert LevelStep((2,), Methods.ITK_BIN_SHRINK).method is Methods.MEAN
    for m in Methods:
        assert m.definition.definition is m.definition
        assert m.ngff_zarr_name == (m.definition is not m)
        assert Methods(m.value) is m and Methods(m.name.lower()) is m
    for a, b in itertools.combinations([Methods.GAUSSIAN, Methods.MEAN, Methods.NEAREST], 2):
        assert a is not b


@pytest.mark.parametrize("name", [m for m in Methods if m.ngff_zarr_name])
def test_an_ngff_zarr_name_is_recorded_and_computes_its_definition(name, tmp_path):
    """The name asked for is what the metadata says (``type``, read back as the same
    member); the pixels are the definition's, bit for bit."""
    dtype = np.uint8
    x = np.random.default_rng(3).integers(0, 255, (24, 20), dtype=dtype)
    image = nz.to_ngff_image(x)
    named = nz.to_multiscales(image, [2, 4], method=name)
    plain = nz.to_multiscales(image, [2, 4], method=name.definition)
    assert named.method is name and named.metadata.type == name.value
    assert "in place of" in named.metadata.metadata.method
    for a, b in zip(named.images, plain.images):
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())
    nz.to_ngff_zarr(tmp_path / "a.ome.zarr", named)
    back = nz.from_ngff_zarr(tmp_path / "a.ome.zarr")
    assert back.method is name and back.metadata.type == name.value
    np.testing.assert_array_equal(back.images[2].data.compute(), plain.images[2].data.compute())


def test_the_default_method_is_ngff_zarrs_default_name():
    ms = nz.to_multiscales(nz.to_ngff_image(np.zeros((8, 8), np.uint8)), [2])
    assert ms.method is Methods.ITKWASM_GAUSSIAN and ms.metadata.type == "itkwasm_gaussian"
    assert ms.metadata.metadata.method.startswith("ngff_gpu.gaussian")


@settings(max_examples=60, deadline=None)
@given(cases(ndim=st.integers(2, 3)), st.integers(1, 64))
def test_gaussian_slabs_change_no_bit(case, slab_bytes):
    """The cache-sized slabs of the GAUSSIAN path give the same bits as one slab."""
    x, step = case
    if x.dtype.kind == "b":  # GAUSSIAN takes no bool: the same shape, as uint8
        x = x.astype(np.uint8)
    if step.method is not Methods.GAUSSIAN:
        step = LevelStep(step.factors, Methods.GAUSSIAN)
    whole = reduce_full(x, step)
    with _slab_bytes(slab_bytes):
        sliced = reduce_full(x, step)
    np.testing.assert_array_equal(sliced, whole)


@settings(max_examples=60, deadline=None)
@given(cases(ndim=st.integers(1, 3)), st.integers(1, 64))
def test_integer_mean_slabs_match_the_definition(case, slab_bytes):
    """The integer MEAN path (sums axis by axis, slab by slab) gives the definition's
    bits, ``floor(S/K + 1/2)`` of the exact block sum, whatever the slab size."""
    x, step = case
    if x.dtype.kind not in "iu":  # a float case: the same shape, as int16
        x = np.clip(np.nan_to_num(x), -30000, 30000).astype(np.int16)
    step = LevelStep(step.factors, Methods.MEAN)
    with _slab_bytes(slab_bytes):
        out = reduce_full(x, step)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out.astype(object), _int_mean(_blocks(x, step.factors)))
