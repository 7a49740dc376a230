"""An OME-Zarr 0.6 transformation stored alone: a group whose ``ome`` holds
``coordinateTransformations`` and no image (ngff-zarr 0.50's ``kind="transformation"``).

``to_ngff_zarr(store, transformation)`` writes it (:func:`write_transformation`) and
``from_ngff_zarr(store, kind="transformation")`` reads it (:func:`read_transformation`);
:func:`held_kind` tells the reader what a group holds, so that opening one kind as
another names the kind to ask for. Matrices are written inline (there is no multiscales
group to hold arrays). A ``displacements``/``coordinates`` field is an image below the
group at the transformation's ``path``: it is written first (an ordinary 0.6 image), then
the transformation with ``overwrite=False`` into the same store.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import zarr

from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.io.group import open_group
from ngff_gpu.io.ozx import is_ozx
from ngff_gpu.io.replace import local_path
from ngff_gpu.model.transforms import TRANSFORM_TYPES, validate_transform
from ngff_gpu.model.transforms_json import (
    check_field_path,
    field_paths,
    transform_json,
    transforms_from_json,
)

#: The OME-Zarr versions that store a transformation alone.
TRANSFORM_STORE_VERSIONS = ("0.6", "0.9.dev1")


def is_transformation(value: Any) -> bool:
    """True for a transformation object (ours or ngff-zarr's), not a multiscales."""
    kind = getattr(value, "type", None)
    return str(getattr(kind, "value", kind)) in TRANSFORM_TYPES and not hasattr(value, "images")


def held_kind(group: zarr.Group) -> str | None:
    """``"scene"`` or ``"transformation"`` when the root ``ome`` of ``group`` holds one
    of those documents (and no image), None otherwise."""
    try:
        ome = group.attrs.asdict().get("ome")
    except (ValueError, TypeError):
        return None
    if not isinstance(ome, dict) or "multiscales" in ome:
        return None
    if "scene" in ome:
        return "scene"
    if "coordinateTransformations" in ome:
        return "transformation"
    return None


def _check(transform: Any, version: str) -> list[str]:
    if version not in TRANSFORM_STORE_VERSIONS:
        raise ArgumentError(f"version: a transformation is stored alone from OME-Zarr 0.6 on "
                            f"(RFC-5), got {version!r}; write it with version='0.6'")
    validate_transform(transform)
    paths = field_paths([transform])
    for path in paths:
        check_field_path(path)
    return paths


def write_transformation(store: Any, transform: Any, version: str | None = None,
                         overwrite: bool = True) -> None:
    """Write ``transform`` as the only content of the group at ``store``.

    Parameters
    ----------
    store : str or os.PathLike
        A directory path (a ``.ozx`` archive holds an image, not a transformation).
    transform : transformation
        Any RFC-5 transformation (ours or ngff-zarr's).
    version : {"0.6", None}
        None is 0.6.
    overwrite : bool
        True: the store is replaced (so it must name no field image, which would be
        removed). False: the transformation is added to the group already there (which
        holds its field images, written before) or creates it.

    Raises
    ------
    ArgumentError
        (a ``ValueError``) before anything is written: another version, a ``.ozx`` or
        non-directory target, a transformation that breaks an RFC-5 rule, a field path
        outside the group, a field image the store does not hold, a group that already
        holds an OME-Zarr image or document.
    """
    version = "0.6" if version is None else str(getattr(version, "value", version))
    paths = _check(transform, version)
    path = local_path(store) if isinstance(store, str | os.PathLike) else None
    if is_ozx(store) or path is None:
        raise ArgumentError(f"{store}: a transformation is written to a directory path "
                            "(a local OME-Zarr group), not a .ozx archive or a store object")
    document = {"version": version,
                "coordinateTransformations": [transform_json(transform, "transformation",
                                                             inline=True)]}
    if overwrite and paths:
        raise ArgumentError(f"the transformation names the field image(s) {paths}, which "
                            "overwrite=True would remove: write those first, then this "
                            "transformation with overwrite=False")
    exists = os.path.exists(path)
    if not overwrite and _is_group_dir(path):
        attrs = open_group(path).attrs.asdict()
        if isinstance(attrs.get("ome"), dict) or "multiscales" in attrs:
            raise ArgumentError(f"{store} already holds OME-Zarr metadata; write the "
                                "transformation to a new group (or overwrite=True)")
    missing = [p for p in paths if not _is_group_dir(os.path.join(path, *p.split("/")))]
    if missing:
        raise ArgumentError(f"the transformation names the field image(s) {missing}, "
                            "which the store does not hold; write those first")
    # nothing is created or changed before every check has passed
    if overwrite or not exists:
        group = zarr.open_group(path, mode="w", zarr_format=3)
    else:
        group = zarr.open_group(path, mode="a", zarr_format=3)
        for p in paths:  # the groups between the root and each field image
            parts = p.split("/")
            for k in range(1, len(parts)):
                if not _is_group_dir(os.path.join(path, *parts[:k])):
                    group.require_group("/".join(parts[:k]))
    group.attrs.put({**group.attrs.asdict(), "ome": document})
    with warnings.catch_warnings():  # v3: "not part of the specification" notice
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(group.store)


def _is_group_dir(path: str) -> bool:
    """True when the local directory ``path`` is a Zarr group (v3 or v2)."""
    if os.path.isfile(os.path.join(path, ".zgroup")):
        return True
    try:
        with open(os.path.join(path, "zarr.json")) as f:
            return json.load(f).get("node_type") == "group"
    except (OSError, ValueError, AttributeError):
        return False


def read_transformation(group: zarr.Group, validate: bool = False) -> Any:
    """The transformation the group holds alone (as written).

    Raises
    ------
    InvalidStoreError
        A malformed document (naming the key), not exactly one transformation.
    ArgumentError
        With ``validate``: a transformation that breaks an RFC-5 rule, or a field path
        outside the group.
    """
    ome = group.attrs.asdict()["ome"]
    version = ome.get("version")
    if version not in TRANSFORM_STORE_VERSIONS:
        raise InvalidStoreError(f"{group.store}: ome.version {version!r}: a transformation "
                                f"stored alone is OME-Zarr {TRANSFORM_STORE_VERSIONS[0]}")
    raw = ome.get("coordinateTransformations")
    items = transforms_from_json(raw, None, "ome.coordinateTransformations", version)
    if len(items) != 1:
        raise InvalidStoreError(f"{group.store}: ome.coordinateTransformations holds "
                                f"{len(items)} transformations; a transformation store holds "
                                "one")
    if validate:
        _check(items[0], version)
    return items[0]
