"""HDF5 inputs (h5py): any dataset (``file.h5:/group/data``) and Imaris ``.ims`` files.

A file is opened by its layout: an Imaris file (``DataSet/ResolutionLevel 0`` and
``DataSetInfo``) as Imaris, a BigDataViewer file (``s00/resolutions``, ``t00000``)
through :mod:`ngff_gpu.io.inputs.bdv`, anything else as one dataset: the one named
after the colon, or the only image-like dataset (two dimensions or more) in the
file; several is an error listing them. Every dataset is read region by region
by :class:`~ngff_gpu.io.inputs.hdf5_chunks.H5Chunks`.

Generic datasets: axis names from HDF5 dimension labels (``DIMENSION_LABELS``,
h5py's ``dset.dims[i].label``) or ilastik's ``axistags``; spacing from
``element_size_um`` (Fiji, ilastik: micrometer, one value per axis) or the
``resolution`` of ilastik's axistags.

Imaris (file format 5.5): resolution level 0; every ``TimePoint t/Channel c/Data``
as ``t, c, z, y, x``, cropped to ``ImageSizeX/Y/Z`` (Imaris pads the datasets to
whole chunks); voxel size ``(ExtMax - ExtMin) / size`` and origin ``ExtMin`` in
``DataSetInfo/Image`` ``Unit``; channel ``Name`` and ``Color`` into ``omero``; the
time step from ``DataSetInfo/TimeInfo`` ``TimePoint1``, ``TimePoint2``.
Imaris writes its attributes as arrays of one-byte strings; they are joined.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.bdv import open_bdv_h5
from ngff_gpu.io.inputs.common import (
    InputImage,
    Stacked,
    arrange_tczyx,
    checked_dims,
    keep_dims,
    reorder,
    safe_name,
    stem,
    udunits,
)
from ngff_gpu.io.inputs.hdf5_chunks import H5Chunks, open_h5file


def attr_text(obj: Any, name: str, default: str | None = None) -> str | None:
    """Attribute ``name`` as text (Imaris stores text as arrays of one-byte strings)."""
    if name not in obj.attrs:
        return default
    value = obj.attrs[name]
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            return b"".join(value.ravel().tolist()).decode(errors="replace")
        if value.size == 1:
            return str(value.ravel()[0])
    return str(value)


def image_datasets(f: Any) -> list[tuple[str, tuple[int, ...], str]]:
    """Every dataset of two or more dimensions in the file: (path, shape, dtype)."""
    import h5py

    found: list[tuple[str, tuple[int, ...], str]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.ndim >= 2 and obj.dtype.kind in "biuf":
            found.append(("/" + name, tuple(int(n) for n in obj.shape), str(obj.dtype)))

    f.visititems(visit)
    return found


def listing(found: Sequence[tuple[str, tuple[int, ...], str]], limit: int = 12) -> str:
    """``/a 4x5 uint8, /b ...`` for messages."""
    text = ", ".join(f"{p} {'x'.join(map(str, s))} {d}" for p, s, d in found[:limit])
    return text + (f" and {len(found) - limit} more" if len(found) > limit else "")


def layout(f: Any) -> str:
    """``imaris``, ``bdv`` or ``plain``: how the open HDF5 file is organised."""
    if "DataSet" in f and "DataSetInfo" in f and "ResolutionLevel 0" in f["DataSet"]:
        return "imaris"
    if any(re.fullmatch(r"s\d+", k) for k in f) and any(re.fullmatch(r"t\d+", k) for k in f):
        return "bdv"
    return "plain"


def open_hdf5(path: str, dims: Sequence[str] | None, inner: str | None = None,
              series: int | None = None) -> InputImage:
    """Open an HDF5 file (a dataset of it, an Imaris or a BigDataViewer file) lazily.

    Parameters
    ----------
    path : str
        The file.
    dims : sequence of str, optional
        Axis names as stored, overriding the file's.
    inner : str, optional
        The dataset's path inside the file (``/group/data``).
    series : int, optional
        For a BigDataViewer file whose setups are several images (tiles, angles).

    Raises
    ------
    InputFormatError
        Damaged or truncated file, a missing dataset (the message lists those there
        are), a filter this installation cannot decode, a file with several image
        datasets and no ``inner``.
    """
    f = open_h5file(path)
    try:
        kind = layout(f) if inner is None else "plain"
        if kind == "imaris":
            if series not in (None, 0):
                raise InputFormatError(f"{path} is one Imaris image; --series {series} does not "
                                       "exist")
            return _open_imaris(f, path, dims)
        if kind == "bdv":
            return open_bdv_h5(path, dims, series)
        if series not in (None, 0):
            raise InputFormatError(f"--series applies to multi-series files; {path} is an HDF5 "
                                   "dataset (name it with FILE:/path/to/dataset)")
        return _open_plain(f, path, dims, inner)
    finally:
        f.close()


def _open_plain(f: Any, path: str, dims: Sequence[str] | None, inner: str | None) -> InputImage:
    import h5py

    found = image_datasets(f)
    if inner is None:
        if len(found) != 1:
            what = "no image dataset (of two or more dimensions)" if not found else \
                f"{len(found)} image datasets ({listing(found)}); name one as {path}:/path/to/it"
            raise InputFormatError(f"{path} holds {what}")
        inner = found[0][0]
    name = "/" + inner.strip("/")
    obj = f.get(name)
    if not isinstance(obj, h5py.Dataset):
        there = f"its datasets: {listing(found)}" if found else "it holds no image dataset"
        what = "a group, not a dataset" if obj is not None else "not in the file"
        raise InputFormatError(f"{path}:{name} is {what}; {there}")
    if obj.ndim < 2 or obj.dtype.kind not in "biuf":
        raise InputFormatError(f"{path}:{name} is a {obj.ndim}-D {obj.dtype} dataset, not an "
                               "image (2 dimensions or more, numbers)")
    shape = tuple(int(n) for n in obj.shape)
    guessed, scale = _plain_axes(obj)
    reader = H5Chunks(path, name)
    units = {d: "micrometer" for d in scale if d in "xyz"}
    if dims is not None:
        guessed = checked_dims(dims, len(shape), f"{path}:{name}", shape)
        scale, units = keep_dims(scale, guessed) or {}, keep_dims(units, guessed) or {}
    data: Any = reader.region_array()
    out_dims = None
    if guessed is not None:
        data, out_dims = reorder(data, guessed, path)
    label = name.strip("/").replace("/", "_")
    return InputImage(data=data, dims=out_dims, scale=scale or None, units=units or None,
                      name=safe_name(f"{stem(path)}_{label}" if "/" in name.strip("/") else stem(path)),
                      kind=f"HDF5 dataset {name} ({reader.mode} reads)", paths=[path])


def _plain_axes(dset: Any) -> tuple[list[str] | None, dict[str, float]]:
    """Axis names and spacing (micrometer) a plain dataset's attributes give."""
    names: list[str] | None = None
    scale: dict[str, float] = {}
    labels = [str(d.label).strip().lower() for d in dset.dims]
    if all(labels) and _valid(labels, dset.ndim):
        names = labels
    tags = dset.attrs.get("axistags")
    if names is None and tags is not None:  # ilastik: {"axes": [{"key": "z", "resolution": 0.5}]}
        try:
            axes = json.loads(tags if isinstance(tags, str) else bytes(tags).decode())["axes"]
            keys = [str(a["key"]).lower() for a in axes]
            if _valid(keys, dset.ndim):
                names = keys
                scale = {k: float(a["resolution"]) for k, a in zip(keys, axes)
                         if k in "xyz" and float(a.get("resolution") or 0) > 0}
        except (ValueError, KeyError, TypeError):
            pass
    size = dset.attrs.get("element_size_um")
    if size is not None:
        size = [float(v) for v in np.ravel(size)]
        spatial = names[-len(size):] if names else ["z", "y", "x"][-len(size):]
        if len(size) <= dset.ndim and all(s > 0 for s in size) and all(d in "xyz" for d in spatial):
            scale = dict(zip(spatial, size))
            if names is None and dset.ndim == len(size):
                names = spatial
    return names, scale


