"""Read an OME-Zarr store (0.4 or 0.5) back into a Multiscales of lazy dask arrays."""

from __future__ import annotations

from typing import Any

from ngff_gpu.compute.methods import Methods
from ngff_gpu.dims import SPATIAL_DIMS, check_dims
from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.io.containers import open_image_group
from ngff_gpu.io.group import open_dataset, read_ome_attrs
from ngff_gpu.model.image import NgffImage, source_view
from ngff_gpu.model.metadata import Metadata, level_placement, metadata_from_json
from ngff_gpu.model.multiscales import Multiscales


def from_ngff_zarr(store: Any, validate: bool = False, *,
                   storage_options: dict[str, Any] | None = None) -> Multiscales:
    """Open an OME-Zarr image as a :class:`Multiscales` with lazy dask arrays.

    Parameters
    ----------
    store : str, pathlib.Path, zarr store, zarr.Group or fsspec URL
        The OME-Zarr image group; a path below a store (``plate.ome.zarr/A/1/0``,
        also inside a ``.ozx``), or a ``bioformats2raw.layout`` container of one
        series (see :func:`~ngff_gpu.io.containers.open_image_group`).
    validate : bool
        Validate the store with ``ome-zarr-models`` first.
    storage_options : dict, optional
        fsspec options for a URL store (``{"anon": True}``...) plus ``"retry"``, our
        retry policy (docs/design.md, "Remote stores"); the lazy arrays read through
        it. Ignored for other stores, as ngff-zarr does.

    Raises
    ------
    InvalidStoreError
        If the store is not an OME-Zarr 0.4/0.5 image.
    ArgumentError
        For a plate's root or a container of several series (the message names the
        paths to open).
    RemoteStoreError
        When a remote store keeps failing (:class:`StoreThrottledError`,
        :class:`StoreUnavailableError`) or denies access (:class:`StoreAccessDeniedError`).
    """
    group = open_image_group(store, storage_options=storage_options)
    if validate:
        from ngff_gpu.io.validate import validate_store

        validate_store(group)
    version, attrs = read_ome_attrs(group)
    entry = attrs["multiscales"][0]
    meta: Metadata = metadata_from_json(entry, version)
    dims = [a.name for a in meta.axes]
    try:
        check_dims(dims, len(dims))
    except ArgumentError as exc:
        raise InvalidStoreError(f"{group.store}: multiscales[0].axes: {exc}") from None
    units = {a.name: a.unit for a in meta.axes if a.unit} or None
    images = []
    for i, ds in enumerate(meta.datasets):
        arr = open_dataset(group, ds.path, len(dims), f"multiscales[0].datasets[{i}]")
        scale, translation = level_placement(meta, i, with_global=False)
        images.append(NgffImage(
            data=source_view(arr, arr.chunks),  # lazy; the writer reads ``arr`` directly
            dims=list(dims),
            scale={d: float(s) for d, s in zip(dims, scale) if d in SPATIAL_DIMS},
            translation={d: float(t) for d, t in zip(dims, translation) if d in SPATIAL_DIMS},
            name=meta.name,
            axes_units=units,
            source=arr,
        ))
    base = images[0].scale
    factors = [{d: int(round(im.scale[d] / base[d])) for d in base} for im in images[1:]]
    kind = entry.get("type")
    try:
        method = Methods(kind) if isinstance(kind, str) and kind else None
    except ValueError:
        method = None
    return Multiscales(
        images=images,
        metadata=meta,
        scale_factors=factors,
        method=method,
        chunks=dict(zip(dims, images[0].data.chunksize)),
    )
