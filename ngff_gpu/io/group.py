"""Open a stored OME-Zarr group and find its OME attributes.

Shared by the reader, ``validate_store`` and ``ngff-gpu info``: every way a store can be
malformed (not a group, unreadable JSON, no or a malformed ``multiscales`` entry) is an
:class:`~ngff_gpu.errors.InvalidStoreError` naming the store and the key.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import zarr

from ngff_gpu.errors import InvalidStoreError, RemoteStoreError, StoreNotFoundError


def open_group(store: Any, mode: str = "r",
               storage_options: dict[str, Any] | None = None) -> zarr.Group:
    """Open ``store`` (path, URL, zarr store or group) as a Zarr group.

    A remote URL is opened with ``storage_options`` and our retry policy
    (:func:`ngff_gpu.io.remote.open_url_store`); other stores ignore them.

    Raises
    ------
    InvalidStoreError
        When ``store`` is not a readable Zarr group (missing, an array, bad JSON).
    RemoteStoreError
        When a remote store keeps failing (throttled, unreachable, denied).
    """
    from ngff_gpu.io.ozx import is_ozx, open_zip_store
    from ngff_gpu.io.remote import is_remote_url, open_url_store, split_storage_options

    if isinstance(store, zarr.Group):
        return store
    from ngff_gpu.io.replace import local_path

    path = local_path(store)
    if mode in ("r", "r+") and path is not None and not os.path.exists(path):
        raise StoreNotFoundError(f"{store}: no such store (nothing at {path})")
    if is_remote_url(store):
        store = open_url_store(store, storage_options, read_only=mode == "r")
    else:
        split_storage_options(storage_options)  # checked, unused (as ngff-zarr does)
    try:
        if mode == "r" and (is_ozx(store) or _zip_file(store)):  # read-only archives:
            # RFC-9 .ozx, or a store zipped by hand (.zip, read as ngff-zarr does)
            return zarr.open_group(open_zip_store(store), mode="r", use_consolidated=False)
        # Consolidated metadata is written (as ngff-zarr does) but never trusted on
        # read: the arrays' own metadata is what a damaged store gets checked against.
        return zarr.open_group(store, mode=mode, use_consolidated=False)
    except RemoteStoreError:
        raise
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError,
            KeyError, ValueError, TypeError, OSError, zipfile.BadZipFile) as exc:
        # json.JSONDecodeError is a ValueError: a corrupt zarr.json or .zgroup lands here.
        # The phrases ngff-zarr's messages use ("No valid Zarr group found", "contains an
        # array at the root level"), so code that matches on them keeps working.
        if isinstance(exc, json.JSONDecodeError):
            what = f"unreadable metadata ({exc})"
        elif isinstance(exc, zarr.errors.ContainsArrayError):
            what = ("not a Zarr group: the store contains an array at the root level, and "
                    f"OME-Zarr needs a group with multiscales metadata ({exc})")
        else:
            what = f"No valid Zarr group found (not a Zarr group: {exc})"
        raise InvalidStoreError(f"{store}: {what}") from exc


def _zip_file(store: Any) -> bool:
    """True for a local path (str or ``Path``) to a file that is a zip archive."""
    if not isinstance(store, str | os.PathLike) or "://" in str(store):
        return False
    return os.path.isfile(store) and zipfile.is_zipfile(store)


def read_ome_attrs(group: zarr.Group) -> tuple[str, dict[str, Any]]:
    """The OME-Zarr version and the attributes that hold ``multiscales``.

    Returns
    -------
    str, dict
        The version (``"0.4"``, ``"0.5"``...) and the mapping that holds
        ``multiscales`` (the ``ome`` block in 0.5, the attributes in 0.4).

    Raises
    ------
    InvalidStoreError
        When the group carries no OME multiscales metadata, or it is not a
        non-empty list of objects.
    """
    try:
        attrs = group.attrs.asdict()
    except (ValueError, TypeError) as exc:
        raise InvalidStoreError(f"{_where(group)}: unreadable attributes ({exc})") from exc
    ome = attrs.get("ome")
    if isinstance(ome, dict) and "multiscales" in ome:
        # A missing or null ome.version is 0.5, as ngff-zarr reads it (the ome block is 0.5's).
        version, holder, key = ome.get("version") or "0.5", ome, "ome.multiscales"
        if version in ("0.1", "0.2", "0.3", "0.4"):  # refused as ngff-zarr refuses it
            raise InvalidStoreError(
                f"{_where(group)}: the 'ome' key says version {version!r}, but OME-Zarr "
                f"{version} keeps 'multiscales' in the group's attributes, not under 'ome' "
                "(a 0.5-style store with another version?)")
    elif "multiscales" in attrs:
        entries = attrs["multiscales"]
        first = entries[0] if isinstance(entries, list) and entries else {}
        version = first.get("version", "0.4") if isinstance(first, dict) else "0.4"
        holder, key = attrs, "multiscales"
        if isinstance(version, str) and version not in ("0.1", "0.2", "0.3", "0.4"):
            raise InvalidStoreError(
                f"{_where(group)}: multiscales says version {version!r}, whose metadata is "
                "under the 'ome' key, but the 'ome' key is missing (a 0.4-style store "
                "with another version?)")
    elif isinstance(ome, dict):
        raise InvalidStoreError(
            f"{_where(group)}: the group has no OME-Zarr multiscales metadata: 'multiscales' "
            f"is missing under the 'ome' key (Available keys under 'ome': {sorted(ome)}). "
            "Possible causes: an incomplete or corrupted write, or the root of a plate or "
            "container (open one of its images)")
    else:
        raise InvalidStoreError(
            f"{_where(group)}: the group has no OME-Zarr multiscales metadata (incomplete store?)")
    entries = holder["multiscales"]
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise InvalidStoreError(f"{_where(group)}: {key} must be a non-empty list of objects, "
                                f"got {_short(entries)} (Could not detect NGFF version)")
    if not isinstance(version, str):
        raise InvalidStoreError(f"{_where(group)}: the OME-Zarr version must be a string, "
                                f"got {_short(version)}")
    if version.startswith("0.6"):  # 0.6 pre-release tags (0.6rc0, 0.6.dev4) read as 0.6
        version = "0.6"
    return version, holder


def _where(group: zarr.Group) -> str:
    path = getattr(group, "path", "")
    return f"{group.store}" + (f"/{path}" if path else "")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def open_dataset(group: zarr.Group, path: str, ndim: int, key: str) -> zarr.Array:
    """The array of a multiscales dataset, checked: present, an array, ``ndim`` dims.

    Parameters
    ----------
    group : zarr.Group
        The image group.
    path : str
        The dataset's ``path``.
    ndim : int
        Number of axes of the multiscales.
    key : str
        The dataset's key, for messages (``multiscales[0].datasets[1]``).

    Raises
    ------
    InvalidStoreError
        Naming the store, the key and the path.
    """
    where = f"{_where(group)}: {key}.path {path!r}"
    try:
        node = group.get(path)
    except (KeyError, ValueError, TypeError, zarr.errors.NodeTypeValidationError) as exc:
        raise InvalidStoreError(f"{where}: unreadable array metadata ({exc})") from exc
    if node is None:
        raise InvalidStoreError(f"{where}: the array is missing")
    if not isinstance(node, zarr.Array):
        raise InvalidStoreError(f"{where}: a group, not an array")
    if node.ndim != ndim:
        raise InvalidStoreError(f"{where}: a {node.ndim}-D array, but the multiscales has "
                                f"{ndim} axes")
    return node
