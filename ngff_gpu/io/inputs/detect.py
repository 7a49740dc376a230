"""The dispatcher: which reader opens a path, decided by content (see :mod:`.sniff`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.bdv import list_bdv, open_bdv_xml
from ngff_gpu.io.inputs.common import InputImage, is_url, stem
from ngff_gpu.io.inputs.czi import list_czi, open_czi
from ngff_gpu.io.inputs.dicom import open_dicom
from ngff_gpu.io.inputs.hdf5 import layout, open_hdf5
from ngff_gpu.io.inputs.hdf5_chunks import open_h5file
from ngff_gpu.io.inputs.metaimage import open_metaimage
from ngff_gpu.io.inputs.mrc import open_mrc
from ngff_gpu.io.inputs.n5 import open_n5
from ngff_gpu.io.inputs.nifti import open_nifti
from ngff_gpu.io.inputs.npy import open_npy
from ngff_gpu.io.inputs.nrrd import open_nrrd
from ngff_gpu.io.inputs.raster import open_raster
from ngff_gpu.io.inputs.sniff import slice_candidates, sniff, sniff_file
from ngff_gpu.io.inputs.stack import directory_slices, expand, open_stack
from ngff_gpu.io.inputs.tiff import SeriesInfo, open_tiff
from ngff_gpu.io.inputs.tiff import list_series as list_tiff_series
from ngff_gpu.io.inputs.zarr_input import open_ozx, open_zarr
from ngff_gpu.io.remote import is_remote_url, open_url_store

_SINGLE = {"npy": open_npy, "zarr": open_zarr, "ozx": open_ozx, "raster": open_raster,
           "nifti": open_nifti, "analyze": open_nifti, "nrrd": open_nrrd,
           "metaimage": open_metaimage, "mrc": open_mrc}
#: Formats whose files hold several images (series, scenes, setups), chosen by ``series``.
MULTI = ("tiff", "czi", "bdv", "hdf5")


def split_inner(path: str) -> tuple[str, str | None]:
    """``file.h5:/group/data`` -> (``file.h5``, ``/group/data``): a path inside a file or
    N5 container, after the first colon whose left side exists; (path, None) otherwise."""
    if is_url(path) or os.path.exists(path):
        return path, None
    for i, ch in enumerate(path):
        if ch == ":" and i > 1 and os.path.exists(path[:i]):
            return path[:i], path[i + 1:] or None
    return path, None


def open_input(paths: Sequence[str] | str, dims: Sequence[str] | str | None = None,
               series: int | None = None,
               storage_options: dict[str, Any] | None = None) -> InputImage:
    """Open one image file, a directory of slices, a glob pattern, or several files, lazily.

    Parameters
    ----------
    paths : str or sequence of str
        One path (TIFF/OME-TIFF, NIfTI, Analyze, NRRD, MetaImage, DICOM, PNG/JPEG/BMP,
        ``.npy``, Zarr array, OME-Zarr image, ``.ozx``, or a URL of a Zarr store), a
        directory of 2-D slices (or of one DICOM series), a glob pattern, or several
        files (stacked along a new ``z`` axis; ``t`` if the files are 3-D; a DICOM series
        is sorted by slice position).
    dims : str or sequence of str, optional
        Names of the axes *as stored in the file* (``"zyx"``, ``"yxc"``...),
        overriding what the file says; the result is reordered to ``t, c, z, y, x``.
    series : int, optional
        The series of a multi-series TIFF (required when it has several).
    storage_options : dict, optional
        For a URL (``s3://``, ``gs://``, ``https://``): fsspec's options plus
        ``"retry"``, our retry policy (:mod:`ngff_gpu.io.remote`); every read goes
        through it.

    Returns
    -------
    InputImage

    Raises
    ------
    InputFormatError
        For a missing file, an unreadable, truncated or damaged file, an unknown
        format, or stack members that differ.
    DimsError
        When ``dims`` do not name one axis per dimension of the data.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise InputFormatError("no input given")
    if isinstance(dims, str):
        dims = list(dims.replace(",", "").strip().lower())
    inner = None
    if len(paths) == 1:
        first, inner = split_inner(os.fspath(paths[0]))
        paths = [first]
    files = expand([os.fspath(p) for p in paths])
    what = None
    if len(files) == 1 and not is_url(files[0]) and os.path.isdir(files[0]):
        kind = sniff(files[0])
        if kind == "slices":
            what = files[0]
            files, fmt = directory_slices(what, slice_candidates(what))
            return _many(files, dims, fmt, what)
    if len(files) > 1:
        fmts = {sniff_file(f) for f in files}
        if len(fmts) > 1:
            raise InputFormatError("a stack needs files of one format; got "
                                   + ", ".join(sorted(str(f or "unrecognized") for f in fmts)))
        fmt = fmts.pop()
        return _many(files, dims, fmt, " ".join(paths) if len(paths) == 1 else None)
    path = files[0]
    fmt = sniff(path)
    if inner is not None and fmt not in ("hdf5", "n5"):
        raise InputFormatError(f"{path}:{inner}: a path inside a file applies to HDF5 files and "
                               f"N5 containers; {path} is {fmt}")
    if series not in (None, 0) and fmt not in MULTI:  # 0: the only image there is
        raise InputFormatError(f"--series applies to files that hold several images (TIFF, "
                               f"CZI, BigDataViewer); {path} is {fmt}")
    if fmt == "hdf5":
        return open_hdf5(path, dims, inner=inner, series=series)
    if fmt == "n5":
        return open_n5(path, dims, inner=inner)
    if fmt == "czi":
        return open_czi(path, dims, series=series)
    if fmt == "bdv":
        return open_bdv_xml(path, dims, series=series)
    if fmt == "tiff":
        return open_tiff(path, dims, series=series)
    if fmt == "dicom":
        return open_dicom([path], dims)
    if fmt == "zarr" and is_remote_url(path):
        return open_zarr(path, dims, store=open_url_store(path, storage_options, read_only=True))
    return _SINGLE[fmt](path, dims)


def _many(files: list[str], dims: Sequence[str] | None, fmt: str | None,
          what: str | None) -> InputImage:
    if fmt == "dicom":
        return open_dicom(files, dims, what=what)
    if fmt in ("tiff", "raster"):
        return open_stack(files, dims, fmt=fmt, what=what)
    unknown = [f for f in files if sniff_file(f) is None]
    if unknown:
        raise InputFormatError(f"cannot read {unknown[0]}: unrecognized format")
    raise InputFormatError(f"a stack of {fmt} files is not supported (stacks are of TIFF, "
                           "PNG/JPEG/BMP/GIF or DICOM slices)")


def list_series(path: str) -> list[SeriesInfo]:
    """The images of a file that may hold several (TIFF series, CZI scenes,
    BigDataViewer setups of different tiles or angles); one entry for any other file."""
    base, inner = split_inner(path)
    fmt = sniff(base)
    if fmt == "tiff":
        return list_tiff_series(base)
    if fmt == "czi":
        return list_czi(base)
    if fmt == "bdv":
        return list_bdv(base)
    if fmt == "hdf5" and inner is None:
        with open_h5file(base) as f:
            is_bdv = layout(f) == "bdv"
        if is_bdv:
            return list_bdv(base)
    image = open_input([path])
    return [SeriesInfo(0, image.name or stem(path), tuple(int(n) for n in image.data.shape),
                       str(image.data.dtype), "".join(image.dims or []).upper())]
