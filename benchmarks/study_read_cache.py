"""Study: what the read side of a GAUSSIAN pass holds, with aligned and hand-over bricks.

No data is read: this builds the bricks of pass 0 (level 0 -> 1, factors [2, 4, 8], output
chunks 128, bricks 256^3 as the writer plans them at the default ``memory_limit``) over an
N^3 uint16 source whose decode cells are ``cell x 128 x 128`` (128: the Zarr input of
``bench_inputs.py``; 32: its TIFF input as ``TiffTiles`` groups pages), and prints, in both
brick forms the product has (``levels/schedule.py``):

``aligned``
    bricks on the write grid; a brick decodes the first chunk layer past its end for its
    halo, and the read cache keeps that layer whole for the next brick along the outermost
    axis (``ReadPlan.cache_peak``);
``hand-over``
    bricks that never read past their end; the cache keeps thin strips under the halos,
    and the cell assembler holds the partly computed output cells (``hold_peak``);

each with the largest box decoded at once, and the form the planner takes.

Usage::

    python benchmarks/study_read_cache.py 512 1024 --cell 128
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ngff_gpu.compute.methods import Methods  # noqa: E402
from ngff_gpu.levels.bricks import Pass, iter_bricks  # noqa: E402
from ngff_gpu.levels.plan import plan_levels  # noqa: E402
from ngff_gpu.levels.schedule import pass_memory  # noqa: E402
from ngff_gpu.levels.source import Grid, ReadPlan, read_order  # noqa: E402

MIB = 1 << 20


def study(n: int, cell: int) -> dict[str, float | bool]:
    """MiB held by the read side of pass 0 over an ``n``^3 source, in both forms."""
    shape = (n,) * 3
    levels = plan_levels(list("zyx"), shape, {}, {}, [2, 4, 8], 128, Methods.GAUSSIAN,
                         "scale_factors")
    grids = [lv.chunks for lv in levels]
    p = Pass(0, 1, (256, 256, 256))
    grid = Grid.regular(shape, (cell, 128, 128))
    aligned = ReadPlan(grid, read_order(levels, p, list(iter_bricks(levels, p))), 2)
    mem = pass_memory(levels, grids, p, grid, 2, True, 1 << 40)
    return {"aligned_cache": aligned.cache_peak / MIB, "aligned_box": aligned.box_peak / MIB,
            "handover_cache": mem.cache / MIB, "handover_box": mem.box / MIB,
            "handover_held": mem.held / MIB, "handover": mem.handover}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[512, 1024])
    ap.add_argument("--cell", type=int, default=128)
    args = ap.parse_args(argv)
    for n in args.sizes:
        r = study(n, args.cell)
        a = r["aligned_cache"] + r["aligned_box"]
        h = r["handover_cache"] + r["handover_box"] + r["handover_held"]
        print(f"{n}^3, cells {args.cell}x128x128: aligned: cache {r['aligned_cache']:.0f} + box "
              f"{r['aligned_box']:.0f} = {a:.0f} MiB; hand-over: cache "
              f"{r['handover_cache']:.0f} + box {r['handover_box']:.0f} + assembler "
              f"{r['handover_held']:.0f} = {h:.0f} MiB; planner takes "
              f"{'hand-over' if r['handover'] else 'aligned'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
