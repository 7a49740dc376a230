"""Array namespace and device detection (array-api-compat), in one module.

Inputs may be NumPy, CuPy, PyTorch (CPU or CUDA), Dask (NumPy or CuPy chunks),
zarr arrays, or any Array API array (array-api-strict included). Compute runs
on NumPy arrays (host) or CuPy arrays (device); this module moves inputs there
without copies where DLPack allows, and hands results back in the caller's
namespace, dtype and device.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np


def _module(x: Any) -> str:
    return type(x).__module__.split(".")[0]


def is_dask(x: Any) -> bool:
    """True for a ``dask.array.Array``."""
    return _module(x) == "dask" and hasattr(x, "chunks") and hasattr(x, "dask")


def is_zarr(x: Any) -> bool:
    """True for a ``zarr.Array``."""
    return _module(x) == "zarr" and hasattr(x, "store_path")


def is_cupy(x: Any) -> bool:
    """True for a ``cupy.ndarray``."""
    return _module(x) == "cupy" and hasattr(x, "device")


def is_torch(x: Any) -> bool:
    """True for a ``torch.Tensor``."""
    return _module(x) == "torch" and hasattr(x, "is_cuda")


def dask_chunk_type(x: Any) -> type:
    """The chunk type of a dask array (``numpy.ndarray``, ``cupy.ndarray``...)."""
    return type(x._meta)


def is_device_array(x: Any) -> bool:
    """True when ``x`` lives in CUDA memory (CuPy, CUDA torch, dask of CuPy)."""
    if is_cupy(x):
        return True
    if is_torch(x):
        return bool(x.is_cuda)
    if is_dask(x):
        return _module(x._meta) == "cupy"
    return False


def kind(x: Any) -> str:
    """A short name of the array's library: numpy, cupy, torch, dask, zarr or array_api."""
    if isinstance(x, np.ndarray):
        return "numpy"
    for name, test in (("dask", is_dask), ("zarr", is_zarr), ("cupy", is_cupy), ("torch", is_torch)):
        if test(x):
            return name
    if array_api_compat.is_array_api_obj(x):
        return "array_api"
    return "unknown"


def to_compute(x: Any) -> Any:
    """Return ``x`` as a NumPy array (host) or a CuPy array (CUDA), zero-copy
    through DLPack where possible.

    Dask arrays and zarr arrays are returned as they are (they are read lazily
    by the engine).
    """
    if isinstance(x, np.ndarray) or is_cupy(x) or is_dask(x) or is_zarr(x):
        return x
    if is_torch(x):
        t = x.detach()
        if t.is_cuda:
            import cupy

            return cupy.from_dlpack(t)
        return np.from_dlpack(t.contiguous())
    if array_api_compat.is_array_api_obj(x):
        try:
            return np.from_dlpack(x)
        except Exception:  # noqa: BLE001 - e.g. array-api-strict on a non-CPU "device"
            xp = array_api_compat.array_namespace(x)
            host = getattr(xp, "Device", None)
            if host is not None:
                return np.from_dlpack(x.to_device(host("CPU_DEVICE")))
            raise
    return np.asarray(x)


def from_compute(result: Any, like: Any) -> Any:
    """Return ``result`` (NumPy or CuPy) in the namespace and device of ``like``."""
    if isinstance(like, np.ndarray) or is_cupy(like) or kind(like) in ("dask", "zarr", "unknown"):
        return result
    if is_torch(like):
        import torch

        out = torch.from_dlpack(result)
        return out if out.device == like.device else out.to(like.device)
    xp = array_api_compat.array_namespace(like)
    return xp.asarray(result, device=array_api_compat.device(like))
