"""Multiscales: every level of an image as lazy arrays, with its OME metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ngff_gpu.compute.methods import Methods
from ngff_gpu.model.image import NgffImage
from ngff_gpu.model.metadata import Metadata
from ngff_gpu.model.pretty import PrettyRepr


@dataclass(repr=False)
class Multiscales(PrettyRepr):
    """A multiscale image: one :class:`NgffImage` per level and the metadata.

    Attributes
    ----------
    images : list of NgffImage
        Level 0 first; lazy dask arrays.
    metadata : Metadata
        Axes and per-level datasets with their scale and translation.
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
    metadata: Metadata
    scale_factors: Any = None
    method: Methods | None = None
    chunks: dict[str, int] | None = None
    root_attributes: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def dims(self) -> tuple[str, ...]:
        """The dims of level 0."""
        return tuple(self.images[0].dims)


#: ngff-zarr 0.50's name of :class:`Multiscales`.
NgffMultiscales = Multiscales
