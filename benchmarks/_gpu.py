"""Helpers of the GPU run (``ci/gpu_run.sh``): the device or its CPU rehearsal, timing,
JSON written as it goes, child processes in time boxes.

Every GPU benchmark module takes ``--rehearsal``: the same code then runs on the CPU,
on small sizes, with the CUDA backend on the host stand-in of ``tests/hostkernels``
(the real :class:`~ngff_gpu.compute.backends.cupy_backend.CupyBackend` launching the
kernels of ``kernels/`` built as host C++) instead of CuPy, so the plumbing, the JSON
and the time boxes are proven before a GPU is lent. Rehearsal numbers are not
measurements of anything and are marked so.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
for _p in (str(REPO), str(REPO / "benchmarks")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

GIB = 1 << 30
MIB = 1 << 20


# ----------------------------------------------------------------------------- the device


class Device:
    """The array module, the CUDA backend and a clock: CuPy on a GPU, or the rehearsal.

    Parameters
    ----------
    rehearsal : bool
        Use the host stand-in (``tests/hostkernels``) instead of CuPy.
    """

    def __init__(self, rehearsal: bool) -> None:
        self.rehearsal = rehearsal
        if rehearsal:
            from tests.hostkernels.standin import host_backend

            self.backend = host_backend()
            self.xp = self.backend.xp
            self.name = "rehearsal (CPU, host stand-in)"
        else:
            import cupy

            from ngff_gpu.compute.backends.cupy_backend import CupyBackend

            self.backend = CupyBackend()
            self.xp = cupy
            self.name = device_name()

    def put(self, host: np.ndarray) -> Any:
        """``host`` copied to the device (a contiguous device array)."""
        out = self.xp.asarray(np.ascontiguousarray(host))
        self.sync()
        return out

    def empty_like(self, x: Any) -> Any:
        return self.xp.empty(x.shape, dtype=x.dtype)

    def copy_into(self, dst: Any, src: Any) -> None:
        """Device-to-device copy of ``src`` into ``dst`` (the bandwidth reference)."""
        if self.rehearsal:
            np.copyto(dst._a, src._a)
        else:
            dst.data.copy_from_device_async(src.data, src.nbytes, self.backend.stream)

    def sync(self) -> None:
        if not self.rehearsal:
            import cupy

            self.backend.synchronize()
            cupy.cuda.get_current_stream().synchronize()

    def time(self, fn: Callable[[], Any], repeat: int, warmup: int = 2) -> dict[str, float]:
        """Median, min and max seconds of ``fn`` (queued on the backend's stream), timed
        with CUDA events on that stream (host clock in a rehearsal), after ``warmup`` runs."""
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(repeat):
            if self.rehearsal:
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
                continue
            import cupy

            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            start.record(self.backend.stream)
            fn()
            stop.record(self.backend.stream)
            stop.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
        return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                "repeat": repeat}


def device_name() -> str:
    """The GPU's name as CUDA reports it (``NVIDIA H200``)."""
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.runtime.getDevice())
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def slug(text: str) -> str:
    """File-name form of a device name: ``NVIDIA H200`` -> ``nvidia-h200``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


# ----------------------------------------------------------------------------- JSON and time


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` to ``path`` atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


class Deadline:
    """Seconds left of a time box (``None`` = unbounded)."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds

    def left(self) -> float:
        return float("inf") if self.end is None else max(0.0, self.end - time.monotonic())

    def box(self, wanted: float, reserve: float = 0.0) -> float:
        """``wanted`` seconds, or what is left (less ``reserve``) if that is less."""
        return max(0.0, min(wanted, self.left() - reserve))


#: Children started in a session of their own, killed (whole group) on SIGTERM.
LIVE: set[subprocess.Popen] = set()


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, to ``proc``'s process group (it leads one of its own)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def kill_live_on_sigterm() -> None:
    """On SIGTERM (the outer ``timeout``), kill every live child group, then exit 143:
    a child in a session of its own would otherwise outlive us (and the device call)."""
    def handler(signum: int, frame: Any) -> None:
        for proc in list(LIVE):
            kill_group(proc)
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, handler)


def run_boxed(cmd: list[str], timeout: float, env: dict[str, str] | None = None,
              cwd: Path = REPO, own_group: bool = True) -> dict[str, Any]:
    """Run ``cmd`` (its output passed through to ours) and kill it when ``timeout`` seconds
    pass. With ``own_group`` it leads a process group of its own and the whole group is
    killed (its children too); without, it stays in our group (so killing ours kills it)
    and only it is killed. Returns exit code, seconds, timed_out."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=own_group)
    if own_group:
        LIVE.add(proc)
    try:
        rc = proc.wait(timeout=max(1.0, timeout))
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        if own_group:
            kill_group(proc)
        else:
            proc.kill()
        rc = proc.wait()
    finally:
        LIVE.discard(proc)
    return {"exit_code": rc, "seconds": round(time.monotonic() - t0, 3), "timed_out": timed_out}


def child_env() -> dict[str, str]:
    """Our environment with the repository first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "")
                                                        .split(os.pathsep) if p])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def gbps(nbytes: float, seconds: float) -> float | None:
    """Bytes over seconds in GB/s (10^9), or None for a zero time."""
    return nbytes / seconds / 1e9 if seconds > 0 else None
