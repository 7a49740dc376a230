"""The compiled CPU path (compute/reduce_cpu.py + cpu_kernels.py) equals the NumPy path.

A hypothesis sweep over every method and dtype (big-endian too), 1-D to 5-D, factors 1 to
8 mixed per axis, bricks with a nonzero origin inside a larger array, inputs that are
C-order, Fortran-order, negative-step, zero-stride or interleaved views, the work cut into
tasks of any size; data with NaN, +-inf, +-0, float32 subnormals, integer extremes (64-bit
MEAN near the limits) and few distinct values. The results must have the NumPy path's
bits, except NaN payloads and, for MIN/MAX only, the sign of a zero (docs/design.md 2.4).
Also: the machine code has no fused multiply-add, subnormals are kept, the fallback warns
once and gives the same bits, and the thread pool never runs more kernels than its limit.
"""

from __future__ import annotations

import math
import re
import threading
import types
import warnings

import llvmlite.binding as llvm
import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.compute import cpu_kernels, cpu_pool, reduce_cpu
from ngff_gpu.compute.methods import Methods, methods_for_dtype
from ngff_gpu.compute.reduce_numpy import reduce_region as reduce_numpy
from ngff_gpu.compute.step import LevelStep
from ngff_gpu.errors import ArgumentError, CpuKernelFallbackWarning

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN/inf arithmetic

DTYPES = [np.dtype(d) for d in ("u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8",
                                ">u2", ">i8", ">f4")]
LAYOUTS = ["C", "F", "negative", "zero-stride", "interleaved"]
#: Block product at most 64: MODE counts pairs up to 32 and sorts above.
MAX_BLOCK = 64


def assert_bits(got: np.ndarray, ref: np.ndarray, method: Methods, context: str = "") -> None:
    """Equal bits; NaN at the same places (any payload); for MIN/MAX +0 == -0."""
    assert got.dtype == ref.dtype, (got.dtype, ref.dtype, context)
    assert got.shape == ref.shape, (got.shape, ref.shape, context)
    native = ref.dtype.newbyteorder("=")
    g = got.astype(native)
    r = ref.astype(native)
    if native.kind == "f":
        nan = np.isnan(r)
        assert (np.isnan(g) == nan).all(), f"{context}: NaN positions differ"
        if method in (Methods.MIN, Methods.MAX):
            g[g == 0] = 0
            r[r == 0] = 0
        bits = f"u{native.itemsize}"
        bad = (g.view(bits) != r.view(bits)) & ~nan
    else:
        bad = g != r
    if bad.any():
        where = [tuple(int(i) for i in b) for b in np.argwhere(bad)[:5]]
        detail = [(w, g[w], r[w]) for w in where]
        raise AssertionError(f"{context}: {int(bad.sum())} of {bad.size} differ "
                             f"(index, compiled, numpy): {detail}")


def special_values(dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "f":
        tiny = float(np.finfo(np.float32).smallest_subnormal)
        vals = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1.0, -1.0, 0.5, 1.5, 2.5,
                float(np.finfo(dtype).max), float(np.finfo(dtype).min), tiny, -tiny,
                1e-40, -1e-40, 3e-39, float(np.finfo(np.float32).tiny)]
        with np.errstate(over="ignore"):
            return np.array(vals, dtype=np.float64).astype(dtype)
    info = np.iinfo(dtype)
    return np.array([info.min, info.min + 1, info.max, info.max - 1, 0, 1, 2, 3], dtype=dtype)


def make_data(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype,
              flavor: str) -> np.ndarray:
    """``wide`` (full range + specials), ``few`` (ties, halves), ``subnormal`` (tiny floats)
    or ``extreme`` (integers within 100 of their limits, floats near overflow)."""
    native = dtype.newbyteorder("=")
    n = math.prod(shape)
    if native.kind == "f":
        if flavor == "subnormal":
            tiny = float(np.finfo(np.float32).smallest_subnormal)
            x = (rng.integers(-2000, 2000, n) * tiny).astype(np.float32).astype(native)
        elif flavor == "few":
            x = rng.choice(np.array([0.0, -0.0, 1.0, 0.5, -2.5], dtype=native), n)
        elif flavor == "extreme":
            big = float(np.finfo(native).max)
            x = (rng.choice([-1.0, 1.0], n) * big * rng.uniform(0.5, 1.0, n)).astype(native)
        else:
            x = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(native)
    else:
        info = np.iinfo(native)
        if flavor == "few":
            x = rng.choice(np.array([0, 1, 2, 3, info.max, info.min], dtype=native), n)
        elif flavor == "extreme":
            near_max = rng.integers(info.max - 100, info.max, n, dtype=native, endpoint=True)
            near_min = rng.integers(info.min, info.min + 100, n, dtype=native, endpoint=True)
            x = np.where(rng.random(n) < 0.5, near_max, near_min)
        else:
            x = rng.integers(info.min, info.max, n, dtype=native, endpoint=True)
    mask = rng.random(n) < (0.15 if flavor == "wide" else 0.03)
    x[mask] = rng.choice(special_values(native), int(mask.sum()))
    return x.astype(dtype).reshape(shape)


