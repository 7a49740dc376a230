"""The CUDA kernels, run on the CPU through the real CupyBackend, equal the NumPy path.

A hypothesis sweep over every method and dtype, 1-D to 5-D, factors 1 to 8
mixed per axis, odd shapes, bricks with a nonzero origin inside a larger
array, chains of levels as ``engine.compute_brick`` runs them, and inputs that
are C-order, Fortran-order, negative-step, zero-stride or interleaved views;
data with NaN, +-inf, +-0, float32 subnormals, integer extremes and few
distinct values; bool data (MODE, NEAREST, MIN and MAX through the uint8 view the
backend takes). Results must agree within the contract of
``tests/hostkernels/contract.py`` (bits, except the sign of zero and NaN payloads).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngff_gpu.compute.backends.cupy_backend import CupyBackend
from ngff_gpu.compute.methods import methods_for_dtype
from ngff_gpu.compute.reduce_numpy import reduce_region
from ngff_gpu.compute.step import LevelStep
from tests.hostkernels.build import compiler
from tests.hostkernels.contract import assert_same
from tests.hostkernels.standin import ALL_DTYPES, SANITIZE, HostCupy, HostKernels

pytestmark = [
    pytest.mark.skipif(compiler() is None, reason="needs g++ to build the host kernels"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # NaN/inf arithmetic is the point
]
SWEEP_DTYPES = [np.dtype(d) for d in ALL_DTYPES]
LAYOUTS = ["C", "F", "negative", "zero-stride", "interleaved"]
#: The block product (K) is kept small: MODE reads K^2 elements per output.
MAX_BLOCK = 64


@pytest.fixture(scope="module")
def kernels() -> HostKernels:
    return HostKernels()


def special_values(dtype: np.dtype) -> np.ndarray:
    """Values every sweep mixes in: extremes, signed zeros, NaN, inf, subnormals."""
    if dtype.kind == "f":
        tiny = np.finfo(np.float32).smallest_subnormal
        vals = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1.0, -1.0, 0.5, 1.5, 2.5,
                float(np.finfo(dtype).max), float(np.finfo(dtype).min), float(tiny), -float(tiny),
                1e-40, -1e-40, 3e-39, float(np.finfo(np.float32).tiny)]
        with np.errstate(over="ignore"):
            return np.array(vals, dtype=np.float64).astype(dtype)
    if dtype.kind == "b":
        return np.array([False, True])
    info = np.iinfo(dtype)
    return np.array([info.min, info.min + 1, info.max, info.max - 1, 0, 1, 2, 3],
                    dtype=dtype)


def make_data(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype,
              flavor: str) -> np.ndarray:
    """Random data of one flavor: ``wide`` (the full range plus specials), ``few``
    (few distinct values: MODE ties, MEAN halves) or ``subnormal`` (tiny floats)."""
    n = math.prod(shape)
    if dtype.kind == "f":
        if flavor == "subnormal":
            tiny = float(np.finfo(np.float32).smallest_subnormal)
            x = (rng.integers(-2000, 2000, n) * tiny).astype(np.float32).astype(dtype)
        elif flavor == "few":
            x = rng.choice(np.array([0.0, -0.0, 1.0, 0.5, -2.5], dtype=dtype), n)
        else:
            x = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(dtype)
    elif dtype.kind == "b":  # "few": mostly one value (ties and runs), else half and half
        x = rng.random(n) < (0.2 if flavor == "few" else 0.5)
    else:
        info = np.iinfo(dtype)
        if flavor == "few":
            x = rng.choice(np.array([0, 1, 2, 3, info.max, info.min], dtype=dtype), n)
        else:
            x = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    specials = special_values(np.dtype(dtype))
    mask = rng.random(n) < (0.15 if flavor == "wide" else 0.03)
    x[mask] = rng.choice(specials, int(mask.sum()))
    return x.reshape(shape)


@st.composite
def factors_and_shape(draw, max_dims: int = 5) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Factors 1-8 per axis (block product at most MAX_BLOCK) and odd shapes that fit them."""
    ndim = draw(st.integers(1, max_dims))
    factors: list[int] = []
    for _ in range(ndim):
        room = MAX_BLOCK // math.prod(factors)
        factors.append(draw(st.integers(1, max(1, min(8, room)))))
    most = 4 if ndim <= 3 else 2
    shape = tuple(f * draw(st.integers(1, most)) + draw(st.integers(0, f)) for f in factors)
    return tuple(factors), shape


