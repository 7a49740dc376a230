"""Helpers of tests/test_reliability.py: byte snapshots of stores, a writer in a
subprocess (API or CLI) that signals and holds at its n-th array write, and
input files that are corrupt or truncated. The writer is stopped by events it signals
(its n-th write, a gate file), never by a sleep, so the suite holds on a loaded machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np  # noqa: F401 - used by VOLUME_SRC

ROOT = Path(__file__).resolve().parents[1]

# Runs the CLI (argv after the script) or the API (argv[1] == "api") in a subprocess.
# Nothing here waits on a clock: the writer signals and holds on events.
# - NGFF_TEST_SIGNAL: a file the writer creates when it starts its NGFF_TEST_SIGNAL_AT-th
#   array write (default the first);
# - NGFF_TEST_GATE: from that write on, writes hold until the gate file exists;
#   NGFF_TEST_HOLD=1 holds them for good (until the test kills the process);
# - a SIGINT releases held writes and then raises KeyboardInterrupt, so a Ctrl-C test knows
#   the interrupt reached the writer while it was mid-write, and the writer can wind down;
# - NGFF_TEST_COUNT: a file that gets the number of array writes when the process exits.
SCRIPT = r"""
import atexit, functools, os, signal, sys, threading
import ngff_gpu.io.writer as writer
from ngff_gpu.levels.engine import write_region
signal_path = os.environ.get("NGFF_TEST_SIGNAL")
signal_at = int(os.environ.get("NGFF_TEST_SIGNAL_AT", "1"))
gate = os.environ.get("NGFF_TEST_GATE")
hold = os.environ.get("NGFF_TEST_HOLD") == "1"
count_path = os.environ.get("NGFF_TEST_COUNT")
released = threading.Event()
lock = threading.Lock()
writes = [0]
def on_sigint(signum, frame):
    released.set()
    signal.default_int_handler(signum, frame)
signal.signal(signal.SIGINT, on_sigint)
def held_write(array, region, data):
    with lock:
        writes[0] += 1
        n = writes[0]
    if signal_path and n >= signal_at:
        if n == signal_at:
            open(signal_path, "w").close()
        while (hold or gate) and not released.is_set():
            if gate and os.path.exists(gate):
                released.set()
            released.wait(0.01)
    write_region(array, region, data)
if count_path:
    atexit.register(lambda: open(count_path, "w").write(str(writes[0])))
# Every write (API and CLI) goes through these seams; with NGFF_TEST_BRICK, bricks of
# that many bytes (many small bricks: many points to be stopped at).
brick = int(os.environ.get("NGFF_TEST_BRICK", "0")) or None
writer.Seams = functools.partial(writer.Seams, write=held_write, brick_budget=brick)
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
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.exit(code)
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


def spawn(args: list[str], signal: Path | None = None, brick: int = 100_000,
          gate: Path | None = None, hold: bool = False, signal_at: int = 1,
          count: Path | None = None, **extra_env: str) -> subprocess.Popen:
    """Start the writer script (``["api", out, n, seed, k=v...]`` or CLI arguments) with
    bricks of ``brick`` bytes (0: the writer's own). At its ``signal_at``-th array write it
    creates ``signal``; from then on its writes hold until ``gate`` exists (or for good with
    ``hold``, until it is killed or gets SIGINT). ``count`` gets the number of writes at exit."""
    e = env(NGFF_TEST_BRICK=str(brick), NGFF_TEST_SIGNAL_AT=str(signal_at),
            NGFF_TEST_HOLD="1" if hold else "0", **extra_env)
    for name, path in (("NGFF_TEST_SIGNAL", signal), ("NGFF_TEST_GATE", gate),
                       ("NGFF_TEST_COUNT", count)):
        if path is not None:
            e[name] = str(path)
    return subprocess.Popen([sys.executable, "-c", FULL_SCRIPT, *map(str, args)], env=e, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace")


def run(args: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run the writer script to completion."""
    proc = spawn(args, **kw)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Wait until the writer signals (creates ``path``), or fail if it exits first.

    The writer holds after signalling, so this waits on the writer's event, not on a clock;
    the only bound is a hang guard far beyond any run (a writer that never signals)."""
    deadline = time.monotonic() + 600
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"writer exited early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("writer never signalled (hang guard)")
        time.sleep(0.01)


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
