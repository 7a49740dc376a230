"""NgffImage: one scale of an image, with its dims and physical placement.

``to_ngff_image`` wraps any array lazily in a ``dask.array`` whose chunk type
is the input's (CuPy chunks for device input; torch tensors are handed over
zero-copy through DLPack), and fills the default dims, scale and translation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from ngff_gpu.compute.methods import Methods, check_dtype
from ngff_gpu.dims import check_dims, default_dims, spatial_dims
from ngff_gpu.errors import ArgumentError, ArgumentTypeError, DimsError, UnsupportedDtypeError
from ngff_gpu.model.pretty import PrettyRepr
from ngff_gpu.namespace import HostView, is_cupy, is_dask, is_region_array, to_compute


@dataclass(repr=False)
class NgffImage(PrettyRepr):
    """One scale of an OME-NGFF image (ngff-zarr 0.50's fields, in its order).

    Parameters
    ----------
    data : dask.array.Array
        Lazy pixel data (chunk type NumPy or CuPy). Any other array is accepted and
        wrapped where it is used (:func:`~ngff_gpu.to_multiscales`).
    dims : sequence of str
        Dim names in array order (kept as given: a list stays a list, a tuple a
        tuple): a subset of ``t, c, z, y, x``, or any unique names (RFC-3, OME-Zarr
        0.9.dev1) whose types ``axes_types`` declares.
    scale, translation : dict
        Pixel spacing and position of the first pixel's centre, per spatial dim (and
        per other dim where it is not 1 and 0).
    name : str
        Image name.
    axes_units : dict, optional
        UDUNITS-2 unit per dim.
    axes_orientations : dict, optional
        RFC-4 anatomical orientation per spatial dim (``LPS``, ``RAS``...).
    axes_types : dict, optional
        Axis type per dim where it is not the dim's default (``t`` time, ``c``
        channel, ``z``/``y``/``x`` space): ``displacement``, or the type of an RFC-3
        axis (``space`` axes are the ones downsampled, :func:`ngff_gpu.dims.spatial_dims`).
    channel_names, channel_colors : list of str, optional
        Per channel: a label and a colour (six hex digits), for ``omero``.
    computed_callbacks : list
        Callables run after the data are computed (kept for ngff-zarr parity).

    The four optional fields after ``axes_units`` are left out of the repr, which the
    seed's page pins (ngff-zarr 0.50 prints them).
    """

    data: Any
    dims: Sequence[str]
    scale: dict[str, float]
    translation: dict[str, float]
    name: str = "image"
    axes_units: Mapping[str, str] | None = None
    axes_orientations: Mapping[str, Any] | None = field(default=None, repr=False)
    axes_types: Mapping[str, str] | None = field(default=None, repr=False)
    channel_names: list[str] | None = field(default=None, repr=False)
    channel_colors: list[str] | None = field(default=None, repr=False)
    computed_callbacks: list[Callable[..., Any]] = field(default_factory=list)
    #: The array ``data`` wraps (NumPy view, zarr array, CuPy array); None when ``data``
    #: came in as dask. Not plan state: the writer reads ``source`` directly only while
    #: :meth:`reads_source` says ``data`` is still the lazy view of it.
    source: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        checked = check_dims(self.dims, self.data.ndim, any_names=True)
        self.dims = tuple(checked) if isinstance(self.dims, tuple) else checked

    @property
    def spatial_dims(self) -> list[str]:
        """The dims whose axis type is ``space`` (declared in ``axes_types``, or by
        name): the ones a pyramid downsamples."""
        return spatial_dims(self.dims, self.axes_types)

    @classmethod
    def adopt(cls, other: Any) -> NgffImage:
        """An NgffImage with the fields of ``other``, an image of another library with
        ngff-zarr's fields (``data``, ``dims``, ``scale``, ``translation``...)."""
        data, source = as_dask(other.data)
        return cls(data=data, dims=tuple(other.dims), scale=dict(other.scale or {}),
                   translation=dict(other.translation or {}),
                   name=getattr(other, "name", "image"),
                   axes_units=getattr(other, "axes_units", None),
                   axes_orientations=getattr(other, "axes_orientations", None),
                   axes_types=getattr(other, "axes_types", None),
                   channel_names=getattr(other, "channel_names", None),
                   channel_colors=getattr(other, "channel_colors", None), source=source)

    def reads_source(self) -> bool:
        """True when ``data`` is still the lazy view of ``source`` (:func:`source_view`),
        so reading ``source`` gives the same pixels without going through dask.

        Derived from the dask name, which encodes the source and the chunks: a replaced
        or edited ``data`` (another array, a rechunk, arithmetic) is never mistaken
        for the source.
        """
        if self.source is None or not is_dask(self.data):
            return False
        return self.data.name == _view_name(self.source, self.data.chunks)


