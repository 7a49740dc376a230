"""Coordinate transformations to and from OME-Zarr JSON (0.4/0.5 and RFC-5, 0.6).

:func:`transform_json` writes any transformation (ours or ngff-zarr's: read by
attribute); a ``rotation``/``affine`` matrix goes inline, or, given a
:class:`MatrixArrays`, into a float64 array the JSON names by ``path`` (what a 0.6
multiscales stores, as ngff-zarr 0.50 does: a JSON number is decimal text that other
tools round, an array holds every bit). :func:`transforms_from_json` is the one parser:
0.4/0.5 know ``scale``, ``translation`` and ``identity``; 0.6 every RFC-5 type, nested
ones included, with ``input``/``output``/``name``. A matrix stored in an array is read
as its ``path`` with an empty matrix; the reader fills it in
(:func:`matrix_transforms`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from pathlib import PureWindowsPath
from typing import Any
from urllib.parse import unquote

from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.model.transforms import (
    MATRIX_TYPES,
    TRANSFORM_TYPES,
    Affine,
    Bijection,
    ByDimension,
    ByDimensionItem,
    Coordinates,
    CoordinateSystemIdentifier,
    Displacements,
    Identity,
    MapAxis,
    ProjectAxis,
    Rotation,
    Scale,
    TransformSequence,
    Translation,
    uses_rfc5,
)

#: The group generated matrix arrays are written under (as in the 0.6 specification's
#: example, and as ngff-zarr 0.50 writes them).
MATRIX_GROUP = "coordinateTransformations"
_NODE_NAME = re.compile(r"[A-Za-z0-9._-]+")


def bad(where: str, what: str, value: Any) -> InvalidStoreError:
    """An :class:`InvalidStoreError` naming the key, what was expected and what was found."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return InvalidStoreError(f"{where}: {what}, got {text}")


def _ident_json(ident: Any) -> dict[str, str]:
    return {k: str(v) for k, v in (("path", getattr(ident, "path", None)),
                                   ("name", getattr(ident, "name", None))) if v is not None}


def check_array_path(path: Any, what: str) -> str:
    """``path`` when it is a relative path inside the group (no empty, ``.`` or ``..``
    segment, not absolute).

    Raises
    ------
    ArgumentError
        Naming ``what`` and the path.
    """
    if not isinstance(path, str) or path.startswith("/") or any(
            part in ("", ".", "..") for part in path.split("/")):
        raise ArgumentError(f"{what} names the array path {path!r}; a matrix array sits at a "
                            "relative path inside the multiscales group, with no empty, '.' or "
                            "'..' segments")
    return path


def check_field_path(path: Any, parent: str = "scene group") -> str:
    """``path`` when it is a plain relative path below its parent group: no empty,
    ``.`` or ``..`` part (also percent-encoded), no ``\\`` separator, no drive (the
    rule ngff-zarr 0.50 applies to the field images a stored transformation names).

    Raises
    ------
    ArgumentError
        Otherwise: a field's path must not reach out of its store.
    """
    parts = re.split(r"[\\/]", path) if isinstance(path, str) else [""]
    drive = isinstance(path, str) and PureWindowsPath(path).drive
    if drive or "\\" in (path or "") or any(unquote(p) in ("", ".", "..") for p in parts):
        raise ArgumentError(f"field path {path!r} must be a relative path below the {parent}")
    return path


def field_paths(transforms: Sequence[Any] | None) -> list[str]:
    """The paths of the field images (``displacements``/``coordinates``) that
    ``transforms`` name, nested ones included, in document order."""
    out: list[str] = []
    for t in transforms or []:
        kind = getattr(t, "type", None)
        if kind in ("displacements", "coordinates"):
            out.append(t.path)
        elif kind == "sequence":
            out += field_paths(t.transformations)
        elif kind == "byDimension":
            out += field_paths([item.transformation for item in t.transformations])
        elif kind == "bijection":
            out += field_paths([t.forward, t.inverse])
    return out


def _overlaps(path: str, other: str) -> bool:
    return path == other or path.startswith(other + "/") or other.startswith(path + "/")


