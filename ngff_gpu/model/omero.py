"""OMERO display metadata and the method record of a multiscales, as dataclasses.

ngff-zarr 0.50's ``Omero(channels=[OmeroChannel(color, window=OmeroWindow(min, max,
start, end), label)])`` and ``MethodMetadata(description, method, version)``, with
their JSON (:func:`omero_json`, :func:`omero_from_json`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ngff_gpu.errors import ArgumentError
from ngff_gpu.model.pretty import PrettyRepr


@dataclass(repr=False)
class OmeroWindow(PrettyRepr):
    """Display window of a channel: the data range and the shown range."""

    min: float
    max: float
    start: float
    end: float


@dataclass(repr=False)
class OmeroChannel(PrettyRepr):
    """One channel: its colour (six hex digits), window and label."""

    color: str
    window: OmeroWindow
    label: str | None = None

    def validate_color(self) -> None:
        """Raise ``ValueError`` unless ``color`` is six hex digits."""
        if not isinstance(self.color, str) or not re.fullmatch(r"[0-9A-Fa-f]{6}", self.color):
            raise ArgumentError(f"Invalid color '{self.color}'. Must be 6 hex digits.")


@dataclass(repr=False)
class Omero(PrettyRepr):
    """The ``omero`` block: one entry per channel."""

    channels: list[OmeroChannel]


@dataclass(repr=False)
class MethodMetadata(PrettyRepr):
    """How the levels were made (the multiscales ``metadata`` object)."""

    description: str
    method: str
    version: str


def omero_json(omero: Any) -> dict[str, Any] | None:
    """An :class:`Omero` (or ngff-zarr's, or a dict) as the ``omero`` JSON object."""
    if omero is None:
        return None
    if isinstance(omero, Mapping):
        return dict(omero)
    channels = []
    for ch in omero.channels:
        w = ch.window
        entry: dict[str, Any] = {"color": ch.color, "window": {
            "min": float(w.min), "max": float(w.max), "start": float(w.start),
            "end": float(w.end)}}
        if getattr(ch, "label", None) is not None:
            entry["label"] = ch.label
        channels.append(entry)
    return {"channels": channels}


def omero_from_json(value: Any) -> Omero | None:
    """The ``omero`` JSON object as an :class:`Omero`; None when absent or without
    channels of the expected shape."""
    if not isinstance(value, Mapping) or not isinstance(value.get("channels"), list):
        return None
    channels = []
    for ch in value["channels"]:
        if not isinstance(ch, Mapping) or not isinstance(ch.get("window"), Mapping):
            return None
        w = ch["window"]
        # Older stores carry only min/max or only start/end: each pair stands in for the other.
        lo, hi = w.get("min", w.get("start", 0.0)), w.get("max", w.get("end", 0.0))
        try:
            window = OmeroWindow(min=float(lo), max=float(hi), start=float(w.get("start", lo)),
                                 end=float(w.get("end", hi)))
        except (TypeError, ValueError):
            return None
        channels.append(OmeroChannel(color=str(ch.get("color", "FFFFFF")), window=window,
                                     label=ch.get("label")))
    return Omero(channels=channels)


def method_json(meta: Any) -> dict[str, Any] | None:
    """A :class:`MethodMetadata` (or a dict) as JSON."""
    if meta is None:
        return None
    if isinstance(meta, Mapping):
        return dict(meta)
    return {"description": meta.description, "method": meta.method, "version": meta.version}


def method_from_json(value: Any) -> MethodMetadata | None:
    """The multiscales ``metadata`` object as :class:`MethodMetadata` (None if absent)."""
    if not isinstance(value, Mapping):
        return None
    return MethodMetadata(description=str(value.get("description", "")),
                          method=str(value.get("method", "")),
                          version=str(value.get("version", "")))
