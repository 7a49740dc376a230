"""OME-Zarr 0.6 scenes: what a scene must be (:func:`check_scene`) and its JSON.

A *scene* is the group above several images that share a spatial relationship: its
``ome.scene`` holds ``coordinateTransformations`` between the images' coordinate
systems and, optionally, ``coordinateSystems`` of its own (a common "world" the
images map into). An end of a transformation with a ``path`` names a system of the
image at that path below the scene; one without a ``path``, a system the scene
declares. The rules are those ngff-zarr 0.50 checks before writing a scene and on a
validating read (its messages' key phrases); the data class and the I/O are in
:mod:`ngff_gpu.io.scene`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ngff_gpu.errors import ArgumentError, StructuralValidationError
from ngff_gpu.model.axes import axis_json
from ngff_gpu.model.metadata import RFC3_VERSION, CoordinateSystem
from ngff_gpu.model.metadata_json import check_spans, systems_from_json, top_level_json
from ngff_gpu.model.rules import check_axes
from ngff_gpu.model.transforms import CoordinateSystemIdentifier, validate_transform
from ngff_gpu.model.transforms_json import bad, check_field_path, transforms_from_json

#: The OME-Zarr versions that define scenes (0.9.dev1: 0.6 with RFC-3 axes).
SCENE_VERSIONS = ("0.6", RFC3_VERSION)


def check_image_path(path: Any, parent: str = "scene group") -> str:
    """``path`` when it is a plain relative path below its parent group (no empty,
    ``.`` or ``..`` part, also percent-encoded; no ``\\`` separator; no drive).

    Raises
    ------
    ArgumentError
        Otherwise: an image of a scene must not reach out of its store.
    """
    try:
        return check_field_path(path, parent)
    except ArgumentError:
        raise ArgumentError(f"image path {path!r} must be a relative path below the "
                            f"{parent}") from None


def image_systems(multiscales: Any, version: str = "0.6") -> list[Any]:
    """The coordinate systems an image (ours or ngff-zarr's) carries once written at
    ``version``."""
    meta = multiscales.metadata
    if hasattr(meta, "to_version"):
        meta = meta.to_version(version)
    return list(getattr(meta, "coordinateSystems", None) or [])


def _check_systems(systems: Sequence[Any], version: str) -> dict[str, Any]:
    names = [getattr(s, "name", None) for s in systems]
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise ArgumentError(f"scene coordinateSystems names must be non-empty and unique; "
                            f"got {names}")
    for i, system in enumerate(systems):
        where = f"scene.coordinateSystems[{i}].axes"
        try:
            check_axes(list(system.axes), version, where)
        except StructuralValidationError as exc:
            raise ArgumentError(f"Cannot write OME-Zarr version={version!r}: the axes at "
                                f"{where} break its [{exc.rule}] rule: {exc.message}") from None
    return dict(zip(names, systems))


def check_scene(images: Mapping[str, Any], transforms: Sequence[Any],
                systems: Sequence[Any] | None, version: str = "0.6") -> None:
    """Raise unless OME-Zarr ``version`` can hold the scene.

    Every image path stays below the scene group; the scene's own systems have unique
    names and axes the version allows; there is at least one transformation; each
    names both its ends and each end resolves (to a system the scene declares, or to
    one of the image at its ``path``); each transformation fits the two systems it
    joins (its vectors span their axes; the reader's own checks pass); and the systems
    and images form one connected graph (an image is one node: its own systems are
    joined by its multiscales).

    Raises
    ------
    ArgumentError
        (a ``ValueError``) naming the transformation (``coordinateTransformations[1]``)
        or system and the rule broken.
    """
    for path in images:
        check_image_path(path)
    if not transforms:
        raise ArgumentError("a scene declares at least one coordinate transformation")
    local = _check_systems(list(systems or []), version)
    nodes = {("scene", name) for name in local} | {("image", p) for p in images}
    parent = {n: n for n in nodes}

    def find(node: tuple[str, str]) -> tuple[str, str]:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for i, t in enumerate(transforms):
        where = f"coordinateTransformations[{i}]"
        ends, joined = [], []
        for side in ("input", "output"):
            ref = getattr(t, side, None)
            name, path = getattr(ref, "name", None), getattr(ref, "path", None)
            if name is None:
                raise ArgumentError(f"{where}.{side} must name a coordinate system: a "
                                    "CoordinateSystemIdentifier with a name, and the path of "
                                    "the image that declares it unless the scene does")
            if path is None:
                if name not in local:
                    raise ArgumentError(f"{where}.{side} names coordinate system {name!r}, "
                                        "which the scene does not declare; declare it in "
                                        "coordinateSystems, or give the path of the image "
                                        "that declares it")
                ends.append(("scene", name))
                joined.append(local[name])
                continue
            if path not in images:
                raise ArgumentError(f"{where}.{side} references image {path!r}, which the "
                                    f"scene does not contain; its images are {sorted(images)}")
            declared = {s.name: s for s in image_systems(images[path], version)}
            if name not in declared:
                raise ArgumentError(f"{where}.{side} names coordinate system {name!r} of image "
                                    f"{path!r}, which declares {sorted(declared)}")
            ends.append(("image", path))
            joined.append(declared[name])
        check_spans(t, where, {len(s.axes) for s in joined})
        # The reader's checks resolve an end by name: the probe names its ends apart.
        probe = copy.copy(t)
        probe.input = CoordinateSystemIdentifier(name="input")
        probe.output = CoordinateSystemIdentifier(name="output")
        probed = [CoordinateSystem(name=n, axes=list(s.axes))
                  for n, s in zip(("input", "output"), joined)]
        if t.type in ("scale", "translation") and len(joined[0].axes) != len(joined[1].axes):
            probed = []  # spanning one of the two systems is enough (as ngff-zarr checks)
        try:
            validate_transform(probe, probed, version)
        except ArgumentError as exc:
            raise ArgumentError(f"{where} ({t.type}) would be written as a transformation "
                                f"ngff_gpu cannot read back: {exc}") from None
        parent[find(ends[0])] = find(ends[1])
    groups: dict[tuple[str, str], list[str]] = {}
    for kind, name in nodes:
        label = f"image {name!r}" if kind == "image" else f"coordinate system {name!r}"
        groups.setdefault(find((kind, name)), []).append(label)
    if len(groups) > 1:
        raise ArgumentError("the scene's coordinate systems and images must form one connected "
                            f"graph of transformations, but they fall into {len(groups)} "
                            f"unconnected groups: {sorted(sorted(g) for g in groups.values())}")


def scene_to_json(transforms: Sequence[Any], systems: Sequence[Any] | None,
                  version: str = "0.6") -> dict[str, Any]:
    """The ``ome.scene`` object (matrices inline: a scene has no multiscales group to
    hold arrays)."""
    out: dict[str, Any] = {}
    if systems is not None:
        out["coordinateSystems"] = [{"name": str(s.name), "axes": [axis_json(a) for a in s.axes]}
                                    for s in systems]
    out["coordinateTransformations"] = top_level_json(
        transforms, [], "scene.coordinateTransformations", version=version, inline=True)
    return out


def scene_from_json(document: Any, version: str = "0.6", where: str = "ome.scene"
                    ) -> tuple[list[CoordinateSystem] | None, list[Any]]:
    """Parse an ``ome.scene`` object: its systems (None when it declares none) and its
    transformations, as written (each end's ``path`` and ``name`` kept).

    Raises
    ------
    InvalidStoreError
        Naming the key of what is malformed.
    """
    if not isinstance(document, dict):
        raise bad(where, "expected an object", document)
    systems = None
    if document.get("coordinateSystems") is not None:
        systems = systems_from_json(document["coordinateSystems"], f"{where}.coordinateSystems",
                                    version)
    raw = document.get("coordinateTransformations") or []
    return systems, transforms_from_json(raw, None, f"{where}.coordinateTransformations", version)
