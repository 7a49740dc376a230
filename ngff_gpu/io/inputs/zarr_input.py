"""Zarr inputs: a Zarr array (v2/v3), an OME-Zarr image (re-pyramid its level 0), an ``.ozx``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ngff_gpu.dims import AXIS_ORDER
from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import InputImage, canonical, checked_dims, safe_name, stem


def open_zarr(path: str, dims: Sequence[str] | None, store: Any = None) -> InputImage:
    """Open a Zarr array or OME-Zarr image at ``path`` (or in ``store``) read-only."""
    import zarr

    from ngff_gpu.errors import RemoteStoreError

    try:
        node = zarr.open(store if store is not None else path, mode="r")
    except RemoteStoreError:
        raise  # a remote store that kept failing: its own message
    except (FileNotFoundError, KeyError, ValueError, TypeError, OSError,
            zarr.errors.NodeTypeValidationError) as exc:
        raise InputFormatError(f"cannot open {path} as Zarr: {exc}") from exc
    if isinstance(node, zarr.Group):
        return _open_ome_zarr(node, path, dims)
    names = getattr(node.metadata, "dimension_names", None) or node.attrs.get("_ARRAY_DIMENSIONS")
    guessed = None
    if names and all(n in AXIS_ORDER and n for n in names) and len(set(names)) == len(names):
        guessed = list(names)
    if dims is not None:
        guessed = checked_dims(dims, node.ndim, path, node.shape)
    data, out = canonical(node, guessed)
    return InputImage(data=data, dims=out, name=safe_name(stem(path)), kind="Zarr array",
                      paths=[path])


def open_ozx(path: str, dims: Sequence[str] | None) -> InputImage:
    """Open a zipped OME-Zarr (RFC-9 ``.ozx``) read-only through zarr's ``ZipStore``."""
    from zarr.storage import ZipStore

    try:
        store = ZipStore(path, mode="r", read_only=True)
    except Exception as exc:  # noqa: BLE001 - zipfile raises several kinds
        raise InputFormatError(f"cannot open {path} as a zipped OME-Zarr (.ozx): {exc}") from exc
    image = open_zarr(path, dims, store=store)
    image.kind = f"{image.kind} (.ozx)"
    return image


def _orientation(axes: list[Any]) -> dict[str, str] | None:
    out = {}
    for a in axes:
        o = a.get("orientation") if isinstance(a, dict) else None
        if isinstance(o, dict) and o.get("value"):
            out[a["name"]] = str(o["value"])
    return out or None


def _open_ome_zarr(group: Any, path: str, dims: Sequence[str] | None) -> InputImage:
    from ngff_gpu.errors import InvalidStoreError
    from ngff_gpu.io.group import open_dataset, read_ome_attrs
    from ngff_gpu.model.metadata_json import level_placement, metadata_from_json

    try:
        version, attrs = read_ome_attrs(group)
    except InvalidStoreError:
        arrays = sorted(name for name, _ in group.arrays())
        hint = f"; its arrays: {', '.join(arrays[:8])}" if arrays else ""
        raise InputFormatError(
            f"{path} is a Zarr group without OME-Zarr multiscales metadata (incomplete "
            f"conversion?); give the path of an array inside it{hint}") from None
    entry = attrs["multiscales"][0]
    try:
        meta = metadata_from_json(entry, version)
        axes = [ax.name for ax in meta.axes]
        data = open_dataset(group, meta.datasets[0].path, len(axes), "multiscales[0].datasets[0]")
    except InvalidStoreError as exc:
        raise InputFormatError(f"{path}: malformed multiscales metadata ({exc})") from exc
    scale, translation = level_placement(meta, 0)
    units = {ax.name: ax.unit for ax in meta.axes if ax.unit}
    guessed = checked_dims(dims if dims is not None else axes, data.ndim, path, data.shape)
    rename = dict(zip(axes, guessed))
    orientation = {rename[k]: v for k, v in (_orientation(entry.get("axes") or []) or {}).items()
                   if k in rename}
    data, out = canonical(data, guessed)
    omero = attrs.get("omero")
    if isinstance(omero, dict):
        omero = {k: v for k, v in omero.items() if k != "version"}
    return InputImage(
        data=data, dims=out,
        scale={d: s for d, s in zip(guessed, scale) if d != "c"},
        translation={d: t for d, t in zip(guessed, translation) if d != "c"},
        units={rename[k]: u for k, u in units.items() if k in rename} or None,
        name=safe_name(meta.name if "name" in entry and meta.name else stem(path)),
        is_label_hint="image-label" in attrs, omero=omero if isinstance(omero, dict) else None,
        orientation=orientation or None, kind=f"OME-Zarr {version}", paths=[path])
