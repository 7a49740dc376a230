"""Arrays in, arrays out: ``downsample`` and ``pyramid`` for deep-learning code.

No Zarr is involved: the result has the namespace, dtype and device of the
input (a CUDA torch tensor in gives CUDA torch tensors out, handed over
through DLPack without copies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ngff_gpu.compute.backends import backend_for
from ngff_gpu.compute.methods import Methods, as_method, check_dtype
from ngff_gpu.dims import dims_or_default
from ngff_gpu.levels.lazy import downsample_lazy
from ngff_gpu.levels.plan import LevelPlan, ScaleFactors, plan_levels
from ngff_gpu.namespace import from_compute, is_dask, is_zarr, to_compute


def _compute_input(x: Any) -> Any:
    arr = to_compute(x)
    if is_zarr(arr):
        arr = arr[...]
    return arr


def _levels(x: Any, scale_factors: ScaleFactors, method: Methods, dims: Sequence[str] | None,
            param: str) -> list[LevelPlan]:
    """Plan the levels of ``x``, checking every argument before any data is touched."""
    dims = dims_or_default(dims, x.ndim)
    check_dtype(x.dtype, method)
    return plan_levels(dims, x.shape, {}, {}, scale_factors, None, method, param)


def downsample(x: Any, factors: int | Sequence[int] | Mapping[str, int],
               method: Methods | str | None = None,
               dims: Sequence[str] | None = None) -> Any:
    """Downsample ``x`` once by ``factors``.

    Parameters
    ----------
    x : array
        NumPy, CuPy, torch (CPU or CUDA), Dask, zarr or any Array API array.
    factors : int, sequence of int or dict
        An int for every spatial dim, one int per spatial dim, or ``{dim: f}``.
    method : Methods or str, optional
        Default GAUSSIAN.
    dims : sequence of str, optional
        Dim names (default ``yx``, ``zyx``, ``czyx``, ``tczyx`` by ``ndim``), checked
        as in :func:`~ngff_gpu.to_ngff_image`; ``t`` and ``c`` are never downsampled.

    Returns
    -------
    array
        Same namespace, dtype and device as ``x``; a lazy Dask array (same chunk
        type) for Dask input.

    Raises
    ------
    DimsError, ScaleFactorError, ArgumentTypeError, ArgumentError, UnsupportedDtypeError
        On a bad argument, before any data are read.
    """
    return _pyramid(x, [factors], method, dims, "factors")[1]


def pyramid(x: Any, scale_factors: ScaleFactors,
            method: Methods | str | None = None,
            dims: Sequence[str] | None = None) -> list[Any]:
    """Every level of a pyramid, ``x`` itself first.

    Parameters
    ----------
    x : array
        Any supported array (see :func:`downsample`).
    scale_factors : int or list
        Absolute factors per level, as in :func:`~ngff_gpu.to_multiscales`
        (an int builds the automatic ladder).
    method : Methods or str, optional
        Default GAUSSIAN.
    dims : sequence of str, optional
        Dim names.

    Returns
    -------
    list of arrays
        Level 0 (``x``) and each level, all in ``x``'s namespace and device. For a
        Dask array the levels are lazy Dask arrays with the input's chunk type (NumPy
        or CuPy), each chunk computed from the previous level's chunks under its
        window: nothing is computed until the caller asks.
    """
    return _pyramid(x, scale_factors, method, dims, "scale_factors")


def _pyramid(x: Any, scale_factors: ScaleFactors, method: Methods | str | None,
             dims: Sequence[str] | None, param: str) -> list[Any]:
    method = as_method(method)
    arr = _compute_input(x)
    levels = _levels(arr, scale_factors, method, dims, param)
    out = [x]
    if is_dask(arr):
        done = [arr]
        for lv in levels[1:]:
            src = done[lv.source_index]
            done.append(downsample_lazy(src, lv.step, src.chunksize))
        return out + done[1:]
    backend = backend_for(arr)
    done = [backend.asarray(arr)]
    for lv in levels[1:]:
        src = done[lv.source_index]
        region = tuple((0, n) for n in lv.shape)
        done.append(backend.reduce_region(src, lv.step, (0,) * src.ndim, src.shape, region))
        out.append(from_compute(done[-1], like=x))
    return out
