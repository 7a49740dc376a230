"""Open image files as lazy arrays with their dims, spacing and units (the CLI's readers).

:func:`open_input` turns one path, a glob pattern or a list of files into an
:class:`InputImage` whose ``data`` is read lazily (a ``zarr.Array``, a
``dask.array`` or a ``numpy.memmap``):

========================  ===================================================
input                     how it is read
========================  ===================================================
TIFF, OME-TIFF, ImageJ    tifffile's Zarr store (``aszarr``): only the strips
                          or tiles a region needs; OME/ImageJ axes, physical
                          sizes and units are kept
PNG, JPEG, BMP, GIF       imageio (these formats have no random access: one
                          image is decoded whole, when first read)
several files / a glob    a z-stack (a new leading ``z`` axis, ``t`` if the
                          files are 3-D), one read per file, all files of one
                          shape and dtype
``.npy``                  ``numpy.load(mmap_mode="r")``
Zarr array                ``zarr.open_array``; dims from ``dimension_names``
OME-Zarr image            its level 0, with axes, scale, translation, units
                          and ``omero`` from the multiscales metadata
========================  ===================================================

Axes are put in OME-NGFF order (``t, c, z, y, x``) with a lazy transpose: an
RGB(A) image (``y, x, c`` in the file) becomes ``c, y, x``. Sample axes
(tifffile's ``S``) are channels.
"""

from __future__ import annotations

import glob
import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ngff_gpu.dims import AXIS_ORDER
from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import (
    InputImage,
    canonical,
    check_dims,
    dims_from_letters,
    safe_name,
    stem,
    udunits,
)

__all__ = ["InputImage", "open_input", "safe_name", "udunits"]

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _is_url(path: str) -> bool:
    return "://" in path


def _natural_key(path: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path)]


def _expand(paths: Sequence[str]) -> list[str]:
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if not _is_url(p) and not os.path.exists(p) and glob.has_magic(p):
            matches = sorted(glob.glob(p), key=_natural_key)
            if not matches:
                raise InputFormatError(f"no file matches the pattern {p!r}")
            out.extend(matches)
        else:
            out.append(p)
    for p in out:
        if not _is_url(p) and not os.path.exists(p):
            raise InputFormatError(f"no such file: {p}")
    return out


def _sniff(path: str) -> str:
    """``zarr``, ``tiff``, ``npy`` or ``raster``; raise for anything else."""
    if _is_url(path) or os.path.isdir(path):
        return "zarr"
    low = path.lower()
    if low.endswith(TIFF_SUFFIXES):
        return "tiff"
    if low.endswith(".npy"):
        return "npy"
    if low.endswith(RASTER_SUFFIXES):
        return "raster"
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff" or head[:2] == b"BM":
        return "raster"
    raise InputFormatError(
        f"cannot read {path}: unrecognized format (supported: TIFF/OME-TIFF, PNG, JPEG, BMP, "
        ".npy, Zarr arrays and OME-Zarr images)"
    )


# -- TIFF --------------------------------------------------------------------------------------


def _raster_props(path: str) -> tuple[tuple[int, ...], np.dtype]:
    import imageio.v3 as iio

    try:
        with warnings.catch_warnings():  # imageio probes plugins, some deprecated
            warnings.simplefilter("ignore")
            props = iio.improps(path)
    except Exception as exc:  # noqa: BLE001 - imageio raises many kinds
        raise InputFormatError(f"cannot read {path} as an image: {exc}") from exc
    if props.is_batch:
        raise InputFormatError(f"{path} holds several images; give one image per file")
    return tuple(int(n) for n in props.shape), np.dtype(props.dtype)


def _read_raster(path: str) -> np.ndarray:
    import imageio.v3 as iio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(iio.imread(path))
    except Exception as exc:  # noqa: BLE001
        raise InputFormatError(f"cannot read {path} as an image: {exc}") from exc


