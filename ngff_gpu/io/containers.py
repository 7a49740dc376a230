"""Find the image a store path names: plain images, plate fields, container series.

:func:`open_image_group` is what :func:`~ngff_gpu.from_ngff_zarr` opens, with ngff-zarr
0.50's rules:

* ``plate.ome.zarr/A/1/0`` (a path below a store; also inside a ``.ozx`` archive)
  opens that group;
* a ``bioformats2raw.layout`` container's root opens its only series; with several,
  it is an error that lists them (``container.ome.zarr/1`` opens series 1). The
  series are the ``OME`` group's ``series`` when it lists them, else the numbered
  groups;
* a plate's root is an error that names a field to open, and :func:`from_hcs_zarr`.
"""

from __future__ import annotations

import os
from typing import Any

import zarr

from ngff_gpu.errors import ArgumentError, InvalidStoreError, StoreNotFoundError
from ngff_gpu.io.group import open_group
from ngff_gpu.model.plate import ome_document


def _split_ozx(path: str) -> tuple[str, str] | None:
    """``("a.ozx", "A/1/0")`` for ``"a.ozx/A/1/0"`` when ``a.ozx`` is a file."""
    norm = path.replace("\\", "/")
    low = norm.lower()
    idx = low.rfind(".ozx/")
    if idx < 0:
        return None
    archive = path[: idx + 4]
    if not os.path.isfile(archive):
        return None
    return archive, norm[idx + 5:].strip("/")


def is_container(attrs: dict[str, Any]) -> bool:
    """True for the root of a ``bioformats2raw.layout`` container (not an image)."""
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else {}
    if "multiscales" in attrs or "multiscales" in ome:
        return False
    return "bioformats2raw.layout" in attrs or "bioformats2raw.layout" in ome


def series_paths(group: zarr.Group) -> list[str]:
    """The image paths of a container: ``OME``'s ``series`` list, else the numbered
    groups in numeric order (then any other group but ``OME``)."""
    try:
        ome_group = group["OME"]
        attrs = ome_group.attrs.asdict()
        ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else {}
        series = ome.get("series", attrs.get("series"))
        if isinstance(series, list) and series and all(isinstance(s, str) for s in series):
            return list(series)
    except KeyError:
        pass
    names = [name for name, _ in group.groups() if name != "OME"]
    return sorted(names, key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n))


def open_image_group(store: Any, storage_options: dict[str, Any] | None = None) -> zarr.Group:
    """The group of the image ``store`` names (module docstring); ``storage_options``
    open a remote URL (:func:`~ngff_gpu.io.group.open_group`).

    Raises
    ------
    InvalidStoreError
        A path that does not exist ("not found"), a container without images.
    ArgumentError
        A plate's root, or a container of several series (both ``ValueError``, as
        ngff-zarr raises): the message says which path to open.
    """
    if isinstance(store, str | os.PathLike) and "://" not in str(store):
        path = os.fspath(store)
        inner = _split_ozx(path)
        if inner is not None:
            group = open_group(inner[0])
            try:
                return group[inner[1]] if inner[1] else group
            except KeyError:
                raise InvalidStoreError(f"{store}: sub-path {inner[1]!r} not found in "
                                        f"{inner[0]}") from None
        if not os.path.exists(path):
            raise StoreNotFoundError(f"{store}: not found")
    group = open_group(store, storage_options=storage_options)
    try:
        attrs = group.attrs.asdict()
    except (ValueError, TypeError):
        return group  # the reader reports unreadable attributes
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else {}
    if "multiscales" in attrs or "multiscales" in ome:
        return group
    plate, _ = ome_document(attrs, "plate")
    if plate is not None:
        wells = [w.get("path") for w in plate.get("wells", []) if isinstance(w, dict)]
        example = f"{store}/{wells[0]}/0" if wells else f"{store}/A/1/0"
        raise ArgumentError(
            f"{store} is an HCS plate with {len(wells)} wells, not an image: open one field "
            f"(from_ngff_zarr('{example}')) or the plate with from_hcs_zarr()")
    if is_container(attrs):
        series = series_paths(group)
        if not series:
            raise InvalidStoreError(f"{store}: The input is a bioformats2raw container but no "
                                    "image subgroups were found")
        if len(series) > 1:
            shown = ", ".join(f"'{store}/{s}'" for s in series[:5])
            more = f" (and {len(series) - 5} more)" if len(series) > 5 else ""
            raise ArgumentError(f"{store} is a bioformats2raw container with {len(series)} "
                                f"images; open one of them: {shown}{more}")
        try:
            return group[series[0]]
        except KeyError:
            raise InvalidStoreError(f"{store}: series {series[0]!r} listed in OME/ is "
                                    "missing") from None
    return group
