"""Coordinate transformations: OME-Zarr 0.4/0.5 ``scale``/``translation`` and the
RFC-5 (OME-Zarr 0.6) objects a multiscales uses.

``Scale(scale)`` and ``Translation(translation)`` keep ngff-zarr's positional form;
the RFC-5 fields ``input``, ``output`` and ``name`` are keyword-only (and left out of
the repr, which the seed's page pins). ``TransformSequence`` is RFC-5's ``sequence``:
the form a 0.6 dataset maps its array to the intrinsic coordinate system with.
:func:`transform_json` writes any of them; :func:`transforms_from_json` is the one
parser (``version`` "0.6" accepts sequences, identifiers and names).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.model.pretty import PrettyRepr


@dataclass(repr=False)
class CoordinateSystemIdentifier(PrettyRepr):
    """RFC-5 ``input``/``output`` of a transformation: an array ``path`` or a
    coordinate system ``name``."""

    path: str | None = None
    name: str | None = None

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in (("path", self.path), ("name", self.name)) if v is not None}


def _rfc5() -> Any:
    return field(default=None, repr=False, kw_only=True)


@dataclass(repr=False)
class Identity(PrettyRepr):
    """The identity transformation."""

    type: str = "identity"
    input: CoordinateSystemIdentifier | None = _rfc5()
    output: CoordinateSystemIdentifier | None = _rfc5()
    name: str | None = _rfc5()


@dataclass(repr=False)
class Scale(PrettyRepr):
    """A scale coordinate transformation."""

    scale: list[float]
    type: str = "scale"
    input: CoordinateSystemIdentifier | None = _rfc5()
    output: CoordinateSystemIdentifier | None = _rfc5()
    name: str | None = _rfc5()


@dataclass(repr=False)
class Translation(PrettyRepr):
    """A translation coordinate transformation."""

    translation: list[float]
    type: str = "translation"
    input: CoordinateSystemIdentifier | None = _rfc5()
    output: CoordinateSystemIdentifier | None = _rfc5()
    name: str | None = _rfc5()


@dataclass(repr=False)
class TransformSequence(PrettyRepr):
    """RFC-5 ``sequence``: ``transformations`` applied in order."""

    transformations: list[Any]
    name: str | None = "transformSequence"
    type: str = "sequence"
    input: CoordinateSystemIdentifier | None = field(default=None, kw_only=True)
    output: CoordinateSystemIdentifier | None = field(default=None, kw_only=True)


Transform = Identity | Scale | Translation | TransformSequence


def uses_rfc5(version: str) -> bool:
    """Whether OME-Zarr ``version`` has RFC-5 coordinate systems and transformations
    (0.6, its pre-release tags, and 0.9.dev1, which is 0.6 plus RFC-3)."""
    return version.startswith("0.6") or version == "0.9.dev1"


def flatten(transforms: list[Any] | None) -> list[Scale | Translation]:
    """The scales and translations of ``transforms`` in order, sequences opened and
    identities dropped."""
    out: list[Scale | Translation] = []
    for t in transforms or []:
        if isinstance(t, TransformSequence) or getattr(t, "type", None) == "sequence":
            out += flatten(list(t.transformations))
        elif getattr(t, "type", None) in ("scale", "translation"):
            out.append(t)
    return out


def scale_translation(transforms: list[Any] | None,
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


def transform_json(t: Any, where: str) -> dict[str, Any]:
    """One transformation as JSON (RFC-5 ``input``/``output``/``name`` when set).

    Raises
    ------
    ArgumentError
        For a non-finite vector (JSON cannot hold it) or a scale that is not positive.
    """
    kind = getattr(t, "type", None)
    out: dict[str, Any] = {}
    for key in ("input", "output"):
        ident = getattr(t, key, None)
        if ident is not None:
            out[key] = ident.to_json() if hasattr(ident, "to_json") else {
                k: v for k, v in (("path", getattr(ident, "path", None)),
                                  ("name", getattr(ident, "name", None))) if v is not None}
    if getattr(t, "name", None) is not None:
        out["name"] = t.name
    out["type"] = kind
    if kind == "sequence":
        out["transformations"] = [transform_json(s, f"{where}.transformations[{j}]")
                                  for j, s in enumerate(t.transformations)]
        return out
    if kind == "identity":
        return out
    if kind not in ("scale", "translation"):
        raise ArgumentError(f"{where}: transformation type {kind!r} is not supported here "
                            "(scale, translation, identity, sequence)")
    values = [float(v) for v in getattr(t, kind)]
    if not all(math.isfinite(v) for v in values) or (kind == "scale" and min(values) <= 0):
        need = "finite and positive" if kind == "scale" else "finite"
        raise ArgumentError(f"multiscales.metadata.{where}.{kind} must be {need} "
                            f"(JSON cannot hold NaN or infinity), got {values}")
    out[kind] = values
    return out


def bad(where: str, what: str, value: Any) -> InvalidStoreError:
    """An :class:`InvalidStoreError` naming the key, what was expected and what was found."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return InvalidStoreError(f"{where}: {what}, got {text}")


