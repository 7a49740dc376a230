"""Conversions at the shapes large volumes have, next to the fastest plain copy of level 0.

Shapes (uint16, :class:`_common.VolumeRecipe`: smooth structure plus noise):

``cube``
    1024 x 1024 x 1024 (2 GiB).
``slab``
    256 x 2048 x 2048 (2 GiB): z is halved only at the last level of the automatic ladder.
``big``
    256 x 8192 x 8192 (32 GiB), from Zarr only, one run per case.

Inputs:

``zarr``
    A Zarr v3 array, chunks 128^3, zstd level 3: exactly what ``ngff-gpu convert`` writes
    level 0 with by default, so level 0 may be copied as the encoded chunks it is.
``zarr_other``
    The same array with another codec (Blosc LZ4, byte shuffle): level 0 must be decoded
    and encoded again.
``tiff``
    A tiled TIFF, one page per z-plane, tiles 128 x 128, deflate.
``memory``
    The volume in RAM (loaded before the clock starts; converted through the API).

Cases, each in its own fresh process (peak RSS is that process's ``VmHWM``):

``convert_gaussian`` / ``convert_mean``
    ``ngff-gpu convert IN OUT -q [--method mean]`` with every other option at its
    default (the CLI's ``main`` in the child; ``memory``: ``to_ngff_zarr(out,
    to_multiscales(to_ngff_image(data), method=...))``).
``plain_copy``
    The fastest plain copy of level 0 from the same input: decode it (Zarr through the
    ``zarrs`` pipeline, TIFF with ``tifffile.imread(maxworkers=cpus)``, memory: already
    there) and write level 0 alone through the ``zarrs`` pipeline with the chunks and codec
    ``convert`` writes level 0 with, in chunk-aligned blocks of at most 1 GiB.

Runs are interleaved (each repeat runs every shape, input and case once); the median
of the repeats is reported (``big`` runs once). Columns: wall seconds, the ratio to the
plain copy of the same input in the same run, CPU seconds (user + system, all threads),
peak RSS (for ``memory``, what the conversion added to the resident input), and output
bytes over the bytes of level 0 in the output. Targets (issue 20): from a Zarr input
with level 0's codec GAUSSIAN at most 1.0x and MEAN at most 0.9x the plain copy at every
size; every other input at most 1.3x; peak RSS at most ``memory_limit`` + 256 MiB; the
32 GiB run's seconds per GiB within 10% of the 2 GiB slab's (same input and method).

Usage::

    python benchmarks/bench_scale.py [--shapes cube,slab,big] [--inputs zarr,zarr_other,tiff,memory]
        [--cases plain_copy,convert_gaussian,convert_mean] [--repeat 3] [--json PATH]
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
    GIB,
    MIB,
    OUT_DIR,
    RECIPE_VERSION,
    VolumeRecipe,
    cpu_seconds,
    current_rss_bytes,
    dir_size_bytes,
    free_disk_bytes,
    machine_info,
    peak_rss_bytes,
    remove_tree,
    run_child,
    versions,
)

SHAPES = {"cube": (1024, 1024, 1024), "slab": (256, 2048, 2048), "big": (256, 8192, 8192)}
INPUTS = ("zarr", "zarr_other", "tiff", "memory")
CASES = ("plain_copy", "convert_gaussian", "convert_mean")
DIMS = ["z", "y", "x"]
CHUNK = 128
ZARRS = "zarrs.ZarrsCodecPipeline"
MEMORY_LIMIT = GIB  # the default of to_ngff_zarr / convert
RSS_SLACK = 256 * MIB
TARGETS = {("zarr", "convert_gaussian"): 1.0, ("zarr", "convert_mean"): 0.9}
OTHER_BOUND = 1.3
PER_GIB_TOLERANCE = 0.10
BLOCK_BYTES = GIB


# ----------------------------------------------------------------------------- inputs


def _codec(name: str) -> Any:
    from ngff_gpu.io.codecs import compressors_for

    return compressors_for(*(("zstd", None) if name == "zarr" else ("blosc-lz4", None)), 3, 2)


def _blocks(shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """Chunk-aligned (z, y) blocks of at most BLOCK_BYTES (whole rows of x)."""
    z, y, x = shape
    rows = max(CHUNK, (BLOCK_BYTES // (CHUNK * x * 2)) // CHUNK * CHUNK)
    return [(slice(z0, min(z, z0 + CHUNK)), slice(y0, min(y, y0 + rows)))
            for z0 in range(0, z, CHUNK) for y0 in range(0, y, rows)]


def _tag(shape_name: str) -> str:
    return "x".join(map(str, SHAPES[shape_name])) + f"_r{RECIPE_VERSION}"


GEN_ROWS = 256  # the volume is defined block by block: (CHUNK planes, GEN_ROWS rows, all of x)


def gen_blocks(shape: tuple[int, ...]) -> list[tuple[slice, slice]]:
    """The fixed blocks the volume is defined on (each seeds its own noise)."""
    z, y, _ = shape
    return [(slice(z0, min(z, z0 + CHUNK)), slice(y0, min(y, y0 + GEN_ROWS)))
            for z0 in range(0, z, CHUNK) for y0 in range(0, y, GEN_ROWS)]


def block_values(recipe: VolumeRecipe, zs: slice, ys: slice) -> np.ndarray:
    """The uint16 values of one block of :func:`gen_blocks`: the recipe's smooth structure
    (separable, so computed for the block alone) plus uniform noise in ``[0, 256)`` seeded
    by ``(seed, z0, y0)``, so any block can be made or checked on its own in bounded memory."""
    nz, ny, nx = zs.stop - zs.start, ys.stop - ys.start, recipe.shape[2]
    out = np.empty((nz, ny, nx), np.uint16)
    for z0 in range(0, nz, 16):
        z = slice(zs.start + z0, min(zs.stop, zs.start + z0 + 16))
        wave = np.zeros((z.stop - z.start, ny, nx), np.float32)
        for weight, (wz, wy, wx) in recipe.waves:
            wave += (weight * wz[z, None, None]) * (wy[ys, None] * wx[None, :])[None]
        blob = np.zeros_like(wave)
        for amp, (gz, gy, gx) in recipe.blobs:
            blob += (amp * gz[z, None, None]) * (gy[ys, None] * gx[None, :])[None]
        np.minimum(blob, 1.0, out=blob)
        wave += 1.0
        wave *= 10000.0
        blob *= 25000.0
        wave += blob
        wave += 1000.0
        out[z0:z0 + wave.shape[0]] = wave
    out += np.random.default_rng([recipe.seed, zs.start, ys.start]).integers(
        0, 256, size=out.shape, dtype=np.uint16)
    return out


def npy_input(shape_name: str) -> Path:
    """The volume as ``.npy`` (2 GiB shapes only), generated once."""
    shape = SHAPES[shape_name]
    path = OUT_DIR / f"scale_{_tag(shape_name)}.npy"
    if path.exists():
        return path
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    recipe = VolumeRecipe(shape, 0)
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint16, shape=shape)
    for zs, ys in gen_blocks(shape):
        out[zs, ys] = block_values(recipe, zs, ys)
    out.flush()
    del out
    tmp.rename(path)
    return path


def zarr_input(shape_name: str, kind: str) -> Path:
    """The volume as a Zarr v3 array (``kind`` picks the codec), written once, block by block."""
    import zarr

    shape = SHAPES[shape_name]
    path = OUT_DIR / f"scale_{_tag(shape_name)}_{kind}.zarr"
    if (path / ".complete").exists():
        return path
    remove_tree(path)
    recipe = VolumeRecipe(shape, 0)
    with zarr.config.set({"codec_pipeline.path": ZARRS}):
        arr = zarr.create_array(str(path), shape=shape, dtype="uint16", chunks=(CHUNK,) * 3,
                                dimension_names=DIMS, compressors=_codec(kind))
        for zs, ys in gen_blocks(shape):
            arr[zs, ys] = block_values(recipe, zs, ys)
    (path / ".complete").touch()
    return path


def tiff_input(shape_name: str) -> Path:
    """The volume as a tiled TIFF (tiles 128 x 128, deflate), written once."""
    import tifffile

    path = OUT_DIR / f"scale_{_tag(shape_name)}_t{CHUNK}_zlib.tif"
    if path.exists():
        return path
    data = np.load(npy_input(shape_name), mmap_mode="r")
    tmp = path.with_suffix(".tmp.tif")
    tifffile.imwrite(tmp, data, tile=(CHUNK, CHUNK), compression="zlib",
                     maxworkers=os.cpu_count(), metadata={"axes": "ZYX"})
    tmp.rename(path)
    return path


def source(shape_name: str, kind: str) -> Path:
    if kind in ("zarr", "zarr_other"):
        return zarr_input(shape_name, kind)
    if kind == "tiff":
        return tiff_input(shape_name)
    return npy_input(shape_name)


def warm(path: Path) -> None:
    """Read every file under ``path`` (up to the page cache's room) before a case."""
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    budget = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.4)
    for f in files:
        if budget <= 0:
            return
        with open(f, "rb") as fh:
            while chunk := fh.read(64 * MIB):
                budget -= len(chunk)


