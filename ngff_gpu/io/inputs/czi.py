"""CZI inputs (Zeiss, through pylibCZIrw: libCZI's reader).

A region is read plane by plane (``T``, ``C``, ``Z`` index) with a region of interest
in ``x, y``: libCZI decodes only the subblocks under it (mosaics are composed).
The read stage's grid is one plane, cut into 4096 x 4096 tiles when larger.
Scenes are images of their own (``--series N``; each at its scene's bounding
rectangle, its origin that rectangle's corner times the pixel size). Pixel
types Gray8/16/32Float and Bgr24/48 (three channels, in RGB order). Metadata:
``Scaling/Items/Distance`` (meter, written in micrometer), channel names and
colors (``DisplaySetting``), the time step (``Dimensions/T/Positions/Interval``).
"""

from __future__ import annotations

import threading
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
    squeeze,
    stem,
)

NEEDS = "pip install 'ngff-gpu[czi]'"
_PIXELS = {"Gray8": (np.uint8, 1), "Gray16": (np.uint16, 1), "Gray32Float": (np.float32, 1),
           "Bgr24": (np.uint8, 3), "Bgr48": (np.uint16, 3)}
_TILE = 4096


def _module() -> Any:
    try:
        from pylibCZIrw import czi as pyczi
    except ImportError:
        raise InputFormatError(f"reading CZI files needs pylibCZIrw: {NEEDS}") from None
    return pyczi


def _open(path: str) -> Any:
    pyczi = _module()
    try:
        return pyczi.CziReader(path)
    except Exception as exc:  # noqa: BLE001 - libCZI raises RuntimeError and others
        raise InputFormatError(f"cannot read {path} as CZI: {' '.join(str(exc).split())}") from exc


def _scenes(reader: Any) -> list[tuple[int | None, Any]]:
    """(scene index or None, bounding rectangle) per image of the file."""
    rects = reader.scenes_bounding_rectangle or {}
    if len(rects) > 1:
        return sorted(rects.items())
    if len(rects) == 1:
        (index, rect), = rects.items()
        return [(index, rect)]
    return [(None, reader.total_bounding_rectangle)]


def list_czi(path: str) -> list[Any]:
    """The scenes of a CZI file (for listings and ``--series``)."""
    from ngff_gpu.io.inputs.tiff import SeriesInfo

    reader = _open(path)
    try:
        box = reader.total_bounding_box
        lead = [int(box.get(k, (0, 1))[1] - box.get(k, (0, 1))[0]) for k in "TCZ"]
        types = {str(np.dtype(_PIXELS[t][0])) if t in _PIXELS else t
                 for t in reader.pixel_types.values()}
        return [SeriesInfo(i, f"scene{s if s is not None else 0}",
                           tuple(lead) + (int(r.h), int(r.w)), "/".join(sorted(types)), "TCZYX")
                for i, (s, r) in enumerate(_scenes(reader))]
    finally:
        reader.close()


def _metadata(reader: Any) -> dict[str, Any]:
    try:
        return reader.metadata["ImageDocument"]["Metadata"]
    except (KeyError, TypeError):
        return {}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _scaling(meta: dict[str, Any]) -> dict[str, float]:
    out = {}
    try:
        items = _as_list(meta["Scaling"]["Items"]["Distance"])
    except (KeyError, TypeError):
        return out
    for item in items:
        axis = str(item.get("@Id", "")).lower()
        try:
            value = float(item.get("Value"))
        except (TypeError, ValueError):
            continue
        if axis in ("x", "y", "z") and value > 0:
            out[axis] = value * 1e6  # meter -> micrometer
    return out


def _channels(meta: dict[str, Any], n: int) -> dict | None:
    try:
        chans = _as_list(meta["DisplaySetting"]["Channels"]["Channel"])
    except (KeyError, TypeError):
        try:
            chans = _as_list(meta["Information"]["Image"]["Dimensions"]["Channels"]["Channel"])
        except (KeyError, TypeError):
            return None
    if len(chans) != n:
        return None
    out = []
    for i, ch in enumerate(chans):
        entry: dict[str, Any] = {"label": str(ch.get("@Name") or ch.get("Name") or f"channel {i}")}
        color = str(ch.get("Color") or "")
        if color.startswith("#") and len(color) in (7, 9):
            entry["color"] = color[-6:].upper()
        out.append(entry)
    return {"channels": out}


