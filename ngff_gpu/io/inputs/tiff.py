"""TIFF inputs: only the strips or tiles a region needs, decoded on every core.

OME-TIFF and ImageJ axes, physical sizes, units, OME channel names and colors,
ImageJ ``finterval``; several series (``series=``); a file whose pages or tiles
are missing or truncated is refused (naming the first bad page) instead of
being read as a smaller image; cuCIM reads large tiled 2-D TIFFs when installed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import (
    InputImage,
    RegionArray,
    canonical,
    checked_dims,
    dims_from_letters,
    keep_dims,
    safe_name,
    stem,
    udunits,
)
from ngff_gpu.io.inputs.tiff_tiles import TiffTiles


@dataclass
class SeriesInfo:
    """One series of a TIFF file (for listings and ``--series``)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    axes: str


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def quiet_tifffile() -> Iterator[list[str]]:
    """Collect tifffile's log warnings (instead of printing them); yield the messages."""
    log = logging.getLogger("tifffile")
    handler = _Collect()
    old = log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield handler.messages
    finally:
        log.removeHandler(handler)
        log.propagate = old
        for m in handler.messages:
            logging.getLogger("ngff_gpu.inputs").debug("tifffile: %s", m)


def _damage(path: str, tif: Any, series: Any, messages: list[str]) -> str | None:
    """Why ``series`` of ``tif`` is incomplete (first bad page), or None when it is whole."""
    size = os.path.getsize(path)
    bad_offset = [m for m in messages if "invalid page offset" in m or "invalid tag" in m
                  or "corrupted" in m or "truncated" in m]
    if bad_offset:
        return f"page {len(tif.pages)} cannot be read ({bad_offset[0].split('> ')[-1]})"
    failed = [m for m in messages if "failed" in m or "reshape" in m]
    if failed:
        return failed[0].split("> ")[-1]
    for i, page in enumerate(series.pages):
        if page is None:
            return f"page {i} of the series is missing"
        offsets, counts = page.dataoffsets, page.databytecounts
        for k, (o, n) in enumerate(zip(offsets, counts)):
            what = "tile" if getattr(page.keyframe, "is_tiled", False) else "strip"
            if o == 0 or n == 0:
                return f"page {i}: {what} {k} is missing"
            if o + n > size:
                return f"page {i}: {what} {k} lies past the end of the file (truncated)"
    return None


def list_series(path: str) -> list[SeriesInfo]:
    """The series of a TIFF file (index, name, shape, dtype, axes)."""
    import tifffile

    with quiet_tifffile(), tifffile.TiffFile(path) as tif:
        return _series_infos(tif.series)


def _series_infos(series: Sequence[Any]) -> list[SeriesInfo]:
    """A :class:`SeriesInfo` for each of tifffile's ``series`` of one file."""
    return [SeriesInfo(i, _series_name(s, i), tuple(int(n) for n in s.shape), str(s.dtype),
                       s.axes) for i, s in enumerate(series)]


def _series_name(series: Any, index: int) -> str:
    name = getattr(series, "name", None) or ""
    if not name or re.fullmatch(r"(Image|Series)?\s*\d*", str(name)):
        return f"series{index}"
    return safe_name(str(name))


def series_listing(infos: Sequence[SeriesInfo]) -> str:
    """``0: name 4x16x16 uint8 (ZYX); 1: ...`` for messages."""
    return "; ".join(f"{s.index}: {s.name} {'x'.join(map(str, s.shape))} {s.dtype} ({s.axes})"
                     for s in infos)


def _ome_image(ome_xml: str, index: int) -> dict[str, Any] | None:
    import tifffile

    try:
        doc = tifffile.xml2dict(ome_xml)
        images = doc["OME"]["Image"]
        images = images if isinstance(images, list) else [images]
        return images[index]
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _ome_physical(image: dict[str, Any], dims: list[str] | None
                  ) -> tuple[dict, dict, dict | None]:
    pixels = image.get("Pixels", {})
    scale: dict[str, float] = {}
    units: dict[str, str] = {}
    for d in ("x", "y", "z"):
        size = pixels.get(f"PhysicalSize{d.upper()}")
        if size is not None and (dims is None or d in dims):
            scale[d] = float(size)
            unit = udunits(pixels.get(f"PhysicalSize{d.upper()}Unit", "µm"))
            if unit:
                units[d] = unit
    step = pixels.get("TimeIncrement")
    if step is not None and dims is not None and "t" in dims:
        scale["t"] = float(step)
        unit = udunits(pixels.get("TimeIncrementUnit", "s"))
        if unit:
            units["t"] = unit
    return scale, units, _ome_channels(pixels)


