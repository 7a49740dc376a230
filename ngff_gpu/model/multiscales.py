"""Multiscales: every level of an image as lazy arrays, with its OME metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ngff_gpu.compute.methods import Methods
from ngff_gpu.errors import ArgumentTypeError
from ngff_gpu.model.axes import Axis
from ngff_gpu.model.image import NgffImage
from ngff_gpu.model.metadata import Dataset, Metadata, Metadata06
from ngff_gpu.model.omero import omero_from_json, omero_json
from ngff_gpu.model.pretty import PrettyRepr
from ngff_gpu.model.transforms import Scale, Translation


@dataclass(repr=False)
class Multiscales(PrettyRepr):
    """A multiscale image: one :class:`NgffImage` per level and the metadata.

    Attributes
    ----------
    images : list of NgffImage
        Level 0 first; lazy dask arrays.
    metadata : Metadata or Metadata06
        Axes and per-level datasets with their scale and translation (the 0.4/0.5 form;
        :class:`Metadata06` for a 0.6 store or a 0.6 model with transformations between
        coordinate systems).
    scale_factors : int or list
        As passed to :func:`to_multiscales`.
    method : Methods
        Downsampling method.
    chunks : dict
        Chunk size per dim.
    root_attributes : dict, optional
        Root attributes beside the OME metadata (application metadata such as
        provenance): :func:`~ngff_gpu.from_ngff_zarr` fills them with every root key
        the OME-Zarr writer does not own, :func:`~ngff_gpu.to_ngff_zarr` writes them
        back. Not in the repr (the seed's page pins it).

    Notes
    -----
    A writer plans from ``images`` and ``metadata`` alone (no hidden plan): each
    level is written as ``images[k].data`` holds it, with its dask chunks, at
    ``metadata.datasets[k].path``; a level that is still the lazy downsample of the
    level before it is computed from that level instead of through dask (same bits).
    So a Multiscales from :func:`from_ngff_zarr`, or one a user edits (a level's data
    replaced, rechunked), writes as it reads.
    """

    images: list[NgffImage]
    metadata: Metadata | Metadata06
    scale_factors: Any = None
    method: Methods | None = None
    chunks: dict[str, int] | None = None
    #: ngff-zarr's record of each generated level's dask key. Ours is not needed (a
    #: level knows whether it is still the downsample of the one before it, see
    #: :mod:`ngff_gpu.levels.derive`): accepted, kept, never read.
    generated_data_keys: list[str] | None = field(default=None, repr=False, compare=False)
    root_attributes: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def adopt(cls, other: Any) -> Multiscales:
        """A Multiscales with the images and metadata of ``other``, a multiscales of
        another library with ngff-zarr's fields (``images`` with ``data``, ``dims``,
        ``scale``, ``translation``; ``metadata`` with ``axes``, ``datasets`` and
        ``name``); ``other`` itself when it is one of ours.

        Raises
        ------
        ArgumentTypeError
            When ``other`` has no ``images`` and ``metadata``.
        """
        if isinstance(other, Multiscales):
            return other
        images, meta = getattr(other, "images", None), getattr(other, "metadata", None)
        if not images or meta is None:
            raise ArgumentTypeError(f"multiscales must be a Multiscales (from to_multiscales "
                                    f"or from_ngff_zarr), got {type(other).__name__}")
        ours = [im if isinstance(im, NgffImage) else NgffImage.adopt(im) for im in images]
        dims = ours[0].dims
        axes = [Axis(name=a.name, type=getattr(a, "type", None), unit=getattr(a, "unit", None),
                     orientation=getattr(a, "orientation", None),
                     **({"discrete": a.discrete} if hasattr(a, "discrete") else {}))
                for a in meta.axes]
        datasets = [Dataset(path=ds.path, coordinateTransformations=[
            Scale(scale=[float(im.scale.get(d, 1.0)) for d in dims]),
            Translation(translation=[float(im.translation.get(d, 0.0)) for d in dims])])
            for ds, im in zip(meta.datasets, ours)]
        kind = getattr(meta, "type", None)
        version = getattr(meta, "version", None)
        version = str(getattr(version, "value", version))  # ngff-zarr's may be an enum
        metadata = Metadata(axes=axes, datasets=datasets, name=getattr(meta, "name", "image"),
                            version=version if version in ("0.4", "0.5") else "0.5",
                            omero=omero_from_json(omero_json(getattr(meta, "omero", None))),
                            type=str(kind) if kind is not None else None)
        systems = getattr(meta, "coordinateSystems", None)
        if systems and getattr(meta, "coordinateTransformations", None):
            # a 0.6 model with transformations between systems: keep them (and the systems)
            metadata = Metadata06.from_flat(metadata)
            intrinsic = metadata.coordinateSystems[0].name
            metadata.coordinateSystems += [cs for cs in systems if cs.name != intrinsic]
            metadata.coordinateTransformations = list(meta.coordinateTransformations)
        return cls(images=ours, metadata=metadata, scale_factors=getattr(other, "scale_factors",
                                                                          None),
                   chunks=None, root_attributes=getattr(other, "root_attributes", None))

    @property
    def dims(self) -> tuple[str, ...]:
        """The dims of level 0."""
        return tuple(self.images[0].dims)

    def to_ome_zarr(self, store: Any, **kwargs: Any) -> None:
        """Write this multiscale image: :func:`~ngff_gpu.to_ome_zarr` ``(store, self,
        **kwargs)`` (ngff-zarr 0.50's convenience method)."""
        STORE_IO["write"](store, self, **kwargs)

    @classmethod
    def from_ome_zarr(cls, store: Any, **kwargs: Any) -> Multiscales:
        """Read an OME-Zarr store: :func:`~ngff_gpu.from_ome_zarr` ``(store, **kwargs)``
        (ngff-zarr 0.50's convenience classmethod)."""
        return STORE_IO["read"](store, **kwargs)


#: The store functions behind :meth:`Multiscales.to_ome_zarr` and
#: :meth:`Multiscales.from_ome_zarr`. The model stage may not import the io stage (the
#: layer rule), so :mod:`ngff_gpu.io.write_api` and :mod:`ngff_gpu.io.reader` put
#: their functions here when they are imported (``import ngff_gpu`` imports both).
STORE_IO: dict[str, Any] = {}


#: ngff-zarr 0.50's name of :class:`Multiscales`.
NgffMultiscales = Multiscales
