"""The CUDA backend: CuPy arrays and the fused kernels of ``kernels/``.

Same contract and bits as :func:`ngff_gpu.compute.reduce_numpy.reduce_region`
(docs/design.md section 2.4): the kernels follow the NumPy path's order of operations
and are compiled with ``--fmad=false``. CuPy is imported when a backend is
created, never at module import, so this module imports on machines without
a GPU.

bool policy: bricks are viewed as uint8 (same bytes, 0 or 1) and reduced by the uint8
kernels; the result is viewed back as bool (only MODE, NEAREST, MIN and MAX take bool).

float16 policy: the kernels have no half type. float16 bricks are converted
to float32 on the device (exact), reduced with the float32 kernels, and the
result is rounded back to float16 (round to nearest even), which is exactly
what the NumPy path computes (it accumulates float16 in float32 too).
NEAREST copies float16 bits directly.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ngff_gpu.compute import cuda_loader
from ngff_gpu.compute.methods import Methods, check_dtype, compute_dtype
from ngff_gpu.compute.reduce_numpy import int_clip_bounds
from ngff_gpu.compute.step import LevelStep, Region
from ngff_gpu.compute.weights import AxisWeights, weights_array

#: NumPy dtype -> C++ type name of the kernel templates.
CTYPE_NAMES: dict[np.dtype, str] = {
    np.dtype(np.uint8): "unsigned char",
    np.dtype(np.int8): "signed char",
    np.dtype(np.uint16): "unsigned short",
    np.dtype(np.int16): "short",
    np.dtype(np.uint32): "unsigned int",
    np.dtype(np.int32): "int",
    np.dtype(np.uint64): "unsigned long long",
    np.dtype(np.int64): "long long",
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
}

#: Unsigned integer of each item size, for bit copies (NEAREST).
_BITS: dict[int, np.dtype] = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16),
                              4: np.dtype(np.uint32), 8: np.dtype(np.uint64)}

#: The kernels see arrays as 5-D at most (OME-Zarr's t, c, z, y, x).
MAX_DIMS = 5
THREADS = 256
MAX_BLOCKS = 1 << 20  # grid-stride loops cover the rest

#: One tap of weight 1: the GAUSSIAN "pass" of a step with no downsampled axis
#: (it still casts through the compute dtype and rounds, like the NumPy path).
_IDENTITY = AxisWeights(1, 0, (1.0,))


def _i64(v: int) -> np.int64:
    return np.int64(v)


def _pad(values: list[int] | tuple[int, ...], fill: int) -> list[int]:
    return [fill] * (MAX_DIMS - len(values)) + list(values)


class CupyBackend:
    """CUDA backend on one device, with its own stream.

    Parameters
    ----------
    device_id : int, optional
        CUDA device; the current device when None.
    stream : cupy.cuda.Stream, optional
        Stream every transfer and kernel of this backend is queued on; a new
        blocking stream (ordered after the legacy default stream) when None.
    xp : module, optional
        The array module (``cupy`` when None). Tests pass a host stand-in
        (``tests/hostkernels``) that runs the same launches on the CPU.
    kernels : callable, optional
        ``kernels(name, *template_args, device_id=...)`` returns a launchable
        kernel; :func:`ngff_gpu.compute.cuda_loader.get_kernel` when None.

    Attributes
    ----------
    name : str
        ``"cuda"``.
    on_device : bool
        True.
    """

    name = "cuda"
    on_device = True

    def __init__(self, device_id: int | None = None, stream: Any = None, *, xp: Any = None,
                 kernels: Callable[..., Any] | None = None) -> None:
        if xp is None:
            import cupy as xp
        cupy = xp
        self._cp = cupy
        self._get_kernel = kernels if kernels is not None else cuda_loader.get_kernel
        self.device_id = int(cupy.cuda.runtime.getDevice() if device_id is None else device_id)
        with cupy.cuda.Device(self.device_id):
            self.stream = stream if stream is not None else cupy.cuda.Stream()
        self._weights: dict[tuple[int, str], Any] = {}

    @property
    def xp(self) -> Any:
        """The array module this backend allocates with (``cupy``)."""
        return self._cp

    # -- memory -------------------------------------------------------------------------

    def asarray(self, a: Any) -> Any:
        """``a`` as a CuPy array on this device.

        CuPy arrays are returned as they are; CUDA tensors (torch) and other
        objects exporting DLPack or ``__cuda_array_interface__`` are wrapped
        without a copy; host arrays are copied to the device (H2D).
        """
        cp = self._cp
        if isinstance(a, cp.ndarray):
            return a
        with cp.cuda.Device(self.device_id), self.stream:
            if hasattr(a, "__cuda_array_interface__"):
                return cp.asarray(a)
            if hasattr(a, "__dlpack_device__"):
                device_type, _ = a.__dlpack_device__()
                if int(device_type) in (2, 13):  # kDLCUDA, kDLCUDAManaged
                    if hasattr(a, "detach"):  # torch: drop autograd before export
                        a = a.detach()
                    return cp.from_dlpack(a)
            host = np.asarray(a)
            return cp.asarray(host)

    def to_host(self, a: Any) -> np.ndarray:
        """Copy ``a`` to a NumPy array backed by pinned (page-locked) host memory.

        The buffers come from CuPy's pinned memory pool and return to it when
        the array is garbage collected.
        """
        cp = self._cp
        if isinstance(a, np.ndarray):
            return a
        a = self.asarray(a)
        with cp.cuda.Device(self.device_id), self.stream:
            a = cp.ascontiguousarray(a)
            nbytes = a.nbytes
            if nbytes == 0:
                return np.empty(a.shape, dtype=a.dtype)
            mem = cp.cuda.alloc_pinned_memory(nbytes)
            host = np.frombuffer(mem, dtype=a.dtype, count=a.size).reshape(a.shape)
            a.data.copy_to_host_async(ctypes.c_void_p(host.ctypes.data), nbytes,
                                      stream=self.stream)
        self.stream.synchronize()
        return host

    def synchronize(self) -> None:
        """Wait for everything queued on this backend's stream."""
        self.stream.synchronize()

    # -- compute ------------------------------------------------------------------------

    def reduce_region(
        self,
        x: Any,
        step: LevelStep,
        origin: tuple[int, ...],
        in_shape: tuple[int, ...],
        out_region: Region,
    ) -> Any:
        """Compute ``out_region`` of ``step`` from brick ``x`` on the device.

        Same parameters, checks and bits as
        :func:`ngff_gpu.compute.reduce_numpy.reduce_region`; returns a CuPy array
        (queued on :attr:`stream`; :meth:`to_host` or :meth:`synchronize` waits).

        Raises
        ------
        ValueError
            If the brick does not cover the input window, or ``x`` has more
            than 5 dims.
        UnsupportedDtypeError
            If ``step.method`` does not accept ``x``'s dtype.
        """
        cp = self._cp
        x = self.asarray(x)
        dtype = check_dtype(x.dtype, step.method)
        if not (x.ndim == len(step.factors) == len(origin) == len(in_shape) == len(out_region)):
            raise ValueError(
                f"brick has {x.ndim} dims but the step, origin, shape or region has another count"
            )
        window = step.input_window(out_region, in_shape)
        for axis, ((lo, hi), o, s) in enumerate(zip(window, origin, x.shape)):
            if lo < o or hi > o + s:
                raise ValueError(
                    f"brick [{o}, {o + s}) on axis {axis} does not cover the window [{lo}, {hi})"
                )
        if x.ndim > MAX_DIMS:
            raise ValueError(f"the CUDA kernels take at most {MAX_DIMS} dims, got {x.ndim}")
        out_shape = tuple(b - a for a, b in out_region)
        with cp.cuda.Device(self.device_id), self.stream:
            if math.prod(out_shape) == 0:
                return cp.empty(out_shape, dtype=dtype)
            method = step.method
            if dtype == np.bool_:
                # The kernels have no bool type: a bool is one byte holding 0 or 1, so
                # the uint8 view orders, counts and selects the same values (MODE,
                # NEAREST, MIN, MAX); the result's bytes are viewed back as bool.
                return self.reduce_region(x.view(np.uint8), step, origin, in_shape,
                                          out_region).view(np.bool_)
            if method is Methods.NEAREST:
                return self._nearest(x, step, origin, out_region, out_shape)
            if dtype == np.float16:
                # Trim to the window first, then widen exactly (see the module docstring).
                sl = tuple(slice(lo - o, hi - o) for (lo, hi), o in zip(window, origin))
                wide = x[sl].astype(np.float32)
                lows = tuple(lo for lo, _ in window)
                res = self.reduce_region(wide, step, lows, in_shape, out_region)
                return res.astype(np.float16)
            if method is Methods.GAUSSIAN:
                return self._gaussian(x, step, origin, in_shape, out_region, window, dtype)
            return self._block(x, step, origin, out_region, out_shape, dtype)

    # -- launches -----------------------------------------------------------------------

    def _launch(self, kernel: Any, total: int, args: tuple) -> None:
        blocks = max(1, min(-(-total // THREADS), MAX_BLOCKS))
        kernel((blocks,), (THREADS,), args)

    def _geometry(
        self, x: Any, step: LevelStep, origin: tuple[int, ...], out_region: Region,
        sample_offsets: tuple[int, ...],
    ) -> tuple[list[int], list[int], int, list[int], list[int]]:
        """Output shape, per-output steps, base offset, factors and strides (5-D padded)."""
        strides = [s // x.itemsize for s in x.strides]
        base = 0
        steps = []
        for (a, _), f, o, off, s in zip(out_region, step.factors, origin, sample_offsets,
                                        strides):
            base += (f * a + off - o) * s
            steps.append(f * s)
        out_shape = [b - a for a, b in out_region]
        return (_pad(out_shape, 1), _pad(steps, 0), base, _pad(list(step.factors), 1),
                _pad(strides, 0))

    def _nearest(self, x, step, origin, out_region, out_shape):
        cp = self._cp
        bits = _BITS[x.dtype.itemsize]
        offsets = tuple((f - 1) // 2 for f in step.factors)
        xb = x.view(bits)
        n, t, base, _, _ = self._geometry(xb, step, origin, out_region, offsets)
        out = cp.empty(out_shape, dtype=x.dtype)
        kernel = self._get_kernel("ngff_nearest", CTYPE_NAMES[bits], device_id=self.device_id)
        args = (xb, out.view(bits), *map(_i64, n), *map(_i64, t), _i64(base))
        self._launch(kernel, out.size, args)
        return out

    def _block(self, x, step, origin, out_region, out_shape, dtype):
        cp = self._cp
        method = step.method
        n, t, base, f, s = self._geometry(x, step, origin, out_region, (0,) * x.ndim)
        ctype = CTYPE_NAMES[dtype]
        if method is Methods.MEAN:
            if dtype.kind == "f":
                name = "ngff_mean_float"
            else:
                name = "ngff_mean_int" if dtype.itemsize <= 4 else "ngff_mean_int64"
        else:
            name = {Methods.MIN: "ngff_min", Methods.MAX: "ngff_max",
                    Methods.MODE: "ngff_mode"}[method]
        kernel = self._get_kernel(name, ctype, device_id=self.device_id)
        out = cp.empty(out_shape, dtype=dtype)
        args = (x, out, *map(_i64, n), *map(_i64, t), _i64(base),
                *map(np.int32, f), *map(_i64, s))
        self._launch(kernel, out.size, args)
        return out

    def _device_weights(self, w: AxisWeights, ct: np.dtype) -> Any:
        key = (w.factor, ct.str)
        if key not in self._weights:
            # The same Python code as reduce_numpy: float64 weights cast to ct.
            self._weights[key] = self._cp.asarray(weights_array(w, ct))
        return self._weights[key]

    def _gaussian(self, x, step, origin, in_shape, out_region, window, dtype):
        cp = self._cp
        ct = compute_dtype(dtype)
        pad = MAX_DIMS - x.ndim
        # Trim the brick to the window: factor-1 axes to the output region,
        # downsampled axes to the input rows their taps read.
        cur = x[tuple(slice(lo - o, hi - o) for (lo, hi), o in zip(window, origin))]
        lows = [lo for lo, _ in window]
        passes = [(a, step.axis_weights[a]) for a in step.axes] or [(0, _IDENTITY)]
        lo_b, hi_b = int_clip_bounds(dtype, ct) if dtype.kind in "iu" else (0.0, 0.0)
        for k, (axis, w) in enumerate(passes):
            last = k == len(passes) - 1
            out_dtype = dtype if last else ct
            a, b = out_region[axis]
            shape = list(cur.shape)
            shape[axis] = b - a
            out = cp.empty(tuple(shape), dtype=out_dtype)
            kernel = self._get_kernel("ngff_gaussian_pass", CTYPE_NAMES[cur.dtype], CTYPE_NAMES[ct],
                                CTYPE_NAMES[out_dtype], device_id=self.device_id)
            strides = [s // cur.itemsize for s in cur.strides]
            args = (cur, out, self._device_weights(w, ct),
                    *map(_i64, _pad(shape, 1)), *map(_i64, _pad(strides, 0)),
                    np.int32(axis + pad), np.int32(w.factor), np.int32(w.first),
                    np.int32(len(w.weights)), _i64(a), _i64(in_shape[axis]),
                    _i64(lows[axis]), np.float64(lo_b), np.float64(hi_b))
            self._launch(kernel, out.size, args)
            cur = out
        return cur


def kernel_instances() -> list[tuple[str, tuple[str, ...]]]:
    """Every ``(kernel, template arguments)`` pair :class:`CupyBackend` can request.

    What the CI checks compile (NVRTC) and instantiate (host C++); a test
    checks that the backend's launches request exactly these.
    """
    ints = [d for d in CTYPE_NAMES if d.kind in "iu"]
    found: list[tuple[str, tuple[str, ...]]] = []
    for bits in _BITS.values():
        found.append(("ngff_nearest", (CTYPE_NAMES[bits],)))
    for dtype, ctype in CTYPE_NAMES.items():
        if dtype.kind == "f":
            found.append(("ngff_mean_float", (ctype,)))
        else:
            found.append(("ngff_mean_int" if dtype.itemsize <= 4 else "ngff_mean_int64", (ctype,)))
        found += [("ngff_min", (ctype,)), ("ngff_max", (ctype,))]
        if dtype in ints:
            found.append(("ngff_mode", (ctype,)))
        ct = CTYPE_NAMES[compute_dtype(dtype)]
        for triple in ((ctype, ct, ct), (ctype, ct, ctype), (ct, ct, ctype)):
            found.append(("ngff_gaussian_pass", triple))
    return sorted(set(found))
