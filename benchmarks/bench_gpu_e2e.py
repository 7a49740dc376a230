"""End to end on the GPU machine: a 4 GiB uint16 volume from a Zarr input to OME-Zarr 0.5.

Input: the deterministic volume of :class:`_common.VolumeRecipe` (smooth structure plus
noise), ``2048 x 1024 x 1024`` uint16 (4 GiB), written once as a Zarr v3 array (chunks
128^3, zstd level 3) on the machine's disk under ``--work`` and kept for a rerun.

Cases, each in a fresh child process, each in a time box, in this order (the most
important first, so a short lease keeps them):

``ngff_gpu_cuda``
    ``to_ngff_image(zarr.open_array(src))`` -> ``to_multiscales(..., [2, 4, 8], chunks=128)``
    (GAUSSIAN, the default) -> ``to_ngff_zarr(..., device="cuda", recompress=True)`` with
    the default ``memory_limit`` and codec (zstd 3). ``recompress``: the input's chunks and
    codec are the output's, so by default level 0 would be copied without re-encoding
    (docs/design.md section 3.9); every case but the last encodes every level, as the
    peers do, so the cases compare one workload.
``ngff_gpu_cpu``
    The same with ``device="cpu"`` on all the machine's cores (the compiled CPU kernels;
    loaded, or compiled into numba's cache, by one small call before the clock).
``plain_copy``
    Level 0 alone: read the input (``zarrs`` pipeline), write it with the same chunks and
    codec (``zarrs`` pipeline); no pyramid, no metadata.
``ngff_zarr``
    ngff-zarr's defaults (``to_multiscales`` without ``method``: ``ITKWASM_GAUSSIAN``), same
    factors, chunks and codec (``compressors=[...]``), ``version="0.5"``, input through
    ``dask.array.from_zarr``. A run that outlasts its box is recorded as a lower bound.
``ngff_gpu_cuda_8gib``
    ``ngff_gpu_cuda`` with ``memory_limit="8GiB"`` (bigger bricks), when time is left.
``ngff_gpu_cuda_rawcopy``
    ``ngff_gpu_cuda`` with the defaults (level 0's chunks copied as stored), when time is
    left.

Stage times of our cases: the engine's own counters (``Engine.stats``: ``read`` and
``read_wait`` of the reader thread, ``compute`` and ``write`` summed over their threads,
``wall``) and, for the CUDA cases, the backend's calls timed one by one (``h2d``: host
bricks to the device, ``kernels``: ``reduce_region``, ``d2h``: regions to pinned host
memory), through a CUDA provider (:func:`ngff_gpu.compute.backends.use_cuda_provider`)
whose backend synchronizes after each call so every second lands in one stage (the
compute worker is one thread on a device, so this costs little overlap). ``write`` is
encode plus store (zarrs does both in one call); the codec probe measures encoding alone.

Checks, outside the clock: every OME-Zarr store validates; level 0 of every store equals
the input; every level of the CUDA store equals the CPU store's, bit for bit.

``--rehearsal`` runs everything on the CPU at a small size (the CUDA case on the host
stand-in, see :mod:`_gpu`).

Usage: ``python benchmarks/bench_gpu_e2e.py [--shape 2048,1024,1024] [--work DIR]
[--budget SECONDS] [--cases a,b] [--json PATH] [--rehearsal]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    VolumeRecipe,
    cpu_seconds,
    dir_size_bytes,
    peak_rss_bytes,
    remove_tree,
)
from _gpu import REPO, Deadline, child_env, read_json, run_boxed, write_json  # noqa: E402

FACTORS = [2, 4, 8]
DIMS = ["z", "y", "x"]
ZARRS = "zarrs.ZarrsCodecPipeline"
CASES = ("ngff_gpu_cuda", "ngff_gpu_cpu", "plain_copy", "ngff_zarr", "ngff_gpu_cuda_8gib",
         "ngff_gpu_cuda_rawcopy")
#: Seconds each case may take at most (the run's budget may give less).
BOXES = {"ngff_gpu_cuda": 120, "ngff_gpu_cpu": 150, "plain_copy": 90, "ngff_zarr": 150,
         "ngff_gpu_cuda_8gib": 90, "ngff_gpu_cuda_rawcopy": 90}


# ----------------------------------------------------------------------------- input


def ensure_input(work: Path, shape: tuple[int, ...], chunk: int) -> Path:
    """The Zarr v3 input (chunks ``chunk``^3, zstd 3), written once (``.complete`` marks it)."""
    import zarr

    from ngff_gpu.io.codecs import compressors_for

    path = work / f"input_{'x'.join(map(str, shape))}_c{chunk}.zarr"
    if (path / ".complete").exists():
        return path
    remove_tree(path)
    recipe = VolumeRecipe(shape, seed=0)
    t0 = time.perf_counter()
    with zarr.config.set({"codec_pipeline.path": ZARRS}):
        arr = zarr.create_array(str(path), shape=shape, dtype="uint16", chunks=(chunk,) * 3,
                                dimension_names=DIMS, compressors=compressors_for("zstd", 3, 3, 2))

        def slab(z0: int) -> None:
            arr[z0:z0 + chunk] = recipe.slab(z0, min(shape[0], z0 + chunk))

        with ThreadPoolExecutor(max(1, min(8, (os.cpu_count() or 2) // 2))) as pool:
            list(pool.map(slab, range(0, shape[0], chunk)))
    (path / ".complete").touch()
    print(f"wrote the input {path} in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


def warm(path: Path) -> None:
    """Read every file under ``path`` so each case finds the input in the page cache."""
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                while fh.read(64 << 20):
                    pass


# ----------------------------------------------------------------------------- child


class TimedBackend:
    """A backend that times its calls by stage, synchronizing after each (see the module
    docstring); everything else is the wrapped backend's."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.stats = {"h2d_s": 0.0, "h2d_bytes": 0, "kernels_s": 0.0, "kernel_calls": 0,
                      "d2h_s": 0.0, "d2h_bytes": 0}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def asarray(self, a: Any) -> Any:
        t0 = time.perf_counter()
        out = self._inner.asarray(a)
        self._inner.synchronize()
        if isinstance(a, np.ndarray):
            self.stats["h2d_s"] += time.perf_counter() - t0
            self.stats["h2d_bytes"] += a.nbytes
        return out

    def reduce_region(self, *args: Any) -> Any:
        t0 = time.perf_counter()
        out = self._inner.reduce_region(*args)
        self._inner.synchronize()
        self.stats["kernels_s"] += time.perf_counter() - t0
        self.stats["kernel_calls"] += 1
        return out

    def to_host(self, a: Any) -> np.ndarray:
        t0 = time.perf_counter()
        out = self._inner.to_host(a)
        self.stats["d2h_s"] += time.perf_counter() - t0
        self.stats["d2h_bytes"] += out.nbytes
        return out


