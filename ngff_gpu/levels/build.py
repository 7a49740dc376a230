"""Build a :class:`Multiscales`: plan the levels, then chain one lazy graph per level.

The graphs of levels 1..N are built on first access of ``images[k].data``
(then kept): ``to_ngff_zarr`` streams the pyramid through the engine and never
runs them, so it never pays for building them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ngff_gpu.compute.methods import Methods, as_method, check_dtype
from ngff_gpu.compute.step import LevelStep
from ngff_gpu.dims import axis_type
from ngff_gpu.levels.lazy import downsample_lazy
from ngff_gpu.levels.plan import LevelPlan, ScaleFactors, plan_levels
from ngff_gpu.model.image import NgffImage, per_dim, source_view, to_ngff_image
from ngff_gpu.model.metadata import Axis, Dataset, Metadata, Scale, Translation
from ngff_gpu.model.multiscales import Multiscales


@dataclass(frozen=True)
class PendingLevel:
    """A level whose graph is not built yet: the downsample of ``prev``'s data by
    ``step`` with ``chunks`` (what :func:`downsample_lazy` builds from them).

    A writer reads it without building the graph (:mod:`ngff_gpu.levels.derive`):
    the level is derived from the level before it while ``prev`` is that level.
    """

    prev: NgffImage
    step: LevelStep
    chunks: tuple[int, ...]
    shape: tuple[int, ...]
    dtype: Any

    @property
    def ndim(self) -> int:
        """Number of dims."""
        return len(self.shape)

    def build(self) -> Any:
        """The dask graph of the level."""
        return downsample_lazy(self.prev.data, self.step, self.chunks)


class LevelImage(NgffImage):
    """An :class:`NgffImage` whose ``data`` (a lazy dask array) is built on first access."""

    def pending(self) -> PendingLevel | None:
        """The level's definition while its graph is not built yet, else None."""
        value = self.__dict__["data"]
        return value if isinstance(value, PendingLevel) else None

    @property  # type: ignore[override]
    def data(self) -> Any:
        value = self.__dict__["data"]
        if isinstance(value, PendingLevel):
            value = self.__dict__["data"] = value.build()
        return value

    @data.setter
    def data(self, value: Any) -> None:
        self.__dict__["data"] = value

    def __post_init__(self) -> None:
        from ngff_gpu.dims import check_dims

        value = self.__dict__["data"]
        ndim = value.ndim
        self.dims = check_dims(self.dims, ndim)


def dataset_path(index: int, name: str) -> str:
    """Array path of level ``index``: ``scale{index}/{name}``."""
    return f"scale{index}/{name}"


def build_metadata(dims: Sequence[str], levels: Sequence[LevelPlan], name: str,
                   units: Mapping[str, str] | None, version: str = "0.5") -> Metadata:
    """:class:`Metadata` for planned ``levels``."""
    units = units or {}
    axes = [Axis(name=d, type=axis_type(d), unit=units.get(d)) for d in dims]
    datasets = [
        Dataset(
            path=dataset_path(lv.index, name),
            coordinateTransformations=[
                Scale(scale=[float(lv.scale.get(d, 1.0)) for d in dims]),
                Translation(translation=[float(lv.translation.get(d, 0.0)) for d in dims]),
            ],
        )
        for lv in levels
    ]
    return Metadata(axes=axes, datasets=datasets, name=name, version=version)


def to_multiscales(
    image: NgffImage | Any,
    scale_factors: ScaleFactors = 128,
    chunks: int | Mapping[str, int] | Sequence[int] | None = None,
    method: Methods | str | None = None,
) -> Multiscales:
    """Plan a multiscale pyramid and build its lazy levels.

    Parameters
    ----------
    image : NgffImage or array-like
        An image from :func:`to_ngff_image`, or any array (wrapped with defaults).
    scale_factors : int or list of int or list of dict
        An int builds a ladder automatically (levels keep at least that many
        samples, as ngff-zarr); a list of ints gives absolute factors for every
        spatial dim per level; a list of dicts gives absolute per-dim factors
        (a missing dim is 1).
    chunks : int, dict or sequence, optional
        Output chunks; default 128 per spatial dim in 3-D, 256 in 2-D, 1 for ``t``/``c``.
    method : Methods or str, optional
        Downsampling method; default GAUSSIAN. ngff-zarr's names are accepted.

    Returns
    -------
    Multiscales

    Raises
    ------
    ScaleFactorError
        On a non-integer relative factor or a dim smaller than its factor.
    UnsupportedDtypeError
        When the method does not accept the data's dtype.
    """
    if not isinstance(image, NgffImage):
        image = to_ngff_image(image)
    # An NgffImage may have been built or edited by hand: its placement is checked as
    # to_ngff_image checks it.
    per_dim("scale", image.scale, image.dims, 1.0, positive=True)
    per_dim("translation", image.translation, image.dims, 0.0)
    method = as_method(method)
    check_dtype(image.data.dtype, method)
    levels = plan_levels(image.dims, image.data.shape, image.scale, image.translation,
                         scale_factors, chunks, method)
    images = []
    reads_source = image.reads_source()
    data = (source_view(image.source, levels[0].chunks) if reads_source
            else image.data.rechunk(levels[0].chunks))
    for lv in levels:
        if lv.step is not None:
            data = PendingLevel(images[-1], lv.step, lv.chunks, lv.shape, image.data.dtype)
        images.append(LevelImage(
            data=data,
            dims=list(image.dims),
            scale=dict(lv.scale),
            translation=dict(lv.translation),
            name=image.name,
            axes_units=dict(image.axes_units) if image.axes_units else None,
            source=image.source if lv.index == 0 and reads_source else None,
        ))
    metadata = build_metadata(image.dims, levels, image.name, image.axes_units)
    return Multiscales(
        images=images,
        metadata=metadata,
        scale_factors=scale_factors,
        method=method,
        chunks=dict(zip(image.dims, levels[0].chunks)),
    )
