"""Study: the read cache a GAUSSIAN pass plans, as it is and with a one-axis carry.

No data is read: this builds the bricks of pass 0 (level 0 -> 1, factors [2, 4, 8], output
chunks 128, bricks 256^3 as the writer plans them at the default ``memory_limit``) over an
N^3 uint16 source whose decode cells are ``cell x 128 x 128`` (128: the Zarr input of
``bench_inputs.py``; 32: its TIFF input as ``TiffTiles`` groups pages), and prints
:attr:`ReadPlan.cache_peak` for

``as is``
    the product's geometry: a brick decodes the first chunk layer past its end for its
    halo, and that layer is kept whole for the next brick along the outermost axis;
``carry``
    a geometry the product does not have (studied for issue 13): each brick also consumes
    that layer (computes the level-1 rows it allows, ``e1 - w1`` of them, and would hand
    them to its successor, which then reads only the last few rows of the layer); the
    carried rows' own peak is printed beside it, and so is the largest brick's working
    memory, which grows because the consuming brick reads that layer too.

Usage::

    python benchmarks/study_read_cache.py 512 1024 --cell 128
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ngff_gpu.compute.methods import Methods  # noqa: E402
from ngff_gpu.levels.bricks import Pass, iter_bricks  # noqa: E402
from ngff_gpu.levels.plan import plan_levels  # noqa: E402
from ngff_gpu.levels.source import Grid, ReadPlan, read_order  # noqa: E402

MIB = 1 << 20


def study(n: int, cell: int) -> tuple[float, float, float, int, float, float]:
    """(cache as is, cache with carry, carried rows' peak) in MiB, the rows carried, and
    the largest brick's planned working memory (``brick_bytes``' 10 bytes per uint16
    voxel read) in MiB as is and with carry (the consuming brick reads the layer too)."""
    shape = (n,) * 3
    levels = plan_levels(list("zyx"), shape, {}, {}, [2, 4, 8], 128, Methods.GAUSSIAN,
                         "scale_factors")
    p = Pass(0, 1, (256, 256, 256))
    bricks = read_order(levels, p, list(iter_bricks(levels, p)))
    grid = Grid.regular(shape, (cell, 128, 128))
    as_is = ReadPlan(grid, bricks, 2).cache_peak
    step, k, a = levels[1].step, 1, 0
    counts = [-(-s // b) for s, b in zip(shape, p.brick)]
    new = {b.index: b for b in bricks}
    carried: dict[int, int] = {}
    rows = 0
    for b in bricks:
        idx = list(np.unravel_index(b.index, counts))
        if idx[a] + 1 >= counts[a]:
            continue
        idx[a] += 1
        s = new[int(np.ravel_multi_index(idx, counts))]
        bb = new[b.index]
        end = min(-(-bb.read[a][1] // 128) * 128, n)  # the end of the layer decoded ahead
        w1 = e1 = b.write[k][a][1]
        while e1 < s.write[k][a][1]:
            need = list(b.need[k])
            need[a] = (need[a][0], e1 + 1)
            if step.input_window(tuple(need), shape)[a][1] > end:
                break
            e1 += 1
        need = list(bb.need[k])
        need[a] = (need[a][0], e1)
        read = list(bb.read)
        read[a] = (read[a][0], max(end, step.input_window(tuple(need), shape)[a][1]))
        new[b.index] = dataclasses.replace(bb, need={k: tuple(need)}, read=tuple(read))
        sneed = list(s.need[k])
        sneed[a] = (e1, sneed[a][1])
        sread = list(s.read)
        sread[a] = (min(step.input_window(tuple(sneed), shape)[a][0], end), sread[a][1])
        new[s.index] = dataclasses.replace(s, need={k: tuple(sneed)}, read=tuple(sread))
        carried[s.index] = (e1 - w1) * int(np.prod([hi - lo for lo, hi in b.write[k][1:]])) * 2
        rows = e1 - w1
    ordered = [new[b.index] for b in bricks]
    per_voxel = 2 + 2 * 4  # uint16 read + two float32 intermediates, as brick_bytes counts

    def work(bs):
        return max(int(np.prod([hi - lo for lo, hi in b.read])) for b in bs) * per_voxel / MIB

    with_carry = ReadPlan(grid, ordered, 2).cache_peak
    pos = {b.index: i for i, b in enumerate(ordered)}
    per_slab = counts[1] * counts[2]
    events = sorted([(pos[i] - per_slab, v) for i, v in carried.items()]
                    + [(pos[i], -v) for i, v in carried.items()], key=lambda e: (e[0], e[1] < 0))
    live = peak = 0
    for _, v in events:
        live += v
        peak = max(peak, live)
    return as_is / MIB, with_carry / MIB, peak / MIB, rows, work(bricks), work(ordered)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[512, 1024])
    ap.add_argument("--cell", type=int, default=128)
    args = ap.parse_args(argv)
    for n in args.sizes:
        as_is, carry, carried, rows, brick, brick_carry = study(n, args.cell)
        print(f"{n}^3, cells {args.cell}x128x128: cache as is {as_is:.0f} MiB; with carry "
              f"{carry:.0f} MiB + {carried:.0f} MiB of carried rows ({rows} level-1 rows); "
              f"largest brick's working memory {brick:.0f} MiB as is, {brick_carry:.0f} MiB "
              "with carry")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
