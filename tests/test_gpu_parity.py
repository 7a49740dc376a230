"""CUDA backend == NumPy reference, bit for bit within the contract (docs/design.md section 2.4).

Each parity test runs twice: on a CUDA device (``cuda``, marked ``gpu``:
skipped unless CuPy sees a device) and on the CPU (``host``: the same
``kernels/*.cu`` built as host C++ and launched through the same
:class:`CupyBackend`, ``tests/hostkernels``). Results must be bit-identical
except where the contract leaves bits open: the sign of a zero (``+0 == -0``)
and NaN payloads (NaN positions always agree). Every method on every dtype,
float32 subnormals, and two backends (two streams) launching from two threads
at once.
"""

from __future__ import annotations

import threading
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngff_gpu.compute.methods import Methods, methods_for_dtype
from ngff_gpu.compute.reduce_numpy import reduce_region
from ngff_gpu.compute.step import LevelStep
from tests.hostkernels.build import compiler
from tests.hostkernels.contract import assert_same

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN/inf data

DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64,
          np.float32, np.float64]


@pytest.fixture(scope="module")
def cuda_backend():
    from ngff_gpu.compute.backends.cupy_backend import CupyBackend

    return CupyBackend()


@pytest.fixture(scope="module", params=[
    pytest.param("cuda", marks=pytest.mark.gpu),
    pytest.param("host", marks=pytest.mark.skipif(compiler() is None, reason="needs g++")),
])
def backend(request):
    """The CUDA backend on a device, or on the CPU through the host stand-in."""
    if request.param == "cuda":
        return request.getfixturevalue("cuda_backend")
    from tests.hostkernels.standin import host_backend

    return host_backend()


def _data(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "f":
        x = (rng.standard_normal(shape) * 1000).astype(dtype)
        flat = x.reshape(-1)
        flat[rng.random(flat.size) < 0.03] = np.nan
        flat[rng.random(flat.size) < 0.01] = np.inf
        flat[rng.random(flat.size) < 0.02] = -0.0
        if dtype == np.float32:  # subnormals: kept by NumPy, flushed by an -ftz=true build
            tiny = np.finfo(np.float32).smallest_subnormal
            sub = rng.random(flat.size) < 0.2
            flat[sub] = rng.integers(-5000, 5000, int(sub.sum())) * tiny
        return x
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if rng.random() < 0.4:  # few distinct values: MODE ties, MEAN rounding at .5
        x = (x % 4).astype(dtype)
    return x


def _assert_same(got: np.ndarray, ref: np.ndarray, method: Methods) -> None:
    assert_same(got, ref, method.name)


@st.composite
def cases(draw):
    ndim = draw(st.integers(2, 4))
    factors = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    shape = tuple(f + draw(st.integers(0, 11)) for f in factors)
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    method = draw(st.sampled_from(methods_for_dtype(dtype)))
    step = LevelStep(factors, method)
    out_shape = step.out_shape(shape)
    region = []
    for n in out_shape:
        a = draw(st.integers(0, n - 1))
        region.append((a, draw(st.integers(a + 1, n))))
    window = step.input_window(tuple(region), shape)
    lo = tuple(draw(st.integers(0, w0)) for w0, _ in window)
    hi = tuple(draw(st.integers(w1, n)) for (_, w1), n in zip(window, shape))
    seed = draw(st.integers(0, 2**32 - 1))
    strided = draw(st.booleans())
    return shape, dtype, step, tuple(region), lo, hi, seed, strided


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_reduce_region_matches_numpy(backend, case) -> None:
    xp = backend.xp
    shape, dtype, step, region, lo, hi, seed, strided = case
    data = _data(np.random.default_rng(seed), shape, dtype)
    brick = data[tuple(slice(a, b) for a, b in zip(lo, hi))]
    ref = reduce_region(brick, step, lo, shape, region)
    dev = xp.asarray(brick)
    if strided:  # a non-contiguous device view with the same values
        big = xp.zeros(brick.shape[:-1] + (2 * brick.shape[-1],), dtype=dtype)
        big[..., 1::2] = dev
        dev = big[..., 1::2]
    got = backend.to_host(backend.reduce_region(dev, step, lo, shape, region))
    _assert_same(got, ref, step.method)


@pytest.mark.parametrize("method", [m for m in Methods.__members__.values() if m.name in
                                    ("GAUSSIAN", "MEAN", "NEAREST", "MIN", "MAX")])
def test_float16_matches_numpy(backend, method) -> None:
    rng = np.random.default_rng(1)
    data = _data(rng, (9, 13, 7), np.dtype(np.float16))
    step = LevelStep((2, 3, 1), method)
    region = tuple((0, s) for s in step.out_shape(data.shape))
    ref = reduce_region(data, step, (0, 0, 0), data.shape, region)
    got = backend.to_host(backend.reduce_region(data, step, (0, 0, 0), data.shape, region))
    _assert_same(got, ref, method)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.int32, np.uint32])
