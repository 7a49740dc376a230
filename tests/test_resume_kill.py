"""Crash safety: a writer killed with SIGKILL at random points, then resumed in a
new process, gives exactly the store of a clean run; a killed store either
carries complete OME metadata or none at all.

The kill points are drawn over the writer's array writes, not over time: the writer
prints ``hold`` at its n-th write and holds there (and at every write after it) until
it is killed, so no clock and no machine load decide where a kill lands."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

import ngff_gpu as nz
from ngff_gpu.io.session import StoreSession
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import write_multiscales

ROOT = Path(__file__).resolve().parents[1]
# zarr's LocalStore writes each key to "<key>.<uuid4 hex>.partial" and renames it; a SIGKILL
# mid-write leaves that temporary file behind, and resume=True does not remove it (library bug,
# pinned by test_resume_removes_partial_write_leftovers). Until it is fixed, the store
# comparison after kill+resume ignores those files only; set to False once fixed.
TOLERATE_PARTIAL_LEFTOVERS = False
PARTIAL = re.compile(r"\.[0-9a-f]{32}\.partial$")

# argv: store, version, chunks_per_shard (0: none), plan budget per brick (0: the writer's own),
# resume (0/1), size, the write to hold at (0: none)
SCRIPT = r"""
import sys, threading
store, version, cps, plan_budget, resume, n, hold_at = sys.argv[1:8]
cps, plan_budget, n, hold_at = int(cps) or None, int(plan_budget), int(n), int(hold_at)
import numpy as np
import ngff_gpu as nz
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import write_multiscales
from ngff_gpu.levels.engine import write_region
lock, writes, never = threading.Lock(), [0], threading.Event()
def write(array, region, data):
    with lock:
        writes[0] += 1
        k = writes[0]
    if hold_at and k >= hold_at:
        if k == hold_at:
            print("hold", flush=True)
        never.wait()
    write_region(array, region, data)
rng = np.random.default_rng(42)
z, y, x = np.indices((n, n, n), dtype=np.float32)
data = (20000 + 9000 * np.sin(x / 5) * np.cos(y / 3) + 40 * z).astype("uint16")
data += rng.integers(0, 500, data.shape, dtype=np.uint16)
ms = nz.to_multiscales(nz.to_ngff_image(data), scale_factors=[2, 4, 8], chunks=16)
print("ready", flush=True)
write_multiscales(store, ms, version=version, chunks_per_shard=cps, memory_limit="16MiB",
                  resume=resume == "1", seams=Seams(write=write, brick_budget=plan_budget or None))
