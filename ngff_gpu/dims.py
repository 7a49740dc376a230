"""Dim names: the one place that knows ``t, c, z, y, x``, their order and their kinds.

Every module that checks, orders or defaults dims uses these names, so the rules of
:func:`check_dims` hold for images, ``downsample``/``pyramid``, inputs and the CLI alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ngff_gpu.errors import ArgumentTypeError, DimsError

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


def check_dims(dims: Sequence[str] | str | Any, ndim: int, what: str = "the data",
               shape: Sequence[int] | None = None, param: str = "dims") -> list[str]:
    """Validate ``dims`` against the array's ``ndim`` and return them as a list.

    Parameters
    ----------
    dims : sequence of str or str
        Dim names (``"zyx"`` is read as ``["z", "y", "x"]``).
    ndim : int
        Number of dimensions of the data.
    what : str
        The data, for messages (a file name...).
    shape : sequence of int, optional
        The data's shape, for messages.
    param : str
        The argument's name, for messages.

    Raises
    ------
    ArgumentTypeError
        If ``dims`` is not a sequence of strings.
    DimsError
        On an unknown or repeated name, or a count that differs from ``ndim``.
    """
    if isinstance(dims, str):
        dims = list(dims)
    if not isinstance(dims, Sequence) or not all(isinstance(d, str) for d in dims):
        raise ArgumentTypeError(f"{param} must be a sequence of dim names, got {dims!r}")
    dims = list(dims)
    bad = [d for d in dims if d not in VALID_DIMS]
    if bad:
        raise DimsError(f"{param} {dims}: unknown axis name(s) {bad}; use names of "
                        f"{list(VALID_DIMS)}")
    if len(set(dims)) != len(dims):
        raise DimsError(f"{param} {dims} repeat an axis name")
    if len(dims) != ndim:
        where = f" (shape {tuple(int(n) for n in shape)})" if shape is not None else ""
        raise DimsError(f"{param} {dims} name {len(dims)} axes but {what} has {ndim}{where}")
    return dims


def default_dims(ndim: int) -> list[str]:
    """``x``, ``yx``, ``zyx``, ``czyx`` or ``tczyx`` for 1 to 5 dimensions."""
    if ndim not in DEFAULT_DIMS:
        raise DimsError(f"cannot choose default dims for a {ndim}-D array; pass dims=")
    return list(DEFAULT_DIMS[ndim])


def dims_or_default(dims: Sequence[str] | None, ndim: int, param: str = "dims") -> list[str]:
    """:func:`check_dims` when ``dims`` is given, else :func:`default_dims`."""
    return default_dims(ndim) if dims is None else check_dims(dims, ndim, param=param)


def spatial(dims: Sequence[str]) -> list[str]:
    """The spatial dims of ``dims``, in their order."""
    return [d for d in dims if d in SPATIAL_DIMS]


def canonical_order(dims: Sequence[str]) -> list[int]:
    """The axis permutation that puts ``dims`` in ``t, c, z, y, x`` order."""
    return sorted(range(len(dims)), key=lambda i: AXIS_ORDER.index(dims[i]))
