"""The CPU reductions: compiled kernels on every core, the NumPy path as fallback and oracle.

:func:`reduce_region` has the contract and the bits of
:func:`ngff_gpu.compute.reduce_numpy.reduce_region` (docs/design.md section 2.4). It cuts
the output region into tasks along the leading axes (each task a C-contiguous block of the
output, computed from its own input window, so nothing depends on the cut), and runs the
numba kernels of :mod:`ngff_gpu.compute.cpu_kernels` on them on the shared thread pool of
:mod:`ngff_gpu.compute.cpu_pool`.

Each task brings its window into the kernels' canonical form: native byte order (float16
widened to float32, which is exact and is what the NumPy path computes in; NEAREST copies
bits), C-contiguous (a copy of the window only when the input is not: Fortran order,
negative or zero strides), and viewed as ``(B, Z, Y, X*C)``, where ``B`` and ``C`` merge the
runs of factor-1 axes before and after at most three slots ``Z, Y, X``. A step whose axes
need more slots (four downsampled axes, or three with a factor-1 axis between two of them),
an empty region, or a step without any downsampled axis, takes the NumPy path.

Where the kernels come from is a :class:`CpuKernelLoader`, replaceable with
:func:`use_cpu_kernels`. When it fails (numba missing or unable to load) or a kernel does
not compile, the NumPy path computes instead, with one :class:`CpuKernelFallbackWarning`
per process.
"""

from __future__ import annotations

import itertools
import math
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ngff_gpu.compute import reduce_numpy
from ngff_gpu.compute.cpu_pool import cpu_threads, parallel_for
from ngff_gpu.compute.methods import Methods, check_dtype, compute_dtype
from ngff_gpu.compute.step import LevelStep, Region
from ngff_gpu.compute.weights import AxisWeights, weights_array
from ngff_gpu.errors import CpuKernelFallbackWarning

#: A task reads about this many bytes of input (fewer, larger tasks for small bricks).
TASK_BYTES = 2 << 20
#: Tasks per thread of a large call (load balance on a shared pool).
TASKS_PER_THREAD = 4

_BITS = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16), 4: np.dtype(np.uint32),
         8: np.dtype(np.uint64)}


def _import_kernels() -> Any:
    from ngff_gpu.compute import cpu_kernels

    return cpu_kernels


@dataclass(frozen=True)
class CpuKernelLoader:
    """Where the compiled kernels come from.

    Attributes
    ----------
    load : callable
        ``() -> module``: the kernels (:mod:`ngff_gpu.compute.cpu_kernels`); raises
        when they cannot load on this machine.
    """

    load: Callable[[], Any] = _import_kernels


class _Kernels:
    """The loaded kernels, or the reason they are unusable (warned about once)."""

    def __init__(self, loader: CpuKernelLoader) -> None:
        self.loader = loader
        self.lock = threading.Lock()
        self.module: Any = None
        self.tried = False
        self.failed = False

    def get(self) -> Any:
        if not self.tried:
            with self.lock:
                if not self.tried:
                    try:
                        self.module = self.loader.load()
                    except Exception as exc:  # noqa: BLE001 - any failure: use NumPy
                        self.disable(exc)
                    self.tried = True
        return None if self.failed else self.module

    def disable(self, reason: BaseException) -> None:
        with_warning = not self.failed
        self.failed = True
        if with_warning:
            warnings.warn(CpuKernelFallbackWarning(
                f"the compiled CPU kernels are unavailable ({type(reason).__name__}: {reason}); "
                "the NumPy reductions compute instead (same pixels, slower)"), stacklevel=4)


_state = _Kernels(CpuKernelLoader())


@contextmanager
def use_cpu_kernels(loader: CpuKernelLoader) -> Iterator[CpuKernelLoader]:
    """Load the compiled kernels with ``loader`` inside the ``with`` block (process-wide;
    its fallback warning is issued afresh, once). Tests simulate a machine without
    numba this way."""
    global _state
    previous = _state
    _state = _Kernels(loader)
    try:
        yield loader
    finally:
        _state = previous


def compiled_available() -> bool:
    """True when the compiled kernels load (warns once when they do not)."""
    return _state.get() is not None


# -- canonical form -------------------------------------------------------------------------


#: A trailing run of factor-1 axes at most this long becomes the kernels' inner ``C``
#: (interleaved samples: RGB, a few channels); a longer one takes a slot of its own.
SMALL_C = 16


@dataclass(frozen=True)
class _Plan:
    """Axes of the canonical form: ``b`` (leading factor-1 run), slots ``Z, Y, X`` (each a
    downsampled axis, a run of factor-1 axes, or nothing), ``c`` (trailing factor-1 run
    merged into the rows)."""

    b: tuple[int, ...]
    slots: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    c: tuple[int, ...]