@st.composite
def factors_and_shape(draw, max_dims: int = 5):
    ndim = draw(st.integers(1, max_dims))
    factors: list[int] = []
    for _ in range(ndim):
        room = MAX_BLOCK // math.prod(factors)
        factors.append(draw(st.integers(1, max(1, min(8, room)))))
    most = 5 if ndim <= 3 else 2
    shape = tuple(f * draw(st.integers(1, most)) + draw(st.integers(0, f)) for f in factors)
    return tuple(factors), shape


def layout_view(brick: np.ndarray, layout: str, axis: int) -> np.ndarray:
    """``brick``'s values with another memory layout."""
    if layout == "F":
        return np.asfortranarray(brick)
    if layout == "negative":
        flip = tuple(slice(None, None, -1) if a == axis else slice(None) for a in range(brick.ndim))
        return np.ascontiguousarray(brick[flip])[flip]
    if layout == "zero-stride":  # the data is constant along ``axis`` (see cases)
        one = tuple(slice(0, 1) if a == axis else slice(None) for a in range(brick.ndim))
        return np.broadcast_to(brick[one], brick.shape)
    if layout == "interleaved":
        big = np.zeros(brick.shape[:-1] + (2 * brick.shape[-1],), dtype=brick.dtype)
        big[..., 1::2] = brick
        return big[..., 1::2]
    return np.ascontiguousarray(brick)


@st.composite
def cases(draw, dtype: np.dtype):
    factors, shape = draw(factors_and_shape())
    method = draw(st.sampled_from(methods_for_dtype(dtype)))
    step = LevelStep(factors, method)
    region = []
    for n in step.out_shape(shape):
        a = draw(st.integers(0, n - 1))
        region.append((a, draw(st.integers(a + 1, n))))
    region = tuple(region)
    window = step.input_window(region, shape)
    lo = tuple(draw(st.integers(0, w0)) for w0, _ in window)
    hi = tuple(draw(st.integers(w1, n)) for (_, w1), n in zip(window, shape))
    layout = draw(st.sampled_from(LAYOUTS))
    axis = draw(st.integers(0, len(shape) - 1))
    flavor = draw(st.sampled_from(["wide", "few", "subnormal", "extreme"]))
    task_bytes = draw(st.sampled_from([reduce_cpu.TASK_BYTES, 64, 1]))
    seed = draw(st.integers(0, 2**32 - 1))
    return shape, step, region, lo, hi, layout, axis, flavor, task_bytes, seed


def global_data(shape, dtype, layout, axis, flavor, seed) -> np.ndarray:
    data = make_data(np.random.default_rng(seed), shape, dtype, flavor)
    if layout == "zero-stride":  # constant along ``axis`` so a zero stride holds the same values
        one = tuple(slice(0, 1) if a == axis else slice(None) for a in range(len(shape)))
        data = np.ascontiguousarray(np.broadcast_to(data[one], shape))
    return data


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_compiled_equals_numpy(dtype, data) -> None:
    shape, step, region, lo, hi, layout, axis, flavor, task_bytes, seed = data.draw(cases(dtype))
    values = global_data(shape, dtype, layout, axis, flavor, seed)
    brick = values[tuple(slice(a, b) for a, b in zip(lo, hi))]
    ref = reduce_numpy(brick, step, lo, shape, region)
    got = reduce_cpu.reduce_region(layout_view(brick, layout, axis), step, lo, shape, region,
                                   task_bytes=task_bytes)
    assert_bits(got, ref, step.method,
                f"{step} {dtype} {layout} shape={shape} region={region} origin={lo} "
                f"flavor={flavor} task_bytes={task_bytes}")


