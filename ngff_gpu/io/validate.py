"""Validate a written OME-Zarr store: our structural checks plus ome-zarr-models."""

from __future__ import annotations

from typing import Any

from ngff_gpu.errors import InvalidStoreError
from ngff_gpu.io.group import open_dataset, open_group, read_ome_attrs
from ngff_gpu.model.metadata import RFC3_VERSION
from ngff_gpu.model.metadata_json import metadata_from_json
from ngff_gpu.model.rules import validate_stored


def validate_store(store: Any, storage_options: dict[str, Any] | None = None) -> str:
    """Check that ``store`` is a complete, valid OME-Zarr 0.4, 0.5, 0.6 or 0.9.dev1 image.

    First the structural rules a JSON schema cannot state, on the stored JSON, as
    ngff-zarr 0.50 checks them on a ``validate=True`` read
    (:func:`ngff_gpu.model.rules.validate_stored`: its rule identifiers and order);
    then the structure of the arrays (every dataset an array with the axes' rank,
    shapes non-increasing); then the schema through the ``ome-zarr-models`` package
    (0.4 and 0.5; it has no 0.6 or 0.9.dev1 model).

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
    StructuralValidationError
        (an :class:`InvalidStoreError`, and ngff-zarr's ``structural_validation.
        ValidationError`` when ngff-zarr is loaded) for a broken structural rule, with
        its ``rule`` and ``location``.
    InvalidStoreError
        With the reason, when anything else does not hold.
    """
    group = open_group(store, storage_options=storage_options)
    version, attrs = read_ome_attrs(group)
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
    if version in ("0.6", RFC3_VERSION):
        # ome-zarr-models (1.7) has no 0.6 (nor 0.9.dev1) model yet: the structure above is what is
        # checked here (tests validate our 0.6 output against the 0.6 JSON schema).
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
