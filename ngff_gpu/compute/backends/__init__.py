"""Backend selection: the one place that dispatches on where arrays live.

``get_backend("auto" | "cpu" | "numpy" | "cuda")`` returns a backend object;
``backend_for(array)`` returns the backend an array's memory belongs to.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from ngff_gpu.compute.backends.base import Backend
from ngff_gpu.compute.backends.numpy_backend import NumpyBackend
from ngff_gpu.errors import BackendUnavailableError

__all__ = ["Backend", "NumpyBackend", "get_backend", "backend_for", "cuda_available"]


@lru_cache(maxsize=1)
def cuda_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any failure means "no usable GPU"
        return False


@cache
def _cuda_backend():
    from ngff_gpu.compute.backends.cupy_backend import CupyBackend

    return CupyBackend()


def get_backend(device: str = "auto") -> Backend:
    """Return the backend for ``device``.

    Parameters
    ----------
    device : {"auto", "cpu", "numpy", "cuda", "gpu"}
        ``auto`` picks CUDA when a device is usable, else NumPy.

    Raises
    ------
    BackendUnavailableError
        If ``cuda`` is requested and no CUDA device is usable.
    ValueError
        If ``device`` is not one of the names above.
    """
    device = device.lower()
    if device in ("cpu", "numpy", "host"):
        return NumpyBackend()
    if device in ("cuda", "gpu", "cupy"):
        if not cuda_available():
            raise BackendUnavailableError(
                "device 'cuda' requested but CuPy with a CUDA device is not available "
                "(install ngff-gpu[cuda12] or ngff-gpu[cuda13] on a machine with an NVIDIA GPU)"
            )
        return _cuda_backend()
    if device == "auto":
        return _cuda_backend() if cuda_available() else NumpyBackend()
    raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda")


def backend_for(x: Any) -> Backend:
    """The backend that owns ``x``'s memory: CUDA for CuPy arrays (and CUDA
    tensors), NumPy for everything on the host."""
    from ngff_gpu.namespace import is_device_array

    if is_device_array(x):
        return get_backend("cuda")
    return NumpyBackend()
