"""Checks and error translations around a store write.

* :func:`refuse_unreachable_store`: an in-process store (``MemoryStore``, a
  ``memory://`` fsspec store, a dict) cannot be written by ``dask.distributed``
  workers that run in other processes (each would write into its own copy and the
  caller's store would stay empty); refused before anything is written.
* :func:`naming_arrays`: an ``OSError`` raised while the levels' arrays are written
  (reading a corrupt source, writing the store) becomes
  :class:`~ngff_gpu.errors.ArrayWriteError` naming the arrays and the store.
* :func:`disk_full`: recognise "no space left on device" wherever it comes from
  (an ``OSError`` with ``ENOSPC``, or the text of an error raised by the Rust
  ``zarrs`` pipeline) and turn it into :class:`~ngff_gpu.errors.DiskFullError`
  naming the path.
* :func:`refuse_foreign_directory`: never write into a local file or a non-empty
  directory that is not a Zarr store; a directory of Zarr nodes without root metadata
  (:func:`zarr_children`) only to add nodes beside them.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ngff_gpu.errors import (
    ArrayWriteError,
    DiskFullError,
    NgffGpuError,
    StoreExistsError,
    StoreUnreachableError,
)
from ngff_gpu.io.replace import local_path

_NO_SPACE = ("no space left on device", "disk quota exceeded", "enospc")


def is_in_process_store(store: Any) -> bool:
    """True for stores that live in this process's memory only."""
    if isinstance(store, dict):
        return True
    if isinstance(store, str):
        return store.startswith("memory://")
    try:
        from zarr.storage import FsspecStore, MemoryStore, StorePath, WrapperStore
    except ImportError:  # pragma: no cover
        return False
    if isinstance(store, StorePath):
        return is_in_process_store(store.store)
    if isinstance(store, WrapperStore):
        return is_in_process_store(store._store)
    if isinstance(store, MemoryStore):  # GpuMemoryStore is a MemoryStore
        return True
    if isinstance(store, FsspecStore):
        protocol = getattr(store.fs, "protocol", ())
        protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
        return "memory" in protocols
    return False


def worker_processes(client: Any) -> list[int]:
    """The pids of ``client``'s workers that are not this process."""
    me = os.getpid()
    try:
        pids = client.run(os.getpid)
    except Exception:  # noqa: BLE001 - cannot ask: assume separate processes
        return [-1]
    return sorted({int(p) for p in pids.values() if int(p) != me})


def refuse_unreachable_store(store: Any, client: Any) -> None:
    """Raise when ``client`` has worker processes and ``store`` is in-process.

    Raises
    ------
    StoreUnreachableError
        Naming the store type and what to use instead.
    """
    if client is None or not is_in_process_store(store):
        return
    others = worker_processes(client)
    if others:
        kind = type(store).__name__ if not isinstance(store, str) else store.split("://")[0] + "://"
        raise StoreUnreachableError(
            f"a {kind} store lives in this process, but the dask.distributed client runs "
            f"workers in {len(others)} other process(es) that would each write into their own "
            "copy; write to a path or URL every worker can reach, or pass client=False to "
            "compute in this process")


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) says the disk is full."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(e).lower()
        if any(s in text for s in _NO_SPACE):
            return True
    return False


def disk_full(exc: BaseException, path: Any) -> DiskFullError | None:
    """A :class:`DiskFullError` naming ``path`` when ``exc`` is a full disk, else None."""
    if not is_disk_full(exc):
        return None
    where = os.fspath(path) if isinstance(path, str | os.PathLike) else repr(path)
    return DiskFullError(errno.ENOSPC, "no space left on device", where)


#: Temporary files of zarr's local store (``<key>.<uuid>.partial``) left by a kill.
PARTIAL = re.compile(r"\.[0-9a-f]{32}\.partial$")
#: A directory's entry is a Zarr node of this format when it holds one of these files.
NODE_FILES = {2: (".zgroup", ".zarray"), 3: ("zarr.json",)}
#: The files of a store's root node (no entry of a hierarchy missing its root has one).
ROOT_FILES = ("zarr.json", ".zgroup", ".zattrs", ".zmetadata")