def _ome_channels(pixels: dict[str, Any]) -> dict | None:
    """An ``omero`` block with OME channel names and colors (windows are computed later)."""
    channels = pixels.get("Channel")
    if channels is None:
        return None
    channels = channels if isinstance(channels, list) else [channels]
    out = []
    for i, ch in enumerate(channels):
        if not isinstance(ch, dict):
            return None
        entry: dict[str, Any] = {"label": str(ch.get("Name") or f"channel {i}")}
        color = ch.get("Color")
        if color is not None:
            try:
                entry["color"] = f"{(int(color) & 0xFFFFFFFF) >> 8:06X}"
            except (TypeError, ValueError):
                pass
        out.append(entry)
    if all(e["label"] == f"channel {i}" and "color" not in e for i, e in enumerate(out)):
        return None
    return {"channels": out}


def _imagej_physical(tif: Any, dims: list[str] | None) -> tuple[dict, dict]:
    meta = tif.imagej_metadata or {}
    page = tif.pages[0]
    scale: dict[str, float] = {}
    for d, tag in (("x", "XResolution"), ("y", "YResolution")):
        res = page.tags.get(tag)
        if res is not None and res.value[0] and (dims is None or d in dims):
            scale[d] = float(res.value[1]) / float(res.value[0])
    if "spacing" in meta and dims is not None and "z" in dims:
        scale["z"] = float(meta["spacing"])
    unit = udunits(meta.get("unit"))
    units = {d: unit for d in scale} if unit else {}
    if meta.get("finterval") and dims is not None and "t" in dims:
        scale["t"] = float(meta["finterval"])
        units["t"] = udunits(meta.get("tunit") or "s") or "second"
    return scale, units


def guarded(array: Any, path: str) -> RegionArray:
    """``array`` (tifffile's Zarr array) read with tifffile's log quiet and errors naming ``path``."""

    def read(key: tuple[slice, ...]) -> np.ndarray:
        with quiet_tifffile():
            return np.asarray(array[key])

    return RegionArray(array.shape, array.dtype, read, path, chunks=array.chunks)


def open_tiff(path: str, dims: Sequence[str] | None, series: int | None = None) -> InputImage:
    """Open one series of a TIFF file lazily.

    Parameters
    ----------
    path : str
        The file.
    dims : sequence of str, optional
        Axis names as stored, overriding the file's.
    series : int, optional
        Which series; required (an error listing them) when the file has several.

    Raises
    ------
    InputFormatError
        Unreadable, truncated or damaged file; several series and no ``series``.
    """
    import tifffile
    import zarr

    try:
        with quiet_tifffile() as messages, tifffile.TiffFile(path) as tif:
            all_series = tif.series
            if not all_series:
                why = messages[0].split("> ")[-1] if messages else "no image in it"
                raise InputFormatError(f"cannot read {path} as TIFF: {why}")
            if series is None and len(all_series) > 1:
                infos = _series_infos(all_series)
                raise InputFormatError(
                    f"{path} holds {len(all_series)} series ({series_listing(infos)}); choose "
                    "one with --series N, or --series all")
            index = series or 0
            if not 0 <= index < len(all_series):
                raise InputFormatError(f"{path} has {len(all_series)} series; --series {index} "
                                       "does not exist")
            s = all_series[index]
            axes, shape = s.axes, tuple(int(n) for n in s.shape)
            why = _damage(path, tif, s, messages)
            if why:
                raise InputFormatError(f"{path} is truncated or damaged: {why}")
            is_ome, is_imagej = tif.is_ome, tif.is_imagej
            tiled = s.pages[0] is not None and bool(getattr(s.pages[0], "is_tiled", False))
            direct = TiffTiles.supports(tif, s)
            guessed = dims_from_letters(axes, trusted=is_ome or is_imagej)
            scale, units, omero, name = {}, {}, None, None
            if is_ome and tif.ome_metadata:
                image = _ome_image(tif.ome_metadata, index)
                if image is not None:
                    scale, units, omero = _ome_physical(image, guessed)
            elif is_imagej:
                scale, units = _imagej_physical(tif, guessed)
            if len(all_series) > 1 or is_ome:
                candidate = _series_name(s, index)
                name = None if candidate.startswith("series") and len(all_series) == 1 else candidate
        data = _open_cucim(path, shape) if tiled and len(all_series) == 1 else None
        if data is None and direct:
            # tiles/strips read and decoded on every core by our own reader; the read
            # stage asks for each once per pass; a decode error names the file
            tiles = TiffTiles(path, index)
            data = RegionArray(tiles.shape, tiles.dtype, tiles.read, path, chunks=tiles.chunks,
                               read_into=tiles.read_into)
        if data is None:
            # any other layout: tifffile's zarr store (the read stage still decodes each
            # tile/strip once); a decode error is named by the CLI (one line, log quiet)
            store = tifffile.imread(path, aszarr=True, series=index, level=0,
                                    maxworkers=os.cpu_count() or 1)
            data = zarr.open_array(store, mode="r")
    except (tifffile.TiffFileError, ValueError, KeyError, IndexError, struct_error()) as exc:
        if isinstance(exc, InputFormatError):
            raise
        raise InputFormatError(f"cannot read {path} as TIFF: {exc}") from exc
    kind = "OME-TIFF" if is_ome else "ImageJ TIFF" if is_imagej else "TIFF"
    if len(all_series) > 1:
        kind += f" series {index}"
    if dims is not None:
        guessed = checked_dims(dims, len(shape), path, shape)
        scale, units = keep_dims(scale, guessed) or {}, keep_dims(units, guessed) or {}
    if omero is not None and (guessed is None or "c" not in guessed
                              or shape[guessed.index("c")] != len(omero["channels"])):
        omero = None
    data, out_dims = canonical(data, guessed)
    return InputImage(data=data, dims=out_dims, scale=scale or None, units=units or None,
                      name=name or safe_name(stem(path)), omero=omero, kind=kind, paths=[path])


