"""Helpers of tests/test_reliability.py: byte snapshots of stores, a slowed-down
writer in a subprocess (API or CLI) that signals when it starts writing, and
input files that are corrupt or truncated."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np  # noqa: F401 - used by VOLUME_SRC

ROOT = Path(__file__).resolve().parents[1]

# Runs the CLI (argv after the script) or the API (argv[1] == "api") in a subprocess.
# Every array write sleeps NGFF_TEST_SLOW seconds, so a kill or a second writer lands
# while the first one writes; the first write creates the file NGFF_TEST_SIGNAL; with
# NGFF_TEST_GATE, writes wait until that file exists.
SCRIPT = r"""
import functools, os, sys, time
import ngff_gpu.io.writer as writer
from ngff_gpu.levels.engine import write_region
slow = float(os.environ.get("NGFF_TEST_SLOW", "0"))
signal_path = os.environ.get("NGFF_TEST_SIGNAL")
gate = os.environ.get("NGFF_TEST_GATE")
def slowed(array, region, data):
    if signal_path and not os.path.exists(signal_path):
        open(signal_path, "w").close()
    t0 = time.monotonic()
    while gate and not os.path.exists(gate) and time.monotonic() - t0 < 120:
        time.sleep(0.01)
    time.sleep(slow)
    write_region(array, region, data)
# Every write (API and CLI) goes through these seams; with NGFF_TEST_BRICK, bricks of
# that many bytes (many small bricks: many points to be killed at).
brick = int(os.environ.get("NGFF_TEST_BRICK", "0")) or None
writer.Seams = functools.partial(writer.Seams, write=slowed, brick_budget=brick)
if sys.argv[1] == "api":
    import numpy as np
    import ngff_gpu as nz
    out, n, seed, extra = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
    ms = nz.to_multiscales(nz.to_ngff_image(volume(n, seed)), scale_factors=[2, 4], chunks=16)
    kwargs = {k: int(v) if v.isdigit() else v for k, v in (a.split("=", 1) for a in extra)}
    nz.to_ngff_zarr(out, ms, memory_limit="16MiB", resume=kwargs.pop("resume", 0) == 1,
                    **kwargs)
    print("done", flush=True)
else:
    from ngff_gpu.cli import main
    sys.exit(main(sys.argv[1:]))
"""


#: A deterministic uint16 test volume of shape (n, 2n, 2n), shared with the subprocess.
VOLUME_SRC = """
def volume(n=48, seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = np.indices((n, 2 * n, 2 * n), dtype=np.float32)
    data = (20000 + 9000 * np.sin(x / 5) * np.cos(y / 3) + 40 * z + 1000 * seed).astype("uint16")
    return data + rng.integers(0, 500, data.shape, dtype=np.uint16)
"""
exec(VOLUME_SRC)  # defines volume() here  # noqa: S102
FULL_SCRIPT = SCRIPT.replace('if sys.argv[1] == "api":',
                             "import numpy as np\n" + VOLUME_SRC + 'if sys.argv[1] == "api":', 1)


def env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess that imports this worktree's ngff_gpu."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("NGFF_GPU_DEBUG", None)
    e.update(extra)
    return e


def spawn(args: list[str], slow: float = 0.0, signal: Path | None = None, brick: int = 100_000,
          gate: Path | None = None, **extra_env: str) -> subprocess.Popen:
    """Start the writer script (``["api", out, n, seed, k=v...]`` or CLI arguments); each
    array write sleeps ``slow`` seconds; bricks of ``brick`` bytes (0: the writer's own)."""
    e = env(NGFF_TEST_SLOW=str(slow), NGFF_TEST_BRICK=str(brick), **extra_env)
    if signal is not None:
        e["NGFF_TEST_SIGNAL"] = str(signal)
    if gate is not None:
        e["NGFF_TEST_GATE"] = str(gate)
    return subprocess.Popen([sys.executable, "-c", FULL_SCRIPT, *map(str, args)], env=e, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace")


def run(args: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run the writer script to completion."""
    proc = spawn(args, **kw)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until ``path`` exists (the writer started writing) or fail if it exited."""
    t0 = time.monotonic()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"writer exited early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() - t0 > timeout:
            raise AssertionError("writer never started writing")
        time.sleep(0.02)


def snapshot(path: Path | str) -> dict[str, bytes]:
    """Every file under ``path`` (relative name -> bytes); directories as ``name/``."""
    path = Path(path)
    out: dict[str, bytes] = {}
    for d, dirs, files in os.walk(path):
        for name in dirs:
            out[os.path.relpath(os.path.join(d, name), path) + "/"] = b""
        for name in files:
            full = os.path.join(d, name)
            out[os.path.relpath(full, path)] = Path(full).read_bytes()
    return out


def stderr_lines(text: str) -> list[str]:
    """Non-empty lines of a CLI's stderr."""
    return [line for line in text.splitlines() if line.strip()]


def corrupt_first_chunk(array_dir: Path) -> Path:
    """Overwrite the first chunk file under ``array_dir`` with garbage; return it."""
    chunks = sorted(p for p in array_dir.rglob("*") if p.is_file()
                    and p.name not in ("zarr.json", ".zarray", ".zattrs", ".zgroup"))
    chunks[0].write_bytes(b"\x00garbage" * 7)
    return chunks[0]


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut ``path`` to a fraction of its size."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
