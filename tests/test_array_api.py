"""Arrays in, arrays out: namespace, dtype and device of the input are kept."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import zarr

import ngff_gpu as nz
from ngff_gpu.compute.methods import Methods
from ngff_gpu.compute.reduce_numpy import reduce_full
from ngff_gpu.compute.step import LevelStep
from ngff_gpu.namespace import dask_chunk_type, kind


def _data(shape=(12, 20, 22), dtype=np.float32):
    rng = np.random.default_rng(7)
    return (rng.random(shape) * 200).astype(dtype)


def _expected(x, factors, method=Methods.GAUSSIAN):
    return reduce_full(x, LevelStep(tuple(factors), method))


def test_numpy_in_numpy_out():
    x = _data()
    out = nz.downsample(x, [2, 2, 2])
    assert isinstance(out, np.ndarray) and out.dtype == x.dtype
    np.testing.assert_array_equal(out, _expected(x, (2, 2, 2)))
    levels = nz.pyramid(x, [2, 4], method="mean")
    assert levels[0] is x and [lv.shape for lv in levels] == [(12, 20, 22), (6, 10, 11), (3, 5, 5)]
    np.testing.assert_array_equal(levels[2], _expected(levels[1], (2, 2, 2), Methods.MEAN))


def test_per_dim_factors_and_dims():
    x = _data((3, 16, 18), np.uint16)
    out = nz.downsample(x, {"y": 2, "x": 3}, method="max", dims=["c", "y", "x"])
    np.testing.assert_array_equal(out, _expected(x, (1, 2, 3), Methods.MAX))


def test_array_api_strict_on_a_non_default_device():
    xps = pytest.importorskip("array_api_strict")
    device = xps.Device("device1")
    x = xps.asarray(_data(), device=device)
    out = nz.downsample(x, [2, 2, 2], method="mean")
    assert type(out) is type(x)
    assert out.device == device and out.dtype == xps.float32
    np.testing.assert_array_equal(np.asarray(out.to_device(xps.Device("CPU_DEVICE"))),
                                  _expected(_data(), (2, 2, 2), Methods.MEAN))
    levels = nz.pyramid(x, [2, 4])
    assert all(lv.device == device for lv in levels)


def test_torch_cpu_tensor_in_tensor_out():
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(_data((10, 14, 16), np.uint8))
    out = nz.downsample(x, [2, 2, 2], method="gaussian")
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and out.device == x.device
    np.testing.assert_array_equal(out.numpy(), _expected(x.numpy(), (2, 2, 2)))
    # to_ngff_image wraps a tensor zero-copy
    image = nz.to_ngff_image(x)
    assert kind(x) == "torch" and dask_chunk_type(image.data) is np.ndarray
    x[0, 0, 0] = 77
    assert image.data[0, 0, 0].compute() == 77


def test_dask_and_zarr_inputs(tmp_path):
    x = _data()
    z = zarr.create_array(tmp_path / "in.zarr", shape=x.shape, chunks=(5, 7, 9), dtype=x.dtype)
    z[...] = x
    expect = _expected(x, (2, 2, 2))
    np.testing.assert_array_equal(nz.downsample(da.from_array(x, chunks=4), [2, 2, 2]), expect)
    np.testing.assert_array_equal(nz.downsample(z, [2, 2, 2]), expect)
    image = nz.to_ngff_image(z)
    c = image.data.chunksize[0]
    assert c % 5 == 0 or c == x.shape[0]  # zarr chunking is respected, data stays lazy
    ms = nz.to_multiscales(image, [2], chunks=8)
    np.testing.assert_array_equal(ms.images[1].data.compute(), expect)


class CountingReads:
    """An in-memory array that counts the reads dask makes of it."""

    def __init__(self, x):
        self.x, self.shape, self.dtype, self.ndim, self.reads = x, x.shape, x.dtype, x.ndim, 0

    def __getitem__(self, key):
        self.reads += 1
        return self.x[key]


@pytest.mark.parametrize("method", ["gaussian", "mean", "nearest", "max"])
def test_dask_in_lazy_dask_out(method):
    x = _data((20, 26, 30))
    src = CountingReads(x)
    d = da.from_array(src, chunks=(7, 9, 11), asarray=False, meta=np.empty((0, 0, 0), x.dtype))
    levels = nz.pyramid(d, [2, 4], method=method)
    assert src.reads == 0  # nothing computed: the levels are graphs
    assert all(isinstance(lv, da.Array) for lv in levels)
    assert dask_chunk_type(levels[2]) is np.ndarray and levels[2].dtype == x.dtype
    want = nz.pyramid(x, [2, 4], method=method)
    for got, exp in zip(levels[1:], want[1:]):
        np.testing.assert_array_equal(got.compute(), exp)
    one = nz.downsample(d, 2, method=method)
    assert isinstance(one, da.Array)
    np.testing.assert_array_equal(one.compute(), want[1])


def test_errors_name_the_problem():
    x = _data((8, 8))
    with pytest.raises(nz.ScaleFactorError, match="levels 0 -> 1"):
        nz.downsample(x, 16)
    with pytest.raises(nz.ScaleFactorError, match="levels 1 -> 2"):
        nz.pyramid(x, [2, 16])  # 8 samples: level 1 has 4, shorter than its factor 8
    with pytest.raises(nz.DimsError, match="2"):
        nz.to_ngff_image(x, dims=["z", "y", "x"])
    with pytest.raises(nz.DimsError, match="unknown"):
        nz.to_ngff_image(x, dims=["q", "x"])
    with pytest.raises(nz.ScaleFactorError, match="never downsampled"):
        nz.to_multiscales(nz.to_ngff_image(np.zeros((2, 8, 8)), dims=["c", "y", "x"]), [{"c": 2}])