class _FileStack:
    """Files of one shape stacked along a new leading axis, read file by file.

    TIFF members read only the region asked for (tifffile's Zarr store); other
    formats are decoded whole, and the last decoded images are cached up to
    ``cache_bytes`` so that neighbouring regions do not decode a file twice.
    """

    def __init__(self, paths: list[str], fmt: str, shape: tuple[int, ...], dtype: np.dtype,
                 cache_bytes: int = 256 << 20) -> None:
        self.paths, self.fmt = paths, fmt
        self.shape = (len(paths),) + shape
        self.dtype, self.ndim = dtype, 1 + len(shape)
        self.chunks = (1,) + shape
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_n = max(1, cache_bytes // max(1, int(np.prod(shape)) * dtype.itemsize))

    def _member(self, i: int, key: tuple[slice, ...]) -> np.ndarray:
        if self.fmt == "tiff":
            import tifffile
            import zarr

            with tifffile.imread(self.paths[i], aszarr=True, series=0, level=0) as store:
                return np.asarray(zarr.open_array(store, mode="r")[key])
        if i not in self._cache:
            image = _read_raster(self.paths[i])
            if image.shape != self.shape[1:] or image.dtype != self.dtype:
                raise InputFormatError(f"{self.paths[i]} changed while reading")
            self._cache[i] = image
            while len(self._cache) > self._cache_n:
                self._cache.popitem(last=False)
        self._cache.move_to_end(i)
        return self._cache[i][key]

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        first, rest = key[0], tuple(key[1:])
        if isinstance(first, int | np.integer):
            return self._member(int(first), rest)
        planes = [self._member(i, rest) for i in range(*first.indices(self.shape[0]))]
        if not planes:
            empty = np.zeros((1,) + self.shape[1:], self.dtype)[(slice(0, 0),) + rest]
            return empty
        return np.stack(planes)


def _member_props(path: str, fmt: str) -> tuple[tuple[int, ...], np.dtype, str]:
    if fmt == "tiff":
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                s = tif.series[0]
                return tuple(int(n) for n in s.shape), np.dtype(s.dtype), s.axes
        except (tifffile.TiffFileError, ValueError, IndexError) as exc:
            raise InputFormatError(f"cannot read {path} as TIFF: {exc}") from exc
    shape, dtype = _raster_props(path)
    return shape, dtype, "YXS" if len(shape) == 3 else "YX"


def _open_stack(paths: list[str], dims: Sequence[str] | None) -> InputImage:
    import dask.array as da

    fmts = {_sniff(p) for p in paths}
    if len(fmts) != 1 or not fmts <= {"tiff", "raster"}:
        raise InputFormatError(
            "a stack needs image files of one kind (TIFF, or PNG/JPEG/BMP); got "
            + ", ".join(sorted(fmts)))
    fmt = fmts.pop()
    shape, dtype, axes = _member_props(paths[0], fmt)
    for p in paths[1:]:
        s, t, _ = _member_props(p, fmt)
        if s != shape or t != dtype:
            raise InputFormatError(
                f"stack members differ: {paths[0]} is {shape} {dtype}, {p} is {s} {t}")
    member = dims_from_letters(axes, trusted=False)
    if member is None:
        member = {2: ["y", "x"], 3: ["z", "y", "x"]}.get(len(shape))
    guessed = None
    if member is not None:
        new = "z" if "z" not in member else "t"
        guessed = [new] + member
    stack = _FileStack(paths, fmt, shape, dtype)
    data = da.from_array(stack, chunks=stack.chunks, asarray=False, fancy=False,
                         meta=np.empty((0,) * stack.ndim, dtype), name=f"stack-{abs(hash(tuple(paths)))}")
    if dims is not None:
        guessed = check_dims(dims, data.ndim, f"the stack of {len(paths)} files", data.shape)
    data, out_dims = canonical(data, guessed)
    label = "TIFF" if fmt == "tiff" else os.path.splitext(paths[0])[1].lstrip(".").upper()
    return InputImage(data=data, dims=out_dims, name=safe_name(stem(paths[0]).rstrip("0123456789_-")),
                      kind=f"{label} stack of {len(paths)} files", paths=list(paths))


def _open_raster(path: str, dims: Sequence[str] | None) -> InputImage:
    _raster_props(path)  # header check: clear error before decoding
    image = _read_raster(path)
    guessed = ["y", "x", "c"] if image.ndim == 3 else ["y", "x"] if image.ndim == 2 else None
    if dims is not None:
        guessed = check_dims(dims, image.ndim, path, image.shape)
    if guessed is not None and guessed != sorted(guessed, key=AXIS_ORDER.index):
        order = sorted(range(image.ndim), key=lambda i: AXIS_ORDER.index(guessed[i]))
        image, guessed = np.transpose(image, order), [guessed[i] for i in order]  # a view
    kind = os.path.splitext(path)[1].lstrip(".").upper() or "image"
    return InputImage(data=image, dims=guessed, name=safe_name(stem(path)), kind=kind,
                      paths=[path])


# -- NumPy and Zarr ------------------------------------------------------------------------------


def _open_npy(path: str, dims: Sequence[str] | None) -> InputImage:
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputFormatError(f"cannot read {path} as .npy: {exc}") from exc
    guessed = check_dims(dims, data.ndim, path, data.shape) if dims is not None else None
    data, out = canonical(data, guessed)
    return InputImage(data=data, dims=out, name=safe_name(stem(path)), kind="NumPy .npy",
                      paths=[path])


def _open_zarr(path: str, dims: Sequence[str] | None) -> InputImage:
    import zarr

    try:
        node = zarr.open(path, mode="r")
    except (FileNotFoundError, KeyError, ValueError, TypeError, zarr.errors.NodeTypeValidationError
            ) as exc:
        raise InputFormatError(f"cannot open {path} as Zarr: {exc}") from exc
    if isinstance(node, zarr.Group):
        return _open_ome_zarr(node, path, dims)
    names = getattr(node.metadata, "dimension_names", None) or node.attrs.get("_ARRAY_DIMENSIONS")
    guessed = None
    if names and all(n in AXIS_ORDER and n for n in names) and len(set(names)) == len(names):
        guessed = list(names)
    if dims is not None:
        guessed = check_dims(dims, node.ndim, path, node.shape)
    data, out = canonical(node, guessed)
    return InputImage(data=data, dims=out, name=safe_name(stem(path)), kind="Zarr array",
                      paths=[path])


def _open_ome_zarr(group: Any, path: str, dims: Sequence[str] | None) -> InputImage:
    from ngff_gpu.errors import InvalidStoreError
    from ngff_gpu.io.group import open_dataset, read_ome_attrs
    from ngff_gpu.model.metadata import level_placement, metadata_from_json

    try:
        version, attrs = read_ome_attrs(group)
    except InvalidStoreError:
        arrays = sorted(name for name, _ in group.arrays())
        hint = f"; its arrays: {', '.join(arrays[:8])}" if arrays else ""
        raise InputFormatError(
            f"{path} is a Zarr group without OME-Zarr multiscales metadata (incomplete "
            f"conversion?); give the path of an array inside it{hint}") from None
    entry = attrs["multiscales"][0]
    try:
        meta = metadata_from_json(entry, version)
        axes = [ax.name for ax in meta.axes]
        data = open_dataset(group, meta.datasets[0].path, len(axes), "multiscales[0].datasets[0]")
    except InvalidStoreError as exc:
        raise InputFormatError(f"{path}: malformed multiscales metadata ({exc})") from exc
    scale, translation = level_placement(meta, 0)
    units = {ax.name: ax.unit for ax in meta.axes if ax.unit}
    guessed = check_dims(dims if dims is not None else axes, data.ndim, path, data.shape)
    rename = dict(zip(axes, guessed))
    data, out = canonical(data, guessed)
    omero = attrs.get("omero")
    if isinstance(omero, dict):
        omero = {k: v for k, v in omero.items() if k != "version"}
    return InputImage(
        data=data, dims=out,
        scale={d: s for d, s in zip(guessed, scale) if d != "c"},
        translation={d: t for d, t in zip(guessed, translation) if d != "c"},
        units={rename[k]: u for k, u in units.items() if k in rename} or None,
        name=safe_name(meta.name if "name" in entry and meta.name else stem(path)),
        is_label_hint="image-label" in attrs, omero=omero if isinstance(omero, dict) else None,
        kind=f"OME-Zarr {version}", paths=[path])


# -- entry points ----------------------------------------------------------------------------


def open_input(paths: Sequence[str] | str, dims: Sequence[str] | str | None = None) -> InputImage:
    """Open one image file, a glob pattern, or several files as a lazy :class:`InputImage`.

    Parameters
    ----------
    paths : str or sequence of str
        One path (TIFF/OME-TIFF, PNG/JPEG/BMP, ``.npy``, Zarr array, OME-Zarr
        image, or a URL of a Zarr store), a glob pattern, or several files
        (stacked along a new ``z`` axis; ``t`` if the files are 3-D).
    dims : str or sequence of str, optional
        Names of the axes *as stored in the file* (``"zyx"``, ``"yxc"``...),
        overriding what the file says; the result is reordered to ``t, c, z, y, x``.

    Returns
    -------
    InputImage

    Raises
    ------
    InputFormatError
        For a missing file, an unreadable format or stack members that differ.
    DimsError
        When ``dims`` do not name one axis per dimension of the data.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise InputFormatError("no input given")
    if isinstance(dims, str):
        dims = list(dims.replace(",", "").strip().lower())
    files = _expand([os.fspath(p) for p in paths])
    if len(files) > 1:
        return _open_stack(files, dims)
    path = files[0]
    fmt = _sniff(path)
    from ngff_gpu.io.inputs.tiff import open_tiff

    opener = {"tiff": open_tiff, "npy": _open_npy, "zarr": _open_zarr, "raster": _open_raster}
    return opener[fmt](path, dims)

