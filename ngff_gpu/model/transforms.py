"""RFC-5 (OME-Zarr 0.6) coordinate transformations, with ngff-zarr 0.50's names and fields.

Every type of the 0.6 specification: ``Identity``, ``Scale``, ``Translation``,
``Rotation``, ``Affine``, ``MapAxis``, ``ProjectAxis``, ``ByDimension`` (of
``ByDimensionItem``), ``Bijection``, ``TransformSequence`` (``sequence``),
``Displacements`` and ``Coordinates`` (fields stored as images), each with the
optional ``input``/``output`` (:class:`CoordinateSystemIdentifier`) and ``name``.

``Scale(scale)`` and ``Translation(translation)`` keep the positional form of
OME-Zarr 0.4/0.5 (the seed's page prints them); the RFC-5 fields are keyword-only
and printed only when set. Every class compares by value, also with ngff-zarr's
class of the same name (:class:`~ngff_gpu.model.pretty.ValueEq`).

Checks, as ngff-zarr makes them: what follows from a transformation's own parameters
(a permutation, distinct output axes...) raises ``ValueError`` (an
:class:`~ngff_gpu.errors.ArgumentError`) on construction and again in
:meth:`validate`; what needs the coordinate systems it joins (lengths, matrix shapes)
in :func:`validate_transform`, when they resolve. The functions here read any object
with a transformation's attributes (``type`` first), so ngff-zarr's own objects are
checked and written the same way. JSON is in :mod:`ngff_gpu.model.transforms_json`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ngff_gpu.errors import ArgumentError
from ngff_gpu.model.pretty import PrettyRepr, ValueEq, optional

#: The axis count the 0.4 to 0.6 schemas allow a coordinate system (and a mapAxis).
MIN_AXES, MAX_AXES = 2, 5
#: The most axes a ``projectAxis`` drops or creates (the 0.6 schema's ``maxItems``).
MAX_PROJECTED = 3


@dataclass(repr=False, eq=False)
class CoordinateSystemIdentifier(ValueEq, PrettyRepr):
    """RFC-5 ``input``/``output`` of a transformation: a coordinate system ``name``,
    with the ``path`` of the array or image that declares it (for a dataset's own
    transformation: the array path alone)."""

    path: str | None = optional()
    name: str | None = optional()

    def axis_count(self, coordinateSystems: Sequence[Any] | None) -> int | None:  # noqa: N803
        """Number of axes of the system this names among ``coordinateSystems``; None
        when it names none of them (or there are none)."""
        if self.name is None or not coordinateSystems:
            return None
        for system in coordinateSystems:
            if system.name == self.name:
                return len(system.axes)
        return None

    def to_json(self) -> dict[str, str]:
        """The ``input``/``output`` object."""
        return {k: v for k, v in (("path", self.path), ("name", self.name)) if v is not None}


def _ends() -> Any:
    return optional(kw_only=True)


class _Transform(ValueEq, PrettyRepr):
    """What every transformation class shares: :meth:`validate`, and ngff-zarr's
    :meth:`to_dict` / :meth:`from_dict` (JSON: see
    :func:`ngff_gpu.model.transforms_json.transform_json`)."""

    def validate(self, coordinateSystems: Sequence[Any] | None = None,  # noqa: N803
                 version: Any = None) -> None:
        """Check this transformation's RFC-5 rules (see :func:`validate_transform`)."""
        validate_transform(self, coordinateSystems, version)

    def to_dict(self) -> dict[str, Any]:
        """Every field, nested transformations and ``input``/``output`` as dicts too
        (``dataclasses.asdict``, as ngff-zarr's ``to_dict``; unset fields are None)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any],
                  coordinateSystems: Sequence[Any] | None = None) -> Any:  # noqa: N803
        """This transformation from a dict of its fields, as :meth:`to_dict` gives them
        or OME-Zarr JSON holds them (ngff-zarr's ``from_dict``): nested transformations
        and ``input``/``output`` may be dicts (a bare string ``input`` names a
        coordinate system); ``byDimension`` items also take ngff-zarr 0.43's
        ``input_axes``/``output_axes``. ``coordinateSystems`` is taken as ngff-zarr's
        ``Bijection``/``ByDimension`` take it; identifiers are kept by name, so it is
        not needed here (:meth:`validate` checks against systems).

        Raises
        ------
        ArgumentError
            (a ``ValueError``) when ``data`` names another ``type``, or breaks the
            class's own rules.
        TypeError
            For a key that is not a field of the class, as ``cls(**data)`` raises.
        """
        kind = data.get("type", cls.type)
        if kind != cls.type:
            raise ArgumentError(f"{cls.__name__}.from_dict: the dict is of type {kind!r}, "
                                f"not {cls.type!r}")
        return cls(**{k: _field_from_dict(k, v) for k, v in data.items()})


@dataclass(repr=False, eq=False)
class Identity(_Transform):
    """The identity transformation."""

    type: str = "identity"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()
    name: str | None = _ends()


@dataclass(repr=False, eq=False)
class Scale(_Transform):
    """A scale: ``x' = scale * x`` per axis."""

    scale: list[float]
    type: str = "scale"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()
    name: str | None = _ends()


@dataclass(repr=False, eq=False)
class Translation(_Transform):
    """A translation: ``x' = x + translation`` per axis."""

    translation: list[float]
    type: str = "translation"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()
    name: str | None = _ends()


@dataclass(repr=False, eq=False)
class Rotation(_Transform):
    """A rotation matrix (n x n); stored in the array ``path`` when written in a
    multiscales."""

    rotation: list[list[float]]
    path: str | None = optional()
    type: str = "rotation"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()
    name: str | None = _ends()


@dataclass(repr=False, eq=False)
class Affine(_Transform):
    """An affine matrix (m x (n + 1): n input axes, m output axes, the last column the
    translation); stored in the array ``path`` when written in a multiscales."""

    affine: list[list[float]]
    path: str | None = optional()
    type: str = "affine"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()
    name: str | None = _ends()


@dataclass(repr=False, eq=False)
class Coordinates(_Transform):
    """A coordinate field: the image at ``path`` holds each point's output coordinates."""

    path: str
    interpolation: str | None = optional()
    type: str = "coordinates"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()
    name: str | None = _ends()


@dataclass(repr=False, eq=False)
class Displacements(_Transform):
    """A displacement field: the image at ``path`` holds each point's displacement."""

    path: str
    interpolation: str | None = optional()
    type: str = "displacements"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()
    name: str | None = _ends()


def _integer_axes(indices: Sequence[Any], what: str) -> None:
    for i in indices:
        if isinstance(i, bool) or not isinstance(i, int):
            raise ArgumentError(f"{what} axis indices must be integers; got {i!r}")


def _check_map_axis(indices: Sequence[Any]) -> None:
    _integer_axes(indices, "mapAxis")
    if sorted(indices) != list(range(len(indices))):
        raise ArgumentError("mapAxis must be a permutation holding every zero-based input "
                            f"axis index exactly once; got {list(indices)}")


@dataclass(repr=False, eq=False)
class MapAxis(_Transform):
    """An axis permutation: output axis ``i`` is input axis ``mapAxis[i]``."""

    mapAxis: list[int]  # noqa: N815 - RFC-5 name
    type: str = "mapAxis"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()
    name: str | None = _ends()

    def __post_init__(self) -> None:
        _check_map_axis(self.mapAxis)


def _check_projection(dropped: Sequence[Any] | None, created: Sequence[Any] | None) -> None:
    if dropped is None and created is None:
        raise ArgumentError("projectAxis must declare droppedInputs, createdOutputs, or both")
    for what, indices in (("droppedInputs", dropped), ("createdOutputs", created)):
        if indices is None:
            continue
        _integer_axes(indices, what)
        if not indices:
            raise ArgumentError(f"{what} must hold at least one index")
        if min(indices) < 0 or len(set(indices)) != len(indices):
            raise ArgumentError(f"{what} indices must be distinct and not negative; "
                                f"got {list(indices)}")
        if len(indices) > MAX_PROJECTED:
            raise ArgumentError(f"{what} may name at most {MAX_PROJECTED} axes; "
                                f"got {list(indices)}")


@dataclass(repr=False, eq=False)
class ProjectAxis(_Transform):
    """Drops the input axes ``droppedInputs`` and inserts zero-valued output axes at
    ``createdOutputs`` (at least one of them)."""

    droppedInputs: list[int] | None = optional()  # noqa: N815 - RFC-5 name
    createdOutputs: list[int] | None = optional()  # noqa: N815 - RFC-5 name
    type: str = "projectAxis"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()
    name: str | None = _ends()

    def __post_init__(self) -> None:
        _check_projection(self.droppedInputs, self.createdOutputs)


def item_dimension(transformation: Any) -> int | None:
    """The number of axes a transformation's own parameters fix (None when they do not)."""
    kind = getattr(transformation, "type", None)
    if kind in ("scale", "translation", "mapAxis"):
        return len(getattr(transformation, kind) or [])
    return None


def _check_item(transformation: Any, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
    _integer_axes(list(inputs) + list(outputs), "byDimension")
    if any(a < 0 for a in list(inputs) + list(outputs)):
        raise ArgumentError("byDimension axis indices must be non-negative; "
                            f"got {list(inputs) + list(outputs)}")
    if len(set(outputs)) != len(outputs):
        raise ArgumentError("byDimension output axes must each be produced by exactly one "
                            f"transformation; {list(outputs)} repeats an axis")
    n = item_dimension(transformation)
    if n is not None and (len(inputs) != n or len(outputs) != n):
        raise ArgumentError(f"byDimension item of type '{transformation.type}' is "
                            f"{n}-dimensional but maps {len(inputs)} input axes to "
                            f"{len(outputs)} output axes")


@dataclass(repr=False, eq=False)
class ByDimensionItem(ValueEq, PrettyRepr):
    """One lower-dimensional transformation of a ``byDimension``: it maps the input
    axes ``inputAxes`` to the output axes ``outputAxes`` (zero-based indices)."""

    transformation: Any
    inputAxes: list[int]  # noqa: N815 - RFC-5 name
    outputAxes: list[int]  # noqa: N815 - RFC-5 name

    def __post_init__(self) -> None:
        _check_item(self.transformation, self.inputAxes, self.outputAxes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any],
                  coordinateSystems: Sequence[Any] | None = None) -> ByDimensionItem:  # noqa: N803
        """An item from a dict (ngff-zarr's ``from_dict``): its ``transformation`` may be
        a dict; ngff-zarr 0.43's ``input_axes``/``output_axes`` are read too
        (``coordinateSystems`` as in :meth:`_Transform.from_dict`)."""
        return _item_from_dict(data)


def _check_by_dimension(items: Sequence[Any]) -> None:
    seen: set[int] = set()
    for item in items:
        again = seen.intersection(item.outputAxes)
        if again:
            raise ArgumentError("byDimension output axes must each be produced by exactly one "
                                f"transformation; axis {sorted(again)} appears more than once")
        seen.update(item.outputAxes)


@dataclass(repr=False, eq=False)
class ByDimension(_Transform):
    """A transformation built from lower-dimensional ones: every output axis is produced
    by exactly one item."""

    transformations: list[ByDimensionItem]
    type: str = "byDimension"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()
    name: str | None = _ends()

    def __post_init__(self) -> None:
        _check_by_dimension(self.transformations)

    @property
    def produced_outputAxes(self) -> set[int]:  # noqa: N802 - ngff-zarr's name
        """The output axis indices the items produce, taken together."""
        return {axis for item in self.transformations for axis in item.outputAxes}


@dataclass(repr=False, eq=False)
class Bijection(_Transform):
    """An invertible transformation given by its ``forward`` and ``inverse``."""

    forward: Any
    inverse: Any
    type: str = "bijection"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()
    name: str | None = _ends()


@dataclass(repr=False, eq=False)
class TransformSequence(_Transform):
    """RFC-5 ``sequence``: ``transformations`` applied in order (the form a 0.6 dataset
    maps its array to the intrinsic coordinate system with)."""

    transformations: list[Any]
    name: str | None = optional("transformSequence")
    type: str = "sequence"
    input: CoordinateSystemIdentifier | None = _ends()
    output: CoordinateSystemIdentifier | None = _ends()


Transform = (Identity | Scale | Translation | Rotation | Affine | Coordinates | Displacements
             | MapAxis | ProjectAxis | ByDimension | Bijection | TransformSequence)

#: Every RFC-5 transformation type, by its ``type``.
TRANSFORM_TYPES: dict[str, type] = {
    "identity": Identity, "scale": Scale, "translation": Translation, "rotation": Rotation,
    "affine": Affine, "coordinates": Coordinates, "displacements": Displacements,
    "mapAxis": MapAxis, "projectAxis": ProjectAxis, "byDimension": ByDimension,
    "bijection": Bijection, "sequence": TransformSequence}
#: The types whose parameters are a matrix (stored in an array in a multiscales).
MATRIX_TYPES = ("rotation", "affine")


#: ngff-zarr 0.43 wrote these ``byDimension`` item keys in snake_case (read, as it does).
_LEGACY_ITEM_KEYS = {"input_axes": "inputAxes", "output_axes": "outputAxes"}


def transform_from_dict(data: Any) -> Any:
    """A transformation given as a dict (by its ``type``); any other value as it is."""
    if not isinstance(data, Mapping):
        return data
    kind = data.get("type")
    if kind not in TRANSFORM_TYPES:
        raise ArgumentError(f"unknown transformation type {kind!r}; one of "
                            f"{', '.join(TRANSFORM_TYPES)}")
    return TRANSFORM_TYPES[kind].from_dict(data)


def _item_from_dict(item: Any) -> Any:
    if not isinstance(item, Mapping):
        return item
    data = {_LEGACY_ITEM_KEYS.get(k, k): v for k, v in item.items()
            if not (k in _LEGACY_ITEM_KEYS and _LEGACY_ITEM_KEYS[k] in item)}
    return ByDimensionItem(**{**data, "transformation": transform_from_dict(
        data.get("transformation"))})


def _field_from_dict(key: str, value: Any) -> Any:
    if key in ("input", "output"):
        if isinstance(value, str):
            return CoordinateSystemIdentifier(name=value)
        return CoordinateSystemIdentifier(**value) if isinstance(value, Mapping) else value
    if key in ("forward", "inverse"):
        return transform_from_dict(value)
    if key == "transformations" and isinstance(value, list):
        return [_item_from_dict(v) if isinstance(v, Mapping) and "type" not in v
                else transform_from_dict(v) for v in value]
    return value


def _count(ident: Any, systems: Sequence[Any] | None) -> int | None:
    if ident is None or getattr(ident, "name", None) is None or not systems:
        return None
    for system in systems:
        if system.name == ident.name:
            return len(system.axes)
    return None


def _matrix_shape(values: Any) -> tuple[int, int] | None:
    if not isinstance(values, list | tuple) or not values:
        return None
    rows = [len(r) if isinstance(r, list | tuple) else -1 for r in values]
    return (len(values), rows[0]) if len(set(rows)) == 1 and rows[0] > 0 else None


def validate_transform(transformation: Any, coordinateSystems: Sequence[Any] | None = None,  # noqa: N803
                       version: Any = None) -> None:
    """Check ``transformation`` (ours or ngff-zarr's) against RFC-5.

    Its own parameters are checked again (an object may have been edited after it was
    built), nested transformations too; then, where ``input``/``output`` name a system
    of ``coordinateSystems``, that the parameters fit those systems: one value per
    axis for ``scale``/``translation``, ``mapAxis`` and ``rotation`` sized to the axes,
    an affine of ``out x (in + 1)``, a ``projectAxis`` that reconciles the two counts,
    a ``byDimension`` whose items stay within the input axes and produce every output
    axis once, a ``bijection`` between systems of one size. ``version`` is accepted for
    ngff-zarr's signature (0.4 to 0.6 set the same bounds).

    Raises
    ------
    ArgumentError
        (a ``ValueError``) naming the rule broken.
    """
    kind = getattr(transformation, "type", None)
    if kind not in TRANSFORM_TYPES:
        raise ArgumentError(f"transformation type {kind!r} is not one of RFC-5's "
                            f"{sorted(TRANSFORM_TYPES)}")
    n_in = _count(getattr(transformation, "input", None), coordinateSystems)
    n_out = _count(getattr(transformation, "output", None), coordinateSystems)
    out_name = getattr(getattr(transformation, "output", None), "name", None)
    in_name = getattr(getattr(transformation, "input", None), "name", None)
    if kind in ("scale", "translation"):
        values = list(getattr(transformation, kind) or [])
        for n in {n_in, n_out} - {None}:
            if len(values) != n:
                raise ArgumentError(f"{kind} gives {len(values)} {kind} values for the {n} "
                                    "axes of the coordinate system it applies to")
    elif kind == "mapAxis":
        indices = list(transformation.mapAxis)
        _check_map_axis(indices)
        if not MIN_AXES <= len(indices) <= MAX_AXES:
            raise ArgumentError(f"mapAxis must hold between {MIN_AXES} and {MAX_AXES} indices, "
                                f"one per axis of the coordinate systems it permutes; got {indices}")
        for n, name in ((n_in, in_name), (n_out, out_name)):
            if n is not None and n != len(indices):
                raise ArgumentError(f"mapAxis length {len(indices)} does not match the {n} "
                                    f"axes of coordinate system '{name}'")
    elif kind == "projectAxis":
        dropped = list(transformation.droppedInputs or [])
        created = list(transformation.createdOutputs or [])
        _check_projection(transformation.droppedInputs, transformation.createdOutputs)
        if n_in is not None and any(i >= n_in for i in dropped):
            raise ArgumentError(f"droppedInputs {dropped} are beyond the {n_in} axes of "
                                f"coordinate system '{in_name}'")
        if n_out is not None and any(i >= n_out for i in created):
            raise ArgumentError(f"createdOutputs {created} are beyond the {n_out} axes of "
                                f"coordinate system '{out_name}'")
        if n_in is not None and n_out is not None and n_in - len(dropped) + len(created) != n_out:
            raise ArgumentError(f"projectAxis maps {n_in} input axes to "
                                f"{n_in - len(dropped) + len(created)} output axes, but "
                                f"coordinate system '{out_name}' declares {n_out}")
    elif kind in MATRIX_TYPES:
        values = getattr(transformation, kind, None)
        if values is not None and len(values) > 0:
            shape = _matrix_shape(values)
            if shape is None:
                raise ArgumentError(f"{kind} must hold a non-empty rectangular 2D matrix")
            rows, cols = shape
            if kind == "rotation" and rows != cols:
                raise ArgumentError(f"a rotation matrix is square; got {rows} x {cols}")
            want_cols = None if n_in is None else n_in + (1 if kind == "affine" else 0)
            if (n_out is not None and rows != n_out) or (want_cols is not None
                                                          and cols != want_cols):
                raise ArgumentError(f"{kind} matrix of {rows} x {cols} does not map the "
                                    f"{n_in} axes of '{in_name}' to the {n_out} axes of "
                                    f"'{out_name}'")
        elif not getattr(transformation, "path", None):
            raise ArgumentError(f"{kind} holds no matrix and names no path to an array "
                                "holding one")
    elif kind == "byDimension":
        for item in transformation.transformations:
            _check_item(item.transformation, item.inputAxes, item.outputAxes)
            validate_transform(item.transformation, None, version)
        _check_by_dimension(transformation.transformations)
        if n_in is not None:
            for item in transformation.transformations:
                if any(a >= n_in for a in item.inputAxes):
                    raise ArgumentError(f"byDimension input axes {list(item.inputAxes)} exceed "
                                        f"the {n_in} axes of coordinate system '{in_name}'")
        if n_out is not None:
            produced = {a for item in transformation.transformations for a in item.outputAxes}
            if produced != set(range(n_out)):
                raise ArgumentError("byDimension items must cover every output axis exactly "
                                    f"once; coordinate system '{out_name}' has {n_out} axes "
                                    f"but the items produce {sorted(produced)}")
    elif kind == "bijection":
        validate_transform(transformation.forward, coordinateSystems, version)
        validate_transform(transformation.inverse, coordinateSystems, version)
        if n_in is not None and n_out is not None and n_in != n_out:
            raise ArgumentError("bijection input and output coordinate systems must have the "
                                f"same dimensionality; got {n_in} and {n_out}")
    elif kind == "sequence":
        for member in transformation.transformations:
            validate_transform(member, coordinateSystems, version)
    elif kind in ("displacements", "coordinates"):
        if not isinstance(getattr(transformation, "path", None), str) or not transformation.path:
            raise ArgumentError(f"a {kind} transformation names the path of its field image")


def uses_rfc5(version: str) -> bool:
    """Whether OME-Zarr ``version`` has RFC-5 coordinate systems and transformations
    (0.6, its pre-release tags, and 0.9.dev1, which is 0.6 plus RFC-3)."""
    return version.startswith("0.6") or version == "0.9.dev1"


def flatten(transforms: Sequence[Any] | None) -> list[Any]:
    """The scales and translations of ``transforms`` in order, sequences opened and
    identities dropped (the placement of an image level)."""
    out: list[Any] = []
    for t in transforms or []:
        kind = getattr(t, "type", None)
        if kind == "sequence":
            out += flatten(list(t.transformations))
        elif kind in ("scale", "translation"):
            out.append(t)
    return out


def is_placement(transforms: Sequence[Any] | None) -> bool:
    """True when ``transforms`` hold only scales, translations, identities and sequences
    of them: what a 0.4/0.5 image level can state."""
    for t in transforms or []:
        kind = getattr(t, "type", None)
        if kind == "sequence":
            if not is_placement(list(t.transformations)):
                return False
        elif kind not in ("scale", "translation", "identity"):
            return False
    return True


def scale_translation(transforms: Sequence[Any] | None,
                      ndim: int) -> tuple[list[float], list[float]]:
    """The scale and translation vectors a list of transformations amounts to
    (applied in order; identity when empty)."""
    scale, translation = [1.0] * ndim, [0.0] * ndim
    for t in flatten(transforms):
        if t.type == "scale":
            scale = [a * b for a, b in zip(scale, t.scale)]
            translation = [a * b for a, b in zip(translation, t.scale)]
        else:
            translation = [a + b for a, b in zip(translation, t.translation)]
    return scale, translation

