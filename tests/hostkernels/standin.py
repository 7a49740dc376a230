"""A host stand-in for the few CuPy calls :class:`CupyBackend` makes, and host kernels.

``HostCupy`` plays the ``cupy`` module: :class:`DeviceArray` holds "device"
memory (host memory the backend may only reach through the array API: no
implicit conversion to NumPy, as in CuPy); ``empty`` fills new arrays with
garbage so an element no kernel writes shows. :class:`HostKernels` plays
:func:`ngff_gpu.compute.cuda_loader.get_kernel`: it returns kernels of the host
library (``build.py``) that marshal every launch argument the way CuPy does
(device array -> its address, NumPy scalar -> its bytes, ``int`` -> int64,
``float`` -> float64, anything else refused) and refuse any launch whose
arguments do not match the compiled parameter list. When the loader's compile
route ends with ``-ftz=true``, float32 kernels run with the CPU's
flush-to-zero and denormals-are-zero modes on, as the device would.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ngff_gpu.compute import cuda_loader

from .abi import DTYPE_CODES, same_param
from .build import build, instances_by_file, stem

#: Set (``NGFF_HOSTKERNELS_SANITIZE=1``) in the process that
#: ``tests/test_hostkernels_sanitize.py`` starts with libasan preloaded: the
#: tests then run the AddressSanitizer/UBSan build of the kernels.
SANITIZE = os.environ.get("NGFF_HOSTKERNELS_SANITIZE") == "1"


class LaunchError(TypeError):
    """A launch the device would reject or misread (CuPy raises TypeError too)."""


class DevicePointer:
    """``ndarray.data`` of the stand-in: an address and a device-to-host copy."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array
        self.ptr = int(array.ctypes.data)

    def copy_to_host_async(self, dst: Any, nbytes: int, stream: Any = None) -> None:
        """Copy ``nbytes`` from the (contiguous) array to host address ``dst``."""
        if not self._array.flags.c_contiguous or nbytes > self._array.nbytes:
            raise LaunchError("copy_to_host_async of a non-contiguous or too small array")
        ctypes.memmove(dst, self.ptr, nbytes)


class DeviceArray:
    """An array in the stand-in's "device" memory (a view of a NumPy array)."""

    __array_priority__ = 100

    def __init__(self, array: np.ndarray) -> None:
        self._a = array

    # -- what CuPy's ndarray offers and the backend uses --------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)

    @property
    def data(self) -> DevicePointer:
        return DevicePointer(self._a)

    def __len__(self) -> int:
        return len(self._a)

    def __getitem__(self, key: Any) -> DeviceArray:
        return DeviceArray(self._a[key])

    def __setitem__(self, key: Any, value: Any) -> None:
        self._a[key] = value._a if isinstance(value, DeviceArray) else value

    def astype(self, dtype: Any, copy: bool = True) -> DeviceArray:
        return DeviceArray(self._a.astype(dtype, copy=copy))

    def view(self, dtype: Any) -> DeviceArray:
        return DeviceArray(self._a.view(dtype))

    def reshape(self, *shape: Any) -> DeviceArray:
        return DeviceArray(self._a.reshape(*shape))

    def copy(self) -> DeviceArray:
        return DeviceArray(self._a.copy())

    def get(self) -> np.ndarray:
        """A host copy (``cupy.ndarray.get``)."""
        return self._a.copy()

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError("Implicit conversion to a NumPy array is not allowed "
                        "(stand-in device array; use .get())")

    def __repr__(self) -> str:
        return f"DeviceArray({self._a!r})"


class _Stream:
    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def synchronize(self) -> None:
        return None


