"""Helpers shared by the CPU and memory benchmarks: machine info, versions, RSS, child runs.

Each benchmark case runs in a fresh child process that prints one JSON object as
its last line of stdout; :func:`run_child` starts it and parses that line.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "benchmarks" / "out"
MIB = 1 << 20
RECIPE_VERSION = 2  # bump when VolumeRecipe changes, so cached inputs are regenerated
GIB = 1 << 30

_PACKAGES = ("numpy", "zarr", "numcodecs", "dask", "ngff-zarr", "itkwasm-downsample",
             "zarrista", "zarrs", "psutil", "matplotlib")


def ensure_repo_on_path() -> None:
    """Put the repository root first on ``sys.path`` so ``import ngff_gpu`` finds the checkout."""
    root = str(REPO)
    if root not in sys.path:
        sys.path.insert(0, root)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes.

    On Linux this is ``VmHWM`` from ``/proc/self/status``: the high-water mark of
    this process's own memory, reset by ``exec``. ``ru_maxrss`` is not used there
    because Linux carries it across ``fork``/``exec``, so a child would report at
    least the RSS its parent had when it was started. Elsewhere: ``ru_maxrss``.

    Returns
    -------
    int
        Peak RSS in bytes.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def current_rss_bytes() -> int:
    """Current resident set size of this process, in bytes (psutil)."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo`` (or :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """Describe the machine: CPUs (total and usable), model, RAM, OS, Python.

    Returns
    -------
    dict
        JSON-serialisable machine description.
    """
    import psutil

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    vm = psutil.virtual_memory()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "cpu_model": cpu_model(),
        "ram_total_gib": round(vm.total / GIB, 2),
        "ram_available_gib": round(vm.available / GIB, 2),
        "load_avg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


def git_revision() -> str | None:
    """Commit of the checkout (with ``-dirty`` when the tree has changes), or None."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev + ("-dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    """Installed versions of the packages the benchmarks exercise, plus ``ngff_gpu``.

    Returns
    -------
    dict
        Package name to version string (None when not installed).
    """
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    ensure_repo_on_path()
    try:
        import ngff_gpu

        out["ngff_gpu"] = ngff_gpu.__version__
    except ImportError:
        out["ngff_gpu"] = None
    out["ngff_gpu_git"] = git_revision()
    return out


def free_disk_bytes(path: Path) -> int:
    """Free bytes on the file system holding ``path`` (its nearest existing parent)."""
    p = path
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


def dir_size_bytes(path: Path) -> int:
    """Total size of the regular files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def remove_tree(path: Path) -> None:
    """Delete ``path`` (a directory or file) when it exists."""
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def run_child(script: str, args: list[str], timeout: float | None = None) -> dict[str, Any]:
    """Run ``python script args...`` in a fresh process and parse its JSON report.

    Parameters
    ----------
    script : str
        Path of the benchmark script (it handles ``--case``/``--child`` itself).
    args : list of str
        Command-line arguments for the child.
    timeout : float, optional
        Seconds before the child is killed.

    Returns
    -------
    dict
        The JSON object the child printed on its last stdout line, or
        ``{"error": ...}`` with the tail of stderr when it failed.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"}
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"unparsable child output: {lines[-1][:500]}"}


class VolumeRecipe:
    """Deterministic smooth-plus-noise uint16 test volume, generated one z-slab at a time.

    ``value = 1000 + 10000 * (waves + 1) + 25000 * min(blobs, 1) + noise`` with two
    separable 3-D sinusoid products (weights 0.6/0.4, 1..4 periods per axis),
    four separable Gaussian blobs and uniform integer noise in ``[0, 256)``;
    values lie in ``[1000, 46256)``, never zero. The noise of a slab is seeded
    by ``(seed, z0)``, so a slab does not depend on the order slabs are made in.

    Parameters
    ----------
    shape : tuple of int
        ``(z, y, x)`` shape of the volume.
    seed : int
        Seed of the structure parameters and the noise.
    """

    def __init__(self, shape: tuple[int, int, int], seed: int = 0) -> None:
        import numpy as np

        self.shape = tuple(int(s) for s in shape)
        self.seed = int(seed)
        rng = np.random.default_rng(seed)
        axes = [np.linspace(0.0, 1.0, n, dtype=np.float32) for n in self.shape]
        self.waves = []
        for weight in (0.6, 0.4):
            freq = rng.uniform(1.0, 4.0, 3)
            phase = rng.uniform(0.0, 2 * np.pi, 3)
            self.waves.append((weight, [np.sin(2 * np.pi * f * t + p).astype(np.float32)
                                        for t, f, p in zip(axes, freq, phase)]))
        self.blobs = []
        for _ in range(4):
            centre = rng.uniform(0.15, 0.85, 3)
            sigma = rng.uniform(0.06, 0.2, 3)
            amp = rng.uniform(0.5, 1.0)
            self.blobs.append((amp, [np.exp(-0.5 * ((t - c) / s) ** 2).astype(np.float32)
                                     for t, c, s in zip(axes, centre, sigma)]))

    def slab(self, z0: int, z1: int) -> Any:
        """The uint16 planes ``z0:z1`` of the volume (a NumPy array)."""
        import numpy as np

        _, ny, nx = self.shape
        wave = np.zeros((z1 - z0, ny, nx), np.float32)
        for weight, (wz, wy, wx) in self.waves:
            wave += (weight * wz[z0:z1, None, None]) * (wy[:, None] * wx[None, :])[None]
        blob = np.zeros_like(wave)
        for amp, (gz, gy, gx) in self.blobs:
            blob += (amp * gz[z0:z1, None, None]) * (gy[:, None] * gx[None, :])[None]
        np.minimum(blob, 1.0, out=blob)
        wave += 1.0
        wave *= 10000.0
        blob *= 25000.0
        wave += blob
        wave += 1000.0
        noise = np.random.default_rng([self.seed, z0]).integers(0, 256, size=wave.shape,
                                                                dtype=np.uint16)
        out = wave.astype(np.uint16)
        out += noise
        return out
