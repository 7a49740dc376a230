"""Read-side scaling: decode throughput of the engine's source readers against the
number of decoding threads.

For each input (the Zarr v3 and tiled TIFF inputs of ``bench_inputs.py``) and each
thread count, a fresh process reads the whole volume one chunk layer (128 planes)
at a time through the reader the engine uses:

``zarr``
    ``ngff_gpu.io.read_pipeline.parallel_source`` (the ``zarrs`` pipeline), its
    Rust thread pool sized by ``RAYON_NUM_THREADS``.
``tiff``
    ``ngff_gpu.io.inputs.tiff_tiles.TiffTiles(path, workers=N)``.

Each process reads the volume once to warm the page cache and its thread pool,
then reports the median of 3 timed reads. The machine's core count bounds what a
run can show: on 2 cores, 1 -> 2 threads.

Usage::

    python benchmarks/bench_read_scaling.py [--size 512] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import OUT_DIR, machine_info, versions  # noqa: E402

LAYER = 128


def child(kind: str, path: str, threads: int) -> dict:
    """Read ``path`` whole, layer by layer; return the median seconds of 3 reads."""
    import numpy as np

    if kind == "zarr":
        import zarr

        from ngff_gpu.io.read_pipeline import parallel_source

        src = parallel_source(zarr.open_array(path, mode="r"))
    else:
        from ngff_gpu.io.inputs.tiff_tiles import TiffTiles

        src = TiffTiles(path, workers=threads)
    n = src.shape[0]
    times = []
    for rep in range(4):
        t0 = time.perf_counter()
        total = 0
        for z in range(0, n, LAYER):
            total += int(np.asarray(src[z:z + LAYER]).nbytes)
        if rep:
            times.append(time.perf_counter() - t0)
    wall = statistics.median(times)
    return {"kind": kind, "threads": threads, "seconds": wall, "gb_per_s": total / wall / 1e9}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], int(args.child[2]))))
        return 0
    inputs = {"zarr": OUT_DIR / f"input_{args.size}_s0_r2_c128_zstd3.zarr",
              "tiff": OUT_DIR / f"input_{args.size}_s0_r2_t128_zlib.tif"}
    missing = [str(v) for v in inputs.values() if not v.exists()]
    if missing:
        print(f"run bench_inputs.py --sizes {args.size} first (missing: {missing})")
        return 2
    rows = []
    for kind, path in inputs.items():
        for t in (int(x) for x in args.threads.split(",")):
            env = dict(os.environ, RAYON_NUM_THREADS=str(t))
            out = subprocess.run([sys.executable, __file__, "--child", kind, str(path), str(t)],
                                 capture_output=True, text=True, env=env, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{kind:5s} {args.size}^3 threads {t}: {row['seconds']:.2f} s, "
                  f"{row['gb_per_s']:.2f} GB/s", flush=True)
    result = {"benchmark": "bench_read_scaling", "machine": machine_info(),
              "versions": versions(), "size": args.size, "results": rows}
    out = OUT_DIR / f"bench_read_scaling_{args.size}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