def _valid(names: Sequence[str], ndim: int) -> bool:
    return len(names) == ndim and len(set(names)) == ndim and all(n in "tczyx" and n for n in names)


# -- Imaris ----------------------------------------------------------------------------------


def _imaris_float(group: Any, name: str) -> float | None:
    try:
        return float(attr_text(group, name) or "")
    except ValueError:
        return None


def _open_imaris(f: Any, path: str, dims: Sequence[str] | None) -> InputImage:
    level = f["DataSet/ResolutionLevel 0"]
    times = sorted((k for k in level if k.startswith("TimePoint ")), key=lambda k: int(k.split()[1]))
    if not times:
        raise InputFormatError(f"{path}: Imaris file without time points in ResolutionLevel 0")
    channels = sorted((k for k in level[times[0]] if k.startswith("Channel ")),
                      key=lambda k: int(k.split()[1]))
    if not channels:
        raise InputFormatError(f"{path}: Imaris file without channels in {times[0]}")
    first = level[times[0]][channels[0]]
    try:
        size = tuple(int(float(attr_text(first, f"ImageSize{a}") or "")) for a in "ZYX")
    except ValueError:
        size = tuple(int(n) for n in first["Data"].shape)
    parts = {}
    for it, t in enumerate(times):
        for ic, c in enumerate(channels):
            name = f"/DataSet/ResolutionLevel 0/{t}/{c}/Data"
            if name not in f:
                raise InputFormatError(f"{path}: the Imaris dataset {name} is missing")
            parts[(it, ic)] = H5Chunks(path, name, shape=size)
    dtype = parts[(0, 0)].dtype
    if any(p.dtype != dtype for p in parts.values()):
        raise InputFormatError(f"{path}: the channels of this Imaris file differ in type")
    stack = Stacked(parts, (len(times), len(channels)), size, dtype)
    data: Any = stack.region_array(path, parts[(0, 0)].chunks)
    info = f.get("DataSetInfo/Image")
    scale: dict[str, float] = {}
    translation: dict[str, float] = {}
    units: dict[str, str] = {}
    if info is not None:
        unit = udunits(attr_text(info, "Unit") or "um") or "micrometer"
        for i, d in enumerate("xyz"):
            lo, hi = _imaris_float(info, f"ExtMin{i}"), _imaris_float(info, f"ExtMax{i}")
            n = size[2 - i]
            if lo is not None and hi is not None and n and hi > lo:
                scale[d], translation[d], units[d] = (hi - lo) / n, lo, unit
    step = _imaris_time_step(f.get("DataSetInfo/TimeInfo"))
    if step is not None and len(times) > 1:
        scale["t"], units["t"] = step, "second"
    omero = _imaris_channels(f, len(channels))
    data, guessed, scale, translation, units = arrange_tczyx(data, dims, path, scale,
                                                             translation, units)
    name = attr_text(info, "Name") if info is not None else None
    return InputImage(data=data, dims=guessed, scale=scale or None,
                      translation=translation or None, units=units or None,
                      name=safe_name(name if name and name != "(name not specified)" else stem(path)),
                      omero=omero, kind="Imaris", paths=[path])


def _imaris_time_step(info: Any) -> float | None:
    if info is None:
        return None
    stamps = []
    for i in (1, 2):
        text = attr_text(info, f"TimePoint{i}")
        if not text:
            return None
        try:
            stamps.append(datetime.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S.%f"))
        except ValueError:
            return None
    step = (stamps[1] - stamps[0]).total_seconds()
    return step if step > 0 else None


def _imaris_channels(f: Any, n: int) -> dict | None:
    out = []
    for i in range(n):
        group = f.get(f"DataSetInfo/Channel {i}")
        entry: dict[str, Any] = {"label": f"channel {i}"}
        if group is not None:
            entry["label"] = attr_text(group, "Name") or entry["label"]
            color = (attr_text(group, "Color") or "").split()
            try:
                rgb = [min(255, max(0, round(float(v) * 255))) for v in color[:3]]
                if len(rgb) == 3:
                    entry["color"] = "".join(f"{v:02X}" for v in rgb)
            except ValueError:
                pass
        out.append(entry)
    if all(e["label"] == f"channel {i}" and "color" not in e for i, e in enumerate(out)):
        return None
    return {"channels": out}
