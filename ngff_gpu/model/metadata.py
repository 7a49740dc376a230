"""OME-NGFF multiscales metadata: the seed dataclasses and their 0.4 / 0.5 JSON.

``Metadata(axes=[Axis], datasets=[Dataset(path, [Scale, Translation])],
coordinateTransformations, name, version)`` mirrors ngff-zarr's data model;
:func:`metadata_to_json` and :func:`metadata_from_json` convert to and from the
``multiscales`` entry of OME-Zarr 0.4 (``.zattrs``) and 0.5 (``zarr.json``
attributes under ``ome``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ngff_gpu.dims import axis_type
from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.model.pretty import PrettyRepr

SUPPORTED_VERSIONS = ("0.4", "0.5")


@dataclass(repr=False)
class Axis(PrettyRepr):
    """One axis: ``name`` (t, c, z, y, x), ``type``, an optional UDUNITS ``unit`` and an
    optional RFC-4 ``orientation`` (``{"type": "anatomical", "value": "left-to-right"}``)."""

    name: str
    type: str
    unit: str | None = None
    #: Not in the repr: the seed's printed metadata (ngff-zarr's page) has no orientation.
    orientation: dict[str, str] | None = field(default=None, repr=False)


@dataclass(repr=False)
class Scale(PrettyRepr):
    """A scale coordinate transformation."""

    scale: list[float]
    type: str = "scale"


@dataclass(repr=False)
class Translation(PrettyRepr):
    """A translation coordinate transformation."""

    translation: list[float]
    type: str = "translation"


@dataclass(repr=False)
class Dataset(PrettyRepr):
    """One level of the pyramid: its array ``path`` and ``[Scale, Translation]``."""

    path: str
    coordinateTransformations: list[Scale | Translation]  # noqa: N815 - OME-NGFF name


@dataclass(repr=False)
class Metadata(PrettyRepr):
    """The ``multiscales`` metadata of one image."""

    axes: list[Axis]
    datasets: list[Dataset]
    coordinateTransformations: list[Scale | Translation] | None = None  # noqa: N815
    name: str = "image"
    version: str = "0.5"

    def __post_init__(self) -> None:
        if self.version not in SUPPORTED_VERSIONS:
            raise ArgumentError(
                f"version: unsupported OME-Zarr version {self.version!r}; use one of "
                f"{SUPPORTED_VERSIONS}"
            )


def _transform_json(t: Scale | Translation, where: str) -> dict[str, Any]:
    kind = "scale" if isinstance(t, Scale) else "translation"
    values = [float(v) for v in (t.scale if kind == "scale" else t.translation)]
    if not all(math.isfinite(v) for v in values) or (kind == "scale" and min(values) <= 0):
        need = "finite and positive" if kind == "scale" else "finite"
        raise ArgumentError(f"multiscales.metadata.{where}.{kind} must be {need} "
                            f"(JSON cannot hold NaN or infinity), got {values}")
    return {"type": kind, kind: values}


def _bad(where: str, what: str, value: Any) -> InvalidStoreError:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return InvalidStoreError(f"{where}: {what}, got {text}")


def _numbers(value: Any, ndim: int, where: str) -> list[float]:
    if not isinstance(value, list) or len(value) != ndim:
        raise _bad(where, f"expected a list of {ndim} numbers", value)
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise _bad(where, "expected finite numbers", value)
        out.append(float(v))
    return out


def transforms_from_json(items: Any, ndim: int, where: str) -> list[Scale | Translation]:
    """Parse a ``coordinateTransformations`` list: the one parser of them.

    Parameters
    ----------
    items : list
        The JSON list.
    ndim : int
        Number of axes; every vector must have this length.
    where : str
        The key, for messages (``multiscales[0].datasets[1].coordinateTransformations``).

    Raises
    ------
    InvalidStoreError
        Naming ``where`` when the list, a transformation or a vector is malformed
        (transformations stored in a separate array, ``path``, are not supported).
    """
    if not isinstance(items, list):
        raise _bad(where, "expected a list of transformations", items)
    out: list[Scale | Translation] = []
    for j, t in enumerate(items):
        key = f"{where}[{j}]"
        if not isinstance(t, dict):
            raise _bad(key, "expected an object", t)
        kind = t.get("type")
        if kind == "identity":
            continue
        if kind not in ("scale", "translation"):
            raise _bad(f"{key}.type", "expected 'scale' or 'translation'", kind)
        if kind not in t:
            raise InvalidStoreError(f"{key}: a {kind} without its '{kind}' vector "
                                    "(vectors in a separate array are not supported)")
        values = _numbers(t[kind], ndim, f"{key}.{kind}")
        if kind == "scale":
            if any(v <= 0 for v in values):
                raise _bad(f"{key}.scale", "expected positive numbers", t[kind])
            out.append(Scale(scale=values))
        else:
            out.append(Translation(translation=values))
    return out


def scale_translation(transforms: list[Scale | Translation] | None,
                      ndim: int) -> tuple[list[float], list[float]]:
    """The scale and translation vectors a list of transformations amounts to
    (applied in order; identity when empty)."""
    scale, translation = [1.0] * ndim, [0.0] * ndim
    for t in transforms or []:
        if isinstance(t, Scale):
            scale = [a * b for a, b in zip(scale, t.scale)]
            translation = [a * b for a, b in zip(translation, t.scale)]
        else:
            translation = [a + b for a, b in zip(translation, t.translation)]
    return scale, translation


def level_placement(meta: Metadata, index: int, with_global: bool = True
                    ) -> tuple[list[float], list[float]]:
    """Scale and translation of dataset ``index`` over all axes: its own transformations,
    then (``with_global``) the multiscales-level ones."""
    ndim = len(meta.axes)
    own = meta.datasets[index].coordinateTransformations
    return scale_translation(list(own) + (list(meta.coordinateTransformations or [])
                                          if with_global else []), ndim)


def metadata_to_json(meta: Metadata, version: str, method: str | None = None) -> dict[str, Any]:
    """The ``multiscales[0]`` entry of OME-Zarr ``version`` for ``meta``.

    Parameters
    ----------
    meta : Metadata
        The metadata.
    version : {"0.4", "0.5"}
        0.4 carries ``version`` inside the entry; 0.5 carries it in the ``ome`` block.
    method : str, optional
        Recorded as the multiscales ``type`` and in ``metadata.method``.
    """
    axes = []
    for ax in meta.axes:
        entry: dict[str, Any] = {"name": ax.name, "type": ax.type}
        if ax.unit:
            entry["unit"] = ax.unit
        if ax.orientation:
            entry["orientation"] = dict(ax.orientation)
        axes.append(entry)
    out: dict[str, Any] = {}
    if version == "0.4":
        out["version"] = "0.4"
    out["name"] = meta.name
    out["axes"] = axes
    out["datasets"] = [
        {"path": d.path, "coordinateTransformations": [
            _transform_json(t, f"datasets[{i}].coordinateTransformations[{j}]")
            for j, t in enumerate(d.coordinateTransformations)]}
        for i, d in enumerate(meta.datasets)
    ]
    if meta.coordinateTransformations:
        out["coordinateTransformations"] = [
            _transform_json(t, f"coordinateTransformations[{j}]")
            for j, t in enumerate(meta.coordinateTransformations)]
    if method is not None:
        out["type"] = method
        out["metadata"] = {"method": f"ngff_gpu.{method}", "version": _package_version()}
    return out


def metadata_from_json(entry: Any, version: str, where: str = "multiscales[0]") -> Metadata:
    """Parse one ``multiscales`` entry (0.4 or 0.5) into :class:`Metadata`.

    Raises
    ------
    InvalidStoreError
        Naming the key (``multiscales[0].datasets[2].path``...) when anything is
        missing or of the wrong type.
    """
    if not isinstance(entry, dict):
        raise _bad(where, "expected an object", entry)
    if version not in SUPPORTED_VERSIONS:
        raise InvalidStoreError(f"unsupported OME-Zarr version {version!r} (supported: "
                                f"{', '.join(SUPPORTED_VERSIONS)})")
    raw_axes = entry.get("axes")
    if not isinstance(raw_axes, list) or not raw_axes:
        raise _bad(f"{where}.axes", "expected a non-empty list of axes", raw_axes)
    axes = []
    for i, a in enumerate(raw_axes):
        key = f"{where}.axes[{i}]"
        if isinstance(a, str):  # OME-Zarr 0.3 style: a bare name
            a = {"name": a}
        if not isinstance(a, dict):
            raise _bad(key, "expected an object", a)
        name, kind, unit = a.get("name"), a.get("type", None), a.get("unit")
        if not isinstance(name, str) or not name:
            raise _bad(f"{key}.name", "expected a non-empty string", name)
        if kind is not None and not isinstance(kind, str):
            raise _bad(f"{key}.type", "expected a string", kind)
        if unit is not None and not isinstance(unit, str):
            raise _bad(f"{key}.unit", "expected a string", unit)
        orientation = a.get("orientation")
        axes.append(Axis(name=name, type=kind or axis_type(name), unit=unit,
                         orientation=orientation if isinstance(orientation, dict) else None))
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise _bad(f"{where}.axes", "axis names repeat", names)
    ndim = len(axes)
    raw_ds = entry.get("datasets")
    if not isinstance(raw_ds, list) or not raw_ds:
        raise _bad(f"{where}.datasets", "expected a non-empty list of datasets", raw_ds)
    datasets = []
    for i, d in enumerate(raw_ds):
        key = f"{where}.datasets[{i}]"
        if not isinstance(d, dict):
            raise _bad(key, "expected an object", d)
        path = d.get("path")
        if not isinstance(path, str) or not path:
            raise _bad(f"{key}.path", "expected a non-empty string", path)
        if "coordinateTransformations" not in d:
            raise InvalidStoreError(f"{key}: missing key 'coordinateTransformations'")
        datasets.append(Dataset(path=path, coordinateTransformations=transforms_from_json(
            d["coordinateTransformations"], ndim, f"{key}.coordinateTransformations")))
    top = entry.get("coordinateTransformations")
    name = entry.get("name", "image")
    if not isinstance(name, str):
        raise _bad(f"{where}.name", "expected a string", name)
    return Metadata(
        axes=axes,
        datasets=datasets,
        coordinateTransformations=transforms_from_json(
            top, ndim, f"{where}.coordinateTransformations") or None if top is not None
        else None,
        name=name,
        version=version,
    )


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ngff-gpu")
    except PackageNotFoundError:
        return "0+unknown"
