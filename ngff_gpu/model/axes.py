"""Axes of an image: name, type, unit, and RFC-4 anatomical orientation.

``Axis`` has ngff-zarr 0.50's fields (``name``, ``type``, ``unit``, ``orientation``, and
OME-Zarr 0.6's ``discrete``). As in ngff-zarr, whose 0.4/0.5 axes have no ``discrete``
while its 0.6 axes always have one (None unless declared), ``discrete`` is an attribute of
a 0.6 axis only: one built with ``discrete=`` given (None included; ``to_multiscales``, whose
axes are ngff-zarr 0.50's 0.6 axes, and a 0.6 read always give it), not of an axis read
from a 0.4/0.5 store. An orientation is an
:class:`AnatomicalOrientation` (``value`` an :class:`AnatomicalOrientationValues` member of
the RFC-4 vocabulary, ``type="anatomical"``); a plain dict or ngff-zarr's own
``AnatomicalOrientation`` are accepted wherever one is read (:func:`orientation_json`),
and an orientation compares equal to any object with the same ``type`` and ``value``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import InitVar, dataclass
from enum import StrEnum
from typing import Any

from ngff_gpu.dims import axis_type, type_name
from ngff_gpu.errors import ArgumentError
from ngff_gpu.model.pretty import PrettyRepr, ValueEq, optional


class AnatomicalOrientationValues(StrEnum):
    """The RFC-4 vocabulary of anatomical orientations (the direction an axis increases
    in); members are their JSON strings (``AnatomicalOrientationValues.left_to_right ==
    "left-to-right"``), as ngff-zarr 0.50's enum of the same name."""

    left_to_right = "left-to-right"
    right_to_left = "right-to-left"
    anterior_to_posterior = "anterior-to-posterior"
    posterior_to_anterior = "posterior-to-anterior"
    inferior_to_superior = "inferior-to-superior"
    superior_to_inferior = "superior-to-inferior"
    dorsal_to_ventral = "dorsal-to-ventral"
    ventral_to_dorsal = "ventral-to-dorsal"
    dorsal_to_palmar = "dorsal-to-palmar"
    palmar_to_dorsal = "palmar-to-dorsal"
    dorsal_to_plantar = "dorsal-to-plantar"
    plantar_to_dorsal = "plantar-to-dorsal"
    rostral_to_caudal = "rostral-to-caudal"
    caudal_to_rostral = "caudal-to-rostral"
    cranial_to_caudal = "cranial-to-caudal"
    caudal_to_cranial = "caudal-to-cranial"
    proximal_to_distal = "proximal-to-distal"
    distal_to_proximal = "distal-to-proximal"
    superficial_to_deep = "superficial-to-deep"
    deep_to_superficial = "deep-to-superficial"
    apical_to_basal = "apical-to-basal"
    basal_to_apical = "basal-to-apical"
    apex_to_base = "apex-to-base"
    base_to_apex = "base-to-apex"


#: The RFC-4 vocabulary as strings.
ORIENTATION_VALUES = tuple(v.value for v in AnatomicalOrientationValues)


def _vocabulary_value(value: Any) -> AnatomicalOrientationValues | None:
    try:
        return AnatomicalOrientationValues(str(getattr(value, "value", value)))
    except ValueError:
        return None


@dataclass(repr=False, eq=False)
class AnatomicalOrientation(PrettyRepr):
    """RFC-4 anatomical orientation of a spatial axis (the direction it increases in).

    ``value`` becomes an :class:`AnatomicalOrientationValues` member when it is in the
    vocabulary (a string or another library's enum member); a value outside it is kept
    as given, so that a store's orientation survives a round trip, and is reported by
    validation where RFC-4 is normative (OME-Zarr 0.9.dev1). Two orientations are equal
    when their ``type`` and ``value`` are, whatever class holds them.
    """

    value: Any
    type: str = "anatomical"

    def __post_init__(self) -> None:
        known = _vocabulary_value(self.value)
        if known is not None:
            self.value = known

    def _key(self) -> tuple[str, str]:
        return (str(self.type), str(getattr(self.value, "value", self.value)))

    def __eq__(self, other: object) -> bool:
        if not (hasattr(other, "value") and hasattr(other, "type")) or isinstance(other, type):
            return NotImplemented
        return self._key() == (str(other.type),
                               str(getattr(other.value, "value", other.value)))

    __hash__ = None  # type: ignore[assignment]  # mutable, as ngff-zarr's


#: ITK's Left-Posterior-Superior convention, per spatial dim.
LPS = {"x": AnatomicalOrientation(AnatomicalOrientationValues.right_to_left),
       "y": AnatomicalOrientation(AnatomicalOrientationValues.anterior_to_posterior),
       "z": AnatomicalOrientation(AnatomicalOrientationValues.inferior_to_superior)}
#: Right-Anterior-Superior (FreeSurfer, FSL), per spatial dim.
RAS = {"x": AnatomicalOrientation(AnatomicalOrientationValues.left_to_right),
       "y": AnatomicalOrientation(AnatomicalOrientationValues.posterior_to_anterior),
       "z": AnatomicalOrientation(AnatomicalOrientationValues.inferior_to_superior)}


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
    return {d: AnatomicalOrientation(o.value) for d, o in presets[name.lower()].items()}


