"""Label images under ``labels/`` (image-label metadata), pyramids built with MODE.

The writer writes label images in its own store session, after checking every
one of them (:func:`label_pyramids`) before any level of the image is written.
This module only checks, plans and describes them; it never writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ngff_gpu.compute.methods import Methods
from ngff_gpu.errors import DimsError, NgffGpuError, UnsupportedDtypeError
from ngff_gpu.levels.build import to_multiscales
from ngff_gpu.levels.derive import absolute_factors
from ngff_gpu.levels.plan import LevelPlan
from ngff_gpu.model.image import NgffImage, check_name, to_ngff_image
from ngff_gpu.model.multiscales import Multiscales

#: At most this many label values get a colour in ``image-label.colors``.
MAX_COLORS = 1024


def check_label(name: str, data: Any, image: NgffImage) -> NgffImage:
    """``data`` as an :class:`NgffImage` placed like ``image``, checked.

    Raises
    ------
    UnsupportedDtypeError
        When the label image is not of an integer dtype.
    DimsError
        When its dims or shape differ from the image's level 0.
    ArgumentError, ArgumentTypeError
        When the name is not a non-empty string without ``/``.
    """
    check_name(name, "label name")
    if isinstance(data, NgffImage):
        label = data
    else:
        ndim = getattr(data, "ndim", None)
        if ndim != len(image.dims):
            raise DimsError(f"label image {name!r} has {ndim} dims, the image has "
                            f"{len(image.dims)} ({''.join(image.dims)})")
        label = to_ngff_image(data, dims=image.dims, scale=image.scale,
                              translation=image.translation, name=name,
                              axes_units=image.axes_units)
    dtype = np.dtype(label.data.dtype)
    if dtype.kind not in "iu":
        raise UnsupportedDtypeError(f"label image {name!r} has dtype {dtype}; label images "
                                    "must be of an integer dtype")
    if list(label.dims) != list(image.dims):
        raise DimsError(f"label image {name!r} has dims {''.join(label.dims)}, the image has "
                        f"{''.join(image.dims)}")
    if tuple(label.data.shape) != tuple(image.data.shape):
        raise DimsError(f"label image {name!r} has shape {tuple(label.data.shape)}, the image "
                        f"has {tuple(image.data.shape)}")
    return label


def label_pyramids(labels: Mapping[str, Any], image: Multiscales,
                   plans: Sequence[LevelPlan]) -> dict[str, Multiscales]:
    """Check every label image, then plan its pyramid: the image's absolute factors and
    level-0 chunks with MODE, flat dataset paths ``0``, ``1``, ... (the ome-zarr
    convention for label images; ome-zarr-models 1.7 cannot validate nested paths
    inside ``labels/``).

    Raises
    ------
    UnsupportedDtypeError, DimsError, ScaleFactorError
        Naming the label image, before anything is written.
    """
    img0 = image.images[0]
    checked = {name: check_label(name, data, img0) for name, data in labels.items()}
    factors = absolute_factors(plans)
    chunks = dict(zip(img0.dims, plans[0].chunks))
    out = {}
    for name, label in checked.items():
        try:
            ms = to_multiscales(label, scale_factors=factors, chunks=chunks, method=Methods.MODE)
        except NgffGpuError as exc:
            raise type(exc)(f"label image {name!r}: {exc}") from None
        for k, ds in enumerate(ms.metadata.datasets):
            ds.path = str(k)
        ms.metadata.name = name
        out[name] = ms
    return out


def label_color(value: int) -> list[int]:
    """A fixed RGBA colour per label value (0, the background, transparent)."""
    if value == 0:
        return [0, 0, 0, 0]
    h = (int(value) * 2654435761) & 0xFFFFFFFF  # Knuth's multiplicative hash
    return [64 + (h & 0xBF), 64 + ((h >> 8) & 0xBF), 64 + ((h >> 16) & 0xBF), 255]


def colors_for(values: Sequence[int]) -> list[dict[str, Any]]:
    """``image-label.colors`` for the label values found (at most :data:`MAX_COLORS`,
    the smallest non-zero first; the background only when nothing else is there)."""
    vals = sorted({int(v) for v in values})
    nonzero = [v for v in vals if v != 0][:MAX_COLORS]
    chosen = nonzero or (vals[:1] or [0])
    return [{"label-value": v, "rgba": label_color(v)} for v in chosen]


def image_label(version: str, colors: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``image-label`` entry: source ``../../`` and colours (the strict label
    schema requires them)."""
    entry: dict[str, Any] = {"colors": colors, "source": {"image": "../../"}}
    if version == "0.4":
        entry = {"version": "0.4", **entry}
    return entry


def labels_group_attrs(version: str, names: Sequence[str]) -> dict[str, Any]:
    """Attributes of the ``labels`` group listing the label images."""
    if version != "0.4":
        return {"ome": {"version": version, "labels": list(names)}}
    return {"labels": list(names)}


def unique_values(array: Any, limit: int = MAX_COLORS + 1) -> list[int]:
    """Distinct values of a (written) zarr array, chunk by chunk (bounded memory);
    stops collecting new values beyond ``limit``."""
    import itertools

    found: set[int] = set()
    chunks = getattr(array, "shards", None) or array.chunks
    grid = [range(0, n, c) for n, c in zip(array.shape, chunks)]
    for start in itertools.product(*grid):
        sl = tuple(slice(s, s + c) for s, c in zip(start, chunks))
        vals = np.unique(array[sl])
        found.update(int(v) for v in vals[: limit + 1])
        if len([v for v in found if v != 0]) >= limit:
            break
    return sorted(found)