def _view_name(source: Any, chunks: tuple[tuple[int, ...], ...]) -> str:
    return "array-" + tokenize(id(source), tuple(source.shape), str(source.dtype), chunks)


def source_view(source: Any, chunks: Any = "auto") -> da.Array:
    """The lazy dask view of ``source`` (a :class:`HostView` or a zarr array) with
    ``chunks``; its name encodes the source and the chunks (see
    :meth:`NgffImage.reads_source`)."""
    chunks = da.core.normalize_chunks(chunks, tuple(source.shape), dtype=np.dtype(source.dtype),
                                      previous_chunks=getattr(source, "chunks", None))
    kwargs: dict[str, Any] = {}
    if isinstance(source, HostView):
        kwargs["meta"] = source.array[(slice(0, 0),) * source.ndim]
    return da.from_array(source, chunks=chunks, asarray=False, fancy=False,
                         name=_view_name(source, chunks), **kwargs)


def _open_stored(data: Any) -> Any:
    """A path, URL or zarr store (as ngff-zarr takes them) opened as its zarr array; a
    zarr group gives the array of its first multiscales dataset, or its largest array.

    Raises
    ------
    ArgumentError
        For a path or store that holds no zarr array.
    """
    import os
    from collections.abc import MutableMapping

    import zarr

    if isinstance(data, str | os.PathLike) or isinstance(data, MutableMapping) or hasattr(
            data, "supports_writes"):
        try:
            data = zarr.open(data, mode="r")
        except Exception as exc:  # noqa: BLE001 - zarr raises many kinds here
            raise ArgumentError(f"data: {data!r} is not a readable zarr array or group "
                                f"({exc})") from exc
    foreign_group = (type(data).__module__.split(".")[0] in ("ngff_zarr", "zarrista")
                     and hasattr(data, "attrs") and hasattr(data, "keys")
                     and not hasattr(data, "shape"))  # ngff-zarr's own group nodes
    if isinstance(data, zarr.Group) or foreign_group:
        attrs = dict(data.attrs)
        ms = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
        path = None
        if isinstance(ms, list) and ms and isinstance(ms[0], dict):
            path = (ms[0].get("datasets") or [{}])[0].get("path")
        if foreign_group:
            nodes = {k: data[k] for k in data.keys()}
            arrays = {k: v for k, v in nodes.items() if hasattr(v, "shape")}
        else:
            arrays = dict(data.arrays())
        if path is None or path not in arrays:
            if not arrays:
                raise ArgumentError("data: the zarr group holds no array (no arrays found); "
                                    "pass an array")
            path = max(arrays, key=lambda k: math.prod(arrays[k].shape))
        data = arrays[path]
    return data


def _named_dtype(dtype: Any) -> np.dtype | None:
    """The NumPy dtype that a dtype object NumPy cannot take names (zarrista's
    ``DataType('uint16')``, by its ``name``); None for one NumPy takes, or none."""
    if dtype is None:
        return None
    try:
        np.dtype(dtype)
        return None
    except (TypeError, ValueError):
        pass
    for name in (getattr(dtype, "name", None), str(dtype)):
        try:
            return np.dtype(name) if isinstance(name, str) else None
        except (TypeError, ValueError):
            continue
    return None


class _NumpyFace:
    """A read-only array with a NumPy ``dtype``, tuple ``shape``, ``chunks`` and NumPy
    indexing over an array-like whose ``dtype`` only names a NumPy dtype (zarrista's
    arrays, which ngff-zarr takes; their integer index keeps its axis, so it is read as
    a length-1 slice and squeezed here)."""

    def __init__(self, data: Any, dtype: np.dtype) -> None:
        self._data = data
        self.dtype = dtype
        self.shape = tuple(int(n) for n in data.shape)
        self.ndim = len(self.shape)
        chunks = getattr(data, "chunks", None)
        if chunks is None and callable(getattr(data, "chunk_shape", None)):  # zarrista
            chunks = (data.subchunk_shape if getattr(data, "is_sharded", False)
                      else data.chunk_shape([0] * self.ndim))
        self.chunks = tuple(int(c) for c in chunks) if chunks is not None else "auto"

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > self.ndim or not all(isinstance(k, slice | int | np.integer)
                                           for k in key):  # ..., None, arrays: via NumPy
            return np.asarray(self._data[tuple(slice(0, n) for n in self.shape)])[key]
        read, then = [], []
        for k, n in zip(key + (slice(None),) * (self.ndim - len(key)), self.shape):
            if isinstance(k, slice):
                start, stop, step = k.indices(n)
                read.append(slice(start, max(start, stop)) if step == 1 else slice(0, n))
                then.append(slice(None) if step == 1 else k)
            else:
                i = int(k) + n if int(k) < 0 else int(k)
                if not 0 <= i < n:
                    raise IndexError(f"index {int(k)} is out of bounds for an axis of size {n}")
                read.append(slice(i, i + 1))
                then.append(0)
        return np.asarray(self._data[tuple(read)])[tuple(then)]