def test_extreme_integers(backend, dtype) -> None:
    info = np.iinfo(dtype)
    data = np.array([[info.max, info.max, info.min, info.min + 1, 0, 1, info.max, info.min]] * 4,
                    dtype=dtype)
    for method in methods_for_dtype(dtype):
        step = LevelStep((2, 2), method)
        region = tuple((0, s) for s in step.out_shape(data.shape))
        ref = reduce_region(data, step, (0, 0), data.shape, region)
        got = backend.to_host(backend.reduce_region(data, step, (0, 0), data.shape, region))
        _assert_same(got, ref, method)


def test_cumulative_levels_large(backend) -> None:
    rng = np.random.default_rng(7)
    for dtype in (np.uint16, np.float32):
        data = _data(rng, (70, 66, 130), np.dtype(dtype))
        for method in (Methods.GAUSSIAN, Methods.MEAN):
            host, dev = data, backend.xp.asarray(data)
            for _ in range(3):
                step = LevelStep((2, 2, 2), method)
                region = tuple((0, s) for s in step.out_shape(host.shape))
                host = reduce_region(host, step, (0, 0, 0), host.shape, region)
                dev = backend.reduce_region(dev, step, (0, 0, 0), dev.shape, region)
                _assert_same(backend.to_host(dev), host, method)


def test_brick_must_cover_window(backend) -> None:
    step = LevelStep((2, 2), Methods.GAUSSIAN)
    with pytest.raises(ValueError, match="does not cover"):
        backend.reduce_region(np.zeros((4, 4), np.float32), step, (2, 2), (16, 16),
                              ((2, 4), (2, 4)))


@pytest.mark.gpu
def test_to_host_is_pinned_numpy(cuda_backend) -> None:
    import cupy

    x = cupy.arange(1000, dtype=cupy.float32).reshape(10, 100)[:, ::3]
    host = cuda_backend.to_host(x)
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, cupy.asnumpy(x))
    ptr = host.ctypes.data
    attrs = cupy.cuda.runtime.pointerGetAttributes(ptr)
    assert attrs.type == cupy.cuda.runtime.memoryTypeHost


@pytest.mark.gpu
def test_torch_cuda_round_trip_without_copy(cuda_backend) -> None:
    backend = cuda_backend
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    t = torch.arange(4 * 6 * 8, dtype=torch.float32, device="cuda").reshape(4, 6, 8)
    x = backend.asarray(t)
    assert x.data.ptr == t.data_ptr()
    step = LevelStep((2, 2, 2), Methods.MEAN)
    out = backend.reduce_region(x, step, (0, 0, 0), (4, 6, 8), ((0, 2), (0, 3), (0, 4)))
    back = torch.from_dlpack(out)
    assert back.data_ptr() == out.data.ptr
    ref = reduce_region(t.cpu().numpy(), step, (0, 0, 0), (4, 6, 8), ((0, 2), (0, 3), (0, 4)))
    backend.synchronize()
    np.testing.assert_array_equal(back.cpu().numpy(), ref)


#: Every (dtype, method) pair the backend accepts.
EVERY_CASE = [(np.dtype(d), m) for d in DTYPES + [np.float16]
              for m in methods_for_dtype(np.dtype(d))]