class HostCupy:
    """The ``cupy`` module as far as :class:`CupyBackend` and the parity tests use it.

    Parameters
    ----------
    seed : int
        Seed of the garbage that ``empty`` fills new arrays with.
    """

    ndarray = DeviceArray

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self.cuda = SimpleNamespace(
            runtime=SimpleNamespace(getDevice=lambda: 0, getDeviceCount=lambda: 1),
            Device=lambda device_id=0: nullcontext(),
            Stream=_Stream,
            alloc_pinned_memory=lambda nbytes: bytearray(nbytes),
        )

    def empty(self, shape: Any, dtype: Any = np.float64, order: str = "C") -> DeviceArray:
        """A new array full of garbage bytes (what unwritten device memory holds)."""
        a = np.empty(shape, dtype=dtype)
        raw = a.reshape(-1).view(np.uint8)  # C-contiguous: a view of every byte
        raw[...] = self._rng.integers(0, 256, raw.shape, dtype=np.uint8)
        return DeviceArray(a if order == "C" else np.asfortranarray(a))

    def zeros(self, shape: Any, dtype: Any = np.float64) -> DeviceArray:
        return DeviceArray(np.zeros(shape, dtype=dtype))

    def asarray(self, a: Any, dtype: Any = None) -> DeviceArray:
        """Copy host data to the "device" (keeps the memory order, like CuPy)."""
        if isinstance(a, DeviceArray):
            return a if dtype is None else a.astype(dtype)
        return DeviceArray(np.array(np.asarray(a, dtype=dtype), order="K", copy=True))

    def broadcast_to(self, a: DeviceArray, shape: tuple[int, ...]) -> DeviceArray:
        """A zero-stride view (``cupy.broadcast_to``)."""
        return DeviceArray(np.broadcast_to(a._a, shape))

    def ascontiguousarray(self, a: DeviceArray) -> DeviceArray:
        return a if a._a.flags.c_contiguous else DeviceArray(np.ascontiguousarray(a._a))

    def asnumpy(self, a: Any) -> np.ndarray:
        return a.get() if isinstance(a, DeviceArray) else np.asarray(a)

    def from_dlpack(self, a: Any) -> DeviceArray:
        raise NotImplementedError("the host stand-in has no DLPack devices")


def arg_code(arg: Any) -> str:
    """The code of one launch argument as CuPy marshals it (see :mod:`.abi`).

    Raises
    ------
    LaunchError
        For a type CuPy refuses (a NumPy array among them: host memory is
        not a device pointer).
    """
    if isinstance(arg, DeviceArray):
        code = DTYPE_CODES.get(arg.dtype)
        return "P" + (code if code is not None else f"<{arg.dtype}>")
    if isinstance(arg, np.generic) and not isinstance(arg, np.ndarray):
        code = DTYPE_CODES.get(arg.dtype)
        return code if code is not None else f"<{arg.dtype}>"
    if isinstance(arg, bool):
        return "b"
    if isinstance(arg, int):
        return "x"
    if isinstance(arg, float):
        return "d"
    raise LaunchError(f"Unsupported type {type(arg)} as a kernel argument")


def _arg_bytes(arg: Any) -> ctypes.Array | ctypes.c_void_p:
    if isinstance(arg, DeviceArray):
        return ctypes.c_void_p(arg.data.ptr)
    if isinstance(arg, bool):
        arg = np.bool_(arg)
    elif isinstance(arg, int):
        arg = np.int64(arg)
    elif isinstance(arg, float):
        arg = np.float64(arg)
    raw = np.asarray(arg).tobytes()
    return ctypes.create_string_buffer(raw, len(raw))


class HostKernel:
    """One compiled kernel instantiation of the host library."""

    def __init__(self, lib: ctypes.CDLL, file_stem: str, index: int, name: str,
                 params: list[str], ftz: bool) -> None:
        self._launch_fn = getattr(lib, f"ngff_host_{file_stem}_launch")
        self._ftz_fn = lib.ngff_host_set_ftz
        self.index = index
        self.name = name
        self.params = params
        self.ftz = ftz

    def check(self, args: Sequence[Any]) -> list[str]:
        """Codes of ``args``; raises :class:`LaunchError` unless they fill the parameters."""
        codes = [arg_code(a) for a in args]
        self.check_codes(codes)
        return codes

    def check_codes(self, codes: Sequence[str]) -> None:
        """Raise :class:`LaunchError` unless argument ``codes`` fill the parameters
        (count, order, size and kind of every scalar, element type of every pointer)."""
        if len(codes) != len(self.params) or not all(
                same_param(p, c) for p, c in zip(self.params, codes)):
            raise LaunchError(f"{self.name}: arguments ({', '.join(codes)}) do not match the "
                              f"compiled parameters ({', '.join(self.params)})")

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: Sequence[Any]) -> None:
        """Launch ``grid x block`` threads (1-D), as ``cupy.RawKernel.__call__`` does."""
        grid, block = tuple(grid), tuple(block)
        if len(grid) != 1 or len(block) != 1 or grid[0] < 1 or not 1 <= block[0] <= 1024:
            raise LaunchError(f"{self.name}: unsupported launch shape {grid} x {block}")
        self.check(args)
        held = [_arg_bytes(a) for a in args]
        params = (ctypes.c_void_p * len(held))(*(ctypes.addressof(h) for h in held))
        if self.ftz and not self._ftz_fn(1):
            raise RuntimeError("flush-to-zero emulation needs an x86 CPU")
        try:
            self._launch_fn(ctypes.c_int(self.index), ctypes.c_uint(grid[0]),
                            ctypes.c_uint(block[0]), params)
        finally:
            if self.ftz:
                self._ftz_fn(0)


