"""N5 inputs (zarr-n5): a dataset of an N5 container, read chunk by chunk through zarr.

``zarr_n5.N5WrapperStore`` presents an N5 container as a Zarr v3 hierarchy, so
zarr-python reads (and decodes, in its threads) only the blocks a region needs.
N5 lists dimensions fastest first (``x, y, z``); they are reversed into OME-NGFF
order region by region. A path names the dataset: the dataset's directory, or
``container.n5:/path/to/dataset``; a container holding one dataset opens it, one
holding several is an error listing them.

Metadata, as Fiji's N5 plugins and n5-viewer write it: ``axes`` (names, N5 order),
``resolution`` with ``unit`` or ``units``, ``pixelResolution`` (``dimensions``,
``unit``), ``offset``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from ngff_gpu.dims import default_dims
from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import (
    InputImage,
    checked_dims,
    keep_dims,
    permuted,
    reorder,
    safe_name,
    stem,
    udunits,
)

NEEDS = "pip install 'ngff-gpu[n5]'"


def attributes(path: str) -> dict[str, Any] | None:
    """The ``attributes.json`` of an N5 node directory, or None."""
    try:
        with open(os.path.join(path, "attributes.json"), encoding="utf-8") as fh:
            value = json.load(fh)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def is_dataset(attrs: dict[str, Any] | None) -> bool:
    """True for the attributes of an N5 dataset (``dimensions``, ``dataType``)."""
    return bool(attrs) and "dimensions" in attrs and "dataType" in attrs  # type: ignore[operator]


def container_root(path: str) -> str:
    """The N5 container holding the node directory ``path`` (the top ``n5`` node or,
    failing that, the outermost directory with ``attributes.json``)."""
    path = os.path.abspath(path)
    top, cur = path, path
    while True:
        attrs = attributes(cur)
        if attrs is None and cur != path:
            return top
        top = cur
        if attrs is not None and "n5" in attrs:
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return top
        cur = parent


def datasets(root: str) -> list[tuple[str, tuple[int, ...], str]]:
    """Every dataset under the N5 directory ``root``: (path, shape in N5 order, type)."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        attrs = attributes(dirpath)
        if is_dataset(attrs):
            rel = "/" + os.path.relpath(dirpath, root).replace(os.sep, "/").strip("./")
            found.append((rel, tuple(int(n) for n in attrs["dimensions"]), str(attrs["dataType"])))
            dirnames[:] = []
    return found


def open_n5_array(root: str, inner: str) -> Any:
    """The zarr array of dataset ``inner`` of the N5 container ``root`` (N5 axis order)."""
    try:
        import zarr
        from zarr.storage import LocalStore
        from zarr_n5 import ImplicitGroupWrapperStore, N5WrapperStore
    except ImportError:
        raise InputFormatError(f"reading N5 needs zarr-n5: {NEEDS}") from None
    store = ImplicitGroupWrapperStore(N5WrapperStore(LocalStore(root, read_only=True)))
    try:
        return zarr.open_array(store, path=inner.strip("/"), mode="r")
    except Exception as exc:  # noqa: BLE001 - zarr-n5 raises several kinds on odd metadata
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if "codec" in detail:
            detail += " (zarr-n5 decodes raw, gzip, zstd and Blosc blocks)"
        raise InputFormatError(f"cannot open the N5 dataset {root}:{inner}: {detail}") from exc


def open_n5(path: str, dims: Sequence[str] | None, inner: str | None = None) -> InputImage:
    """Open an N5 dataset (its directory, or a container and ``inner``) lazily."""
    if inner is None:
        if is_dataset(attributes(path)):
            root = container_root(path)
            inner = os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")
            inner = "" if inner == "." else inner
        else:
            root = path
            found = datasets(root)
            if len(found) != 1:
                what = "no dataset" if not found else f"{len(found)} datasets (" + ", ".join(
                    f"{p} {'x'.join(map(str, s))} {t}" for p, s, t in found[:12]) + ")"
                raise InputFormatError(f"the N5 container {path} holds {what}; name one as "
                                       f"{path}:/path/to/dataset")
            inner = found[0][0]
    else:
        root = path
        if not is_dataset(attributes(os.path.join(root, inner.strip("/")))):
            found = datasets(root)
            there = ", ".join(p for p, _, _ in found[:12]) or "none"
            raise InputFormatError(f"{path}:{inner} is not an N5 dataset; its datasets: {there}")
    node = os.path.join(root, inner.strip("/"))
    attrs = attributes(node) or {}
    array = open_n5_array(root, inner)
    where = f"{path}:{inner}" if inner else path
    ndim = array.ndim
    n5_dims = _n5_axes(attrs, ndim)
    scale, translation, units = _n5_physical(attrs, n5_dims)
    # N5 order is fastest first: reversed, the array is in C order
    data: Any = permuted(array, list(reversed(range(ndim))), where)
    guessed = list(reversed(n5_dims))
    if dims is not None:
        guessed = checked_dims(dims, ndim, where, data.shape)
        scale, translation = keep_dims(scale, guessed) or {}, keep_dims(translation, guessed) or {}
        units = keep_dims(units, guessed) or {}
    data, out_dims = reorder(data, guessed, where)
    label = inner.strip("/").replace("/", "_")
    return InputImage(data=data, dims=out_dims, scale=scale or None,
                      translation=translation or None, units=units or None,
                      name=safe_name(f"{stem(path)}_{label}" if label else stem(path)),
                      kind="N5 dataset", paths=[path])


def _n5_axes(attrs: dict[str, Any], ndim: int) -> list[str]:
    """Axis names in N5 order (``axes`` when given, else the default dims reversed)."""
    axes = attrs.get("axes")
    if isinstance(axes, list) and len(axes) == ndim:
        names = [str(a).lower() for a in axes]
        if len(set(names)) == ndim and all(n in ("t", "c", "z", "y", "x") for n in names):
            return names
    return list(reversed(default_dims(ndim)))


def _n5_physical(attrs: dict[str, Any], n5_dims: list[str]
                 ) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    res, unit_list = None, None
    pixel = attrs.get("pixelResolution")
    if isinstance(pixel, dict) and isinstance(pixel.get("dimensions"), list):
        res, unit_list = pixel["dimensions"], [pixel.get("unit")] * len(pixel["dimensions"])
    elif isinstance(attrs.get("resolution"), list):
        res = attrs["resolution"]
        units = attrs.get("units")
        unit_list = units if isinstance(units, list) else [attrs.get("unit")] * len(res)
    scale, units_out, translation = {}, {}, {}
    for i, d in enumerate(n5_dims):
        if d == "c":
            continue
        if res is not None and i < len(res):
            try:
                value = float(res[i])
            except (TypeError, ValueError):
                continue
            if value > 0:
                scale[d] = value
                unit = udunits(unit_list[i]) if unit_list and i < len(unit_list) else None
                if unit:
                    units_out[d] = unit
        offset = attrs.get("offset")
        if isinstance(offset, list) and i < len(offset):
            try:
                translation[d] = float(offset[i])
            except (TypeError, ValueError):
                pass
    return scale, translation, units_out
