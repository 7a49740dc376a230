"""OME-NGFF multiscales metadata as dataclasses, in two forms.

``Metadata(axes=[Axis], datasets=[Dataset(path, [Scale, Translation])],
coordinateTransformations, omero, name, version, type, metadata, extra)`` is the form
:func:`~ngff_gpu.to_multiscales` returns and the seed's page prints (ngff-zarr's
OME-Zarr 0.4/0.5 model), and what :func:`~ngff_gpu.from_ngff_zarr` returns for a 0.4/0.5
store. ``Metadata06`` is OME-Zarr 0.6 (RFC-5; ngff-zarr 0.50's
``ngff_zarr.v06.zarr_metadata.Metadata``), what a 0.6 store reads as:
``coordinateSystems`` (the ``intrinsic`` one holds the axes; users may add more), per
dataset one ``TransformSequence`` from the array (``input.path``) to the intrinsic
system (``output.name``), and optional multiscale-level ``coordinateTransformations``
between named systems (any RFC-5 type). ``Metadata.to_version("0.6")`` and
``Metadata06.to_version("0.5")`` convert between them (without loss for what 0.4/0.5
can hold); ``Metadata.coordinateSystems`` reads the 0.6 view of the flat form. The JSON
of both is in :mod:`ngff_gpu.model.metadata_json`.
"""

from __future__ import annotations

import copy
from dataclasses import InitVar, dataclass, field, fields
from enum import StrEnum
from typing import Any

from ngff_gpu.errors import ArgumentError
from ngff_gpu.model.axes import Axis
from ngff_gpu.model.omero import MethodMetadata, Omero
from ngff_gpu.model.pretty import PrettyRepr, ValueEq, optional
from ngff_gpu.model.transforms import (
    CoordinateSystemIdentifier,
    Scale,
    TransformSequence,
    Translation,
    flatten,
    is_placement,
)


class NgffVersion(StrEnum):
    """An OME-Zarr version ngff_gpu reads and writes: ngff-zarr's ``NgffVersion`` members
    from 0.4 on (0.1 to 0.3 are neither read nor written here). Members are strings, so
    ``NgffVersion.V05 == "0.5"`` and ``"0.5" in SUPPORTED_VERSIONS``."""

    V04 = "0.4"
    V05 = "0.5"
    V06 = "0.6"
    V09dev1 = "0.9.dev1"


#: The OME-Zarr versions the model takes (``Metadata.version``, ``to_version``), as
#: ngff-zarr's ``SUPPORTED_VERSIONS``: a tuple of :class:`NgffVersion` members.
SUPPORTED_VERSIONS: tuple[NgffVersion, ...] = tuple(NgffVersion)
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
                            f"{', '.join(SUPPORTED_VERSIONS)}")
    return value


@dataclass(repr=False, eq=False)
class Dataset(ValueEq, PrettyRepr):
    """One level of the pyramid: its array ``path`` and its transformations
    (``[Scale, Translation]`` in 0.4/0.5; in 0.6 one ``TransformSequence`` of them)."""

    path: str
    coordinateTransformations: list[Any]  # noqa: N815 - OME-NGFF name


@dataclass(repr=False, eq=False)
class CoordinateSystem(ValueEq, PrettyRepr):
    """RFC-5 coordinate system: a ``name`` and its ``axes``."""

    name: str
    axes: list[Axis]