class Counting:
    """The real kernels, counting the calls of each (the compiled path really ran)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.COMPILE_ERRORS = cpu_kernels.COMPILE_ERRORS

    def __getattr__(self, name: str):
        fn = getattr(cpu_kernels, name)

        def call(*args):
            self.calls[name] = self.calls.get(name, 0) + 1
            return fn(*args)

        return call


@pytest.mark.parametrize(("shape", "factors"), [
    ((40,), (2,)), ((20, 30), (2, 2)), ((3, 20, 30), (1, 2, 2)), ((10, 20, 30), (2, 2, 2)),
    ((2, 3, 10, 12, 14), (1, 1, 2, 2, 2)), ((20, 30, 3), (2, 2, 1)), ((10, 20, 30), (2, 1, 1)),
    ((10, 20, 30), (1, 2, 1)), ((10, 20, 30), (1, 1, 3)), ((6, 8, 10, 3), (2, 2, 2, 1)),
    ((4, 3, 10, 4, 12), (1, 1, 2, 1, 2)), ((4, 6, 10, 40), (2, 1, 2, 1)),
])
@pytest.mark.parametrize("method", [Methods.GAUSSIAN, Methods.MEAN, Methods.MAX, Methods.MODE])
def test_compiled_path_runs_for_every_layout_of_axes(shape, factors, method) -> None:
    """The usual (and a few unusual) layouts of axes take the kernels, not the fallback;
    a split into tasks (the biggest first) changes no bit."""
    counting = Counting()
    x = make_data(np.random.default_rng(1), shape, np.dtype(np.uint16), "wide")
    step = LevelStep(factors, method)
    out_region = tuple((0, n) for n in step.out_shape(shape))
    ref = reduce_numpy(x, step, (0,) * len(shape), shape, out_region)
    with reduce_cpu.use_cpu_kernels(reduce_cpu.CpuKernelLoader(load=lambda: counting)):
        for task_bytes in (reduce_cpu.TASK_BYTES, 256):
            got = reduce_cpu.reduce_region(x, step, (0,) * len(shape), shape, out_region,
                                           task_bytes=task_bytes)
            assert_bits(got, ref, method, f"{shape} {factors} {task_bytes}")
    assert sum(counting.calls.values()) >= 2, counting.calls


@pytest.mark.parametrize("factors", [(2, 2, 2, 2), (2, 1, 2, 2), (1, 2, 1, 2, 2)])
def test_unfit_axes_take_the_numpy_path_with_the_same_bits(factors) -> None:
    """Four downsampled axes, or a factor-1 axis between downsampled ones after a leading
    one, have no canonical form: the NumPy path computes, silently, the same bits."""
    counting = Counting()
    shape = tuple(3 * f for f in factors)
    x = make_data(np.random.default_rng(2), shape, np.dtype(np.float32), "wide")
    step = LevelStep(factors, Methods.GAUSSIAN)
    region = ((0, 3),) * len(factors)
    with reduce_cpu.use_cpu_kernels(reduce_cpu.CpuKernelLoader(load=lambda: counting)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", CpuKernelFallbackWarning)
            got = reduce_cpu.reduce_region(x, step, (0,) * len(factors), shape, region)
    assert counting.calls == {}
    assert_bits(got, reduce_numpy(x, step, (0,) * len(factors), shape, region), step.method)


# -- the numerics of the machine code --------------------------------------------------------

#: x86 and AArch64 fused multiply-add mnemonics.
FMA = re.compile(r"\b(v?f(n)?m(add|sub)\w*|fmla|fmls|fmadd|fmsub)\b", re.IGNORECASE)


def _arr(t, ndim: int = 1):
    return numba.types.Array(t, ndim, "C")


def fp_signatures():
    """The kernels' floating-point functions, with float32 and float64 signatures."""
    f32, f64, u16, i64, b = (numba.float32, numba.float64, numba.uint16, numba.int64,
                             numba.boolean)  # float64 is the same code: _acc4 checks both
    out = [("_acc4", (_arr(f32), *[_arr(u16)] * 4, *[f32] * 4, b)),
           ("_acc4", (_arr(f64), *[_arr(f64)] * 4, *[f64] * 4, b)),
           ("_acc1", (_arr(f32), _arr(f32), f32, b)),
           ("_finish", (_arr(f32), _arr(u16), f32, f32, b)),
           ("mean_float", (_arr(f32, 4), _arr(f32, 4), i64, _arr(i64, 2), _arr(f32))),
           ("min_max", (_arr(f32, 4), _arr(f32, 4), i64, _arr(i64, 2), b, f32))]
    return out