# ----------------------------------------------------------------------------- child


def child_main(case: str, kind: str, src: Path, store: Path) -> dict[str, Any]:
    """Run one case in this fresh process; imports and setup precede the clock."""
    import zarr

    data = np.load(src) if kind == "memory" else None
    if case.startswith("convert"):
        import ngff_gpu
        from ngff_gpu.cli import main as cli_main

        method = case.split("_", 1)[1]

        def body() -> None:
            if kind == "memory":
                ms = ngff_gpu.to_multiscales(ngff_gpu.to_ngff_image(data, dims=DIMS), method=method)
                ngff_gpu.to_ngff_zarr(str(store), ms)
            else:
                code = cli_main(["convert", str(src), str(store), "-q", "--method", method])
                if code:
                    raise SystemExit(f"convert exited {code}")
    else:
        import tifffile

        zarr.config.set({"codec_pipeline.path": ZARRS})

        def body() -> None:
            if kind == "tiff":
                vol = tifffile.imread(str(src), maxworkers=os.cpu_count())
            else:
                vol = data if kind == "memory" else zarr.open_array(str(src), mode="r")
            out = zarr.create_array(str(store), shape=vol.shape, dtype=vol.dtype,
                                    chunks=(CHUNK,) * 3, compressors=_codec("zarr"),
                                    dimension_names=DIMS, zarr_format=3, overwrite=True)
            for block in _blocks(vol.shape):
                out[block] = vol[block]

    rss_before = current_rss_bytes()
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    body()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "cpu_s": cpu_seconds() - cpu0, "peak_rss_bytes": peak_rss_bytes(),
            "rss_before_bytes": rss_before}


