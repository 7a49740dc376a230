"""Downsampling methods, ngff-zarr's aliases, and the dtype policy of each."""

from __future__ import annotations

from enum import Enum

import numpy as np

from ngff_gpu.errors import ArgumentError, UnsupportedDtypeError


class Methods(Enum):
    """Downsampling methods (docs/design.md section 2.2).

    Our names come first; ngff-zarr's names are Enum aliases of the same
    members, so ``Methods.ITKWASM_GAUSSIAN is Methods.GAUSSIAN``.
    """

    GAUSSIAN = "gaussian"
    MEAN = "mean"
    NEAREST = "nearest"
    MODE = "mode"
    MIN = "min"
    MAX = "max"

    # ngff-zarr's names, accepted as aliases.
    ITKWASM_GAUSSIAN = "gaussian"
    ITK_GAUSSIAN = "gaussian"
    DASK_IMAGE_GAUSSIAN = "gaussian"
    ITKWASM_BIN_SHRINK = "mean"
    ITK_BIN_SHRINK = "mean"
    DASK_BIN_SHRINK = "mean"
    DASK_IMAGE_NEAREST = "nearest"
    DASK_IMAGE_MODE = "mode"
    ITKWASM_LABEL_IMAGE = "mode"

    @classmethod
    def _missing_(cls, value: object) -> Methods | None:
        if isinstance(value, str):
            key = value.strip().upper().replace("-", "_")
            if key in cls.__members__:
                return cls.__members__[key]
            for member in cls:
                if member.value == value.strip().lower():
                    return member
        return None


#: Names that the CLI and ``Methods(...)`` accept, ours first.
METHOD_NAMES: tuple[str, ...] = tuple(m.lower() for m in Methods.__members__)


def as_method(method: Methods | str | None) -> Methods:
    """Normalize ``method`` (member, name, alias or None for GAUSSIAN).

    Parameters
    ----------
    method : Methods, str or None
        A member, one of our names or ngff-zarr's names (any case), or None.

    Returns
    -------
    Methods

    Raises
    ------
    ArgumentError
        If the name is unknown; the message lists the accepted names.
    """
    if method is None:
        return Methods.GAUSSIAN
    if isinstance(method, Methods):
        return method
    if hasattr(method, "name") and not isinstance(method, str):  # ngff_zarr.Methods
        method = method.name
    try:
        return Methods(method)
    except ValueError:
        raise ArgumentError(
            f"method: unknown method {method!r}; accepted: {', '.join(METHOD_NAMES)}"
        ) from None


def methods_for_dtype(dtype: np.dtype) -> list[Methods]:
    """The methods that accept ``dtype`` (docs/design.md section 2.4).

    Integers take every method, floats all but MODE; bool takes the methods that
    select or order values (MODE, NEAREST, MIN, MAX: ``False < True``), whose result is
    again a bool; complex, object and string dtypes take none.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return [Methods.NEAREST, Methods.MODE, Methods.MIN, Methods.MAX]
    if dtype.kind in "iu":
        return [Methods.GAUSSIAN, Methods.MEAN, Methods.NEAREST, Methods.MODE,
                Methods.MIN, Methods.MAX]
    if dtype.kind == "f":
        return [Methods.GAUSSIAN, Methods.MEAN, Methods.NEAREST, Methods.MIN, Methods.MAX]
    return []


def check_dtype(dtype: np.dtype, method: Methods) -> np.dtype:
    """Raise a clear :class:`UnsupportedDtypeError` unless ``method`` accepts ``dtype``.

    Returns
    -------
    numpy.dtype
        The dtype, normalized.
    """
    dtype = np.dtype(dtype)
    accepted = methods_for_dtype(dtype)
    if method not in accepted:
        if accepted:
            names = ", ".join(m.name for m in accepted)
            msg = (f"method {method.name} does not accept dtype {dtype}; "
                   f"methods that accept {dtype}: {names}")
        else:
            msg = (f"dtype {dtype} cannot be downsampled: complex, object and string arrays "
                   "are not supported (GAUSSIAN and MEAN accept integer and float dtypes, "
                   "NEAREST, MIN and MAX integer, float and bool dtypes, MODE integer and "
                   "bool dtypes)")
        raise UnsupportedDtypeError(msg)
    return dtype


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The float dtype arithmetic runs in for ``dtype`` (docs/design.md section 2.4).

    float16/float32 and integers up to 16 bits compute in float32; float64 and
    32/64-bit integers compute in float64.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.dtype(np.float64) if dtype.itemsize > 4 else np.dtype(np.float32)
    return np.dtype(np.float64) if dtype.itemsize > 2 else np.dtype(np.float32)