class MatrixArrays:
    """The matrices of one multiscales' transformations, each to be stored as an array.

    Parameters
    ----------
    reserved : sequence of str
        Paths the same write uses for other arrays (the datasets): no matrix path may
        equal one, lie inside one, or hold one.

    Attributes
    ----------
    arrays : dict
        ``{path: matrix}`` (lists of floats) to write, relative to the multiscales group.
    """

    def __init__(self, reserved: Sequence[str] = ()) -> None:
        self.reserved = list(reserved)
        self.claimed: set[str] = set(reserved)
        self.arrays: dict[str, list[list[float]]] = {}

    def claim(self, transforms: Sequence[Any] | None) -> None:
        """Claim the paths ``transforms`` name themselves (first, so that no generated
        path takes one).

        Raises
        ------
        ArgumentError
            A path outside the group or one that overlaps a dataset array.
        """
        for t in iter_matrix_transforms(transforms):
            path = getattr(t, "path", None)
            if not path:
                continue
            what = _describe(t)
            check_array_path(path, what)
            hit = sorted(r for r in self.reserved if _overlaps(path, r))
            if hit:
                raise ArgumentError(f"{what} names the array path {path!r}, which overlaps the "
                                    f"dataset array {hit[0]!r} of the same multiscales")
            self.claimed.add(path)

    def place(self, t: Any, matrix: list[list[float]]) -> str:
        """The array path of ``t``'s matrix (its own, or a generated
        ``coordinateTransformations/<name or type>[_k]``), recorded for writing."""
        path = getattr(t, "path", None)
        if not path:
            name = getattr(t, "name", None)
            base = name if isinstance(name, str) and _NODE_NAME.fullmatch(name) and \
                name.strip(".") and not name.startswith("__") else t.type
            path, k = f"{MATRIX_GROUP}/{base}", 0
            while any(_overlaps(path, c) for c in self.claimed):
                k += 1
                path = f"{MATRIX_GROUP}/{base}_{k}"
            self.claimed.add(path)
        if path in self.arrays and self.arrays[path] != matrix:
            raise ArgumentError(f"two matrix transformations name the array path {path!r} but "
                                "hold different matrices")
        self.arrays[path] = matrix
        return path


def _describe(t: Any) -> str:
    name = getattr(t, "name", None)
    return f"{t.type} transformation" + (f" '{name}'" if name else "")


def iter_matrix_transforms(transforms: Sequence[Any] | None) -> Iterator[Any]:
    """Every rotation and affine in ``transforms``, depth first in document order."""
    for t in transforms or []:
        kind = getattr(t, "type", None)
        if kind in MATRIX_TYPES:
            yield t
        elif kind == "sequence":
            yield from iter_matrix_transforms(t.transformations)
        elif kind == "byDimension":
            yield from iter_matrix_transforms([i.transformation for i in t.transformations])
        elif kind == "bijection":
            yield from iter_matrix_transforms([t.forward, t.inverse])


def _finite(values: list[float], where: str, kind: str, positive: bool = False) -> None:
    if not all(math.isfinite(v) for v in values) or (positive and min(values, default=1) <= 0):
        need = "finite and positive" if positive else "finite"
        raise ArgumentError(f"multiscales.metadata.{where}.{kind} must be {need} "
                            f"(JSON cannot hold NaN or infinity), got {values}")


def _matrix(values: Any, where: str, kind: str) -> list[list[float]]:
    try:
        rows = [[float(v) for v in row] for row in values]
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{where}: the {kind} is not a matrix of numbers ({exc})") from exc
    if not rows or len({len(r) for r in rows}) != 1 or not rows[0]:
        raise ArgumentError(f"{where}: the {kind} must be a non-empty rectangular 2D matrix")
    return rows