def test_machine_code_has_no_fma_and_no_fast_math() -> None:
    """Compiled afresh (not from the disk cache) with the kernels' own options, the
    floating-point functions have no fused multiply-add in their machine code, no
    fast-math flag and no FMA intrinsic in their IR, and no denormal flushing."""
    checked = set()
    for name, sig in fp_signatures():
        fn = getattr(cpu_kernels, name)
        options = {k: v for k, v in fn.targetoptions.items() if k != "cache"}
        assert options.get("fastmath") in (False, None, set()), options
        fresh = numba.njit(**options)(fn.py_func)
        fresh.compile(sig)
        asm = fresh.inspect_asm(sig)
        ir = fresh.inspect_llvm(sig)
        assert not FMA.search(asm), f"{name}{sig}: fused multiply-add in the machine code"
        assert not re.search(r"\b(fast|contract|reassoc|afn|arcp|nnan|ninf|nsz)\b", ir), (
            f"{name}{sig}: fast-math flags in the IR")
        assert "llvm.fma" not in ir and "llvm.fmuladd" not in ir, name
        assert "preserve-sign" not in ir and "positive-zero" not in ir, name
        assert re.search(r"\bv?(mul|add)[sp][sd]\b|\bv?div[sp][sd]\b|\bv?(min|max|cmp)\w*[sp][sd]\b|"
                         r"\bv?round[sp][sd]\b", asm), f"{name}{sig}: no float instruction found"
        checked.add(name)
    assert checked == {"_acc4", "_acc1", "_finish", "mean_float", "min_max"}
    # the check itself: the same code with fast-math does contract (where FMA exists)
    sig = fp_signatures()[0][1]
    fast = numba.njit(fastmath=True)(cpu_kernels._acc4.py_func)
    fast.compile(sig)
    if llvm.get_host_cpu_features().get("fma", False):
        assert FMA.search(fast.inspect_asm(sig)), "the FMA pattern finds nothing"



