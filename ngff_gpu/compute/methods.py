"""Downsampling methods, ngff-zarr's aliases, and the dtype policy of each."""

from __future__ import annotations

from enum import Enum

import numpy as np

from ngff_gpu.errors import ArgumentError, UnsupportedDtypeError


class Methods(Enum):
    """Downsampling methods (docs/design.md section 2.2).

    Our six definitions come first; ngff-zarr 0.50's nine names follow, each a
    member of its own (with ngff-zarr's value, so ``metadata.type`` records the
    name that was asked for and ``Methods("itkwasm_gaussian")`` reads it back)
    whose :attr:`definition` is one of ours: ``Methods.ITKWASM_GAUSSIAN.definition
    is Methods.GAUSSIAN``. What is computed is always the definition's exact
    numerics, never ngff-zarr's implementation.
    """

    GAUSSIAN = "gaussian"
    MEAN = "mean"
    NEAREST = "nearest"
    MODE = "mode"
    MIN = "min"
    MAX = "max"

    # ngff-zarr's names (its values), computed by the definition in DEFINITIONS.
    ITKWASM_GAUSSIAN = "itkwasm_gaussian"
    ITKWASM_BIN_SHRINK = "itkwasm_bin_shrink"
    ITKWASM_LABEL_IMAGE = "itkwasm_label_image"
    ITK_GAUSSIAN = "itk_gaussian"
    ITK_BIN_SHRINK = "itk_bin_shrink"
    DASK_IMAGE_GAUSSIAN = "dask_image_gaussian"
    DASK_IMAGE_MODE = "dask_image_mode"
    DASK_IMAGE_NEAREST = "dask_image_nearest"
    DASK_BIN_SHRINK = "dask_bin_shrink"

    @property
    def definition(self) -> Methods:
        """The method whose numerics this name computes (itself for our six)."""
        return DEFINITIONS.get(self.name, self)

    @property
    def ngff_zarr_name(self) -> bool:
        """Whether this is one of ngff-zarr's names (an alias of a definition)."""
        return self.name in DEFINITIONS

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


#: ngff-zarr's method names and the definition each one computes.
DEFINITIONS: dict[str, Methods] = {
    "ITKWASM_GAUSSIAN": Methods.GAUSSIAN,
    "ITK_GAUSSIAN": Methods.GAUSSIAN,
    "DASK_IMAGE_GAUSSIAN": Methods.GAUSSIAN,
    "ITKWASM_BIN_SHRINK": Methods.MEAN,
    "ITK_BIN_SHRINK": Methods.MEAN,
    "DASK_BIN_SHRINK": Methods.MEAN,
    "DASK_IMAGE_NEAREST": Methods.NEAREST,
    "DASK_IMAGE_MODE": Methods.MODE,
    "ITKWASM_LABEL_IMAGE": Methods.MODE,
}

#: The method of ``method=None``: ngff-zarr's default name (GAUSSIAN's numerics).
DEFAULT_METHOD = Methods.ITKWASM_GAUSSIAN

#: Names that the CLI and ``Methods(...)`` accept, ours first.
METHOD_NAMES: tuple[str, ...] = tuple(m.lower() for m in Methods.__members__)


def as_method(method: Methods | str | None) -> Methods:
    """Normalize ``method`` (member, name, value or None for :data:`DEFAULT_METHOD`).

    The name is kept as given (``"itkwasm_gaussian"`` stays ITKWASM_GAUSSIAN, so it
    is what the metadata records); :attr:`Methods.definition` says what it computes.

    Parameters
    ----------
    method : Methods, str or None
        A member (ours or ngff-zarr's ``Methods``), one of our names or ngff-zarr's
        names or values (any case), or None.

    Returns
    -------
    Methods

    Raises
    ------
    ArgumentError
        If the name is unknown; the message lists the accepted names.
    """
    if method is None:
        return DEFAULT_METHOD
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
    method = as_method(method)
    if method.definition not in accepted:
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