@lru_cache(maxsize=256)
def _plan(factors: tuple[int, ...], tail: int) -> _Plan | None:
    """The canonical form for ``factors`` (``tail``: the length of the trailing factor-1
    run, 0 if none), or None where none fits (or nothing is downsampled)."""
    groups: list[list[int]] = []
    for axis, f in enumerate(factors):
        if f == 1 and groups and factors[groups[-1][0]] == 1:
            groups[-1].append(axis)
        else:
            groups.append([axis])
    if all(factors[g[0]] == 1 for g in groups):
        return None
    b: list[int] = groups.pop(0) if factors[groups[0][0]] == 1 else []
    c: list[int] = []
    if (len(groups) >= 2 and factors[groups[-1][0]] == 1
            and (len(groups) == 4 or tail <= SMALL_C)):
        c = groups.pop()
    if len(groups) > 3:
        return None
    if len(groups) == 1:
        slots = [(), (), tuple(groups[0])]
    elif len(groups) == 2:  # Z takes the first: its rows are whole planes, longer than Y's
        slots = [tuple(groups[0]), (), tuple(groups[1])]
    else:
        slots = [tuple(g) for g in groups]
    return _Plan(tuple(b), (slots[0], slots[1], slots[2]), tuple(c))


@lru_cache(maxsize=64)
def _weights(factor: int, first: int, weights: tuple[float, ...], ct: str) -> np.ndarray:
    w = weights_array(AxisWeights(factor, first, weights), np.dtype(ct))
    w.flags.writeable = False
    return w


def _canonical(plan: _Plan, step: LevelStep, shape: tuple[int, ...], lows: list[int],
               in_shape: tuple[int, ...], sub: Region, ct: np.dtype):
    """Shapes, ``geo`` and per-slot weights of one task's window in canonical form."""
    b = math.prod(shape[a] for a in plan.b)
    c = math.prod(shape[a] for a in plan.c)
    geo = np.zeros((3, 5), dtype=np.int64)
    lens_in, lens_out, weights = [], [], []
    one = _weights(1, 0, (1.0,), ct.str)
    for s, axes in enumerate(plan.slots):
        if len(axes) == 1 and step.factors[axes[0]] > 1:
            a = axes[0]
            f = step.factors[a]
            w = step.axis_weights[a]
            first = w.first if w is not None else 0
            geo[s] = (f, first, lows[a], in_shape[a], sub[a][0])
            lens_in.append(shape[a])
            lens_out.append(sub[a][1] - sub[a][0])
            weights.append(_weights(f, w.first, w.weights, ct.str) if w is not None else one)
        else:  # nothing, or a run of factor-1 axes (window == output region)
            n = math.prod(shape[a] for a in axes)
            geo[s] = (1, 0, 0, n, 0)
            lens_in.append(n)
            lens_out.append(n)
            weights.append(one)
    in4 = (b, lens_in[0], lens_in[1], lens_in[2] * c)
    out4 = (b, lens_out[0], lens_out[1], lens_out[2] * c)
    return in4, out4, c, geo, weights


# -- tasks ----------------------------------------------------------------------------------