def transform_json(t: Any, where: str, matrices: MatrixArrays | None = None,
                   inline: bool = False) -> dict[str, Any]:
    """One transformation (any object with a transformation's attributes) as JSON.

    Parameters
    ----------
    t : object
        The transformation.
    where : str
        Its key, for messages.
    matrices : MatrixArrays, optional
        Store rotation and affine matrices in arrays (the JSON names the ``path``).
    inline : bool
        Write a matrix inline (and no ``path``; the schema takes one or the other).

    Raises
    ------
    ArgumentError
        For a type RFC-5 does not define, a vector JSON cannot hold (NaN, infinity, a
        scale <= 0) or a malformed matrix.
    """
    kind = getattr(t, "type", None)
    kind = str(getattr(kind, "value", kind))
    if kind not in TRANSFORM_TYPES:
        raise ArgumentError(f"{where}: transformation type {kind!r} is not supported "
                            f"(RFC-5 defines {', '.join(TRANSFORM_TYPES)})")
    out: dict[str, Any] = {"type": kind}
    if kind in ("scale", "translation"):
        values = [float(v) for v in getattr(t, kind)]
        _finite(values, where, kind, positive=kind == "scale")
        out[kind] = values
    elif kind in MATRIX_TYPES:
        values = getattr(t, kind, None)
        path = getattr(t, "path", None)
        if values is not None and len(values) > 0:
            matrix = _matrix(values, where, kind)
            _finite([v for row in matrix for v in row], where, kind)
            if matrices is not None and not inline:
                out["path"] = matrices.place(t, matrix)
            else:
                out[kind] = matrix
        elif path:
            out["path"] = str(path)
        else:
            raise ArgumentError(f"{where}: the {kind} holds no matrix and names no path to an "
                                "array holding one")
    elif kind in ("displacements", "coordinates"):
        out["path"] = str(t.path)
        if getattr(t, "interpolation", None) is not None:
            out["interpolation"] = str(t.interpolation)
    elif kind == "mapAxis":
        out["mapAxis"] = [int(i) for i in t.mapAxis]
    elif kind == "projectAxis":
        for key in ("droppedInputs", "createdOutputs"):
            if getattr(t, key, None) is not None:
                out[key] = [int(i) for i in getattr(t, key)]
    elif kind == "sequence":
        out["transformations"] = [transform_json(s, f"{where}.transformations[{j}]", matrices,
                                                 inline) for j, s in enumerate(t.transformations)]
    elif kind == "byDimension":
        out["transformations"] = [
            {"transformation": transform_json(item.transformation,
                                              f"{where}.transformations[{j}].transformation",
                                              matrices, inline),
             "inputAxes": [int(a) for a in item.inputAxes],
             "outputAxes": [int(a) for a in item.outputAxes]}
            for j, item in enumerate(t.transformations)]
    elif kind == "bijection":
        out["forward"] = transform_json(t.forward, f"{where}.forward", matrices, inline)
        out["inverse"] = transform_json(t.inverse, f"{where}.inverse", matrices, inline)
    for key in ("input", "output"):
        ident = getattr(t, key, None)
        if ident is not None and _ident_json(ident):
            out[key] = _ident_json(ident)
    if getattr(t, "name", None) is not None:
        out["name"] = str(t.name)
    return out


def _numbers(value: Any, ndim: int | None, where: str, positive: bool = False) -> list[float]:
    if not isinstance(value, list) or (ndim is not None and len(value) != ndim):
        raise bad(where, f"expected a list of {ndim if ndim is not None else ''} numbers"
                  .replace("  ", " "), value)
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise bad(where, "expected finite numbers", value)
        if positive and v <= 0:
            raise bad(where, "expected positive numbers", value)
        out.append(float(v))
    return out


def _indices(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int)
                                          for v in value):
        raise bad(where, "expected a list of integer axis indices", value)
    return list(value)


def _identifier(value: Any, where: str) -> CoordinateSystemIdentifier | None:
    if value is None:
        return None
    if not isinstance(value, dict) or any(
            not isinstance(value.get(k), str | type(None)) for k in ("path", "name")):
        raise bad(where, "expected an object with a string 'path' and/or 'name'", value)
    return CoordinateSystemIdentifier(path=value.get("path"), name=value.get("name"))


def _matrix_from_json(t: dict[str, Any], kind: str, key: str) -> dict[str, Any]:
    path = t.get("path")
    if path is not None and not isinstance(path, str):
        raise bad(f"{key}.path", "expected a string", path)
    if kind not in t:
        if not path:
            raise InvalidStoreError(f"{key}: a {kind} with neither its matrix nor the path of "
                                    "an array holding it")
        return {kind: [], "path": path}
    raw = t[kind]
    if not isinstance(raw, list) or not raw or not all(isinstance(r, list) for r in raw):
        raise bad(f"{key}.{kind}", "expected a 2D matrix (a list of rows)", raw)
    return {kind: [_numbers(r, len(raw[0]), f"{key}.{kind}") for r in raw], "path": path}


