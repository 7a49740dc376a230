"""One writer per store: an advisory lock file beside a local store.

The lock is ``<parent>/.<name>.ngff-gpu.lock`` (beside the store, not inside it,
because an overwrite swaps the whole directory). It is taken with
``fcntl.flock(LOCK_EX | LOCK_NB)`` and records the holder as JSON (pid, host,
start time, command line). The kernel drops a ``flock`` when its process dies,
so the lock of a killed writer is *stale* by construction: the next writer
takes it over at once (and reports whose it was). A second live writer fails
immediately with :class:`~ngff_gpu.errors.StoreLockedError` naming the holder.

On file systems without working ``flock`` (some network file systems) the lock
falls back to ``O_EXCL`` creation: a lock file whose recorded process is dead on
this host is taken over; one recorded by another host is honoured.

Object stores (``s3://``, ``gs://``, ...) and in-process stores have no lock:
one writer per store is then the user's responsibility (see README).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from ngff_gpu.errors import StoreLockedError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".ngff-gpu.lock"


def lock_path(store_path: str | os.PathLike) -> str:
    """The lock file of the store at ``store_path``: ``<parent>/.<name>.ngff-gpu.lock``."""
    path = os.path.abspath(os.fspath(store_path))
    parent, name = os.path.split(path.rstrip(os.sep) or path)
    return os.path.join(parent, f".{name}{LOCK_SUFFIX}")


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock."""

    pid: int
    host: str
    started: float

    def describe(self) -> str:
        """``pid 1234 on host nodeA since 2026-11-25 14:03:07 UTC``."""
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        return f"pid {self.pid} on host {self.host} since {when}"

    def is_dead_here(self) -> bool:
        """True when the holder ran on this host and its process no longer exists."""
        if self.host != socket.gethostname():
            return False
        return not _pid_alive(self.pid)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_holder(fd: int) -> Holder | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096)
        info = json.loads(raw.decode("utf-8")) if raw else None
        return Holder(int(info["pid"]), str(info["host"]), float(info["started"])) if info else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_holder(path: str) -> Holder | None:
    """The holder recorded in lock file ``path`` (None when absent or unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def check_unlocked(store_path: str | os.PathLike) -> None:
    """Raise :class:`StoreLockedError` when a live process holds the lock of ``store_path``.

    A probe that takes nothing: for messages that must not suggest ``--resume``
    or ``--overwrite`` while another process is writing.
    """
    path = lock_path(store_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        holder = _read_holder(fd)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise StoreLock(store_path)._locked_error(holder) from None
                return
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
        if holder is not None and not holder.is_dead_here():
            raise StoreLock(store_path)._locked_error(holder)
    finally:
        os.close(fd)


class StoreLock:
    """An exclusive, non-blocking writer lock for the store at ``store_path``.

    Use as a context manager, or call :meth:`acquire` / :meth:`release`.

    Attributes
    ----------
    path : str
        The lock file.
    stale : Holder or None
        After :meth:`acquire`: the dead process whose lock was taken over.
    """

    def __init__(self, store_path: str | os.PathLike) -> None:
        self.store_path = os.fspath(store_path)
        self.path = lock_path(store_path)
        self.stale: Holder | None = None
        self._fd: int | None = None
        self._flock = fcntl is not None

    @property
    def held(self) -> bool:
        """True between :meth:`acquire` and :meth:`release`."""
        return self._fd is not None

    def _locked_error(self, holder: Holder | None) -> StoreLockedError:
        who = holder.describe() if holder else "another process"
        return StoreLockedError(
            f"{self.store_path} is being written by {who} (lock {self.path}); "
            "wait for it to finish or stop it")

    def acquire(self) -> StoreLock:
        """Take the lock or raise :class:`StoreLockedError` at once.

        Raises
        ------
        StoreLockedError
            When a live process holds the lock.
        """
        if self._fd is not None:
            return self
        for _attempt in range(20):
            fd = self._try_once()
            if fd is not None:
                self._fd = fd
                self._record()
                return self
        raise self._locked_error(read_holder(self.path))  # pragma: no cover - pathological churn

    def _try_once(self) -> int | None:
        """One attempt: a locked fd, or None to retry; raises when a live writer holds it."""
        if self._flock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_holder(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise self._locked_error(holder) from None
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    self._flock = False  # no flock on this file system: O_EXCL below
                    return None
                raise
            # The file may have been unlinked (released) between open and flock: retry.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                return None
            previous = _read_holder(fd)
            if previous is not None and previous.pid != os.getpid():
                self.stale = previous
            return fd
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = read_holder(self.path)
            if holder is not None and holder.is_dead_here():
                self.stale = holder
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                return None
            raise self._locked_error(holder) from None

    def _record(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                "argv": sys.argv[:8]}
        data = json.dumps(info).encode()
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
