"""Write an OME-Zarr 0.6 scene: its ``ome.scene`` in the root group, each image below
its path (ngff-zarr 0.50's layout; :class:`ngff_gpu.io.scene.NgffScene`).

Everything is checked before anything is written (:func:`ngff_gpu.model.scene.
check_scene`, the version, the target, the field images a transformation names).
``overwrite=True`` writes the whole scene into a temporary beside the target and
swaps it in when complete, so a failure leaves what was there as it was.
``overwrite=False`` adds the scene to the group already there (keeping its other
attributes and nodes: the field images a ``displacements``/``coordinates``
transformation names must be written there first), or creates it.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import warnings
from collections.abc import Callable
from typing import Any

import zarr

from ngff_gpu.errors import ArgumentError, ArgumentTypeError
from ngff_gpu.io.ozx import is_ozx
from ngff_gpu.io.replace import local_path, swap_in, temp_path
from ngff_gpu.model.scene import SCENE_VERSIONS, check_image_path, check_scene, scene_to_json
from ngff_gpu.model.transforms_json import field_paths


def is_scene(value: Any) -> bool:
    """True for a scene (ours or ngff-zarr's ``NgffScene``): images and the
    transformations between them."""
    return (isinstance(getattr(value, "images", None), dict)
            and hasattr(value, "coordinateTransformations"))


def _is_group_dir(path: str) -> bool:
    try:
        with open(os.path.join(path, "zarr.json")) as f:
            return json.load(f).get("node_type") == "group"
    except (OSError, ValueError, AttributeError):
        return False


def write_scene(store: Any, scene: Any, write_image: Callable[..., None],
                version: str | None = None, overwrite: bool = True,
                consolidate_metadata: bool = True, **kwargs: Any) -> None:
    """Write ``scene`` and its images to the directory ``store``.

    Parameters
    ----------
    store : str or os.PathLike
        A local directory path (not a ``.ozx`` archive: zip the directory afterwards).
    scene : NgffScene
        Ours or ngff-zarr's.
    write_image : callable
        ``write_image(path, multiscales, version=..., overwrite=True,
        consolidate_metadata=False, **kwargs)`` writes one image (``to_ngff_zarr``).
    version : {"0.6", "0.9.dev1", None}
        None is 0.6; the images are written at the same version.
    overwrite : bool
        See the module docstring.
    consolidate_metadata : bool
        Consolidate the whole store's metadata into the root at the end.
    **kwargs
        Passed to ``write_image`` for every image (``codec``, ``chunks_per_shard``...).

    Raises
    ------
    ArgumentError
        (a ``ValueError``) before anything is written, for a version before 0.6, a
        ``.ozx`` or non-path target, a scene :func:`check_scene` refuses, a field
        path outside the scene, field images with ``overwrite=True`` or missing.
    """
    version = "0.6" if version is None else str(getattr(version, "value", version))
    if is_ozx(store):
        raise ArgumentError(f"{store}: a scene is written to a directory path; zip it "
                            "afterwards (ngff_gpu.io.ozx.zip_store) to make a .ozx")
    if version not in SCENE_VERSIONS:
        raise ArgumentError(f"version: scene metadata is defined from OME-Zarr 0.6; got "
                            f"version {version!r}")
    path = local_path(store) if isinstance(store, str | os.PathLike) else None
    if path is None:
        raise ArgumentTypeError(f"a scene is written to a local directory path, got "
                                f"{type(store).__name__} {store!r}")
    if kwargs.get("start_level", 0):
        raise ArgumentError("start_level is not available for a scene")
    kwargs.pop("start_level", None)
    transforms = list(scene.coordinateTransformations or [])
    systems = scene.coordinateSystems
    check_scene(scene.images, transforms, systems, version)
    fields = sorted(set(field_paths(transforms)))
    for field in fields:
        check_image_path(field)
    if fields and overwrite:
        raise ArgumentError(f"the scene's transformations reference the field image(s) "
                            f"{fields}; write those first with to_ngff_zarr below the "
                            "scene's store, then the scene with overwrite=False so they are kept")
    missing = [f for f in fields if not _is_group_dir(os.path.join(path, *f.split("/")))]
    if missing:
        raise ArgumentError(f"the scene's transformations reference {missing}, which the store "
                            "does not hold; write them first with to_ngff_zarr below the "
                            "scene's store, then the scene with overwrite=False")
    if not overwrite and _is_group_dir(path):
        held = zarr.open_group(path, mode="r").attrs.asdict().get("ome")
        if isinstance(held, dict) and set(held) - {"version", "scene"}:
            raise ArgumentError(f"{store} already holds OME-Zarr metadata "
                                f"({sorted(set(held) - {'version', 'scene'})}); write the scene "
                                "to a new group (or overwrite=True)")
    ondisk = {"version": version, "scene": scene_to_json(transforms, systems, version)}
    replace = bool(overwrite) and os.path.lexists(path)
    target = temp_path(path) if replace else path
    if replace:
        shutil.rmtree(target, ignore_errors=True)  # a killed earlier write's leftover
    try:
        _write(target, ondisk, scene.images, fields, write_image, version, bool(overwrite),
               consolidate_metadata, kwargs)
        if replace:
            swap_in(target, path)
    except BaseException:
        if replace:
            shutil.rmtree(target, ignore_errors=True)
        raise


def _write(path: str, ome: dict[str, Any], images: dict[str, Any], fields: list[str],
           write_image: Callable[..., None], version: str, overwrite: bool,
           consolidate: bool, kwargs: dict[str, Any]) -> None:
    # overwrite=False keeps whatever is there (the field images written first)
    root = zarr.open_group(path, mode="w" if overwrite else "a", zarr_format=3)
    for p in fields + list(images):  # the groups between the root and each node
        parts = p.split("/")
        for k in range(1, len(parts)):
            if not _is_group_dir(os.path.join(path, *parts[:k])):
                root.require_group("/".join(parts[:k]))
    for p, multiscales in images.items():
        write_image(os.path.join(path, *posixpath.normpath(p).split("/")), multiscales,
                    version=version, overwrite=True, consolidate_metadata=False, **kwargs)
    root.attrs.put({**root.attrs.asdict(), "ome": ome})
    if consolidate:
        with warnings.catch_warnings():  # v3: "not part of the specification" notice
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(root.store)