def _one_06(t: Any, key: str) -> Any:
    if not isinstance(t, dict):
        raise bad(key, "expected an object", t)
    kind = t.get("type")
    if kind not in TRANSFORM_TYPES:
        raise bad(f"{key}.type", f"expected one of {', '.join(TRANSFORM_TYPES)}", kind)
    ends = {"input": _identifier(t.get("input"), f"{key}.input"),
            "output": _identifier(t.get("output"), f"{key}.output")}
    name = t.get("name")
    if name is not None and not isinstance(name, str):
        raise bad(f"{key}.name", "expected a string", name)

    def need(field_name: str) -> Any:
        if field_name not in t:
            raise InvalidStoreError(f"{key}: a {kind} transformation without its "
                                    f"'{field_name}'")
        return t[field_name]

    try:
        if kind == "identity":
            out: Any = Identity(**ends)
        elif kind in ("scale", "translation"):
            cls = Scale if kind == "scale" else Translation
            if kind not in t:
                raise InvalidStoreError(f"{key}: a {kind} without its '{kind}' vector "
                                        "(vectors in a separate array are not supported)")
            out = cls(_numbers(t[kind], None, f"{key}.{kind}", positive=kind == "scale"), **ends)
        elif kind in MATRIX_TYPES:
            out = (Rotation if kind == "rotation" else Affine)(
                **_matrix_from_json(t, kind, key), **ends)
        elif kind in ("displacements", "coordinates"):
            path, interp = need("path"), t.get("interpolation")
            if not isinstance(path, str) or (interp is not None and not isinstance(interp, str)):
                raise bad(key, "expected a string 'path' (and 'interpolation')", t)
            out = (Displacements if kind == "displacements" else Coordinates)(
                path=path, interpolation=interp, **ends)
        elif kind == "mapAxis":
            out = MapAxis(mapAxis=_indices(need("mapAxis"), f"{key}.mapAxis"), **ends)
        elif kind == "projectAxis":
            dropped, created = t.get("droppedInputs"), t.get("createdOutputs")
            out = ProjectAxis(
                droppedInputs=None if dropped is None else _indices(dropped,
                                                                    f"{key}.droppedInputs"),
                createdOutputs=None if created is None else _indices(created,
                                                                     f"{key}.createdOutputs"),
                **ends)
        elif kind == "sequence":
            out = TransformSequence(
                transformations=_list_06(need("transformations"), f"{key}.transformations"),
                name=None, **ends)
        elif kind == "byDimension":
            items = need("transformations")
            if not isinstance(items, list):
                raise bad(f"{key}.transformations", "expected a list", items)
            out = ByDimension(transformations=[_item(item, f"{key}.transformations[{j}]")
                                               for j, item in enumerate(items)], **ends)
        else:
            out = Bijection(forward=_one_06(need("forward"), f"{key}.forward"),
                            inverse=_one_06(need("inverse"), f"{key}.inverse"), **ends)
    except ArgumentError as exc:
        raise InvalidStoreError(f"{key}: {exc}") from None
    out.name = name
    return out


def _item(item: Any, key: str) -> ByDimensionItem:
    if not isinstance(item, dict):
        raise bad(key, "expected an object", item)
    # ngff-zarr 0.43 wrote input_axes/output_axes; the spec spells them in camel case.
    inputs = item.get("inputAxes", item.get("input_axes"))
    outputs = item.get("outputAxes", item.get("output_axes"))
    if "transformation" not in item or inputs is None or outputs is None:
        raise InvalidStoreError(f"{key}: a byDimension item needs 'transformation', "
                                "'inputAxes' and 'outputAxes'")
    return ByDimensionItem(transformation=_one_06(item["transformation"],
                                                  f"{key}.transformation"),
                           inputAxes=_indices(inputs, f"{key}.inputAxes"),
                           outputAxes=_indices(outputs, f"{key}.outputAxes"))


def _list_06(items: Any, where: str) -> list[Any]:
    if not isinstance(items, list):
        raise bad(where, "expected a list of transformations", items)
    return [_one_06(t, f"{where}[{j}]") for j, t in enumerate(items)]


def transforms_from_json(items: Any, ndim: int | None, where: str,
                         version: str = "0.5") -> list[Any]:
    """Parse a ``coordinateTransformations`` list: the one parser of them.

    Parameters
    ----------
    items : list
        The JSON list.
    ndim : int or None
        0.4/0.5: number of axes; every vector must have this length (None: any).
    where : str
        The key, for messages (``multiscales[0].datasets[1].coordinateTransformations``).
    version : str
        "0.6" (and 0.9.dev1) reads every RFC-5 type (nested ones too) with
        ``input``/``output``/``name`` and keeps identities, which 0.4/0.5 drop.

    Raises
    ------
    InvalidStoreError
        Naming ``where`` when the list, a transformation or a vector is malformed.
    """
    if uses_rfc5(version):
        return _list_06(items, where)
    if not isinstance(items, list):
        raise bad(where, "expected a list of transformations", items)
    out: list[Any] = []
    for j, t in enumerate(items):
        key = f"{where}[{j}]"
        if not isinstance(t, dict):
            raise bad(key, "expected an object", t)
        kind = t.get("type")
        if kind == "identity":
            continue
        if kind not in ("scale", "translation"):
            raise bad(f"{key}.type", "expected 'scale', 'translation' or 'identity'", kind)
        if kind not in t:
            raise InvalidStoreError(f"{key}: a {kind} without its '{kind}' vector "
                                    "(vectors in a separate array are not supported)")
        values = _numbers(t[kind], ndim, f"{key}.{kind}", positive=kind == "scale")
        out.append(Scale(values) if kind == "scale" else Translation(values))
    return out
