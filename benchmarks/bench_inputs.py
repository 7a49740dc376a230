"""Pyramids from real inputs: in memory, Zarr v3 and tiled TIFF, next to the fastest plain copy.

For each size (512^3 and 1024^3 uint16 by default) and input kind:

``memory``
    The volume loaded into RAM (before the clock starts).
``zarr``
    A Zarr v3 array on disk, chunks 128^3, zstd (the output codec and level).
``tiff``
    A tiled TIFF on disk, one page per z-plane, tiles 128x128, deflate (zlib
    level 6: the most common compression of tiled TIFFs; decoded by ``imagecodecs``,
    a dependency, on both sides).

cases, each in its own fresh process (peak RSS is ``VmHWM`` of that process):

``ngff_gpu_gaussian`` / ``ngff_gpu_mean``
    ``to_ngff_image`` -> ``to_multiscales(..., [2, 4, 8], chunks=128, method)`` ->
    ``to_ngff_zarr(..., device="cpu")`` with the default ``memory_limit``. The
    Zarr input is ``zarr.open_array``; the TIFF input is
    ``ngff_gpu.io.inputs.open_input`` (the CLI's opener). Decodes per chunk: Zarr,
    the engine's count of source chunks decoded in pass 0; TIFF, the tile decodes of
    the TIFF tile reader (``TiffTiles._decode``, counted by a wrapper) over the
    tiles in the file.
``plain_copy``
    The fastest plain copy of level 0 on the same input: read everything
    (``zarr`` through the ``zarrs`` codec pipeline; ``tiff`` with
    ``tifffile.imread(maxworkers=cpus)``; ``memory`` is already read), then write
    level 0 alone through the ``zarrs`` pipeline, same chunks and codec.
``ngff_zarr``
    ngff-zarr's default (``ITKWASM_GAUSSIAN``), same factors, chunks and codec
    (TIFF through tifffile's zarr store, Zarr through ``dask.array.from_zarr``).

Runs are interleaved (repeat r runs every size, input and case once) and the
median of the repeats is reported, with the CPU seconds (user + system, all threads)
each case used: ``cpu x`` is that over the plain copy's, the ratio the wall time
would have if the case kept as many cores busy as the copy (on a machine where
every stage competes for the same cores, the floor of ``x copy`` short of doing
less work), and ``cores`` is CPU seconds over wall seconds. Targets (ratios from the same run): GAUSSIAN
within 1.5x and MEAN within 1.25x of the plain copy on every input kind; 1.00
decodes per chunk; peak RSS at 1024^3 at most 1.3x that at 512^3 (for the in-memory
input, whose 2 GiB are resident before the clock starts, the RSS the conversion adds).

Usage::

    python benchmarks/bench_inputs.py [--sizes 512,1024] [--repeat 3]
        [--inputs memory,zarr,tiff] [--cases ngff_gpu_gaussian,...]
        [--ngff-zarr-sizes 512] [--json PATH]
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    MIB,
    OUT_DIR,
    cpu_seconds,
    current_rss_bytes,
    free_disk_bytes,
    machine_info,
    peak_rss_bytes,
    remove_tree,
    run_child,
    versions,
)
from bench_cpu import ensure_input  # noqa: E402

FACTORS = [2, 4, 8]
DIMS = ["z", "y", "x"]
CHUNK = 128
ZARRS = "zarrs.ZarrsCodecPipeline"
INPUTS = ("memory", "zarr", "tiff")
CASES = ("ngff_gpu_gaussian", "ngff_gpu_mean", "plain_copy", "ngff_zarr")
TARGETS = {"ngff_gpu_gaussian": 1.5, "ngff_gpu_mean": 1.25}
RSS_RATIO = 1.3


# ----------------------------------------------------------------------------- inputs


def zarr_input(npy: Path, codec: str, level: int) -> Path:
    """The Zarr v3 copy of ``npy`` (chunks 128, ``codec``), written once."""
    import zarr

    from ngff_gpu.io.codecs import compressors_for

    path = npy.with_name(npy.stem + f"_c{CHUNK}_{codec}{level}.zarr")
    if (path / "zarr.json").exists() and (path / ".complete").exists():
        return path
    remove_tree(path)
    data = np.load(npy, mmap_mode="r")
    with zarr.config.set({"codec_pipeline.path": ZARRS}):
        arr = zarr.create_array(str(path), shape=data.shape, dtype=data.dtype,
                                chunks=(CHUNK,) * 3, dimension_names=DIMS,
                                compressors=compressors_for(codec, level, 3, data.dtype.itemsize))
        for z0 in range(0, data.shape[0], CHUNK):
            arr[z0:z0 + CHUNK] = data[z0:z0 + CHUNK]
    (path / ".complete").touch()
    return path


def tiff_input(npy: Path) -> Path:
    """The tiled TIFF copy of ``npy`` (one page per plane, tiles 128x128, deflate), written once."""
    import tifffile

    path = npy.with_name(npy.stem + f"_t{CHUNK}_zlib.tif")
    if path.exists():
        return path
    data = np.load(npy, mmap_mode="r")
    tmp = path.with_suffix(".tmp.tif")
    tifffile.imwrite(tmp, data, tile=(CHUNK, CHUNK), compression="zlib",
                     maxworkers=os.cpu_count(), metadata={"axes": "ZYX"})
    tmp.rename(path)
    return path


def warm(path: Path) -> None:
    """Read every file under ``path`` so each case finds its input in the page cache."""
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(64 * MIB):
                pass


# ----------------------------------------------------------------------------- child


def _engine_probe() -> list[dict[str, Any]]:
    """Record each pass's engine counters (decodes, stage seconds)."""
    from ngff_gpu.levels import engine

    seen: list[dict[str, Any]] = []
    real = engine.Engine.run_pass

    def run_pass(self, *args, **kwargs):
        try:
            return real(self, *args, **kwargs)
        finally:
            seen.append({"decoded": self.decoded, "read_cache": self.read_cache,
                         "handover": bool(kwargs.get("handover")),
                         "held_peak": self.held_peak, "stats": dict(self.stats)})

    engine.Engine.run_pass = run_pass
    return seen