def _engine_probe() -> list[dict[str, Any]]:
    """Record each pass's engine counters (decodes, stage seconds)."""
    from ngff_gpu.levels import engine

    seen: list[dict[str, Any]] = []
    real = engine.Engine.run_pass

    def run_pass(self, *args, **kwargs):
        try:
            return real(self, *args, **kwargs)
        finally:
            seen.append({"decoded": self.decoded, "handover": bool(kwargs.get("handover")),
                         "stats": dict(self.stats)})

    engine.Engine.run_pass = run_pass
    return seen


def _raw_probe() -> list[Any]:
    """Record the writer's raw-copy plans (which levels were copied as stored, and why
    the others were encoded again; docs/design.md section 3.9)."""
    from ngff_gpu.io.rawcopy import RawLevels

    seen: list[Any] = []
    real = RawLevels.plan.__func__

    def plan(cls, *args, **kwargs):
        seen.append(real(cls, *args, **kwargs))
        return seen[-1]

    RawLevels.plan = classmethod(plan)
    return seen


def child(case: str, src: Path, store: Path, chunk: int, rehearsal: bool) -> dict[str, Any]:
    """Run one case in this fresh process; imports and setup precede the clock."""
    import zarr

    from ngff_gpu.io.codecs import compressors_for

    comp = compressors_for("zstd", 3, 3, 2)
    out: dict[str, Any] = {"case": case}
    timed: list[TimedBackend] = []
    probe: list[dict[str, Any]] = []
    if case.startswith("ngff_gpu"):
        import ngff_gpu
        from ngff_gpu.compute.backends import CudaProvider, use_cuda_provider

        probe = _engine_probe()
        raw_plans = _raw_probe()
        device = "cuda" if "cuda" in case else "cpu"
        limit = "8GiB" if case.endswith("8gib") else None
        recompress = not case.endswith("rawcopy")

        def make(device_id: int) -> TimedBackend:
            if rehearsal:
                from tests.hostkernels.standin import host_backend

                timed.append(TimedBackend(host_backend()))
            else:
                from ngff_gpu.compute.backends.cupy_backend import CupyBackend

                timed.append(TimedBackend(CupyBackend(device_id)))
            return timed[-1]

        if device == "cpu":
            # Setup, before the clock: load (or, with a cold cache, compile) the compiled
            # CPU kernels for this dtype, as any long-running process has them loaded.
            t0 = time.perf_counter()
            ngff_gpu.downsample(np.zeros((16, 16, 16), np.uint16), 2)
            out["cpu_kernels_warmup_s"] = time.perf_counter() - t0

        provider = (CudaProvider(available=lambda: True, create=make, current_device=lambda: 0,
                                 free_memory=lambda b: 8 << 30)
                    if rehearsal else CudaProvider(create=make))

        def body() -> None:
            with use_cuda_provider(provider):
                img = ngff_gpu.to_ngff_image(zarr.open_array(str(src), mode="r"), dims=DIMS)
                ms = ngff_gpu.to_multiscales(img, FACTORS, chunks=chunk)
                ngff_gpu.to_ngff_zarr(str(store), ms, device=device, memory_limit=limit,
                                      recompress=recompress)
    elif case == "plain_copy":
        zarr.config.set({"codec_pipeline.path": ZARRS})

        def body() -> None:
            vol = zarr.open_array(str(src), mode="r")[...]
            dst = zarr.create_array(str(store), shape=vol.shape, dtype=vol.dtype,
                                    chunks=(chunk,) * 3, compressors=comp, dimension_names=DIMS,
                                    zarr_format=3, overwrite=True)
            dst[...] = vol
    elif case == "ngff_zarr":
        import dask.array as da
        import ngff_zarr as nz

        out["ngff_zarr_version"] = nz.__version__ if hasattr(nz, "__version__") else None

        def body() -> None:
            img = nz.to_ngff_image(da.from_zarr(str(src)), dims=DIMS)
            ms = nz.to_multiscales(img, FACTORS, chunks=chunk)
            nz.to_ngff_zarr(str(store), ms, version="0.5", compressors=[comp])
    else:
        raise SystemExit(f"unknown case {case!r}")
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    body()
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = cpu_seconds() - cpu0
    out["peak_rss_bytes"] = peak_rss_bytes()
    if probe:
        out["passes"] = probe
        out["engine_s"] = {k: sum(p["stats"][k] for p in probe) for k in probe[0]["stats"]}
    if case.startswith("ngff_gpu"):
        out["level0"] = [line for plan in raw_plans for line in plan.summary()]
    if timed:
        out["backend_s"] = {k: sum(t.stats[k] for t in timed) for k in timed[0].stats}
    return out