@dataclass(repr=False, eq=False)
class Metadata(ValueEq, PrettyRepr):
    """The ``multiscales`` metadata of one image in the OME-Zarr 0.4/0.5 form.

    ``omero``, ``type`` (the method name), ``metadata`` (:class:`MethodMetadata`) and
    ``extra`` (keys of the stored entry this model does not know; never written back)
    are ngff-zarr's fields; ``type``, ``metadata`` and ``extra`` are provenance, not
    geometry, and left out of ``==``.
    """

    axes: list[Axis]
    datasets: list[Dataset]
    coordinateTransformations: list[Any] | None = None  # noqa: N815
    omero: Omero | None = optional()
    name: str = "image"
    #: "0.4" unless given, as ngff-zarr's top-level ``Metadata`` (its 0.4 class); the
    #: writer's ``version`` argument, not this, decides what is written.
    version: str = "0.4"
    type: str | None = field(default=None, repr=False, compare=False)
    metadata: MethodMetadata | None = field(default=None, repr=False, compare=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: The 0.6 view (:attr:`coordinateSystems`), also taken on construction as ngff-zarr
    #: 0.50's 0.6 model takes it (``dataclasses.replace(meta, coordinateSystems=...)``);
    #: not a field: the repr and ``==`` of the 0.4/0.5 form do not see it.
    coordinateSystems: InitVar[list[Any] | None] = None  # noqa: N815

    def __post_init__(self, coordinateSystems: list[Any] | None) -> None:  # noqa: N803
        self.version = check_version(self.version)
        if coordinateSystems is not None:
            systems = list(coordinateSystems)
            if not systems or [a.name for a in systems[0].axes] != [a.name for a in self.axes]:
                raise ArgumentError("coordinateSystems[0] is the intrinsic system: its axes "
                                    f"must be the metadata's axes {list(self.dimension_names)}")
            self.coordinateSystems = systems

    @property
    def dimension_names(self) -> tuple[str, ...]:
        """The axis names, in order."""
        return tuple(a.name for a in self.axes)

    @property
    def intrinsic_coordinate_system(self) -> CoordinateSystem:
        """The coordinate system the datasets map to (0.6 view)."""
        return self.coordinateSystems[0]

    @classmethod
    def from_version(cls, metadata: Any) -> Metadata:
        """``metadata`` of any version in this (0.4/0.5) form, as ngff-zarr's
        ``Metadata.from_version``: a 0.4/0.5 one keeps its version, a 0.6 or 0.9.dev1
        one becomes 0.5 (:meth:`to_version`).

        Raises
        ------
        ArgumentError
            (a ``ValueError``, as ngff-zarr raises) when ``metadata`` is not one of ours.
        """
        return _converted(metadata, cls, getattr(metadata, "version", None)
                          if isinstance(metadata, Metadata) else "0.5")

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
        out.__dict__.pop("_systems", None)
        out.coordinateSystems[1:] = self.coordinateSystems[1:]
        out.version = version
        return out


def _systems(self: Metadata) -> list[CoordinateSystem]:
    """The 0.6 view: the ``intrinsic`` coordinate system (holding ``axes``) first,
    then any a user adds (``coordinateSystems.append(...)``, as with ngff-zarr 0.50's
    model). The list is kept with this object (not a field: the 0.4/0.5 repr and
    ``==`` ignore it); systems beyond the intrinsic one are written at 0.6 only."""
    systems = self.__dict__.get("_systems")
    if systems is None or not systems or systems[0].axes is not self.axes:
        extra = list(systems[1:]) if systems else []
        systems = [CoordinateSystem(name=INTRINSIC, axes=self.axes), *extra]
        self.__dict__["_systems"] = systems
    return systems


def _set_systems(self: Metadata, value: list[Any]) -> None:
    """Set the 0.6 view; its first system is the intrinsic one, whose axes are ``axes``."""
    systems = list(value or [])
    if not systems:
        raise ArgumentError("coordinateSystems holds at least the intrinsic system")
    self.axes = systems[0].axes
    self.__dict__["_systems"] = systems


# Set after the class is made, so that the generated ``__init__`` keeps ``None`` as the
# default of its ``coordinateSystems`` argument.
Metadata.coordinateSystems = property(_systems, _set_systems)  # type: ignore[assignment]


def _output_name(ds: Any, index: int) -> str:
    first = ds.coordinateTransformations[0] if ds.coordinateTransformations else None
    name = getattr(getattr(first, "output", None), "name", None)
    if name is None:
        raise ArgumentError(f"datasets[{index}]: its coordinateTransformations name no output "
                            "coordinate system")
    return str(name)


@dataclass(repr=False, eq=False)
class Metadata06(ValueEq, PrettyRepr):
    """OME-Zarr 0.6 multiscales metadata (RFC-5), ngff-zarr 0.50's
    ``ngff_zarr.v06.zarr_metadata.Metadata`` (it compares equal to one).

    ``version`` is ``"0.6"`` (the form, not the version of a store it was read from);
    ``axes`` and ``dimension_names`` are the intrinsic system's. ``metadata`` (the
    method record) and ``extra`` are provenance: out of the repr and of ``==``.

    Raises
    ------
    ArgumentError
        When the datasets do not all map to one system of ``coordinateSystems``.
    """

    SAME_AS = ("Metadata",)
    version = "0.6"

    coordinateSystems: list[CoordinateSystem]  # noqa: N815
    datasets: list[Dataset]
    coordinateTransformations: list[Any] | None = None  # noqa: N815
    omero: Omero | None = optional()
    name: str = "image"
    type: str | None = optional(compare=False)
    metadata: MethodMetadata | None = field(default=None, repr=False, compare=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        _ = self.intrinsic_coordinate_system

    @property
    def intrinsic_coordinate_system(self) -> CoordinateSystem:
        """The coordinate system every dataset's transformation outputs to."""
        if not self.datasets:
            raise ArgumentError("a multiscales has at least one dataset")
        outputs = [_output_name(ds, i) for i, ds in enumerate(self.datasets)]
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
    def from_flat(cls, meta: Any) -> Metadata06:
        """The 0.6 form of a 0.4/0.5 metadata (ours or ngff-zarr's): each dataset's
        transformations, then the multiscale-level ones of the 0.4/0.5 kind (which apply
        to every level), become one sequence ``scale{k}_to_intrinsic`` from its path to
        ``intrinsic``. Multiscale-level transformations between coordinate systems
        (:func:`between_systems`) and the systems beyond the intrinsic one
        (``meta.coordinateSystems[1:]``) are kept as they are."""
        declared = list(getattr(meta, "coordinateTransformations", None) or [])
        top = flatten([t for t in declared if not between_systems(t)])
        kept = [t for t in declared if between_systems(t)] or None
        others = list(getattr(meta, "coordinateSystems", None) or [])[1:]
        datasets = [
            Dataset(path=ds.path, coordinateTransformations=[TransformSequence(
                transformations=[_plain(t) for t in flatten(ds.coordinateTransformations) + top],
                name=f"{stem(ds.path, i)}_to_{INTRINSIC}",
                input=CoordinateSystemIdentifier(path=ds.path),
                output=CoordinateSystemIdentifier(name=INTRINSIC))])
            for i, ds in enumerate(meta.datasets)]
        return cls(coordinateSystems=[CoordinateSystem(name=INTRINSIC, axes=list(meta.axes)),
                                      *others],
                   datasets=datasets, coordinateTransformations=kept,
                   omero=getattr(meta, "omero", None),
                   name=getattr(meta, "name", "image"), type=getattr(meta, "type", None),
                   metadata=getattr(meta, "metadata", None),
                   extra=dict(getattr(meta, "extra", None) or {}))

    def to_flat(self, version: str = "0.5") -> Metadata:
        """The 0.4/0.5 form: the intrinsic axes, and per dataset its scale and
        translation (sequences opened). Multiscale-level scales and translations are
        kept; other multiscale-level types have no 0.4/0.5 form and are left out (the
        writer refuses to drop them: :func:`dropped_by_flat`)."""
        datasets = []
        for ds in self.datasets:
            datasets.append(Dataset(path=ds.path, coordinateTransformations=[
                _plain(t) for t in flatten(ds.coordinateTransformations)]))
        kept = [t for t in (self.coordinateTransformations or [])
                if is_placement([t]) and not between_systems(t)]
        top = [_plain(t) for t in flatten(kept)] or None
        out = Metadata(axes=list(self.axes), datasets=datasets, coordinateTransformations=top,
                       omero=self.omero, name=self.name, version=version, type=self.type,
                       metadata=self.metadata, extra=dict(self.extra))
        out.coordinateSystems[1:] = self.coordinateSystems[1:]
        return out

    @classmethod
    def from_version(cls, metadata: Any) -> Metadata06:
        """``metadata`` of any version as this class (0.6, or 0.9.dev1 for
        :class:`Metadata09`), as ngff-zarr's ``Metadata.from_version``.

        Raises
        ------
        ArgumentError
            (a ``ValueError``, as ngff-zarr raises) when ``metadata`` is not one of ours.
        """
        return _converted(metadata, cls, RFC3_VERSION if issubclass(cls, Metadata09) else "0.6")

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


def _converted(metadata: Any, cls: type, version: str) -> Any:
    if not isinstance(metadata, (Metadata, Metadata06)):
        raise ArgumentError(f"{cls.__name__}.from_version: unsupported metadata type "
                            f"{type(metadata).__name__} (a Metadata, Metadata06 or "
                            "Metadata09 of ngff_gpu)")
    return metadata.to_version(version)


def between_systems(t: Any) -> bool:
    """True for a multiscale-level transformation of the 0.6 kind: one that names the
    coordinate system it outputs to. (A 0.4/0.5 multiscale-level scale or translation
    names none: it applies to every level.)"""
    return getattr(getattr(t, "output", None), "name", None) is not None


def dropped_by_flat(meta: Any) -> int:
    """How many multiscale-level transformations of ``meta`` a 0.4/0.5 form cannot hold."""
    return sum(between_systems(t) or not is_placement([t])
               for t in getattr(meta, "coordinateTransformations", None) or [])


def _plain(t: Any) -> Scale | Translation:
    """A scale or translation (ours or ngff-zarr's) as ours, without RFC-5 ends."""
    if t.type == "scale":
        return Scale(scale=[float(v) for v in t.scale])
    return Translation(translation=[float(v) for v in t.translation])


def stem(path: str, index: int) -> str:
    """``scale{k}`` for the dataset ``scale{k}/image`` (the sequence's name prefix)."""
    head = path.split("/")[0]
    return head if head else f"scale{index}"
