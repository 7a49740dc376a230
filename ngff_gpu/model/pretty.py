"""Readable multi-line reprs for the seed dataclasses (as ngff-zarr prints them).

A value is printed on one line when it fits in the width left at its
indentation; otherwise a dataclass puts one field per line and a list one item
per line, each indented by four spaces. A field declared with :func:`optional`
is printed only when it is set (not None): the RFC-5 ``input``, ``output`` and
``name`` of a transformation, which the seed's page does not show.
"""

from __future__ import annotations

import dataclasses
from typing import Any

WIDTH = 72
INDENT = "    "
#: Field metadata key: print the field only when its value is not None.
OMIT_NONE = "ngff_gpu_omit_none"


def optional(default: Any = None, **kwargs: Any) -> Any:
    """A dataclass field printed only when it is not None (see the module docstring)."""
    return dataclasses.field(default=default, metadata={OMIT_NONE: True}, **kwargs)


def _shown(value: Any) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(value) if f.repr
            and not (f.metadata.get(OMIT_NONE) and getattr(value, f.name) is None)]


def _inline(value: Any) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ", ".join(
            f"{f.name}={_inline(getattr(value, f.name))}"
            for f in _shown(value)
        )
        return f"{type(value).__name__}({fields})"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return repr(value)


def pformat(value: Any, level: int = 0) -> str:
    """Format ``value`` starting at indentation ``level`` (in units of four spaces).

    Parameters
    ----------
    value : object
        A dataclass instance, a list, or any value with a ``repr``.
    level : int
        Current nesting level.

    Returns
    -------
    str
        The formatted text (continuation lines carry their own indentation).
    """
    flat = _inline(value)
    room = WIDTH - len(INDENT) * level
    is_dc = dataclasses.is_dataclass(value) and not isinstance(value, type)
    if len(flat) <= room or not (is_dc or (isinstance(value, list) and value)):
        return flat
    pad = INDENT * (level + 1)
    end = INDENT * level
    if is_dc:
        items = [
            f"{pad}{f.name}={pformat(getattr(value, f.name), level + 1)}"
            for f in _shown(value)
        ]
        return f"{type(value).__name__}(\n" + ",\n".join(items) + f"\n{end})"
    items = [f"{pad}{pformat(v, level + 1)}" for v in value]
    return "[\n" + ",\n".join(items) + f"\n{end}]"


class PrettyRepr:
    """Mixin giving a dataclass the multi-line repr of :func:`pformat`."""

    def __repr__(self) -> str:
        return pformat(self)


class ValueEq:
    """Mixin: ``==`` by field values, also against the same-named dataclass of another
    library with the same fields (ngff-zarr's ``Axis``, ``Affine``,
    ``CoordinateSystemIdentifier``...), so that a value read by ngff_gpu compares equal
    to the one a user built with ngff-zarr's classes. A field either side lacks counts
    as None. Declare the dataclass with ``eq=False`` so this ``__eq__`` is kept;
    instances are unhashable (mutable), as ``eq=True`` dataclasses are.
    """

    #: Class names of other libraries that compare by value with this class.
    SAME_AS: tuple[str, ...] = ()
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if not dataclasses.is_dataclass(other) or isinstance(other, type):
            return NotImplemented
        mine = type(self)
        if not isinstance(other, mine) and type(other).__name__ not in (mine.__name__,
                                                                         *self.SAME_AS):
            return NotImplemented
        ignored = {f.name for f in dataclasses.fields(self) if not f.compare}
        names = ({f.name for f in dataclasses.fields(self) if f.compare}
                 | {f.name for f in dataclasses.fields(other) if f.compare}) - ignored
        return all(getattr(self, n, None) == getattr(other, n, None) for n in names)