def struct_error() -> type[Exception]:
    """``struct.error`` (raised by tifffile on some damaged headers)."""
    import struct

    return struct.error


def member_props(path: str) -> tuple[tuple[int, ...], np.dtype, str]:
    """Shape, dtype and axes of a TIFF stack member (damaged files refused).

    A member must hold one series: which series of a multi-series file belongs in a
    stack is not a choice to make silently.
    """
    import tifffile

    try:
        with quiet_tifffile() as messages, tifffile.TiffFile(path) as tif:
            if len(tif.series) > 1:
                infos = _series_infos(tif.series)
                raise InputFormatError(
                    f"{path} holds {len(tif.series)} series ({series_listing(infos)}); a stack "
                    "member must hold one: convert that file alone with --series N")
            s = tif.series[0]
            why = _damage(path, tif, s, messages)
            if why:
                raise InputFormatError(f"{path} is truncated or damaged: {why}")
            return tuple(int(n) for n in s.shape), np.dtype(s.dtype), s.axes
    except (tifffile.TiffFileError, ValueError, IndexError, struct_error()) as exc:
        if isinstance(exc, InputFormatError):
            raise
        raise InputFormatError(f"cannot read {path} as TIFF: {exc}") from exc


def read_member_region(path: str, key: tuple[slice, ...]) -> np.ndarray:
    """A region of series 0 of one TIFF stack member."""
    import tifffile
    import zarr

    with tifffile.imread(path, aszarr=True, series=0, level=0) as store:
        return guarded(zarr.open_array(store, mode="r"), path)[key]


def _open_cucim(path: str, shape: Sequence[int]) -> Any:
    """A lazy cuCIM reader for a tiled 2-D TIFF (RGB or grey), or None."""
    try:
        from cucim import CuImage
    except ImportError:
        return None
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[-1] not in (3, 4)):
        return None
    try:
        img = CuImage(path)
        return _CuCIMArray(img, tuple(int(n) for n in shape))
    except Exception:  # noqa: BLE001 - any cuCIM failure falls back to tifffile
        return None


class _CuCIMArray:
    """Region reads of level 0 through ``CuImage.read_region`` (host memory)."""

    def __init__(self, img: Any, shape: tuple[int, ...]) -> None:
        self.img, self.shape, self.ndim = img, shape, len(shape)
        self.dtype = np.dtype(np.uint8)
        self.chunks = (min(shape[0], 1024), min(shape[1], 1024)) + shape[2:]

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        (y0, y1, _), (x0, x1, _) = (k.indices(n) for k, n in zip(key[:2], self.shape[:2]))
        region = np.asarray(self.img.read_region((x0, y0), (x1 - x0, y1 - y0), level=0))
        region = region.reshape(y1 - y0, x1 - x0, -1)[..., : (self.shape[2] if self.ndim == 3 else 1)]
        region = region if self.ndim == 3 else region[..., 0]
        return region[(slice(None), slice(None)) + tuple(key[2:])]
