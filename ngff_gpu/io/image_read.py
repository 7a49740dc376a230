"""Read the OME-Zarr image (0.4, 0.5, 0.6 or 0.9.dev1) an open group holds into a
:class:`Multiscales` of lazy dask arrays: the image part of
:func:`ngff_gpu.io.reader.from_ngff_zarr`, also used for the images of a scene."""

from __future__ import annotations

import numpy as np
import zarr

from ngff_gpu.compute.methods import Methods
from ngff_gpu.dims import DEFAULT_AXIS_TYPES, check_dims, spatial_dims
from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.io.group import open_dataset, read_ome_attrs
from ngff_gpu.io.matrices import load_matrices
from ngff_gpu.io.session import foreign_attrs
from ngff_gpu.model.axes import orientations_of
from ngff_gpu.model.image import NgffImage, source_view
from ngff_gpu.model.metadata import Metadata06
from ngff_gpu.model.metadata_json import level_placement, metadata_from_json
from ngff_gpu.model.multiscales import Multiscales
from ngff_gpu.model.omero import omero_from_json


def read_image_group(group: zarr.Group, validate: bool = False,
                     version: str | None = None) -> Multiscales:
    """The image ``group`` holds (see :func:`ngff_gpu.io.reader.from_ngff_zarr` for
    ``validate``, ``version``, what is returned and raised)."""
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