@pytest.mark.parametrize("dtype, method", EVERY_CASE,
                         ids=[f"{d}-{m.name}" for d, m in EVERY_CASE])
def test_every_method_and_dtype(backend, dtype, method) -> None:
    """Each pair on data with its special values (NaN, inf, -0, float32 subnormals,
    integer extremes, few distinct values), at three factor sets."""
    seed = zlib.crc32(f"{dtype.str}{method.name}".encode())
    data = _data(np.random.default_rng(seed), (9, 14, 23), dtype)
    for factors in ((2, 2, 2), (3, 1, 2), (1, 4, 3)):
        step = LevelStep(factors, method)
        region = tuple((0, s) for s in step.out_shape(data.shape))
        ref = reduce_region(data, step, (0, 0, 0), data.shape, region)
        got = backend.to_host(backend.reduce_region(data, step, (0, 0, 0), data.shape, region))
        _assert_same(got, ref, method)


@pytest.mark.parametrize("method", [m for m in Methods.__members__.values() if m.name in
                                    ("GAUSSIAN", "MEAN", "NEAREST", "MIN", "MAX")])
def test_float32_subnormals_are_kept(backend, method) -> None:
    """A volume of float32 subnormals (and zeros): the NumPy path keeps them, so must the
    kernels (a device flushing them, -ftz=true, would give zeros)."""
    tiny = np.finfo(np.float32).smallest_subnormal
    rng = np.random.default_rng(11)
    data = (rng.integers(-3000, 3000, (8, 10, 12)) * tiny).astype(np.float32)
    step = LevelStep((2, 2, 2), method)
    region = tuple((0, s) for s in step.out_shape(data.shape))
    ref = reduce_region(data, step, (0, 0, 0), data.shape, region)
    assert np.count_nonzero(ref) > ref.size // 2, "the reference keeps the subnormals"
    got = backend.to_host(backend.reduce_region(data, step, (0, 0, 0), data.shape, region))
    _assert_same(got, ref, method)


@pytest.fixture(params=[
    pytest.param("cuda", marks=pytest.mark.gpu),
    pytest.param("host", marks=pytest.mark.skipif(compiler() is None, reason="needs g++")),
])
def two_backends(request):
    """Two backends of one device, each with its own stream (host: two stand-ins)."""
    if request.param == "cuda":
        from ngff_gpu.compute.backends.cupy_backend import CupyBackend

        pair = [CupyBackend(), CupyBackend()]
        assert pair[0].stream is not pair[1].stream
        return pair
    from tests.hostkernels.standin import host_backend

    return [host_backend(seed=1), host_backend(seed=2)]


@pytest.mark.parametrize("shared", [False, True], ids=["two-streams", "one-backend"])
def test_two_threads_launch_at_once(two_backends, shared) -> None:
    """Two threads each run chains of levels (host-to-device, three levels,
    device-to-host) at the same time, on two streams or both on one backend; every
    result equals the NumPy path's."""
    backends = [two_backends[0]] * 2 if shared else two_backends
    methods = [Methods.GAUSSIAN, Methods.MEAN, Methods.MAX]
    barrier = threading.Barrier(2)
    results: list = [None, None]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            b, rng, out = backends[i], np.random.default_rng(100 + i), []
            barrier.wait()
            for it in range(9):
                dtype = np.dtype([np.uint16, np.float32][(i + it) % 2])
                method = methods[(i + it) % 3]
                data = _data(rng, (40, 36, 52), dtype)
                cur, levels = b.asarray(data), []
                for _ in range(3):
                    step = LevelStep((2, 2, 2), method)
                    region = tuple((0, s) for s in step.out_shape(cur.shape))
                    cur = b.reduce_region(cur, step, (0, 0, 0), cur.shape, region)
                    levels.append(cur)
                out.append((data, method, [b.to_host(x) for x in levels]))
            results[i] = out
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for out in results:
        for data, method, levels in out:
            ref = data
            for got in levels:
                step = LevelStep((2, 2, 2), method)
                region = tuple((0, s) for s in step.out_shape(ref.shape))
                ref = reduce_region(ref, step, (0, 0, 0), ref.shape, region)
                _assert_same(got, ref, method)
