"""The host stand-in of the CUDA backend checks what the device would.

``tests/hostkernels`` compiles ``kernels/*.cu`` as host C++ and runs them
through the real :class:`CupyBackend` with a host stand-in for CuPy. These
tests show that the stand-in refuses what a device launch would get wrong (a
wrong argument size, a missing argument, host memory passed as a device
pointer) and that an output element no kernel writes shows up as garbage;
and they pin the float32 subnormal cases of issue 9 against the NumPy path.
"""

from __future__ import annotations

import numpy as np
import pytest

from ngff_gpu.compute.backends.cupy_backend import CupyBackend, kernel_instances
from ngff_gpu.compute.cuda_loader import name_expression
from ngff_gpu.compute.methods import Methods, methods_for_dtype
from ngff_gpu.compute.reduce_numpy import reduce_full, reduce_region
from ngff_gpu.compute.step import LevelStep
from tests.hostkernels.build import compiler
from tests.hostkernels.contract import assert_same
from tests.hostkernels.standin import (
    HostCupy,
    HostKernels,
    LaunchError,
    RecordingKernels,
    every_launch,
    flushes_to_zero,
)

pytestmark = pytest.mark.skipif(compiler() is None, reason="needs g++ to build the host kernels")

@pytest.fixture(scope="module")
def kernels() -> HostKernels:
    return HostKernels()


def _backend(kernels) -> CupyBackend:
    return CupyBackend(xp=HostCupy(), kernels=kernels)


def _full(backend: CupyBackend, x: np.ndarray, step: LevelStep) -> np.ndarray:
    region = tuple((0, s) for s in step.out_shape(x.shape))
    out = backend.reduce_region(x, step, (0,) * x.ndim, x.shape, region)
    return backend.to_host(out)


class _Mutating:
    """A kernel getter that changes the arguments of every launch before it."""

    def __init__(self, inner, mutate) -> None:
        self.inner, self.mutate = inner, mutate

    def __call__(self, name, *type_args, device_id=None):
        kernel = self.inner(name, *type_args, device_id=device_id)
        return lambda grid, block, args: kernel(grid, block, self.mutate(tuple(args)))


def _int32_as_int64(args):
    return tuple(np.int64(a) if isinstance(a, np.int32) else a for a in args)


def _drop_last(args):
    return args[:-1]


def _host_input(args):
    return (args[0].get(),) + args[1:]


@pytest.mark.parametrize("method, mutate", [
    (method, mutate)
    for method in (Methods.MEAN, Methods.GAUSSIAN, Methods.NEAREST)
    for mutate in (_int32_as_int64, _drop_last, _host_input)
    if not (method is Methods.NEAREST and mutate is _int32_as_int64)  # NEAREST takes no int
], ids=lambda v: getattr(v, "name", None) or getattr(v, "__name__", str(v)))
def test_standin_refuses_bad_launches(kernels, method, mutate) -> None:
    x = np.arange(64, dtype=np.float32).reshape(8, 8)
    backend = CupyBackend(xp=HostCupy(), kernels=_Mutating(kernels, mutate))
    with pytest.raises(LaunchError):
        _full(backend, x, LevelStep((2, 2), method))


def _one_row_short(args):
    """A planted bug: the output shape (n0..n4, after x and out) loses its last row."""
    n = list(args[2:7])
    axis = next(i for i, v in enumerate(n) if v > 1)
    n[axis] = np.int64(n[axis] - 1)
    return args[:2] + tuple(n) + args[7:]


def test_standin_shows_unwritten_elements(kernels) -> None:
    x = np.arange(32 * 4, dtype=np.float32).reshape(32, 4)
    step = LevelStep((2, 2), Methods.MEAN)
    ref = reduce_full(x, step)
    assert_same(_full(_backend(kernels), x, step), ref)
    planted = CupyBackend(xp=HostCupy(), kernels=_Mutating(kernels, _one_row_short))
    with pytest.raises(AssertionError, match="2 of 32 elements differ"):
        assert_same(_full(planted, x, step), ref)


def test_standin_refuses_implicit_host_conversion() -> None:
    a = HostCupy().asarray(np.zeros(3))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)


def test_ftz_option_parsing() -> None:
    assert flushes_to_zero(("--ftz=false", "-ftz=true"))
    assert not flushes_to_zero(("-ftz=true", "--ftz=false"))
    assert not flushes_to_zero(("--fmad=false",))


def test_host_library_has_every_instance_with_its_parameters(kernels) -> None:
    expected = {name_expression(n, a) for n, a in kernel_instances()}
    assert set(kernels.kernels) == expected
    for kernel in kernels.kernels.values():
        assert kernel.params[0].startswith("PK") and kernel.params[1].startswith("P")


def test_backend_requests_exactly_the_listed_instances(kernels) -> None:
    """Every launch the backend makes fits a listed instance, and every one is reachable."""
    recorder = RecordingKernels()
    with np.errstate(all="ignore"):  # nothing runs: outputs are garbage
        every_launch(CupyBackend(xp=HostCupy(), kernels=recorder))
    expected = {name_expression(n, a) for n, a in kernel_instances()}
    assert set(recorder.launches) == expected
    for expression, arg_lists in recorder.launches.items():
        for codes in arg_lists:
            kernels.kernels[expression].check_codes(codes)


