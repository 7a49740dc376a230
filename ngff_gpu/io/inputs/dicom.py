"""DICOM inputs (pydicom): one file (multi-frame too), or a series given as a directory or glob.

Headers are read without pixel data; slices are sorted by their position
(``ImagePositionPatient``) along the slice normal (the cross product of the
``ImageOrientationPatient`` row and column cosines), and each slice (frame) is
decoded only when a region needs it. Spacing: ``PixelSpacing`` (rows = y,
columns = x) and the distance between consecutive slice positions (z); origin:
the first slice's position; units millimeter; RFC-4 orientation from the
direction cosines in DICOM's LPS patient space. ``RescaleSlope``/``Intercept``
are applied (integer result types when they are integers, float32 otherwise).
Compressed transfer syntaxes are decoded by pydicom's plug-ins (pylibjpeg,
pillow...) when installed; otherwise the error names the syntax and what to install.
"""

from __future__ import annotations

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


def _import() -> Any:
    try:
        import pydicom
    except ImportError:
        raise InputFormatError("reading DICOM needs pydicom: pip install 'ngff-gpu[formats]'"
                               ) from None
    return pydicom


def _header(path: str) -> Any:
    pydicom = _import()
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds
        raise InputFormatError(f"cannot read {path} as DICOM: {exc}") from exc


def _check_syntax(ds: Any, path: str) -> None:
    import pydicom.pixels

    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is None or not ts.is_compressed:
        return
    try:
        decoder = pydicom.pixels.get_decoder(ts)
    except NotImplementedError:
        raise InputFormatError(f"{path}: DICOM transfer syntax {ts.name} ({ts}) cannot be "
                               "decoded by pydicom") from None
    if not decoder.is_available:
        need = "; ".join(decoder.missing_dependencies) or "a decoder plug-in"
        raise InputFormatError(f"{path}: DICOM transfer syntax {ts.name} ({ts}) needs {need}")


def _stored_dtype(ds: Any, path: str) -> np.dtype:
    bits = int(getattr(ds, "BitsAllocated", 0))
    signed = int(getattr(ds, "PixelRepresentation", 0)) == 1
    if bits not in (8, 16, 32):
        raise InputFormatError(f"{path}: DICOM BitsAllocated {bits} is not supported")
    return np.dtype(f"{'i' if signed else 'u'}{bits // 8}")


def _result_dtype(stored: np.dtype, rescales: set[tuple[float, float]], bits: int) -> np.dtype:
    if rescales <= {(1.0, 0.0)}:
        return stored
    if all(float(s).is_integer() and float(i).is_integer() for s, i in rescales):
        lo = -(2 ** (bits - 1)) if stored.kind == "i" else 0
        hi = 2 ** (bits - 1) - 1 if stored.kind == "i" else 2**bits - 1
        ends = [v * s + i for s, i in rescales for v in (lo, hi)]
        for t in (np.int16, np.int32):
            if np.iinfo(t).min <= min(ends) and max(ends) <= np.iinfo(t).max:
                return np.dtype(t)
    return np.dtype(np.float32)


def _rescale(ds: Any) -> tuple[float, float]:
    return float(getattr(ds, "RescaleSlope", 1) or 1), float(getattr(ds, "RescaleIntercept", 0) or 0)


def _frame_reader(path: str, index: int | None, rescale: tuple[float, float],
                  dtype: np.dtype) -> Any:
    def read() -> np.ndarray:
        import pydicom.pixels

        arr = pydicom.pixels.pixel_array(path, index=index)
        slope, inter = rescale
        if (slope, inter) != (1.0, 0.0):
            arr = arr.astype(np.float64) * slope + inter
        return arr.astype(dtype, copy=False)

    return read