print(f"done {writes[0]}", flush=True)
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _spawn(store, cfg, resume, hold_at=0):
    args = [str(store), cfg["version"], str(cfg["cps"] or 0), str(cfg["plan_budget"]),
            "1" if resume else "0", str(cfg["n"]), str(hold_at)]
    return subprocess.Popen([sys.executable, "-c", SCRIPT, *args], env=_env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(store, cfg, resume=False) -> int:
    """Run to completion; return the number of array writes it made."""
    proc = _spawn(store, cfg, resume)
    out, err = proc.communicate(timeout=600)
    lines = out.split()
    assert proc.returncode == 0 and lines[:2] == ["ready", "done"], err
    return int(lines[2])


def _run_and_kill(store, cfg, hold_at, resume=False):
    """Start a writer and SIGKILL it at its ``hold_at``-th array write (0: as soon as it
    printed 'ready', while it plans and creates its arrays); return True if it was killed
    before finishing (a resume may have fewer writes left than ``hold_at``)."""
    proc = _spawn(store, cfg, resume, hold_at)
    try:
        assert proc.stdout.readline().strip() == "ready"
        line = proc.stdout.readline().strip() if hold_at else "hold"
        if line == "hold":
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0 and line.startswith("done"), err
        return False
    finally:
        proc.stdout.close()
        proc.stderr.close()


def _files(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _root_attrs(path: Path) -> dict:
    return zarr.open_group(path, mode="r").attrs.asdict()


def _assert_same_store(path: Path, clean: Path):
    """Same keys (nothing excluded: no progress markers, no stray files), same metadata and
    same bytes in every file; a shard may only differ in the order of its inner chunks (zarr
    encodes them concurrently), its decoded data must be equal."""
    got, want = _files(path), _files(clean)
    if TOLERATE_PARTIAL_LEFTOVERS:
        got = {k: v for k, v in got.items() if not PARTIAL.search(k)}
    assert not any(PARTIAL.search(k) for k in want)
    assert sorted(got) == sorted(want), (
        f"extra keys {sorted(set(got) - set(want))[:10]}, missing {sorted(set(want) - set(got))[:10]}"
    )
    a, b = zarr.open_group(path, mode="r"), zarr.open_group(clean, mode="r")
    arrays = {name: arr for name, arr in b.members(max_depth=None) if isinstance(arr, zarr.Array)}
    assert {n for n, x in a.members(max_depth=None) if isinstance(x, zarr.Array)} == set(arrays)
    sharded = [name + "/c/" for name, arr in arrays.items() if arr.shards is not None]
    for key in want:
        if not any(key.startswith(prefix) for prefix in sharded):
            assert got[key] == want[key], f"{key} differs"
        else:
            assert len(got[key]) == len(want[key]), f"shard {key} differs"
    assert _root_attrs(path) == _root_attrs(clean)
    for name, arr in arrays.items():
        assert np.array_equal(a[name][...], arr[...]), name


def _assert_consistent_after_kill(path: Path, clean: Path):
    """A killed store claims completeness only when it is complete."""
    if not path.exists() or not any(path.iterdir()):
        return "empty"
    try:
        attrs = _root_attrs(path)
    except Exception:  # noqa: BLE001 - killed before the root group existed
        with pytest.raises(nz.InvalidStoreError):
            nz.validate_store(path)
        return "no-group"
    if "ome" in attrs or "multiscales" in attrs:
        _assert_same_store(path, clean)
        nz.validate_store(path)
        return "complete"
    with pytest.raises(nz.InvalidStoreError):
        nz.validate_store(path)
    return "partial"


CONFIGS = {
    # many bricks (plan budget forced small) and three passes
    "v05-many-bricks": {"version": "0.5", "cps": None, "plan_budget": 100_000, "n": 128,
                        "kills": 6, "seed": 1},
    # the writer's own plan for memory_limit="16MiB", Zarr v2
    "v04-own-plan": {"version": "0.4", "cps": None, "plan_budget": 0, "n": 128, "kills": 4,
                     "seed": 2},
    # sharded
    "v05-sharded": {"version": "0.5", "cps": 2, "plan_budget": 100_000, "n": 128, "kills": 4,
                    "seed": 3},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_sigkill_then_resume_equals_clean_run(tmp_path, name):
    cfg = CONFIGS[name]
    clean = tmp_path / "clean.ome.zarr"
    total = _run(clean, cfg)
    assert nz.validate_store(clean) == cfg["version"]
    assert "ngff_gpu_progress" not in zarr.open_group(clean, mode="r")
    rng = np.random.default_rng(cfg["seed"])
    # One kill during start-up (right after 'ready': planning, creating arrays and progress
    # markers), the others at writes drawn over the whole run.
    holds = [0, *sorted(int(k) for k in rng.integers(1, total + 1, cfg["kills"] - 1))]
    states = []
    for i, hold_at in enumerate(holds):
        store = tmp_path / f"killed{i}.ome.zarr"
        killed = _run_and_kill(store, cfg, hold_at)
        assert killed
        states.append((hold_at, _assert_consistent_after_kill(store, clean)))
        _run(store, cfg, resume=True)
        _assert_same_store(store, clean)
        nz.validate_store(store)
    # Every kill at a write interrupted a write in progress: the store was partial.
    assert all(state == "partial" for hold_at, state in states if hold_at), states


@pytest.mark.slow
def test_repeated_kills_of_resumes(tmp_path):
    """Kill the first run and then its resumes, several times, before letting one finish."""
    cfg = CONFIGS["v05-many-bricks"]
    clean = tmp_path / "clean.ome.zarr"
    total = _run(clean, cfg)
    rng = np.random.default_rng(7)
    store = tmp_path / "store.ome.zarr"
    for attempt in range(3):
        # Each run holds within the first quarter of a full run's writes: a resume has at
        # least that many left after three such kills, so each of the three is a real kill.
        assert _run_and_kill(store, cfg, int(rng.integers(1, total // 4)), resume=attempt > 0)
        _assert_consistent_after_kill(store, clean)
    _run(store, cfg, resume=True)
    _assert_same_store(store, clean)


def test_resume_of_a_complete_store_is_a_no_op(tmp_path):
    cfg = dict(CONFIGS["v05-many-bricks"], n=48)
    clean = tmp_path / "clean.ome.zarr"
    _run(clean, cfg)
    before = {p: p.stat().st_mtime_ns for p in clean.rglob("*") if p.is_file()}
    _run(clean, cfg, resume=True)
    after = {p: p.stat().st_mtime_ns for p in clean.rglob("*") if p.is_file()}
    assert before == after
    meta = json.loads((clean / "zarr.json").read_text())["attributes"]
    assert "ome" in meta and "ngff_gpu_in_progress" not in meta


def _fail(exc):
    def write(array, region, data):
        raise exc
    return write


def test_resume_removes_partial_write_leftovers(tmp_path):
    data = np.arange(40 * 48 * 56, dtype="uint16").reshape(40, 48, 56)
    ms = nz.to_multiscales(data, scale_factors=[2, 4], chunks=8)
    clean = tmp_path / "clean.ome.zarr"
    nz.to_ngff_zarr(clean, ms)
    store = tmp_path / "killed.ome.zarr"
    with pytest.raises(OSError):
        write_multiscales(store, ms, seams=Seams(write=_fail(OSError("killed (simulated)"))))
    # What a SIGKILL in the middle of a chunk write leaves.
    leftover = store / "scale0" / "image" / "c" / "0" / "0" / ("0." + "ab" * 16 + ".partial")
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"\x28\xb5\x2f")
    nz.to_ngff_zarr(store, ms, resume=True)
    assert not leftover.exists()
    assert sorted(_files(store)) == sorted(_files(clean))


def _small_ms():
    data = np.arange(40 * 48 * 56, dtype="uint16").reshape(40, 48, 56)
    return nz.to_multiscales(data, scale_factors=[2, 4, 8], chunks=8)


class _KilledWhileMarking(StoreSession):
    """A session double: the SIGKILL lands while the third pass's marker is created."""

    def _marker(self, group, index, n):
        if index == 2:
            raise KeyboardInterrupt
        return super()._marker(group, index, n)


def test_resume_after_kill_while_creating_progress_markers(tmp_path):
    ms = _small_ms()
    store = tmp_path / "s.ome.zarr"
    with pytest.raises(KeyboardInterrupt):
        write_multiscales(store, ms, seams=Seams(session=_KilledWhileMarking, brick_budget=2000))
    report = write_multiscales(store, ms, resume=True, seams=Seams(brick_budget=2000))
    assert len(report.passes) >= 3
    clean = tmp_path / "clean.ome.zarr"
    nz.to_ngff_zarr(clean, ms)
    _assert_same_store(store, clean)


def test_resume_after_kill_while_creating_level_arrays(tmp_path):
    ms = _small_ms()
    store = tmp_path / "s.ome.zarr"
    with pytest.raises(KeyboardInterrupt):
        write_multiscales(store, ms, seams=Seams(write=_fail(KeyboardInterrupt())))
    (store / "scale3" / "zarr.json").unlink()  # the state the SIGKILL left
    nz.to_ngff_zarr(store, ms, resume=True)
    clean = tmp_path / "clean.ome.zarr"
    nz.to_ngff_zarr(clean, ms)
    _assert_same_store(store, clean)