# ----------------------------------------------------------------------------- checks


def _levels(store: Path) -> list[Any]:
    """The arrays of an OME-Zarr store's levels (or the array of a plain store)."""
    import zarr

    node = zarr.open(str(store), mode="r")
    if isinstance(node, zarr.Array):
        return [node]
    ms = node.attrs.get("ome", node.attrs).get("multiscales")[0]
    return [node[d["path"]] for d in ms["datasets"]]


def same_arrays(a: Any, b: Any, slab: int) -> bool:
    """Equal shape, dtype and every value, compared a z-slab at a time."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return all(np.array_equal(a[z:z + slab], b[z:z + slab]) for z in range(0, a.shape[0], slab))


def check(store: Path, src: Path, chunk: int, ome: bool) -> dict[str, Any]:
    """Validate an output store and compare its level 0 with the input."""
    import zarr

    res: dict[str, Any] = {"store_bytes": dir_size_bytes(store)}
    try:
        if ome:
            import ngff_gpu

            ngff_gpu.validate_store(str(store))
            res["valid"] = True
        with zarr.config.set({"codec_pipeline.path": ZARRS}):
            res["level0_equals_input"] = same_arrays(_levels(store)[0],
                                                     zarr.open_array(str(src), mode="r"), chunk)
    except Exception as exc:  # noqa: BLE001 - recorded
        res["error"] = f"{type(exc).__name__}: {exc}"
        res.setdefault("valid", False)
    return res


# ----------------------------------------------------------------------------- parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="2048,1024,1024")
    p.add_argument("--chunk", type=int, default=128)
    p.add_argument("--work", type=Path, default=REPO / "benchmarks" / "out" / "gpu_e2e")
    p.add_argument("--budget", type=float, default=None, help="seconds for all cases")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--rehearsal", action="store_true")
    p.add_argument("--prepare-only", action="store_true", help="write the input and stop")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        write_json(args.result, child(args.child, args.src, args.store, args.chunk,
                                      args.rehearsal))
        return 0
    if args.rehearsal:
        args.shape, args.chunk = "128,64,64", 32
    shape = tuple(int(s) for s in args.shape.split(","))
    deadline = Deadline(args.budget)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    if args.prepare_only:
        ensure_input(work, shape, args.chunk)
        return 0
    result: dict[str, Any] = {
        "benchmark": "bench_gpu_e2e", "rehearsal": args.rehearsal,
        "config": {"shape": list(shape), "dtype": "uint16", "chunks": args.chunk,
                   "factors": FACTORS, "codec": "zstd", "codec_level": 3, "version": "0.5",
                   "input_bytes": int(np.prod(shape)) * 2, "cpu_count": os.cpu_count(),
                   "work": str(work)},
        "cases": {}, "errors": [],
    }

    def save() -> None:
        if args.json is not None:
            write_json(args.json, result)

    try:
        t0 = time.perf_counter()
        src = ensure_input(work, shape, args.chunk)
        result["input"] = {"path": str(src), "bytes_on_disk": dir_size_bytes(src),
                           "seconds_to_make_or_find": time.perf_counter() - t0}
    except Exception:  # noqa: BLE001
        result["errors"].append("input: " + traceback.format_exc(limit=4))
        save()
        return 1
    save()
    kept: dict[str, Path] = {}
    for case in [c for c in args.cases.split(",") if c]:
        box = deadline.box(BOXES.get(case, 120), reserve=20)
        if box < 10:
            result["cases"][case] = {"skipped": f"no time left in the budget ({box:.0f} s)"}
            continue
        store = work / f"out_{case}.ome.zarr"
        remove_tree(store)
        warm(src)
        res_path = work / f"{case}.result.json"
        res_path.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--child", case, "--src", str(src), "--store",
               str(store), "--chunk", str(args.chunk), "--result", str(res_path)]
        if args.rehearsal:
            cmd.append("--rehearsal")
        print(f"case {case} (box {box:.0f} s)", flush=True)
        run = run_boxed(cmd, box, env=child_env(), own_group=False)
        res = read_json(res_path) or {}
        res["run"] = run
        if run["timed_out"]:
            res["lower_bound_s"] = run["seconds"]
        elif run["exit_code"] != 0:
            res["error"] = f"exit {run['exit_code']} (see the log)"
        if "wall_s" in res:
            res["check"] = check(store, src, args.chunk, ome=case != "plain_copy")
            print(f"  {case}: {res['wall_s']:.2f} s  {res['check']}", flush=True)
        else:
            print(f"  {case}: no result ({res.get('error') or 'timed out'})", flush=True)
        result["cases"][case] = res
        if case in ("ngff_gpu_cuda", "ngff_gpu_cpu") and "wall_s" in res:
            kept[case] = store
        else:
            remove_tree(store)
        if len(kept) == 2:
            import zarr

            with zarr.config.set({"codec_pipeline.path": ZARRS}):
                result["cuda_equals_cpu"] = all(
                    same_arrays(a, b, args.chunk) for a, b in
                    zip(_levels(kept["ngff_gpu_cuda"]), _levels(kept["ngff_gpu_cpu"]),
                        strict=True))
            print(f"  every level of the CUDA store equals the CPU store's: "
                  f"{result['cuda_equals_cpu']}", flush=True)
            for s in kept.values():
                remove_tree(s)
            kept.clear()
        summarize(result)
        save()
    for s in kept.values():
        remove_tree(s)
    summarize(result)
    save()
    print(json.dumps(result.get("summary", {}), indent=1))
    return 0


def summarize(result: dict[str, Any]) -> None:
    """Ratios between the cases of this run."""
    cases = result["cases"]

    def wall(name: str) -> float | None:
        return cases.get(name, {}).get("wall_s")

    gpu, cpu, copy, nz = (wall(c) for c in ("ngff_gpu_cuda", "ngff_gpu_cpu", "plain_copy",
                                             "ngff_zarr"))
    nz_bound = cases.get("ngff_zarr", {}).get("lower_bound_s")
    gib = result["config"]["input_bytes"] / (1 << 30)
    s: dict[str, Any] = {}
    for name in cases:
        if wall(name):
            s[f"{name}_s"] = wall(name)
            s[f"{name}_GiB_per_s"] = gib / wall(name)
    if gpu and cpu:
        s["cuda_speedup_over_cpu"] = cpu / gpu
    if gpu and copy:
        s["cuda_x_plain_copy"] = gpu / copy
    if gpu and nz:
        s["cuda_speedup_over_ngff_zarr"] = nz / gpu
    elif gpu and nz_bound:
        s["cuda_speedup_over_ngff_zarr_at_least"] = nz_bound / gpu
    if cpu and nz:
        s["cpu_speedup_over_ngff_zarr"] = nz / cpu
    result["summary"] = s


if __name__ == "__main__":
    raise SystemExit(main())
