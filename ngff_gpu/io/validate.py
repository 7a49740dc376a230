"""Validate a written OME-Zarr store: our structural checks plus ome-zarr-models."""

from __future__ import annotations

from typing import Any

import zarr

from ngff_gpu.errors import InvalidStoreError
from ngff_gpu.io.group import open_group, read_ome_attrs


def validate_store(store: Any) -> str:
    """Check that ``store`` is a complete, valid OME-Zarr 0.4 or 0.5 image.

    Structure (metadata present, every dataset an array with the axes' rank,
    shapes non-increasing) is checked here; the schema through the
    ``ome-zarr-models`` package.

    Returns
    -------
    str
        The OME-Zarr version.

    Raises
    ------
    InvalidStoreError
        With the reason, when anything does not hold.
    """
    group = open_group(store)
    version, attrs = read_ome_attrs(group)
    ms = attrs["multiscales"][0]
    ndim = len(ms.get("axes", []))
    prev = None
    for ds in ms.get("datasets", []):
        try:
            arr = group[ds["path"]]
        except KeyError as exc:
            raise InvalidStoreError(f"dataset {ds['path']!r} is missing") from exc
        if not isinstance(arr, zarr.Array) or arr.ndim != ndim:
            raise InvalidStoreError(f"dataset {ds['path']!r} is not a {ndim}-D array")
        if prev is not None and any(a > b for a, b in zip(arr.shape, prev)):
            raise InvalidStoreError(f"dataset {ds['path']!r} is larger than the level before it")
        prev = arr.shape
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