def as_dask(data: Any) -> tuple[da.Array, Any]:
    """Wrap ``data`` in a lazy dask array without copying it.

    Dask arrays are returned as they are; zarr arrays, other region arrays (input
    readers, see :func:`~ngff_gpu.namespace.is_region_array`) and memory maps are read
    lazily; CuPy arrays (and CUDA tensors) keep CuPy chunks. ngff-zarr's array nodes
    are read through their ``to_dask``; an array-like whose ``dtype`` only names a NumPy
    dtype (zarrista's ``DataType('uint16')``) lazily through :class:`_NumpyFace`.

    Returns
    -------
    dask.array.Array, object
        The dask array and the object it reads from (None for dask input).
    """
    if is_dask(data):
        return data, None
    data = _open_stored(data)
    if not is_region_array(data) and callable(getattr(data, "to_dask", None)):
        return data.to_dask(), None  # ngff-zarr's own lazy array handles
    named = _named_dtype(getattr(data, "dtype", None)) if hasattr(data, "shape") else None
    if named is not None:  # a dtype that only names a NumPy one: read through a face
        face = _NumpyFace(data, named)
        return da.from_array(face, chunks=face.chunks), None
    if type(data).__module__.split(".")[0] in ("ngff_zarr", "zarrista") and hasattr(
            data, "shape") and hasattr(data, "dtype"):  # their array nodes: read lazily
        return da.from_array(data, chunks=getattr(data, "chunks", "auto")), None
    if is_region_array(data):
        return source_view(data), data
    arr = to_compute(data)
    if np.dtype(arr.dtype).kind not in "biuf":
        try:
            check_dtype(np.dtype(arr.dtype), Methods.GAUSSIAN)
        except UnsupportedDtypeError as exc:
            raise UnsupportedDtypeError(f"data: {exc}") from None
    arr = arr if is_cupy(arr) else np.asarray(arr)
    view = HostView(arr)
    return source_view(view), view


def _number(name: str, dim: str, v: Any, positive: bool) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise ArgumentTypeError(f"{name}[{dim!r}] must be a number, got {v!r}")
    value = float(v)
    if not math.isfinite(value):
        raise ArgumentError(f"{name}[{dim!r}] must be finite, got {value}")
    if positive and value <= 0:
        raise ArgumentError(f"{name}[{dim!r}] must be positive, got {value}")
    return value


def per_dim(name: str, value: Mapping[str, float] | Sequence[float] | None,
            dims: list[str], default: float, positive: bool = False,
            types: Mapping[str, Any] | None = None) -> dict[str, float]:
    """``scale`` or ``translation`` as ``{dim: float}``, checked: finite numbers (and
    positive for a scale), one per spatial dim or per dim, or a dict naming dims
    (spatial by :func:`ngff_gpu.dims.spatial_dims` with the declared ``types``).

    Raises
    ------
    ArgumentTypeError
        When ``value`` or one of its entries is not a number.
    ArgumentError
        On NaN, infinity or (``positive``) a value <= 0.
    DimsError
        When a dict names a dim not in ``dims``, or a sequence has the wrong length.
    """
    spatial = spatial_dims(dims, types)
    if value is None:
        return {d: default for d in spatial}
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in dims]
        if unknown:
            raise DimsError(f"{name} names dim(s) {unknown} that are not in dims {dims}")
        out = {d: _number(name, d, value[d], positive) for d in dims if d in value}
        for d in spatial:
            out.setdefault(d, default)
        return out
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ArgumentTypeError(f"{name} must be a dict {{dim: number}} or a sequence of "
                                f"numbers, got {value!r}")
    if len(value) == len(spatial):
        return {d: _number(name, d, v, positive) for d, v in zip(spatial, value)}
    if len(value) == len(dims):
        return {d: _number(name, d, v, positive) for d, v in zip(dims, value)}
    raise DimsError(f"{name} has {len(value)} values; expected one per spatial dim {spatial}")


def check_name(name: Any, param: str = "name", nested: bool = False) -> str:
    """A name that is part of Zarr paths: a non-empty string, neither ``.`` nor ``..``,
    without ``/``; with ``nested`` (an image name: its arrays are ``scale{k}/{name}``,
    as ngff-zarr writes them, so ``"Well A/1"`` gives ``scale0/Well A/1``) ``/`` may
    separate such parts, which keeps every array below its level's group."""
    if not isinstance(name, str):
        raise ArgumentTypeError(f"{param} must be a string, got {name!r}")
    parts = name.split("/") if nested else [name]
    if any(not p or "/" in p or p in (".", "..") for p in parts):
        if nested:
            raise ArgumentError(f"{param} {name!r} must be a non-empty string whose "
                                "'/'-separated parts are non-empty and not '.' or '..'")
        raise ArgumentError(f"{param} {name!r} must be a non-empty string without '/'")
    return name


