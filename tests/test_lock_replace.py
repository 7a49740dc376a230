"""Unit tests of the writer lock (io/lock.py), the atomic replace (io/replace.py) and
the guards (io/guards.py), without running a conversion."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time

import pytest

import ngff_gpu as nz
from ngff_gpu.errors import DiskFullError, StoreExistsError, StoreLockedError, StoreUnreachableError
from ngff_gpu.io import guards, replace
from ngff_gpu.io.lock import StoreLock, check_unlocked, lock_path, read_holder


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _store(path, attrs=None, payload=b"x"):
    os.makedirs(path / "scale0", exist_ok=True)
    doc = {"zarr_format": 3, "node_type": "group", "attributes": attrs or {}}
    (path / "zarr.json").write_text(json.dumps(doc))
    (path / "scale0" / "c").write_bytes(payload)
    return path


COMPLETE = {"ome": {"version": "0.5", "multiscales": [{}]}}


def test_lock_path_is_beside_the_store(tmp_path):
    assert lock_path(tmp_path / "a.zarr") == str(tmp_path / ".a.zarr.ngff-gpu.lock")
    assert lock_path(str(tmp_path / "a.zarr") + "/") == str(tmp_path / ".a.zarr.ngff-gpu.lock")


def test_lock_records_holder_and_is_removed(tmp_path):
    lock = StoreLock(tmp_path / "a.zarr")
    before = time.time()
    with lock:
        after = time.time()
        holder = read_holder(lock.path)
        assert holder.pid == os.getpid() and holder.host == socket.gethostname()
        assert before <= holder.started <= after
    assert not os.path.exists(lock.path)
    lock.release()  # idempotent


def test_second_writer_in_another_process_fails_at_once_naming_the_holder(tmp_path):
    store = tmp_path / "a.zarr"
    # The holder keeps the lock until it is killed (it waits on its stdin), so an acquire
    # that returned at all did not wait for the holder to let go.
    code = ("import sys; from ngff_gpu.io.lock import StoreLock; "
            "l = StoreLock(sys.argv[1]).acquire(); print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(store)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(StoreLockedError) as info:
            StoreLock(store).acquire()
        msg = str(info.value)
        assert f"pid {proc.pid}" in msg and socket.gethostname() in msg and "since" in msg
        with pytest.raises(StoreLockedError, match=f"pid {proc.pid}"):
            check_unlocked(store)  # the probe takes nothing
        assert read_holder(lock_path(store)).pid == proc.pid
    finally:
        proc.kill()
        proc.wait()
    # The holder died (SIGKILL): its lock file is still there, and is taken over.
    assert os.path.exists(lock_path(store))
    check_unlocked(store)
    lock = StoreLock(store).acquire()
    assert lock.stale is not None and lock.stale.pid == proc.pid
    lock.release()


def test_stale_lock_file_of_dead_process_is_taken_over(tmp_path):
    store = tmp_path / "a.zarr"
    pid = _dead_pid()
    with open(lock_path(store), "w") as f:
        json.dump({"pid": pid, "host": socket.gethostname(), "started": 1.0}, f)
    with StoreLock(store) as lock:
        assert lock.stale.pid == pid
        assert read_holder(lock.path).pid == os.getpid()


def test_lock_without_flock_falls_back_to_exclusive_create(tmp_path):
    store = tmp_path / "a.zarr"
    first = StoreLock(store)
    first._flock = False
    first.acquire()
    second = StoreLock(store)
    second._flock = False
    with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
        second.acquire()
    first.release()
    # A dead holder on this host is taken over; another host's lock is honoured.
    with open(lock_path(store), "w") as f:
        json.dump({"pid": _dead_pid(), "host": socket.gethostname(), "started": 1.0}, f)
    second.acquire()
    assert second.stale is not None
    second.release()
    with open(lock_path(store), "w") as f:
        json.dump({"pid": 1, "host": "elsewhere.example", "started": 1.0}, f)
    with pytest.raises(StoreLockedError, match="elsewhere.example"):
        second.acquire()


def test_local_path_kinds(tmp_path):
    from zarr.storage import LocalStore, MemoryStore

    assert replace.local_path(str(tmp_path)) == str(tmp_path)
    assert replace.local_path(tmp_path) == str(tmp_path)
    assert replace.local_path(f"file://{tmp_path}") == str(tmp_path)
    assert replace.local_path(LocalStore(tmp_path)) == str(tmp_path)
    assert replace.local_path("s3://bucket/a.zarr") is None
    assert replace.local_path(MemoryStore()) is None


def test_swap_in_replaces_and_deletes_old(tmp_path):
    target = _store(tmp_path / "a.zarr", COMPLETE, b"old")
    new = _store(tmp_path / ".a.zarr.ngff-gpu-tmp-1", COMPLETE, b"new")
    replace.swap_in(str(new), str(target))
    assert (target / "scale0" / "c").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["a.zarr"]


def test_swap_in_without_exchange_support(tmp_path):
    target = _store(tmp_path / "a.zarr", COMPLETE, b"old")
    new = _store(tmp_path / ".a.zarr.ngff-gpu-tmp-1", COMPLETE, b"new")
    replace.swap_in(str(new), str(target), exchange_paths=lambda a, b: False)
    assert (target / "scale0" / "c").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["a.zarr"]


def test_recover_rolls_back_a_half_done_swap(tmp_path):
    # Killed between "rename old aside" and "rename new in": the old store comes back,
    # the finished temporary is dropped (the old store is kept unless the swap completed).
    _store(tmp_path / ".a.zarr.ngff-gpu-old-7", COMPLETE, b"old")
    _store(tmp_path / ".a.zarr.ngff-gpu-tmp-7", COMPLETE, b"new")
    replace.recover(str(tmp_path / "a.zarr"))
    assert (tmp_path / "a.zarr" / "scale0" / "c").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["a.zarr"]
    # Killed after the swap, before deleting the old copy: the copy goes.
    _store(tmp_path / ".a.zarr.ngff-gpu-old-8", COMPLETE, b"older")
    replace.recover(str(tmp_path / "a.zarr"))
    assert sorted(os.listdir(tmp_path)) == ["a.zarr"]


def test_write_target_chooses(tmp_path):
    target = tmp_path / "a.zarr"
    # Nothing there: written in place.
    wt = replace.WriteTarget(str(target), True, False)
    assert wt.open() == str(target) and not wt.replacing
    assert os.path.exists(lock_path(target))
    wt.commit()
    assert not os.path.exists(lock_path(target))
    # An existing store: a temporary beside it, swapped in on commit.
    _store(target, COMPLETE, b"old")
    wt = replace.WriteTarget(str(target), True, False)
    out = wt.open()
    assert out == replace.temp_path(str(target)) and wt.replacing
    _store(tmp_path / os.path.basename(out), COMPLETE, b"new")
    wt.commit()
    assert (target / "scale0" / "c").read_bytes() == b"new"
    # A failure removes the temporary; an interrupt keeps it for resume.
    wt = replace.WriteTarget(str(target), True, False)
    out = wt.open()
    _store(tmp_path / os.path.basename(out), {}, b"half")
    wt.abort(ValueError("boom"))
    assert not os.path.exists(out) and (target / "scale0" / "c").read_bytes() == b"new"
    wt = replace.WriteTarget(str(target), True, False)
    out = wt.open()
    _store(tmp_path / os.path.basename(out), {}, b"half")
    wt.abort(KeyboardInterrupt())
    assert os.path.exists(out)
    # resume continues the leftover (renamed to this process's temporary)...
    os.rename(out, tmp_path / ".a.zarr.ngff-gpu-tmp-999999")
    wt = replace.WriteTarget(str(target), False, True)
    assert wt.open() == replace.temp_path(str(target)) and wt.replacing
    wt.abort(KeyboardInterrupt())
    # ... overwrite deletes it and starts a fresh one.
    wt = replace.WriteTarget(str(target), True, False)
    out = wt.open()
    assert not os.path.exists(out)
    wt.abort(ValueError())
    assert sorted(os.listdir(tmp_path)) == ["a.zarr"]
    # in-place deletes the old store first.
    wt = replace.WriteTarget(str(target), "in-place", False)
    assert wt.open() == str(target) and not os.path.exists(target)
    wt.release()
    with pytest.raises(nz.ArgumentError, match="overwrite"):
        replace.WriteTarget(str(target), "yes", False)
    # Leftover temporaries with nothing at the path are orphans: removed.
    _store(tmp_path / ".a.zarr.ngff-gpu-tmp-999999", {}, b"half")
    wt = replace.WriteTarget(str(target), False, False)
    assert wt.open() == str(target)
    wt.release()
    assert os.listdir(tmp_path) == []


def test_refuse_replacing_valid():
    replace.refuse_replacing_valid("memory", {})
    replace.refuse_replacing_valid("memory", {"ngff_gpu_in_progress": "x"})
    with pytest.raises(StoreExistsError, match="in-place"):
        replace.refuse_replacing_valid("memory", COMPLETE)
    with pytest.raises(StoreExistsError, match="in-place"):
        replace.refuse_replacing_valid("memory", {"multiscales": []})


def test_in_process_stores():
    from zarr.storage import LocalStore, MemoryStore

    assert guards.is_in_process_store(MemoryStore())
    assert guards.is_in_process_store("memory://x.zarr")
    assert guards.is_in_process_store({})
    assert not guards.is_in_process_store("/tmp/x.zarr")
    assert not guards.is_in_process_store(LocalStore("/tmp/x.zarr"))

    class Client:
        def __init__(self, pid):
            self.pid = pid

        def run(self, fn):
            return {"tcp://w": self.pid}

    guards.refuse_unreachable_store(MemoryStore(), Client(os.getpid()))  # threads only
    guards.refuse_unreachable_store("/tmp/x.zarr", Client(1))
    with pytest.raises(StoreUnreachableError, match="MemoryStore"):
        guards.refuse_unreachable_store(MemoryStore(), Client(1))


def test_disk_full_recognised():
    assert guards.disk_full(ValueError("x"), "/p") is None
    err = guards.disk_full(OSError(errno.ENOSPC, "No space left on device"), "/p/a.zarr")
    assert isinstance(err, DiskFullError) and "no space left on device" in str(err)
    assert "/p/a.zarr" in str(err)
    try:
        try:
            raise OSError(errno.ENOSPC, "full")
        except OSError as inner:
            raise RuntimeError("write failed") from inner
    except RuntimeError as outer:
        assert guards.disk_full(outer, "/p") is not None
    assert guards.disk_full(RuntimeError("IO error: No space left on device (os error 28)"), "/p")
