"""MRC/MRCS inputs (mrcfile): EM maps, tomograms and image stacks, memory-mapped.

``mrcfile.mmap`` maps the data block (header checks included: a file whose data
block is shorter than the header says is refused); a region is a slice of the
map, read plane by plane on the read stage's grid (whole ``y, x`` planes, grouped
to about 1 MiB). Axes: ``y, x`` for an image, ``z, y, x`` for a volume or an image
stack (``.mrcs``), ``t, z, y, x`` for a volume stack. Voxel size from the header
(``mrcfile``'s ``voxel_size``, in angstrom); the origin from the header's
``origin`` or, when that is zero, ``nxstart``/``nystart``/``nzstart`` times the
voxel size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import (
    InputImage,
    RegionArray,
    checked_dims,
    keep_dims,
    reorder,
    safe_name,
    stem,
)

NEEDS = "pip install 'ngff-gpu[mrc]'"
#: Decoded bytes a grid cell of the read stage should hold at least (planes grouped).
_CELL_BYTES = 1 << 20


def is_mrc(head: bytes, path: str) -> bool:
    """True for an MRC2014 header (``MAP`` at byte 208) or an MRC suffix with a plausible
    header (older files have no ``MAP`` stamp)."""
    if len(head) < 224:
        return False
    if head[208:211] == b"MAP":
        return True
    if not path.lower().endswith((".mrc", ".mrcs", ".map", ".rec", ".st", ".ali")):
        return False
    dims = np.frombuffer(head[:16], dtype="<i4")
    return bool(np.all(dims[:3] > 0) and dims[3] in (0, 1, 2, 4, 6, 12))


def _check_size(mrcfile: Any, path: str) -> None:
    """Refuse a file shorter than its header says (before mapping it)."""
    import os

    from mrcfile.utils import data_dtype_from_header

    with mrcfile.open(path, mode="r", header_only=True, permissive=False) as m:
        h = m.header
        count = int(h.nx) * int(h.ny) * int(h.nz)
        packed = int(h.mode) == 101  # 4-bit: two values a byte
        need = 1024 + int(h.nsymbt) + (-(-count // 2) if packed else
                                       count * data_dtype_from_header(h).itemsize)
    size = os.path.getsize(path)
    if size < need:
        raise InputFormatError(f"cannot read {path} as MRC: truncated (the file has {size} bytes, "
                               f"its header needs {need})")


def open_mrc(path: str, dims: Sequence[str] | None) -> InputImage:
    """Open an MRC/MRCS file lazily (memory-mapped)."""
    try:
        import mrcfile
    except ImportError:
        raise InputFormatError(f"reading MRC files needs mrcfile: {NEEDS}") from None
    try:
        _check_size(mrcfile, path)
        mrc = mrcfile.mmap(path, mode="r", permissive=False)
    except InputFormatError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        detail = " ".join(str(exc).split())
        raise InputFormatError(f"cannot read {path} as MRC: {detail}") from exc
    data = mrc.data
    if data is None:
        raise InputFormatError(f"{path}: MRC file without data")
    if data.dtype.kind == "c":
        raise InputFormatError(f"{path}: complex MRC data ({data.dtype}) is not supported")
    shape = tuple(int(n) for n in data.shape)
    dtype = np.dtype(data.dtype).newbyteorder("=")
    stack = bool(mrc.is_image_stack()) if hasattr(mrc, "is_image_stack") else False
    guessed = {2: ["y", "x"], 3: ["z", "y", "x"], 4: ["t", "z", "y", "x"]}.get(len(shape))
    if guessed is None:
        raise InputFormatError(f"{path}: a {len(shape)}-D MRC data block is not supported")
    voxel = mrc.voxel_size
    header = mrc.header
    scale, translation, units = {}, {}, {}
    for d in ("x", "y", "z"):
        if d not in guessed:
            continue
        size = float(getattr(voxel, d))
        if size > 0:
            scale[d], units[d] = size, "angstrom"
        origin = float(getattr(header.origin, d))
        start = int(getattr(header, f"n{d}start"))
        if origin:
            translation[d] = origin
        elif start and size > 0:
            translation[d] = start * size
    plane = int(np.prod(shape[-2:])) * dtype.itemsize
    group = max(1, min(shape[-3] if len(shape) > 2 else 1, _CELL_BYTES // max(plane, 1)))
    chunks = [1] * (len(shape) - 3) + ([group] if len(shape) > 2 else []) + list(shape[-2:])

    def read(key: tuple[slice, ...], _mrc: Any = mrc) -> np.ndarray:
        return np.array(_mrc.data[key], dtype=dtype)

    region: Any = RegionArray(shape, dtype, read, path, chunks=chunks)
    if dims is not None:
        guessed = checked_dims(dims, len(shape), path, shape)
        scale, translation = keep_dims(scale, guessed) or {}, keep_dims(translation, guessed) or {}
        units = keep_dims(units, guessed) or {}
    region, out_dims = reorder(region, guessed, path)
    kind = "MRC image stack" if stack else "MRC"
    return InputImage(data=region, dims=out_dims, scale=scale or None,
                      translation=translation or None, units=units or None,
                      name=safe_name(stem(path)), kind=kind, paths=[path])
