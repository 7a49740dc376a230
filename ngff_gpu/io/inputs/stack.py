"""Stacks of 2-D (or 3-D) image files: several paths, a glob pattern or a directory of slices.

Files are stacked along a new leading axis (``z``; ``t`` when the files are 3-D),
one read per file, in natural sort order (``z2`` before ``z10``). TIFF members
read only the region asked for; other formats are decoded whole, with the last
decoded images cached.
"""

from __future__ import annotations

import glob
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import (
    InputImage,
    canonical,
    checked_dims,
    dims_from_letters,
    is_url,
    natural_key,
    safe_name,
    stem,
)
from ngff_gpu.io.inputs.raster import raster_props, read_raster
from ngff_gpu.io.inputs.sniff import sniff_file
from ngff_gpu.io.inputs.tiff import member_props, read_member_region


def expand(paths: Sequence[str]) -> list[str]:
    """Paths with glob patterns expanded (natural order); missing files are errors."""
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if not is_url(p) and not os.path.exists(p) and glob.has_magic(p):
            matches = sorted(glob.glob(p), key=natural_key)
            if not matches:
                raise InputFormatError(f"no file matches the pattern {p!r}")
            out.extend(matches)
        else:
            out.append(p)
    for p in out:
        if not is_url(p) and not os.path.exists(p):
            raise InputFormatError(f"no such file: {p}")
    return out


def directory_slices(path: str, candidates: list[str]) -> tuple[list[str], str]:
    """The image files of a directory of slices (natural order) and their format."""
    kinds: dict[str, list[str]] = {}
    for f in candidates:
        kind = sniff_file(f)
        if kind is not None:
            kinds.setdefault(kind, []).append(f)
    if not kinds:
        raise InputFormatError(f"{path} holds no image slices")
    if len(kinds) > 1:
        summary = ", ".join(f"{len(v)} {k}" for k, v in sorted(kinds.items()))
        raise InputFormatError(f"{path} mixes image formats ({summary}); give a glob pattern "
                               "that selects one kind")
    kind, files = kinds.popitem()
    return sorted(files, key=natural_key), kind


class FileStack:
    """Files of one shape stacked along a new leading axis, read file by file."""

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
            return read_member_region(self.paths[i], key)
        if i not in self._cache:
            image = read_raster(self.paths[i])
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
            return np.zeros((1,) + self.shape[1:], self.dtype)[(slice(0, 0),) + rest]
        return np.stack(planes)


def _member_props(path: str, fmt: str) -> tuple[tuple[int, ...], np.dtype, str]:
    if fmt == "tiff":
        return member_props(path)
    shape, dtype = raster_props(path)
    return shape, dtype, "YXS" if len(shape) == 3 else "YX"


def open_stack(paths: list[str], dims: Sequence[str] | None, fmt: str | None = None,
               what: str | None = None) -> InputImage:
    """Stack image files (TIFF or PNG/JPEG/BMP/GIF) along a new leading axis.

    Parameters
    ----------
    paths : list of str
        The files, in stacking order.
    dims : sequence of str, optional
        Axis names of the stack as stored (new axis first).
    fmt : str, optional
        The files' format when already known (``"tiff"`` or ``"raster"``).
    what : str, optional
        How to name the stack in messages (a directory, a pattern).
    """
    import dask.array as da

    fmts = {fmt} if fmt else {sniff_file(p) for p in paths}
    if len(fmts) != 1 or not fmts <= {"tiff", "raster"}:
        raise InputFormatError(
            "a stack needs image files of one kind (TIFF, or PNG/JPEG/BMP); got "
            + ", ".join(sorted(str(f) for f in fmts)))
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
        guessed = ["z" if "z" not in member else "t"] + member
    stack = FileStack(paths, fmt, shape, dtype)
    data = da.from_array(stack, chunks=stack.chunks, asarray=False, fancy=False,
                         meta=np.empty((0,) * stack.ndim, dtype),
                         name=f"stack-{abs(hash(tuple(paths)))}")
    if dims is not None:
        guessed = checked_dims(dims, data.ndim, what or f"the stack of {len(paths)} files",
                               data.shape)
    data, out_dims = canonical(data, guessed)
    label = "TIFF" if fmt == "tiff" else os.path.splitext(paths[0])[1].lstrip(".").upper()
    base = stem(what) if what and os.path.isdir(what) else stem(paths[0]).rstrip("0123456789_-")
    return InputImage(data=data, dims=out_dims, name=safe_name(base),
                      kind=f"{label} stack of {len(paths)} files", paths=list(paths))
