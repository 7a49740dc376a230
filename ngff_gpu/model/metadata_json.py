"""The ``multiscales`` JSON of OME-Zarr 0.4, 0.5 and 0.6, to and from the model.

:func:`metadata_to_json` writes the ``multiscales[0]`` entry (0.4 carries ``version``
inside it; 0.5 and 0.6 in the ``ome`` block around it; 0.6 writes RFC-5
``coordinateSystems`` and one ``sequence`` per dataset, as ngff-zarr 0.50 does).
:func:`metadata_from_json` parses any of them into the flat :class:`Metadata`
(``version`` says which it was; :meth:`Metadata.to_version` gives the 0.6 form).
"""

from __future__ import annotations

import logging
from typing import Any

from ngff_gpu.errors import InvalidStoreError
from ngff_gpu.model.axes import Axis, axis_json, orientation_from_json
from ngff_gpu.model.metadata import (
    SUPPORTED_VERSIONS,
    CoordinateSystem,
    Dataset,
    Metadata,
    Metadata06,
)
from ngff_gpu.model.omero import MethodMetadata, method_from_json, method_json
from ngff_gpu.model.transforms import (
    bad,
    scale_translation,
    transform_json,
    transforms_from_json,
    uses_rfc5,
)

log = logging.getLogger(__name__)

#: Keys of a multiscales entry that the model reads; any other goes to ``Metadata.extra``.
ENTRY_KEYS = frozenset({"@type", "version", "name", "axes", "coordinateSystems", "datasets",
                        "coordinateTransformations", "type", "metadata"})


def level_placement(meta: Metadata | Metadata06, index: int, with_global: bool = True
                    ) -> tuple[list[float], list[float]]:
    """Scale and translation of dataset ``index`` over all axes: its own transformations,
    then (``with_global``) the multiscales-level ones."""
    ndim = len(meta.axes)
    own = list(meta.datasets[index].coordinateTransformations)
    return scale_translation(own + (list(meta.coordinateTransformations or [])
                                    if with_global else []), ndim)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ngff-gpu")
    except PackageNotFoundError:
        return "0+unknown"


#: What each method does, for the multiscales ``metadata.description``.
DESCRIPTIONS = {
    "gaussian": "Discrete Gaussian blur (ITK's kernel) and linear interpolation at the block "
                "centre, fused into one weight vector per axis (ngff_gpu, docs/design.md 2.3)",
    "mean": "Mean of each block (exact integer rounding for integer data)",
    "nearest": "The sample at the block's lower centre",
    "mode": "Most frequent value of each block, ties to the smallest (label images)",
    "min": "Minimum of each block",
    "max": "Maximum of each block",
}


def method_metadata(method: Any) -> MethodMetadata:
    """The multiscales ``metadata`` object for a method (a :class:`Methods` or its name)."""
    name = str(getattr(method, "value", method))
    return MethodMetadata(description=DESCRIPTIONS.get(name, name),
                          method=f"ngff_gpu.{name}", version=_package_version())


def metadata_to_json(meta: Metadata | Metadata06, version: str,
                     method: str | None = None) -> dict[str, Any]:
    """The ``multiscales[0]`` entry of OME-Zarr ``version`` for ``meta``.

    Parameters
    ----------
    meta : Metadata or Metadata06
        The metadata (converted to ``version``'s form first).
    version : {"0.4", "0.5", "0.6", "0.9.dev1"}
        0.4 carries ``version`` inside the entry; 0.5, 0.6 and 0.9.dev1 carry it in the
        ``ome`` block (0.9.dev1 is written in the form of 0.6).
    method : str, optional
        Recorded as the multiscales ``type`` and in ``metadata.method`` (otherwise
        ``meta.type`` and ``meta.metadata`` are written when set).

    Raises
    ------
    ArgumentError
        For a transformation JSON cannot hold (NaN, infinity, a scale <= 0).
    """
    form = meta.to_version(version)
    rfc5 = uses_rfc5(version)
    out: dict[str, Any] = {}
    if version == "0.4":
        out["version"] = "0.4"
    if rfc5:
        out["coordinateSystems"] = [
            {"name": cs.name, "axes": [axis_json(a) for a in cs.axes]}
            for cs in form.coordinateSystems]
    else:
        out["name"] = form.name
        out["axes"] = [axis_json(a) for a in form.axes]
    out["datasets"] = [
        {"path": d.path, "coordinateTransformations": [
            transform_json(t, f"datasets[{i}].coordinateTransformations[{j}]")
            for j, t in enumerate(d.coordinateTransformations)]}
        for i, d in enumerate(form.datasets)]
    if form.coordinateTransformations:
        out["coordinateTransformations"] = [
            transform_json(t, f"coordinateTransformations[{j}]")
            for j, t in enumerate(form.coordinateTransformations)]
    if rfc5:
        out["name"] = form.name
    if method is not None:
        out["type"] = method
        out["metadata"] = method_json(method_metadata(method))
    else:
        if form.type is not None:
            out["type"] = str(form.type)
        if form.metadata is not None:
            out["metadata"] = method_json(form.metadata)
    if rfc5:
        out["@type"] = "ngff:Image"
    return out