def _sub_region(draw, out_shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    region = []
    for n in out_shape:
        a = draw(st.integers(0, n - 1))
        region.append((a, draw(st.integers(a + 1, n))))
    return tuple(region)


def device_brick(xp: HostCupy, brick: np.ndarray, layout: str, axis: int):
    """``brick``'s values as a stand-in device array with the given memory layout."""
    if layout == "F":
        return xp.asarray(np.asfortranarray(brick))
    if layout == "negative":
        flip = tuple(slice(None, None, -1) if a == axis else slice(None) for a in range(brick.ndim))
        return xp.asarray(np.ascontiguousarray(brick[flip]))[flip]
    if layout == "zero-stride":
        one = tuple(slice(0, 1) if a == axis else slice(None) for a in range(brick.ndim))
        return xp.broadcast_to(xp.asarray(brick[one]), brick.shape)
    if layout == "interleaved":
        big = xp.zeros(brick.shape[:-1] + (2 * brick.shape[-1],), dtype=brick.dtype)
        big[..., 1::2] = xp.asarray(brick)
        return big[..., 1::2]
    return xp.asarray(np.ascontiguousarray(brick))


@st.composite
def cases(draw, dtype: np.dtype, max_dims: int = 5):
    factors, shape = draw(factors_and_shape(max_dims))
    method = draw(st.sampled_from(methods_for_dtype(dtype)))
    step = LevelStep(factors, method)
    region = _sub_region(draw, step.out_shape(shape))
    window = step.input_window(region, shape)
    lo = tuple(draw(st.integers(0, w0)) for w0, _ in window)
    hi = tuple(draw(st.integers(w1, n)) for (_, w1), n in zip(window, shape))
    layout = draw(st.sampled_from(LAYOUTS))
    axis = draw(st.integers(0, len(shape) - 1))
    flavor = draw(st.sampled_from(["wide", "few", "subnormal"]))
    seed = draw(st.integers(0, 2**32 - 1))
    return shape, step, region, lo, hi, layout, axis, flavor, seed


def _global_data(shape, dtype, layout, axis, flavor, seed) -> np.ndarray:
    data = make_data(np.random.default_rng(seed), shape, dtype, flavor)
    if layout == "zero-stride":  # constant along ``axis`` so a zero stride holds the same values
        one = tuple(slice(0, 1) if a == axis else slice(None) for a in range(len(shape)))
        data = np.ascontiguousarray(np.broadcast_to(data[one], shape))
    return data


@pytest.mark.parametrize("dtype", SWEEP_DTYPES, ids=str)
@settings(max_examples=20 if SANITIZE else 150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_kernels_on_cpu_match_numpy(kernels, dtype, data) -> None:
    case = data.draw(cases(dtype))
    shape, step, region, lo, hi, layout, axis, flavor, seed = case
    values = _global_data(shape, dtype, layout, axis, flavor, seed)
    brick = values[tuple(slice(a, b) for a, b in zip(lo, hi))]
    ref = reduce_region(brick, step, lo, shape, region)
    xp = HostCupy(seed)
    backend = CupyBackend(xp=xp, kernels=kernels)
    dev = device_brick(xp, brick, layout, axis)
    got = backend.to_host(backend.reduce_region(dev, step, lo, shape, region))
    assert_same(got, ref, f"{step} {dtype} {layout} region={region} origin={lo}")


@st.composite
def chains(draw, dtype: np.dtype):
    """A brick of the source and 2-3 levels, each computed over the region the next needs."""
    ndim = draw(st.integers(1, 3))
    levels = draw(st.integers(2, 3))
    method = draw(st.sampled_from(methods_for_dtype(dtype)))
    steps = [LevelStep(tuple(draw(st.integers(1, 3)) for _ in range(ndim)), method)
             for _ in range(levels)]
    shapes = [tuple(draw(st.integers(1, 3)) for _ in range(ndim))]
    for s in reversed(steps):  # shapes from the last level back to the source
        shapes.insert(0, tuple(n * f + draw(st.integers(0, f - 1)) for n, f in zip(shapes[0],
                                                                                    s.factors)))
    regions = [_sub_region(draw, shapes[-1])]
    for k in range(levels, 0, -1):  # need regions, last level back to the source
        regions.insert(0, steps[k - 1].input_window(regions[0], shapes[k - 1]))
    flavor = draw(st.sampled_from(["wide", "few", "subnormal"]))
    return shapes, steps, regions, flavor, draw(st.integers(0, 2**32 - 1))


@pytest.mark.parametrize("dtype", SWEEP_DTYPES, ids=str)
@settings(max_examples=5 if SANITIZE else 25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_level_chains_match_numpy(kernels, dtype, data) -> None:
    shapes, steps, regions, flavor, seed = data.draw(chains(dtype))
    values = make_data(np.random.default_rng(seed), shapes[0], dtype, flavor)
    origin = tuple(a for a, _ in regions[0])
    host = values[tuple(slice(a, b) for a, b in regions[0])]
    xp = HostCupy(seed)
    backend = CupyBackend(xp=xp, kernels=kernels)
    dev = backend.asarray(host)
    host_origin = dev_origin = origin
    for k, step in enumerate(steps, start=1):
        host = reduce_region(host, step, host_origin, shapes[k - 1], regions[k])
        dev = backend.reduce_region(dev, step, dev_origin, shapes[k - 1], regions[k])
        host_origin = dev_origin = tuple(a for a, _ in regions[k])
        assert_same(backend.to_host(dev), host, f"level {k} of {steps}")