def _time_step(meta: dict[str, Any]) -> float | None:
    try:
        inc = meta["Information"]["Image"]["Dimensions"]["T"]["Positions"]["Interval"]["Increment"]
        step = float(inc)
    except (KeyError, TypeError, ValueError):
        return None
    return step if step > 0 else None


def open_czi(path: str, dims: Sequence[str] | None, series: int | None = None) -> InputImage:
    """Open one scene of a CZI file lazily."""
    from ngff_gpu.io.inputs.tiff import series_listing

    reader = _open(path)
    scenes = _scenes(reader)
    if series is None and len(scenes) > 1:
        listing = series_listing(list_czi(path))
        reader.close()
        raise InputFormatError(f"{path} holds {len(scenes)} scenes ({listing}); choose one with "
                               "--series N, or --series all")
    index = series or 0
    if not 0 <= index < len(scenes):
        reader.close()
        raise InputFormatError(f"{path} has {len(scenes)} scenes; --series {index} does not exist")
    scene, rect = scenes[index]
    box = reader.total_bounding_box
    starts = {k: int(box.get(k, (0, 1))[0]) for k in "TCZ"}
    sizes = {k: int(box.get(k, (0, 1))[1] - box.get(k, (0, 1))[0]) for k in "TCZ"}
    types = set(reader.pixel_types.values())
    if len(types) != 1 or next(iter(types)) not in _PIXELS:
        reader.close()
        raise InputFormatError(f"{path}: CZI pixel types {sorted(types)} are not supported "
                               f"(one of {', '.join(_PIXELS)} for every channel)")
    ptype = next(iter(types))
    dtype, samples = _PIXELS[ptype]
    if samples == 3 and sizes["C"] > 1:
        reader.close()
        raise InputFormatError(f"{path}: several channels of {ptype} pixels are not supported")
    n_c = 3 if samples == 3 else sizes["C"]
    shape = (sizes["T"], n_c, sizes["Z"], int(rect.h), int(rect.w))
    lock = threading.Lock()

    def read(key: tuple[slice, ...]) -> np.ndarray:
        (t0, t1), (c0, c1), (z0, z1), (y0, y1), (x0, x1) = (k.indices(n)[:2]
                                                            for k, n in zip(key, shape))
        out = np.empty((t1 - t0, c1 - c0, z1 - z0, y1 - y0, x1 - x0), dtype=dtype)
        if not out.size:
            return out
        roi = (int(rect.x) + x0, int(rect.y) + y0, x1 - x0, y1 - y0)
        channels = [0] if samples == 3 else range(c0, c1)
        for it, t in enumerate(range(t0, t1)):
            for iz, z in enumerate(range(z0, z1)):
                for ic, c in enumerate(channels):
                    plane = {"T": starts["T"] + t, "C": starts["C"] + c, "Z": starts["Z"] + z}
                    with lock:
                        block = reader.read(roi=roi, plane=plane, scene=scene)
                    if samples == 3:  # BGR -> RGB
                        out[it, :, iz] = np.moveaxis(block[..., ::-1], -1, 0)[c0:c1]
                    else:
                        out[it, ic, iz] = block[..., 0]
        return out

    chunks = (1, n_c if samples == 3 else 1, 1, min(shape[3], _TILE), min(shape[4], _TILE))
    data: Any = RegionArray(shape, dtype, read, path, chunks=chunks)
    meta = _metadata(reader)
    scale = _scaling(meta)
    units = {d: "micrometer" for d in scale}
    translation = {}
    if len(scenes) > 1:
        translation = {d: float(v) * scale[d] for d, v in (("x", rect.x), ("y", rect.y))
                       if d in scale}
    step = _time_step(meta)
    if step is not None and sizes["T"] > 1:
        scale["t"], units["t"] = step, "second"
    omero = None if samples == 3 else _channels(meta, n_c)
    guessed = ["t", "c", "z", "y", "x"]
    if dims is not None:
        guessed = checked_dims(dims, 5, path, shape)
        scale, translation = keep_dims(scale, guessed) or {}, keep_dims(translation, guessed) or {}
        units = keep_dims(units, guessed) or {}
        data, guessed = reorder(data, guessed, path)
    else:  # singleton axes the file always has are left out
        data, guessed = squeeze(data, guessed, ("t", "c", "z"), path)
    name = stem(path) if len(scenes) == 1 else f"{stem(path)}_scene{scene}"
    kind = "CZI" + (f" scene {scene}" if len(scenes) > 1 else "")
    return InputImage(data=data, dims=guessed, scale=scale or None,
                      translation=translation or None, units=units or None,
                      name=safe_name(name), omero=omero, kind=kind, paths=[path])
