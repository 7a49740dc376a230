"""Plan the pyramid (pure Python, no data touched).

From an image's shape and dims, the scale factors, the chunks and the method,
:func:`plan_levels` derives every level's shape, absolute and relative
factors, its :class:`~ngff_gpu.compute.step.LevelStep`, chunks, and the scale and
translation that say where its samples really are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ngff_gpu.compute.methods import Methods, as_method
from ngff_gpu.compute.step import LevelStep
from ngff_gpu.dims import axis_type, spatial_dims
from ngff_gpu.errors import ArgumentTypeError, DimsError, ScaleFactorError

ScaleFactors = int | Sequence[int] | Sequence[Mapping[str, int]]


@dataclass(frozen=True)
class LevelPlan:
    """One level of the pyramid.

    Attributes
    ----------
    index : int
        Level number (0 is the input).
    shape : tuple of int
        Array shape.
    factors : dict
        Absolute factor per dim relative to level 0.
    step : LevelStep or None
        How this level is computed from the previous one (None for level 0).
    chunks : tuple of int
        Chunk shape.
    scale, translation : dict
        Physical placement per spatial dim.
    source : int or None
        The level ``step`` applies to: None for the level before this one, else the
        nearest earlier level whose factors divide this level's (a relative factor
        that is not an integer, docs/design.md 2.1).
    """

    index: int
    shape: tuple[int, ...]
    factors: dict[str, int]
    step: LevelStep | None
    chunks: tuple[int, ...]
    scale: dict[str, float]
    translation: dict[str, float]
    source: int | None = None

    @property
    def source_index(self) -> int:
        """Index of the level this one is computed from."""
        return self.index - 1 if self.source is None else self.source


#: Axis types chunked one sample at a time by default (as ngff-zarr does for ``t``).
ONE_PER_CHUNK_TYPES = ("time", "channel")


def spatial_chunk_default(dims: Sequence[str], types: Mapping[str, Any] | None = None) -> int:
    """128 per spatial dim for 3-D data, 256 for 2-D (and 1-D)."""
    return 128 if len(spatial_dims(dims, types)) >= 3 else 256


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def normalize_chunks(
    chunks: int | Mapping[str, int] | Sequence[int] | None,
    dims: Sequence[str],
    shape: Sequence[int],
    types: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Chunk size per dim, clamped to the shape.

    ``None`` gives 128 (3-D) or 256 (2-D) on spatial dims, 1 on time and channel
    axes and the spatial size on any other (RFC-3) axis; an int applies to the
    spatial dims; a dict sets dims by name; a sequence sets every axis. Axis types
    are :func:`ngff_gpu.dims.axis_type`'s (``types``: the declared ones).

    Raises
    ------
    ArgumentTypeError
        When ``chunks`` or one of its sizes is not an int (``"16"``, ``2.5``, ``(16.5, 16)``).
    DimsError
        When ``chunks`` names dims not in ``dims``, has the wrong length, or a size < 1.
    """
    base = spatial_chunk_default(dims, types)
    spatial = spatial_dims(dims, types)
    out = {d: (1 if axis_type(d, types) in ONE_PER_CHUNK_TYPES else base) for d in dims}
    kinds = "an int, a dict {dim: int} or a sequence of ints (one per dim)"
    if _is_int(chunks):
        for d in spatial:
            out[d] = int(chunks)
    elif isinstance(chunks, Mapping):
        unknown = [k for k in chunks if k not in dims]
        if unknown:
            raise DimsError(f"chunks name dim(s) {unknown} that are not in dims {list(dims)}")
        out.update(chunks)
    elif isinstance(chunks, Sequence) and not isinstance(chunks, str | bytes):
        if len(chunks) != len(dims):
            raise DimsError(f"chunks {tuple(chunks)} do not match dims {list(dims)} "
                            f"(one size per dim)")
        out = dict(zip(dims, chunks))
    elif chunks is not None:
        raise ArgumentTypeError(f"chunks must be {kinds}, got {chunks!r}")
    for d, c in out.items():
        if not _is_int(c):
            raise ArgumentTypeError(f"chunks: size of dim {d!r} must be an int, got {c!r}")
        if c < 1:
            raise DimsError(f"chunks: size of dim {d!r} must be positive, got {c}")
    return {d: max(1, min(int(out[d]), n)) for d, n in zip(dims, shape)}


def auto_scale_factors(
    dims: Sequence[str], shape: Sequence[int], min_length: int, chunks: Mapping[str, int],
    types: Mapping[str, Any] | None = None,
) -> list[dict[str, int]]:
    """ngff-zarr's automatic ladder: halve the spatial dims that are at least
    two chunks long, skipping dims at most half the largest (anisotropy), while
    the level keeps at least ``2 * min_length`` samples."""
    spatial = spatial_dims(dims, types)
    sizes = {d: n for d, n in zip(dims, shape) if d in spatial}
    if not sizes:
        return []
    previous = {d: 1 for d in sizes}
    ladder: list[dict[str, int]] = []
    while any(sizes[d] >= 2 * chunks[d] for d in sizes):
        max_size = max(sizes.values())
        factor = {}
        for d in previous:
            if sizes[d] <= max_size / 2 or sizes[d] / 2 < chunks[d]:
                factor[d] = previous[d]
                continue
            factor[d] = 2 * previous[d]
            sizes[d] = int(sizes[d] / 2)
        prod = 1
        for n in sizes.values():
            prod *= n
        if prod / min_length < 2 or factor == previous:
            break
        ladder.append(factor)
        previous = factor
    return ladder


