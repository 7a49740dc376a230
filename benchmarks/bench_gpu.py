"""GPU kernel bandwidth and cuCIM per level (docs/design.md section 6, GPU targets).

Kernels: for every method (GAUSSIAN, MEAN, NEAREST, MODE, MIN, MAX) and dtype (uint8,
uint16, float32; MODE takes integers only), one 3-D level at factor 2 of a device-resident
volume of about ``--gib`` GiB, through :class:`CupyBackend.reduce_region` exactly as the
engine calls it, timed with CUDA events on the backend's stream (median of ``--repeat``
after warm-ups). Reported: GB/s of input read plus output written (the fewest bytes a
level must move), next to a device-to-device copy of the same input measured in the same
run (``2 * nbytes / time``: read plus write); target at least 70% of the copy.

cuCIM per level: levels 1..3 of factors [2, 4, 8], each from the previous level (ours),
and cuCIM's nearest function on the same input array: ``pyramid_reduce(downscale=2,
preserve_range=True)`` for GAUSSIAN, ``downscale_local_mean`` for MEAN,
``block_reduce(func=cupy.min / cupy.max)`` for MIN / MAX, ``rescale(0.5, order=0)`` for
NEAREST; MODE has no cuCIM peer. Target: ours at least 2x faster per level. cuCIM runs on
the backend's stream so the same events time it.

``--rehearsal`` runs the same code on the CPU with small sizes (see :mod:`_gpu`); its
numbers are not measurements.

Usage: ``python benchmarks/bench_gpu.py [--gib 1] [--repeat 20] [--json PATH] [--rehearsal]``
"""

from __future__ import annotations

import argparse
import math
import sys
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _gpu import Device, gbps, write_json  # noqa: E402

from ngff_gpu.compute.methods import Methods, methods_for_dtype  # noqa: E402
from ngff_gpu.compute.step import LevelStep  # noqa: E402

DTYPES = ("uint8", "uint16", "float32")
METHODS = (Methods.GAUSSIAN, Methods.MEAN, Methods.NEAREST, Methods.MODE, Methods.MIN,
           Methods.MAX)
COPY_TARGET = 0.7
CUCIM_TARGET = 2.0


