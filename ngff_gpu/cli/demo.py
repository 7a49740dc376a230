"""``ngff-gpu demo``: write a built-in sample volume as OME-Zarr, validate it, show the levels."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from typing import Any

import numpy as np

from ngff_gpu.cli._common import PROG, HelpFormatter
from ngff_gpu.errors import ArgumentError

EPILOG = f"""examples:
  {PROG} demo                       # ./demo.ome.zarr, 192^3 uint16
  {PROG} demo /tmp/demo.ome.zarr --size 256 --device cuda
"""


def demo_volume(size: int = 192, seed: int = 0) -> np.ndarray:
    """A ``size^3`` uint16 volume: smooth blobs and shells on a gradient, plus noise.

    Parameters
    ----------
    size : int
        Edge length in voxels (at least 8).
    seed : int
        Random seed (the volume is deterministic for a seed).

    Returns
    -------
    numpy.ndarray
        ``(size, size, size)`` uint16, dims ``zyx``.
    """
    if size < 8:
        raise ArgumentError(f"--size must be at least 8, got {size}")
    rng = np.random.default_rng(seed)
    axis = np.linspace(0.0, 1.0, size, dtype=np.float32)
    z, y, x = axis[:, None, None], axis[None, :, None], axis[None, None, :]
    vol = 0.15 + 0.1 * (z + 0.5 * np.sin(6.0 * x) * np.cos(4.0 * y))
    vol = np.broadcast_to(vol, (size,) * 3).astype(np.float32)
    for _ in range(24):  # gaussian blobs, each computed in its own bounding box only
        centre = rng.uniform(0.1, 0.9, 3)
        sigma = rng.uniform(0.02, 0.07)
        amp = rng.uniform(0.3, 0.8)
        lo = np.clip(((centre - 3.5 * sigma) * size).astype(int), 0, size)
        hi = np.clip(((centre + 3.5 * sigma) * size).astype(int) + 1, 0, size)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        d2 = ((z[box[0]] - centre[0]) ** 2 + (y[:, box[1]] - centre[1]) ** 2
              + (x[:, :, box[2]] - centre[2]) ** 2)
        vol[box] += amp * np.exp(-d2 / (2 * sigma * sigma))
    r = np.sqrt((z - 0.5) ** 2 + (y - 0.5) ** 2 + (x - 0.5) ** 2)
    vol += 0.4 * np.exp(-((r - 0.38) ** 2) / (2 * 0.012**2))  # a thin spherical shell
    vol += rng.normal(0.0, 0.02, vol.shape).astype(np.float32)
    np.clip(vol, 0.0, 1.0, out=vol)
    return np.rint(vol * 60000.0).astype(np.uint16)


def command_name() -> str:
    """How this program was started: ``ngff-gpu`` or ``python -m ngff_gpu.cli``."""
    if os.path.basename(sys.argv[0] if sys.argv else "") in ("__main__.py", "-m"):
        return "python -m ngff_gpu.cli"
    return PROG


def _factors(size: int, smallest: int = 16) -> list[int]:
    out, f = [], 2
    while size // f >= smallest:
        out.append(f)
        f *= 2
    return out or [2]


def add_parser(sub: Any) -> None:
    """Register ``demo``."""
    from ngff_gpu.cli._common import method_name
    from ngff_gpu.compute.methods import METHOD_NAMES

    p = sub.add_parser(
        "demo", help="write, validate and describe a built-in sample volume",
        description="Generate a 3-D sample volume (uint16: smooth structure plus noise), "
                    "convert it to OME-Zarr, validate the store and print its levels and the "
                    "time taken. An existing Zarr store at OUTPUT is replaced; any other "
                    "existing path is left alone (error).",
        epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("output", nargs="?", default="demo.ome.zarr", metavar="OUTPUT",
                   help="store to write (default ./demo.ome.zarr)")
    p.add_argument("--size", type=int, default=192, help="edge length in voxels (default 192)")
    p.add_argument("--method", type=method_name, choices=METHOD_NAMES, default="gaussian",
                   metavar="METHOD", help="downsampling method (default gaussian)")
    p.add_argument("--chunks", type=int, default=64, help="chunk edge (default 64)")
    p.add_argument("--version", choices=("0.4", "0.5"), default="0.5", help="OME-Zarr version")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="compute backend (default auto)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate, convert, validate and summarize."""
    import ngff_gpu as nz
    from ngff_gpu.cli._common import describe_backend
    from ngff_gpu.cli.convert import is_zarr_dir
    from ngff_gpu.cli.info import print_info, store_info
    from ngff_gpu.errors import StoreExistsError

    out = args.output
    device = describe_backend(args.device)  # fails before anything is created
    if os.path.lexists(out) and not (os.path.isdir(out) and (is_zarr_dir(out) or not os.listdir(out))):
        raise StoreExistsError(f"{out} exists and is not a Zarr store; refusing to replace it")
    t0 = time.perf_counter()
    volume = demo_volume(args.size)
    t_gen = time.perf_counter() - t0
    image = nz.to_ngff_image(volume, dims=["z", "y", "x"], scale={"z": 1.0, "y": 0.5, "x": 0.5},
                             name="demo", axes_units={d: "micrometer" for d in "zyx"})
    ms = nz.to_multiscales(image, scale_factors=_factors(args.size), chunks=args.chunks,
                           method=args.method)
    t1 = time.perf_counter()
    nz.to_ngff_zarr(out, ms, version=args.version, overwrite=True, device=args.device,
                    progress=not args.quiet, omero=True)
    t_write = time.perf_counter() - t1
    version = nz.validate_store(out)
    nbytes = volume.nbytes
    print(f"demo volume {args.size}^3 uint16 ({nbytes / 2**20:.1f} MiB) generated in {t_gen:.2f} s")
    print(f"pyramid {ms.method.name} written in {t_write:.2f} s "
          f"({nbytes / 2**20 / max(t_write, 1e-9):.0f} MiB/s) on {device}")
    print(f"valid OME-Zarr {version}")
    print_info(store_info(out), columns=("path", "shape", "chunks", "scale", "translation",
                                         "on disk"))
    print(f"total {time.perf_counter() - t0:.2f} s")
    print(f"next: {command_name()} info {shlex.quote(out)}")
    return 0
