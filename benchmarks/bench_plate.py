"""Writing an HCS plate: ngff_gpu's ``HCSPlateWriter`` next to ngff-zarr 0.50's.

The plate: ``--rows`` x ``--columns`` wells, ``--fields`` fields per well, each field a
``(2, 1080, 1280)`` uint16 image (two channels of a typical camera; smooth structure plus
noise, made in memory before the clock starts), a pyramid with each tool's default method
and scale factors, written to a local ``.ome.zarr`` at OME-Zarr 0.5.

Cases, each in a fresh process: ``ngff_gpu`` with one writer thread and with ``--threads``
threads (one field per thread, ngff-zarr's parallel pattern: threads calling
``write_well_image``), and ``ngff_zarr`` likewise. Wall seconds are the median of
``--repeat`` runs (interleaved); the plate is validated after each of our runs.

    python benchmarks/bench_plate.py --rows 2 --columns 3 --fields 2 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ensure_repo_on_path, machine_info, run_child, versions  # noqa: E402

SHAPE = (2, 1080, 1280)


def field_data(i: int):
    import numpy as np

    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:SHAPE[1], 0:SHAPE[2]].astype(np.float32)
    base = 2000 + 1500 * np.sin(y / (40 + i)) * np.cos(x / 55)
    return np.stack([base + rng.integers(0, 256, SHAPE[1:]) + 300 * c
                     for c in range(SHAPE[0])]).astype(np.uint16)


def child(args: argparse.Namespace) -> None:
    n_rows, n_cols, n_fields = args.rows, args.columns, args.fields
    rows = [chr(ord("A") + r) for r in range(n_rows)]
    cols = [str(c + 1) for c in range(n_cols)]
    lib = args.case.split(":")[0]
    threads = int(args.case.split(":")[1])
    if lib == "ngff_gpu":
        ensure_repo_on_path()
        import ngff_gpu as nz
    else:
        import ngff_zarr as nz
    plate = nz.Plate(columns=[nz.PlateColumn(name=c) for c in cols],
                     rows=[nz.PlateRow(name=r) for r in rows],
                     wells=[nz.PlateWell(path=f"{r}/{c}", rowIndex=i, columnIndex=j)
                            for i, r in enumerate(rows) for j, c in enumerate(cols)],
                     version="0.5")
    work = [(w.path.split("/"), f, field_data(k * n_fields + f))
            for k, w in enumerate(plate.wells) for f in range(n_fields)]
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        store = str(Path(tmp) / "plate.ome.zarr")
        t0 = time.perf_counter()
        with nz.HCSPlateWriter(store, plate) as writer:
            def write(item):
                (r, c), f, data = item
                image = nz.to_ngff_image(data, dims=["c", "y", "x"])
                writer.write_well_image(nz.to_multiscales(image), r, c, field_index=f)

            if threads == 1:
                for item in work:
                    write(item)
            else:
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(write, work))
        seconds = time.perf_counter() - t0
        if lib == "ngff_gpu":
            nz.from_hcs_zarr(store, validate=True)
    print(json.dumps({"seconds": seconds}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2)
    p.add_argument("--columns", type=int, default=3)
    p.add_argument("--fields", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=None, help="directory for the plates (default: temp)")
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case:
        child(args)
        return
    cases = [f"{lib}:{t}" for lib in ("ngff_gpu", "ngff_zarr") for t in (1, args.threads)]
    times: dict[str, list[float]] = {c: [] for c in cases}
    common = ["--rows", str(args.rows), "--columns", str(args.columns), "--fields",
              str(args.fields)] + (["--out", args.out] if args.out else [])
    for _ in range(args.repeat):
        for case in cases:
            res = run_child(__file__, ["--case", case, *common], timeout=3600)
            if "error" in res:
                print(f"{case}: {res['error']}", file=sys.stderr)
                continue
            times[case].append(res["seconds"])
    n = args.rows * args.columns * args.fields
    print(json.dumps({"machine": machine_info(), "versions": versions()}, default=str))
    print(f"plate {args.rows}x{args.columns} wells x {args.fields} fields = {n} fields of "
          f"{'x'.join(map(str, SHAPE))} uint16, median of {args.repeat}")
    for case in cases:
        t = median(times[case]) if times[case] else float("nan")
        print(f"  {case:14} {t:8.2f} s  {n / t:6.2f} fields/s")


if __name__ == "__main__":
    main()
