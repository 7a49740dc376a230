"""A 4 GiB HDF5 volume to OME-Zarr, next to a plain copy of the same data from HDF5 to Zarr.

Input: ``VolumeRecipe`` (smooth + noise uint16, see ``_common.py``) of shape
2048 x 1024 x 1024 (4 GiB) by default, one HDF5 dataset ``/data`` in chunks of
64^3, gzip level 4 (h5py's default level; the most common HDF5 compression), written
once (chunks compressed in parallel, stored with ``write_direct_chunk``).

Cases, each in its own fresh process (peak RSS is ``VmHWM`` of that process):

``plain_copy``
    h5py reads the dataset in slabs one output chunk deep (128 planes), each slab
    written to a Zarr v3 array (chunks 128^3, zstd level 3: ngff-gpu's default codec)
    through the ``zarrs`` codec pipeline: level 0 alone, no pyramid.
``ngff_gpu_gaussian`` / ``ngff_gpu_mean``
    ``open_input("file.h5:/data")`` (the CLI's opener: our HDF5 chunk reader) ->
    ``to_multiscales(..., [2, 4, 8], chunks=128, method)`` -> ``to_ngff_zarr(...,
    device="cpu", memory_limit=1 GiB)``; level 0 of the output is compared with the
    source on sampled slabs after the first repeat.

``read_h5py`` / ``read_chunks`` (not run by default: ``--cases read_h5py,read_chunks``)
    Reading alone, slab by slab (128 planes) into one buffer: h5py's hyperslab reads
    against our chunk reader (``H5Chunks.read_into``), the decode throughput the
    conversion starts from.

Runs are interleaved (repeat r runs every case once) and the median of the repeats is
reported with CPU seconds and peak RSS. Target (issue 21): each conversion within
``memory_limit`` (peak RSS) and at most 1.3x the plain copy's time.

Usage::

    python benchmarks/bench_hdf5.py [--shape 2048,1024,1024] [--repeat 3]
        [--cases plain_copy,ngff_gpu_gaussian,ngff_gpu_mean] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    GIB,
    MIB,
    OUT_DIR,
    VolumeRecipe,
    cpu_seconds,
    current_rss_bytes,
    machine_info,
    peak_rss_bytes,
    remove_tree,
    run_child,
    versions,
)

CASES = ("plain_copy", "ngff_gpu_gaussian", "ngff_gpu_mean")
EXTRA_CASES = ("read_h5py", "read_chunks")
H5_CHUNK = 64
CHUNK = 128
FACTORS = [2, 4, 8]
MEMORY_LIMIT = GIB
TARGET = 1.3
ZARRS = "zarrs.ZarrsCodecPipeline"


def h5_input(shape: tuple[int, int, int]) -> Path:
    """The HDF5 file of ``shape`` (chunks 64^3, gzip 4), written once."""
    import h5py
    import imagecodecs

    path = OUT_DIR / f"hdf5_{'x'.join(map(str, shape))}_c{H5_CHUNK}_gzip4.h5"
    if path.exists():
        return path
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.h5")
    recipe = VolumeRecipe(shape, seed=21)
    c = H5_CHUNK
    with h5py.File(tmp, "w") as f, ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        dset = f.create_dataset("data", shape=shape, dtype=np.uint16, chunks=(c, c, c),
                                compression="gzip", compression_opts=4)
        for z0 in range(0, shape[0], c):
            slab = recipe.slab(z0, min(shape[0], z0 + c))
            keys = [(y0, x0) for y0 in range(0, shape[1], c) for x0 in range(0, shape[2], c)]

            def encode(key: tuple[int, int], slab: np.ndarray = slab) -> bytes:
                block = np.zeros((c, c, c), np.uint16)  # edge chunks are stored whole
                part = slab[:, key[0]:key[0] + c, key[1]:key[1] + c]
                block[:part.shape[0], :part.shape[1], :part.shape[2]] = part
                return imagecodecs.zlib_encode(block.tobytes(), level=4)

            for key, data in zip(keys, pool.map(encode, keys)):
                dset.id.write_direct_chunk((z0, *key), data)
    tmp.rename(path)
    return path


def warm(path: Path) -> None:
    """Read the file once so every case finds it in the page cache."""
    with open(path, "rb") as fh:
        while fh.read(64 * MIB):
            pass


def child_main(case: str, src: Path, store: Path) -> dict[str, Any]:
    """Run one case in this fresh process; imports and setup precede the clock."""
    import zarr

    from ngff_gpu.io.codecs import compressors_for

    comp = compressors_for("zstd", None, 3, 2)
    if case.startswith("read_"):
        import h5py

        from ngff_gpu.io.inputs.hdf5_chunks import H5Chunks

        def body() -> None:
            reader = H5Chunks(str(src), "data")
            with h5py.File(src, "r") as f:
                dset = f["data"]
                n, ny, nx = dset.shape
                buf = np.empty((CHUNK, ny, nx), dtype=dset.dtype)
                for z0 in range(0, n, CHUNK):
                    z1 = min(n, z0 + CHUNK)
                    if case == "read_h5py":
                        dset.read_direct(buf, np.s_[z0:z1], np.s_[:z1 - z0])
                    else:
                        reader.read_into([(z0, z1), (0, ny), (0, nx)], buf[:z1 - z0])
    elif case == "plain_copy":
        import h5py

        zarr.config.set({"codec_pipeline.path": ZARRS})

        def body() -> None:
            with h5py.File(src, "r") as f:
                dset = f["data"]
                out = zarr.create_array(str(store), shape=dset.shape, dtype=dset.dtype,
                                        chunks=(CHUNK,) * 3, compressors=comp, zarr_format=3,
                                        dimension_names=["z", "y", "x"], overwrite=True)
                for z0 in range(0, dset.shape[0], CHUNK):
                    out[z0:z0 + CHUNK] = dset[z0:z0 + CHUNK]
    else:
        import ngff_gpu
        from ngff_gpu.io.inputs import open_input

        method = case.rsplit("_", 1)[1]

        def body() -> None:
            image = open_input(f"{src}:/data")
            img = ngff_gpu.to_ngff_image(image.data, dims=image.dims)
            ms = ngff_gpu.to_multiscales(img, FACTORS, chunks=CHUNK, method=method)
            ngff_gpu.to_ngff_zarr(str(store), ms, device="cpu", memory_limit=MEMORY_LIMIT,
                                  progress=False)
    rss_before = current_rss_bytes()
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    body()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "cpu_s": cpu_seconds() - cpu0, "peak_rss_bytes": peak_rss_bytes(),
            "rss_before_bytes": rss_before}


def verify(store: Path, src: Path, case: str) -> bool:
    """Level 0 of ``store`` equals the HDF5 data on the first, middle and last slab."""
    import h5py
    import zarr

    node = zarr.open(str(store), mode="r")
    level0 = node if case == "plain_copy" else node["scale0/image"]
    with h5py.File(src, "r") as f:
        dset = f["data"]
        n = dset.shape[0]
        for z0 in sorted({0, (n // 2) // CHUNK * CHUNK, max(0, n - CHUNK)}):
            if not np.array_equal(level0[z0:z0 + CHUNK], dset[z0:z0 + CHUNK]):
                return False
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="2048,1024,1024")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"default {','.join(CASES)}; also {','.join(EXTRA_CASES)}")
    p.add_argument("--json", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--src", default=None, help=argparse.SUPPRESS)
    p.add_argument("--store", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child_main(args.child, Path(args.src), Path(args.store))))
        return 0
    shape = tuple(int(n) for n in args.shape.split(","))
    cases = [c for c in args.cases.split(",") if c]
    t0 = time.perf_counter()
    src = h5_input(shape)
    print(f"input {src.name} ({os.path.getsize(src) / GIB:.2f} GiB on disk, "
          f"{np.prod(shape) * 2 / GIB:.2f} GiB of pixels), made in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    checked: dict[str, bool] = {}
    for r in range(args.repeat):
        for case in cases:
            store = OUT_DIR / f"hdf5_{case}.ome.zarr"
            remove_tree(store)
            warm(src)
            res = run_child(__file__, ["--child", case, "--src", str(src), "--store", str(store)])
            if "error" in res:
                print(f"{case}: {res['error']}", flush=True)
                return 1
            if case not in checked and not case.startswith("read_"):
                checked[case] = verify(store, src, case)
            remove_tree(store)
            runs[case].append(res)
            print(f"repeat {r}: {case:18s} {res['wall_s']:7.1f} s  cpu {res['cpu_s']:7.1f} s  "
                  f"peak RSS {res['peak_rss_bytes'] / MIB:6.0f} MiB", flush=True)
    summary = {}
    base = statistics.median(x["wall_s"] for x in runs["plain_copy"]) if "plain_copy" in runs \
        else None
    for case, rs in runs.items():
        wall = statistics.median(x["wall_s"] for x in rs)
        summary[case] = {
            "wall_s": wall, "cpu_s": statistics.median(x["cpu_s"] for x in rs),
            "peak_rss_mib": max(x["peak_rss_bytes"] for x in rs) / MIB,
            "x_copy": wall / base if base else None, "verified": checked.get(case)}
    print(f"\n{'case':18s} {'wall s':>8s} {'cpu s':>8s} {'x copy':>7s} {'peak MiB':>9s} ok")
    for case, s in summary.items():
        ratio = f"{s['x_copy']:.2f}" if s["x_copy"] else "-"
        print(f"{case:18s} {s['wall_s']:8.1f} {s['cpu_s']:8.1f} {ratio:>7s} "
              f"{s['peak_rss_mib']:9.0f} {s['verified']}")
    for case, s in summary.items():
        if case.startswith("ngff_gpu") and s["x_copy"] is not None:
            ok_time = s["x_copy"] <= TARGET
            ok_mem = s["peak_rss_mib"] * MIB <= MEMORY_LIMIT
            print(f"{case}: time {'meets' if ok_time else 'misses'} <= {TARGET}x copy; peak RSS "
                  f"{'within' if ok_mem else 'over'} memory_limit ({MEMORY_LIMIT // MIB} MiB)")
    report = {"machine": machine_info(), "versions": versions(), "shape": shape,
              "repeat": args.repeat, "runs": runs, "summary": summary}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
