"""Validate an OME-Zarr store: the official JSON schema, our structural checks, the arrays,
and ome-zarr-models where it can open the store."""

from __future__ import annotations

from typing import Any

from ngff_gpu.errors import InvalidStoreError
from ngff_gpu.io.group import open_dataset, open_group, read_ome_attrs
from ngff_gpu.model.metadata import RFC3_VERSION
from ngff_gpu.model.metadata_json import metadata_from_json
from ngff_gpu.model.rules import validate_stored
from ngff_gpu.model.schema import validate_document


def validate_store(store: Any, storage_options: dict[str, Any] | None = None) -> str:
    """Check that ``store`` is a complete, valid OME-Zarr 0.4, 0.5, 0.6 or 0.9.dev1 image.

    In ngff-zarr 0.50's order (a ``validate=True`` read): first the official JSON
    schema of the version the store records, on its attributes
    (:func:`ngff_gpu.model.schema.validate_document`; a superseded ``0.6.dev4`` tag
    warns and is checked as ``0.6``); then the structural rules a schema cannot state
    (:func:`ngff_gpu.model.rules.validate_stored`: ngff-zarr's rule identifiers and
    order); then the arrays (every dataset an array with the axes' rank, shapes
    non-increasing); then, where it can open the store, the ``ome-zarr-models`` model
    of 0.4 or 0.5 (it has no 0.6 or 0.9.dev1 model, and its 0.4 model reads Zarr v2
    only: a 0.4 document in a Zarr v3 group, which ngff-zarr and the schema accept,
    is checked by the passes before it).

    Parameters
    ----------
    store : str, pathlib.Path, zarr store, zarr.Group or fsspec URL
        The OME-Zarr image.
    storage_options : dict, optional
        For a URL store: fsspec options plus ``"retry"`` (see :mod:`ngff_gpu.io.remote`).

    Returns
    -------
    str
        The OME-Zarr version.

    Raises
    ------
    SchemaValidationError
        (an :class:`InvalidStoreError` and a ``jsonschema.ValidationError``) when the
        attributes break the schema.
    StructuralValidationError
        (an :class:`InvalidStoreError`, and ngff-zarr's ``structural_validation.
        ValidationError`` when ngff-zarr is loaded) for a broken structural rule, with
        its ``rule`` and ``location``.
    InvalidStoreError
        With the reason, when anything else does not hold; "No JSON Schema is bundled
        for OME-Zarr version ..." for a version string no schema is bundled for.

    Warns
    -----
    UserWarning
        For a store tagged with the superseded 0.6 pre-release ``0.6.dev4``.
    """
    group = open_group(store, storage_options=storage_options)
    version, attrs = read_ome_attrs(group)
    where = str(group.store) + (f"/{group.path}" if group.path else "")
    validate_document(group.attrs.asdict(), "image", store=where)
    validate_stored(attrs["multiscales"][0], version, attrs.get("omero"))
    meta = metadata_from_json(attrs["multiscales"][0], version)
    ndim = len(meta.axes)
    prev = None
    for i, ds in enumerate(meta.datasets):
        arr = open_dataset(group, ds.path, ndim, f"multiscales[0].datasets[{i}]")
        if prev is not None and any(a > b for a, b in zip(arr.shape, prev)):
            raise InvalidStoreError(f"{store}: dataset {ds.path!r} is larger than the level "
                                    "before it")
        prev = arr.shape
    if version in ("0.6", RFC3_VERSION) or (version == "0.4" and group.metadata.zarr_format != 2):
        # ome-zarr-models (1.7) has no 0.6 (nor 0.9.dev1) model, and its 0.4 model opens
        # Zarr v2 arrays only ("Expected to find an array at 0"): the schema, the rules
        # and the arrays above are what is checked.
        return version
    try:
        from ome_zarr_models import open_ome_zarr
    except ImportError as exc:  # pragma: no cover - the validate extra
        raise InvalidStoreError(
            "schema validation needs ome-zarr-models (pip install ngff-gpu[validate])"
        ) from exc
    try:
        open_ome_zarr(group, version=version)
    except Exception as exc:  # noqa: BLE001 - any failure is an invalid store
        msg = str(exc).strip().splitlines()
        raise InvalidStoreError(
            f"OME-Zarr {version} validation failed: {' '.join(msg[:6])}"
        ) from exc
    return version
