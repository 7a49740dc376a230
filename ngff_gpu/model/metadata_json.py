"""The ``multiscales`` JSON of OME-Zarr 0.4, 0.5 and 0.6, to and from the model.

:func:`metadata_to_json` writes the ``multiscales[0]`` entry (0.4 carries ``version``
inside it; 0.5 and 0.6 in the ``ome`` block around it; 0.6 writes RFC-5
``coordinateSystems`` and one ``sequence`` per dataset, as ngff-zarr 0.50 does).
:func:`metadata_from_json` parses any of them into the flat :class:`Metadata`
(``version`` says which it was; :meth:`Metadata.to_version` gives the 0.6 form).
"""

from __future__ import annotations

from typing import Any

from ngff_gpu.compute.methods import Methods
from ngff_gpu.dims import axis_type
from ngff_gpu.errors import InvalidStoreError
from ngff_gpu.model.axes import Axis, orientation_from_json
from ngff_gpu.model.metadata import (
    SUPPORTED_VERSIONS,
    CoordinateSystem,
    Dataset,
    Metadata,
    Metadata06,
)
from ngff_gpu.model.omero import MethodMetadata, method_from_json, method_json
from ngff_gpu.model.transforms import bad, scale_translation, transform_json, transforms_from_json

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


def metadata_to_json(meta: Metadata | Metadata06, version: str,
                     method: str | None = None) -> dict[str, Any]:
    """The ``multiscales[0]`` entry of OME-Zarr ``version`` for ``meta``.

    Parameters
    ----------
    meta : Metadata or Metadata06
        The metadata (converted to ``version``'s form first).
    version : {"0.4", "0.5", "0.6"}
        0.4 carries ``version`` inside the entry; 0.5 and 0.6 carry it in the ``ome``
        block.
    method : str, optional
        Recorded as the multiscales ``type`` and in ``metadata.method`` (otherwise
        ``meta.type`` and ``meta.metadata`` are written when set).

    Raises
    ------
    ArgumentError
        For a transformation JSON cannot hold (NaN, infinity, a scale <= 0).
    """
    form = meta.to_version(version)
    out: dict[str, Any] = {}
    if version == "0.4":
        out["version"] = "0.4"
    if version == "0.6":
        out["coordinateSystems"] = [
            {"name": cs.name, "axes": [a.to_json() for a in cs.axes]}
            for cs in form.coordinateSystems]
    else:
        out["name"] = form.name
        out["axes"] = [a.to_json() for a in form.axes]
    out["datasets"] = [
        {"path": d.path, "coordinateTransformations": [
            transform_json(t, f"datasets[{i}].coordinateTransformations[{j}]")
            for j, t in enumerate(d.coordinateTransformations)]}
        for i, d in enumerate(form.datasets)]
    if form.coordinateTransformations:
        out["coordinateTransformations"] = [
            transform_json(t, f"coordinateTransformations[{j}]")
            for j, t in enumerate(form.coordinateTransformations)]
    if version == "0.6":
        out["name"] = form.name
    if method is not None:
        out["type"] = method
        out["metadata"] = method_json(method_metadata(method))
    else:
        if form.type is not None:
            out["type"] = str(form.type)
        if form.metadata is not None:
            out["metadata"] = method_json(form.metadata)
    if version == "0.6":
        out["@type"] = "ngff:Image"
    return out


def _axes_from_json(raw_axes: Any, where: str) -> list[Axis]:
    if not isinstance(raw_axes, list) or not raw_axes:
        raise bad(where, "expected a non-empty list of axes", raw_axes)
    axes = []
    for i, a in enumerate(raw_axes):
        key = f"{where}[{i}]"
        if isinstance(a, str):  # OME-Zarr 0.3 style: a bare name
            a = {"name": a}
        if not isinstance(a, dict):
            raise bad(key, "expected an object", a)
        name, kind, unit = a.get("name"), a.get("type", None), a.get("unit")
        if not isinstance(name, str) or not name:
            raise bad(f"{key}.name", "expected a non-empty string", name)
        if kind is not None and not isinstance(kind, str):
            raise bad(f"{key}.type", "expected a string", kind)
        if unit is not None and not isinstance(unit, str):
            raise bad(f"{key}.unit", "expected a string", unit)
        discrete = a.get("discrete")
        axes.append(Axis(name=name, type=kind or axis_type(name), unit=unit,
                         orientation=orientation_from_json(a.get("orientation")),
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
    rfc5 = version == "0.6"
    systems: list[CoordinateSystem] = []
    if rfc5:
        raw_cs = entry.get("coordinateSystems")
        if not isinstance(raw_cs, list) or not raw_cs:
            raise bad(f"{where}.coordinateSystems", "expected a non-empty list", raw_cs)
        for i, cs in enumerate(raw_cs):
            if not isinstance(cs, dict) or not isinstance(cs.get("name"), str):
                raise bad(f"{where}.coordinateSystems[{i}]", "expected an object with a name", cs)
            systems.append(CoordinateSystem(name=cs["name"], axes=_axes_from_json(
                cs.get("axes"), f"{where}.coordinateSystems[{i}].axes")))
        ndim = None
    else:
        axes = _axes_from_json(entry.get("axes"), f"{where}.axes")
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
            version)))
    top = entry.get("coordinateTransformations")
    name = entry.get("name", "image")
    if not isinstance(name, str):
        raise bad(f"{where}.name", "expected a string", name)
    kind = entry.get("type")
    common = {"name": name, "type": kind if isinstance(kind, str) else None,
              "metadata": method_from_json(entry.get("metadata")),
              "extra": {k: v for k, v in entry.items() if k not in ENTRY_KEYS}}
    transforms = (transforms_from_json(top, ndim, f"{where}.coordinateTransformations", version)
                  or None) if top is not None else None
    if rfc5:
        try:
            meta06 = Metadata06(coordinateSystems=systems, datasets=datasets,
                                coordinateTransformations=transforms, **common)
        except ValueError as exc:
            raise InvalidStoreError(f"{where}: {exc}") from None
        out = meta06.to_flat("0.6")
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
