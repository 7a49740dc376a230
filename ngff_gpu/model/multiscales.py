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
    """

    images: list[NgffImage]
    metadata: Metadata
    scale_factors: Any = None
    method: Methods | None = None
    chunks: dict[str, int] | None = None
    levels: list[Any] = field(default_factory=list, repr=False)
    #: Name of the dask array ``images[0].data`` was built as (see :meth:`level0_source`).
    level0_name: str | None = field(default=None, repr=False)

    def level0_source(self) -> Any:
        """What the engine reads level 0 from: the wrapped array when ``images[0].data``
        is still the lazy view of it, else the dask array."""
        img = self.images[0]
        if img.source is not None and self.level0_name == img.data.name:
            return img.source
        return img.data
