"""CPU pyramid benchmark, side by side (docs/design.md section 6, CPU targets).

Cases, each run in its own fresh child process (so peak RSS, ``VmHWM``, is
per case and no case warms caches, imports or thread pools for another):

``ngff_gpu_gaussian``
    ``ngff_gpu`` GAUSSIAN on the CPU backend (``device="cpu"``).
``ngff_gpu_mean``
    ``ngff_gpu`` MEAN on the CPU backend.
``ngff_zarr_itkwasm_gaussian``
    ngff-zarr ``ITKWASM_GAUSSIAN`` (its default method).
``ngff_zarr_itkwasm_bin_shrink``
    ngff-zarr ``ITKWASM_BIN_SHRINK``.
``zarr_plain_level0``
    Plain zarr-python: ``zarr.create_array`` with the same chunks and codec,
    then one whole-array assignment of level 0 (no pyramid, no OME metadata).
``zarr_plain_level0_zarrs`` (default when the ``zarrs`` package imports)
    As ``zarr_plain_level0`` but with the Rust ``zarrs`` codec pipeline
    (``zarrs.ZarrsCodecPipeline``), which ``ngff_gpu`` itself writes with when
    ``zarrs`` is installed; informational (the target's reference is
    plain zarr-python with its default pipeline).
``zarr_plain_level0_slabs`` (not in the default set)
    As ``zarr_plain_level0``, written one z-slab of ``chunks`` planes at a time.

Input: a deterministic ``size^3`` uint16 volume (smooth sinusoids and Gaussian
blobs, about 1000..46000, plus uniform noise in [0, 256); never zero) generated once into
``benchmarks/out/input_<size>_s<seed>_r<recipe>.npy``. The parent reads the file once so
it sits in the page cache, and every case opens it with
``np.load(mmap_mode="r")``: reading it (from the page cache) is inside every
timed region alike. Factors [2, 4, 8], chunks 64, the same codec for all
(zstd level 3 by default, Zarr v3 / OME-Zarr 0.5; the codec object comes from
``ngff_gpu.io.codecs.compressors_for`` and is passed to ngff-zarr as
``compressors=[...]`` and to ``zarr.create_array``).

Timed region: from the memmapped array to a complete store on disk
(``to_ngff_image`` + ``to_multiscales`` + ``to_ngff_zarr`` for both libraries;
``create_array`` + write for the plain case). Written data may still be in the
OS page cache when the clock stops (no fsync), for every case alike. After each
case, outside the timed region, the parent checks the store: ``validate_store``
for OME-Zarr stores and level 0 equal to the input for every store.

Usage::

    python benchmarks/bench_cpu.py [--size 512] [--repeat 1] [--cases a,b]
        [--codec zstd] [--level 3] [--json PATH] [--png PATH] [--keep]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
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
    machine_info,
    peak_rss_bytes,
    remove_tree,
    run_child,
    versions,
)

CaseBody = Callable[[np.ndarray, Path, int, str, "int | None"], "str | None"]
FACTORS = [2, 4, 8]
DIMS = ["z", "y", "x"]
ZARRS_PIPELINE = "zarrs.ZarrsCodecPipeline"
HAVE_ZARRS = importlib.util.find_spec("zarrs") is not None
DEFAULT_CASES = ("ngff_gpu_gaussian", "ngff_gpu_mean", "ngff_zarr_itkwasm_gaussian",
                 "ngff_zarr_itkwasm_bin_shrink", "zarr_plain_level0",
                 *(("zarr_plain_level0_zarrs",) if HAVE_ZARRS else ()))
ALL_CASES = (*DEFAULT_CASES, *(() if HAVE_ZARRS else ("zarr_plain_level0_zarrs",)),
             "zarr_plain_level0_slabs")
PLAIN = "zarr_plain_level0"
PLAIN_ZARRS = "zarr_plain_level0_zarrs"
NGFF_ZARR_DEFAULT = "ngff_zarr_itkwasm_gaussian"
# docs/design.md section 6: (name, case, reference, kind, bound, informational)
TARGETS = (
    ("gaussian_vs_plain_write", "ngff_gpu_gaussian", PLAIN, "ratio_max", 1.35, False),
    ("mean_vs_plain_write", "ngff_gpu_mean", PLAIN, "ratio_max", 1.2, False),
    ("gaussian_speedup_vs_ngff_zarr", "ngff_gpu_gaussian", NGFF_ZARR_DEFAULT, "speedup_min", 5.0, False),
    # the same bounds against a plain write through the zarrs pipeline (not a target of docs/design.md)
    ("gaussian_vs_plain_write_zarrs", "ngff_gpu_gaussian", PLAIN_ZARRS, "ratio_max", 1.35, True),
    ("mean_vs_plain_write_zarrs", "ngff_gpu_mean", PLAIN_ZARRS, "ratio_max", 1.2, True),
)


# ----------------------------------------------------------------------------- input


def generate_volume(path: Path, size: int, seed: int = 0, slab: int = 32) -> None:
    """Write the deterministic ``size^3`` uint16 test volume to ``path`` (``.npy``).

    See :class:`_common.VolumeRecipe` for the formula (smooth sinusoids and
    Gaussian blobs plus uniform noise, values in ``[1000, 46256)``). It is built
    one z-slab at a time into a memmap, so memory stays at a few slabs.

    Parameters
    ----------
    path : pathlib.Path
        Destination ``.npy`` file (written to a temporary name, then renamed).
    size : int
        Edge length.
    seed : int
        Seed of the structure parameters and the noise.
    slab : int
        z-planes generated per step.
    """
    recipe = VolumeRecipe((size, size, size), seed)
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint16, shape=(size, size, size))
    for z0 in range(0, size, slab):
        z1 = min(size, z0 + slab)
        out[z0:z1] = recipe.slab(z0, z1)
    out.flush()
    del out
    tmp.rename(path)


def input_path(size: int, seed: int) -> Path:
    """Path of the cached input volume for ``size`` and ``seed``."""
    return OUT_DIR / f"input_{size}_s{seed}_r{RECIPE_VERSION}.npy"


def ensure_input(size: int, seed: int) -> Path:
    """Generate the input volume unless it is already cached; return its path."""
    path = input_path(size, seed)
    if not path.exists():
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        generate_volume(path, size, seed)
        print(f"generated {path} in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


def warm_page_cache(path: Path, block: int = 64 * MIB) -> None:
    """Read ``path`` once so every case finds it in the OS page cache."""
    with open(path, "rb") as f:
        while f.read(block):
            pass


# ----------------------------------------------------------------------------- cases (child side)


def _compressors_for() -> Callable[..., Any]:
    """``ngff_gpu.io.codecs.compressors_for`` loaded from its file alone.

    The non-``ngff_gpu`` cases need the same codec object but should not pay
    for importing the ``ngff_gpu`` package (imports count in peak RSS).
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_bench_ngff_gpu_codecs", Path(__file__).resolve().parent.parent / "ngff_gpu" / "io" / "codecs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compressors_for