def test_contraction_would_show_and_subnormals_are_kept() -> None:
    """Data on which an FMA or a flush to zero changes the bits: GAUSSIAN and MEAN of
    float32 values whose products are inexact, and of subnormals (outputs subnormal)."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((16, 32, 32)) * 1e3).astype(np.float32)
    tiny = np.float32(np.finfo(np.float32).smallest_subnormal)
    sub = (rng.integers(1, 50, (16, 32, 32)) * tiny).astype(np.float32)
    for data in (x, sub):
        for method in (Methods.GAUSSIAN, Methods.MEAN):
            step = LevelStep((2, 2, 2), method)
            region = ((0, 8), (0, 16), (0, 16))
            ref = reduce_numpy(data, step, (0, 0, 0), data.shape, region)
            got = reduce_cpu.reduce_region(data, step, (0, 0, 0), data.shape, region)
            assert_bits(got, ref, method, f"{method}")
            if data is sub:
                assert (got != 0).any() and (np.abs(got) < np.finfo(np.float32).tiny).all()
    # the same products and sums with contraction differ from the NumPy bits somewhere
    w = np.float32(0.3)
    fused = np.array([np.float64(w) * np.float64(v) + np.float64(a) for v, a in
                      zip(x.ravel()[:256], x.ravel()[256:512])], dtype=np.float32)
    plain = w * x.ravel()[:256] + x.ravel()[256:512]
    assert (fused != plain).any()


# -- fallback ----------------------------------------------------------------------------


def _no_numba():
    raise ImportError("No module named 'numba' (simulated)")


def test_fallback_warns_once_and_gives_the_same_bits() -> None:
    x = make_data(np.random.default_rng(5), (12, 20, 22), np.dtype(np.uint16), "wide")
    with reduce_cpu.use_cpu_kernels(reduce_cpu.CpuKernelLoader(load=_no_numba)):
        with pytest.warns(CpuKernelFallbackWarning, match="numba") as record:
            outs = [nz.downsample(x, 2, method=m) for m in ("gaussian", "mean", "max")]
            outs.append(nz.downsample(x, 2))
        assert sum(issubclass(w.category, CpuKernelFallbackWarning) for w in record) == 1
        assert not reduce_cpu.compiled_available()
    for m, got in zip((Methods.GAUSSIAN, Methods.MEAN, Methods.MAX, Methods.GAUSSIAN), outs):
        step = LevelStep((2, 2, 2), m)
        assert_bits(got, reduce_numpy(x, step, (0, 0, 0), x.shape, ((0, 6), (0, 10), (0, 11))), m)
    assert reduce_cpu.compiled_available()  # the real loader is back


def test_a_kernel_that_does_not_compile_falls_back_once() -> None:
    class Broken(Exception):
        pass

    def broken(*args):
        raise Broken("LLVM cannot compile this (simulated)")

    fake = types.SimpleNamespace(COMPILE_ERRORS=(Broken,), gaussian=broken, mean_int=broken)
    x = make_data(np.random.default_rng(6), (64, 64), np.dtype(np.uint8), "wide")
    step = LevelStep((2, 2), Methods.GAUSSIAN)
    ref = reduce_numpy(x, step, (0, 0), x.shape, ((0, 32), (0, 32)))
    with reduce_cpu.use_cpu_kernels(reduce_cpu.CpuKernelLoader(load=lambda: fake)):
        with pytest.warns(CpuKernelFallbackWarning, match="cannot compile") as record:
            a = reduce_cpu.reduce_region(x, step, (0, 0), x.shape, ((0, 32), (0, 32)),
                                         task_bytes=256)
            b = reduce_cpu.reduce_region(x, LevelStep((2, 2), Methods.MEAN), (0, 0), x.shape,
                                         ((0, 32), (0, 32)))
        assert len(record) == 1
    assert_bits(a, ref, step.method)
    assert_bits(b, reduce_numpy(x, LevelStep((2, 2), Methods.MEAN), (0, 0), x.shape,
                                ((0, 32), (0, 32))), Methods.MEAN)


# -- threads -----------------------------------------------------------------------------


@pytest.fixture
def threads3():
    cpu_pool.set_cpu_threads(3)
    yield 3
    cpu_pool.set_cpu_threads(None)


def _concurrency_probe(limit: int):
    """Tasks that meet ``limit`` at a time at a barrier (so ``limit`` must run at once),
    recording the most that ever ran together."""
    lock = threading.Lock()
    state = {"now": 0, "most": 0}
    barrier = threading.Barrier(limit)

    def task(_item) -> None:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            barrier.wait(timeout=60)
        finally:
            with lock:
                state["now"] -= 1

    return task, state


def test_pool_runs_exactly_its_limit_at_once(threads3) -> None:
    task, state = _concurrency_probe(3)
    cpu_pool.parallel_for(task, range(9))
    assert state["most"] == 3


def test_concurrent_callers_share_the_limit(threads3) -> None:
    """Two callers at once (as the engine's compute workers): never more than 3 tasks."""
    task, state = _concurrency_probe(3)
    callers = [threading.Thread(target=cpu_pool.parallel_for, args=(task, range(6)))
               for _ in range(2)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert state["most"] == 3


def test_pool_raises_the_first_error(threads3) -> None:
    def task(i):
        if i == 5:
            raise KeyError(i)

    with pytest.raises(KeyError):
        cpu_pool.parallel_for(task, range(10))


def test_thread_limit_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(cpu_pool.THREADS_ENV, "1")
    assert cpu_pool.cpu_threads() == 1
    monkeypatch.setenv(cpu_pool.THREADS_ENV, "zero")
    with pytest.raises(ArgumentError, match=cpu_pool.THREADS_ENV):
        cpu_pool.cpu_threads()
    monkeypatch.delenv(cpu_pool.THREADS_ENV)
    assert cpu_pool.cpu_threads() == cpu_pool.machine_threads()
    with pytest.raises(ArgumentError):
        cpu_pool.set_cpu_threads(0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), fy=st.integers(1, 4), fx=st.integers(2, 5),
       method=st.sampled_from([Methods.MODE, Methods.MIN, Methods.MAX, Methods.NEAREST]),
       p=st.sampled_from([0.1, 0.5, 0.9]))
def test_compiled_bool_equals_numpy(seed, fy, fx, method, p) -> None:
    """bool is reduced as its uint8 bytes (False < True; a MODE tie is False)."""
    x = np.random.default_rng(seed).random((13, 23)) < p
    step = LevelStep((fy, fx), method)
    region = tuple((0, n) for n in step.out_shape(x.shape))
    ref = reduce_numpy(x, step, (0, 0), x.shape, region)
    got = reduce_cpu.reduce_region(x, step, (0, 0), x.shape, region, task_bytes=64)
    assert got.dtype == ref.dtype == np.bool_
    np.testing.assert_array_equal(got, ref)
