"""What every input format shares: the :class:`InputImage` an opener returns, unit and
name helpers, and putting axes in OME-NGFF order (the dims rules are :mod:`ngff_gpu.dims`)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ngff_gpu.dims import canonical_order
from ngff_gpu.dims import check_dims as check_dims_rules

_UNITS = {
    "ym": "yoctometer", "zm": "zeptometer", "am": "attometer", "fm": "femtometer",
    "pm": "picometer", "å": "angstrom", "a": "angstrom", "nm": "nanometer", "µm": "micrometer",
    "μm": "micrometer", "um": "micrometer", "micron": "micrometer", "microns": "micrometer",
    "mm": "millimeter", "cm": "centimeter", "dm": "decimeter", "m": "meter", "dam": "decameter",
    "hm": "hectometer", "km": "kilometer", "in": "inch", "ft": "foot", "yd": "yard",
    "mi": "mile", "pc": "parsec",
    "ys": "yoctosecond", "zs": "zeptosecond", "as": "attosecond", "fs": "femtosecond",
    "ps": "picosecond", "ns": "nanosecond", "µs": "microsecond", "μs": "microsecond",
    "us": "microsecond", "ms": "millisecond", "cs": "centisecond", "ds": "decisecond",
    "s": "second", "sec": "second", "min": "minute", "h": "hour", "d": "day",
}
_UDUNITS = set(_UNITS.values()) | {"decameter"}

@dataclass
class InputImage:
    """An image opened by :func:`open_input`.

    Attributes
    ----------
    data : zarr.Array, dask.array.Array or numpy.memmap
        Pixels, read lazily, axes in OME-NGFF order.
    dims : list of str or None
        Dim names of ``data``; None when the file does not say (use the defaults).
    scale, translation : dict or None
        Physical pixel spacing and origin per dim, when the file carries them.
    units : dict or None
        UDUNITS-2 unit per dim (``micrometer``, ``second``...).
    name : str or None
        An image name from the file (safe as a path component).
    is_label_hint : bool
        True when the input says it is a label image (OME-Zarr ``image-label``).
    omero : dict or None
        The ``omero`` block of an OME-Zarr input.
    kind : str
        What was read, for messages (``"OME-TIFF"``, ``"PNG stack of 12 files"``...).
    paths : list of str
        The files read.
    """

    data: Any
    dims: list[str] | None = None
    scale: dict[str, float] | None = None
    translation: dict[str, float] | None = None
    units: dict[str, str] | None = None
    name: str | None = None
    is_label_hint: bool = False
    omero: dict[str, Any] | None = None
    kind: str = ""
    paths: list[str] = field(default_factory=list)


def udunits(unit: str | None) -> str | None:
    """The UDUNITS-2 name of an OME/ImageJ unit (``µm`` -> ``micrometer``); None if unknown."""
    if not unit:
        return None
    u = str(unit).strip()
    if u.lower() in _UDUNITS:
        return u.lower()
    return _UNITS.get(u) or _UNITS.get(u.lower()) or _UNITS.get(u.replace("\\u00B5", "µ"))


def safe_name(text: str) -> str:
    """``text`` as a name that is safe as a path component (``[A-Za-z0-9_.-]``)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "image"
    return name



def stem(path: str) -> str:
    base = os.path.basename(os.path.normpath(path))
    for suffix in (".ome.zarr", ".zarr", ".ome.tiff", ".ome.tif", ".ome.btf"):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return os.path.splitext(base)[0]


def check_dims(dims: Sequence[str], ndim: int, what: str, shape: Sequence[int]) -> list[str]:
    """The dims given for an input file (:func:`ngff_gpu.dims.check_dims`, naming the file)."""
    return check_dims_rules(dims, ndim, what=what, shape=shape)


def canonical(data: Any, dims: list[str] | None) -> tuple[Any, list[str] | None]:
    """Transpose ``data`` lazily so ``dims`` follow ``t, c, z, y, x``."""
    if dims is None:
        return data, None
    order = canonical_order(dims)
    if order == list(range(len(dims))):
        return data, dims
    return as_dask(data).transpose(order), [dims[i] for i in order]


def as_dask(data: Any) -> Any:
    import dask.array as da

    if hasattr(data, "dask"):
        return data
    previous = getattr(data, "chunks", None)
    previous = previous if isinstance(previous, tuple) and all(
        isinstance(c, int) for c in previous) else None
    chunks = da.core.normalize_chunks("auto", data.shape, dtype=data.dtype,
                                      previous_chunks=previous)
    meta = np.empty((0,) * data.ndim, dtype=data.dtype)
    return da.from_array(data, chunks=chunks, asarray=False, fancy=False, meta=meta)


def dims_from_letters(axes: str, trusted: bool) -> list[str] | None:
    """Map tifffile axis letters to dims; None when they cannot be named safely."""
    letters = axes.upper()
    if trusted and "C" in letters and "S" in letters:
        return None
    mapping = {"T": "t", "C": "c", "S": "c", "Z": "z", "Y": "y", "X": "x"}
    if trusted and all(a in mapping for a in letters):
        return [mapping[a] for a in letters]
    if letters.endswith("YXS"):
        rest = len(letters) - 3
        if rest > 2:
            return None
        return ["t", "z"][2 - rest:] + ["y", "x", "c"] if rest else ["y", "x", "c"]
    return None