def volume_shape(nbytes: int, itemsize: int) -> tuple[int, int, int]:
    """A 3-D shape of about ``nbytes``: powers of two, x the longest axis, z the shortest."""
    e = max(3, int(math.log2(max(8, nbytes // itemsize))))
    ex = -(-e // 3)
    ey = -(-(e - ex) // 2)
    return (2 ** (e - ex - ey), 2 ** ey, 2 ** ex)


def make_data(dev: Device, shape: tuple[int, ...], dtype: str, seed: int) -> Any:
    """Random device data (never zeros: METHOD.md): full-range integers, or normal
    floats times 1000."""
    if dev.rehearsal:
        rng = np.random.default_rng(seed)
        host = (rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
                if dtype != "float32" else (rng.standard_normal(shape) * 1000).astype(dtype))
        return dev.put(host)
    import cupy

    rng = cupy.random.default_rng(seed)
    if dtype == "float32":
        x = rng.standard_normal(shape, dtype=cupy.float32)
        x *= 1000
    else:  # uniform over the type's range, through float32 (every CuPy supports that)
        top = np.iinfo(dtype).max
        u = rng.random(shape, dtype=cupy.float32)
        u *= top + 1
        x = cupy.minimum(u, top).astype(dtype)
        del u
    dev.sync()
    return x


def level(dev: Device, x: Any, method: Methods) -> Any:
    """One level at factor 2 on every axis, the whole output region."""
    step = LevelStep((2,) * x.ndim, method)
    region = tuple((0, s) for s in step.out_shape(x.shape))
    return dev.backend.reduce_region(x, step, (0,) * x.ndim, x.shape, region)


def cucim_peer(method: Methods) -> tuple[str, Any] | None:
    """(name, function of a device array) of cuCIM's nearest equivalent, None if none."""
    import cupy
    from cucim.skimage.measure import block_reduce
    from cucim.skimage.transform import downscale_local_mean, pyramid_reduce, rescale

    peers = {
        Methods.GAUSSIAN: ("pyramid_reduce(downscale=2, preserve_range=True)",
                           lambda x: pyramid_reduce(x, downscale=2, preserve_range=True)),
        Methods.MEAN: ("downscale_local_mean(2)", lambda x: downscale_local_mean(x, 2)),
        Methods.MIN: ("block_reduce(2, cupy.min)", lambda x: block_reduce(x, 2, func=cupy.min)),
        Methods.MAX: ("block_reduce(2, cupy.max)", lambda x: block_reduce(x, 2, func=cupy.max)),
        Methods.NEAREST: ("rescale(0.5, order=0)",
                          lambda x: rescale(x, 0.5, order=0, preserve_range=True,
                                            anti_aliasing=False)),
    }
    return peers.get(method)


def bench(gib: float, repeat: int, rehearsal: bool, out: Path | None) -> dict[str, Any]:
    dev = Device(rehearsal)
    result: dict[str, Any] = {
        "benchmark": "bench_gpu", "device": dev.name, "rehearsal": rehearsal,
        "config": {"gib": gib, "repeat": repeat, "factor": 2, "dtypes": list(DTYPES),
                   "methods": [m.name for m in METHODS]},
        "targets": {"fraction_of_copy": COPY_TARGET, "cucim_speedup": CUCIM_TARGET},
        "copy": {}, "kernels": [], "cucim": {"available": False, "levels": []}, "errors": [],
    }
    if not rehearsal:
        try:
            import cucim

            cucim_peer(Methods.MEAN)  # imports cucim.skimage
            result["cucim"].update(available=True, version=cucim.__version__)
        except Exception as exc:  # noqa: BLE001 - recorded; the kernels still run
            result["cucim"]["error"] = f"{type(exc).__name__}: {exc}"
    else:
        result["cucim"]["error"] = "not in a rehearsal (cuCIM needs CuPy and a GPU)"

    def save() -> None:
        if out is not None:
            write_json(out, result)

    for di, dtype in enumerate(DTYPES):
        bench_dtype(dev, dtype, di, gib, repeat, result, save)
    return result


def bench_dtype(dev: Device, dtype: str, seed: int, gib: float, repeat: int,
                result: dict[str, Any], save: Any) -> None:
    """The copy and every method of one dtype, on one device volume."""
    shape = volume_shape(int(gib * (1 << 30)), np.dtype(dtype).itemsize)
    try:
        x = make_data(dev, shape, dtype, seed=seed)
        dst = dev.empty_like(x)
        t = dev.time(lambda: dev.copy_into(dst, x), repeat)
        copy_bw = gbps(2 * x.nbytes, t["median_s"])
        result["copy"][dtype] = {"shape": list(shape), "bytes": 2 * x.nbytes, **t,
                                 "GBps": copy_bw}
    except Exception as exc:  # noqa: BLE001
        result["errors"].append(f"{dtype} data/copy: {traceback.format_exc(limit=3)}")
        print(f"{dtype}: {type(exc).__name__}: {exc}", flush=True)
        save()
        return
    for method in METHODS:
        if method not in methods_for_dtype(np.dtype(dtype)):
            continue
        row: dict[str, Any] = {"method": method.name, "dtype": dtype, "shape": list(shape)}
        try:
            y = level(dev, x, method)
            row.update(in_bytes=x.nbytes, out_bytes=y.nbytes)
            t = dev.time(lambda m=method: level(dev, x, m), repeat)
            bw = gbps(x.nbytes + y.nbytes, t["median_s"])
            row.update(t, GBps=bw, copy_GBps=copy_bw,
                       fraction_of_copy=bw / copy_bw if bw and copy_bw else None)
            row["pass"] = (row["fraction_of_copy"] or 0) >= COPY_TARGET
            result["kernels"].append(row)
            print(f"{method.name:9} {dtype:8} {t['median_s'] * 1e3:9.3f} ms {bw:9.3f} GB/s "
                  f"({row['fraction_of_copy']:.0%} of copy {copy_bw:.1f})", flush=True)
            if result["cucim"]["available"]:
                cucim_levels(dev, x, method, dtype, repeat, result)
        except Exception as exc:  # noqa: BLE001 - one case failing does not end the run
            row["error"] = f"{type(exc).__name__}: {exc}"
            result["kernels"].append(row)
            result["errors"].append(f"{method.name} {dtype}: {traceback.format_exc(limit=3)}")
            print(f"{method.name} {dtype}: {row['error']}", flush=True)
        save()


def cucim_levels(dev: Device, x: Any, method: Methods, dtype: str, repeat: int,
                 result: dict[str, Any]) -> None:
    """Levels 1..3, each from the previous one: ours and cuCIM on the same input array."""
    peer = cucim_peer(method)
    if peer is None:
        result["cucim"]["levels"].append({"method": method.name, "dtype": dtype,
                                          "peer": None, "note": "cuCIM has no such reduction"})
        return
    name, fn = peer
    cur = x
    for k in (1, 2, 3):
        row: dict[str, Any] = {"method": method.name, "dtype": dtype, "level": k,
                               "in_shape": list(cur.shape), "peer": name}
        try:
            reps = min(repeat, 5)  # cuCIM's first calls compile (CuPy's JIT): keep it short
            ours = dev.time(lambda c=cur: level(dev, c, method), reps)
            with dev.backend.stream:
                theirs = dev.time(lambda c=cur: fn(c), reps)
            row.update(ours_s=ours["median_s"], cucim_s=theirs["median_s"],
                       speedup=theirs["median_s"] / ours["median_s"])
            row["pass"] = row["speedup"] >= CUCIM_TARGET
            print(f"  level {k} {method.name:9} {dtype:8} ours {ours['median_s'] * 1e3:8.3f} ms"
                  f"  cuCIM {theirs['median_s'] * 1e3:8.3f} ms  x{row['speedup']:.2f}", flush=True)
        except Exception as exc:  # noqa: BLE001
            row["error"] = f"{type(exc).__name__}: {exc}"
        result["cucim"]["levels"].append(row)
        cur = level(dev, cur, method)
        if min(cur.shape) < 2:
            break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="GiB of each input volume")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per case (median)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--rehearsal", action="store_true", help="CPU rehearsal, small sizes")
    args = parser.parse_args(argv)
    if args.rehearsal:
        args.gib, args.repeat = min(args.gib, 1 / 1024), min(args.repeat, 2)
    result = bench(args.gib, args.repeat, args.rehearsal, args.json)
    if args.json is not None:
        write_json(args.json, result)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
