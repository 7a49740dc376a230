"""The writer on the CUDA backend with small brick budgets equals the CPU backend's store.

Bricks of 20 kB (many bricks, further passes reading levels back, hand-over bricks
where they hold less) from host, chunked (Zarr) and device (CuPy) input; every store
validated. Each case runs on a CUDA device (``cuda``, marked ``gpu``) and on the CPU
through the host stand-in (``host``: the real :class:`CupyBackend` launching
``kernels/*.cu`` built as host C++, provided to the writer with
:func:`~ngff_gpu.compute.backends.use_cuda_provider`; no device input there).
"""

from __future__ import annotations

import numpy as np
import pytest

import ngff_gpu as nz
from tests.hostkernels.build import compiler


@pytest.fixture(params=[
    pytest.param("cuda", marks=pytest.mark.gpu),
    pytest.param("host", marks=pytest.mark.skipif(compiler() is None, reason="needs g++")),
])
def cuda_backend_kind(request):
    """``device="cuda"`` means a real device, or the host stand-in inside this fixture."""
    if request.param == "cuda":
        yield "cuda"
        return
    from ngff_gpu.compute.backends import CudaProvider, use_cuda_provider
    from tests.hostkernels.standin import host_backend

    provider = CudaProvider(available=lambda: True, create=lambda device_id: host_backend(),
                            current_device=lambda: 0, free_memory=lambda backend: 1 << 30)
    with use_cuda_provider(provider):
        yield "host"


@pytest.mark.parametrize("source", ["host", "zarr", "cupy"])
@pytest.mark.parametrize("method", ["gaussian", "mean", "mode"])
def test_small_brick_budget_equals_the_cpu_store(tmp_path, cuda_backend_kind, source, method):
    import zarr
    from zarr.storage import MemoryStore

    from ngff_gpu.io.write_passes import Seams
    from ngff_gpu.io.writer import write_multiscales

    pixels = np.random.default_rng(5).integers(0, 4000, (37, 45, 50)).astype(np.uint16)
    if source == "cupy":
        if cuda_backend_kind != "cuda":
            pytest.skip("device input needs a CUDA device")
        import cupy

        data = cupy.asarray(pixels)
    elif source == "zarr":
        data = zarr.create_array(MemoryStore(), shape=pixels.shape, chunks=(8, 8, 8),
                                 dtype="uint16")
        data[...] = pixels
    else:
        data = pixels
    stores = {}
    for device in ("cuda", "cpu"):
        src = pixels if device == "cpu" and source == "cupy" else data
        ms = nz.to_multiscales(nz.to_ngff_image(src, dims=list("zyx")), [2, 4, 8], chunks=8,
                               method=method)
        stores[device] = tmp_path / f"{device}.ome.zarr"
        report = write_multiscales(stores[device], ms, device=device, memory_limit="16MiB",
                                   seams=Seams(brick_budget=20_000))
        if device == "cpu":
            assert len(report.passes) > 1, "the budget forces further passes"
    gpu = nz.from_ngff_zarr(stores["cuda"], validate=True)
    cpu = nz.from_ngff_zarr(stores["cpu"], validate=True)
    assert len(gpu.images) == len(cpu.images) == 4
    for a, b in zip(gpu.images, cpu.images):
        assert np.asarray(a.data.compute()).tobytes() == np.asarray(b.data.compute()).tobytes()