def zarr_children(path: str, zarr_format: int) -> list[str] | None:
    """The entries of the directory ``path`` when every one is a Zarr node (a group
    or an array) of ``zarr_format``: a hierarchy missing only its root metadata (as
    ngff-zarr leaves a field image written into ``<store>/<path>`` before the image);
    None when any entry is something else (a file, a folder that is no node)."""
    entries = [e for e in os.listdir(path) if not PARTIAL.search(e)]
    if all(os.path.isdir(os.path.join(path, e)) and any(
            os.path.isfile(os.path.join(path, e, m)) for m in NODE_FILES[zarr_format])
           for e in entries):
        return entries
    return None


def refuse_foreign_directory(store: Any, adding: Collection[str] | None = None,
                             zarr_format: int = 3) -> list[str] | None:
    """Never touch a local file, or a non-empty directory that is not a Zarr store.

    With ``adding`` (the top-level names a write with ``overwrite=False`` creates), a
    directory whose every entry is a Zarr node of ``zarr_format``
    (:func:`zarr_children`) is accepted when no entry has one of those names: the
    write adds its nodes and the root metadata beside them and removes none.

    Returns
    -------
    list of str or None
        The user's nodes such an accepted write goes beside; None for anything else
        (not local, absent, empty, or a store with root metadata).

    Raises
    ------
    StoreExistsError
        Naming the path (and, for a hierarchy without root metadata, what collides or
        that only ``overwrite=False`` writes beside it).
    """
    path = local_path(store)
    if path is None:
        return None
    if os.path.isfile(path):
        raise StoreExistsError(f"{path} is a file, not a Zarr store; refusing to overwrite it")
    entries = [e for e in os.listdir(path) if not PARTIAL.search(e)] if os.path.isdir(path) else []
    if not entries or any(os.path.exists(os.path.join(path, m)) for m in ROOT_FILES):
        return None
    children = zarr_children(path, zarr_format)
    if adding is None:
        nodes = children or zarr_children(path, {2: 3, 3: 2}[zarr_format])
        detail = (f" (it holds Zarr nodes {sorted(nodes)} without root metadata: to_ngff_zarr "
                  "with overwrite=False adds an image beside them)") if nodes else ""
        raise StoreExistsError(f"{path} is a non-empty directory that is not a Zarr store"
                               f"{detail}; refusing to overwrite it")
    if children is None:
        raise StoreExistsError(
            f"{path} is a non-empty directory that is not a Zarr store (nor holds only Zarr "
            f"v{zarr_format} nodes); refusing to overwrite it")
    taken = sorted(set(children) & set(adding))
    if taken:
        raise StoreExistsError(
            f"{path} already holds Zarr node(s) {taken} that this write would create; "
            "refusing to overwrite them")
    return children


@contextmanager
def naming_arrays(store: Any, paths: Sequence[str]) -> Iterator[None]:
    """Raise an untyped ``OSError`` of the block (not a full disk, nor an error of ours,
    such as a remote store's) as :class:`ArrayWriteError` naming ``paths`` in
    ``store``, the original as its cause."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, NgffGpuError) or is_disk_full(exc):
            raise
        names = ", ".join(repr(p) for p in paths)
        where = os.fspath(store) if isinstance(store, str | os.PathLike) else repr(store)
        err = ArrayWriteError(
            f"Failed to write data to the zarr array{'s' if len(paths) > 1 else ''} {names} "
            f"of {where}: "
            f"{type(exc).__name__}: {exc} (reading the source or writing the store failed; "
            "a corrupted or truncated source file, e.g. a TIFF with invalid page offsets, "
            "fails this way)")
        err.errno = exc.errno
        raise err from exc
