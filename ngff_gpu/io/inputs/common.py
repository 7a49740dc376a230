"""What every input reader shares: :class:`InputImage`, unit names, dims helpers.

The format modules (``tiff``, ``raster``, ``stack``, ``npy``, ``zarr_input``,
``nifti``, ``nrrd``, ``metaimage``, ``dicom``) import from here only; the
dispatcher (:mod:`ngff_gpu.io.inputs.detect`) imports them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ngff_gpu.dims import canonical_order, check_dims

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

#: RFC-4 anatomical orientation values, by the letter an axis points to (LPS/RAS codes).
ANATOMICAL = {
    "L": "right-to-left", "R": "left-to-right", "P": "anterior-to-posterior",
    "A": "posterior-to-anterior", "S": "inferior-to-superior", "I": "superior-to-inferior",
}


@dataclass
class InputImage:
    """An image opened by :func:`ngff_gpu.io.inputs.open_input`.

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
        ``omero`` display metadata from the input (OME-Zarr, OME-TIFF channel names
        and colors); channels without a ``window`` get one computed.
    orientation : dict or None
        RFC-4 anatomical orientation value per spatial dim (``"left-to-right"``...).
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
    orientation: dict[str, str] | None = None
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
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "image"


def is_url(path: str) -> bool:
    """True for ``scheme://...`` paths (fsspec URLs)."""
    return "://" in str(path)


def stem(path: str) -> str:
    """The file or store name without its (double) suffix: ``a.ome.tif`` -> ``a``."""
    base = os.path.basename(os.path.normpath(str(path).rstrip("/")))
    for suffix in (".ome.zarr", ".zarr", ".ome.tiff", ".ome.tif", ".ome.btf", ".ome.ozx",
                   ".nii.gz", ".nrrd", ".nhdr"):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return os.path.splitext(base)[0]


