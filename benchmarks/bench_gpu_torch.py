"""``downsample`` / ``pyramid`` on a torch CUDA tensor: time per call, and proof that
nothing crossed to the host.

Cases: a ``--size``^3 float32 and uint8 CUDA tensor (random, never zeros); GAUSSIAN and
MEAN (and MODE for uint8); ``downsample(t, 2)`` and ``pyramid(t, [2, 4, 8])``. A call is
timed from a synchronized device to the result ready (``torch.cuda.synchronize()``
before and after: our kernels run on the CUDA backend's own stream), median of
``--repeat`` after warm-ups.

Proof that nothing crossed to the host, per case, over its warm-up and timed calls:

* the CUDA activity torch's profiler records (CUPTI, process-wide, so CuPy's copies too):
  device-to-host and host-to-device memcpy events counted; a positive control first
  profiles a CuPy device-to-host copy and must see it, else the count proves nothing and
  is reported as unavailable;
* call counters on every way our code copies to the host: ``CupyBackend.to_host``,
  ``cupy.asnumpy``, ``torch.Tensor.cpu`` / ``.numpy``;
* CuPy's pinned-memory pool (what ``to_host`` allocates from): free blocks before/after;
* the results are CUDA tensors on the input's device, and equal the NumPy path's
  (checked after the clock, through ``.cpu()``).

``--rehearsal`` runs CPU tensors through the same code (no device, so no proof).

Usage: ``python benchmarks/bench_gpu_torch.py [--size 512] [--repeat 10] [--json PATH]
[--rehearsal]``
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _gpu import write_json  # noqa: E402

CASES = [("float32", "gaussian"), ("float32", "mean"), ("uint8", "gaussian"), ("uint8", "mean"),
         ("uint8", "mode")]


class HostGuard:
    """Counts calls of every function through which our code copies to the host."""

    def __init__(self, torch: Any, on_device: bool) -> None:
        self.counts: dict[str, int] = {}
        self._patches: list[tuple[Any, str, Any]] = []
        targets = [(torch.Tensor, "cpu"), (torch.Tensor, "numpy")]
        if on_device:
            import cupy

            from ngff_gpu.compute.backends.cupy_backend import CupyBackend

            targets += [(CupyBackend, "to_host"), (cupy, "asnumpy")]
        for owner, name in targets:
            self._wrap(owner, name)

    def _wrap(self, owner: Any, name: str) -> None:
        real = getattr(owner, name)
        key = f"{getattr(owner, '__name__', owner)}.{name}"
        self.counts[key] = 0

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[key] += 1
            return real(*args, **kwargs)

        setattr(owner, name, counted)
        self._patches.append((owner, name, real))

    def restore(self) -> None:
        for owner, name, real in reversed(self._patches):
            setattr(owner, name, real)


def memcpy_counts(prof: Any) -> dict[str, int]:
    """Memcpy activities by direction in a torch profile (names like ``Memcpy DtoH``)."""
    counts = {"DtoH": 0, "HtoD": 0, "DtoD": 0, "kernels": 0}
    for ev in prof.events():
        name = ev.name
        for key in ("DtoH", "HtoD", "DtoD"):
            if "Memcpy" in name and key in name:
                counts[key] += 1
        if str(getattr(ev, "device_type", "")).endswith("CUDA") and "Memcpy" not in name \
                and "Memset" not in name:
            counts["kernels"] += 1
    return counts


def profiler(torch: Any, on_device: bool) -> Any:
    if not on_device:
        return contextlib.nullcontext()
    from torch.profiler import ProfilerActivity, profile

    return profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])


def run_case(torch: Any, nz: Any, dtype: str, method: str, size: int, repeat: int,
             on_device: bool, control_sees_copies: bool | None) -> dict[str, Any]:
    dev = "cuda" if on_device else "cpu"
    g = torch.Generator(device=dev).manual_seed(0)
    shape = (size,) * 3
    if dtype == "float32":
        t = torch.randn(shape, generator=g, device=dev, dtype=torch.float32) * 1000
    else:
        t = torch.randint(0, 256, shape, generator=g, device=dev, dtype=torch.uint8)
    row: dict[str, Any] = {"dtype": dtype, "method": method, "shape": list(shape),
                           "bytes": t.numel() * t.element_size()}
    calls = {"downsample": lambda: nz.downsample(t, 2, method=method),
             "pyramid": lambda: nz.pyramid(t, [2, 4, 8], method=method)}
    sync = torch.cuda.synchronize if on_device else (lambda: None)
    pool = None
    if on_device:
        import cupy

        pool = cupy.get_default_pinned_memory_pool()
    outs: dict[str, Any] = {}
    guard = HostGuard(torch, on_device)
    free_before = pool.n_free_blocks() if pool is not None else None
    try:
        with profiler(torch, on_device) as prof:
            for name, fn in calls.items():
                for _ in range(2):
                    outs[name] = fn()
                sync()
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    outs[name] = fn()
                    sync()
                    times.append(time.perf_counter() - t0)
                row[name] = {"median_s": statistics.median(times), "min_s": min(times),
                             "repeat": repeat}
    finally:
        guard.restore()
    row["host_calls"] = guard.counts
    if pool is not None:
        row["pinned_pool_free_blocks"] = [free_before, pool.n_free_blocks()]
    if on_device:
        row["profiler"] = memcpy_counts(prof)
        row["profiler_sees_copies"] = control_sees_copies
        row["nothing_crossed_to_host"] = (
            sum(guard.counts.values()) == 0
            and (row["profiler"]["DtoH"] == 0 if control_sees_copies else None))
    levels = [outs["downsample"]] + list(outs["pyramid"][1:])
    row["outputs_on_input_device"] = all(
        isinstance(o, torch.Tensor) and o.device == t.device for o in levels)
    host = t.cpu().numpy()
    ref = [nz.downsample(host, 2, method=method)] + list(nz.pyramid(host, [2, 4, 8],
                                                                    method=method)[1:])
    row["equal_to_numpy_path"] = all(
        np.array_equal(o.cpu().numpy(), r, equal_nan=True) for o, r in zip(levels, ref))
    return row


def control(torch: Any) -> bool | None:
    """Does the profiler see a device-to-host copy made by CuPy (what our backend would
    use)? None when it could not run."""
    try:
        import cupy

        x = cupy.ones(1 << 20, dtype=cupy.float32)
        with profiler(torch, True) as prof:
            x.get()
            cupy.cuda.Device().synchronize()
        return memcpy_counts(prof)["DtoH"] > 0
    except Exception:  # noqa: BLE001 - reported as unknown
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--rehearsal", action="store_true")
    args = p.parse_args(argv)
    if args.rehearsal:
        args.size, args.repeat = 32, 2
    result: dict[str, Any] = {"benchmark": "bench_gpu_torch", "rehearsal": args.rehearsal,
                              "config": {"size": args.size, "repeat": args.repeat},
                              "cases": [], "errors": []}

    def save() -> None:
        if args.json is not None:
            write_json(args.json, result)

    try:
        import torch

        import ngff_gpu as nz
    except Exception:  # noqa: BLE001
        if args.rehearsal:  # a rehearsal interpreter without torch: nothing to rehearse
            result["skipped"] = "torch does not import: " + traceback.format_exc(limit=1)
            save()
            return 0
        result["errors"].append(traceback.format_exc(limit=2))
        save()
        return 1
    on_device = not args.rehearsal
    if on_device and not torch.cuda.is_available():
        result["errors"].append("torch sees no CUDA device")
        save()
        return 1
    result["torch"] = torch.__version__
    seen = control(torch) if on_device else None
    result["profiler_sees_copies"] = seen
    for dtype, method in CASES:
        try:
            row = run_case(torch, nz, dtype, method, args.size, args.repeat, on_device, seen)
            print(f"torch {dtype:8} {method:9} downsample {row['downsample']['median_s'] * 1e3:8.3f}"
                  f" ms  pyramid {row['pyramid']['median_s'] * 1e3:8.3f} ms  host calls "
                  f"{sum(row['host_calls'].values())}  profiler {row.get('profiler')}  equal "
                  f"{row['equal_to_numpy_path']}", flush=True)
        except Exception:  # noqa: BLE001 - one case failing keeps the others
            row = {"dtype": dtype, "method": method, "error": traceback.format_exc(limit=4)}
            result["errors"].append(row["error"])
            print(row["error"], flush=True)
        result["cases"].append(row)
        save()
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