def _tile_probe() -> list[int]:
    """Count the TIFF tile reader's segment decodes (one slot, incremented under a lock)."""
    import threading

    from ngff_gpu.io.inputs.tiff_tiles import TiffTiles

    count, lock = [0], threading.Lock()
    real = TiffTiles._decode

    def decode(self, page, index):
        with lock:
            count[0] += 1
        return real(self, page, index)

    TiffTiles._decode = decode
    return count


def child_main(case: str, kind: str, src: Path, store: Path, codec: str, level: int) -> dict:
    """Run one case in this fresh process; imports and setup precede the clock."""
    import zarr

    from ngff_gpu.io.codecs import compressors_for

    comp = compressors_for(codec, level, 3, 2)
    data = np.load(src) if kind == "memory" else None  # in RAM before the clock
    n_chunks = None
    probe: list[dict[str, Any]] = []
    tiles: list[int] | None = None
    if case.startswith("ngff_gpu"):
        import ngff_gpu
        from ngff_gpu.io.inputs import open_input

        probe = _engine_probe()
        tiles = _tile_probe() if kind == "tiff" else None
        method = case.rsplit("_", 1)[1]

        def body() -> None:
            if kind == "memory":
                img = ngff_gpu.to_ngff_image(data, dims=DIMS)
            elif kind == "zarr":
                img = ngff_gpu.to_ngff_image(zarr.open_array(str(src), mode="r"), dims=DIMS)
            else:
                img = ngff_gpu.to_ngff_image(open_input(str(src), dims=DIMS).data, dims=DIMS)
            ms = ngff_gpu.to_multiscales(img, FACTORS, chunks=CHUNK, method=method)
            ngff_gpu.to_ngff_zarr(str(store), ms, codec=codec, codec_level=level, device="cpu")
    elif case == "plain_copy":
        import tifffile

        zarr.config.set({"codec_pipeline.path": ZARRS})

        def body() -> None:
            if kind == "memory":
                vol = data
            elif kind == "zarr":
                vol = zarr.open_array(str(src), mode="r")[...]
            else:
                vol = tifffile.imread(str(src), maxworkers=os.cpu_count())
            out = zarr.create_array(str(store), shape=vol.shape, dtype=vol.dtype,
                                    chunks=(CHUNK,) * 3, compressors=comp, dimension_names=DIMS,
                                    zarr_format=3, overwrite=True)
            out[...] = vol
    else:
        import dask.array as da
        import ngff_zarr as nz
        import tifffile

        def body() -> None:
            if kind == "memory":
                arr = data
            elif kind == "zarr":
                arr = da.from_zarr(str(src))
            else:
                arr = da.from_zarr(zarr.open_array(tifffile.imread(str(src), aszarr=True),
                                                   mode="r"))
            img = nz.to_ngff_image(arr, dims=DIMS)
            ms = nz.to_multiscales(img, FACTORS, method=nz.Methods.ITKWASM_GAUSSIAN, chunks=CHUNK)
            nz.to_ngff_zarr(str(store), ms, version="0.5", compressors=[comp])

    if kind == "zarr":
        n_chunks = zarr.open_array(str(src), mode="r").nchunks
    elif kind == "tiff":
        import tifffile

        with tifffile.TiffFile(str(src)) as tif:
            n_chunks = sum(len(p.dataoffsets) for p in tif.series[0].pages)
    rss_before = current_rss_bytes()
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    body()
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"wall_s": wall, "cpu_s": cpu_seconds() - cpu0,
                           "peak_rss_bytes": peak_rss_bytes(), "rss_before_bytes": rss_before}
    if probe:
        out["passes"] = probe
        decoded = tiles[0] if kind == "tiff" else probe[0]["decoded"]
        if n_chunks and decoded >= 0:
            out["decodes_per_chunk"] = decoded / n_chunks
    return out


