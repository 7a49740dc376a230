"""The CPU reduction alone: the NumPy path against the compiled kernels (issue 20, item 2).

For each method and shape, one call that reduces a whole uint16 array by 2 on every
downsampled axis, as ``downsample(x, 2)`` runs it:

``numpy``
    :func:`ngff_gpu.compute.reduce_numpy.reduce_full` (the oracle; one thread).
``compiled 1 thread``
    ``downsample(x, 2, method=...)`` with the kernels limited to one thread
    (``set_cpu_threads(1)``).
``compiled all threads``
    ``downsample(x, 2, method=...)`` on every thread of the machine.

Each is timed ``--repeat`` times after one warm-up call (the JIT's disk cache is
loaded, not measured); the fastest run is reported, with the process CPU seconds it
used (user + system, all threads) next to the wall time, because the machine may be
shared. ``GB/s per core`` is input bytes over CPU seconds; ``GB/s`` is input bytes over
wall seconds. The compiled result is checked to have the NumPy path's bits (outside the
timed region). ``--first-call`` also measures, in fresh processes, the cost of the first
call: with the disk cache as it is, and with an empty cache (the JIT compiles).

Usage::

    python benchmarks/bench_cpu_kernels.py [--repeat 3] [--methods gaussian,mean]
        [--first-call] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from _common import OUT_DIR, REPO, cpu_seconds, ensure_repo_on_path, git_revision, machine_info

ensure_repo_on_path()

import numpy as np  # noqa: E402

import ngff_gpu as nz  # noqa: E402
from ngff_gpu.compute import cpu_pool  # noqa: E402
from ngff_gpu.compute.methods import Methods  # noqa: E402
from ngff_gpu.compute.reduce_numpy import reduce_full  # noqa: E402
from ngff_gpu.compute.step import LevelStep  # noqa: E402

SHAPES = {"3-D 256x512x512": (256, 512, 512), "2-D 8192x8192": (8192, 8192)}
METHODS = ("gaussian", "mean", "nearest", "min", "max", "mode")

_FIRST_CALL = """
import time, numpy as np
import ngff_gpu as nz
x = np.arange(64 * 64 * 64, dtype=np.uint16).reshape(64, 64, 64)
t1, c1 = time.perf_counter(), time.process_time()
nz.downsample(x, 2)
t2, c2 = time.perf_counter(), time.process_time()
nz.downsample(x, 2)
t3 = time.perf_counter()
print(f"{t2 - t1:.3f} {c2 - c1:.3f} {t3 - t2:.4f}")
"""


def volume(shape: tuple[int, ...]) -> np.ndarray:
    """Smooth structure plus noise, uint16 (deterministic)."""
    rng = np.random.default_rng(0)
    grids = np.meshgrid(*[np.linspace(0, 6.0, n, dtype=np.float32) for n in shape],
                        indexing="ij", sparse=True)
    smooth = sum(np.sin(g * (k + 1)) for k, g in enumerate(grids))
    x = (20000 + 8000 * smooth).astype(np.uint16)
    x += rng.integers(0, 256, shape, dtype=np.uint16)
    return x


def timed(fn, repeat: int) -> tuple[float, float, np.ndarray]:
    """(wall s, CPU s) of the fastest of ``repeat`` calls after a warm-up, and a result."""
    out = fn()
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        c0, t0 = cpu_seconds(), time.perf_counter()
        out = fn()
        t1, c1 = time.perf_counter(), cpu_seconds()
        if t1 - t0 < best[0]:
            best = (t1 - t0, c1 - c0)
    return best[0], best[1], out


def first_call() -> dict[str, list[float]]:
    """Wall and CPU seconds of the first ``downsample`` (GAUSSIAN, uint16: it imports numba
    and loads or compiles the kernels) and wall seconds of the second, in fresh processes."""
    env = dict(os.environ)
    res = {}
    with tempfile.TemporaryDirectory() as empty:
        for name, extra in (("empty JIT cache", {"NUMBA_CACHE_DIR": empty}),
                            ("JIT cache as it is", {})):
            out = subprocess.run([sys.executable, "-c", _FIRST_CALL], cwd=REPO, check=True,
                                 capture_output=True, text=True, env={**env, **extra})
            res[name] = [float(v) for v in out.stdout.split()]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--first-call", action="store_true")
    ap.add_argument("--json", type=Path, default=OUT_DIR / "bench_cpu_kernels.json")
    args = ap.parse_args()

    load_before = os.getloadavg()
    threads = cpu_pool.machine_threads()
    rows = []
    for label, shape in SHAPES.items():
        x = volume(shape)
        gb = x.nbytes / 1e9
        for name in args.methods.split(","):
            method = Methods(name)
            step = LevelStep((2,) * len(shape), method)
            numpy_path = partial(reduce_full, x, step)
            compiled = partial(nz.downsample, x, 2, method=name)
            w_np, c_np, ref = timed(numpy_path, args.repeat)
            cpu_pool.set_cpu_threads(1)
            w_1, c_1, got = timed(compiled, args.repeat)
            cpu_pool.set_cpu_threads(None)
            w_n, c_n, got_n = timed(compiled, args.repeat)
            same = bool(np.array_equal(got, ref) and np.array_equal(got_n, ref))
            rows.append({"shape": label, "method": method.name, "bytes": x.nbytes,
                         "numpy": [w_np, c_np], "compiled_1": [w_1, c_1],
                         "compiled_all": [w_n, c_n], "threads": threads, "same_bits": same})
            print(f"{label:18s} {method.name:8s} numpy {gb / w_np:6.2f} GB/s ({gb / c_np:6.2f}/core)"
                  f" | compiled 1 thread {gb / w_1:6.2f} GB/s ({gb / c_1:6.2f}/core)"
                  f" | {threads} threads {gb / w_n:6.2f} GB/s (cpu {c_n:.3f} s)"
                  f" | bits {'equal' if same else 'DIFFER'}", flush=True)
    report = {"machine": machine_info(), "git": git_revision(), "load_before": load_before,
              "load_after": os.getloadavg(), "repeat": args.repeat, "rows": rows}
    if args.first_call:
        report["first_call"] = first_call()
        for name, (first, first_cpu, second) in report["first_call"].items():
            print(f"first downsample, {name}: {first:.2f} s ({first_cpu:.2f} s CPU); "
                  f"second {second:.4f} s")
    print(f"load average before {load_before}, after {report['load_after']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