def normalize_scale_factors(
    scale_factors: ScaleFactors,
    dims: Sequence[str],
    shape: Sequence[int],
    chunks: Mapping[str, int],
    param: str = "scale_factors",
    types: Mapping[str, Any] | None = None,
) -> list[dict[str, int]]:
    """Absolute factors per spatial dim for levels 1..N.

    Each level is an int (every spatial dim), a sequence with one int per spatial dim,
    or a dict ``{dim: int}`` (a missing spatial dim is 1); an int instead of a list
    builds the automatic ladder.

    Raises
    ------
    ArgumentTypeError
        When ``scale_factors`` or a level has the wrong type (None, a string...).
    ScaleFactorError
        On a non-positive or non-integer factor, a factor on an axis that is not
        spatial (``t``, ``c``...), or a dim name not in ``dims``.
    """
    spatial = spatial_dims(dims, types)
    if _is_int(scale_factors):
        if scale_factors < 1:
            raise ScaleFactorError(f"{param} as an int is a minimum length, got {scale_factors}")
        return auto_scale_factors(dims, shape, int(scale_factors), chunks, types)
    if not isinstance(scale_factors, Sequence) or isinstance(scale_factors, str | bytes):
        raise ArgumentTypeError(
            f"{param} must be an int (automatic ladder) or a list of levels (ints, "
            f"sequences or dicts), got {scale_factors!r}")
    levels: list[dict[str, int]] = []
    for k, sf in enumerate(scale_factors, start=1):
        if isinstance(sf, Mapping):
            bad = [d for d in sf if d not in dims]
            if bad:
                raise ScaleFactorError(f"{param} level {k}: names dim(s) {bad} not in {list(dims)}")
            fixed = [d for d in sf if d not in spatial and sf[d] != 1]
            if fixed:
                raise ScaleFactorError(f"{param} level {k}: dims {fixed} are not spatial "
                                       "(t, c...) and are never downsampled")
            level = {d: sf.get(d, 1) for d in spatial}
        elif isinstance(sf, Sequence) and not isinstance(sf, str | bytes):
            if len(sf) != len(spatial):
                raise ScaleFactorError(f"{param} level {k}: {list(sf)} do not match the "
                                       f"spatial dims {spatial} (one factor each)")
            level = dict(zip(spatial, sf))
        elif isinstance(sf, int | float | np.integer | np.floating) and not isinstance(sf, bool):
            level = {d: sf for d in spatial}
        else:
            raise ArgumentTypeError(f"{param} level {k}: expected an int, a sequence or a dict, "
                                    f"got {sf!r}")
        for d, f in level.items():
            if (isinstance(f, bool) or not isinstance(f, int | float | np.integer | np.floating)
                    or not np.isfinite(f) or int(f) != f or int(f) < 1):
                raise ScaleFactorError(
                    f"{param} level {k}: factor {f!r} of dim {d!r} must be a positive integer"
                )
            level[d] = int(f)
        levels.append(level)
    return levels


def plan_levels(
    dims: Sequence[str],
    shape: Sequence[int],
    scale: Mapping[str, float],
    translation: Mapping[str, float],
    scale_factors: ScaleFactors,
    chunks: int | Mapping[str, int] | Sequence[int] | None,
    method: Methods | str | None,
    param: str = "scale_factors",
    types: Mapping[str, Any] | None = None,
) -> list[LevelPlan]:
    """Every level of the pyramid, level 0 first.

    Only spatial axes (:func:`ngff_gpu.dims.spatial_dims`: type ``space``, declared in
    ``types`` or by name) are downsampled and re-placed; every other axis keeps its
    length, scale and translation.

    A level whose factors are not integer multiples of the previous level's (ngff-zarr
    accepts ``[2, 3]``) is computed from the nearest earlier level whose factors divide
    its own (level 0 at worst), so its samples and metadata are exact; ``source`` says
    which (None: the level before).

    Raises
    ------
    ScaleFactorError
        When a dim is smaller than its relative factor; the message names both levels.
    """
    dims = list(dims)
    method = as_method(method)
    chunk_map = normalize_chunks(chunks, dims, shape, types)
    absolute = normalize_scale_factors(scale_factors, dims, shape, chunk_map, param, types)
    shape0 = tuple(int(n) for n in shape)
    spatial = spatial_dims(dims, types)
    prev_f = {d: 1 for d in spatial}  # the spatial dims, factor 1
    levels = [LevelPlan(0, shape0, dict(prev_f), None, tuple(chunk_map[d] for d in dims),
                        dict(scale), dict(translation))]
    for k, level in enumerate(absolute, start=1):
        # The nearest earlier level whose factors divide this level's (level 0 always does).
        j = next(i for i in range(k - 1, -1, -1)
                 if all(level[d] % levels[i].factors[d] == 0 for d in prev_f))
        prev = levels[j]
        rel = [level[d] // prev.factors[d] if d in spatial else 1 for d in dims]
        step = LevelStep(tuple(rel), method)
        try:
            out_shape = step.out_shape(prev.shape)
        except ScaleFactorError as exc:
            raise ScaleFactorError(f"levels {j} -> {k}: {exc}") from None
        sc, tr = dict(prev.scale), dict(prev.translation)
        for axis, d in enumerate(dims):
            if d not in spatial:
                continue
            s_prev = prev.scale.get(d, 1.0)
            sc[d] = s_prev * rel[axis]
            tr[d] = prev.translation.get(d, 0.0) + step.sample_offset(axis) * s_prev
        chunk = tuple(min(chunk_map[d], n) for d, n in zip(dims, out_shape))
        levels.append(LevelPlan(k, out_shape, dict(level), step, chunk, sc, tr,
                                None if j == k - 1 else j))
    return levels