def _case_ngff_gpu(method: str) -> CaseBody:
    """Build the timed body of an ``ngff_gpu`` case with ``method``."""
    import ngff_gpu

    def body(data: np.ndarray, store: Path, chunks: int, codec: str, level: int | None) -> None:
        image = ngff_gpu.to_ngff_image(data, dims=DIMS)
        ms = ngff_gpu.to_multiscales(image, FACTORS, chunks=chunks, method=method)
        ngff_gpu.to_ngff_zarr(str(store), ms, version="0.5", codec=codec, codec_level=level,
                              device="cpu")

    return body


def _case_ngff_zarr(method_name: str) -> CaseBody:
    """Build the timed body of an ngff-zarr case with ``Methods[method_name]``."""
    import ngff_zarr as nz

    compressors_for = _compressors_for()
    method = nz.Methods[method_name]

    def body(data: np.ndarray, store: Path, chunks: int, codec: str, level: int | None) -> None:
        comp = compressors_for(codec, level, 3, itemsize=data.dtype.itemsize)
        kwargs: dict[str, Any] = {"compressors": [] if comp is None else [comp]}
        image = nz.to_ngff_image(data, dims=DIMS)
        ms = nz.to_multiscales(image, FACTORS, method=method, chunks=chunks)
        nz.to_ngff_zarr(str(store), ms, version="0.5", **kwargs)

    return body