# ----------------------------------------------------------------------------- parent


def verify(store: Path, npy: Path) -> bool:
    """Level 0 of the written store equals the input (slab by slab)."""
    import zarr

    try:
        node = zarr.open(str(store), mode="r")
        arr = node if isinstance(node, zarr.Array) else node["scale0/image"] if "scale0" in node \
            else node["0"]
        if not isinstance(node, zarr.Array):
            import ngff_gpu

            ngff_gpu.validate_store(str(store))
        ref = np.load(npy, mmap_mode="r")
        return arr.shape == ref.shape and all(
            np.array_equal(arr[z:z + CHUNK], ref[z:z + CHUNK]) for z in range(0, ref.shape[0], CHUNK))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        print(f"    verify failed: {type(exc).__name__}: {exc}", flush=True)
        return False


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="512,1024")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--inputs", default=",".join(INPUTS))
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--ngff-zarr-sizes", default="512",
                   help="sizes at which ngff-zarr runs (it is slow: about 10x ngff_gpu)")
    p.add_argument("--codec", default="zstd")
    p.add_argument("--level", type=int, default=3)
    p.add_argument("--json", type=Path, default=OUT_DIR / "bench_inputs.json")
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--kind", help=argparse.SUPPRESS)
    p.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _median(rs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rs if key in r]
    return statistics.median(vals) if vals else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.case:
        res = child_main(args.case, args.kind, args.src, args.store, args.codec, args.level)
        print(json.dumps(res), flush=True)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = [k for k in args.inputs.split(",") if k]
    cases = [c for c in args.cases.split(",") if c]
    nz_sizes = {int(s) for s in args.ngff_zarr_sizes.split(",") if s}
    need = sum(s ** 3 * 2 for s in sizes) * 4
    if free_disk_bytes(OUT_DIR) < need:
        raise SystemExit(f"need about {need / 2**30:.1f} GiB free under {OUT_DIR}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    sources: dict[tuple[int, str], Path] = {}
    for size in sizes:
        npy = ensure_input(size, 0)
        for kind in kinds:
            sources[size, kind] = {"memory": lambda n=npy: n,
                                   "zarr": lambda n=npy: zarr_input(n, args.codec, args.level),
                                   "tiff": lambda n=npy: tiff_input(n)}[kind]()
    runs: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    valid: dict[tuple[int, str, str], bool] = {}
    store = OUT_DIR / "stores" / "bench_inputs_out.zarr"
    store.parent.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for rep in range(args.repeat):
        for size in sizes:
            for kind in kinds:
                for case in cases:
                    if case == "ngff_zarr" and size not in nz_sizes:
                        continue
                    key = (size, kind, case)
                    remove_tree(store)
                    warm(sources[size, kind])
                    res = run_child(__file__, ["--case", case, "--kind", kind,
                                               "--src", str(sources[size, kind]), "--store", str(store),
                                               "--codec", args.codec, "--level", str(args.level)],
                                    timeout=args.timeout)
                    runs.setdefault(key, []).append(res)
                    msg = (f"{res['wall_s']:.2f} s, peak RSS {res['peak_rss_bytes'] / MIB:.0f} MiB"
                           f", decodes/chunk {res.get('decodes_per_chunk', '-')}"
                           if "wall_s" in res else res["error"][-400:])
                    print(f"[{rep + 1}/{args.repeat}] {size} {kind} {case}: {msg}", flush=True)
                    partial = {" ".join(map(str, k)): v for k, v in runs.items()}
                    args.json.with_suffix(".partial.json").write_text(json.dumps(partial))
                    if rep == 0 and "wall_s" in res:
                        valid[key] = verify(store, sources[size, "memory"] if (size, "memory")
                                            in sources else ensure_input(size, 0))
    remove_tree(store)
    results = []
    for (size, kind, case), rs in runs.items():
        ok = [r for r in rs if "wall_s" in r]
        row: dict[str, Any] = {"size": size, "input": kind, "case": case,
                               "wall_median_s": _median(ok, "wall_s"),
                               "wall_all_s": [r["wall_s"] for r in ok],
                               "cpu_median_s": _median(ok, "cpu_s"),
                               "peak_rss_mib": max((r["peak_rss_bytes"] for r in ok), default=0) / MIB,
                               "rss_before_mib": _median(ok, "rss_before_bytes") and
                               _median(ok, "rss_before_bytes") / MIB,
                               "decodes_per_chunk": _median(ok, "decodes_per_chunk"),
                               "valid": valid.get((size, kind, case)),
                               "errors": [r["error"] for r in rs if "error" in r]}
        if ok and "passes" in ok[0]:
            stages: dict[str, float] = {}
            for r in ok:
                for p in r["passes"]:
                    for k, v in p["stats"].items():
                        stages[k] = stages.get(k, 0.0) + v / len(ok)
            row["stages_s"] = stages
            row["read_cache_mib"] = [p["read_cache"] / MIB for p in ok[0]["passes"]]
            row["handover"] = [p.get("handover", False) for p in ok[0]["passes"]]
            row["held_peak_mib"] = [p.get("held_peak", 0) / MIB for p in ok[0]["passes"]]
        results.append(row)
    by = {(r["size"], r["input"], r["case"]): r for r in results}
    targets = []
    for (size, kind, case), r in by.items():
        plain = by.get((size, kind, "plain_copy"), {}).get("wall_median_s")
        nzd = by.get((size, kind, "ngff_zarr"), {}).get("wall_median_s")
        if r["wall_median_s"] and plain:
            r["x_plain_copy"] = r["wall_median_s"] / plain
        plain_cpu = by.get((size, kind, "plain_copy"), {}).get("cpu_median_s")
        if r.get("cpu_median_s") and plain_cpu:
            # the ratio the wall time would have if this case kept as many cores
            # busy as the plain copy does: its floor on a CPU-bound machine
            r["cpu_x_plain_copy"] = r["cpu_median_s"] / plain_cpu
        if r.get("cpu_median_s") and r["wall_median_s"]:
            r["cores_busy"] = r["cpu_median_s"] / r["wall_median_s"]
        if r["wall_median_s"] and nzd:
            r["speedup_vs_ngff_zarr"] = nzd / r["wall_median_s"]
        if case in TARGETS and "x_plain_copy" in r:
            targets.append({"target": f"{case} {kind} {size}^3 vs plain copy",
                            "value": r["x_plain_copy"], "bound": TARGETS[case],
                            "pass": r["x_plain_copy"] <= TARGETS[case]})
        if case in TARGETS and r["decodes_per_chunk"] is not None:
            targets.append({"target": f"decodes per chunk {case} {kind} {size}^3",
                            "value": r["decodes_per_chunk"], "bound": 1.0,
                            "pass": abs(r["decodes_per_chunk"] - 1.0) < 1e-9})
    if len(sizes) >= 2:
        lo, hi = min(sizes), max(sizes)
        for kind in kinds:
            for case in TARGETS:
                a, b = by.get((lo, kind, case)), by.get((hi, kind, case))
                if not (a and b and a["peak_rss_mib"]):
                    continue
                if kind == "memory":
                    # the input is resident before the clock starts: compare what the
                    # conversion added on top of it
                    added = [r["peak_rss_mib"] - (r["rss_before_mib"] or 0) for r in (a, b)]
                    what, ratio = "added RSS", added[1] / added[0]
                else:
                    what, ratio = "peak RSS", b["peak_rss_mib"] / a["peak_rss_mib"]
                targets.append({"target": f"{what} {case} {kind} {hi}^3 / {lo}^3",
                                "value": ratio, "bound": RSS_RATIO, "pass": ratio <= RSS_RATIO})
    print()
    print(f"{'size':>5} {'input':<7} {'case':<18} {'median s':>9} {'x copy':>7} {'vs nz':>7} "
          f"{'CPU s':>7} {'cpu x':>6} {'cores':>5} "
          f"{'RSS MiB':>8} {'dec/chunk':>9} {'read/cmp/write/wait s':>24} valid")
    for r in results:
        st = r.get("stages_s")
        stages = (f"{st['read']:.1f}/{st['compute']:.1f}/{st['write']:.1f}/{st['read_wait']:.1f}"
                  if st else "-")
        dec = r["decodes_per_chunk"]
        nan = float("nan")
        wall = r["wall_median_s"] or nan
        print(f"{r['size']:>5} {r['input']:<7} {r['case']:<18} {wall:>9.2f} "
              f"{r.get('x_plain_copy', nan):>7.2f} {r.get('speedup_vs_ngff_zarr', nan):>7.2f} "
              f"{r.get('cpu_median_s') or nan:>7.2f} {r.get('cpu_x_plain_copy', nan):>6.2f} "
              f"{r.get('cores_busy', nan):>5.2f} "
              f"{r['peak_rss_mib']:>8.0f} {'-' if dec is None else format(dec, '.2f'):>9} {stages:>24} "
              f"{r['valid']}")
    print()
    for t in targets:
        print(f"{t['target']:<50} {t['value']:.2f} (bound {t['bound']}) "
              f"{'PASS' if t['pass'] else 'FAIL'}")
    load = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    report = {"benchmark": "bench_inputs", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "config": vars(args) | {"json": str(args.json), "factors": FACTORS, "chunks": CHUNK},
              "machine": machine_info(), "load_at_end": list(load), "uptime_at_end": uptime,
              "versions": versions(), "results": results, "targets": targets}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {args.json}; load at end: {uptime}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
