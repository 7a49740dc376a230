"""OME-Zarr ``omero`` display metadata computed from the data.

:func:`omero_from_data` takes a strided subsample (never the whole volume)
and sets each channel's display window from its 0.1 % / 99.9 % quantiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ngff_gpu.errors import ArgumentError, ArgumentTypeError
from ngff_gpu.model.omero import Omero, OmeroChannel, OmeroWindow
from ngff_gpu.namespace import to_host

OMERO_MAX_SAMPLES = 4_000_000
_COLORS = ("FF0000", "00FF00", "0000FF", "FF00FF", "00FFFF", "FFFF00", "FFFFFF")


def _subsample(data: Any, dims: Sequence[str], max_samples: int) -> np.ndarray:
    """A strided subsample of ``data`` with at most ``max_samples`` samples (c kept whole)."""
    shape = tuple(int(n) for n in data.shape)
    c_axis = list(dims).index("c") if "c" in dims else None
    n_c = shape[c_axis] if c_axis is not None else 1
    budget = max(1, max_samples // max(n_c, 1))
    steps = [1] * len(shape)
    # Stride the slowest axes first: fewer chunks touched than striding every axis.
    for axis in range(len(shape)):
        if axis == c_axis:
            continue
        rest = int(np.prod([-(-n // s) for i, (n, s) in enumerate(zip(shape, steps)) if i != c_axis]))
        if rest <= budget:
            break
        others = rest // (-(-shape[axis] // steps[axis]))
        want = max(1, budget // max(others, 1))
        steps[axis] = max(1, -(-shape[axis] // want))
    key = tuple(slice(None, None, s) for s in steps)
    return to_host(data[key])


def omero_from_data(data: Any, dims: Sequence[str], labels: Sequence[str] | None = None,
                    max_samples: int = OMERO_MAX_SAMPLES,
                    quantiles: tuple[float, float] = (0.001, 0.999),
                    colors: Sequence[str] | None = None) -> dict[str, Any]:
    """An OME-Zarr ``omero`` block with a display window per channel.

    ``start``/``end`` are the 0.1 % and 99.9 % quantiles of a strided
    subsample (at most ``max_samples`` samples; the volume is never read
    whole); ``min``/``max`` are the dtype's range for integers and the
    subsample's range for floats.

    Parameters
    ----------
    data : array-like
        Pixels (NumPy, dask, zarr, CuPy, torch...).
    dims : sequence of str
        Dim names of ``data``.
    labels : sequence of str, optional
        Channel names; default ``channel 0``, ``channel 1``...
    max_samples : int
        Subsample size cap.

    Returns
    -------
    dict
        ``{"channels": [...], "rdefs": {...}}``.
    """
    dims = list(dims)
    sample = _subsample(data, dims, max_samples)
    dtype = np.dtype(sample.dtype)
    if "c" in dims:
        per_channel = np.moveaxis(sample, dims.index("c"), 0)
    else:
        per_channel = sample[np.newaxis]
    n = per_channel.shape[0]
    if labels is not None and len(labels) != n:
        raise ArgumentError(f"labels: {len(labels)} channel labels for {n} channels")
    if colors is not None and len(colors) != n:
        raise ArgumentError(f"colors: {len(colors)} colours for {n} channels")
    colors = list(colors) if colors is not None else ["FFFFFF"] if n == 1 else list(
        _COLORS[:3]) if n == 3 else [_COLORS[i % len(_COLORS)] for i in range(n)]
    channels = []
    for i in range(n):
        values = per_channel[i].astype(np.float64, copy=False).ravel()
        finite = values[np.isfinite(values)]
        if finite.size:
            start, end = (float(v) for v in np.quantile(finite, list(quantiles)))
            lo, hi = float(finite.min()), float(finite.max())
        else:
            start = end = lo = hi = 0.0
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            lo, hi = float(info.min), float(info.max)
        if end <= start:
            end = start + 1.0
            hi = max(hi, end)
        channels.append({
            "active": True, "coefficient": 1.0, "color": colors[i], "family": "linear",
            "inverted": False, "label": labels[i] if labels else f"channel {i}",
            "window": {"min": lo, "max": hi, "start": start, "end": end},
        })
    rdefs: dict[str, Any] = {"model": "color" if n > 1 else "greyscale", "defaultT": 0}
    if "z" in dims:
        rdefs["defaultZ"] = int(data.shape[dims.index("z")]) // 2
    return {"channels": channels, "rdefs": rdefs}


def compute_omero_from_multiscales(multiscales: Any, quantiles: tuple[float, float] = (0.02, 0.98),
                                   colors: Sequence[str] | None = None,
                                   labels: Sequence[str] | None = None,
                                   dense: bool = False) -> Omero:
    """OMERO display metadata for a multiscales (ngff-zarr 0.50's signature).

    The window of each channel is the ``quantiles`` of a strided subsample (at most
    :data:`OMERO_MAX_SAMPLES` samples) of level 0, or, for more than a million
    spatial pixels, of the coarsest level that keeps at least 256 x 256 of them.
    ``colors``/``labels`` default to the images' ``channel_colors``/``channel_names``;
    ``dense`` is accepted and has no effect (the subsample is exact over itself).

    Raises
    ------
    ArgumentTypeError
        When ``multiscales`` is not a Multiscales (a ``TypeError``).
    """
    from ngff_gpu.model.multiscales import Multiscales

    if not isinstance(multiscales, Multiscales):
        raise ArgumentTypeError(f"Expected a Multiscales, got {type(multiscales)}")
    images = multiscales.images
    if not images:
        raise ArgumentError("multiscales has no images")

    def spatial(im: Any) -> int:
        return int(np.prod([n for d, n in zip(im.dims, im.data.shape) if d in "zyx"]))

    chosen = images[0]
    if spatial(chosen) > 1_000_000:
        for im in images:
            ys = [n for d, n in zip(im.dims, im.data.shape) if d in "yx"]
            if all(n >= 256 for n in ys):
                chosen = im
    colors = colors if colors is not None else chosen.channel_colors
    labels = labels if labels is not None else chosen.channel_names
    block = omero_from_data(chosen.data, chosen.dims, labels=labels, quantiles=quantiles,
                            colors=colors)
    return Omero(channels=[OmeroChannel(color=c["color"], label=c["label"], window=OmeroWindow(
        **c["window"])) for c in block["channels"]])