def _case_plain(slabs: bool, pipeline: str | None = None) -> CaseBody:
    """Build the timed body of the plain zarr-python level-0 write.

    ``pipeline`` sets ``zarr.config["codec_pipeline.path"]`` for this process
    (None keeps zarr-python's default ``BatchedCodecPipeline``).
    """
    import zarr

    if pipeline is not None:
        zarr.config.set({"codec_pipeline.path": pipeline})

    compressors_for = _compressors_for()

    def body(data: np.ndarray, store: Path, chunks: int, codec: str, level: int | None) -> str:
        comp = compressors_for(codec, level, 3, itemsize=data.dtype.itemsize)
        arr = zarr.create_array(str(store), shape=data.shape, dtype=data.dtype,
                                chunks=(chunks,) * data.ndim, compressors=comp,
                                dimension_names=DIMS, zarr_format=3, overwrite=True)
        if slabs:
            for z0 in range(0, data.shape[0], chunks):
                arr[z0:z0 + chunks] = data[z0:z0 + chunks]
        else:
            arr[...] = data
        return type(arr.async_array.codec_pipeline).__name__

    return body


CASE_BUILDERS: dict[str, Callable[[], CaseBody]] = {
    "ngff_gpu_gaussian": lambda: _case_ngff_gpu("gaussian"),
    "ngff_gpu_mean": lambda: _case_ngff_gpu("mean"),
    "ngff_zarr_itkwasm_gaussian": lambda: _case_ngff_zarr("ITKWASM_GAUSSIAN"),
    "ngff_zarr_itkwasm_bin_shrink": lambda: _case_ngff_zarr("ITKWASM_BIN_SHRINK"),
    "zarr_plain_level0": lambda: _case_plain(slabs=False),
    "zarr_plain_level0_zarrs": lambda: _case_plain(slabs=False, pipeline=ZARRS_PIPELINE),
    "zarr_plain_level0_slabs": lambda: _case_plain(slabs=True),
}


def child_main(case: str, input_file: Path, store: Path, chunks: int, codec: str,
               level: int | None) -> dict[str, Any]:
    """Run one case in this (fresh) process and report its wall time and peak RSS.

    Imports and setup happen before the clock starts; the timed region is the
    case body from the memmapped input to a complete store.

    Returns
    -------
    dict
        ``wall_s``, ``peak_rss_bytes`` (``VmHWM``) and ``rss_before_bytes``
        (RSS after imports, before the timed region).
    """
    body = CASE_BUILDERS[case]()
    data = np.load(input_file, mmap_mode="r")
    rss_before = current_rss_bytes()
    t0 = time.perf_counter()
    info = body(data, store, chunks, codec, level)
    wall = time.perf_counter() - t0
    out = {"case": case, "wall_s": wall, "peak_rss_bytes": peak_rss_bytes(),
           "rss_before_bytes": rss_before}
    if info is not None:
        out["codec_pipeline"] = info
    return out


# ----------------------------------------------------------------------------- verification


def verify_store(case: str, store: Path, input_file: Path) -> dict[str, Any]:
    """Check a case's output outside the timed region.

    OME-Zarr stores go through ``ngff_gpu.validate_store``; level 0 of every
    store is compared with the input slab by slab.

    Returns
    -------
    dict
        ``valid`` (bool), ``ome_version`` or ``error``, ``level_shapes``,
        ``level0_equal`` and ``store_mib``.
    """
    import zarr

    import ngff_gpu

    data = np.load(input_file, mmap_mode="r")
    result: dict[str, Any] = {"valid": False, "store_mib": round(dir_size_bytes(store) / MIB, 1)}
    try:
        if case.startswith("zarr_plain"):
            arrays = [zarr.open_array(str(store), mode="r")]
        else:
            result["ome_version"] = ngff_gpu.validate_store(str(store))
            group = zarr.open_group(str(store), mode="r")
            datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
            arrays = [group[ds["path"]] for ds in datasets]
        result["level_shapes"] = [list(a.shape) for a in arrays]
        level0 = arrays[0]
        equal = level0.shape == data.shape
        step = 64
        for z0 in range(0, data.shape[0], step):
            if not equal:
                break
            equal = bool(np.array_equal(level0[z0:z0 + step], data[z0:z0 + step]))
        result["level0_equal"] = equal
        result["valid"] = equal
    except Exception as exc:  # report, do not abort the benchmark
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


# ----------------------------------------------------------------------------- report


def summarise(results: dict[str, dict[str, Any]], input_bytes: int) -> dict[str, dict[str, Any]]:
    """Add GB/s, ratio vs the plain write and speedup vs ngff-zarr's default to each case."""
    plain = results.get(PLAIN, {}).get("wall_s")
    nzd = results.get(NGFF_ZARR_DEFAULT, {}).get("wall_s")
    for res in results.values():
        wall = res.get("wall_s")
        if wall is None:
            continue
        res["input_gb_per_s"] = input_bytes / wall / 1e9
        res["ratio_vs_plain"] = wall / plain if plain else None
        res["speedup_vs_ngff_zarr_default"] = nzd / wall if nzd else None
    return results


