"""OME-NGFF multiscales metadata as dataclasses, in two forms.

``Metadata(axes=[Axis], datasets=[Dataset(path, [Scale, Translation])],
coordinateTransformations, omero, name, version, type, metadata, extra)`` is the form
:func:`~ngff_gpu.to_multiscales` returns and the seed's page prints (ngff-zarr's
OME-Zarr 0.4/0.5 model). ``Metadata06`` is OME-Zarr 0.6 (RFC-5): ``coordinateSystems``
(the ``intrinsic`` one holds the axes) and, per dataset, one ``TransformSequence``
from the array (``input.path``) to the intrinsic system (``output.name``).
``Metadata.to_version("0.6")`` and ``Metadata06.to_version("0.5")`` convert between
them without loss for images (scale and translation per level);
``Metadata.coordinateSystems`` reads the 0.6 view of the flat form.
The JSON of both is in :mod:`ngff_gpu.model.metadata_json`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

from ngff_gpu.errors import ArgumentError
from ngff_gpu.model.axes import Axis
from ngff_gpu.model.omero import MethodMetadata, Omero
from ngff_gpu.model.pretty import PrettyRepr
from ngff_gpu.model.transforms import (
    CoordinateSystemIdentifier,
    Scale,
    Transform,
    TransformSequence,
    Translation,
    flatten,
)

#: The OME-Zarr versions the model takes (``Metadata.version``, ``to_version``).
SUPPORTED_VERSIONS = ("0.4", "0.5", "0.6", "0.9.dev1")
#: The development version that adopts RFC-3 (any axis count, names, types and order):
#: OME-Zarr 0.6 plus RFC-3, written only when asked for (never a default).
RFC3_VERSION = "0.9.dev1"
#: The name of the coordinate system a 0.6 multiscales maps its arrays to.
INTRINSIC = "intrinsic"


def check_version(version: Any, param: str = "version") -> str:
    """``version`` as one of :data:`SUPPORTED_VERSIONS`.

    Raises
    ------
    ArgumentError
        (a ``ValueError``, as ngff-zarr's ``NgffVersion(...)`` raises) otherwise.
    """
    value = str(getattr(version, "value", version))
    if value not in SUPPORTED_VERSIONS:
        raise ArgumentError(f"{param}: unsupported OME-Zarr version {version!r}; use one of "
                            f"{SUPPORTED_VERSIONS}")
    return value


@dataclass(repr=False)
class Dataset(PrettyRepr):
    """One level of the pyramid: its array ``path`` and its transformations
    (``[Scale, Translation]``; in 0.6, one ``TransformSequence`` of them)."""

    path: str
    coordinateTransformations: list[Any]  # noqa: N815 - OME-NGFF name


@dataclass(repr=False)
class CoordinateSystem(PrettyRepr):
    """RFC-5 coordinate system: a ``name`` and its ``axes``."""

    name: str
    axes: list[Axis]


def _hidden(default: Any = None, compare: bool = True) -> Any:
    return field(default=default, repr=False, compare=compare)


@dataclass(repr=False)
class Metadata(PrettyRepr):
    """The ``multiscales`` metadata of one image (OME-Zarr 0.4/0.5 form).

    ``omero``, ``type`` (the method name), ``metadata`` (:class:`MethodMetadata`) and
    ``extra`` (keys of the stored entry this model does not know; never written back)
    are ngff-zarr's fields; they are left out of the repr, which the seed's page pins,
    and (but ``omero``) out of ``==``: provenance, not geometry.
    """

    axes: list[Axis]
    datasets: list[Dataset]
    coordinateTransformations: list[Transform] | None = None  # noqa: N815
    omero: Omero | None = _hidden()
    name: str = "image"
    version: str = "0.5"
    type: str | None = _hidden(compare=False)
    metadata: MethodMetadata | None = _hidden(compare=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.version = check_version(self.version)

    @property
    def dimension_names(self) -> tuple[str, ...]:
        """The axis names, in order."""
        return tuple(a.name for a in self.axes)

    @property
    def coordinateSystems(self) -> list[CoordinateSystem]:  # noqa: N802 - OME-NGFF name
        """The 0.6 view: one ``intrinsic`` coordinate system holding the axes."""
        return [CoordinateSystem(name=INTRINSIC, axes=self.axes)]

    @property
    def intrinsic_coordinate_system(self) -> CoordinateSystem:
        """The coordinate system the datasets map to (0.6 view)."""
        return self.coordinateSystems[0]

    def to_version(self, version: str) -> Metadata | Metadata06:
        """This metadata for OME-Zarr ``version``: a copy with ``version`` set for
        0.4/0.5, a :class:`Metadata06` for 0.6.

        Raises
        ------
        ArgumentError
            (a ``ValueError``) for a version not in :data:`SUPPORTED_VERSIONS`.
        """
        version = check_version(version)
        if version == "0.6":
            return Metadata06.from_flat(self)
        if version == RFC3_VERSION:
            return Metadata09.from_flat(self)
        out = copy.copy(self)
        out.version = version
        return out


@dataclass(repr=False)
class Metadata06(PrettyRepr):
    """OME-Zarr 0.6 multiscales metadata (RFC-5 coordinate systems).

    Raises
    ------
    ArgumentError
        When the datasets do not all map to one coordinate system of
        ``coordinateSystems`` (the intrinsic one).
    """

    coordinateSystems: list[CoordinateSystem]  # noqa: N815
    datasets: list[Dataset]
    coordinateTransformations: list[Any] | None = None  # noqa: N815
    omero: Omero | None = None
    name: str = "image"
    type: str | None = None
    metadata: MethodMetadata | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        _ = self.intrinsic_coordinate_system

    version = "0.6"

    @property
    def intrinsic_coordinate_system(self) -> CoordinateSystem:
        """The coordinate system every dataset's transformation outputs to."""
        outputs = []
        for i, ds in enumerate(self.datasets):
            first = ds.coordinateTransformations[0] if ds.coordinateTransformations else None
            out = getattr(first, "output", None)
            if out is None or getattr(out, "name", None) is None:
                raise ArgumentError(f"datasets[{i}]: its coordinateTransformations name no "
                                    "output coordinate system")
            outputs.append(out.name)
        if len(set(outputs)) > 1:
            raise ArgumentError(f"datasets map to different coordinate systems {outputs}; "
                                "a 0.6 multiscales maps every level to one")
        for cs in self.coordinateSystems:
            if cs.name == outputs[0]:
                return cs
        raise ArgumentError(f"output coordinate system {outputs[0]!r} is not one of "
                            f"{[cs.name for cs in self.coordinateSystems]}")

    @property
    def axes(self) -> list[Axis]:
        """The intrinsic coordinate system's axes."""
        return self.intrinsic_coordinate_system.axes

    @property
    def dimension_names(self) -> tuple[str, ...]:
        """The axis names, in order."""
        return tuple(a.name for a in self.axes)

    @classmethod
    def from_flat(cls, meta: Metadata) -> Metadata06:
        """The 0.6 form of a 0.4/0.5 :class:`Metadata`: each dataset's transformations
        become one sequence ``scale{k}_to_intrinsic`` from its path to ``intrinsic``."""
        datasets = [
            Dataset(path=ds.path, coordinateTransformations=[TransformSequence(
                transformations=[copy.copy(t) for t in flatten(ds.coordinateTransformations)],
                name=f"{_stem(ds.path, i)}_to_{INTRINSIC}",
                input=CoordinateSystemIdentifier(path=ds.path),
                output=CoordinateSystemIdentifier(name=INTRINSIC))])
            for i, ds in enumerate(meta.datasets)]
        return cls(coordinateSystems=[CoordinateSystem(name=INTRINSIC, axes=list(meta.axes))],
                   datasets=datasets,
                   coordinateTransformations=(list(meta.coordinateTransformations)
                                              if meta.coordinateTransformations else None),
                   omero=meta.omero, name=meta.name, type=meta.type,
                   metadata=meta.metadata, extra=dict(meta.extra))

    def to_flat(self, version: str = "0.5") -> Metadata:
        """The 0.4/0.5 form: the intrinsic axes, and per dataset its scale and
        translation (sequences opened)."""
        datasets = []
        for ds in self.datasets:
            flat = flatten(ds.coordinateTransformations)
            datasets.append(Dataset(path=ds.path, coordinateTransformations=[
                Scale(scale=list(t.scale)) if t.type == "scale"
                else Translation(translation=list(t.translation)) for t in flat]))
        top = flatten(self.coordinateTransformations) or None
        return Metadata(axes=list(self.axes), datasets=datasets, coordinateTransformations=top,
                        omero=self.omero, name=self.name, version=version, type=self.type,
                        metadata=self.metadata, extra=dict(self.extra))

    def to_version(self, version: str) -> Metadata | Metadata06:
        """This metadata for OME-Zarr ``version`` (0.4/0.5: :class:`Metadata`; 0.6:
        :class:`Metadata06`; 0.9.dev1: :class:`Metadata09`)."""
        version = check_version(version)
        if version not in ("0.6", RFC3_VERSION):
            return self.to_flat(version)
        cls = Metadata09 if version == RFC3_VERSION else Metadata06
        if type(self) is cls:
            return self
        return cls(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(repr=False)
class Metadata09(Metadata06):
    """OME-Zarr 0.9.dev1 multiscales metadata: the 0.6 form (RFC-5) whose axes follow
    RFC-3 (any count, names, types and order)."""

    version = RFC3_VERSION


def _stem(path: str, index: int) -> str:
    head = path.split("/")[0]
    return head if head else f"scale{index}"
