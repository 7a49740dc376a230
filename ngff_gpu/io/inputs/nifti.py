"""NIfTI-1, NIfTI-2 and Analyze 7.5 inputs (nibabel).

nibabel's ``dataobj`` is an array proxy: an uncompressed ``.nii`` is memory-mapped
and only the slabs a region needs are read; a ``.nii.gz`` is decompressed as it is
read. Array axes ``i, j, k, t, u`` are ``x, y, z, t, c``; the voxel spacing is the
length of each column of the affine (``pixdim`` for t), the origin its translation,
units come from ``xyzt_units`` and the RFC-4 orientation from the affine's axis
codes (NIfTI world space is RAS+). Scaled data (``scl_slope``/``scl_inter``) are
read as float32, as ngff-zarr does.
"""

from __future__ import annotations

import gzip
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

_NIFTI_UNITS = {"msec": "millisecond", "usec": "microsecond", "sec": "second",
                "micron": "micrometer", "mm": "millimeter", "meter": "meter"}
_DIMS = ["x", "y", "z", "t", "c"]


def _load(nib: Any, path: str) -> Any:
    """``nibabel.load``, or by content for a single-file NIfTI under another suffix."""
    try:
        return nib.load(path)
    except nib.filebasedimages.ImageFileError:
        with open(path, "rb") as fh:
            head = fh.read(352)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as fh:
                blob = fh.read()
            head = blob[:352]
        else:
            blob = None
        cls = nib.Nifti2Image if head[4:7] == b"n+2" else nib.Nifti1Image
        if blob is not None:
            return cls.from_bytes(blob)
        return cls.from_file_map({"image": nib.FileHolder(filename=path),
                                  "header": nib.FileHolder(filename=path)})


def open_nifti(path: str, dims: Sequence[str] | None) -> InputImage:
    """Open a NIfTI-1/2 (``.nii``, ``.nii.gz``, ``.hdr/.img``) or Analyze image lazily."""
    try:
        import nibabel as nib
    except ImportError:
        raise InputFormatError(f"reading {path} needs nibabel: pip install 'ngff-gpu[formats]'"
                               ) from None
    try:
        img = _load(nib, path)
        proxy = img.dataobj
        shape = tuple(int(n) for n in img.shape)
        hdr = img.header
        slope, inter = getattr(proxy, "slope", 1.0), getattr(proxy, "inter", 0.0)
        raw_dtype = np.dtype(hdr.get_data_dtype()).newbyteorder("=")
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds on bad headers
        raise InputFormatError(f"cannot read {path} as NIfTI/Analyze: {exc}") from exc
    if len(shape) > 5 or len(shape) < 2:
        raise InputFormatError(f"{path}: a {len(shape)}-D NIfTI image is not supported "
                               "(2 to 5 dimensions)")
    scaled = not (slope in (None, 1.0) and inter in (None, 0.0)) and not (
        np.isnan(slope) if isinstance(slope, float) else False)
    dtype = np.dtype(np.float32) if scaled else raw_dtype
    if dtype.fields is not None:
        raise InputFormatError(f"{path}: structured voxel type {dtype} (RGB NIfTI) is not "
                               "supported")
    chunks = list(shape[:2]) + [1] * (len(shape) - 2)  # voxels are stored x fastest
    data = RegionArray(shape, dtype, lambda key: np.asarray(proxy[key]), path, chunks=chunks)
    guessed = _DIMS[: len(shape)]
    affine = np.asarray(img.affine, dtype=float)
    space_n = min(3, len(shape))
    spacing = np.sqrt((affine[:3, :space_n] ** 2).sum(axis=0))
    scale = {d: float(s) for d, s in zip("xyz", spacing)}
    translation = {d: float(t) for d, t in zip("xyz", affine[:3, 3]) if d in guessed}
    get_units = getattr(hdr, "get_xyzt_units", None)  # Analyze headers have none: mm
    space_unit, time_unit = get_units() if get_units else ("mm", "unknown")
    units = {}
    if _NIFTI_UNITS.get(space_unit):
        units = {d: udunits(_NIFTI_UNITS[space_unit]) or "" for d in "xyz"[:space_n]}
    zooms = hdr.get_zooms()
    if len(shape) >= 4 and len(zooms) >= 4 and zooms[3] > 0:
        scale["t"] = float(zooms[3])
        if _NIFTI_UNITS.get(time_unit):
            units["t"] = _NIFTI_UNITS[time_unit]
    is_nifti2 = isinstance(img, nib.Nifti2Image | nib.Nifti2Pair)
    is_analyze = not is_nifti2 and not isinstance(img, nib.Nifti1Image | nib.Nifti1Pair)
    orientation = None
    if not is_analyze and space_n == 3:
        orientation = dict(zip("xyz", spatial_orientation(affine[:3, :3].T, "RAS")))
    if dims is not None:
        guessed = checked_dims(dims, len(shape), path, shape)
        scale, translation = keep_dims(scale, guessed) or {}, keep_dims(translation, guessed) or {}
        units, orientation = keep_dims(units, guessed) or {}, keep_dims(orientation, guessed)
    out, out_dims = canonical(as_dask(data), guessed)
    kind = "Analyze 7.5" if is_analyze else f"NIfTI-{2 if is_nifti2 else 1}"
    return InputImage(data=out, dims=out_dims, scale=scale or None,
                      translation=translation or None, units=units or None,
                      orientation=orientation, name=safe_name(stem(path)), kind=kind,
                      paths=[path])