def _numbers(value: Any, ndim: int | None, where: str) -> list[float]:
    if not isinstance(value, list) or (ndim is not None and len(value) != ndim):
        raise bad(where, f"expected a list of {ndim} numbers", value)
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise bad(where, "expected finite numbers", value)
        out.append(float(v))
    return out


def _identifier(value: Any, where: str) -> CoordinateSystemIdentifier | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad(where, "expected an object with 'path' or 'name'", value)
    return CoordinateSystemIdentifier(path=value.get("path"), name=value.get("name"))


def transforms_from_json(items: Any, ndim: int | None, where: str,
                         version: str = "0.5") -> list[Any]:
    """Parse a ``coordinateTransformations`` list: the one parser of them.

    Parameters
    ----------
    items : list
        The JSON list.
    ndim : int or None
        Number of axes; every vector must have this length (None: any).
    where : str
        The key, for messages (``multiscales[0].datasets[1].coordinateTransformations``).
    version : str
        "0.6" (and 0.9.dev1) also reads RFC-5 ``sequence`` objects and ``input``/``output``/``name``
        (and keeps identities, which 0.4/0.5 drop).

    Raises
    ------
    InvalidStoreError
        Naming ``where`` when the list, a transformation or a vector is malformed
        (transformations stored in a separate array, ``path``, are not supported).
    """
    if not isinstance(items, list):
        raise bad(where, "expected a list of transformations", items)
    rfc5 = uses_rfc5(version)
    out: list[Any] = []
    for j, t in enumerate(items):
        key = f"{where}[{j}]"
        if not isinstance(t, dict):
            raise bad(key, "expected an object", t)
        kind = t.get("type")
        extra: dict[str, Any] = {}
        if rfc5:
            extra = {"input": _identifier(t.get("input"), f"{key}.input"),
                     "output": _identifier(t.get("output"), f"{key}.output"),
                     "name": t.get("name")}
        if kind == "identity":
            if rfc5:
                out.append(Identity(**extra))
            continue
        if rfc5 and kind == "sequence":
            inner = transforms_from_json(t.get("transformations"), ndim,
                                         f"{key}.transformations", version)
            out.append(TransformSequence(transformations=inner, **extra))
            continue
        if kind not in ("scale", "translation"):
            allowed = "'scale', 'translation', 'identity'" + (" or 'sequence'" if rfc5 else "")
            raise bad(f"{key}.type", f"expected {allowed}", kind)
        if kind not in t:
            raise InvalidStoreError(f"{key}: a {kind} without its '{kind}' vector "
                                    "(vectors in a separate array are not supported)")
        values = _numbers(t[kind], ndim, f"{key}.{kind}")
        if kind == "scale":
            if any(v <= 0 for v in values):
                raise bad(f"{key}.scale", "expected positive numbers", t[kind])
            out.append(Scale(scale=values, **extra))
        else:
            out.append(Translation(translation=values, **extra))
    return out
