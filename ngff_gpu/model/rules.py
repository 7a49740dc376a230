"""The structural rules of OME-Zarr that a JSON schema cannot state, and the write gate.

Each rule has ngff-zarr 0.50's identifier (:class:`SpecRule`) and runs in its order
(:func:`validate_entry`); a broken rule raises
:class:`~ngff_gpu.errors.StructuralValidationError` with the rule, a message and the
offending node. The rules read a stored ``multiscales`` entry as JSON, before any model
is built from it (a wrong-length scale cannot be put into the model the rules would
otherwise read); the writer's gate (:func:`check_writable`) applies the axis rules of the
target version to the model it is about to write.

RFC-3 (OME-Zarr 0.9.dev1) lifts the axis rules (count, types, order, spatial names);
axis names stay unique at every version. RFC-4's orientation rules are normative from
0.9.dev1 on and inert for a store that declares an earlier version.

| rule | what must hold |
|---|---|
| ``axis-count`` | 2 to 5 axes |
| ``axis-type`` | at most one ``time`` and one ``channel`` axis |
| ``axis-order`` | time, then channel, then space; 2 or 3 ``space`` axes named the suffix of ``z, y, x`` |
| ``axis-names-unique`` | no repeated axis name (every version) |
| ``global-coord-transform-after-per-level`` | one ``scale`` per dataset, before any translation |
| ``scale-length-mismatch`` | every vector has one value per axis |
| ``dataset-order-highest-to-lowest`` | datasets finest first: no spatial scale shrinks |
| ``omero-channel-color-format`` | each omero channel colour is six hex digits |
| ``axis-orientation-*`` | RFC-4: ``type`` anatomical, only on space axes, one direction per anatomical axis |
| ``zarr-format``, ``ome-namespace`` | 0.5: no ``zarr_format`` but 3, no ``ome``/``multiscales`` key |
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from ngff_gpu.dims import type_name
from ngff_gpu.errors import ArgumentError, DimsError, StructuralValidationError
from ngff_gpu.model.axes import orientation_json
from ngff_gpu.model.metadata import RFC3_VERSION, Metadata


class SpecRule(StrEnum):
    """Identifiers of the structural rules (ngff-zarr's ``SpecRule`` values)."""

    AXIS_COUNT = "axis-count"
    AXIS_TYPE = "axis-type"
    AXIS_ORDER = "axis-order"
    AXIS_NAMES_UNIQUE = "axis-names-unique"
    SCALE_LENGTH_MISMATCH = "scale-length-mismatch"
    GLOBAL_COORD_TRANSFORM_AFTER_PER_LEVEL = "global-coord-transform-after-per-level"
    DATASET_ORDER_HIGHEST_TO_LOWEST = "dataset-order-highest-to-lowest"
    OMERO_CHANNEL_COLOR_FORMAT = "omero-channel-color-format"
    AXIS_ORIENTATION_ANATOMICAL_TYPE = "axis-orientation-anatomical-type"
    AXIS_ORIENTATION_ON_NON_SPACE = "axis-orientation-on-non-space"
    AXIS_ORIENTATION_UNIQUE_AXIS = "axis-orientation-unique-axis"
    ZARR_FORMAT = "zarr-format"
    OME_NAMESPACE = "ome-namespace"
    PLATE_ROW_INDEX_CONSISTENCY = "plate-row-index-consistency"
    WELL_ACQUISITION_MISSING = "well-acquisition-missing"


_RANK = {"time": 0, "channel": 1, "space": 2}
_SPACE_NAMES = ("z", "y", "x")


def _fail(rule: SpecRule, message: str, location: str) -> StructuralValidationError:
    return StructuralValidationError.create(rule, message, location)


def _axis_fields(axis: Any) -> tuple[Any, str | None, Any]:
    """(name, type, orientation JSON) of an axis given as JSON or as an object."""
    if isinstance(axis, Mapping):
        return axis.get("name"), type_name(axis.get("type")), axis.get("orientation")
    orientation = getattr(axis, "orientation", None)
    if orientation is not None and not isinstance(orientation, Mapping):
        orientation = orientation_json(orientation)
    return getattr(axis, "name", None), type_name(getattr(axis, "type", None)), orientation


def check_axes(axes: Sequence[Any], version: str | None,
               where: str = "multiscales[0].axes") -> None:
    """The axis rules of ``version`` (RFC-3 lifts all but unique names at 0.9.dev1).

    Parameters
    ----------
    axes : sequence
        Axes as JSON objects or axis objects (``name``, ``type``).
    version : str or None
        The OME-Zarr version the axes are (to be) stored at; None applies the 0.4-0.6
        rules.
    where : str
        The node the axes are at, for the location.

    Raises
    ------
    StructuralValidationError
        For the first rule broken, in the order of the module's table.
    """
    fields = [_axis_fields(a) for a in axes]
    names = [f[0] for f in fields]
    kinds = [f[1] for f in fields]
    if version != RFC3_VERSION:
        if not 2 <= len(axes) <= 5:
            raise _fail(SpecRule.AXIS_COUNT, "OME-Zarr 0.4, 0.5 and 0.6 require 2 to 5 axes; "
                        f"found {len(axes)}.", where)
        for kind, word in (("time", "time"), ("channel", "channel")):
            count = kinds.count(kind)
            if count > 1:
                raise _fail(SpecRule.AXIS_TYPE, f"at most one '{word}' axis is allowed; found "
                            f"{count}.", where)
        for i in range(len(axes) - 1):
            a, b = _RANK.get(kinds[i]), _RANK.get(kinds[i + 1])
            if a is not None and b is not None and b < a:
                raise _fail(SpecRule.AXIS_ORDER, f"axis {names[i + 1]!r} ({kinds[i + 1]}) "
                            f"follows axis {names[i]!r} ({kinds[i]}); axes are ordered time, "
                            "then channel, then space.", f"{where}[{i + 1}]")
        space = [i for i, k in enumerate(kinds) if k == "space"]
        arrays = sum(k == "array" for k in kinds)
        if len(space) > 3 or (len(space) < 2 and not (version == "0.6" and arrays >= 2)):
            raise _fail(SpecRule.AXIS_ORDER, "OME-Zarr 0.4, 0.5 and 0.6 require 2 or 3 'space' "
                        f"axes; found {len(space)}.", where)
        expected = _SPACE_NAMES[3 - len(space):]
        got = tuple(names[i] for i in space)
        if space and got != expected:
            first = next(j for j in range(len(space)) if got[j] != expected[j])
            raise _fail(SpecRule.AXIS_ORDER, f"the space axes {list(got)} must be named "
                        f"{list(expected)} (the last {len(space)} of z, y, x).",
                        f"{where}[{space[first]}]")
    seen: set[str] = set()
    for i, name in enumerate(names):
        key = name if isinstance(name, str) else repr(name)  # stored JSON may be anything
        if key in seen:
            raise _fail(SpecRule.AXIS_NAMES_UNIQUE, f"axis name {name!r} is repeated; axis "
                        "names are unique within an image.", f"{where}[{i}]")
        seen.add(key)


def _anatomical_axis(value: str) -> frozenset[str]:
    """The anatomical axis a direction lies on: ``left-to-right`` and ``right-to-left``
    are the same axis."""
    return frozenset(value.split("-to-"))


def check_orientations(axes: Sequence[Any], version: str | None,
                       where: str = "multiscales[0].axes") -> None:
    """The RFC-4 rules, normative from 0.9.dev1 (inert for an earlier declared
    version; on when ``version`` is None). An out-of-vocabulary value is the schema's
    concern (0.9.dev1's ``axis_orientation.schema``).

    Raises
    ------
    StructuralValidationError
        ``axis-orientation-anatomical-type``, ``axis-orientation-on-non-space`` or
        ``axis-orientation-unique-axis``.
    """
    if version is not None and version != RFC3_VERSION:
        return
    seen: dict[frozenset[str], Any] = {}
    for name, kind, orientation in (_axis_fields(a) for a in axes):
        if orientation is None or orientation == {}:
            continue
        if kind != "space":
            raise _fail(SpecRule.AXIS_ORIENTATION_ON_NON_SPACE, f"axis {name!r} ({kind}) has "
                        "an orientation; RFC-4 orients space axes only.", where)
        otype = orientation.get("type") if isinstance(orientation, Mapping) else None
        if otype != "anatomical":
            raise _fail(SpecRule.AXIS_ORIENTATION_ANATOMICAL_TYPE, f"axis {name!r} has "
                        f"orientation type {otype!r}; RFC-4 orientations are 'anatomical'.",
                        where)
        value = orientation.get("value")
        if isinstance(value, str) and "-to-" in value:
            key = _anatomical_axis(value)
            if key in seen:
                raise _fail(SpecRule.AXIS_ORIENTATION_UNIQUE_AXIS, f"axes {seen[key]!r} and "
                            f"{name!r} lie on the same anatomical axis ({value}); RFC-4 "
                            "allows one direction per anatomical axis.", where)
            seen[key] = name


def _vector(t: Any, kind: str) -> Any:
    return t.get(kind) if isinstance(t, Mapping) else getattr(t, kind, None)


def _kind(t: Any) -> Any:
    return t.get("type") if isinstance(t, Mapping) else getattr(t, "type", None)


def _flat(transforms: Any) -> list[Any]:
    """Scales and translations of a transformation list, sequences opened; an
    identity stands for the unit scale (so it counts as the dataset's scale)."""
    out: list[Any] = []
    for t in transforms if isinstance(transforms, list) else []:
        kind = _kind(t)
        if kind == "sequence":
            inner = t.get("transformations") if isinstance(t, Mapping) else getattr(
                t, "transformations", None)
            out += _flat(list(inner or []))
        elif kind == "identity":
            out.append({"type": "scale", "scale": None})
        elif kind in ("scale", "translation"):
            out.append(t)
    return out


def check_datasets(datasets: Any, top: Any, ndim: int, kinds: Sequence[str | None],
                   names: Sequence[Any], where: str = "multiscales[0]") -> None:
    """The transformation and dataset-order rules.

    Raises
    ------
    StructuralValidationError
        ``global-coord-transform-after-per-level``, ``scale-length-mismatch`` or
        ``dataset-order-highest-to-lowest``.
    """
    datasets = datasets if isinstance(datasets, list) else []
    flats = [_flat(d.get("coordinateTransformations") if isinstance(d, Mapping) else
                   getattr(d, "coordinateTransformations", None)) for d in datasets]
    rule = SpecRule.GLOBAL_COORD_TRANSFORM_AFTER_PER_LEVEL
    for i, flat in enumerate(flats):
        count = sum(_kind(t) == "scale" for t in flat)
        if count != 1:
            raise _fail(rule, f"dataset {i} has {count} scale transformations; each dataset "
                        "has exactly one.", f"{where}.datasets[{i}].coordinateTransformations")
    for j, t in enumerate(_flat(top)):
        vec = _vector(t, _kind(t))
        if isinstance(vec, list) and len(vec) != ndim:
            raise _fail(SpecRule.SCALE_LENGTH_MISMATCH, f"the multiscales' {_kind(t)} has "
                        f"{len(vec)} values for {ndim} axes.",
                        f"{where}.coordinateTransformations[{j}]")
    for i, flat in enumerate(flats):
        for j, t in enumerate(flat):
            vec = _vector(t, _kind(t))
            if isinstance(vec, list) and len(vec) != ndim:
                raise _fail(SpecRule.SCALE_LENGTH_MISMATCH, f"dataset {i}'s {_kind(t)} has "
                            f"{len(vec)} values for {ndim} axes.",
                            f"{where}.datasets[{i}].coordinateTransformations[{j}]")
    for i, flat in enumerate(flats):
        kinds_in_order = [_kind(t) for t in flat]
        if "translation" in kinds_in_order and "scale" in kinds_in_order[
                kinds_in_order.index("translation"):]:
            j = kinds_in_order.index("scale", kinds_in_order.index("translation"))
            raise _fail(rule, f"dataset {i} has a scale after a translation; a translation "
                        "follows its scale.", f"{where}.datasets[{i}].coordinateTransformations[{j}]")
    space = [i for i, k in enumerate(kinds) if k == "space"]
    scales = [next((_vector(t, "scale") for t in flat if _kind(t) == "scale"), None)
              for flat in flats]
    for i in range(len(scales) - 1):
        finer, coarser = scales[i], scales[i + 1]
        if not (isinstance(finer, list) and isinstance(coarser, list)):
            continue
        for a in space:
            if a < len(finer) and a < len(coarser) and _num(coarser[a]) < _num(finer[a]):
                raise _fail(SpecRule.DATASET_ORDER_HIGHEST_TO_LOWEST,
                            f"dataset {i + 1} has scale {coarser[a]} on axis {names[a]!r}, "
                            f"less than dataset {i}'s {finer[a]}; datasets go from the finest "
                            "to the coarsest.", f"{where}.datasets[{i + 1}]")


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else float("nan")


_HEX6 = re.compile(r"[0-9A-Fa-f]{6}")


def check_omero(omero: Any, where: str = "multiscales[0].omero") -> None:
    """Each omero channel colour is six hex digits (``omero-channel-color-format``)."""
    channels = omero.get("channels") if isinstance(omero, Mapping) else getattr(
        omero, "channels", None)
    for i, ch in enumerate(channels if isinstance(channels, list) else []):
        color = ch.get("color") if isinstance(ch, Mapping) else getattr(ch, "color", None)
        if color is not None and not (isinstance(color, str) and _HEX6.fullmatch(color)):
            raise _fail(SpecRule.OMERO_CHANNEL_COLOR_FORMAT, f"channel {i} has colour "
                        f"{color!r}; a colour is six hex digits (RRGGBB).",
                        f"{where}.channels[{i}].color")


def check_namespace(entry: Mapping[str, Any], version: str,
                    where: str = "multiscales[0]") -> None:
    """A 0.5 entry: no ``zarr_format`` but 3 (``zarr-format``), no group-level ``ome`` or
    ``multiscales`` key inside it (``ome-namespace``)."""
    if version != "0.5":
        return
    fmt = entry.get("zarr_format")
    if fmt is not None and fmt != 3:
        raise _fail(SpecRule.ZARR_FORMAT, f"the entry declares zarr_format {fmt!r}; OME-Zarr "
                    "0.5 lives in Zarr v3.", where)
    for key in ("ome", "multiscales"):
        if key in entry:
            raise _fail(SpecRule.OME_NAMESPACE, f"the entry holds the group-level {key!r} key; "
                        "the 'ome' namespace wraps the group's attributes, not an entry.",
                        where)


def validate_entry(entry: Mapping[str, Any], version: str, omero: Any = None,
                   where: str = "multiscales[0]") -> None:
    """Every structural rule over one stored ``multiscales`` entry (0.4/0.5 form: a
    flat ``axes`` list), in the order of the module's table.

    Raises
    ------
    StructuralValidationError
        For the first rule broken.
    """
    axes = entry.get("axes")
    axes = axes if isinstance(axes, list) else []
    fields = [_axis_fields(a) for a in axes]
    check_axes(axes, version, f"{where}.axes")
    check_datasets(entry.get("datasets"), entry.get("coordinateTransformations"), len(axes),
                   [f[1] for f in fields], [f[0] for f in fields], where)
    if omero is not None:
        check_omero(omero, f"{where}.omero")
    check_orientations(axes, version, f"{where}.axes")
    check_namespace(entry, version, where)


def _intrinsic_axes(entry: Mapping[str, Any]) -> Any:
    """The axes of a 0.6-form entry's intrinsic system: the one its first dataset's
    transformation outputs to (the first system when none is named)."""
    systems = [cs for cs in entry.get("coordinateSystems") or [] if isinstance(cs, Mapping)]
    datasets = entry.get("datasets")
    first = datasets[0] if isinstance(datasets, list) and datasets else {}
    transforms = first.get("coordinateTransformations") if isinstance(first, Mapping) else None
    output = transforms[0].get("output") if isinstance(transforms, list) and transforms and \
        isinstance(transforms[0], Mapping) else None
    name = output.get("name") if isinstance(output, Mapping) else output
    chosen = next((cs for cs in systems if cs.get("name") == name), systems[0] if systems else {})
    return chosen.get("axes")


def validate_stored(entry: Mapping[str, Any], version: str, omero: Any = None,
                    where: str = "multiscales[0]") -> None:
    """The structural rules over a stored ``multiscales`` entry in either form: the flat
    ``axes`` of 0.4/0.5, or RFC-5 ``coordinateSystems`` (0.6, 0.9.dev1), read as
    ngff-zarr reads them: the intrinsic system's axes, the datasets' transformations
    (sequences opened), the multiscales-level transformations left out (they map
    between named systems of other axis counts).

    Raises
    ------
    StructuralValidationError
        For the first rule broken (:func:`validate_entry`).
    """
    if "coordinateSystems" in entry and "axes" not in entry:
        entry = {**{k: v for k, v in entry.items()
                    if k not in ("coordinateSystems", "coordinateTransformations")},
                 "axes": _intrinsic_axes(entry)}
    validate_entry(entry, version, omero, where)


def _axis_views(meta: Any) -> list[tuple[str, list[Any]]]:
    """Every axis list ``meta`` will be written with, by location: each coordinate
    system of a 0.6-form model, else the flat ``axes``."""
    systems = None if isinstance(meta, Metadata) else getattr(meta, "coordinateSystems", None)
    if isinstance(systems, list) and systems:
        return [(f"multiscales[0].coordinateSystems[{i}].axes", list(cs.axes))
                for i, cs in enumerate(systems)]
    return [("multiscales[0].axes", list(getattr(meta, "axes", []) or []))]


def check_writable(meta: Any, version: str) -> None:
    """Refuse, before anything is written, metadata that OME-Zarr ``version`` cannot
    hold: an axis model its axis rules forbid (RFC-3 axes below 0.9.dev1; repeated
    names at any version), and a scale or translation that does not have one value per
    axis it applies to.

    Parameters
    ----------
    meta : Metadata or Metadata06
        The metadata in ``version``'s form (``to_version`` applied).
    version : str
        The version to write.

    Raises
    ------
    DimsError
        (a ``ValueError``) naming the version, the rule and the axes; the message
        starts "Cannot write OME-Zarr".
    ArgumentError
        For a vector that does not span its axes, naming the transformation.
    """
    for location, axes in _axis_views(meta):
        try:
            check_axes(axes, version, location)
        except StructuralValidationError as exc:
            shown = ", ".join(f"{a[0]!r} ({a[1]})" for a in map(_axis_fields, axes))
            hint = ("" if exc.rule == SpecRule.AXIS_NAMES_UNIQUE else
                    f' Write it as version="{RFC3_VERSION}", the OME-Zarr version that adopts '
                    "RFC-3 (any axis count, names, types and order).")
            raise DimsError(f'Cannot write OME-Zarr version="{version}": the axes at '
                            f"{location} [{shown}] break its [{exc.rule}] rule: {exc.message}"
                            f"{hint}") from None
    _check_spans(meta)


def _check_spans(meta: Any) -> None:
    systems = {cs.name: len(cs.axes) for cs in getattr(meta, "coordinateSystems", None) or []
               if hasattr(cs, "axes")}
    ndim = len(getattr(meta, "axes", None) or [])
    groups = [("the multiscales' coordinateTransformations", meta.coordinateTransformations)]
    groups += [(f"dataset {d.path!r} coordinateTransformations", d.coordinateTransformations)
               for d in meta.datasets]
    for where, transforms in groups:
        for j, t in enumerate(transforms or []):
            _spans(t, f"{where}[{j}]", systems, {ndim})


def _spans(t: Any, where: str, systems: Mapping[str, int], inherited: set[int]) -> None:
    """A transformation's vectors span the axes it maps: those of the coordinate systems
    it names (RFC-5), else the ones it inherits (the intrinsic axes, or its sequence's)."""
    named = {systems[ref.name] for ref in (getattr(t, "input", None), getattr(t, "output", None))
             if ref is not None and getattr(ref, "name", None) in systems}
    spans = named or inherited
    kind = _kind(t)
    vec = _vector(t, kind) if kind in ("scale", "translation") else None
    if vec is not None and len(vec) not in spans:
        count = " or ".join(str(n) for n in sorted(spans))
        raise ArgumentError(f"multiscales.metadata: {where} ({kind}) has {len(vec)} values for "
                            f"the {count} axes it applies to; a transformation that does not "
                            "span its axes cannot be applied")
    for k, inner in enumerate(getattr(t, "transformations", None) or []):
        _spans(inner, f"{where}.transformations[{k}]", systems, spans)