def _series_array(readers: list[Any], plane: tuple[int, ...], dtype: np.dtype,
                  path: str) -> RegionArray:
    shape = (len(readers),) + plane

    def read(key: tuple[slice, ...]) -> np.ndarray:
        first, rest = key[0], tuple(key[1:])
        idx = range(*first.indices(len(readers)))
        if not idx:
            return np.zeros((0,) + plane, dtype)[(slice(None),) + rest]
        planes = []
        for i in idx:
            p = readers[i]()
            if p.shape != plane:
                raise InputFormatError(f"{path}: slice {i} has shape {p.shape}, expected {plane}")
            planes.append(p[rest])
        return np.stack(planes)

    return RegionArray(shape, dtype, read, path, chunks=(1,) + plane)


def _geometry(ds: Any) -> tuple[np.ndarray | None, np.ndarray | None, list[float] | None]:
    """Row/column cosines (2x3), position (3,) and pixel spacing [row, col] of one slice."""
    iop = getattr(ds, "ImageOrientationPatient", None)
    ipp = getattr(ds, "ImagePositionPatient", None)
    ps = getattr(ds, "PixelSpacing", None)
    shared = getattr(ds, "SharedFunctionalGroupsSequence", None)
    if shared:
        grp = shared[0]
        if iop is None and "PlaneOrientationSequence" in grp:
            iop = grp.PlaneOrientationSequence[0].ImageOrientationPatient
        if ps is None and "PixelMeasuresSequence" in grp:
            ps = grp.PixelMeasuresSequence[0].PixelSpacing
    cos = np.asarray([float(v) for v in iop], dtype=float).reshape(2, 3) if iop else None
    pos = np.asarray([float(v) for v in ipp], dtype=float) if ipp else None
    return cos, pos, [float(v) for v in ps] if ps else None


def _z_spacing(positions: list[np.ndarray], normal: np.ndarray | None, ds: Any,
               path: str) -> float:
    if len(positions) > 1 and normal is not None and all(p is not None for p in positions):
        d = np.diff([float(np.dot(p, normal)) for p in positions])
        if np.any(np.abs(d) < 1e-6):
            raise InputFormatError(f"{path}: two slices share a position (several series, echoes "
                                   "or time points?); give the files of one volume")
        step = float(np.median(d))
        if np.max(np.abs(d - step)) > 0.01 * abs(step) + 1e-4:
            raise InputFormatError(f"{path}: slices are not evenly spaced (steps from "
                                   f"{d.min():g} to {d.max():g} mm); missing slices?")
        return abs(step)
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        if getattr(ds, key, None):
            return float(getattr(ds, key))
    return 1.0


