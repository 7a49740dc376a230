"""Read an OME-Zarr store (0.4, 0.5, 0.6 or 0.9.dev1) back: an image into a Multiscales of lazy
dask arrays (:mod:`ngff_gpu.io.image_read`), a scene or a transformation stored alone."""

from __future__ import annotations

from typing import Any

from ngff_gpu.errors import ArgumentError
from ngff_gpu.io.containers import open_image_group
from ngff_gpu.io.group import open_group
from ngff_gpu.io.image_read import read_image_group
from ngff_gpu.io.scene import read_scene
from ngff_gpu.io.transform_store import held_kind, read_transformation
from ngff_gpu.model.multiscales import STORE_IO, Multiscales


def from_ngff_zarr(store: Any, validate: bool = False, version: str | None = None,
                   storage_options: dict[str, Any] | None = None,
                   kind: str | None = None) -> Multiscales | Any:
    """Open an OME-Zarr image as a :class:`Multiscales` with lazy dask arrays
    (ngff-zarr 0.50's signature).

    Parameters
    ----------
    store : str, pathlib.Path, zarr store, zarr.Group or fsspec URL
        The OME-Zarr image group (0.4, 0.5 or 0.6); a path below a store
        (``plate.ome.zarr/A/1/0``, also inside a ``.ozx``), or a
        ``bioformats2raw.layout`` container of one series (see
        :func:`~ngff_gpu.io.containers.open_image_group`).
    validate : bool
        Validate the store first, as ngff-zarr 0.50 does (:func:`~ngff_gpu.validate_store`):
        the official JSON schema of its version (bundled; ``SchemaValidationError``, also a
        ``jsonschema.ValidationError``; a superseded ``0.6.dev4`` tag warns), then the
        structural rules (``StructuralValidationError``), the arrays and, for 0.4/0.5,
        ``ome-zarr-models``.
    version : str, optional
        The version the store must have (raises ``ValueError`` when it has another).
    storage_options : dict, optional
        fsspec options for a URL store (``{"anon": True}``...) plus ``"retry"``, our
        retry policy (docs/design.md, "Remote stores"); the lazy arrays read through
        it. Ignored for other stores, as ngff-zarr does.
    kind : {None, "multiscales", "transformation", "scene"}
        What the store holds, as ngff-zarr 0.50 names it: an image (default), or an
        OME-Zarr 0.6 transformation stored alone (returned as it was written, see
        :mod:`ngff_gpu.io.transform_store`), or a scene (an
        :class:`~ngff_gpu.io.scene.NgffScene` with every image its transformations
        name; ``validate`` checks each image and the scene's rules). A store holding
        another kind than asked raises ``ValueError`` naming it; a path into a scene
        (``scene.ome.zarr/tile_0``) reads that image.

    Returns
    -------
    Multiscales
        Arrays in native byte order (a big-endian store reads as native, lazily);
        ``dims`` tuples; ``metadata.omero`` and ``root_attributes`` filled;
        ``metadata`` in the form of the store's version: :class:`Metadata` for 0.4/0.5,
        :class:`Metadata06` for 0.6 (its coordinate systems and multiscale-level
        transformations as stored, matrices stored in arrays loaded). With
        ``kind="scene"``: an :class:`~ngff_gpu.io.scene.NgffScene`; with
        ``kind="transformation"``: the transformation.

    Raises
    ------
    InvalidStoreError
        If the store is not an OME-Zarr 0.4/0.5/0.6 image, or not of ``version``; with
        ``validate``, its subclasses above, or "No JSON Schema is bundled for OME-Zarr
        version ..." for a version string no schema is bundled for.
    ArgumentError
        For a plate's root or a container of several series (the message names the
        paths to open).
    RemoteStoreError
        When a remote store keeps failing (:class:`StoreThrottledError`,
        :class:`StoreUnavailableError`) or denies access (:class:`StoreAccessDeniedError`).
    """
    if kind not in (None, "multiscales", "scene", "transformation"):
        raise ArgumentError(f"kind must be 'multiscales', 'scene' or 'transformation', "
                            f"got {kind!r}")
    if kind in ("scene", "transformation"):
        group = open_group(store, storage_options=storage_options)
    else:
        group = open_image_group(store, storage_options=storage_options)
    held = held_kind(group)
    if held != (kind if kind in ("scene", "transformation") else None):
        if held is not None:
            raise ArgumentError(f"{store} holds an OME-Zarr 0.6 {held}, not "
                                f"{'an image' if kind in (None, 'multiscales') else 'a ' + kind}"
                                f"; read it with from_ngff_zarr(store, kind='{held}')")
        raise ArgumentError(f"{store} holds no {kind}: its root group's 'ome' has no "
                            f"{'scene' if kind == 'scene' else 'coordinateTransformations'} "
                            "document of its own")
    if held == "scene":
        return read_scene(group, store, validate=validate, version=version,
                          storage_options=storage_options)
    if held == "transformation":
        return read_transformation(group, validate=validate)
    return read_image_group(group, validate=validate, version=version)


#: ngff-zarr 0.50's name of :func:`from_ngff_zarr`.
from_ome_zarr = from_ngff_zarr
STORE_IO["read"] = from_ome_zarr