def flushes_to_zero(options: Sequence[str]) -> bool:
    """True when the last ``ftz`` option of an NVRTC option list says true."""
    value = False
    for opt in options:
        key, _, val = opt.lstrip("-").partition("=")
        if key == "ftz":
            value = val.strip().lower() == "true"
    return value


class HostKernels:
    """``get_kernel`` of the host library: ``kernels(name, *template_args, device_id=...)``.

    Parameters
    ----------
    sanitize : bool, optional
        Use the AddressSanitizer/UBSan build (the process must preload libasan);
        :data:`SANITIZE` when None.
    options : sequence of str, optional
        The NVRTC options of the production route; ``cuda_loader.route_options()``
        when None. Float32 kernels flush subnormals when they end with ``-ftz=true``.
    """

    def __init__(self, sanitize: bool | None = None,
                 options: Sequence[str] | None = None) -> None:
        self.path: Path = build(sanitize=SANITIZE if sanitize is None else sanitize)
        lib = ctypes.CDLL(str(self.path))
        lib.ngff_host_set_ftz.restype = ctypes.c_int
        lib.ngff_host_set_ftz.argtypes = [ctypes.c_int]
        self.options = tuple(cuda_loader.route_options() if options is None else options)
        ftz = flushes_to_zero(self.options)
        self.kernels: dict[str, HostKernel] = {}
        self.requested: set[str] = set()
        for filename in instances_by_file():
            s = stem(filename)
            getattr(lib, f"ngff_host_{s}_name").restype = ctypes.c_char_p
            getattr(lib, f"ngff_host_{s}_sig").restype = ctypes.c_char_p
            launch = getattr(lib, f"ngff_host_{s}_launch")
            launch.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                               ctypes.POINTER(ctypes.c_void_p)]
            launch.restype = None
            for i in range(getattr(lib, f"ngff_host_{s}_count")()):
                name = getattr(lib, f"ngff_host_{s}_name")(i).decode()
                sig = getattr(lib, f"ngff_host_{s}_sig")(i).decode()
                single = "float" in name and "double" not in name
                self.kernels[name] = HostKernel(lib, s, i, name, sig.split(","), ftz and single)

    def __call__(self, name: str, *type_args: str, device_id: int | None = None) -> HostKernel:
        expression = cuda_loader.name_expression(name, type_args)
        if expression not in self.kernels:
            raise KeyError(f"{expression} is not an instantiation the backend lists "
                           "(cupy_backend.kernel_instances)")
        self.requested.add(expression)
        return self.kernels[expression]


class RecordingKernels:
    """A kernel getter that records each launch's arguments (as codes) and runs nothing."""

    def __init__(self) -> None:
        self.launches: dict[str, set[tuple[str, ...]]] = {}

    def __call__(self, name: str, *type_args: str, device_id: int | None = None) -> Callable:
        expression = cuda_loader.name_expression(name, type_args)

        def launch(grid: tuple[int, ...], block: tuple[int, ...], args: Sequence[Any]) -> None:
            self.launches.setdefault(expression, set()).add(tuple(arg_code(a) for a in args))

        return launch


ALL_DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64,
              np.float16, np.float32, np.float64, np.bool_]


def every_launch(backend: Any) -> None:
    """Run every method on every dtype through ``backend`` (GAUSSIAN with one pass,
    two passes and the identity pass), so every kernel it can request is requested."""
    from ngff_gpu.compute.methods import methods_for_dtype
    from ngff_gpu.compute.step import LevelStep

    for dtype in ALL_DTYPES:
        x = (np.arange(6 * 6) % 5).astype(dtype).reshape(6, 6)
        for method in methods_for_dtype(np.dtype(dtype)):
            for factors in ((2, 2), (1, 3), (1, 1)):
                step = LevelStep(factors, method)
                region = tuple((0, s) for s in step.out_shape(x.shape))
                backend.to_host(backend.reduce_region(x, step, (0, 0), x.shape, region))


def host_backend(kernels: Callable[..., Any] | None = None, seed: int = 0) -> Any:
    """A :class:`CupyBackend` on the host stand-in (host kernels by default)."""
    from ngff_gpu.compute.backends.cupy_backend import CupyBackend

    return CupyBackend(xp=HostCupy(seed), kernels=kernels if kernels is not None else HostKernels())
