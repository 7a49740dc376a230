"""Atomic replace of a local store, and where a conversion writes.

A conversion over an **existing local store** never touches it until the new one
is complete: it writes into a sibling temporary directory on the same file
system, ``<parent>/.<name>.ngff-gpu-tmp-<pid>``, and swaps it in at the end with
one ``renameat2(RENAME_EXCHANGE)`` (Linux; elsewhere: rename the old store aside
to ``.<name>.ngff-gpu-old-<pid>``, rename the new one in), then deletes the old
one. A failed or interrupted overwrite leaves the old store byte for byte as it
was. A new store (nothing at the path yet) is written in place: its OME metadata
goes last, so it never looks complete before it is.

Leftovers, handled under the writer lock (:mod:`ngff_gpu.io.lock`) when the next
conversion of the same store starts:

* an *incomplete* temporary (no OME metadata; a killed or Ctrl-C'd overwrite) is
  continued by ``resume=True`` (renamed to the new process's temporary name) and
  deleted by ``overwrite=True``, or when nothing is left at the path; otherwise it
  is left alone (an existing store without either flag is refused anyway);
* a *complete* temporary (the process died in the instant between finishing and
  the swap, or right after the exchange, when it holds the old store) is deleted:
  the old store is kept unless the swap completed;
* ``.<name>.ngff-gpu-old-<pid>``: the store at the path is the new one (or, when
  the path is empty, the old one is renamed back) and the old copy is deleted.

On an error other than an interrupt the temporary is deleted at once (a full
disk gets its space back); on ``KeyboardInterrupt`` it is kept for ``resume``.

Stores without rename (``MemoryStore``, other in-process stores, fsspec object
stores such as ``s3://``) cannot be replaced atomically: replacing a *valid*
store there needs ``overwrite="in-place"`` (delete, then write); an incomplete
one is overwritten in place as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
from collections.abc import Callable
from typing import Any

from ngff_gpu.errors import ArgumentError, StoreExistsError
from ngff_gpu.io.lock import StoreLock

TMP_TAG = ".ngff-gpu-tmp-"
OLD_TAG = ".ngff-gpu-old-"
IN_PLACE = "in-place"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def local_path(store: Any) -> str | None:
    """The directory of a local store (path, ``file://`` URL or ``LocalStore``), else None."""
    if isinstance(store, os.PathLike):
        store = os.fspath(store)
    if isinstance(store, bytes):
        store = os.fsdecode(store)
    if isinstance(store, str):
        if store.startswith("file://"):
            return store[len("file://"):]
        return None if "://" in store else store
    try:
        from zarr.storage import LocalStore
    except ImportError:  # pragma: no cover
        return None
    if isinstance(store, LocalStore):
        return os.fspath(store.root)
    return None


def _split(target: str) -> tuple[str, str]:
    path = os.path.abspath(target)
    return os.path.split(path.rstrip(os.sep) or path)


def temp_path(target: str, pid: int | None = None) -> str:
    """``<parent>/.<name>.ngff-gpu-tmp-<pid>`` (this process by default)."""
    parent, name = _split(target)
    return os.path.join(parent, f".{name}{TMP_TAG}{os.getpid() if pid is None else pid}")


def _siblings(target: str, tag: str) -> list[str]:
    parent, name = _split(target)
    prefix = f".{name}{tag}"
    try:
        entries = os.listdir(parent)
    except FileNotFoundError:
        return []
    return sorted(os.path.join(parent, e) for e in entries
                  if e.startswith(prefix) and e[len(prefix):].isdigit())


def leftover_temps(target: str) -> list[str]:
    """Temporary directories of earlier (killed) conversions of ``target``."""
    return _siblings(target, TMP_TAG)


def is_complete(path: str) -> bool:
    """True when the local directory ``path`` carries OME multiscales metadata."""
    for meta in ("zarr.json", ".zattrs"):
        try:
            with open(os.path.join(path, meta), "rb") as f:
                doc = json.load(f)
        except (OSError, ValueError):
            continue
        attrs = doc.get("attributes", {}) if meta == "zarr.json" else doc
        if isinstance(attrs, dict) and ("multiscales" in attrs or "multiscales" in attrs.get("ome", {})):
            return True
    return False


def _is_zarr_dir(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, m)) for m in ("zarr.json", ".zgroup", ".zattrs"))


