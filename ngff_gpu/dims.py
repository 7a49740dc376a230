"""Dim names and axis types: the one place that decides which axes are spatial.

OME-Zarr 0.4 to 0.6 name axes from ``t, c, z, y, x``; OME-Zarr 0.9.dev1 (RFC-3) allows any
names, types and order. What the planner needs of an axis is its *type*: only ``space``
axes are downsampled, placed by ``scale``/``translation`` and chunked as space. An axis's
type is the one declared for it (``NgffImage.axes_types``, a store's ``axes[i].type``),
else the conventional type of its name (:data:`DEFAULT_AXIS_TYPES`), else none: an axis
with a name outside ``t, c, z, y, x`` and no declared type is neither spatial, time nor
channel. :func:`axis_type` and :func:`spatial_dims` are that rule; every module that asks
"is this axis spatial?" asks them, so images, ``downsample``/``pyramid``, inputs, the
writer and the CLI agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ngff_gpu.errors import ArgumentTypeError, DimsError

#: Every conventional dim name, in the order OME-NGFF 0.4-0.6 require (``t``, ``c``, space).
AXIS_ORDER = "tczyx"
VALID_DIMS = ("t", "c", "z", "y", "x")
#: The conventional spatial names (the type ``space`` of :data:`DEFAULT_AXIS_TYPES`).
SPATIAL_DIMS = ("z", "y", "x")
#: The type an axis of a conventional name has when none is declared.
DEFAULT_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}

#: Default dims by number of dimensions.
DEFAULT_DIMS = {1: ["x"], 2: ["y", "x"], 3: ["z", "y", "x"], 4: ["c", "z", "y", "x"],
                5: ["t", "c", "z", "y", "x"]}


def type_name(kind: Any) -> str | None:
    """An axis type (a string, an enum member such as ngff-zarr's ``AxisType``, or None)
    as a plain string or None."""
    if kind is None:
        return None
    return str(getattr(kind, "value", kind))


def axis_type(dim: str, types: Mapping[str, Any] | None = None) -> str | None:
    """The type of axis ``dim``: declared in ``types``, else its name's conventional type
    (``t`` time, ``c`` channel, ``z``/``y``/``x`` space), else None."""
    declared = type_name(types.get(dim)) if types else None
    return declared if declared is not None else DEFAULT_AXIS_TYPES.get(dim)


def spatial_dims(dims: Sequence[str], types: Mapping[str, Any] | None = None) -> list[str]:
    """The axes of ``dims`` whose type (:func:`axis_type`) is ``space``, in their order:
    the axes that are downsampled and placed by ``scale``/``translation``."""
    return [d for d in dims if axis_type(d, types) == "space"]


def check_dims(dims: Sequence[str] | str | Any, ndim: int, what: str = "the data",
               shape: Sequence[int] | None = None, param: str = "dims",
               types: Mapping[str, Any] | None = None, any_names: bool = False) -> list[str]:
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
    types : dict, optional
        Declared axis types (RFC-3): a name outside ``t, c, z, y, x`` is accepted when it
        has one.
    any_names : bool
        Accept any non-empty names (the RFC-3 data model: an axis read from a store may
        have a custom name and no type). Otherwise a name outside ``t, c, z, y, x``
        needs a declared type, which keeps a typo from becoming an axis nobody planned.

    Raises
    ------
    ArgumentTypeError
        If ``dims`` is not a sequence of strings.
    DimsError
        On an unknown (untyped) or repeated name, or a count that differs from ``ndim``.
    """
    if isinstance(dims, str):
        dims = list(dims)
    if not isinstance(dims, Sequence) or not all(isinstance(d, str) for d in dims):
        raise ArgumentTypeError(f"{param} must be a sequence of dim names, got {dims!r}")
    dims = list(dims)
    if any(not d for d in dims):
        raise DimsError(f"{param} {dims}: an axis name is empty")
    if not any_names:
        bad = [d for d in dims if d not in VALID_DIMS and type_name((types or {}).get(d)) is None]
        if bad:
            raise DimsError(f"{param} {dims}: unknown axis name(s) {bad}; use names of "
                            f"{list(VALID_DIMS)}, or declare their types with axes_types "
                            "(RFC-3 axes, written as OME-Zarr 0.9.dev1)")
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


def canonical_order(dims: Sequence[str]) -> list[int]:
    """The axis permutation that puts ``dims`` in ``t, c, z, y, x`` order; the identity
    for axes outside those names (an RFC-3 axis model has no order to go back to)."""
    if not all(d in VALID_DIMS for d in dims):
        return list(range(len(dims)))
    return sorted(range(len(dims)), key=lambda i: AXIS_ORDER.index(dims[i]))
