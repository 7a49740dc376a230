"""Backend selection: the one place that dispatches on where arrays live.

``get_backend("auto" | "cpu" | "cuda" | "cuda:N")`` returns a backend object, one per
CUDA device (cached by device id, so threads or workers on different GPUs each get
their own); ``backend_for(array)`` returns the backend an array's memory belongs to.

Where CUDA backends come from is a :class:`CudaProvider`, replaceable with
:func:`use_cuda_provider` (tests inject a fake or failing backend this way, without a
GPU). Under ``device="auto"``, a CUDA backend that cannot be made falls back to the
NumPy backend with one :class:`~ngff_gpu.errors.BackendFallbackWarning`;
:func:`fallback_warning` is that warning, also used by the engine's fallback.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ngff_gpu.compute.backends.base import Backend
from ngff_gpu.compute.backends.numpy_backend import NumpyBackend
from ngff_gpu.errors import (
    ArgumentError,
    ArgumentTypeError,
    BackendFallbackWarning,
    BackendUnavailableError,
    KernelCompileError,
)
from ngff_gpu.namespace import is_device_array

__all__ = ["DEVICE_NAMES", "Backend", "CudaProvider", "NumpyBackend", "backend_for",
           "check_device", "cuda_available", "device_free_memory", "fallback_warning",
           "get_backend", "use_cuda_provider"]

#: Accepted ``device`` names (``cuda:N`` picks device N).
DEVICE_NAMES = ("auto", "cpu", "numpy", "host", "cuda", "gpu", "cupy")
_CPU = ("cpu", "numpy", "host")
_CUDA = re.compile(r"^(cuda|gpu|cupy)(?::(\d+))?$")


@lru_cache(maxsize=1)
def cuda_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any failure means "no usable GPU"
        return False


def _cupy_backend(device_id: int) -> Backend:
    from ngff_gpu.compute.backends.cupy_backend import CupyBackend

    return CupyBackend(device_id)


def _cupy_current_device() -> int:
    import cupy

    return int(cupy.cuda.runtime.getDevice())


def _cupy_free_memory(backend: Any) -> int:
    import cupy

    with cupy.cuda.Device(getattr(backend, "device_id", _cupy_current_device())):
        free, _total = cupy.cuda.runtime.memGetInfo()
    return int(free)


@dataclass(frozen=True)
class CudaProvider:
    """Where CUDA backends come from.

    Attributes
    ----------
    available : callable
        ``() -> bool``: whether a CUDA device is usable.
    create : callable
        ``(device_id) -> Backend``: a new backend on that device.
    current_device : callable
        ``() -> int``: the device ``"cuda"`` (without ``:N``) means.
    free_memory : callable
        ``(backend) -> int``: free bytes on the backend's device.
    """

    available: Callable[[], bool] = cuda_available
    create: Callable[[int], Backend] = _cupy_backend
    current_device: Callable[[], int] = _cupy_current_device
    free_memory: Callable[[Any], int] = _cupy_free_memory


_default_provider = CudaProvider()
_cache: dict[tuple[int, int], Backend] = {}
_cache_lock = threading.Lock()


def _provider() -> CudaProvider:
    return _default_provider


@contextmanager
def use_cuda_provider(provider: CudaProvider) -> Iterator[CudaProvider]:
    """Make CUDA backends with ``provider`` inside the ``with`` block (process-wide: the
    engine's threads see it too; the backends it made are dropped at the end)."""
    global _default_provider
    previous = _default_provider
    _default_provider = provider
    try:
        yield provider
    finally:
        _default_provider = previous
        with _cache_lock:
            for key in [k for k in _cache if k[0] == id(provider)]:
                del _cache[key]


def check_device(device: Any) -> tuple[str, int | None]:
    """``("cpu" | "cuda" | "auto", device id or None)`` for a ``device`` argument.

    Raises
    ------
    ArgumentTypeError
        When ``device`` is not a string.
    ArgumentError
        For an unknown name.
    """
    if not isinstance(device, str):
        raise ArgumentTypeError(f"device must be a string ('auto', 'cpu', 'cuda' or "
                                f"'cuda:N'), got {device!r}")
    name = device.strip().lower()
    if name in _CPU:
        return "cpu", None
    if name == "auto":
        return "auto", None
    m = _CUDA.match(name)
    if m:
        return "cuda", int(m.group(2)) if m.group(2) is not None else None
    raise ArgumentError(f"device: unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def _cuda_backend(device_id: int | None) -> Backend:
    provider = _provider()
    if not provider.available():
        raise BackendUnavailableError(
            "device 'cuda' requested but CuPy with a CUDA device is not available "
            "(install ngff-gpu[cuda12] or ngff-gpu[cuda13] on a machine with an NVIDIA GPU)"
        )
    dev = provider.current_device() if device_id is None else device_id
    key = (id(provider), dev)
    with _cache_lock:
        backend = _cache.get(key)
        if backend is None:
            try:
                backend = provider.create(dev)
            except (KernelCompileError, BackendUnavailableError):
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: the device is unusable
                raise BackendUnavailableError(
                    f"cannot use CUDA device {dev}: {type(exc).__name__}: {exc}") from exc
            _cache[key] = backend
    return backend


def fallback_warning(reason: BaseException | str) -> None:
    """Warn (once per fallback) that ``device="auto"`` continues on the NumPy backend."""
    text = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else reason
    warnings.warn(f"device='auto': the CUDA backend failed ({text}); continuing on the NumPy "
                  "backend (same pixels, slower)", BackendFallbackWarning, stacklevel=3)


def get_backend(device: str = "auto") -> Backend:
    """Return the backend for ``device``.

    Parameters
    ----------
    device : {"auto", "cpu", "numpy", "cuda", "cuda:N", "gpu"}
        ``auto`` picks CUDA when a device is usable, else NumPy; if the CUDA
        backend cannot be made, ``auto`` warns once and returns NumPy.

    Raises
    ------
    BackendUnavailableError
        If ``cuda`` is requested and no CUDA device is usable.
    KernelCompileError
        If ``cuda`` is requested and a kernel does not compile.
    ArgumentError, ArgumentTypeError
        If ``device`` is not one of the names above.
    """
    kind, device_id = check_device(device)
    if kind == "cpu":
        return NumpyBackend()
    if kind == "cuda":
        return _cuda_backend(device_id)
    if not _provider().available():
        return NumpyBackend()
    try:
        return _cuda_backend(None)
    except (BackendUnavailableError, KernelCompileError, MemoryError) as exc:
        fallback_warning(exc)
        return NumpyBackend()


def device_free_memory(backend: Backend) -> int:
    """Free bytes on a device backend's GPU (through the current provider)."""
    return _provider().free_memory(backend)


def backend_for(x: Any) -> Backend:
    """The backend that owns ``x``'s memory: CUDA for CuPy arrays (and CUDA
    tensors), NumPy for everything on the host."""
    if is_device_array(x):
        return get_backend("cuda")
    return NumpyBackend()
