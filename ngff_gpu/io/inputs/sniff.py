"""Which format a file or directory holds, by its content (suffixes only where content cannot tell).

=============  =================================================================
format         recognised by
=============  =================================================================
``tiff``       ``II*\\0``, ``MM\\0*`` (and BigTIFF ``II+``/``MM\\0+``)
``dicom``      ``DICM`` at byte 128 (suffix ``.dcm`` for files without preamble)
``nifti``      ``n+1``/``ni1`` at byte 344 (NIfTI-1), ``n+2``/``ni2`` at byte 4
               (NIfTI-2); the same inside a gzip stream (``.nii.gz``)
``analyze``    a 348-byte header (``sizeof_hdr`` = 348) without NIfTI magic
``nrrd``       ``NRRD000`` at the start
``metaimage``  a text header of ``Key = value`` lines (``ObjectType``, ``NDims``...)
``raster``     PNG, JPEG, BMP, GIF signatures
``npy``        ``\\x93NUMPY``
``ozx``        a zip file (``PK\\3\\4``) named ``*.ozx`` or holding ``zarr.json``
``hdf5``       ``\\x89HDF\\r\\n\\x1a\\n`` at byte 0 or 512 (HDF5, Imaris ``.ims``, BigDataViewer)
``bdv``        an XML file whose root is ``<SpimData`` (BigDataViewer)
``czi``        ``ZISRAWFILE``
``mrc``        ``MAP`` at byte 208 (MRC2014); an MRC suffix with a valid older header
``zarr``       a directory with ``zarr.json``, ``.zgroup`` or ``.zarray``; a URL
``n5``         a directory with an N5 ``attributes.json`` (container or dataset)
=============  =================================================================
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import zipfile

from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import is_url
from ngff_gpu.io.inputs.mrc import is_mrc
from ngff_gpu.io.inputs.n5 import attributes, is_dataset

ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray")
_META_KEY = re.compile(rb"^\s*(ObjectType|NDims|DimSize|ElementType|ElementDataFile|Comment|"
                       rb"BinaryData|BinaryDataByteOrderMSB|ElementSpacing|HeaderSize)\s*=")
SUPPORTED = ("TIFF/OME-TIFF, NIfTI, Analyze, NRRD, MetaImage, DICOM, PNG, JPEG, BMP, GIF, "
             ".npy, Zarr arrays, OME-Zarr images, .ozx, HDF5, Imaris, BigDataViewer, N5, "
             "MRC and CZI")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _nifti_magic(head: bytes) -> str | None:
    if len(head) >= 348 and head[344:347] in (b"n+1", b"ni1"):
        return "nifti"
    if len(head) >= 8 and head[4:7] in (b"n+2", b"ni2"):
        return "nifti"
    if len(head) >= 348 and (struct.unpack("<i", head[:4])[0] == 348
                             or struct.unpack(">i", head[:4])[0] == 348):
        return "analyze"
    return None


def sniff_file(path: str) -> str | None:
    """The format of the file at ``path`` (see the module table), or None if unknown."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(544)
    except OSError as exc:
        raise InputFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    low = path.lower()
    if head[128:132] == b"DICM":  # before TIFF: a DICOM preamble may hold a TIFF header
        return "dicom"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:7] == b"NRRD000":
        return "nrrd"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:8] == HDF5_MAGIC or head[512:520] == HDF5_MAGIC:
        return "hdf5"
    if head[:10] == b"ZISRAWFILE":
        return "czi"
    if head.lstrip()[:1] == b"<" and b"<SpimData" in head:
        return "bdv"
    if is_mrc(head, path):
        return "mrc"
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff" or head[:2] == b"BM" \
            or head[:6] in (b"GIF87a", b"GIF89a"):
        return "raster"
    if head[:4] == b"PK\x03\x04":
        if low.endswith(".ozx"):
            return "ozx"
        try:
            with zipfile.ZipFile(path) as zf:
                if "zarr.json" in zf.namelist():
                    return "ozx"
        except (zipfile.BadZipFile, OSError):
            return None
        return None
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                inner = fh.read(544)
        except (OSError, EOFError):
            return None
        return "nifti" if _nifti_magic(inner) == "nifti" else None
    kind = _nifti_magic(head)
    if kind == "nifti" or (kind == "analyze" and low.endswith((".hdr", ".img"))):
        return kind
    if _META_KEY.match(head.split(b"\n", 1)[0]):
        return "metaimage"
    if low.endswith(".dcm"):
        return "dicom"
    return None


def sniff_dir(path: str) -> str:
    """``zarr`` (a Zarr store), ``n5`` (an N5 container or dataset) or ``slices`` (a
    directory of image files); raise otherwise."""
    if any(os.path.exists(os.path.join(path, m)) for m in ZARR_MARKERS):
        return "zarr"
    attrs = attributes(path)
    if attrs is not None and ("n5" in attrs or is_dataset(attrs)):
        return "n5"
    kinds = {sniff_file(f) for f in slice_candidates(path)}
    kinds.discard(None)
    if kinds:
        return "slices"
    raise InputFormatError(
        f"{path} is a directory that is neither a Zarr store (no zarr.json, .zgroup or .zarray), "
        f"an N5 container (no attributes.json) nor a directory of image slices (no TIFF, PNG, "
        f"JPEG, BMP or DICOM files in it)")


def slice_candidates(path: str) -> list[str]:
    """The regular, non-hidden files directly in the directory ``path``."""
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise InputFormatError(f"cannot list {path}: {exc.strerror or exc}") from exc
    return [os.path.join(path, n) for n in names
            if not n.startswith(".") and os.path.isfile(os.path.join(path, n))]


def sniff(path: str) -> str:
    """The format of ``path`` (file, directory or URL); raise for anything unreadable."""
    if is_url(path):
        return "ozx" if path.lower().rstrip("/").endswith(".ozx") else "zarr"
    if os.path.isdir(path):
        return sniff_dir(path)
    kind = sniff_file(path)
    if kind is None:
        raise InputFormatError(f"cannot read {path}: unrecognized format (supported: {SUPPORTED})")
    return kind
