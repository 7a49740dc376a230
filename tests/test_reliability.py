"""Reliability suite (issue 12): nothing lost, nothing silently wrong.

Each test is one case, named in its ``reliability`` marker; ``conftest.py`` prints
which cases held at the end of the session. The severe cases (a failed or
interrupted overwrite, two writers, a MemoryStore with worker processes) each
fail on the code before atomic replace, the lock and the guard.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reliability_helpers as h
import zarr

import ngff_gpu as nz

pytestmark = pytest.mark.reliability


def _npy(tmp_path: Path, n: int = 48, seed: int = 0, name: str = "vol") -> Path:
    path = tmp_path / f"{name}{seed}.npy"
    np.save(path, h.volume(n, seed))
    return path


def _convert(src: Path, out: Path, *flags: str, **kw) -> subprocess.CompletedProcess:
    return h.run(["convert", src, out, "-q", "--no-omero", "--scale-factors", "2,4",
                  "--chunks", "16", "--memory-limit", "16MiB", *flags], **kw)


def _ok(res: subprocess.CompletedProcess) -> None:
    assert res.returncode == 0, res.stderr


def _one_line(res: subprocess.CompletedProcess) -> str:
    lines = h.stderr_lines(res.stderr)
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr and "Task was destroyed" not in res.stderr
    return lines[0]


def _siblings(path: Path) -> list[str]:
    return sorted(p for p in os.listdir(path.parent) if p.startswith(f".{path.name}"))


def _has_ome(path: Path) -> bool:
    try:
        attrs = zarr.open_group(path, mode="r").attrs.asdict()
    except Exception:  # noqa: BLE001 - missing or not a group
        return False
    return "ome" in attrs or "multiscales" in attrs


# ---------------------------------------------------------------- severe 1: atomic replace


@pytest.mark.reliability("severe 1: failed overwrite (error in the input) keeps the old store, API")
def test_failed_overwrite_keeps_old_store_api(tmp_path):
    import dask.array as da

    out = tmp_path / "a.zarr"
    old = nz.to_multiscales(nz.to_ngff_image(h.volume(32, 1)), scale_factors=[2], chunks=16)
    nz.to_ngff_zarr(out, old)
    before = h.snapshot(out)

    calls = []

    def fail_late(block, block_info=None):
        calls.append(1)
        if len(calls) > 3:
            raise OSError("read error in the input (simulated)")
        return block

    bad = da.from_array(h.volume(32, 2), chunks=(16, 32, 32)).map_blocks(fail_late, dtype=np.uint16)
    new = nz.to_multiscales(nz.to_ngff_image(bad), scale_factors=[2], chunks=16)
    with pytest.raises(OSError, match="simulated"):
        nz.to_ngff_zarr(out, new, memory_limit="16MiB")
    assert len(calls) > 3  # it failed while writing, not before
    assert h.snapshot(out) == before
    assert os.listdir(tmp_path) == ["a.zarr"]  # no temporary, no lock left


@pytest.mark.reliability("severe 1: failed overwrite (corrupt Zarr chunk) keeps the old store, CLI; one line")
def test_failed_overwrite_keeps_old_store_cli(tmp_path):
    out = tmp_path / "a.ome.zarr"
    _ok(_convert(_npy(tmp_path, 32, 1), out))
    before = h.snapshot(out)
    src = tmp_path / "in.zarr"
    arr = zarr.create_array(src, shape=(32, 64, 64), chunks=(8, 64, 64), dtype="uint16")
    arr[:] = h.volume(32, 2)
    chunks = sorted((src / "c").rglob("*"))
    chunks = [c for c in chunks if c.is_file()]
    chunks[-1].write_bytes(b"\x00garbage" * 7)  # the last chunk: fails midway
    res = _convert(src, out, "--overwrite")
    assert res.returncode == 1
    line = _one_line(res)
    assert "unchanged" in line and "--resume" not in line
    assert h.snapshot(out) == before
    assert _siblings(out) == []


@pytest.mark.reliability("severe 1: Ctrl-C during an overwrite keeps the old store; --resume finishes it")
def test_interrupted_overwrite_keeps_old_store_then_resume(tmp_path):
    out, clean = tmp_path / "a.ome.zarr", tmp_path / "clean.ome.zarr"
    src = _npy(tmp_path, 48, 2)
    _ok(_convert(_npy(tmp_path, 32, 1), out))
    before = h.snapshot(out)
    sig, count = tmp_path / "writing", tmp_path / "count"
    _ok(_convert(src, clean, count=count))  # the uninterrupted run; counts its writes
    # Ctrl-C while the writer is half way through its writes (it holds there until the
    # interrupt arrives, which releases it: no clock decides where the interrupt lands).
    proc = h.spawn(["convert", src, out, "-q", "--no-omero", "--scale-factors", "2,4", "--chunks",
                    "16", "--memory-limit", "16MiB", "--overwrite"], signal=sig, hold=True,
                   signal_at=int(count.read_text()) // 2)
    h.wait_for(sig, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    line = _one_line(subprocess.CompletedProcess([], 130, "", err))
    assert "unchanged" in line and "--resume" in line
    assert h.snapshot(out) == before
    assert any(".ngff-gpu-tmp-" in s for s in _siblings(out))  # kept for --resume
    _ok(_convert(src, out, "--resume"))
    assert h.snapshot(out) == h.snapshot(clean)
    assert _siblings(out) == []


@pytest.mark.reliability("severe 1: SIGKILL at random points of an overwrite; old store intact; resume")
def test_killed_overwrite_random_points_then_resume(tmp_path):
    out, clean = tmp_path / "a.ome.zarr", tmp_path / "clean.ome.zarr"
    src = _npy(tmp_path, 48, 2)
    _ok(_convert(_npy(tmp_path, 32, 1), out))
    before = h.snapshot(out)
    count = tmp_path / "count"
    _ok(_convert(src, clean, count=count))  # the uninterrupted run; counts its writes
    after = h.snapshot(clean)
    args = ["convert", src, out, "-q", "--no-omero", "--scale-factors", "2,4", "--chunks", "16",
            "--memory-limit", "16MiB"]
    total = int(count.read_text())
    # Kill points drawn over the writes of a run (the first run's and each resume's own):
    # the writer holds at its n-th write, so every kill lands where it was drawn.
    rnd = random.Random(12)
    for i in range(4):
        sig = tmp_path / f"writing{i}"
        proc = h.spawn([*args, "--resume" if i else "--overwrite"], signal=sig, hold=True,
                       signal_at=rnd.randint(1, max(1, total // 4)))
        h.wait_for(sig, proc)
        proc.kill()
        proc.wait()
        assert h.snapshot(out) == before, f"kill {i} changed the old store"
        assert any(".ngff-gpu-tmp-" in s for s in _siblings(out))
    _ok(_convert(src, out, "--resume"))  # takes over the dead writer's lock and temporary
    assert h.snapshot(out) == after
    assert _siblings(out) == []


@pytest.mark.reliability("severe 1: SIGKILL during an overwrite, then --overwrite cleans the leftover")
def test_killed_overwrite_then_overwrite_cleans_leftover(tmp_path):
    out = tmp_path / "a.ome.zarr"
    src = _npy(tmp_path, 48, 2)
    _ok(_convert(_npy(tmp_path, 32, 1), out))
    sig = tmp_path / "writing"
    proc = h.spawn(["convert", src, out, "-q", "--no-omero", "--chunks", "16", "--overwrite"],
                   signal=sig, hold=True)
    h.wait_for(sig, proc)
    proc.kill()
    proc.wait()
    assert _siblings(out)  # temporary and lock file of the dead writer
    _ok(_convert(src, out, "--overwrite"))
    assert _siblings(out) == []
    back = nz.from_ngff_zarr(out, validate=True)
    assert np.array_equal(np.asarray(back.images[0].data), h.volume(48, 2))


# ------------------------------------------------------------- full disk (small tmpfs, root)


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only; skipped otherwise)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.reliability("severe 1: full disk during an overwrite keeps the old store; one line, the path")
def test_full_disk_overwrite_keeps_old_store(tmp_path, small_disk):
    out = small_disk / "a.ome.zarr"
    _ok(_convert(_npy(tmp_path, 16, 1), out))
    before = h.snapshot(out)
    res = _convert(_npy(tmp_path, 64, 2), out, "--overwrite")
    assert res.returncode == 1
    line = _one_line(res)
    assert "no space left on device" in line and str(out) in line and "unchanged" in line
    assert h.snapshot(out) == before
    assert _siblings(out) == []  # the temporary is deleted: the space comes back


@pytest.mark.reliability("full disk, API: DiskFullError naming the path; a new store has no OME metadata")
def test_full_disk_api_typed_error(small_disk):
    out = small_disk / "b.ome.zarr"
    ms = nz.to_multiscales(nz.to_ngff_image(h.volume(64, 3)), scale_factors=[2], chunks=16)
    with pytest.raises(nz.DiskFullError, match="no space left on device") as info:
        nz.to_ngff_zarr(out, ms)
    assert str(out) in str(info.value)
    assert not _has_ome(out)


# ------------------------------------------------------------------ severe 2: one writer


@pytest.mark.parametrize(("existing", "second_flag"),
                         [(True, "--overwrite"), (False, "--overwrite"), (False, None)],
                         ids=["over-existing", "new-store", "second-without-flags"])
@pytest.mark.reliability("severe 2: two writers on one store: the second fails at once naming the first")
def test_two_writers_one_store(tmp_path, existing, second_flag):
    out, clean = tmp_path / "a.ome.zarr", tmp_path / "clean.ome.zarr"
    src = _npy(tmp_path, 48, 2)
    if existing:
        _ok(_convert(_npy(tmp_path, 32, 1), out))
    sig = tmp_path / "writing"
    args = ["convert", src, out, "-q", "--no-omero", "--scale-factors", "2,4", "--chunks", "16",
            "--memory-limit", "16MiB", "--overwrite"]
    gate = tmp_path / "go"
    first = h.spawn(args, signal=sig, gate=gate)  # holds at its first write until "go"
    h.wait_for(sig, first)
    # The first holds until the gate opens, after the second returned: the second
    # returning at all shows it failed at once rather than waiting for the first.
    second = h.run(args if second_flag else args[:-1])
    gate.touch()
    assert second.returncode == 1
    line = _one_line(second)
    assert f"pid {first.pid}" in line and "being written" in line and "since" in line
    assert "--resume" not in line
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    _ok(_convert(src, clean))
    assert h.snapshot(out) == h.snapshot(clean)
    assert _siblings(out) == []


# ------------------------------------------- severe 3: in-process store, worker processes


@pytest.mark.reliability("severe 3: MemoryStore with dask.distributed worker processes is refused first")
def test_memory_store_with_worker_processes_refused():
    distributed = pytest.importorskip("distributed")
    from zarr.storage import MemoryStore

    data = h.volume(16, 4)
    ms = nz.to_multiscales(nz.to_ngff_image(data), scale_factors=[2], chunks=16)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        store = MemoryStore()
        with pytest.raises(nz.StoreUnreachableError, match="MemoryStore"):
            nz.to_ngff_zarr(store, ms)
        assert store._store_dict == {}  # nothing written
        nz.to_ngff_zarr(store, ms, client=False)  # computed here: correct
        back = nz.from_ngff_zarr(store)
        assert np.array_equal(np.asarray(back.images[0].data), data)


# ----------------------------------------------------- stores without rename: in-place


@pytest.mark.reliability("no rename (MemoryStore): replacing a valid store needs overwrite='in-place'")
def test_memory_store_overwrite_needs_in_place():
    from zarr.storage import MemoryStore

    store = MemoryStore()
    one = nz.to_multiscales(nz.to_ngff_image(h.volume(16, 1)), scale_factors=[2], chunks=16)
    two = nz.to_multiscales(nz.to_ngff_image(h.volume(16, 2)), scale_factors=[2], chunks=16)
    nz.to_ngff_zarr(store, one)
    before = {k: bytes(v.to_bytes()) for k, v in store._store_dict.items()}
    with pytest.raises(nz.StoreExistsError, match="in-place"):
        nz.to_ngff_zarr(store, two)
    assert {k: bytes(v.to_bytes()) for k, v in store._store_dict.items()} == before
    nz.to_ngff_zarr(store, two, overwrite="in-place")
    assert np.array_equal(np.asarray(nz.from_ngff_zarr(store).images[0].data), h.volume(16, 2))


@pytest.mark.reliability("CLI --overwrite-in-place replaces a local store")
def test_cli_overwrite_in_place(tmp_path):
    out = tmp_path / "a.ome.zarr"
    _ok(_convert(_npy(tmp_path, 16, 1), out))
    _ok(_convert(_npy(tmp_path, 16, 2), out, "--overwrite-in-place"))
    back = nz.from_ngff_zarr(out, validate=True)
    assert np.array_equal(np.asarray(back.images[0].data), h.volume(16, 2))


# ----------------------------------------------------------------- a reader during a write


@pytest.mark.reliability("a reader polling during a new write never sees a complete-looking partial store")
def test_reader_polling_during_write(tmp_path):
    out = tmp_path / "a.ome.zarr"
    expected = nz.to_multiscales(nz.to_ngff_image(h.volume(48, 5)), scale_factors=[2, 4], chunks=16)
    want = [np.asarray(im.data) for im in expected.images]
    sig, gate = tmp_path / "writing", tmp_path / "go"
    proc = h.spawn(["api", out, 48, 5, "chunks_per_shard=2"], signal=sig, gate=gate)
    h.wait_for(sig, proc)
    refused = seen = 0
    for _ in range(3):  # the writer holds at its first write: the store is incomplete
        with pytest.raises(nz.NgffGpuError):
            nz.from_ngff_zarr(out)
        refused += 1
    gate.touch()
    while proc.poll() is None:
        try:
            back = nz.from_ngff_zarr(out)
            got = [np.asarray(im.data) for im in back.images]
        except nz.NgffGpuError:
            refused += 1
            continue
        seen += 1
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert np.array_equal(g, w), "a store that looks complete is not"
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert refused > 0  # the reader did poll while the store was incomplete
    nz.validate_store(out)


@pytest.mark.reliability("a reader polling during an overwrite always finds a complete, valid store")
def test_reader_polling_during_overwrite(tmp_path):
    out = tmp_path / "a.ome.zarr"
    h.run(["api", out, 32, 1])
    sig, gate = tmp_path / "writing", tmp_path / "go"
    proc = h.spawn(["api", out, 48, 5], signal=sig, gate=gate)
    h.wait_for(sig, proc)
    # The writer holds at its first write: the old store is what a reader finds.
    shapes = {tuple(nz.from_ngff_zarr(out).images[0].data.shape)}
    gate.touch()
    while proc.poll() is None:
        back = nz.from_ngff_zarr(out)  # never missing, never incomplete
        shapes.add(tuple(back.images[0].data.shape))
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    shapes.add(tuple(nz.from_ngff_zarr(out).images[0].data.shape))
    assert shapes == {(32, 64, 64), (48, 96, 96)}


# ------------------------------------------------------------- corrupt and truncated input


def _zarr_input(tmp_path: Path) -> Path:
    src = tmp_path / "in.zarr"
    arr = zarr.create_array(src, shape=(32, 64, 64), chunks=(8, 32, 32), dtype="uint16")
    arr[:] = h.volume(32, 2)
    return src


def _png_input(tmp_path: Path) -> Path:
    import imageio.v3 as iio

    path = tmp_path / "in.png"
    iio.imwrite(path, (h.volume(4, 2)[0] >> 8).astype(np.uint8))
    return path


def _corrupt(kind: str, tmp_path: Path) -> Path:
    if kind == "zarr-corrupt-chunk":
        # Many small chunks, several corrupt: zarr's event loop used to report every
        # cancelled read ("Task was destroyed but it is pending!", hundreds of lines).
        src = tmp_path / "many.zarr"
        arr = zarr.create_array(src, shape=(64, 128, 128), chunks=(8, 16, 16), dtype="uint16")
        arr[:] = 7
        for chunk in sorted(p for p in (src / "c").rglob("*") if p.is_file())[::50]:
            chunk.write_bytes(b"\x00garbage" * 7)
        return src
    if kind == "zarr-truncated-chunk":
        src = _zarr_input(tmp_path)
        first = sorted(p for p in (src / "c").rglob("*") if p.is_file())[0]
        h.truncate(first)
        return src
    if kind == "npy-truncated":
        return h.truncate(_npy(tmp_path, 16, 2))
    if kind == "png-truncated":
        return h.truncate(_png_input(tmp_path))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["zarr-corrupt-chunk", "zarr-truncated-chunk", "npy-truncated",
                                  "png-truncated"])
@pytest.mark.reliability("corrupt or truncated input: one line, no asyncio noise, no complete-looking store")
def test_corrupt_or_truncated_input(tmp_path, kind):
    out = tmp_path / "out.ome.zarr"
    src = _corrupt(kind, tmp_path)
    res = h.run(["convert", src, out, "-q"])
    assert res.returncode == 1, res.stderr
    _one_line(res)
    assert f"{src.name}" in res.stderr and "unexpected" not in res.stderr, res.stderr
    assert not _has_ome(out)


# ------------------------------------------------------------- paths, reproducible shards


@pytest.mark.parametrize("pipeline", ["zarrs", "zarr"])
@pytest.mark.reliability("a non-UTF-8 byte in the output path works (both codec pipelines)")
def test_non_utf8_output_path(tmp_path, pipeline, monkeypatch):
    monkeypatch.setenv("NGFF_GPU_CODEC_PIPELINE", pipeline)
    out = os.fsdecode(os.fsencode(str(tmp_path)) + b"/out\xff\xfe.ome.zarr")
    data = h.volume(16, 6)
    ms = nz.to_multiscales(nz.to_ngff_image(data), scale_factors=[2], chunks=16)
    for cps in (None, 2):
        nz.to_ngff_zarr(out, ms, chunks_per_shard=cps)
        back = nz.from_ngff_zarr(out, validate=True)
        assert np.array_equal(np.asarray(back.images[0].data), data)
    src = _npy(tmp_path, 16, 6)
    res = subprocess.run([sys.executable, "-m", "ngff_gpu.cli", "convert", os.fsencode(str(src)),
                          os.fsencode(out), "--overwrite"], env=h.env(NGFF_GPU_CODEC_PIPELINE=pipeline),
                         capture_output=True, cwd=h.ROOT)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    nz.validate_store(out)


@pytest.mark.reliability("sharded output is byte-reproducible under the zarrs pipeline")
def test_sharded_output_byte_reproducible(tmp_path):
    # Edge shards (not entirely inside the array) used to get their chunks in a
    # different order from run to run; each run in its own process.
    stores = []
    for i in range(3):
        out = tmp_path / f"s{i}.ome.zarr"
        res = h.run(["api", out, 35, 7, "chunks_per_shard=4"], brick=0,
                    NGFF_GPU_CODEC_PIPELINE="zarrs")
        assert res.returncode == 0, res.stderr
        stores.append(h.snapshot(out))
    assert stores[0] == stores[1] == stores[2]


@pytest.mark.reliability("the lock file names its holder; a stale one of a dead process is taken over (CLI)")
def test_stale_lock_taken_over_cli(tmp_path):
    from ngff_gpu.io.lock import lock_path

    out = tmp_path / "a.ome.zarr"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    Path(lock_path(out)).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename,
                                                "started": 1.0}))
    _ok(_convert(_npy(tmp_path, 16, 1), out))
    assert _siblings(out) == []
