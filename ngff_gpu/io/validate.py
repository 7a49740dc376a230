"""Validate a written OME-Zarr store: our structural checks plus ome-zarr-models."""

from __future__ import annotations

from typing import Any

from ngff_gpu.errors import InvalidStoreError
from ngff_gpu.io.group import open_dataset, open_group, read_ome_attrs
from ngff_gpu.model.metadata_json import metadata_from_json


def validate_store(store: Any, storage_options: dict[str, Any] | None = None) -> str:
    """Check that ``store`` is a complete, valid OME-Zarr 0.4, 0.5 or 0.6 image.

    Structure (metadata present, every dataset an array with the axes' rank,
    shapes non-increasing) is checked here; the schema through the
    ``ome-zarr-models`` package.

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
    InvalidStoreError
        With the reason, when anything does not hold.
    """
    group = open_group(store, storage_options=storage_options)
    version, attrs = read_ome_attrs(group)
    meta = metadata_from_json(attrs["multiscales"][0], version)
    ndim = len(meta.axes)
    prev = None
    for i, ds in enumerate(meta.datasets):
        arr = open_dataset(group, ds.path, ndim, f"multiscales[0].datasets[{i}]")
        if prev is not None and any(a > b for a, b in zip(arr.shape, prev)):
            raise InvalidStoreError(f"{store}: dataset {ds.path!r} is larger than the level "
                                    "before it")
        prev = arr.shape
    if version == "0.6":
        # ome-zarr-models (1.7) has no 0.6 model yet: the structure above is what is
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
