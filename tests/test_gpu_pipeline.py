"""The device path end to end (marked gpu; skipped without CuPy and a CUDA device):
device inputs stay on the device and every output equals the NumPy path's bits."""

from __future__ import annotations

import numpy as np
import pytest

import ngff_gpu as nz

pytestmark = pytest.mark.gpu

METHODS = ["gaussian", "mean", "nearest", "mode", "min", "max"]


def _volume(dtype=np.uint16, shape=(33, 47, 58)):
    rng = np.random.default_rng(5)
    return rng.integers(0, 4000, shape).astype(dtype)


@pytest.mark.parametrize("method", METHODS)
def test_cupy_in_cupy_out(method):
    cp = pytest.importorskip("cupy")
    host = _volume()
    dev = cp.asarray(host)
    levels = nz.pyramid(dev, [2, 4], method=method)
    expect = nz.pyramid(host, [2, 4], method=method)
    for got, ref in zip(levels, expect):
        assert isinstance(got, cp.ndarray) and got.device == dev.device and got.dtype == ref.dtype
        np.testing.assert_array_equal(cp.asnumpy(got), ref)


def test_torch_cuda_in_torch_cuda_out():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    host = _volume(np.float32)
    t = torch.from_numpy(host).cuda()
    out = nz.downsample(t, 2, method="gaussian")
    assert isinstance(out, torch.Tensor) and out.is_cuda and out.dtype == torch.float32
    ref = nz.downsample(host, 2, method="gaussian")
    np.testing.assert_allclose(out.cpu().numpy(), ref, rtol=2.4e-7, atol=0)


def test_lazy_levels_keep_cupy_chunks_and_write_identical_stores(tmp_path):
    cp = pytest.importorskip("cupy")
    host = _volume()
    image = nz.to_ngff_image(cp.asarray(host))
    assert type(image.data._meta).__module__.startswith("cupy")
    ms = nz.to_multiscales(image, [2, 4], chunks=16)
    assert type(ms.images[1].data._meta).__module__.startswith("cupy")
    ref = nz.to_multiscales(nz.to_ngff_image(host), [2, 4], chunks=16)
    for a, b in zip(ms.images, ref.images):
        np.testing.assert_array_equal(cp.asnumpy(a.data.compute()), b.data.compute())
    nz.to_ngff_zarr(tmp_path / "gpu.ome.zarr", ms)
    nz.to_ngff_zarr(tmp_path / "cpu.ome.zarr", ref, device="cpu")
    gpu = nz.from_ngff_zarr(tmp_path / "gpu.ome.zarr", validate=True)
    cpu = nz.from_ngff_zarr(tmp_path / "cpu.ome.zarr", validate=True)
    for a, b in zip(gpu.images, cpu.images):
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())


def test_host_input_on_the_cuda_backend_with_small_budget(tmp_path):
    host = _volume(np.uint8, (70, 90, 101))
    ms = nz.to_multiscales(nz.to_ngff_image(host), [2, 4, 8], chunks=16)
    nz.to_ngff_zarr(tmp_path / "a.ome.zarr", ms, device="cuda", memory_limit="16MiB")
    nz.to_ngff_zarr(tmp_path / "b.ome.zarr", ms, device="cpu", memory_limit="16MiB")
    a = nz.from_ngff_zarr(tmp_path / "a.ome.zarr")
    b = nz.from_ngff_zarr(tmp_path / "b.ome.zarr")
    for x, y in zip(a.images, b.images):
        np.testing.assert_array_equal(x.data.compute(), y.data.compute())


@pytest.mark.parametrize("method", ["gaussian", "mean", "mode"])
def test_dask_of_cupy_in_lazy_dask_of_cupy_out(method):
    cp = pytest.importorskip("cupy")
    import dask.array as da

    from ngff_gpu.namespace import dask_chunk_type

    host = _volume()
    d = da.from_array(cp.asarray(host), chunks=(16, 20, 25), asarray=False,
                      meta=cp.empty((0, 0, 0), host.dtype))
    levels = nz.pyramid(d, [2, 4], method=method)
    expect = nz.pyramid(host, [2, 4], method=method)
    for got, ref in zip(levels[1:], expect[1:]):
        assert isinstance(got, da.Array) and dask_chunk_type(got) is cp.ndarray
        np.testing.assert_array_equal(cp.asnumpy(got.compute()), ref)
