"""The write plan of a :class:`Multiscales`, derived from its images and metadata.

A writer needs, per level, the shape, the chunks and how to get the pixels. All
of it is read off the Multiscales as it is now (nothing recorded when it was
built), so one from :func:`from_ngff_zarr`, or one a user edited, writes as it reads:

- chunks: the dask chunks of ``images[k].data`` (``chunksize``);
- a level is *derived* when its data is still the downsample of ``images[k-1]``:
  a level of :func:`to_multiscales` whose graph is not built yet
  (:class:`~ngff_gpu.levels.build.PendingLevel` of ``images[k-1]``: read without
  building it), or the lazy graph :func:`~ngff_gpu.levels.lazy.downsample_lazy`
  built from ``images[k-1].data`` with the step given by the scale ratios and a
  method (the dask name says so, :func:`~ngff_gpu.levels.lazy.lazy_level_name`).
  The engine computes it from the level before it, bit-identical to the graph;
- any other level is *copied*: written as its array holds it.

A run of one copied level followed by derived levels is a :class:`Segment`, planned
like a pyramid of its own (its first level plays level 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ngff_gpu.compute.methods import Methods
from ngff_gpu.compute.step import LevelStep
from ngff_gpu.dims import spatial_dims
from ngff_gpu.errors import DimsError, ScaleFactorError
from ngff_gpu.levels.build import PendingLevel
from ngff_gpu.levels.lazy import lazy_level_name
from ngff_gpu.levels.plan import LevelPlan, normalize_chunks
from ngff_gpu.model.image import NgffImage
from ngff_gpu.model.multiscales import Multiscales
from ngff_gpu.namespace import is_dask


@dataclass(frozen=True)
class Segment:
    """Levels ``first .. first + len(levels) - 1``: the first copied from ``source``,
    each later one computed from the one before it.

    Attributes
    ----------
    first : int
        Index of the first level in the Multiscales.
    levels : tuple of LevelPlan
        The segment's levels, indexed from 0 (``levels[0].step`` is None).
    source : object
        What the first level is read from: the wrapped array (when the image still
        reads it, :meth:`NgffImage.reads_source`) or the level's array.
    """

    first: int
    levels: tuple[LevelPlan, ...]
    source: Any

    @property
    def indices(self) -> range:
        """Indices of the segment's levels in the Multiscales."""
        return range(self.first, self.first + len(self.levels))


def _pending(image: NgffImage) -> PendingLevel | None:
    pending = getattr(image, "pending", None)
    return pending() if callable(pending) else None