def orientation_json(orientation: Any) -> dict[str, Any] | None:
    """An orientation (ours, ngff-zarr's, or a dict) as its JSON object."""
    if orientation is None:
        return None
    if isinstance(orientation, Mapping):
        return {str(k): getattr(v, "value", v) for k, v in orientation.items()}
    value = getattr(orientation, "value", None)
    if value is None:
        raise ArgumentError(f"orientation {orientation!r}: expected an AnatomicalOrientation "
                            "or a dict {'type': 'anatomical', 'value': ...}")
    return {"type": str(getattr(orientation, "type", "anatomical")),
            "value": str(getattr(value, "value", value))}


def orientation_from_json(value: Any) -> AnatomicalOrientation | None:
    """An RFC-4 orientation object read from JSON; None when it is not a well-formed one
    (type ``anatomical``, a value of the vocabulary)."""
    if isinstance(value, Mapping) and value.get("type") == "anatomical":
        known = _vocabulary_value(value.get("value"))
        if known is not None and isinstance(value.get("value"), str):
            return AnatomicalOrientation(value=known)
    return None


def orientations_of(axes: Sequence[Any]) -> dict[str, AnatomicalOrientation] | None:
    """The well-formed RFC-4 orientations declared on ``axes`` (ours or any object or
    dict with ``name`` and ``orientation``), by axis name; None when there are none."""
    out = {}
    for axis in axes:
        get = axis.get if isinstance(axis, Mapping) else (lambda k, a=axis: getattr(a, k, None))
        name, orientation = get("name"), get("orientation")
        if not isinstance(name, str) or orientation is None:
            continue
        found = orientation_from_json(orientation_json(orientation)
                                      if not isinstance(orientation, Mapping) else orientation)
        if found is not None:
            out[name] = found
    return out or None


#: ``Axis(discrete=...)`` not given: an axis of the 0.4/0.5 kind, without ``discrete``.
UNDECLARED: Any = type("Undeclared", (), {"__repr__": lambda self: "UNDECLARED"})()


@dataclass(repr=False, eq=False)
class Axis(ValueEq, PrettyRepr):
    """One axis: a ``name`` (``t, c, z, y, x``, or any name under RFC-3), a ``type``
    (``space``, ``time``, ``channel``, another string, or None: undeclared), an optional
    UDUNITS ``unit``, an optional RFC-4 ``orientation`` and (OME-Zarr 0.6) ``discrete``."""

    name: str
    type: str | None = None
    unit: str | None = None
    #: Printed only when set: the seed's printed metadata (ngff-zarr's page) has none.
    orientation: Any = optional()
    discrete: InitVar[Any] = UNDECLARED

    def __post_init__(self, discrete: Any) -> None:
        if discrete is not UNDECLARED:
            self.discrete = None if discrete is None else bool(discrete)

    def to_json(self) -> dict[str, Any]:
        """The axis object of OME-Zarr JSON."""
        return axis_json(self)


# ``discrete`` is an attribute of a 0.6 axis, not of every axis (0.4/0.5 axes have none, as
# ngff-zarr's): the class keeps no default for it (the generated ``__init__`` has its own).
del Axis.discrete


def axis_json(axis: Any, rfc5: bool = True) -> dict[str, Any]:
    """An axis (ours, ngff-zarr's, or anything with an axis's attributes) as the axis
    object of OME-Zarr JSON; ``discrete`` (RFC-5) only when ``rfc5`` (0.4/0.5 axes have
    none: ngff-zarr drops it converting to them)."""
    out: dict[str, Any] = {"name": str(axis.name)}
    kind = type_name(getattr(axis, "type", None))
    if kind is not None:
        out["type"] = kind
    unit = getattr(axis, "unit", None)
    if unit:
        out["unit"] = str(getattr(unit, "value", unit))
    orientation = orientation_json(getattr(axis, "orientation", None))
    if orientation:
        out["orientation"] = orientation
    discrete = getattr(axis, "discrete", None) if rfc5 else None
    if discrete is not None:
        out["discrete"] = bool(discrete)
    return out


def axes_for(dims: Sequence[str], units: Mapping[str, str] | None = None,
             orientations: Mapping[str, Any] | None = None,
             types: Mapping[str, Any] | None = None) -> list[Axis]:
    """The axes of an image with these dims, units, orientations and declared types
    (the type of each by :func:`ngff_gpu.dims.axis_type`; orientation only on spatial
    axes; a ``displacement``/``coordinate`` axis is ``discrete``, any other has
    ``discrete=None``: ngff-zarr 0.50's ``to_multiscales`` axes are 0.6 axes)."""
    units, orientations = units or {}, orientations or {}
    out = []
    for d in dims:
        kind = axis_type(d, types)
        out.append(Axis(name=d, type=kind, unit=units.get(d),
                        orientation=orientations.get(d) if kind == "space" else None,
                        discrete=True if kind in ("displacement", "coordinate") else None))
    return out
