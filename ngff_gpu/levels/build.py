"""Build a :class:`Multiscales`: plan the levels, then chain one lazy graph per level.

The graphs of levels 1..N are built on first access of ``images[k].data``
(then kept): ``to_ngff_zarr`` streams the pyramid through the engine and never
runs them, so it never pays for building them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ngff_gpu.compute.methods import Methods, as_method, check_dtype
from ngff_gpu.compute.step import LevelStep
from ngff_gpu.dims import canonical_order
from ngff_gpu.errors import ArgumentError, ArgumentTypeError, DimsError
from ngff_gpu.levels.lazy import downsample_lazy
from ngff_gpu.levels.plan import LevelPlan, ScaleFactors, plan_levels
from ngff_gpu.model.axes import axes_for, orientation_from_name
from ngff_gpu.model.image import NgffImage, as_dask, per_dim, source_view, to_ngff_image
from ngff_gpu.model.metadata import Dataset, Metadata
from ngff_gpu.model.metadata_json import method_metadata
from ngff_gpu.model.multiscales import Multiscales
from ngff_gpu.model.transforms import Scale, Translation
from ngff_gpu.namespace import is_dask


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
        checked = check_dims(self.dims, value.ndim, any_names=True)
        self.dims = tuple(checked) if isinstance(self.dims, tuple) else checked


def dataset_path(index: int, name: str) -> str:
    """Array path of level ``index``: ``scale{index}/{name}``."""
    return f"scale{index}/{name}"


def build_metadata(dims: Sequence[str], levels: Sequence[LevelPlan], name: str,
                   units: Mapping[str, str] | None, version: str = "0.5",
                   orientations: Mapping[str, Any] | None = None,
                   types: Mapping[str, str] | None = None,
                   method: Methods | None = None) -> Metadata:
    """:class:`Metadata` for planned ``levels`` (``type`` is the method's name)."""
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
    return Metadata(axes=axes_for(dims, units, orientations, types), datasets=datasets,
                    name=name, version=version,
                    type=method.value if method is not None else None,
                    metadata=method_metadata(method) if method is not None else None)


def _canonical(image: NgffImage) -> NgffImage:
    """``image`` with its axes in ``t, c, z, y, x`` order (a lazy transpose; the same
    image when they already are)."""
    order = canonical_order(image.dims)
    if order == list(range(len(order))):
        return image
    out = copy.copy(image)
    out.data = image.data.transpose(order)
    out.dims = tuple(image.dims[i] for i in order)
    out.source = None
    return out


def to_multiscales(
    data: NgffImage | Any,
    scale_factors: ScaleFactors = 128,
    method: Methods | str | None = None,
    chunks: int | Mapping[str, int] | Sequence[int] | None = None,
    progress: Any = None,
    cache: bool | None = None,
    orientation: str | Mapping[str, Any] | None = None,
    axis_order: str = "canonical",
) -> Multiscales:
    """Plan a multiscale pyramid and build its lazy levels (ngff-zarr's signature).

    Parameters
    ----------
    data : NgffImage or array-like
        An image from :func:`to_ngff_image`, or any array (wrapped with defaults).
    scale_factors : int or list of int or list of dict
        An int builds a ladder automatically (levels keep at least that many
        samples, as ngff-zarr); a list of ints gives absolute factors for every
        spatial dim per level; a list of dicts gives absolute per-dim factors
        (a missing dim is 1).
    method : Methods or str, optional
        Downsampling method; default ``Methods.ITKWASM_GAUSSIAN`` (ngff-zarr's default
        name, computing GAUSSIAN). The name is recorded as given (``metadata.type``).
    chunks : int, dict or sequence, optional
        Output chunks; default 128 per spatial dim in 3-D, 256 in 2-D, 1 for ``t``/``c``.
    progress : optional
        Accepted for ngff-zarr's signature; no effect here (nothing is computed until
        the levels are read or written; ``to_ngff_zarr(progress=True)`` shows a bar).
    cache : bool, optional
        Accepted for ngff-zarr's signature; no effect here: ngff-zarr caches
        intermediate levels on disk to bound memory, while our levels are lazy graphs
        and :func:`to_ngff_zarr` streams them within ``memory_limit``.
    orientation : "LPS", "RAS" or dict, optional
        RFC-4 anatomical orientation of the spatial axes; default the image's
        ``axes_orientations``.
    axis_order : {"canonical", "preserve"}
        ``"canonical"`` (default, as ngff-zarr) puts the axes in ``t, c, z, y, x``
        order with a lazy transpose (axes with other names, RFC-3, keep their order);
        ``"preserve"`` keeps the image's order, which RFC-3 allows: such a pyramid is
        written as OME-Zarr 0.9.dev1 (0.4 to 0.6 refuse an order that is not
        canonical, naming the rule).

    Returns
    -------
    Multiscales

    Raises
    ------
    ScaleFactorError
        On a non-integer relative factor or a dim smaller than its factor.
    UnsupportedDtypeError
        When the method does not accept the data's dtype.
    ArgumentError
        On an unknown ``axis_order`` or orientation preset.
    """
    if axis_order not in ("canonical", "preserve"):
        raise ArgumentError(f"axis_order must be 'canonical' or 'preserve'; got {axis_order!r}")
    if cache is not None and not isinstance(cache, bool):
        raise ArgumentTypeError(f"cache must be True, False or None, got {cache!r}")
    if not isinstance(data, NgffImage) and all(
            hasattr(data, k) for k in ("data", "dims", "scale", "translation")):
        data = NgffImage.adopt(data)  # ngff-zarr's own NgffImage (from its readers)
    if not isinstance(data, NgffImage):
        image = to_ngff_image(data)
    else:
        image = copy.copy(data)
        image.computed_callbacks = list(data.computed_callbacks)
        if not is_dask(image.data):  # built by hand around an array: wrap it lazily
            image.data, image.source = as_dask(image.data)
    # An NgffImage may have been built or edited by hand: its placement is checked as
    # to_ngff_image checks it.
    per_dim("scale", image.scale, image.dims, 1.0, positive=True, types=image.axes_types)
    per_dim("translation", image.translation, image.dims, 0.0, types=image.axes_types)
    if axis_order == "canonical":
        image = _canonical(image)
    if orientation is None:
        orientations = image.axes_orientations
    elif isinstance(orientation, str):
        orientations = orientation_from_name(orientation)
    elif isinstance(orientation, Mapping):
        orientations = dict(orientation)
    else:
        raise ArgumentTypeError(f"orientation must be 'LPS', 'RAS' or a dict, got {orientation!r}")
    method = as_method(method)
    check_dtype(image.data.dtype, method)
    unknown = sorted(set(image.axes_types or {}) - set(image.dims))
    if unknown:
        raise DimsError(f"axes_types names dim(s) {unknown} that are not in dims "
                        f"{list(image.dims)}")
    levels = plan_levels(image.dims, image.data.shape, image.scale, image.translation,
                         scale_factors, chunks, method, types=image.axes_types)
    images = []
    reads_source = image.reads_source()
    level0 = (source_view(image.source, levels[0].chunks) if reads_source
              else image.data.rechunk(levels[0].chunks))
    dims = tuple(image.dims)
    for lv in levels:
        level_data = level0
        if lv.step is not None:
            level_data = PendingLevel(images[lv.source_index], lv.step, lv.chunks, lv.shape,
                                      image.data.dtype)
        images.append(LevelImage(
            data=level_data,
            dims=dims,
            scale=dict(lv.scale),
            translation=dict(lv.translation),
            name=image.name,
            axes_units=dict(image.axes_units) if image.axes_units else None,
            axes_orientations=dict(orientations) if orientations else None,
            axes_types=dict(image.axes_types) if image.axes_types else None,
            channel_names=list(image.channel_names) if image.channel_names else None,
            channel_colors=list(image.channel_colors) if image.channel_colors else None,
            computed_callbacks=list(image.computed_callbacks) if lv.index == 0 else [],
            source=image.source if lv.index == 0 and reads_source else None,
        ))
    metadata = build_metadata(dims, levels, image.name, image.axes_units,
                              orientations=orientations, types=image.axes_types, method=method)
    return Multiscales(
        images=images,
        metadata=metadata,
        scale_factors=scale_factors,
        method=method,
        chunks=dict(zip(dims, levels[0].chunks)),
    )