def open_dicom(paths: Sequence[str], dims: Sequence[str] | None,
               what: str | None = None) -> InputImage:
    """Open one DICOM file or a series (several files of one ``SeriesInstanceUID``).

    Raises
    ------
    InputFormatError
        Unreadable headers, several series, uneven or duplicate slice positions,
        slices of different sizes, or a transfer syntax no installed plug-in decodes.
    """
    what = what or paths[0]
    headers = []
    for p in paths:
        ds = _header(p)
        if len(paths) > 1 and "Rows" not in ds:
            continue  # DICOMDIR, structured reports...: no image
        headers.append((p, ds))
    if not headers:
        raise InputFormatError(f"{what}: no DICOM image among {len(paths)} files")
    series: dict[str, list] = {}
    for p, ds in headers:
        series.setdefault(str(getattr(ds, "SeriesInstanceUID", "")), []).append((p, ds))
    if len(series) > 1:
        listing = "; ".join(f"{uid or '?'} ({len(v)} files, "
                            f"{getattr(v[0][1], 'SeriesDescription', '') or 'no description'})"
                            for uid, v in series.items())
        raise InputFormatError(f"{what} holds {len(series)} DICOM series ({listing}); give the "
                               "files of one series")
    ds0 = headers[0][1]
    for p, ds in headers:
        if "Rows" not in ds:
            raise InputFormatError(f"{p} holds no image (no Rows)")
        _check_syntax(ds, p)
    stored = _stored_dtype(ds0, headers[0][0])
    bits = int(getattr(ds0, "BitsStored", 0) or ds0.BitsAllocated)
    samples = int(getattr(ds0, "SamplesPerPixel", 1))
    plane = (int(ds0.Rows), int(ds0.Columns)) + ((samples,) if samples > 1 else ())
    frames = int(getattr(ds0, "NumberOfFrames", 1) or 1)
    cos, _, spacing = _geometry(ds0)
    normal = np.cross(cos[0], cos[1]) if cos is not None else None
    if len(headers) == 1 and frames > 1:
        p = headers[0][0]
        per_frame = getattr(ds0, "PerFrameFunctionalGroupsSequence", None) or []
        positions = []
        for f in per_frame:
            seq = getattr(f, "PlanePositionSequence", None)
            positions.append(np.asarray([float(v) for v in seq[0].ImagePositionPatient])
                             if seq else None)
        rescale = _rescale(ds0)
        dtype = _result_dtype(stored, {rescale}, bits)
        readers = [_frame_reader(p, i, rescale, dtype) for i in range(frames)]
        z_step = _z_spacing(positions if len(positions) == frames else [], normal, ds0, p)
        origin = positions[0] if positions and positions[0] is not None else _geometry(ds0)[1]
        kind = f"DICOM multi-frame ({frames} frames)"
    else:
        for p, ds in headers[1:]:
            if (int(ds.Rows), int(ds.Columns)) != plane[:2] or \
                    int(getattr(ds, "SamplesPerPixel", 1)) != samples:
                raise InputFormatError(f"{p}: slice size {ds.Rows}x{ds.Columns} differs from "
                                       f"{headers[0][0]} ({plane[0]}x{plane[1]})")
            if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
                raise InputFormatError(f"{p} is a multi-frame file inside a series; give it alone")
        if normal is not None and all(_geometry(ds)[1] is not None for _, ds in headers):
            headers.sort(key=lambda h: float(np.dot(_geometry(h[1])[1], normal)))
        else:
            headers.sort(key=lambda h: int(getattr(h[1], "InstanceNumber", 0) or 0))
        positions = [_geometry(ds)[1] for _, ds in headers]
        rescales = {_rescale(ds) for _, ds in headers}
        dtype = _result_dtype(stored, rescales, bits)
        readers = [_frame_reader(p, None, _rescale(ds), dtype) for p, ds in headers]
        z_step = _z_spacing(positions, normal, ds0, what) if len(headers) > 1 else None
        origin = positions[0]
        kind = f"DICOM series of {len(headers)} files" if len(headers) > 1 else "DICOM"
    volume = len(readers) > 1
    data: Any = _series_array(readers, plane, dtype, what)
    guessed = ["z", "y", "x"] + (["c"] if samples > 1 else [])
    if not volume:
        data = as_dask(data)[0]
        guessed = guessed[1:]
    scale: dict[str, float] = {}
    if spacing:
        scale.update(y=spacing[0], x=spacing[1])
    if volume and z_step:
        scale["z"] = z_step
    spatial = [d for d in guessed if d in "zyx"]
    translation = ({d: float(origin[i]) for i, d in enumerate("xyz") if d in spatial}
                   if origin is not None else {})
    units = {d: "millimeter" for d in spatial}
    orientation = None
    if cos is not None and volume:
        orientation = dict(zip("xyz", spatial_orientation([cos[0], cos[1], normal], "LPS")))
    if dims is not None:
        guessed = checked_dims(dims, len(guessed), what, data.shape)
        scale, translation = keep_dims(scale, guessed) or {}, keep_dims(translation, guessed) or {}
        units, orientation = keep_dims(units, guessed) or {}, keep_dims(orientation, guessed)
    out, out_dims = canonical(as_dask(data), guessed)
    name = stem(what)
    return InputImage(data=out, dims=out_dims, scale=scale or None,
                      translation=translation or None, units=units or None,
                      orientation=orientation, name=safe_name(str(name)), kind=kind,
                      paths=[p for p, _ in headers])