def _tasks(out_region: Region, in_bytes: int, task_bytes: int) -> list[Region]:
    """``out_region`` cut into blocks that are C-contiguous in the output: single indices
    on the leading axes, a range on one axis, whole ranges after it."""
    want = 1
    if in_bytes >= 2 * task_bytes:
        want = min(in_bytes // task_bytes, TASKS_PER_THREAD * cpu_threads())
    if want <= 1 or not out_region:
        return [out_region]
    extents = [b - a for a, b in out_region]
    lead = 1
    axis = 0
    for axis, e in enumerate(extents):
        if lead * e >= want or axis == len(extents) - 1:
            break
        lead *= e
    a0, b0 = out_region[axis]
    pieces = min(extents[axis], -(-want // lead))
    cuts = [a0 + (extents[axis] * k) // pieces for k in range(pieces + 1)]
    ranges = [(s, e) for s, e in zip(cuts[:-1], cuts[1:]) if e > s]
    out = []
    for idx in itertools.product(*(range(a, b) for a, b in out_region[:axis])):
        head = tuple((i, i + 1) for i in idx)
        out += [head + (r,) + tuple(out_region[axis + 1:]) for r in ranges]
    return out


def _run(kernels: Any, x: np.ndarray, step: LevelStep, origin: tuple[int, ...],
         in_shape: tuple[int, ...], sub: Region, dst: np.ndarray, plan: _Plan,
         dtype: np.dtype) -> None:
    """Compute ``sub`` into ``dst`` (the output block of ``sub``) with the kernels."""
    window = step.input_window(sub, in_shape)
    xw = x[tuple(slice(lo - o, hi - o) for (lo, hi), o in zip(window, origin))]
    lows = [lo for lo, _ in window]
    method = step.method
    if method is Methods.NEAREST:  # a strided copy: NumPy's is at memory speed already
        dst[...] = reduce_numpy.reduce_region(xw, step, tuple(lows), in_shape, sub)
        return
    native = dtype.newbyteorder("=")
    if native.kind in "iub" and method is not Methods.GAUSSIAN and native.itemsize <= (
            8 if method is not Methods.MEAN else 4):
        # integers as unsigned bits (the kernels flip the sign bit to keep the order):
        # half the specializations to compile, the same results; bool as its uint8 bytes
        # (False < True is 0 < 1), as the CUDA backend reduces it
        work = _BITS[native.itemsize].newbyteorder("=")
        xw = xw.astype(native, copy=False).view(work)
    else:
        work = np.dtype(np.float32) if dtype == np.float16 else native
        xw = xw.astype(work, copy=False)
    xw = np.ascontiguousarray(xw)
    direct = dst.flags.c_contiguous and dst.dtype.newbyteorder("=") == dst.dtype and (
        dst.dtype == work or dst.dtype.itemsize == work.itemsize and dst.dtype.kind in "iub")
    res = dst.view(work) if direct else np.empty(dst.shape, work)
    signed = native.kind == "i"
    mask = work.type(1 << (8 * work.itemsize - 1)) if signed and work.kind == "u" else None
    ct = compute_dtype(dtype)
    in4, out4, c, geo, (wz, wy, wx) = _canonical(plan, step, xw.shape, lows, in_shape, sub, ct)
    x4 = xw.reshape(in4)
    o4 = res.reshape(out4)
    row = out4[3]
    k = math.prod(step.factors)
    if method is Methods.GAUSSIAN:
        if dtype.kind in "iu":
            lo, hi = reduce_numpy.int_clip_bounds(dtype, ct)
        else:
            lo = hi = ct.type(0)
        kernels.gaussian(x4, o4, c, geo, wz, wy, wx, lo, hi, dtype.kind in "iu")
    elif method is Methods.MEAN:
        if dtype.kind == "f":
            kernels.mean_float(x4, o4, c, geo, np.empty(row, dtype=ct))
        elif dtype.itemsize <= 4:
            acc_t = np.int32 if dtype.itemsize <= 2 and k < 2**15 else np.int64
            offset = (1 << (8 * dtype.itemsize - 1)) if signed else 0
            kernels.mean_int(x4, o4, c, geo, np.empty(row, dtype=acc_t),
                             work.type(offset), offset)
        else:
            kernels.mean_int64(x4, o4, c, geo, np.empty(row, dtype=work),
                               np.empty(row, dtype=work), np.array([k], dtype=work))
    else:
        if mask is None:
            mask = work.type(0)
        if method is Methods.MODE:
            kernels.mode(x4, o4, c, geo, np.empty((k, row), dtype=work),
                         np.empty(row, dtype=work), np.empty(row, dtype=work), mask)
        else:
            kernels.min_max(x4, o4, c, geo, method is Methods.MIN, mask)
    if not direct:
        dst[...] = res.view(native) if work.kind == "u" and native.kind == "i" else res


def reduce_region(
    x: Any,
    step: LevelStep,
    origin: tuple[int, ...],
    in_shape: tuple[int, ...],
    out_region: Region,
    *,
    task_bytes: int = TASK_BYTES,
) -> np.ndarray:
    """Compute ``out_region`` of one level step from brick ``x``, on every core.

    Same parameters, checks, result and bits as
    :func:`ngff_gpu.compute.reduce_numpy.reduce_region`; ``task_bytes`` is about the
    input one task reads (the work is cut into at most four tasks per thread).

    Raises
    ------
    ValueError
        If the brick does not cover the input window.
    UnsupportedDtypeError
        If ``step.method`` does not accept ``x``'s dtype.
    """
    x = np.asarray(x)
    dtype = check_dtype(x.dtype, step.method)
    if not (x.ndim == len(step.factors) == len(origin) == len(in_shape) == len(out_region)):
        return reduce_numpy.reduce_region(x, step, origin, in_shape, out_region)
    window = step.input_window(out_region, in_shape)
    for axis, ((lo, hi), o, s) in enumerate(zip(window, origin, x.shape)):
        if lo < o or hi > o + s:
            raise ValueError(
                f"brick [{o}, {o + s}) on axis {axis} does not cover the window [{lo}, {hi})"
            )
    out_shape = tuple(b - a for a, b in out_region)
    tail = 1
    for (a, b), f in zip(reversed(out_region), reversed(step.factors)):
        if f > 1:
            break
        tail *= b - a
    plan = _plan(tuple(step.factors), tail)
    if plan is None or x.ndim == 0 or math.prod(out_shape) == 0:
        return reduce_numpy.reduce_region(x, step, origin, in_shape, out_region)
    kernels = _state.get()
    if kernels is None:
        return reduce_numpy.reduce_region(x, step, origin, in_shape, out_region)
    out = np.empty(out_shape, dtype=dtype)
    in_bytes = math.prod(hi - lo for lo, hi in window) * dtype.itemsize
    tasks = _tasks(out_region, in_bytes, max(1, task_bytes))

    def task(sub: Region) -> None:
        dst = out[tuple(slice(a - a0, b - a0) for (a, b), (a0, _) in zip(sub, out_region))]
        _run(kernels, x, step, origin, in_shape, sub, dst, plan, dtype)

    try:
        parallel_for(task, tasks)
    except kernels.COMPILE_ERRORS as exc:
        _state.disable(exc)
        return reduce_numpy.reduce_region(x, step, origin, in_shape, out_region)
    return out
