"""Axes of an image: name, type, unit, and RFC-4 anatomical orientation.

``Axis`` has ngff-zarr 0.50's fields (``name``, ``type``, ``unit``, ``orientation``,
and OME-Zarr 0.6's ``discrete``). An orientation is an :class:`AnatomicalOrientation`
(``value`` from the RFC-4 vocabulary, ``type="anatomical"``); a plain dict or
ngff-zarr's own ``AnatomicalOrientation`` are accepted wherever one is read
(:func:`orientation_json`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ngff_gpu.dims import axis_type
from ngff_gpu.errors import ArgumentError
from ngff_gpu.model.pretty import PrettyRepr, ValueEq, optional

#: The RFC-4 vocabulary of anatomical orientation values.
ORIENTATION_VALUES = (
    "left-to-right", "right-to-left", "anterior-to-posterior", "posterior-to-anterior",
    "inferior-to-superior", "superior-to-inferior", "dorsal-to-ventral", "ventral-to-dorsal",
    "dorsal-to-palmar", "palmar-to-dorsal", "dorsal-to-plantar", "plantar-to-dorsal",
    "rostral-to-caudal", "caudal-to-rostral", "cranial-to-caudal", "caudal-to-cranial",
    "proximal-to-distal", "distal-to-proximal", "superficial-to-deep", "deep-to-superficial",
    "apex-to-base", "base-to-apex",
)


@dataclass(repr=False, eq=False)
class AnatomicalOrientation(ValueEq, PrettyRepr):
    """RFC-4 anatomical orientation of a spatial axis (the direction it increases in)."""

    value: str
    type: str = "anatomical"


#: ITK's Left-Posterior-Superior convention, per spatial dim.
LPS = {"x": AnatomicalOrientation("right-to-left"),
       "y": AnatomicalOrientation("anterior-to-posterior"),
       "z": AnatomicalOrientation("inferior-to-superior")}
#: Right-Anterior-Superior (FreeSurfer, FSL), per spatial dim.
RAS = {"x": AnatomicalOrientation("left-to-right"),
       "y": AnatomicalOrientation("posterior-to-anterior"),
       "z": AnatomicalOrientation("inferior-to-superior")}


def orientation_from_name(name: str) -> dict[str, AnatomicalOrientation]:
    """``"LPS"`` or ``"RAS"`` (any case) as per-dim orientations.

    Raises
    ------
    ArgumentError
        (a ``ValueError``, as ngff-zarr raises) for another name.
    """
    presets = {"lps": LPS, "ras": RAS}
    if not isinstance(name, str) or name.lower() not in presets:
        raise ArgumentError(f"orientation: unknown anatomical orientation preset {name!r}; "
                            "use 'LPS' or 'RAS'")
    return dict(presets[name.lower()])


def orientation_json(orientation: Any) -> dict[str, str] | None:
    """An orientation (ours, ngff-zarr's, or a dict) as its JSON object."""
    if orientation is None:
        return None
    if isinstance(orientation, Mapping):
        return {str(k): str(v) for k, v in orientation.items()}
    value = getattr(orientation, "value", None)
    if value is None:
        raise ArgumentError(f"orientation {orientation!r}: expected an AnatomicalOrientation "
                            "or a dict {'type': 'anatomical', 'value': ...}")
    return {"value": str(getattr(value, "value", value)),
            "type": str(getattr(orientation, "type", "anatomical"))}


def orientation_from_json(value: Any) -> AnatomicalOrientation | None:
    """An RFC-4 orientation object read from JSON; None when it is not one."""
    if isinstance(value, Mapping) and value.get("type") == "anatomical" \
            and value.get("value") in ORIENTATION_VALUES:
        return AnatomicalOrientation(value=str(value["value"]))
    return None


@dataclass(repr=False, eq=False)
class Axis(ValueEq, PrettyRepr):
    """One axis: ``name`` (t, c, z, y, x), ``type``, an optional UDUNITS ``unit``, an
    optional RFC-4 ``orientation`` and (OME-Zarr 0.6) ``discrete``."""

    name: str
    type: str | None
    unit: str | None = None
    #: Printed only when set: the seed's printed metadata (ngff-zarr's page) has neither.
    orientation: Any = optional()
    discrete: bool | None = optional()

    def to_json(self) -> dict[str, Any]:
        """The axis object of OME-Zarr JSON."""
        return axis_json(self)


def axis_json(axis: Any) -> dict[str, Any]:
    """An axis (ours, ngff-zarr's, or anything with an axis's attributes) as the axis
    object of OME-Zarr JSON."""
    out: dict[str, Any] = {"name": str(axis.name)}
    kind = getattr(axis, "type", None)
    if kind is not None:
        out["type"] = str(getattr(kind, "value", kind))
    unit = getattr(axis, "unit", None)
    if unit:
        out["unit"] = str(getattr(unit, "value", unit))
    orientation = orientation_json(getattr(axis, "orientation", None))
    if orientation:
        out["orientation"] = orientation
    discrete = getattr(axis, "discrete", None)
    if discrete is not None:
        out["discrete"] = bool(discrete)
    return out


def axes_for(dims: Sequence[str], units: Mapping[str, str] | None = None,
             orientations: Mapping[str, Any] | None = None,
             types: Mapping[str, str] | None = None) -> list[Axis]:
    """The axes of an image with these dims, units, orientations and type overrides
    (orientation only on spatial axes; a ``displacement``/``coordinate`` type is
    ``discrete``)."""
    units, orientations, types = units or {}, orientations or {}, types or {}
    out = []
    for d in dims:
        kind = types.get(d)
        kind = str(getattr(kind, "value", kind)) if kind is not None else axis_type(d)
        out.append(Axis(name=d, type=kind, unit=units.get(d),
                        orientation=orientations.get(d) if kind == "space" else None,
                        discrete=True if kind in ("displacement", "coordinate") else None))
    return out