# ----------------------------------------------------------------------------- parent


def level0_path(store: Path) -> Path:
    """The directory of level 0 in a written store (the store itself for a bare array)."""
    meta = json.loads((store / "zarr.json").read_text())
    if meta.get("node_type") == "array":
        return store
    ms = meta["attributes"]["ome"]["multiscales"][0]
    return store / ms["datasets"][0]["path"]


def verify(store: Path, shape_name: str, full: bool) -> bool:
    """Level 0 equals the recipe (every block, or a few for the 32 GiB shape)."""
    import zarr

    try:
        if (store / "zarr.json").exists() and json.loads((store / "zarr.json").read_text()).get(
                "node_type") == "group":
            import ngff_gpu

            ngff_gpu.validate_store(str(store))
        arr = zarr.open_array(str(level0_path(store)), mode="r")
        recipe = VolumeRecipe(SHAPES[shape_name], 0)
        blocks = gen_blocks(arr.shape)
        if not full:
            blocks = blocks[:: max(1, len(blocks) // 8)]
        return all(np.array_equal(arr[zs, ys], block_values(recipe, zs, ys)) for zs, ys in blocks)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        print(f"    verify failed: {type(exc).__name__}: {exc}", flush=True)
        return False


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default="cube,slab,big")
    p.add_argument("--inputs", default=",".join(INPUTS))
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path, default=OUT_DIR / "bench_scale.json")
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--shrink", type=int, default=1,
                   help="divide every shape by this (a quick check of the script itself)")
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--kind", help=argparse.SUPPRESS)
    p.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _median(rs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rs if key in r]
    return statistics.median(vals) if vals else None