#: float32 subnormals (issue 9): the NumPy path keeps them, a device built with
#: -ftz=true flushes them to zero.
SUBNORMAL_CASES = [
    (Methods.MEAN, np.array([1e-40, 1e-40], np.float32), (2,)),
    (Methods.GAUSSIAN, np.full(4, 1e-40, np.float32), (2,)),
    (Methods.MAX, np.array([0, 1e-45], np.float32), (2,)),
    (Methods.MIN, np.array([0, -1e-45], np.float32), (2,)),
    (Methods.MEAN, np.full((4, 4), 3e-39, np.float32), (2, 2)),
]


@pytest.mark.parametrize("method, data, factors", SUBNORMAL_CASES)
def test_float32_subnormals_survive(kernels, method, data, factors) -> None:
    step = LevelStep(factors, method)
    ref = reduce_full(data, step)
    assert (ref != 0).all(), "the reference keeps the subnormals"
    assert_same(_full(_backend(kernels), data, step), ref)


def test_subnormal_emulation_follows_the_route_options(kernels) -> None:
    flushing = HostKernels(options=("--ftz=false", "-ftz=true"))
    data = np.array([1e-40, 1e-40], np.float32)
    step = LevelStep((2,), Methods.MEAN)
    assert _full(_backend(flushing), data, step)[0] == 0
    assert not HostKernels(options=("-ftz=true", "--ftz=false")).kernels["ngff_min<float>"].ftz


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.int32, np.uint32, np.int8, np.uint8])
def test_extreme_integers(kernels, dtype) -> None:
    info = np.iinfo(dtype)
    data = np.array([[info.max, info.max, info.min, info.min + 1, 0, 1, info.max, info.min,
                      info.min]] * 3, dtype=dtype)
    backend = _backend(kernels)
    for method in methods_for_dtype(np.dtype(dtype)):
        for factors in ((1, 2), (3, 3), (1, 9)):
            step = LevelStep(factors, method)
            region = tuple((0, s) for s in step.out_shape(data.shape))
            ref = reduce_region(data, step, (0, 0), data.shape, region)
            assert_same(_full(backend, data, step), ref, f"{method} {factors}")


def test_contract_leaves_zero_sign_and_nan_payload_open() -> None:
    """What the contract tolerates (docs/design.md section 2.4) and nothing more."""
    quiet, other = np.array([np.nan], np.float32), np.array([-np.nan], np.float32)
    assert quiet.view(np.uint32)[0] != other.view(np.uint32)[0]
    assert_same(other, quiet)  # NaN payload / sign: open
    assert_same(np.array([0.0]), np.array([-0.0]))  # sign of zero: open
    one_ulp_up = np.nextafter(np.float32(1), np.float32(2))
    for got, ref in (([np.nan], [0.0]), ([1.0], [one_ulp_up]), ([np.inf], [-np.inf]),
                     ([1e-45], [0.0])):
        with pytest.raises(AssertionError, match="differ"):
            assert_same(np.array(got, np.float32), np.array(ref, np.float32))
    with pytest.raises(AssertionError):
        assert_same(np.array([1], np.int64), np.array([1], np.uint64))


@pytest.mark.parametrize("method, data", [
    (Methods.MAX, np.array([0.0, -0.0])),
    (Methods.MIN, np.array([-0.0, 0.0])),
    (Methods.MEAN, np.array([np.nan, -np.nan])),
    (Methods.GAUSSIAN, np.array([np.nan, -np.nan, 1.0, np.inf])),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_signs_and_nan_payloads_within_contract(kernels, method, data, dtype) -> None:
    x = data.astype(dtype)
    step = LevelStep((2,), method)
    assert_same(_full(_backend(kernels), x, step), reduce_full(x, step))


@pytest.mark.parametrize("handover", [False, True])
def test_engine_through_the_cuda_backend_equals_the_numpy_engine(kernels, handover) -> None:
    """The engine's device pipeline (one compute worker, device-to-host of every region
    a brick writes) run through the real CUDA backend on the host stand-in, from a
    chunked source: aligned and hand-over bricks (non-aligned output regions, cells
    assembled) give the NumPy engine's bytes, and every brick is marked done."""
    import zarr
    from zarr.storage import MemoryStore

    from ngff_gpu.compute.backends import get_backend
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
    for backend in (get_backend("cpu"), _backend(kernels)):
        arrays = {k: zarr.create_array(MemoryStore(), shape=lv.shape, chunks=lv.chunks,
                                       dtype="uint16") for k, lv in enumerate(levels)}
        marked: list[int] = []
        Engine(backend, 1 << 26).run_pass(levels, p, src, arrays, lambda i: False,
                                          marked.append, cost, handover=handover)
        assert sorted(marked) == list(range(count_bricks(levels, p)))
        results.append([arrays[k][...] for k in sorted(arrays)])
    for got, want in zip(results[1], results[0]):
        assert got.tobytes() == want.tobytes()
    assert results[0][0].tobytes() == pixels.tobytes()