def exchange(a: str, b: str) -> bool:
    """Atomically swap two paths with ``renameat2(RENAME_EXCHANGE)``; False when unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), b)


def swap_in(new: str, target: str,
            exchange_paths: Callable[[str, str], bool] = exchange) -> None:
    """Replace ``target`` by the complete store ``new`` (same file system) and delete the old.

    ``exchange_paths`` swaps two paths atomically and returns False where the system
    cannot; then the old store is renamed aside and the new one renamed in (two renames,
    which :func:`recover` finishes or rolls back after a kill in between).
    """
    if not os.path.lexists(target):
        os.rename(new, target)
        return
    if exchange_paths(new, target):
        old = new  # the exchange left the old store at the temporary's path
    else:
        parent, name = _split(target)
        old = os.path.join(parent, f".{name}{OLD_TAG}{os.getpid()}")
        os.rename(target, old)
        os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


def recover(target: str) -> None:
    """Finish or roll back what a killed swap left (call with the lock held)."""
    for old in _siblings(target, OLD_TAG):
        if not os.path.lexists(target):
            os.rename(old, target)  # killed between the two renames: the old store comes back
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in leftover_temps(target):
        if is_complete(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


class WriteTarget:
    """Where a conversion of ``store`` writes, with the lock, the swap and the clean-up.

    Parameters
    ----------
    store : path, URL or zarr store
        The requested output.
    overwrite : bool or "in-place"
        True: replace an existing store (atomically where the store can rename);
        ``"in-place"``: delete it first and write in its place (any store).
    resume : bool
        Continue an interrupted conversion (in place, or in a leftover temporary).

    Use :meth:`open` (returns the store to write), then :meth:`commit` on
    success or :meth:`abort` on failure; both release the lock.
    """

    def __init__(self, store: Any, overwrite: bool | str, resume: bool) -> None:
        if not (isinstance(overwrite, bool) or overwrite == IN_PLACE):
            raise ArgumentError(f"overwrite: {overwrite!r} is not True, False or {IN_PLACE!r}")
        self.store = store
        self.overwrite = overwrite
        self.resume = resume
        self.path = local_path(store)
        self.temp: str | None = None
        self.lock: StoreLock | None = None

    @property
    def replacing(self) -> bool:
        """True when writing into a temporary that will replace an existing store."""
        return self.temp is not None

    def open(self) -> Any:
        """Lock, clean leftovers and return the store to write (the temporary's path
        when replacing). For non-local stores, the store itself."""
        if self.path is None:
            return self.store
        parent = os.path.dirname(os.path.abspath(self.path)) or "."
        if not os.path.isdir(parent):
            os.makedirs(parent, exist_ok=True)
        self.lock = StoreLock(self.path).acquire()
        try:
            return self._choose()
        except BaseException:
            self.lock.release()
            raise

    def _choose(self) -> Any:
        target = self.path
        assert target is not None
        recover(target)
        temps = leftover_temps(target)
        if self.resume and temps:
            mine = temp_path(target)
            newest = max(temps, key=os.path.getmtime)
            if newest != mine:
                if os.path.lexists(mine):
                    shutil.rmtree(mine)
                os.rename(newest, mine)
            for t in temps:
                if t != newest and t != mine:
                    shutil.rmtree(t, ignore_errors=True)
            self.temp = mine
            return self._as_store(mine)
        if self.overwrite or not os.path.lexists(target):
            # --overwrite starts over; without a store at the path, nothing can resume them
            for t in temps:
                shutil.rmtree(t, ignore_errors=True)
        exists = os.path.isdir(target) and _is_zarr_dir(target)
        if exists and self.overwrite is True and not self.resume:
            self.temp = temp_path(target)
            return self._as_store(self.temp)
        if exists and self.overwrite == IN_PLACE and not self.resume:
            shutil.rmtree(target)
        return self.store

    def _as_store(self, path: str) -> Any:
        """The temporary as the same kind of store the user passed."""
        if isinstance(self.store, str | os.PathLike | bytes):
            return path
        from zarr.storage import LocalStore

        return LocalStore(path)

    def commit(self) -> None:
        """Swap the finished temporary in (when replacing) and release the lock."""
        try:
            if self.temp is not None and self.path is not None:
                swap_in(self.temp, self.path)
                self.temp = None
        finally:
            self.release()

    def abort(self, exc: BaseException | None) -> None:
        """After a failure: delete the temporary (kept on an interrupt, for resume);
        the old store is untouched. Releases the lock."""
        try:
            if self.temp is not None and not isinstance(exc, KeyboardInterrupt):
                shutil.rmtree(self.temp, ignore_errors=True)
        finally:
            self.release()

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def refuse_replacing_valid(store: Any, group_attrs: dict[str, Any] | None) -> None:
    """For a store without rename: refuse ``overwrite=True`` over a complete OME-Zarr.

    Raises
    ------
    StoreExistsError
        Naming ``overwrite="in-place"``.
    """
    if not group_attrs:
        return
    if "multiscales" in group_attrs or "multiscales" in group_attrs.get("ome", {}):
        raise StoreExistsError(
            f"{store!r} holds a complete OME-Zarr image and this store cannot be replaced "
            "atomically (no rename); pass overwrite='in-place' (CLI: --overwrite-in-place) "
            "to delete it and write in its place")

