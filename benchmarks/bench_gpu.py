"""GPU kernel bandwidth benchmark (docs/design.md section 6).

Device-resident ``size^3`` float32 and uint16 volumes (1024 by default); all
levels of factors [2, 4, 8] (each level from the previous one, relative factor
2) for GAUSSIAN and MEAN through :class:`CupyBackend`, timed with CUDA events
after a warm-up. Reports bytes read + written per second, the fraction of a
measured device-to-device copy of the same volume, and cuCIM's
``pyramid_reduce`` / ``downscale_local_mean`` level by level when cuCIM imports.

Usage: ``python benchmarks/bench_gpu.py [--size 512] [--repeat 5] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ngff_gpu.compute.methods import Methods  # noqa: E402
from ngff_gpu.compute.step import LevelStep  # noqa: E402

LEVEL_FACTORS = (2, 4, 8)


def time_events(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> float:
    """Median seconds of ``fn`` over ``repeat`` runs, timed with CUDA events."""
    import cupy

    for _ in range(warmup):
        fn()
    cupy.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(repeat):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return statistics.median(times)


def pyramid_bytes(shape: tuple[int, ...], itemsize: int) -> int:
    """Bytes read + written by the cumulative pyramid (each level read once, written once)."""
    total = 0
    cur = shape
    prev = 1
    for f in LEVEL_FACTORS:
        rel = f // prev
        nxt = tuple(n // rel for n in cur)
        total += (_prod(cur) + _prod(nxt)) * itemsize
        cur, prev = nxt, f
    return total


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


def run_ours(backend: Any, x: Any, method: Methods) -> Any:
    """All levels, each from the previous one, on the backend's stream."""
    cur = x
    prev = 1
    for f in LEVEL_FACTORS:
        rel = f // prev
        step = LevelStep((rel,) * cur.ndim, method)
        region = tuple((0, s) for s in step.out_shape(cur.shape))
        cur = backend.reduce_region(cur, step, (0,) * cur.ndim, cur.shape, region)
        prev = f
    return cur


def cucim_runner(method: Methods) -> Callable[[Any], Any] | None:
    """cuCIM's level-by-level equivalent, or None when cuCIM is missing."""
    try:
        from cucim.skimage.transform import downscale_local_mean, pyramid_reduce
    except Exception:  # noqa: BLE001 - any import failure: no cuCIM
        return None

    def run(x: Any) -> Any:
        cur = x
        for _ in LEVEL_FACTORS:
            if method is Methods.GAUSSIAN:
                cur = pyramid_reduce(cur, downscale=2, preserve_range=True)
            else:
                cur = downscale_local_mean(cur, (2,) * cur.ndim)
        return cur

    return run


def bench(size: int, repeat: int) -> dict[str, Any]:
    """Run every case; returns the JSON-able result."""
    import cupy

    from ngff_gpu.compute.backends.cupy_backend import CupyBackend

    backend = CupyBackend(stream=cupy.cuda.get_current_stream())
    props = cupy.cuda.runtime.getDeviceProperties(backend.device_id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    result: dict[str, Any] = {"device": name, "size": size, "factors": list(LEVEL_FACTORS),
                              "cases": []}
    rng = cupy.random.default_rng(0)
    for dtype in ("float32", "uint16"):
        shape = (size,) * 3
        if dtype == "float32":
            x = rng.standard_normal(shape, dtype=cupy.float32)
        else:
            x = rng.integers(0, 65535, shape, dtype=cupy.uint16)
        copy_s = time_events(lambda x=x: cupy.copyto(cupy.empty_like(x), x), repeat)
        copy_bw = 2 * x.nbytes / copy_s
        nbytes = pyramid_bytes(shape, x.itemsize)
        for method in (Methods.GAUSSIAN, Methods.MEAN):
            ours_s = time_events(lambda x=x, m=method: run_ours(backend, x, m), repeat)
            ours_bw = nbytes / ours_s
            case: dict[str, Any] = {
                "dtype": dtype, "method": method.name, "seconds": ours_s,
                "bytes": nbytes, "bandwidth_GBps": ours_bw / 1e9,
                "copy_bandwidth_GBps": copy_bw / 1e9, "fraction_of_copy": ours_bw / copy_bw,
                "cucim": None,
            }
            runner = cucim_runner(method)
            if runner is not None:
                try:
                    xin = x.astype(cupy.float32) if method is Methods.GAUSSIAN else x
                    cu_s = time_events(lambda xin=xin, r=runner: r(xin), repeat)
                    case["cucim"] = {"seconds": cu_s, "speedup": cu_s / ours_s}
                except Exception as exc:  # noqa: BLE001 - record, do not abort the run
                    case["cucim"] = {"error": repr(exc)}
            result["cases"].append(case)
    return result


def print_table(result: dict[str, Any]) -> None:
    """One line per case."""
    print(f"device: {result['device']}  size: {result['size']}^3  levels: {result['factors']}")
    print(f"{'dtype':8} {'method':9} {'ms':>9} {'GB/s':>8} {'copy GB/s':>10} {'of copy':>8} "
          f"{'cuCIM x':>8}")
    for c in result["cases"]:
        cu = c["cucim"]
        speed = f"{cu['speedup']:.2f}" if cu and "speedup" in cu else "-"
        print(f"{c['dtype']:8} {c['method']:9} {c['seconds'] * 1e3:9.3f} "
              f"{c['bandwidth_GBps']:8.1f} {c['copy_bandwidth_GBps']:10.1f} "
              f"{c['fraction_of_copy']:8.1%} {speed:>8}")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="edge of the cubic volume")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    result = bench(args.size, args.repeat)
    print_table(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