#: The keys of an axis object each version defines (``orientation``: RFC-4, read at every
#: version as ngff-zarr does; ``discrete``: RFC-5).
AXIS_KEYS = frozenset({"name", "type", "unit", "orientation"})
RFC5_AXIS_KEYS = AXIS_KEYS | {"discrete"}


def _axes_from_json(raw_axes: Any, where: str, version: str) -> list[Axis]:
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
        discrete = a.get("discrete") if "discrete" in known else None
        axes.append(Axis(name=name, type=kind, unit=unit, orientation=orientation,
                         discrete=discrete if isinstance(discrete, bool) else None))
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise bad(where, "axis names repeat", names)
    return axes


def metadata_from_json(entry: Any, version: str, where: str = "multiscales[0]") -> Metadata:
    """Parse one ``multiscales`` entry (0.4, 0.5 or 0.6) into :class:`Metadata`.

    Raises
    ------
    InvalidStoreError
        Naming the key (``multiscales[0].datasets[2].path``...) when anything is
        missing or of the wrong type.
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
    systems: list[CoordinateSystem] = []
    if rfc5:
        raw_cs = entry.get("coordinateSystems")
        if not isinstance(raw_cs, list) or not raw_cs:
            raise bad(f"{where}.coordinateSystems", "expected a non-empty list", raw_cs)
        for i, cs in enumerate(raw_cs):
            if not isinstance(cs, dict) or not isinstance(cs.get("name"), str):
                raise bad(f"{where}.coordinateSystems[{i}]", "expected an object with a name", cs)
            systems.append(CoordinateSystem(name=cs["name"], axes=_axes_from_json(
                cs.get("axes"), f"{where}.coordinateSystems[{i}].axes", version)))
        ndim = None
    else:
        axes = _axes_from_json(entry.get("axes"), f"{where}.axes", version)
        ndim = len(axes)
    raw_ds = entry.get("datasets")
    if not isinstance(raw_ds, list) or not raw_ds:
        raise bad(f"{where}.datasets", "expected a non-empty list of datasets", raw_ds)
    datasets = []
    for i, d in enumerate(raw_ds):
        key = f"{where}.datasets[{i}]"
        if not isinstance(d, dict):
            raise bad(key, "expected an object", d)
        path = d.get("path")
        if not isinstance(path, str) or not path:
            raise bad(f"{key}.path", "expected a non-empty string", path)
        if "coordinateTransformations" not in d:
            raise InvalidStoreError(f"{key}: missing key 'coordinateTransformations'")
        datasets.append(Dataset(path=path, coordinateTransformations=transforms_from_json(
            d["coordinateTransformations"], ndim, f"{key}.coordinateTransformations",
            version if rfc5 else "0.5")))
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
    if rfc5:
        try:
            meta06 = Metadata06(coordinateSystems=systems, datasets=datasets,
                                coordinateTransformations=transforms, **common)
        except ValueError as exc:
            raise InvalidStoreError(f"{where}: {exc}") from None
        out = meta06.to_flat(version)
        _check_lengths(out, where)
        return out
    return Metadata(axes=axes, datasets=datasets, coordinateTransformations=transforms,
                    version=version, **common)


def _check_lengths(meta: Metadata, where: str) -> None:
    ndim = len(meta.axes)
    for i, ds in enumerate(meta.datasets):
        for j, t in enumerate(ds.coordinateTransformations):
            values = t.scale if t.type == "scale" else t.translation
            if len(values) != ndim:
                raise bad(f"{where}.datasets[{i}].coordinateTransformations[{j}].{t.type}",
                          f"expected a list of {ndim} numbers", values)
