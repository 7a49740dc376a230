"""Peak-memory benchmark: a large input from a Zarr store (docs/design.md section 6, memory target).

For each input size (GiB of uint16; default 0.5 and 4, i.e. 512x512x1024 and
1024x1024x2048) the parent writes a deterministic smooth-plus-noise volume
(:class:`_common.VolumeRecipe`) to a Zarr v3 store on disk one z-slab at a
time, never holding the volume in memory. A fresh child process per size then
converts it, timed and with its peak RSS (``VmHWM``) reported::

    zarr.open_array -> ngff_gpu.to_ngff_image -> ngff_gpu.to_multiscales(..., [2, 4, 8], chunks=64)
    -> ngff_gpu.to_ngff_zarr(...)      # default memory_limit, default device

Afterwards (outside the timed region) the output is checked with
``validate_store`` and level 0 is compared with the input on a few slabs.
Reported: wall time, peak RSS per size, the ratio of the largest to the
smallest size's peak and the targets (ratio <= 1.2, largest peak < 2 GiB).

Usage::

    python benchmarks/bench_memory.py [--sizes 0.5,4] [--small] [--keep] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    GIB,
    MIB,
    OUT_DIR,
    RECIPE_VERSION,
    VolumeRecipe,
    current_rss_bytes,
    dir_size_bytes,
    free_disk_bytes,
    machine_info,
    peak_rss_bytes,
    remove_tree,
    run_child,
    versions,
)

FACTORS = [2, 4, 8]
DIMS = ["z", "y", "x"]
SMALL_SIZES = (1 / 64, 1 / 8)  # 128x128x512 and 256x256x1024: a quick smoke run
RATIO_BOUND = 1.2
PEAK_BOUND_BYTES = 2 * GIB
# output pyramid ~1.15x the input (levels 1/8 + 1/64 + ...), stored compressed; plus margin
DISK_FACTOR = 2.3
DISK_MARGIN = 1 * GIB


def shape_for(gib: float) -> tuple[int, int, int]:
    """A ``(z, y, x)`` uint16 shape of about ``gib`` GiB with ``y = x`` a power of two, ``z ~ 2x``.

    0.5 gives 1024x512x512 and 4 gives 2048x1024x1024 (exactly those sizes).
    """
    n = gib * GIB / 2
    side = 2 ** max(4, round(math.log2((n / 2) ** (1 / 3))))
    z = max(64, int(round(n / side ** 2 / 64)) * 64)
    return (z, side, side)


def generate_store(path: Path, shape: tuple[int, int, int], seed: int, chunks: int,
                   level: int = 1) -> float:
    """Write the test volume to a Zarr v3 array at ``path``, one z-slab of ``chunks`` planes at a time.

    Parameters
    ----------
    path : pathlib.Path
        Store directory (replaced when present).
    shape : tuple of int
        Volume shape ``(z, y, x)``.
    seed : int
        Seed of :class:`_common.VolumeRecipe`.
    chunks : int
        Chunk edge of the input store (and slab height).
    level : int
        zstd level of the input store (1: fast).

    Returns
    -------
    float
        Seconds taken.
    """
    import zarr
    from zarr.codecs import ZstdCodec

    t0 = time.perf_counter()
    remove_tree(path)
    recipe = VolumeRecipe(shape, seed)
    arr = zarr.create_array(str(path), shape=shape, dtype=np.uint16, chunks=(chunks,) * 3,
                            compressors=ZstdCodec(level=level), dimension_names=DIMS, zarr_format=3)
    sub = 32  # planes computed at once (float32 temporaries stay small)
    for z0 in range(0, shape[0], chunks):
        z1 = min(shape[0], z0 + chunks)
        buf = np.empty((z1 - z0, *shape[1:]), np.uint16)
        for s0 in range(z0, z1, sub):
            buf[s0 - z0:min(z1, s0 + sub) - z0] = recipe.slab(s0, min(z1, s0 + sub))
        arr[z0:z1] = buf
    arr.attrs["bench_memory"] = {"shape": list(shape), "seed": seed, "recipe": RECIPE_VERSION,
                                 "complete": True}
    return time.perf_counter() - t0


def input_is_complete(path: Path, shape: tuple[int, int, int], seed: int) -> bool:
    """Whether ``path`` holds a finished input store for ``shape`` and ``seed`` (for ``--keep`` reuse)."""
    import zarr

    try:
        attrs = dict(zarr.open_array(str(path), mode="r").attrs).get("bench_memory", {})
    except Exception:
        return False
    return (attrs.get("complete") is True and attrs.get("shape") == list(shape)
            and attrs.get("seed") == seed and attrs.get("recipe") == RECIPE_VERSION)


def child_main(src: Path, out: Path, chunks: int, device: str) -> dict[str, Any]:
    """Convert ``src`` to an OME-Zarr pyramid at ``out`` in this fresh process; report time and RSS.

    Imports happen before the clock starts. ``to_ngff_zarr`` runs with its
    default ``memory_limit``.

    Returns
    -------
    dict
        ``wall_s``, ``peak_rss_bytes`` (``VmHWM``) and ``rss_before_bytes``.
    """
    import zarr

    import ngff_gpu as nz

    rss_before = current_rss_bytes()
    t0 = time.perf_counter()
    arr = zarr.open_array(str(src), mode="r")
    image = nz.to_ngff_image(arr, dims=DIMS)
    ms = nz.to_multiscales(image, FACTORS, chunks=chunks)
    nz.to_ngff_zarr(str(out), ms, device=device)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "peak_rss_bytes": peak_rss_bytes(), "rss_before_bytes": rss_before}


def verify_output(src: Path, out: Path, slabs: int = 3, step: int = 64) -> dict[str, Any]:
    """``validate_store`` the output and compare level 0 with the input on a few z-slabs."""
    import zarr

    import ngff_gpu

    result: dict[str, Any] = {"valid": False}
    try:
        result["ome_version"] = ngff_gpu.validate_store(str(out))
        group = zarr.open_group(str(out), mode="r")
        datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
        level0 = group[datasets[0]["path"]]
        result["level_shapes"] = [list(group[d["path"]].shape) for d in datasets]
        source = zarr.open_array(str(src), mode="r")
        nz_ = source.shape[0]
        starts = sorted({0, max(0, (nz_ // 2 // step) * step), max(0, nz_ - step)})[:slabs]
        equal = level0.shape == source.shape and all(
            np.array_equal(level0[z:z + step], source[z:z + step]) for z in starts)
        result["level0_equal_slabs"] = bool(equal)
        result["valid"] = bool(equal)
    except Exception as exc:  # report, do not abort
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child`` is the internal per-size mode)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="0.5,4", help="input sizes in GiB of uint16, comma list")
    p.add_argument("--small", action="store_true",
                   help="quick smoke run: sizes 1/64 and 1/8 GiB (targets reported, not meaningful)")
    p.add_argument("--chunks", type=int, default=64, help="output chunk edge (64)")
    p.add_argument("--input-chunks", type=int, default=128, help="chunk edge of the input store")
    p.add_argument("--device", default="auto", help="to_ngff_zarr device (auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=OUT_DIR / "memory", help="inputs and outputs")
    p.add_argument("--json", type=Path, default=OUT_DIR / "bench_memory.json")
    p.add_argument("--keep", action="store_true",
                   help="keep inputs and outputs (an existing complete input is reused)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per size before kill")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the memory benchmark (parent) or one conversion (``--child``)."""
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child_main(args.src, args.out, args.chunks, args.device)), flush=True)
        return 0

    sizes = list(SMALL_SIZES) if args.small else [float(s) for s in args.sizes.split(",") if s.strip()]
    sizes.sort()
    shapes = [shape_for(g) for g in sizes]
    nbytes = [int(np.prod(s)) * 2 for s in shapes]
    need = (sum(nbytes) if args.keep else max(nbytes)) * DISK_FACTOR + DISK_MARGIN
    free = free_disk_bytes(args.workdir)
    print(f"sizes {[f'{b / GIB:.3g} GiB {s}' for b, s in zip(nbytes, shapes)]}; "
          f"disk needed ~{need / GIB:.1f} GiB, free {free / GIB:.1f} GiB", flush=True)
    if free < need:
        raise SystemExit(f"not enough free disk under {args.workdir}: need ~{need / GIB:.1f} GiB, "
                         f"have {free / GIB:.1f} GiB")
    args.workdir.mkdir(parents=True, exist_ok=True)

    rows: list[dict[str, Any]] = []
    for gib, shape, nb in zip(sizes, shapes, nbytes):
        tag = "x".join(map(str, shape))
        src = args.workdir / f"input_{tag}_s{args.seed}.zarr"
        out = args.workdir / f"output_{tag}.ome.zarr"
        row: dict[str, Any] = {"size_gib": nb / GIB, "requested_gib": gib, "shape": list(shape),
                               "input_bytes": nb}
        if args.keep and input_is_complete(src, shape, args.seed):
            row["generate_s"] = None
            print(f"{tag}: reusing {src}", flush=True)
        else:
            row["generate_s"] = generate_store(src, shape, args.seed, args.input_chunks)
            print(f"{tag}: generated input in {row['generate_s']:.1f} s "
                  f"({dir_size_bytes(src) / MIB:.0f} MiB on disk)", flush=True)
        remove_tree(out)
        res = run_child(__file__, ["--child", "--src", str(src), "--out", str(out),
                                   "--chunks", str(args.chunks), "--device", args.device],
                        timeout=args.timeout)
        row.update(res)
        if "wall_s" in res:
            row["input_gb_per_s"] = nb / res["wall_s"] / 1e9
            row["verify"] = verify_output(src, out)
            print(f"{tag}: {res['wall_s']:.1f} s, peak RSS {res['peak_rss_bytes'] / MIB:.0f} MiB "
                  f"(after imports {res['rss_before_bytes'] / MIB:.0f} MiB); verify {row['verify']}",
                  flush=True)
        else:
            print(f"{tag}: ERROR {res['error'][-1000:]}", flush=True)
        if not args.keep:
            remove_tree(out)
            remove_tree(src)
        rows.append(row)

    ok = [r for r in rows if "wall_s" in r]
    ratio = (ok[-1]["peak_rss_bytes"] / ok[0]["peak_rss_bytes"]) if len(ok) >= 2 else None
    largest = ok[-1]["peak_rss_bytes"] if ok else None
    targets = [
        {"target": "peak_ratio_largest_vs_smallest", "bound": RATIO_BOUND, "value": ratio,
         "pass": None if ratio is None else ratio <= RATIO_BOUND},
        {"target": "largest_peak_below_2GiB", "bound": PEAK_BOUND_BYTES, "value": largest,
         "pass": None if largest is None else largest < PEAK_BOUND_BYTES},
    ]

    print()
    header = f"{'input':<22} {'GiB':>6} {'wall s':>8} {'GB/s in':>8} {'peak RSS MiB':>13} {'valid':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        tag = "x".join(map(str, r["shape"]))
        if "wall_s" not in r:
            print(f"{tag:<22} {r['size_gib']:>6.3g} ERROR")
            continue
        print(f"{tag:<22} {r['size_gib']:>6.3g} {r['wall_s']:>8.1f} {r['input_gb_per_s']:>8.3f} "
              f"{r['peak_rss_bytes'] / MIB:>13.0f} {str(r['verify'].get('valid')):>6}")
    print()
    print(f"peak ratio largest/smallest: {'-' if ratio is None else f'{ratio:.2f}'} "
          f"(target <= {RATIO_BOUND}) {targets[0]['pass']}")
    print(f"largest peak: {'-' if largest is None else f'{largest / MIB:.0f} MiB'} "
          f"(target < 2048 MiB) {targets[1]['pass']}")
    if args.small:
        print("(--small smoke run: the targets are meant for the 0.5 / 4 GiB run)")

    report = {
        "benchmark": "bench_memory",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {"sizes_gib": sizes, "small": args.small, "dtype": "uint16", "factors": FACTORS,
                   "chunks": args.chunks, "input_chunks": args.input_chunks,
                   "input_codec": "zstd level 1", "output": "ngff_gpu defaults (OME-Zarr 0.5, zstd 3)",
                   "memory_limit": "default", "device": args.device, "seed": args.seed},
        "machine": machine_info(),
        "versions": versions(),
        "results": rows,
        "targets": targets,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
