"""NRRD inputs (``.nrrd``, detached ``.nhdr``): pynrrd parses the header.

Raw data (attached or in a detached data file) are memory-mapped, so only the
regions a pyramid needs are read; gzip/bzip2/ASCII data are decoded whole by
pynrrd when first read. Axes follow the file's fastest-first order (``x, y, z``
for space/domain axes, ``t`` for a ``time`` kind, ``c`` for vector/color/list
kinds); the spacing is the length of each ``space directions`` vector (or
``spacings``), the origin ``space origin``, units ``space units`` (millimeter
when the file names an anatomical ``space`` without units), and the RFC-4
orientation comes from the directions in the named ``space``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import (
    InputImage,
    RegionArray,
    as_dask,
    canonical,
    checked_dims,
    keep_dims,
    safe_name,
    spatial_orientation,
    stem,
    udunits,
)

_TYPES = {
    "i1": ("signed char", "int8", "int8_t"),
    "u1": ("uchar", "unsigned char", "uint8", "uint8_t"),
    "i2": ("short", "short int", "signed short", "signed short int", "int16", "int16_t"),
    "u2": ("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    "i4": ("int", "signed int", "int32", "int32_t"),
    "u4": ("uint", "unsigned int", "uint32", "uint32_t"),
    "i8": ("longlong", "long long", "long long int", "signed long long", "signed long long int",
           "int64", "int64_t"),
    "u8": ("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"),
    "f4": ("float",),
    "f8": ("double",),
}
_DTYPE = {name: code for code, names in _TYPES.items() for name in names}
_SPACES = {"left-posterior-superior": "LPS", "right-anterior-superior": "RAS",
           "left-anterior-superior": "LAS", "LPS": "LPS", "RAS": "RAS", "LAS": "LAS"}
_CHANNEL_KINDS = ("vector", "covariant-vector", "normal", "list", "point", "stub", "scalar",
                  "2-vector", "3-color", "rgb-color", "hsv-color", "xyz-color", "4-color",
                  "rgba-color", "3-vector", "3-gradient", "3-normal", "4-vector", "complex")


def _dtype(header: dict[str, Any], path: str) -> np.dtype:
    code = _DTYPE.get(str(header.get("type", "")).strip())
    if code is None:
        raise InputFormatError(f"{path}: NRRD type {header.get('type')!r} is not supported")
    order = ">" if str(header.get("endian", "little")) == "big" else "<"
    return np.dtype(order + code)


def _axes(header: dict[str, Any], n: int, path: str) -> list[str]:
    kinds = list(header.get("kinds") or ["domain"] * n)
    dirs = header.get("space directions")
    out, spatial = [], iter("xyz")
    for i, kind in enumerate(kinds):
        kind = str(kind).lower()
        has_dir = dirs is not None and dirs[i] is not None and np.all(np.isfinite(dirs[i]))
        if kind in ("domain", "space") or has_dir:
            d = next(spatial, None)
            if d is None:
                raise InputFormatError(f"{path}: more than 3 space axes; give --dims")
            out.append(d)
        elif kind == "time":
            out.append("t")
        elif kind in _CHANNEL_KINDS:
            out.append("c")
        else:
            raise InputFormatError(f"{path}: NRRD axis kind {kind!r} is not supported; give --dims")
    if len(set(out)) != len(out):
        raise InputFormatError(f"{path}: axes kinds {kinds} name two channel or time axes; "
                               "give --dims")
    return out


def _loader(path: str, header: dict[str, Any], dtype: np.dtype, shape: tuple[int, ...],
            data_offset: int) -> Any:
    """A function reading a region: a memory map for raw data, a whole decode otherwise."""
    data_file = header.get("data file") or header.get("datafile")
    line_skip = int(header.get("line skip", header.get("lineskip", 0)) or 0)
    byte_skip = int(header.get("byte skip", header.get("byteskip", 0)) or 0)
    encoding = str(header.get("encoding", "raw")).lower()
    target, offset = path, data_offset
    if data_file:
        if isinstance(data_file, list | tuple) or str(data_file).startswith("LIST"):
            target = None
        else:
            target = os.path.join(os.path.dirname(path), str(data_file))
            offset = 0
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if encoding == "raw" and target is not None and line_skip == 0 and byte_skip >= -1:
        size = os.path.getsize(target)
        offset = size - nbytes if byte_skip == -1 else offset + byte_skip
        if offset < 0 or offset + nbytes > size:
            raise InputFormatError(f"{target} is truncated: {size - max(offset, 0)} bytes of data, "
                                   f"the header says {nbytes}")
        mm = np.memmap(target, dtype=dtype, mode="r", offset=offset, shape=shape, order="F")
        return lambda key: mm[key]
    lock, cache = threading.Lock(), {}

    def read(key: tuple[slice, ...]) -> np.ndarray:
        import nrrd

        with lock:
            if "data" not in cache:
                data, _ = nrrd.read(path, index_order="F")
                if tuple(data.shape) != shape:
                    raise InputFormatError(f"{path}: data shape {data.shape}, header {shape}")
                cache["data"] = data
        return cache["data"][key]

    return read


def open_nrrd(path: str, dims: Sequence[str] | None) -> InputImage:
    """Open an NRRD file (attached or detached header) lazily."""
    try:
        import nrrd
    except ImportError:
        raise InputFormatError(f"reading {path} needs pynrrd: pip install 'ngff-gpu[formats]'"
                               ) from None
    try:
        with open(path, "rb") as fh:
            header = dict(nrrd.read_header(fh))
            data_offset = fh.tell()
        shape = tuple(int(n) for n in header["sizes"])
    except (nrrd.NRRDError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"cannot read {path} as NRRD: {exc}") from exc
    dtype = _dtype(header, path)
    guessed = _axes(header, len(shape), path)
    read = _loader(path, header, dtype, shape, data_offset)
    chunks = [n if i < 2 else 1 for i, n in enumerate(shape)]
    data = RegionArray(shape, dtype.newbyteorder("="), read, path, chunks=chunks)
    scale: dict[str, float] = {}
    translation: dict[str, float] = {}
    units: dict[str, str] = {}
    orientation: dict[str, str] | None = None
    dirs = header.get("space directions")
    space = _SPACES.get(str(header.get("space", "")))
    spatial_axes = [i for i, d in enumerate(guessed) if d in "xyz"]
    if dirs is not None:
        vecs = [np.asarray(dirs[i], dtype=float) for i in spatial_axes]
        scale = {guessed[i]: float(np.linalg.norm(v)) for i, v in zip(spatial_axes, vecs)}
        if space and all(len(v) == 3 for v in vecs):
            orientation = dict(zip([guessed[i] for i in spatial_axes],
                                   spatial_orientation(vecs, space)))
    elif header.get("spacings") is not None:
        sp = header["spacings"]
        scale = {guessed[i]: float(sp[i]) for i in spatial_axes if np.isfinite(sp[i])}
    origin = header.get("space origin")
    if origin is not None:
        translation = {d: float(o) for d, o in zip([guessed[i] for i in spatial_axes], origin)}
    space_units = header.get("space units")
    if space_units:
        units = {guessed[i]: u for i, u in zip(spatial_axes, (udunits(str(s)) for s in space_units))
                 if u}
    elif space:
        units = {guessed[i]: "millimeter" for i in spatial_axes}
    if dims is not None:
        guessed = checked_dims(dims, len(shape), path, shape)
        scale, translation = keep_dims(scale, guessed) or {}, keep_dims(translation, guessed) or {}
        units, orientation = keep_dims(units, guessed) or {}, keep_dims(orientation, guessed)
    out, out_dims = canonical(as_dask(data), guessed)
    return InputImage(data=out, dims=out_dims, scale=scale or None,
                      translation=translation or None, units=units or None,
                      orientation=orientation, name=safe_name(stem(path)), kind="NRRD",
                      paths=[path])
