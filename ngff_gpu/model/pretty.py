"""Readable multi-line reprs for the seed dataclasses (as ngff-zarr prints them).

A value is printed on one line when it fits in the width left at its
indentation; otherwise a dataclass puts one field per line and a list one item
per line, each indented by four spaces.
"""

from __future__ import annotations

import dataclasses
from typing import Any

WIDTH = 72
INDENT = "    "


def _inline(value: Any) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ", ".join(
            f"{f.name}={_inline(getattr(value, f.name))}"
            for f in dataclasses.fields(value)
            if f.repr
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
            for f in dataclasses.fields(value)
            if f.repr
        ]
        return f"{type(value).__name__}(\n" + ",\n".join(items) + f"\n{end})"
    items = [f"{pad}{pformat(v, level + 1)}" for v in value]
    return "[\n" + ",\n".join(items) + f"\n{end}]"


class PrettyRepr:
    """Mixin giving a dataclass the multi-line repr of :func:`pformat`."""

    def __repr__(self) -> str:
        return pformat(self)
