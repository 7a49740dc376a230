"""Arrays in, arrays out: ``downsample`` and ``pyramid`` for deep-learning code.

No Zarr is involved: the result has the namespace, dtype and device of the
input (a CUDA torch tensor in gives CUDA torch tensors out, handed over
through DLPack without copies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ngff_gpu.compute.backends import backend_for
from ngff_gpu.compute.methods import Methods, as_method
from ngff_gpu.dims import default_dims
from ngff_gpu.errors import ScaleFactorError
from ngff_gpu.levels.plan import ScaleFactors, plan_levels
from ngff_gpu.namespace import from_compute, is_dask, is_zarr, to_compute


def _compute_input(x: Any) -> Any:
    arr = to_compute(x)
    if is_dask(arr):
        arr = arr.compute()
    elif is_zarr(arr):
        arr = arr[...]
    return arr


def _levels(x: Any, scale_factors: ScaleFactors, method: Methods, dims: Sequence[str] | None):
    dims = list(dims) if dims is not None else default_dims(x.ndim)
    return plan_levels(dims, x.shape, {}, {}, scale_factors, None, method)


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
        Dim names (default ``yx``, ``zyx``, ``czyx``, ``tczyx`` by ``ndim``);
        ``t`` and ``c`` are never downsampled.

    Returns
    -------
    array
        Same namespace, dtype and device as ``x``.
    """
    return pyramid(x, [factors], method, dims)[1]


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
        Level 0 (``x``) and each level, all in ``x``'s namespace and device.
    """
    method = as_method(method)
    arr = _compute_input(x)
    if isinstance(scale_factors, Sequence) and not isinstance(scale_factors, str):
        dims_ = list(dims) if dims is not None else default_dims(arr.ndim)
        spatial = [d for d in dims_ if d in "zyx"]
        fixed = []
        for sf in scale_factors:
            if isinstance(sf, Sequence) and not isinstance(sf, str):
                if len(sf) != len(spatial):
                    raise ScaleFactorError(f"factors {list(sf)} do not match spatial dims {spatial}")
                sf = dict(zip(spatial, sf))
            fixed.append(sf)
        scale_factors = fixed
    levels = _levels(arr, scale_factors, method, dims)
    backend = backend_for(arr)
    out = [x]
    cur = backend.asarray(arr)
    for lv in levels[1:]:
        region = tuple((0, n) for n in lv.shape)
        cur = backend.reduce_region(cur, lv.step, (0,) * cur.ndim, cur.shape, region)
        out.append(from_compute(cur, like=x))
    return out
