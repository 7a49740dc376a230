"""TIFF inputs: tifffile's Zarr store (only the strips or tiles a region needs),
OME-TIFF and ImageJ axes, physical sizes and units; cuCIM for large tiled TIFFs."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import (
    InputImage,
    canonical,
    check_dims,
    dims_from_letters,
    safe_name,
    stem,
    udunits,
)


def _ome_physical(ome_xml: str, dims: list[str] | None) -> tuple[dict, dict, str | None]:
    import tifffile

    try:
        doc = tifffile.xml2dict(ome_xml)
        image = doc["OME"]["Image"]
        image = image[0] if isinstance(image, list) else image
        pixels = image["Pixels"]
    except (KeyError, IndexError, TypeError, ValueError):
        return {}, {}, None
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
    name = image.get("Name") if isinstance(image, dict) else None
    if name is None or re.fullmatch(r"Image\d*", str(name)):  # tifffile's default name
        return scale, units, None
    return scale, units, safe_name(str(name))


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
    return scale, units


def open_tiff(path: str, dims: Sequence[str] | None) -> InputImage:
    import tifffile
    import zarr

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = series.axes, series.shape
            is_ome, is_imagej = tif.is_ome, tif.is_imagej
            ome_xml = tif.ome_metadata if is_ome else None
            tiled = series.pages[0] is not None and bool(getattr(series.pages[0], "is_tiled", False))
            guessed = dims_from_letters(axes, trusted=is_ome or is_imagej)
            scale, units, name = {}, {}, None
            if is_ome and ome_xml:
                scale, units, name = _ome_physical(ome_xml, guessed)
            elif is_imagej:
                scale, units = _imagej_physical(tif, guessed)
        data = _open_cucim(path, shape) if tiled else None
        if data is None:
            data = zarr.open_array(tifffile.imread(path, aszarr=True, series=0, level=0,
                                                   maxworkers=os.cpu_count() or 1), mode="r")
    except (tifffile.TiffFileError, ValueError, KeyError, IndexError) as exc:
        raise InputFormatError(f"cannot read {path} as TIFF: {exc}") from exc
    kind = "OME-TIFF" if is_ome else "ImageJ TIFF" if is_imagej else "TIFF"
    if dims is not None:
        guessed = check_dims(dims, len(shape), path, shape)
        scale = {d: v for d, v in scale.items() if d in guessed}
        units = {d: v for d, v in units.items() if d in guessed}
    data, out_dims = canonical(data, guessed)
    return InputImage(data=data, dims=out_dims, scale=scale or None, units=units or None,
                      name=name or safe_name(stem(path)), kind=kind, paths=[path])


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


# -- raster images and stacks --------------------------------------------------------------------