def evaluate_targets(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The CPU targets of docs/design.md section 6 with measured values and pass/fail (None if not run)."""
    out = []
    for name, case, ref, kind, bound, info in TARGETS:
        a = results.get(case, {}).get("wall_s")
        b = results.get(ref, {}).get("wall_s")
        if a is None or b is None:
            value, ok = None, None
        elif kind == "ratio_max":
            value = a / b
            ok = value <= bound
        else:
            value = b / a
            ok = value >= bound
        out.append({"target": name, "case": case, "reference": ref, "kind": kind, "bound": bound,
                    "value": value, "pass": ok, "informational": info})
    return out


def ngff_gpu_pipeline() -> str:
    """The zarr codec pipeline ``ngff_gpu`` writes with here (``writer.codec_pipeline``), if it says."""
    try:
        from ngff_gpu.io.writer import codec_pipeline

        return codec_pipeline() or "zarr default (BatchedCodecPipeline)"
    except Exception:  # older/newer writer without the helper
        return "unknown"


def _fmt(x: float | None, spec: str) -> str:
    """Format a number, or ``-`` for None/NaN."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def print_table(results: dict[str, dict[str, Any]], targets: list[dict[str, Any]]) -> None:
    """Print the results table and the targets."""
    header = (f"{'case':<30} {'wall s':>8} {'median':>8} {'GB/s in':>8} {'peak RSS MiB':>13} {'x plain':>8} "
              f"{'vs ngff-zarr':>13} {'valid':>6}")
    print(header)
    print("-" * len(header))
    for case, res in results.items():  # wall s = min over repeats
        if "wall_s" not in res:
            print(f"{case:<30} ERROR {res.get('error', '')[:200]}")
            continue
        speed = res.get("speedup_vs_ngff_zarr_default")
        print(f"{case:<30} {res['wall_s']:>8.2f} {statistics.median(res['wall_all_s']):>8.2f} "
              f"{_fmt(res.get('input_gb_per_s'), '.3f'):>8} "
              f"{res['peak_rss_bytes'] / MIB:>13.0f} {_fmt(res.get('ratio_vs_plain'), '.2f'):>8} "
              f"{_fmt(speed, '.2f') + 'x' if speed else '-':>13} "
              f"{str(res.get('verify', {}).get('valid', '-')):>6}")
    print()
    for t in targets:
        sign = "<=" if t["kind"] == "ratio_max" else ">="
        status = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        note = "  (informational, not a target)" if t["informational"] else ""
        print(f"target {t['target']:<32} {_fmt(t['value'], '.2f'):>6} {sign} {t['bound']:<5} {status}{note}")


def draw_png(results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Bar charts of wall time (with the plain write and its 1.35x / 1.2x bounds) and peak RSS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [c for c, r in results.items() if "wall_s" in r]
    walls = [results[c]["wall_s"] for c in cases]
    rss = [results[c]["peak_rss_bytes"] / MIB for c in cases]
    colors = ["tab:green" if c.startswith("ngff_gpu") else "tab:gray" if c.startswith("zarr_plain")
              else "tab:orange" for c in cases]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    bars = ax1.barh(cases, walls, color=colors)
    ax1.bar_label(bars, fmt="%.2f s", padding=3)
    plain = results.get(PLAIN, {}).get("wall_s")
    if plain:
        for mult, style in ((1.0, "-"), (1.2, "--"), (1.35, ":")):
            ax1.axvline(plain * mult, color="k", linestyle=style, linewidth=0.8,
                        label=f"{mult:g}x plain write")
        ax1.legend(loc="lower right", fontsize=8)
    ax1.set_xlabel("wall time (s), lower is better")
    ax1.invert_yaxis()
    bars = ax2.barh(cases, rss, color=colors)
    ax2.bar_label(bars, fmt="%.0f", padding=3)
    ax2.set_xlabel("peak RSS (MiB)")
    ax2.invert_yaxis()
    ax2.set_yticklabels([])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (the ``--case`` form is the internal child mode)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=512, help="edge of the cubic uint16 input (512)")
    p.add_argument("--repeat", type=int, default=1, help="runs per case; the minimum wall is kept")
    p.add_argument("--cases", default=",".join(DEFAULT_CASES),
                   help=f"comma list out of {', '.join(ALL_CASES)}")
    p.add_argument("--codec", default="zstd", help="codec for every case (ngff_gpu.io.codecs names)")
    p.add_argument("--level", type=int, default=3, help="compression level (3)")
    p.add_argument("--chunks", type=int, default=64, help="chunk edge (64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the input volume")
    p.add_argument("--json", type=Path, default=OUT_DIR / "bench_cpu.json", help="JSON output")
    p.add_argument("--png", default=str(OUT_DIR / "bench_cpu.png"),
                   help="PNG bar chart ('' or 'none' to skip)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per case before kill")
    p.add_argument("--keep", action="store_true", help="keep the output stores")
    # child mode
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (parent) or one case (child, ``--case``)."""
    args = parse_args(argv)
    if args.case:
        res = child_main(args.case, args.input, args.store, args.chunks, args.codec, args.level)
        print(json.dumps(res), flush=True)
        return 0

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(ALL_CASES))
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; choose from {', '.join(ALL_CASES)}")
    src = ensure_input(args.size, args.seed)
    warm_page_cache(src)
    input_bytes = args.size ** 3 * 2
    stores = OUT_DIR / "stores"
    stores.mkdir(parents=True, exist_ok=True)
    print(f"input {src.name}: {args.size}^3 uint16 = {input_bytes / MIB:.0f} MiB; factors {FACTORS}, "
          f"chunks {args.chunks}, codec {args.codec} level {args.level}; repeat {args.repeat}",
          flush=True)

    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    verify: dict[str, dict[str, Any]] = {}
    for rep in range(args.repeat):  # interleave cases so drift hits all alike
        for case in cases:
            store = stores / (f"{case}.zarr" if case.startswith("zarr_plain") else f"{case}.ome.zarr")
            remove_tree(store)  # outside the timed region
            res = run_child(__file__, ["--case", case, "--input", str(src), "--store", str(store),
                                       "--chunks", str(args.chunks), "--codec", args.codec,
                                       "--level", str(args.level)], timeout=args.timeout)
            runs[case].append(res)
            msg = (f"{res['wall_s']:.2f} s, peak RSS {res['peak_rss_bytes'] / MIB:.0f} MiB"
                   if "wall_s" in res else res["error"][-500:])
            print(f"[{rep + 1}/{args.repeat}] {case}: {msg}", flush=True)
            if rep == 0 and "wall_s" in res:
                verify[case] = verify_store(case, store, src)
                print(f"    verify: {verify[case]}", flush=True)
            if not args.keep:
                remove_tree(store)

    results: dict[str, dict[str, Any]] = {}
    for case, rs in runs.items():
        ok = [r for r in rs if "wall_s" in r]
        if not ok:
            results[case] = {"error": rs[-1].get("error", "no run")}
            continue
        best = min(ok, key=lambda r: r["wall_s"])
        results[case] = {
            "wall_s": best["wall_s"],
            "wall_all_s": [r["wall_s"] for r in ok],
            "peak_rss_bytes": max(r["peak_rss_bytes"] for r in ok),
            "rss_before_bytes": best["rss_before_bytes"],
            "codec_pipeline": best.get("codec_pipeline"),
            "verify": verify.get(case, {}),
        }
    summarise(results, input_bytes)
    targets = evaluate_targets(results)
    print()
    print_table(results, targets)

    report = {
        "benchmark": "bench_cpu",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {"size": args.size, "shape": [args.size] * 3, "dtype": "uint16",
                   "input_bytes": input_bytes, "input_gib": input_bytes / GIB, "factors": FACTORS,
                   "chunks": args.chunks, "codec": args.codec, "level": args.level,
                   "ome_zarr_version": "0.5", "repeat": args.repeat, "seed": args.seed,
                   "input_file": str(src), "ngff_gpu_device": "cpu",
                   "ngff_zarr_compressors": "same object via compressors=[...]",
                   "ngff_gpu_codec_pipeline": ngff_gpu_pipeline(),
                   "plain_write_codec_pipeline": "zarr default (BatchedCodecPipeline); "
                                                 f"{PLAIN_ZARRS}: {ZARRS_PIPELINE}",
                   "timing": "min wall over repeats; peak RSS = max VmHWM over repeats"},
        "machine": machine_info(),
        "versions": versions(),
        "results": results,
        "targets": targets,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.json}")
    if args.png and args.png.lower() != "none":
        draw_png(results, Path(args.png), f"{args.size}^3 uint16, factors {FACTORS}, chunks {args.chunks}, "
                                    f"{args.codec} {args.level}, {report['machine']['cpu_usable']} CPUs")
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
