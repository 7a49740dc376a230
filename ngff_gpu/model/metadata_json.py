"""The ``multiscales`` JSON of OME-Zarr 0.4, 0.5 and 0.6, to and from the model.

:func:`metadata_to_json` writes the ``multiscales[0]`` entry (0.4 carries ``version``
inside it; 0.5 and 0.6 in the ``ome`` block around it; 0.6 writes RFC-5
``coordinateSystems``, one ``sequence`` per dataset and the multiscale-level
transformations of any RFC-5 type, as ngff-zarr 0.50 does). Everything it writes is
checked first, as its reader checks it: each vector spans the axes it applies to, each
multiscale-level transformation names the systems it joins and fits them.
:func:`metadata_from_json` parses any of them (:class:`Metadata` for 0.4/0.5,
:class:`Metadata06` for 0.6).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

from ngff_gpu.compute.methods import Methods
from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.model.axes import Axis, axis_json, orientation_from_json
from ngff_gpu.model.metadata import (
    INTRINSIC,
    SUPPORTED_VERSIONS,
    CoordinateSystem,
    Dataset,
    Metadata,
    Metadata06,
    Metadata09,
    dropped_by_flat,
    stem,
)
from ngff_gpu.model.omero import MethodMetadata, method_from_json, method_json
from ngff_gpu.model.transforms import (
    MAX_AXES,
    CoordinateSystemIdentifier,
    Scale,
    TransformSequence,
    is_placement,
    scale_translation,
    uses_rfc5,
    validate_transform,
)
from ngff_gpu.model.transforms_json import (
    MatrixArrays,
    bad,
    transform_json,
    transforms_from_json,
)

log = logging.getLogger(__name__)

#: Keys of a multiscales entry that the model reads; any other goes to ``Metadata.extra``.
ENTRY_KEYS = frozenset({"@type", "version", "name", "axes", "coordinateSystems", "datasets",
                        "coordinateTransformations", "type", "metadata"})


def level_placement(meta: Metadata | Metadata06, index: int, with_global: bool = True
                    ) -> tuple[list[float], list[float]]:
    """Scale and translation of dataset ``index`` over the intrinsic axes: its own
    transformations, then (``with_global``, 0.4/0.5) the multiscales-level ones."""
    ndim = len(meta.axes)
    own = list(meta.datasets[index].coordinateTransformations)
    top = list(meta.coordinateTransformations or []) if with_global and not isinstance(
        meta, Metadata06) else []
    return scale_translation(own + top, ndim)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ngff-gpu")
    except PackageNotFoundError:
        return "0+unknown"


#: What each definition does, for the multiscales ``metadata.description``.
DESCRIPTIONS = {
    "gaussian": "Smoothed with a discrete gaussian filter (ITK's kernel) and read by linear "
                "interpolation at the block centre, both fused into one weight vector per "
                "axis (ngff_gpu, docs/design.md 2.3); ideal for intensity images",
    "mean": "Uses the local mean of each block for the output value (exact integer rounding "
            "for integer data); appropriate for intensity images",
    "nearest": "The sample at the block's lower centre (nearest neighbor); for label images",
    "mode": "The most frequent label of each block, the smallest on a tie; for label images",
    "min": "Minimum of each block",
    "max": "Maximum of each block",
}

#: ngff-zarr's function behind each of its method names: recorded beside ours in
#: ``metadata.method`` when a name of ngff-zarr's was asked for (what computed the
#: level is always ours; the name says which of ngff-zarr's methods it stands in for).
NGFF_ZARR_FUNCTIONS = {
    "itkwasm_gaussian": "itkwasm_downsample.downsample",
    "itkwasm_bin_shrink": "itkwasm_downsample.downsample_bin_shrink",
    "itkwasm_label_image": "itkwasm_downsample.downsample_label_image",
    "itk_gaussian": "itk.DiscreteGaussianImageFilter",
    "itk_bin_shrink": "itk.BinShrinkImageFilter",
    "dask_image_gaussian": "dask_image.ndfilters.gaussian_filter",
    "dask_image_mode": "dask.array.coarsen",
    "dask_image_nearest": "dask_image.ndinterp.affine_transform",
    "dask_bin_shrink": "dask.array.coarsen",
}


def method_metadata(method: Any) -> MethodMetadata:
    """The multiscales ``metadata`` object for a method (a :class:`Methods` or its name).

    ``method`` is the function that computed the levels (``ngff_gpu.<definition>``);
    for one of ngff-zarr's names it adds the ngff-zarr function the name stands for
    (``"ngff_gpu.gaussian (in place of itkwasm_downsample.downsample)"``).
    """
    name = str(getattr(method, "value", method))
    try:
        definition = Methods(name).definition.value
    except ValueError:  # a type this library does not know: recorded as it is
        definition = name
    function = f"ngff_gpu.{definition}"
    if name in NGFF_ZARR_FUNCTIONS:
        function += f" (in place of {NGFF_ZARR_FUNCTIONS[name]})"
    return MethodMetadata(description=DESCRIPTIONS.get(definition, definition),
                          method=function, version=_package_version())


def check_spans(t: Any, where: str, counts: set[int]) -> None:
    """Each scale and translation of ``t`` (sequences opened) has one value per axis of
    the system(s) it applies to (``counts``)."""
    kind = getattr(t, "type", None)
    if kind in ("scale", "translation"):
        values = getattr(t, kind)
        if len(values) not in counts:
            axes = " or ".join(str(c) for c in sorted(counts))
            raise ArgumentError(f"{where} ({kind}) gives {len(values)} {kind} values for the "
                                f"{axes} axes it applies to; a transformation that does not "
                                "span its axes cannot be applied by a reader")
    elif kind == "sequence":
        for j, member in enumerate(t.transformations):
            check_spans(member, f"{where}.transformations[{j}]", counts)


def check_system(system: Any, where: str) -> None:
    """A coordinate system OME-Zarr 0.6 can hold: a name, 1 to 5 named axes with unique
    names, and (unless it is made of ``array`` axes) 2 or 3 of type ``space``.

    Raises
    ------
    ArgumentError
        Naming ``where`` (``coordinateSystems[1]``...).
    """
    name = getattr(system, "name", None)
    if not isinstance(name, str) or not name:
        raise ArgumentError(f"{where}.name must be a non-empty string, got {name!r}")
    axes = list(getattr(system, "axes", None) or [])
    names = [getattr(a, "name", None) for a in axes]
    kinds = [str(getattr(getattr(a, "type", None), "value", getattr(a, "type", None)))
             for a in axes]
    if not 1 <= len(axes) <= MAX_AXES:
        raise ArgumentError(f"{where}.axes: OME-Zarr 0.6 holds 1 to {MAX_AXES} axes per "
                            f"coordinate system, got {len(axes)} ({names})")
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise ArgumentError(f"{where}.axes: axis names must be non-empty and unique, got {names}")
    if kinds.count("array") < 2 and not 2 <= kinds.count("space") <= 3:
        raise ArgumentError(f"{where}.axes: OME-Zarr 0.6 needs 2 or 3 axes of type 'space' "
                            f"(or 2 of type 'array'), got types {kinds}")


def check_systems(systems: Sequence[Any], where: str, intrinsic: Any = None) -> None:
    """Unique non-empty names; every system but ``intrinsic`` (the image's own, checked
    by its dims) passes :func:`check_system`."""
    names = [getattr(s, "name", None) for s in systems]
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise ArgumentError(f"{where} names must be non-empty and unique; got {names}")
    for i, system in enumerate(systems):
        if system is not intrinsic:
            check_system(system, f"{where}[{i}]")


def top_level_json(transforms: Sequence[Any], systems: Sequence[Any], where: str,
                   matrices: MatrixArrays | None = None, version: str = "0.6",
                   inline: bool = False) -> list[dict[str, Any]]:
    """Multiscale-level (or scene) transformations as JSON, each checked first: it
    names its ``input`` and ``output`` systems and (when they are among ``systems``)
    fits them, as the reader checks it."""
    for i, t in enumerate(transforms):
        for side in ("input", "output"):
            if getattr(getattr(t, side, None), "name", None) is None:
                raise ArgumentError(
                    f"{where}[{i}] ({getattr(t, 'type', None)}) names no {side} coordinate "
                    f"system; OME-Zarr {version} requires every multiscale-level "
                    "transformation to name both its input and its output coordinate system")
        try:
            validate_transform(t, systems, version)
        except ArgumentError as exc:
            raise ArgumentError(f"{where}[{i}] ({getattr(t, 'type', None)}) would be written "
                                f"as a transformation ngff_gpu cannot read back: {exc}") from None
    if matrices is not None:
        matrices.claim(transforms)
    return [transform_json(t, f"{where}[{i}]", matrices, inline) for i, t in enumerate(transforms)]


def _dataset_06(ds: Any, index: int, ndim: int, intrinsic: str) -> dict[str, Any]:
    """One 0.6 dataset: one transformation from its array to the intrinsic system."""
    where = f"datasets[{index}].coordinateTransformations"
    transforms = list(ds.coordinateTransformations or [])
    if not is_placement(transforms):
        raise ArgumentError(f"{where}: a dataset maps its array with scale, translation, "
                            f"identity or a sequence of them, got "
                            f"{[getattr(t, 'type', None) for t in transforms]}")
    if len(transforms) != 1:
        transforms = [TransformSequence(transformations=transforms,
                                        name=f"{stem(ds.path, index)}_to_{intrinsic}")]
    for j, t in enumerate(transforms):
        check_spans(t, f"{where}[{j}]", {ndim})
    out = []
    for j, t in enumerate(transforms):
        entry = transform_json(t, f"{where}[{j}]")
        entry.setdefault("input", {"path": ds.path})
        entry.setdefault("output", {"name": intrinsic})
        out.append(entry)
    return {"path": ds.path, "coordinateTransformations": out}


def metadata_to_json(meta: Any, version: str, method: str | None = None,
                     matrices: MatrixArrays | None = None) -> dict[str, Any]:
    """The ``multiscales[0]`` entry of OME-Zarr ``version`` for ``meta``.

    Parameters
    ----------
    meta : Metadata or Metadata06 (or ngff-zarr's)
        The metadata (converted to ``version``'s form first).
    version : {"0.4", "0.5", "0.6", "0.9.dev1"}
        0.4 carries ``version`` inside the entry; 0.5, 0.6 and 0.9.dev1 carry it in the
        ``ome`` block (0.9.dev1 is written in the form of 0.6).
    method : str, optional
        Recorded as the multiscales ``type`` and in ``metadata.method`` (otherwise
        ``meta.type`` and ``meta.metadata`` are written when set).
    matrices : MatrixArrays, optional
        0.6: store rotation and affine matrices in arrays (the writer writes
        ``matrices.arrays``); without it they are written inline.

    Raises
    ------
    ArgumentError
        For what a reader could not apply: a vector that does not span its axes, NaN or
        infinity, a scale <= 0, a multiscale-level transformation that names no system
        or does not fit the ones it names (0.6), or one that ``version`` has no form for
        (0.4/0.5: only scales and translations).
    """
    if version not in SUPPORTED_VERSIONS:
        raise ArgumentError(f"version: unsupported OME-Zarr version {version!r}")
    form = meta.to_version(version) if hasattr(meta, "to_version") else meta
    rfc5 = uses_rfc5(version)
    if not rfc5:
        lost = dropped_by_flat(meta)
        if lost:
            declared = len(getattr(meta, "coordinateTransformations", None) or [])
            raise ArgumentError(f"{lost} of the multiscales metadata's {declared} "
                                f"coordinateTransformations have no form in OME-Zarr {version}, "
                                "which would drop them silently; write with version='0.6', or "
                                "remove them")
    out: dict[str, Any] = {}
    ndim = len(form.axes)
    if version == "0.4":
        out["version"] = "0.4"
    if rfc5:
        intrinsic = form.intrinsic_coordinate_system
        check_systems(form.coordinateSystems, "coordinateSystems", intrinsic)
        out["coordinateSystems"] = [{"name": str(cs.name), "axes": [axis_json(a) for a in cs.axes]}
                                    for cs in form.coordinateSystems]
        if matrices is not None:
            matrices.reserved = [d.path for d in form.datasets]
            matrices.claimed |= set(matrices.reserved)
        out["datasets"] = [_dataset_06(d, i, ndim, intrinsic.name)
                           for i, d in enumerate(form.datasets)]
        if form.coordinateTransformations:
            out["coordinateTransformations"] = top_level_json(
                form.coordinateTransformations, form.coordinateSystems,
                "multiscales coordinateTransformations", matrices)
        out["name"] = form.name
    else:
        out["name"] = form.name
        out["axes"] = [axis_json(a, rfc5=False) for a in form.axes]
        out["datasets"] = []
        for i, d in enumerate(form.datasets):
            where = f"datasets[{i}].coordinateTransformations"
            for j, t in enumerate(d.coordinateTransformations):
                check_spans(t, f"{where}[{j}]", {ndim})
            out["datasets"].append({"path": d.path, "coordinateTransformations": [
                transform_json(t, f"{where}[{j}]") for j, t in enumerate(d.coordinateTransformations)]})
        if form.coordinateTransformations:
            for j, t in enumerate(form.coordinateTransformations):
                check_spans(t, f"coordinateTransformations[{j}]", {ndim})
            out["coordinateTransformations"] = [
                transform_json(t, f"coordinateTransformations[{j}]")
                for j, t in enumerate(form.coordinateTransformations)]
    if method is not None:
        out["type"] = method
        out["metadata"] = method_json(method_metadata(method))
    else:
        if getattr(form, "type", None) is not None:
            out["type"] = str(form.type)
        if getattr(form, "metadata", None) is not None:
            out["metadata"] = method_json(form.metadata)
    if rfc5:
        out["@type"] = "ngff:Image"
    return out


#: The keys of an axis object each version defines (``orientation``: RFC-4, read at every
#: version as ngff-zarr does; ``discrete``: RFC-5).
AXIS_KEYS = frozenset({"name", "type", "unit", "orientation"})
RFC5_AXIS_KEYS = AXIS_KEYS | {"discrete"}


def axes_from_json(raw_axes: Any, where: str, version: str = "0.6") -> list[Axis]:
    """The axes of a stored entry. ``type`` stays as stored (None when absent); an
    orientation that is not a well-formed RFC-4 object is kept as its JSON value;
    keys the version does not define are dropped with a logged warning."""
    if not isinstance(raw_axes, list) or not raw_axes:
        raise bad(where, "expected a non-empty list of axes", raw_axes)
    known = RFC5_AXIS_KEYS if uses_rfc5(version) else AXIS_KEYS
    axes = []
    for i, a in enumerate(raw_axes):
        key = f"{where}[{i}]"
        if isinstance(a, str):  # OME-Zarr 0.3 style: a bare name
            a = {"name": a}
        if not isinstance(a, dict):
            raise bad(key, "expected an object", a)
        if "name" not in a:
            raise InvalidStoreError(f"{key}.name: missing required field 'name' (axis {a!r})")
        name, kind, unit = a.get("name"), a.get("type", None), a.get("unit")
        if not isinstance(name, str) or not name:
            raise bad(f"{key}.name", "expected a non-empty string", name)
        if kind is not None and not isinstance(kind, str):
            raise bad(f"{key}.type", "expected a string", kind)
        if unit is not None and not isinstance(unit, str):
            raise bad(f"{key}.unit", "expected a string", unit)
        unknown = sorted(set(a) - known)
        if unknown:
            log.warning("Ignoring unknown fields %s in axis %r (%s): OME-Zarr %s defines %s",
                        unknown, name, key, version, sorted(known))
        raw = a.get("orientation")
        orientation = orientation_from_json(raw) or raw
        # a 0.6 axis has ``discrete`` (None when undeclared), a 0.4/0.5 axis none
        discrete = a.get("discrete") if "discrete" in known else None
        axes.append(Axis(name=name, type=kind, unit=unit, orientation=orientation,
                         **({"discrete": discrete if isinstance(discrete, bool) else None}
                            if "discrete" in known else {})))
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise bad(where, "axis names repeat", names)
    return axes


def systems_from_json(raw: Any, where: str, version: str = "0.6") -> list[CoordinateSystem]:
    """Parse a ``coordinateSystems`` list (its axes as :func:`axes_from_json` reads them)."""
    if not isinstance(raw, list) or not raw:
        raise bad(where, "expected a non-empty list", raw)
    out = []
    for i, cs in enumerate(raw):
        if not isinstance(cs, dict) or not isinstance(cs.get("name"), str) or not cs["name"]:
            raise bad(f"{where}[{i}]", "expected an object with a name", cs)
        out.append(CoordinateSystem(name=cs["name"], axes=axes_from_json(
            cs.get("axes"), f"{where}[{i}].axes", version)))
    return out


def metadata_from_json(entry: Any, version: str,
                       where: str = "multiscales[0]") -> Metadata | Metadata06:
    """Parse one ``multiscales`` entry: :class:`Metadata` for 0.4/0.5,
    :class:`Metadata06` for 0.6 (matrices stored in arrays come with their ``path`` and
    an empty matrix: the reader loads them).

    Raises
    ------
    InvalidStoreError
        Naming the key (``multiscales[0].datasets[2].path``...) when anything is
        missing, of the wrong type, or (0.6) a transformation does not fit the systems
        it joins. A 0.4/0.5 dataset without ``coordinateTransformations`` is read, as
        ngff-zarr reads it, with scale 1 and translation 0, and a ``UserWarning``
        naming it (the structural rules of a ``validate=True`` read refuse it).
    """
    if not isinstance(entry, dict):
        raise bad(where, "expected an object", entry)
    if version not in SUPPORTED_VERSIONS:
        raise InvalidStoreError(f"unsupported OME-Zarr version {version!r} (supported: "
                                f"{', '.join(SUPPORTED_VERSIONS)})")
    # 0.9.dev1 is read in either shape, as ngff-zarr does: RFC-5 coordinate systems, or
    # a 0.5-shaped flat ``axes`` list (which its schema rejects: validate=True says so).
    rfc5 = uses_rfc5(version) and not (version == "0.9.dev1" and "coordinateSystems" not in
                                       entry and "axes" in entry)
    if rfc5:
        systems = systems_from_json(entry.get("coordinateSystems"), f"{where}.coordinateSystems",
                                    version)
        ndim = None
    else:
        axes = axes_from_json(entry.get("axes"), f"{where}.axes", version)
        ndim = len(axes)
    raw_ds = entry.get("datasets")
    if not isinstance(raw_ds, list) or not raw_ds:
        raise bad(f"{where}.datasets", "expected a non-empty list of datasets", raw_ds)
    datasets: list[Dataset] = []
    unplaced: list[str] = []  # 0.4/0.5 datasets without the (required) key
    for i, d in enumerate(raw_ds):
        key = f"{where}.datasets[{i}]"
        if not isinstance(d, dict):
            raise bad(key, "expected an object", d)
        path = d.get("path")
        if not isinstance(path, str) or not path:
            raise bad(f"{key}.path", "expected a non-empty string", path)
        if "coordinateTransformations" not in d:
            if rfc5:
                raise InvalidStoreError(f"{key}: missing key 'coordinateTransformations'")
            unplaced.append(key)
            datasets.append(Dataset(path=path, coordinateTransformations=[
                Scale(scale=[1.0] * ndim)]))
            continue
        parsed = transforms_from_json(d["coordinateTransformations"], ndim,
                                      f"{key}.coordinateTransformations",
                                      version if rfc5 else "0.5")
        if rfc5 and not is_placement(parsed):
            raise InvalidStoreError(f"{key}.coordinateTransformations: a dataset maps its array "
                                    "with scale, translation, identity or a sequence of them")
        datasets.append(Dataset(path=path, coordinateTransformations=parsed))
    if unplaced:
        # As ngff-zarr 0.50 reads them (a validate=True read refuses them, as ngff-zarr's does).
        warnings.warn(f"{', '.join(unplaced)}: missing key 'coordinateTransformations' "
                      f"(required by OME-Zarr {version}); read with scale 1 and translation "
                      "0 on every axis, at every level without it, as ngff-zarr does",
                      UserWarning, stacklevel=3)
    top = entry.get("coordinateTransformations")
    name = entry.get("name", "image")
    if not isinstance(name, str):
        raise bad(f"{where}.name", "expected a string", name)
    kind = entry.get("type")
    common = {"name": name, "type": kind if isinstance(kind, str) else None,
              "metadata": method_from_json(entry.get("metadata")),
              "extra": {k: v for k, v in entry.items() if k not in ENTRY_KEYS}}
    transforms = (transforms_from_json(top, ndim, f"{where}.coordinateTransformations",
                                       version if rfc5 else "0.5")
                  or None) if top is not None else None
    if not rfc5:
        return Metadata(axes=axes, datasets=datasets, coordinateTransformations=transforms,
                        version=version, **common)
    for ds in datasets:
        for t in ds.coordinateTransformations:  # a dataset's transformation needs its ends
            if t.output is None:
                t.output = CoordinateSystemIdentifier(name=INTRINSIC)
    try:
        cls = Metadata09 if version == "0.9.dev1" else Metadata06
        out = cls(coordinateSystems=systems, datasets=datasets,
                  coordinateTransformations=transforms, **common)
        for t in transforms or []:
            validate_transform(t, systems, version)
    except ArgumentError as exc:
        raise InvalidStoreError(f"{where}: {exc}") from None
    _check_lengths(out, where)
    return out


def _check_lengths(meta: Metadata06, where: str) -> None:
    ndim = len(meta.axes)
    for i, ds in enumerate(meta.datasets):
        for j, t in enumerate(ds.coordinateTransformations):
            try:
                check_spans(t, f"{where}.datasets[{i}].coordinateTransformations[{j}]", {ndim})
            except ArgumentError as exc:
                raise InvalidStoreError(str(exc)) from None