def _shape_dtype(image: NgffImage) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype of a level, without building a pending graph."""
    pending = _pending(image)
    data = pending if pending is not None else image.data
    return tuple(int(n) for n in data.shape), data.dtype


def _chunks(image: NgffImage, default: Any) -> tuple[int, ...]:
    pending = _pending(image)
    if pending is not None:
        return tuple(max(1, min(int(c), n)) for c, n in zip(pending.chunks, pending.shape))
    data = image.data
    shape = tuple(int(n) for n in data.shape)
    if is_dask(data):
        return tuple(max(1, int(c)) for c in data.chunksize)
    chunks = getattr(data, "chunks", None)  # a zarr array
    if isinstance(chunks, tuple) and len(chunks) == len(shape) and all(
            isinstance(c, int) for c in chunks):
        return tuple(max(1, min(c, n)) for c, n in zip(chunks, shape))
    c = normalize_chunks(default, image.dims, shape, image.axes_types)
    return tuple(c[d] for d in image.dims)


def relative_factors(prev: NgffImage, cur: NgffImage) -> tuple[int, ...] | None:
    """Integer factor per axis of ``cur`` over ``prev`` from their scales, checked
    against the shapes (``floor(n / f)``); None when they are not such a step."""
    out = []
    spatial = spatial_dims(cur.dims, cur.axes_types)
    for d, n, m in zip(cur.dims, prev.data.shape, cur.data.shape):
        if d not in spatial:
            f = 1
        else:
            a, b = prev.scale.get(d, 1.0), cur.scale.get(d, 1.0)
            if not (math.isfinite(a) and math.isfinite(b)) or a <= 0 or b <= 0:
                return None
            r = b / a
            f = round(r)
            if f < 1 or abs(r - f) > 1e-6 * r:
                return None
        if n < f or n // f != m:
            return None
        out.append(int(f))
    return tuple(out)


def _derived_step(prev: NgffImage, cur: NgffImage, method: Methods | None) -> LevelStep | None:
    pending = _pending(cur)
    if pending is not None:
        return pending.step if pending.prev is prev else None
    if not is_dask(cur.data) or not cur.data.name.startswith("downsample-"):
        return None  # (decided before prev.data is touched: it may build a pending graph)
    if not is_dask(prev.data) or list(prev.dims) != list(cur.dims):
        return None
    rel = relative_factors(prev, cur)
    if rel is None:
        return None
    candidates = [method.definition] if method is not None else []
    candidates += [m.definition for m in Methods]
    for m in dict.fromkeys(candidates):
        step = LevelStep(rel, m)
        if cur.data.name == lazy_level_name(prev.data, step, cur.data.chunks):
            return step
    return None


def level_plans(ms: Multiscales) -> list[LevelPlan]:
    """One :class:`LevelPlan` per level of ``ms`` (``step`` None for a copied level).

    ``factors`` are absolute per spatial dim (scale ratios to level 0, rounded;
    1 where they are not integers), ``chunks`` the dask chunks.

    Raises
    ------
    DimsError
        When the images and the metadata's datasets do not match.
    """
    images = ms.images
    if not images:
        raise DimsError("the Multiscales has no images")
    if len(ms.metadata.datasets) != len(images):
        raise DimsError(f"the Multiscales has {len(images)} images but "
                        f"{len(ms.metadata.datasets)} datasets in its metadata")
    dims = list(images[0].dims)
    spatial = spatial_dims(dims, images[0].axes_types)
    dtype = images[0].data.dtype
    base = images[0].scale
    plans: list[LevelPlan] = []
    for k, img in enumerate(images):
        shape, dt = _shape_dtype(img)
        if list(img.dims) != dims or len(shape) != len(dims):
            raise DimsError(f"level {k} has dims {img.dims}, level 0 has {dims}")
        if dt != dtype:
            raise DimsError(f"level {k} has dtype {dt}, level 0 has {dtype}")
        step = _derived_step(images[k - 1], img, ms.method) if k else None
        factors = {}
        for d in spatial:
            r = img.scale.get(d, 1.0) / base.get(d, 1.0) if base.get(d, 1.0) else 1.0
            factors[d] = max(1, round(r)) if math.isfinite(r) else 1
        plans.append(LevelPlan(k, shape, factors, step,
                               _chunks(img, ms.chunks), dict(img.scale), dict(img.translation)))
    return plans


def plan_segments(ms: Multiscales, plans: Sequence[LevelPlan] | None = None) -> list[Segment]:
    """Cut the levels of ``ms`` into :class:`Segment` s (see the module docstring)."""
    plans = list(plans) if plans is not None else level_plans(ms)
    starts = [k for k, lv in enumerate(plans) if lv.step is None]
    segments = []
    for i, first in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(plans)
        local = tuple(LevelPlan(k - first, lv.shape, lv.factors, lv.step, lv.chunks, lv.scale,
                                lv.translation) for k, lv in enumerate(plans[first:end], first))
        img = ms.images[first]
        segments.append(Segment(first, local, img.source if img.reads_source() else img.data))
    return segments


def absolute_factors(plans: Sequence[LevelPlan]) -> list[dict[str, int]]:
    """Absolute factors of levels 1..N relative to level 0, as ``to_multiscales`` takes
    them (for a label pyramid that follows the image's)."""
    out = []
    for lv in plans[1:]:
        for d, f in lv.factors.items():
            r = lv.scale.get(d, 1.0) / plans[0].scale.get(d, 1.0)
            if abs(r - f) > 1e-6 * max(r, 1.0):
                raise ScaleFactorError(
                    f"level {lv.index}: scale of dim {d!r} is {r:g} times level 0's, not an "
                    "integer factor; a label pyramid cannot follow it")
        out.append(dict(lv.factors))
    return out
