"""OME-NGFF multiscales metadata: the seed dataclasses and their 0.4 / 0.5 JSON.

``Metadata(axes=[Axis], datasets=[Dataset(path, [Scale, Translation])],
coordinateTransformations, name, version)`` mirrors ngff-zarr's data model;
:func:`metadata_to_json` and :func:`metadata_from_json` convert to and from the
``multiscales`` entry of OME-Zarr 0.4 (``.zattrs``) and 0.5 (``zarr.json``
attributes under ``ome``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ngff_gpu.dims import axis_type
from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.model.pretty import PrettyRepr

SUPPORTED_VERSIONS = ("0.4", "0.5")


@dataclass(repr=False)
class Axis(PrettyRepr):
    """One axis: ``name`` (t, c, z, y, x), ``type`` and an optional UDUNITS ``unit``."""

    name: str
    type: str
    unit: str | None = None


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


def _transform_json(t: Scale | Translation) -> dict[str, Any]:
    if isinstance(t, Scale):
        return {"type": "scale", "scale": [float(v) for v in t.scale]}
    return {"type": "translation", "translation": [float(v) for v in t.translation]}


def _transform_from_json(d: dict[str, Any]) -> Scale | Translation:
    if d.get("type") == "scale":
        return Scale(scale=[float(v) for v in d["scale"]])
    if d.get("type") == "translation":
        return Translation(translation=[float(v) for v in d["translation"]])
    raise InvalidStoreError(f"unsupported coordinate transformation {d!r}")


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
        axes.append(entry)
    out: dict[str, Any] = {}
    if version == "0.4":
        out["version"] = "0.4"
    out["name"] = meta.name
    out["axes"] = axes
    out["datasets"] = [
        {"path": d.path, "coordinateTransformations": [_transform_json(t)
                                                       for t in d.coordinateTransformations]}
        for d in meta.datasets
    ]
    if meta.coordinateTransformations:
        out["coordinateTransformations"] = [_transform_json(t)
                                            for t in meta.coordinateTransformations]
    if method is not None:
        out["type"] = method
        out["metadata"] = {"method": f"ngff_gpu.{method}", "version": _package_version()}
    return out


def metadata_from_json(entry: dict[str, Any], version: str) -> Metadata:
    """Parse one ``multiscales`` entry (0.4 or 0.5) into :class:`Metadata`."""
    try:
        axes = [Axis(name=a["name"], type=a.get("type", axis_type(a["name"])), unit=a.get("unit"))
                for a in entry["axes"]]
        datasets = [
            Dataset(path=d["path"], coordinateTransformations=[
                _transform_from_json(t) for t in d["coordinateTransformations"]])
            for d in entry["datasets"]
        ]
    except (KeyError, TypeError) as exc:
        raise InvalidStoreError(f"malformed multiscales metadata: missing {exc}") from exc
    top = entry.get("coordinateTransformations")
    return Metadata(
        axes=axes,
        datasets=datasets,
        coordinateTransformations=[_transform_from_json(t) for t in top] if top else None,
        name=entry.get("name", "image"),
        version=version,
    )


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ngff-gpu")
    except PackageNotFoundError:
        return "0+unknown"
