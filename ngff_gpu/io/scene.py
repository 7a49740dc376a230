"""OME-Zarr 0.6 scenes (ngff-zarr 0.50's ``NgffScene``): images that share a spatial
relationship, and the transformations between their coordinate systems.

``to_ngff_zarr(store, scene)`` writes one (:mod:`ngff_gpu.io.scene_write`): the root
group's ``ome`` holds ``{"version": "0.6", "scene": {...}}`` and each image is an
ordinary OME-Zarr image below its path. ``from_ngff_zarr(store, kind="scene")`` (or a
store whose root holds a scene, which a plain read names) reads it back with
:func:`read_scene`: the transformations as written and every image an end of one
names. The rules are :func:`ngff_gpu.model.scene.check_scene`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import zarr

from ngff_gpu.errors import InvalidStoreError
from ngff_gpu.io.containers import open_image_group
from ngff_gpu.io.group import open_group
from ngff_gpu.io.image_read import read_image_group
from ngff_gpu.io.transform_store import held_kind
from ngff_gpu.model.metadata import CoordinateSystem
from ngff_gpu.model.multiscales import Multiscales
from ngff_gpu.model.scene import SCENE_VERSIONS, check_image_path, check_scene, scene_from_json
from ngff_gpu.model.schema import validate_document


@dataclass
class NgffScene:
    """Images that share a spatial relationship, and the transformations between them
    (ngff-zarr 0.50's fields).

    Parameters
    ----------
    images : dict
        Each image's path below the scene group -> its :class:`Multiscales`.
    coordinateTransformations : list
        RFC-5 transformations between coordinate systems; each end is a
        :class:`~ngff_gpu.model.transforms.CoordinateSystemIdentifier`: with a ``path``,
        a system of that image; without one, a system of ``coordinateSystems``.
    coordinateSystems : list of CoordinateSystem, optional
        The systems the scene declares itself (the first is the one a viewer shows by
        default).
    """

    images: dict[str, Multiscales]
    coordinateTransformations: list[Any]  # noqa: N815 - ngff-zarr's field name
    coordinateSystems: list[CoordinateSystem] | None = None  # noqa: N815

    def to_ome_zarr(self, store: Any, **kwargs: Any) -> None:
        """Write this scene and its images (:func:`ngff_gpu.to_ngff_zarr`)."""
        from ngff_gpu.io.write_api import to_ngff_zarr

        to_ngff_zarr(store, self, **kwargs)

    @classmethod
    def from_ome_zarr(cls, store: Any, validate: bool = False, version: str | None = None,
                      storage_options: dict[str, Any] | None = None) -> NgffScene:
        """Read the scene at ``store`` (``from_ngff_zarr(store, kind="scene")``)."""
        group = open_group(store, storage_options=storage_options)
        if held_kind(group) != "scene":
            raise InvalidStoreError(f"{store} holds no scene: its root group carries no "
                                    "'ome.scene' entry")
        return read_scene(group, store, validate=validate, version=version,
                          storage_options=storage_options)


def _child(store: Any, group: zarr.Group, path: str,
           storage_options: dict[str, Any] | None) -> zarr.Group:
    if isinstance(store, str | os.PathLike):  # a directory, a URL or a .ozx path
        return open_image_group(f"{os.fspath(store).rstrip('/')}/{path}",
                                storage_options=storage_options)
    try:  # a store object or a group: the node below the root group
        child = group[path]
    except KeyError:
        raise InvalidStoreError(f"{store}: the scene references image {path!r}, which "
                                "the store does not hold") from None
    if not isinstance(child, zarr.Group):
        raise InvalidStoreError(f"{store}: the scene references image {path!r}, which is "
                                "an array, not an image group")
    return child


def read_scene(group: zarr.Group, store: Any, validate: bool = False,
               version: str | None = None,
               storage_options: dict[str, Any] | None = None) -> NgffScene:
    """The scene the root ``group`` (opened from ``store``) declares, with every image
    an end of its transformations names (read lazily, as :func:`from_ngff_zarr`
    reads an image).

    Raises
    ------
    InvalidStoreError
        A malformed ``ome.scene`` (naming the key), another version than ``version``,
        an image the store does not hold.
    ArgumentError
        An image path outside the scene group; with ``validate``, a scene that
        :func:`~ngff_gpu.model.scene.check_scene` refuses (and each image validated).
    SchemaValidationError
        With ``validate``, a root document that breaks the OME-Zarr scene schema
        (checked before anything is parsed).
    """
    ome = group.attrs.asdict()["ome"]
    found = ome.get("version")
    if found not in SCENE_VERSIONS:
        raise InvalidStoreError(f"{store}: ome.version {found!r}: scenes are OME-Zarr "
                                f"{' or '.join(SCENE_VERSIONS)}")
    if version is not None and str(getattr(version, "value", version)) != found:
        raise InvalidStoreError(f"{store}: an OME-Zarr {found} scene, not {version}")
    if validate:  # the scene schema first, as ngff-zarr reads a scene
        validate_document(group.attrs.asdict(), "scene", store=str(store))
    systems, transforms = scene_from_json(ome.get("scene"), found)
    images: dict[str, Multiscales] = {}
    for t in transforms:
        for ref in (t.input, t.output):
            path = getattr(ref, "path", None)
            if path is not None and path not in images:
                check_image_path(path)  # from the store: it must not reach out of it
                child = _child(store, group, path, storage_options)
                if held_kind(child) is not None:
                    raise InvalidStoreError(f"{store}: the scene references image {path!r}, "
                                            f"which holds a {held_kind(child)} rather than a "
                                            "multiscales image")
                images[path] = read_image_group(child, validate=validate)
    scene = NgffScene(images=images, coordinateTransformations=transforms,
                      coordinateSystems=systems)
    if validate:
        check_scene(images, transforms, systems, found)
    return scene