def plan_runs(shapes: list[str], kinds: list[str], cases: list[str],
              repeat: int) -> list[tuple[int, str, str, str]]:
    """(repeat, shape, input, case) in run order: interleaved; ``big`` from Zarr, once."""
    order = []
    for rep in range(repeat):
        for shape in shapes:
            if shape == "big" and rep:
                continue
            for kind in kinds:
                if shape == "big" and kind != "zarr":
                    continue
                order += [(rep, shape, kind, case) for case in cases]
    return order


def summarise(runs: dict[tuple[str, str, str], list[dict[str, Any]]],
              valid: dict[tuple[str, str, str], bool]) -> list[dict[str, Any]]:
    rows = []
    for (shape, kind, case), rs in runs.items():
        ok = [r for r in rs if "wall_s" in r]
        peak = max((r["peak_rss_bytes"] for r in ok), default=0)
        before = _median(ok, "rss_before_bytes") or 0
        rows.append({"shape": shape, "shape_zyx": SHAPES[shape], "input": kind, "case": case,
                     "wall_median_s": _median(ok, "wall_s"), "wall_all_s": [r["wall_s"] for r in ok],
                     "cpu_median_s": _median(ok, "cpu_s"), "peak_rss_mib": peak / MIB,
                     "added_rss_mib": (peak - before) / MIB if kind == "memory" else peak / MIB,
                     "out_over_level0": _median(ok, "out_over_level0"),
                     "out_bytes": _median(ok, "out_bytes"), "valid": valid.get((shape, kind, case)),
                     "errors": [r["error"] for r in rs if "error" in r]})
    by = {(r["shape"], r["input"], r["case"]): r for r in rows}
    for r in rows:
        plain = by.get((r["shape"], r["input"], "plain_copy"), {}).get("wall_median_s")
        if r["wall_median_s"] and plain:
            r["x_plain_copy"] = r["wall_median_s"] / plain
        vol_gib = int(np.prod(SHAPES[r["shape"]])) * 2 / GIB
        if r["wall_median_s"]:
            r["s_per_gib"] = r["wall_median_s"] / vol_gib
    return rows


def evaluate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(r["shape"], r["input"], r["case"]): r for r in rows}
    targets = []
    for r in rows:
        if r["case"] == "plain_copy":
            continue
        bound = TARGETS.get((r["input"], r["case"]), OTHER_BOUND)
        if "x_plain_copy" in r:
            targets.append({"target": f"{r['case']} {r['input']} {r['shape']} vs plain copy",
                            "value": r["x_plain_copy"], "bound": bound,
                            "pass": r["x_plain_copy"] <= bound})
        limit = (MEMORY_LIMIT + RSS_SLACK) / MIB
        what = "added RSS" if r["input"] == "memory" else "peak RSS"
        targets.append({"target": f"{what} MiB {r['case']} {r['input']} {r['shape']}",
                        "value": r["added_rss_mib"], "bound": limit,
                        "pass": r["added_rss_mib"] <= limit})
    for case in ("convert_gaussian", "convert_mean"):
        big, slab = by.get(("big", "zarr", case)), by.get(("slab", "zarr", case))
        if big and slab and big.get("s_per_gib") and slab.get("s_per_gib"):
            ratio = big["s_per_gib"] / slab["s_per_gib"]
            targets.append({"target": f"{case} zarr s/GiB big / slab", "value": ratio,
                            "bound": 1 + PER_GIB_TOLERANCE, "pass": ratio <= 1 + PER_GIB_TOLERANCE})
    return targets