def natural_key(path: str) -> list[Any]:
    """Sort key that puts ``z2`` before ``z10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path)]


def checked_dims(dims: Sequence[str], ndim: int, what: str, shape: Sequence[int]) -> list[str]:
    """The dims given for an input (:func:`ngff_gpu.dims.check_dims`, naming the file)."""
    return check_dims(dims, ndim, what=what, shape=shape)


def as_dask(data: Any) -> Any:
    """``data`` as a dask array (chunks follow the source's chunks when it has some)."""
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


def canonical(data: Any, dims: list[str] | None) -> tuple[Any, list[str] | None]:
    """Transpose ``data`` lazily so ``dims`` follow ``t, c, z, y, x``."""
    if dims is None:
        return data, None
    order = canonical_order(dims)
    if order == list(range(len(dims))):
        return data, dims
    return as_dask(data).transpose(order), [dims[i] for i in order]


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


def keep_dims(values: dict[str, Any] | None, dims: Sequence[str] | None) -> dict[str, Any] | None:
    """``values`` restricted to ``dims`` (all of them when ``dims`` is None); None if empty."""
    if not values:
        return None
    out = {d: v for d, v in values.items() if dims is None or d in dims}
    return out or None


def plain_key(key: Sequence[Any], shape: Sequence[int]) -> tuple[list[tuple[int, int]], Any]:
    """``key`` (ints and slices) as start/stop per axis, plus what to apply afterwards
    (steps and integer indices) to the contiguous block those bounds cover."""
    bounds, after = [], []
    for k, n in zip(key, shape):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step == 1:
                bounds.append((start, max(start, stop)))
                after.append(slice(None))
            else:
                idx = range(start, stop, step)
                lo, hi = (min(idx), max(idx) + 1) if len(idx) else (0, 0)
                bounds.append((lo, hi))
                after.append(slice(start - lo, (stop - lo) if stop >= lo else None, step))
        else:
            i = int(k) + (n if int(k) < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {k} is out of bounds for axis of size {n}")
            bounds.append((i, i + 1))
            after.append(0)
    return bounds, tuple(after)


class RegionArray:
    """A lazily read array: ``read(key)`` returns the region ``key`` (a tuple of slices).

    Any failure of a read other than an :class:`InputFormatError` becomes one
    ``InputFormatError`` naming ``path`` (a damaged file is one clear error).
    The engine reads it region by region, on its ``chunks`` grid, without dask
    (``reads_regions``, see :func:`ngff_gpu.namespace.is_region_array`), and
    through :meth:`read_into` where it decodes a box straight into a brick.

    Parameters
    ----------
    shape, dtype
        Of the array.
    read : callable
        ``read(key)`` -> the region ``key`` as an array.
    path : str
        The file, named in errors.
    chunks : sequence of int, optional
        The decode grid.
    read_into : callable, optional
        ``read_into(region, out)``: decode ``region`` (start/stop per axis) into
        ``out`` with no intermediate array (the TIFF tile reader's); without it,
        :meth:`read_into` reads and copies.
    """

    reads_regions = True

    def __init__(self, shape: Sequence[int], dtype: Any, read: Any, path: str,
                 chunks: Sequence[int] | None = None, read_into: Any = None) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.dtype, self.ndim = np.dtype(dtype), len(self.shape)
        self.chunks = tuple(int(c) for c in chunks) if chunks is not None else None
        self.read, self.path = read, path
        self._read_into = read_into

    def _named(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)``, with any decoder failure turned into an ``InputFormatError``."""
        from ngff_gpu.errors import InputFormatError

        try:
            return fn(*args)
        except (InputFormatError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a damaged input
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise InputFormatError(f"cannot decode {self.path}: {detail}") from exc

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        if len(key) != self.ndim:
            raise IndexError(f"too many indices for an array of {self.ndim} dimensions")
        bounds, after = plain_key(key, self.shape)
        out = np.asarray(self._named(self.read, tuple(slice(a, b) for a, b in bounds)))
        out = out if out.dtype == self.dtype else out.astype(self.dtype)
        return out[after] if any(a != slice(None) for a in after) else out

    def read_into(self, region: Sequence[tuple[int, int]], out: np.ndarray) -> None:
        """Decode ``region`` (start/stop per axis) into ``out``, of its shape."""
        if self._read_into is not None and out.dtype == self.dtype:
            self._named(self._read_into, region, out)
        else:
            out[...] = self[tuple(slice(a, b) for a, b in region)]


def spatial_orientation(directions: Sequence[Sequence[float]], space: str) -> list[str]:
    """RFC-4 orientation value of each axis from its direction vector in world ``space``.

    ``space`` names the direction each world axis increases towards (``"LPS"`` for
    DICOM/ITK, ``"RAS"`` for NIfTI); the dominant component of a direction picks it.
    """
    opposite = {"L": "R", "R": "L", "P": "A", "A": "P", "S": "I", "I": "S"}
    out = []
    for vec in directions:
        v = np.asarray(vec, dtype=float)
        w = int(np.argmax(np.abs(v)))
        letter = space[w] if v[w] >= 0 else opposite[space[w]]
        out.append(ANATOMICAL[letter])
    return out


def permuted(array: Any, order: Sequence[int], path: str) -> RegionArray:
    """``array`` (anything sliced by a tuple of slices, with ``shape``, ``dtype`` and
    ``chunks``) with its axes in ``order`` (``numpy.transpose``'s meaning), still read
    region by region: a region of the result is the matching region of ``array``,
    transposed (:func:`reorder` leaves an array already in order unwrapped)."""
    order = [int(i) for i in order]
    inverse = [order.index(i) for i in range(len(order))]
    shape = [int(array.shape[i]) for i in order]
    chunks = getattr(array, "chunks", None)
    chunks = [int(chunks[i]) for i in order] if chunks is not None else None

    def read(key: tuple[slice, ...]) -> np.ndarray:
        src = tuple(key[inverse[i]] for i in range(len(order)))
        return np.asarray(array[src]).transpose(order)

    return RegionArray(shape, array.dtype, read, path, chunks=chunks)


def reorder(array: Any, dims: Sequence[str], path: str) -> tuple[Any, list[str]]:
    """``array`` with ``dims`` put in OME-NGFF order (``t, c, z, y, x``), read by region."""
    order = canonical_order(dims)
    if order == list(range(len(dims))):
        return array, list(dims)
    return permuted(array, order, path), [dims[i] for i in order]


class Stacked:
    """Equal arrays (parts) stacked along leading axes, read region by region.

    ``parts[idx]`` is the part at leading index ``idx`` (a tuple, one per leading
    axis); each is sliced by a tuple of slices over the inner axes. A region reads
    only the parts it covers, each only over the inner region. Wrap it in
    :class:`RegionArray` (``Stacked.region_array``) for the engine.
    """

    def __init__(self, parts: dict[tuple[int, ...], Any], lead: Sequence[int],
                 inner: Sequence[int], dtype: Any) -> None:
        self.parts, self.lead = parts, tuple(int(n) for n in lead)
        self.inner, self.dtype = tuple(int(n) for n in inner), np.dtype(dtype)
        self.shape = self.lead + self.inner

    def read(self, key: tuple[slice, ...]) -> np.ndarray:
        """The region ``key`` (one slice per axis, steps of 1) as an array."""
        nl = len(self.lead)
        bounds = [k.indices(n)[:2] for k, n in zip(key, self.shape)]
        out = np.empty(tuple(max(0, b - a) for a, b in bounds), dtype=self.dtype)
        inner = tuple(slice(a, b) for a, b in bounds[nl:])
        if out.size:
            for idx in np.ndindex(*out.shape[:nl]):
                src = tuple(i + a for i, (a, _) in zip(idx, bounds[:nl]))
                out[idx] = self.parts[src][inner]
        return out

    def region_array(self, path: str, inner_chunks: Sequence[int] | None) -> RegionArray:
        """This stack as a :class:`RegionArray` whose grid is one part deep along the
        leading axes and ``inner_chunks`` (default: whole parts) inside them."""
        inner = tuple(inner_chunks) if inner_chunks is not None else self.inner
        return RegionArray(self.shape, self.dtype, self.read, path,
                           chunks=(1,) * len(self.lead) + tuple(int(c) for c in inner))


def squeeze(array: Any, dims: Sequence[str], drop: Sequence[str], path: str
            ) -> tuple[Any, list[str]]:
    """``array`` without those of the axes ``drop`` (names in ``dims``) that have
    length 1, still read by region; returns the array and its remaining dims."""
    gone = [i for i, d in enumerate(dims) if d in drop and int(array.shape[i]) == 1]
    if not gone:
        return array, list(dims)
    keep = [i for i in range(len(dims)) if i not in gone]
    chunks = getattr(array, "chunks", None)

    def read(key: tuple[slice, ...]) -> np.ndarray:
        full = [slice(0, 1)] * len(dims)
        for i, k in zip(keep, key):
            full[i] = k
        block = np.asarray(array[tuple(full)])
        return block.reshape([block.shape[i] for i in keep])

    return (RegionArray([array.shape[i] for i in keep], array.dtype, read, path,
                        chunks=[chunks[i] for i in keep] if chunks is not None else None),
            [dims[i] for i in keep])


def arrange_tczyx(data: Any, dims: Sequence[str] | None, path: str,
                  scale: dict[str, Any], translation: dict[str, Any], units: dict[str, Any]
                  ) -> tuple[Any, list[str], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A ``t, c, z, y, x`` volume as the caller asked for it: with ``dims``, checked,
    the metadata kept to those dims and the axes reordered; without, the singleton ``t``
    and ``c`` the file always has left out. Returns data, dims, scale, translation, units.
    """
    guessed = ["t", "c", "z", "y", "x"]
    if dims is None:
        data, guessed = squeeze(data, guessed, ("t", "c"), path)
        return data, guessed, scale, translation, units
    guessed = checked_dims(dims, 5, path, data.shape)
    scale, translation = keep_dims(scale, guessed) or {}, keep_dims(translation, guessed) or {}
    units = keep_dims(units, guessed) or {}
    data, guessed = reorder(data, guessed, path)
    return data, guessed, scale, translation, units
