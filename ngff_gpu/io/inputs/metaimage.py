"""MetaImage inputs (``.mha``, ``.mhd`` + ``.raw``): our header parser plus a memory map.

The header is ``Key = Value`` text. Uncompressed data (``ElementDataFile = LOCAL``
after the header of a ``.mha``, or a separate raw file) are memory-mapped, so
only the regions a pyramid needs are read. Compressed data
(``CompressedData = True``) and slice lists are read whole through SimpleITK
when first needed (SimpleITK, like every MetaImage reader, has no region reads
for them). Axes are ``x, y, z`` (fastest first), a trailing ``c`` for
``ElementNumberOfChannels > 1``; spacing from ``ElementSpacing``, origin from
``Offset``/``Origin``/``Position``, orientation from ``TransformMatrix`` in
ITK's LPS world, units millimeter (ITK's convention).
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
)

_TYPES = {"MET_CHAR": "i1", "MET_UCHAR": "u1", "MET_SHORT": "i2", "MET_USHORT": "u2",
          "MET_INT": "i4", "MET_UINT": "u4", "MET_LONG": "i4", "MET_ULONG": "u4",
          "MET_LONG_LONG": "i8", "MET_ULONG_LONG": "u8", "MET_FLOAT": "f4",
          "MET_DOUBLE": "f8"}


def read_header(path: str) -> tuple[dict[str, str], int]:
    """The header fields and the byte offset where a ``.mha``'s data start."""
    fields: dict[str, str] = {}
    offset = 0
    with open(path, "rb") as fh:
        for raw in fh:
            offset += len(raw)
            line = raw.decode("latin-1").strip()
            if not line:
                continue
            if "=" not in line:
                raise InputFormatError(f"{path}: malformed MetaImage header line {line[:40]!r}")
            key, value = (s.strip() for s in line.split("=", 1))
            fields[key] = value
            if key == "ElementDataFile":
                break
            if offset > 1 << 20:
                raise InputFormatError(f"{path}: MetaImage header without ElementDataFile")
    if "ElementDataFile" not in fields:
        raise InputFormatError(f"{path}: MetaImage header without ElementDataFile")
    return fields, offset


def _floats(fields: dict[str, str], *keys: str) -> list[float] | None:
    for k in keys:
        if k in fields:
            try:
                return [float(v) for v in fields[k].split()]
            except ValueError:
                return None
    return None


def _whole_reader(path: str, shape: tuple[int, ...]) -> Any:
    lock, cache = threading.Lock(), {}

    def read(key: tuple[slice, ...]) -> np.ndarray:
        try:
            import SimpleITK as sitk
        except ImportError:
            raise InputFormatError(f"reading compressed MetaImage {path} needs SimpleITK: "
                                   "pip install 'ngff-gpu[formats]'") from None
        with lock:
            if "data" not in cache:
                # C order (z, y, x[, c]) reversed is our fastest-first ([c,] x, y, z)
                cache["data"] = sitk.GetArrayFromImage(sitk.ReadImage(path)).T
        data = cache["data"]
        if tuple(data.shape) != shape:
            raise InputFormatError(f"{path}: data shape {data.shape}, header {shape}")
        return data[key]

    return read


def open_metaimage(path: str, dims: Sequence[str] | None) -> InputImage:
    """Open a MetaImage (``.mha``/``.mhd``) lazily."""
    fields, header_end = read_header(path)
    try:
        ndims = int(fields["NDims"])
        size = [int(v) for v in fields["DimSize"].split()]
        code = _TYPES[fields["ElementType"]]
    except (KeyError, ValueError) as exc:
        raise InputFormatError(f"{path}: MetaImage header lacks or mangles {exc}") from None
    if len(size) != ndims or not 2 <= ndims <= 4:
        raise InputFormatError(f"{path}: NDims {ndims} with DimSize {size} is not supported")
    msb = fields.get("BinaryDataByteOrderMSB", fields.get("ElementByteOrderMSB", "False"))
    dtype = np.dtype((">" if msb.lower() == "true" else "<") + code)
    channels = int(fields.get("ElementNumberOfChannels", "1"))
    # memory order: channel fastest, then x, y, z: a Fortran-order array (c, x, y, z)
    shape = ((channels,) if channels > 1 else ()) + tuple(size)
    guessed = (["c"] if channels > 1 else []) + list("xyzt"[:ndims])
    data_file = fields["ElementDataFile"]
    compressed = fields.get("CompressedData", "False").lower() == "true"
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if compressed or data_file.startswith("LIST") or "%" in data_file:
        read = _whole_reader(path, shape)
    else:
        target = path if data_file == "LOCAL" else os.path.join(os.path.dirname(path), data_file)
        offset = header_end if data_file == "LOCAL" else 0
        header_size = int(fields.get("HeaderSize", "0"))
        if not os.path.exists(target):
            raise InputFormatError(f"{path}: its data file {target} does not exist")
        total = os.path.getsize(target)
        offset = total - nbytes if header_size == -1 else offset + header_size
        if offset < 0 or offset + nbytes > total:
            raise InputFormatError(f"{target} is truncated: {total - max(offset, 0)} bytes of "
                                   f"data, the header says {nbytes}")
        mm = np.memmap(target, dtype=dtype, mode="r", offset=offset, shape=shape, order="F")

        def read(key: tuple[slice, ...]) -> np.ndarray:
            return mm[key]

    chunks = [n if i < len(shape) - max(ndims - 2, 0) else 1 for i, n in enumerate(shape)]
    data = RegionArray(shape, dtype.newbyteorder("="), read, path, chunks=chunks)
    spatial = [d for d in guessed if d in "xyz"]
    spacing = _floats(fields, "ElementSpacing", "ElementSize") or []
    origin = _floats(fields, "Offset", "Origin", "Position") or []
    matrix = _floats(fields, "TransformMatrix", "Rotation", "Orientation")
    scale = {d: float(s) for d, s in zip(spatial, spacing)}
    if ndims == 4 and len(spacing) == 4:
        scale["t"] = float(spacing[3])
    translation = {d: float(o) for d, o in zip(spatial, origin)}
    units = {d: "millimeter" for d in spatial}
    orientation = None
    n = len(spatial)
    if n == 3:
        m = np.asarray(matrix if matrix and len(matrix) == 9 else np.eye(3).ravel()).reshape(3, 3)
        orientation = dict(zip(spatial, spatial_orientation(m, "LPS")))
    if dims is not None:
        guessed = checked_dims(dims, len(shape), path, shape)
        scale, translation = keep_dims(scale, guessed) or {}, keep_dims(translation, guessed) or {}
        units, orientation = keep_dims(units, guessed) or {}, keep_dims(orientation, guessed)
    out, out_dims = canonical(as_dask(data), guessed)
    kind = "MetaImage" + (" (compressed)" if compressed else "")
    return InputImage(data=out, dims=out_dims, scale=scale or None,
                      translation=translation or None, units=units or None,
                      orientation=orientation, name=safe_name(stem(path)), kind=kind,
                      paths=[path])