def print_table(rows: list[dict[str, Any]], targets: list[dict[str, Any]]) -> None:
    nan = float("nan")
    print(f"\n{'shape':<5} {'input':<10} {'case':<17} {'median s':>9} {'x copy':>7} {'CPU s':>8} "
          f"{'RSS MiB':>8} {'out/L0':>7} {'s/GiB':>6} valid")
    for r in rows:
        print(f"{r['shape']:<5} {r['input']:<10} {r['case']:<17} {r['wall_median_s'] or nan:>9.2f} "
              f"{r.get('x_plain_copy', nan):>7.2f} {r['cpu_median_s'] or nan:>8.1f} "
              f"{r['added_rss_mib']:>8.0f} {r['out_over_level0'] or nan:>7.2f} "
              f"{r.get('s_per_gib', nan):>6.2f} {r['valid']}")
    print()
    for t in targets:
        print(f"{t['target']:<55} {t['value']:.2f} (bound {t['bound']:g}) "
              f"{'PASS' if t['pass'] else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.case:
        print(json.dumps(child_main(args.case, args.kind, args.src, args.store)), flush=True)
        return 0
    shapes = [s for s in args.shapes.split(",") if s]
    for name in SHAPES:
        SHAPES[name] = tuple(max(CHUNK, n // args.shrink) for n in SHAPES[name])
    kinds = [k for k in args.inputs.split(",") if k]
    cases = [c for c in args.cases.split(",") if c]
    order = plan_runs(shapes, kinds, cases, args.repeat)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    sources = {(shape, kind): source(shape, kind) for _, shape, kind, _ in order}
    # One output at a time lives beside the inputs: level 0 encoded about as the input's
    # (its own bytes for a Zarr input, the raw bytes otherwise, an upper bound), times the
    # ladder's 1.33 and a margin.
    need = max((dir_size_bytes(src) if kind.startswith("zarr")
                else int(np.prod(SHAPES[shape])) * 2)
               for (shape, kind), src in sources.items()) * 1.5
    if free_disk_bytes(OUT_DIR) < need:
        raise SystemExit(f"need about {need / GIB:.0f} GiB free under {OUT_DIR} for one output")
    store = OUT_DIR / "stores" / "bench_scale_out.ome.zarr"
    store.parent.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    runs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    valid: dict[tuple[str, str, str], bool] = {}
    for rep, shape, kind, case in order:
        remove_tree(store)
        warm(sources[shape, kind])
        res = run_child(__file__, ["--case", case, "--kind", kind, "--src",
                                   str(sources[shape, kind]), "--store", str(store)],
                        timeout=args.timeout)
        if "wall_s" in res:
            total = dir_size_bytes(store)
            res["out_bytes"] = total
            res["out_over_level0"] = total / max(1, dir_size_bytes(level0_path(store)))
            if rep == 0:
                valid[shape, kind, case] = verify(store, shape, full=shape != "big")
        runs.setdefault((shape, kind, case), []).append(res)
        msg = (f"{res['wall_s']:.2f} s, CPU {res['cpu_s']:.1f} s, peak RSS "
               f"{res['peak_rss_bytes'] / MIB:.0f} MiB, out/L0 {res['out_over_level0']:.2f}"
               if "wall_s" in res else res["error"][-400:])
        print(f"[{rep + 1}] {shape} {kind} {case}: {msg}", flush=True)
        args.json.with_suffix(".partial.json").write_text(
            json.dumps({" ".join(k): v for k, v in runs.items()}))
    remove_tree(store)
    rows = summarise(runs, valid)
    targets = evaluate(rows)
    print_table(rows, targets)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    report = {"benchmark": "bench_scale", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "config": vars(args) | {"json": str(args.json), "chunks": CHUNK},
              "machine": machine_info(), "uptime_at_end": uptime, "versions": versions(),
              "results": rows, "targets": targets}
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {args.json}; load at end: {uptime}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
