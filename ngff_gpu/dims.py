"""Dim names: the one place that knows ``t, c, z, y, x``, their order and their kinds.

Every module that checks, orders or defaults dims uses these names, so the rules of
:func:`check_dims` hold for images, ``downsample``/``pyramid`` and inputs alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from ngff_gpu.errors import DimsError

#: Every dim name, in the order OME-NGFF requires (``t``, then ``c``, then space).
AXIS_ORDER = "tczyx"
VALID_DIMS = ("t", "c", "z", "y", "x")
SPATIAL_DIMS = ("z", "y", "x")

#: Default dims by number of dimensions.
DEFAULT_DIMS = {1: ["x"], 2: ["y", "x"], 3: ["z", "y", "x"], 4: ["c", "z", "y", "x"],
                5: ["t", "c", "z", "y", "x"]}


def axis_type(dim: str) -> str:
    """OME-NGFF axis type of a dim name: ``time``, ``channel`` or ``space``."""
    return {"t": "time", "c": "channel"}.get(dim, "space")


def check_dims(dims: Sequence[str], ndim: int) -> list[str]:
    """Validate ``dims`` against the array's ``ndim``; raise :class:`DimsError`."""
    if isinstance(dims, str):
        dims = list(dims)
    dims = list(dims)
    bad = [d for d in dims if d not in VALID_DIMS]
    if bad:
        raise DimsError(f"dims: unknown dim name(s) {bad}; dims must come from {list(VALID_DIMS)}")
    if len(set(dims)) != len(dims):
        raise DimsError(f"dims {dims} repeat a name")
    if len(dims) != ndim:
        raise DimsError(f"dims {dims} name {len(dims)} axes but the data has {ndim}")
    return dims


def default_dims(ndim: int) -> list[str]:
    """``x``, ``yx``, ``zyx``, ``czyx`` or ``tczyx`` for 1 to 5 dimensions."""
    if ndim not in DEFAULT_DIMS:
        raise DimsError(f"cannot choose default dims for a {ndim}-D array; pass dims=")
    return list(DEFAULT_DIMS[ndim])


def spatial(dims: Sequence[str]) -> list[str]:
    """The spatial dims of ``dims``, in their order."""
    return [d for d in dims if d in SPATIAL_DIMS]
