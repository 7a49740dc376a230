"""Read an OME-Zarr store (0.4, 0.5 or 0.6) back into a Multiscales of lazy dask arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from ngff_gpu.compute.methods import Methods
from ngff_gpu.dims import DEFAULT_AXIS_TYPES, check_dims, spatial_dims
from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.io.containers import open_image_group
from ngff_gpu.io.group import open_dataset, open_group, read_ome_attrs
from ngff_gpu.io.matrices import load_matrices
from ngff_gpu.io.session import foreign_attrs
from ngff_gpu.io.transform_store import held_kind, read_transformation
from ngff_gpu.model.axes import orientations_of
from ngff_gpu.model.image import NgffImage, source_view
from ngff_gpu.model.metadata import Metadata06
from ngff_gpu.model.metadata_json import level_placement, metadata_from_json
from ngff_gpu.model.multiscales import Multiscales
from ngff_gpu.model.omero import omero_from_json


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
        Validate the store with ``ome-zarr-models`` first.
    version : str, optional
        The version the store must have (raises ``ValueError`` when it has another).
    storage_options : dict, optional
        fsspec options for a URL store (``{"anon": True}``...) plus ``"retry"``, our
        retry policy (docs/design.md, "Remote stores"); the lazy arrays read through
        it. Ignored for other stores, as ngff-zarr does.
    kind : {None, "multiscales", "transformation", "scene"}
        What the store holds, as ngff-zarr 0.50 names it: an image (default), or an
        OME-Zarr 0.6 transformation stored alone (returned as it was written, see
        :mod:`ngff_gpu.io.transform_store`). Scenes are not read yet (``ValueError``).
        A store holding another kind than asked raises ``ValueError`` naming it.

    Returns
    -------
    Multiscales
        Arrays in native byte order (a big-endian store reads as native, lazily);
        ``dims`` tuples; ``metadata.omero`` and ``root_attributes`` filled;
        ``metadata`` in the form of the store's version: :class:`Metadata` for 0.4/0.5,
        :class:`Metadata06` for 0.6 (its coordinate systems and multiscale-level
        transformations as stored, matrices stored in arrays loaded).

    Raises
    ------
    InvalidStoreError
        If the store is not an OME-Zarr 0.4/0.5/0.6 image, or not of ``version``.
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
        raise ArgumentError(f"{store} is an OME-Zarr 0.6 scene, which ngff_gpu does not read "
                            "yet; open each of its images with from_ngff_zarr")
    if held == "transformation":
        return read_transformation(group, validate=validate)
    if validate:
        from ngff_gpu.io.validate import validate_store

        validate_store(group)
    found, attrs = read_ome_attrs(group)
    if version is not None and str(getattr(version, "value", version)) != found:
        raise InvalidStoreError(f"{group.store}: an OME-Zarr {found} store, not {version}")
    entry = attrs["multiscales"][0]
    meta = metadata_from_json(entry, found)
    if isinstance(meta, Metadata06):
        load_matrices(group, meta.coordinateTransformations)
    meta.omero = omero_from_json(attrs.get("omero"))
    dims = tuple(a.name for a in meta.axes)
    try:
        check_dims(dims, len(dims), any_names=True)  # RFC-3: any unique names
    except ArgumentError as exc:
        raise InvalidStoreError(f"{group.store}: multiscales[0].axes: {exc}") from None
    units = {a.name: a.unit for a in meta.axes if a.unit} or None
    orientations = orientations_of(meta.axes)  # the well-formed ones (RFC-4)
    # Declared types a name alone would not give (RFC-3 axes, displacement fields...).
    types = {a.name: a.type for a in meta.axes
             if a.type is not None and a.type != DEFAULT_AXIS_TYPES.get(a.name)} or None
    spatial = spatial_dims(dims, types)
    names = [str(c.label) for c in meta.omero.channels] if meta.omero else None
    colors = [str(c.color) for c in meta.omero.channels] if meta.omero else None
    images = []
    for i, ds in enumerate(meta.datasets):
        arr = open_dataset(group, ds.path, len(dims), f"multiscales[0].datasets[{i}]")
        scale, translation = level_placement(meta, i, with_global=False)
        data = source_view(arr, arr.chunks)  # lazy; the writer reads ``arr`` directly
        if not np.dtype(arr.dtype).isnative:  # as ngff-zarr: native byte order
            data = data.astype(np.dtype(arr.dtype).newbyteorder("="))
        images.append(NgffImage(
            data=data,
            dims=dims,
            # Spatial dims always; another dim where the store places it (a time step).
            scale={d: float(s) for d, s in zip(dims, scale) if d in spatial or s != 1.0},
            translation={d: float(t) for d, t in zip(dims, translation)
                         if d in spatial or t != 0.0},
            name=meta.name,
            axes_units=units,
            axes_orientations=orientations,
            axes_types=types,
            channel_names=names if names and "c" in dims else None,
            channel_colors=colors if colors and "c" in dims else None,
            source=arr,
        ))
    base = images[0].scale
    factors = [{d: int(round(im.scale[d] / base[d])) for d in spatial} for im in images[1:]]
    kind_name = entry.get("type")
    try:
        method = Methods(kind_name) if isinstance(kind_name, str) and kind_name else None
    except ValueError:
        method = None
    root = foreign_attrs(group.attrs.asdict())
    return Multiscales(
        images=images,
        metadata=meta,
        scale_factors=factors,
        method=method,
        chunks=dict(zip(dims, images[0].data.chunksize)),
        root_attributes=root or None,
    )


#: ngff-zarr 0.50's name of :func:`from_ngff_zarr`.
from_ome_zarr = from_ngff_zarr