#: ngff-zarr's default dims by number of dimensions: channels last for 4-D and 5-D
#: (:func:`~ngff_gpu.to_multiscales` then puts them in canonical order).
NGFF_ZARR_DEFAULT_DIMS = {1: ("x",), 2: ("y", "x"), 3: ("z", "y", "x"), 4: ("z", "y", "x", "c"),
                          5: ("t", "z", "y", "x", "c")}


def _per_dim_map(name: str, value: Any, dims: Sequence[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"{name} must be a dict {{dim: value}}, got {value!r}")
    unknown = [k for k in value if k not in dims]
    if unknown:
        raise DimsError(f"{name} names dim(s) {unknown} that are not in dims {list(dims)}")
    return dict(value)


def _channel_list(name: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(
            isinstance(v, str) for v in value):
        raise ArgumentTypeError(f"{name} must be a list of strings, got {value!r}")
    return list(value) or None


def to_ngff_image(
    data: Any,
    dims: Sequence[str] | None = None,
    scale: Mapping[str, float] | Sequence[float] | None = None,
    translation: Mapping[str, float] | Sequence[float] | None = None,
    name: str = "image",
    axes_units: Mapping[str, str] | None = None,
    channel_names: Sequence[str] | None = None,
    *,
    axes_orientations: Mapping[str, Any] | None = None,
    axes_types: Mapping[str, str] | None = None,
    channel_colors: Sequence[str] | None = None,
) -> NgffImage:
    """Wrap an array as an :class:`NgffImage` (ngff-zarr's signature, plus keyword-only
    ``axes_orientations``, ``axes_types`` and ``channel_colors``).

    Parameters
    ----------
    data : array-like
        NumPy, CuPy, torch, Dask, zarr or any Array API array; an array-like whose
        ``dtype`` names a NumPy dtype (zarrista's arrays, which ngff-zarr takes).
    dims : sequence of str, optional
        Dim names (kept as given); default, as ngff-zarr: ``("y", "x")``,
        ``("z", "y", "x")``, ``("z", "y", "x", "c")`` or ``("t", "z", "y", "x", "c")``
        by ``ndim`` (:func:`~ngff_gpu.to_multiscales` puts ``c`` before space).
    scale, translation : dict or sequence, optional
        Per spatial dim; defaults 1.0 and 0.0.
    name : str
        Image name.
    axes_units : dict, optional
        UDUNITS-2 unit per dim, e.g. ``{"z": "micrometer"}``.
    channel_names : sequence of str, optional
        One label per channel.
    axes_orientations, axes_types, channel_colors : optional
        See :class:`NgffImage`.

    Returns
    -------
    NgffImage

    Raises
    ------
    DimsError
        If ``dims`` do not fit the data or name unknown axes.
    ArgumentError, ArgumentTypeError
        On a scale or translation that is not a finite number (a scale <= 0), or a
        bad ``name``, ``axes_units`` or channel list.
    UnsupportedDtypeError
        For data that are not numbers (strings, objects).
    """
    arr, source = as_dask(data)
    if dims is None:
        if arr.ndim not in NGFF_ZARR_DEFAULT_DIMS:
            default_dims(arr.ndim)  # raises DimsError naming the rank
        dims = NGFF_ZARR_DEFAULT_DIMS[arr.ndim]
    given = dims
    if axes_types is not None and not isinstance(axes_types, Mapping):
        raise ArgumentTypeError(f"axes_types must be a dict {{dim: type}}, got {axes_types!r}")
    dims = check_dims(dims, arr.ndim, types=axes_types)
    types = _per_dim_map("axes_types", axes_types, dims)
    units = None
    if axes_units is not None:
        if not isinstance(axes_units, Mapping) or not all(
                isinstance(u, str) for u in axes_units.values()):
            raise ArgumentTypeError(f"axes_units must be a dict {{dim: unit name}}, "
                                    f"got {axes_units!r}")
        units = _per_dim_map("axes_units", axes_units, dims)
    return NgffImage(
        data=arr,
        dims=tuple(dims) if isinstance(given, tuple) else dims,
        scale=per_dim("scale", scale, dims, 1.0, positive=True, types=types),
        translation=per_dim("translation", translation, dims, 0.0, types=types),
        name=check_name(name, nested=True),
        axes_units=units,
        axes_orientations=_per_dim_map("axes_orientations", axes_orientations, dims),
        axes_types=types,
        channel_names=_channel_list("channel_names", channel_names),
        channel_colors=_channel_list("channel_colors", channel_colors),
        source=source,
    )
