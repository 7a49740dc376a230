"""Backend selection and the CUDA -> NumPy fallback, without a GPU: a fake CUDA backend is
injected through :func:`ngff_gpu.compute.backends.use_cuda_provider` (no private globals)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ngff_gpu as nz
from ngff_gpu.compute.backends import (
    CudaProvider,
    NumpyBackend,
    check_device,
    get_backend,
    use_cuda_provider,
)


class FakeCuda(NumpyBackend):
    """A "device" backend that computes on the host (so results can be compared), and
    fails the way it is told to: ``"compile"`` or ``"oom"`` (always, or only for bricks
    larger than ``oom_above`` bytes)."""

    name = "cuda"
    on_device = True

    def __init__(self, device_id: int, failure: str | None = None, oom_above: int = 0) -> None:
        self.device_id, self.failure, self.oom_above = device_id, failure, oom_above
        self.calls = self.failed = 0

    def reduce_region(self, x, step, origin, in_shape, out_region):
        self.calls += 1
        if self.failure == "compile":
            raise nz.KernelCompileError("kernels/gaussian.cu(12): error: injected")
        if self.failure == "oom" and np.asarray(x).nbytes > self.oom_above:
            self.failed += 1
            raise MemoryError("out of memory allocating 123 bytes (injected)")
        return super().reduce_region(x, step, origin, in_shape, out_region)


def provider(free: int = 1 << 40, **kw) -> tuple[CudaProvider, list[FakeCuda]]:
    made: list[FakeCuda] = []

    def create(device_id: int) -> FakeCuda:
        made.append(FakeCuda(device_id, **kw))
        return made[-1]

    return CudaProvider(available=lambda: True, create=create, current_device=lambda: 0,
                        free_memory=lambda b: free), made


@pytest.fixture(scope="module")
def ms():
    x = np.random.default_rng(1).integers(0, 60000, (48, 40, 36), dtype=np.uint16)
    return nz.to_multiscales(nz.to_ngff_image(x), scale_factors=[2, 4], chunks=16)


@pytest.fixture(scope="module")
def reference(ms, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.ome.zarr"
    nz.to_ngff_zarr(out, ms, device="cpu")
    back = nz.from_ngff_zarr(out)
    return [np.asarray(im.data) for im in back.images]


def _levels(path):
    return [np.asarray(im.data) for im in nz.from_ngff_zarr(path, validate=True).images]


def test_backends_are_cached_per_device():
    prov, made = provider()
    with use_cuda_provider(prov):
        a0, b0 = get_backend("cuda"), get_backend("cuda:0")
        a1 = get_backend("cuda:1")
    assert a0 is b0 and a1 is not a0
    assert [b.device_id for b in made] == [0, 1]


def test_device_names():
    assert check_device("CUDA:3") == ("cuda", 3)
    assert check_device("cpu") == ("cpu", None)
    assert isinstance(get_backend("cpu"), NumpyBackend)
    with pytest.raises(nz.ArgumentError, match="device"):
        check_device("cuda:x")


def test_cuda_without_a_device_raises_and_auto_is_numpy():
    prov = CudaProvider(available=lambda: False)
    with use_cuda_provider(prov):
        with pytest.raises(nz.BackendUnavailableError):
            get_backend("cuda")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no device is not a fallback: no warning
            assert isinstance(get_backend("auto"), NumpyBackend)


def test_backend_that_cannot_be_made_falls_back_under_auto():
    def broken(device_id):
        raise RuntimeError("nvrtc: libnvrtc.so not found")

    prov = CudaProvider(available=lambda: True, create=broken, current_device=lambda: 0)
    with use_cuda_provider(prov):
        with pytest.warns(nz.BackendFallbackWarning, match="nvrtc"):
            assert isinstance(get_backend("auto"), NumpyBackend)
        with pytest.raises(nz.BackendUnavailableError, match="nvrtc"):
            get_backend("cuda")


@pytest.mark.parametrize("failure", ["compile", "oom"])
def test_auto_falls_back_to_numpy_with_one_warning(tmp_path, ms, reference, failure):
    prov, made = provider(failure=failure)
    out = tmp_path / "auto.ome.zarr"
    with use_cuda_provider(prov), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nz.to_ngff_zarr(out, ms, device="auto")
    fallbacks = [w for w in caught if issubclass(w.category, nz.BackendFallbackWarning)]
    assert len(fallbacks) == 1, [str(w.message) for w in caught]
    assert made and made[0].calls > 0  # the CUDA path was tried
    for got, want in zip(_levels(out), reference):
        np.testing.assert_array_equal(got, want)


def test_out_of_memory_halves_the_bricks_before_falling_back(tmp_path):
    # 2 MB free per brick gives bricks of up to 124416 bytes here, 1 MB up to 85536: a
    # device that fails above 100000 bytes fails the first attempt and completes the
    # halved one, with no warning and the same pixels.
    x = np.random.default_rng(1).integers(0, 250, (96, 96, 96), dtype=np.uint8)
    ms = nz.to_multiscales(nz.to_ngff_image(x), scale_factors=[2, 4], chunks=16)
    nz.to_ngff_zarr(tmp_path / "ref.ome.zarr", ms, device="cpu")
    prov, made = provider(free=4 * 2_000_000, failure="oom", oom_above=100_000)
    out = tmp_path / "halved.ome.zarr"
    with use_cuda_provider(prov), warnings.catch_warnings():
        warnings.simplefilter("error", nz.BackendFallbackWarning)
        nz.to_ngff_zarr(out, ms, device="auto")
    assert made[0].failed, "the first attempt did not run out of memory"
    for got, want in zip(_levels(out), _levels(tmp_path / "ref.ome.zarr")):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("failure, error", [("compile", nz.KernelCompileError),
                                            ("oom", nz.BackendUnavailableError)])
def test_device_cuda_raises(tmp_path, ms, failure, error):
    prov, _made = provider(failure=failure)
    with use_cuda_provider(prov), pytest.raises(error):
        nz.to_ngff_zarr(tmp_path / "cuda.ome.zarr", ms, device="cuda")
