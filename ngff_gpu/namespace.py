"""Array namespaces and devices, in one module, on array-api-compat's predicates.

Inputs may be NumPy, CuPy, PyTorch (CPU or CUDA), Dask (NumPy or CuPy chunks), zarr
arrays, or any Array API array (array-api-strict included). Compute runs on NumPy
arrays (host) or CuPy arrays (device); this module moves inputs there without copies
where DLPack allows, and hands results back in the caller's namespace, dtype and device.
No other module asks what library an array comes from: they call these predicates.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
from array_api_compat import is_cupy_array, is_dask_array, is_numpy_array, is_torch_array

__all__ = ["HostView", "dask_chunk_type", "from_compute", "is_cupy", "is_dask",
           "is_device_array", "is_numpy", "is_region_array", "is_torch", "is_zarr", "kind", "to_compute",
           "to_host"]


def is_numpy(x: Any) -> bool:
    """True for a ``numpy.ndarray`` (or NumPy scalar array, memmap included)."""
    return is_numpy_array(x)


def is_dask(x: Any) -> bool:
    """True for a ``dask.array.Array``."""
    return is_dask_array(x)


def is_cupy(x: Any) -> bool:
    """True for a ``cupy.ndarray``."""
    return is_cupy_array(x)


def is_torch(x: Any) -> bool:
    """True for a ``torch.Tensor``."""
    return is_torch_array(x)


def is_zarr(x: Any) -> bool:
    """True for a ``zarr.Array`` (read lazily, region by region)."""
    import zarr

    return isinstance(x, zarr.Array)


def is_region_array(x: Any) -> bool:
    """True for a ``zarr.Array`` or an array whose class declares ``reads_regions = True``
    (an input reader with ``shape``, ``dtype``, ``chunks`` and ``__getitem__`` that
    decodes only the region asked for): read lazily, region by region, by the engine."""
    return getattr(type(x), "reads_regions", False) is True or is_zarr(x)


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
        return is_cupy(x._meta)
    return False


def kind(x: Any) -> str:
    """A short name of the array's library: numpy, cupy, torch, dask, zarr or array_api."""
    for name, test in (("numpy", is_numpy), ("dask", is_dask), ("zarr", is_zarr),
                       ("cupy", is_cupy), ("torch", is_torch)):
        if test(x):
            return name
    if array_api_compat.is_array_api_obj(x):
        return "array_api"
    return "unknown"


def to_compute(x: Any) -> Any:
    """Return ``x`` as a NumPy array (host) or a CuPy array (CUDA), zero-copy
    through DLPack where possible.

    Dask arrays, zarr arrays and other region arrays (:func:`is_region_array`) are
    returned as they are (they are read lazily by the engine).
    """
    if is_numpy(x) or is_cupy(x) or is_dask(x) or is_region_array(x):
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


def to_host(x: Any) -> np.ndarray:
    """A NumPy copy (or view) of any supported array: dask is computed, CuPy and CUDA
    tensors are copied to the host."""
    if is_dask(x):
        x = x.compute()
    if is_cupy(x):
        return x.get()
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def from_compute(result: Any, like: Any) -> Any:
    """Return ``result`` (NumPy or CuPy) in the namespace and device of ``like``."""
    if is_numpy(like) or is_cupy(like) or kind(like) in ("dask", "zarr", "unknown"):
        return result
    if is_torch(like):
        import torch

        out = torch.from_dlpack(result)
        return out if out.device == like.device else out.to(like.device)
    xp = array_api_compat.array_namespace(like)
    return xp.asarray(result, device=array_api_compat.device(like))


class HostView:
    """A read-only window on an in-memory array, so dask slices it lazily
    instead of copying it into per-chunk pieces (dask copies plain ndarrays)."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim

    def __getitem__(self, key: Any) -> Any:
        return self.array[key]
