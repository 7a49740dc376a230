"""The device path end to end (marked gpu; skipped without CuPy and a CUDA device):
device inputs stay on the device and every output equals the NumPy path's bits.

CuPy and torch CUDA tensors in and out (DLPack, no copy to the host: checked by
guards on every host-copy function and by torch's profiler), torch on a side
stream, the engine's device pipeline with aligned and hand-over bricks. Small brick
budgets: ``tests/test_gpu_engine.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import ngff_gpu as nz
from tests.hostkernels.contract import assert_same

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
    assert_same(out.cpu().numpy(), ref, "torch CUDA GAUSSIAN")


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


def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    return torch


@pytest.fixture
def no_host_copies(monkeypatch):
    """Every way our code could copy device data to the host raises while it is active."""
    import cupy

    from ngff_gpu.compute.backends.cupy_backend import CupyBackend

    def refuse(*args, **kwargs):
        raise AssertionError("a device array was copied to the host")

    monkeypatch.setattr(CupyBackend, "to_host", refuse)
    monkeypatch.setattr(cupy, "asnumpy", refuse)
    try:
        import torch

        monkeypatch.setattr(torch.Tensor, "cpu", refuse)
        monkeypatch.setattr(torch.Tensor, "numpy", refuse)
    except ImportError:
        pass
    return monkeypatch


@pytest.mark.parametrize("dtype, method", [("float32", "gaussian"), ("float32", "mean"),
                                           ("float32", "nearest"), ("float32", "min"),
                                           ("uint8", "mode"), ("uint8", "max")])
def test_torch_cuda_pyramid_stays_on_the_device(dtype, method, no_host_copies):
    torch = _torch_cuda()
    host = _volume(np.dtype(dtype), (34, 40, 52))
    t = torch.from_numpy(host).cuda()
    levels = nz.pyramid(t, [2, 4, 8], method=method)
    no_host_copies.undo()
    assert levels[0] is t
    expect = nz.pyramid(host, [2, 4, 8], method=method)
    for got, ref in zip(levels[1:], expect[1:]):
        assert isinstance(got, torch.Tensor) and got.is_cuda and got.device == t.device
        assert_same(got.cpu().numpy(), ref, method)


def test_torch_cuda_profile_shows_no_device_to_host_copy():
    """torch's profiler (CUPTI: every CUDA activity of the process, CuPy's too) sees a
    device-to-host copy of .cpu(), and none during pyramid() on a CUDA tensor."""
    torch = _torch_cuda()
    from torch.profiler import ProfilerActivity, profile

    def dtoh(prof) -> int:
        return sum("Memcpy" in e.name and "DtoH" in e.name for e in prof.events())

    import cupy

    t = torch.rand((64, 64, 96), device="cuda")
    nz.pyramid(t, [2, 4], method="mean")  # warm: kernels compiled and loaded
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as control:
        cupy.from_dlpack(t).get()  # a CuPy copy, as our backend would make
        torch.cuda.synchronize()
    if dtoh(control) == 0:
        pytest.skip("the profiler records no memcpy activity of CuPy on this machine")
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        nz.pyramid(t, [2, 4], method="mean")
        torch.cuda.synchronize()
    assert dtoh(prof) == 0


def test_torch_side_stream_in_and_out():
    """A tensor made on a torch side stream right before the call, and the result used
    on that stream: the levels equal the NumPy path's (our stream waits for the
    producer, the consumer for us)."""
    torch = _torch_cuda()
    side = torch.cuda.Stream()
    gen = torch.Generator(device="cuda").manual_seed(3)
    with torch.cuda.stream(side):
        base = torch.rand((96, 128, 160), generator=gen, device="cuda")
        for _ in range(20):  # keep the stream busy so a missing wait would show
            base = base * 1.0001 + 0.0001
        out = nz.downsample(base, 2, method="mean")
        used = out * 2.0
    torch.cuda.synchronize()
    ref = nz.downsample(base.cpu().numpy(), 2, method="mean")
    assert_same(out.cpu().numpy(), ref, "side stream")
    assert_same(used.cpu().numpy(), ref * np.float32(2.0), "side stream, consumer")


@pytest.mark.parametrize("handover", [False, True])
def test_engine_device_pipeline_equals_the_numpy_engine(handover):
    """The engine's device pipeline through the real CUDA backend, aligned and hand-over
    bricks from a chunked source: the NumPy engine's bytes, every brick marked done."""
    import zarr
    from zarr.storage import MemoryStore

    from ngff_gpu.compute.backends import get_backend
    from ngff_gpu.compute.methods import Methods
    from ngff_gpu.levels.bricks import Pass, brick_bytes, count_bricks
    from ngff_gpu.levels.engine import Engine
    from ngff_gpu.levels.plan import plan_levels

    shape = (40, 36, 44)
    pixels = np.random.default_rng(3).integers(0, 65535, shape, dtype=np.uint16)
    src = zarr.create_array(MemoryStore(), shape=shape, chunks=(8, 8, 8), dtype="uint16")
    src[...] = pixels
    levels = plan_levels(list("zyx"), shape, {}, {}, [2], 8, Methods.GAUSSIAN, "scale_factors")
    p = Pass(0, 1, (16, 16, 16))
    cost = brick_bytes(levels, 0, 1, p.brick, 2, 4)
    results = []
    for backend in (get_backend("cpu"), get_backend("cuda")):
        arrays = {k: zarr.create_array(MemoryStore(), shape=lv.shape, chunks=lv.chunks,
                                       dtype="uint16") for k, lv in enumerate(levels)}
        marked: list[int] = []
        Engine(backend, 1 << 26).run_pass(levels, p, src, arrays, lambda i: False,
                                          marked.append, cost, handover=handover)
        assert sorted(marked) == list(range(count_bricks(levels, p)))
        results.append([arrays[k][...] for k in sorted(arrays)])
    for got, want in zip(results[1], results[0]):
        assert got.tobytes() == want.tobytes()
