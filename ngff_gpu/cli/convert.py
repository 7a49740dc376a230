"""``ngff-gpu convert INPUT... OUTPUT.ome.zarr``: files to an OME-Zarr multiscale image."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from ngff_gpu.cli import _common as c
from ngff_gpu.cli._common import PROG, HelpFormatter

EPILOG = f"""examples:
  {PROG} convert volume.tif volume.ome.zarr
  {PROG} convert cells.ome.tif cells.ome.zarr --method mean --chunks 64 --chunks-per-shard 4
  {PROG} convert 'slices/*.png' stack.ome.zarr --scale z=2,y=0.5,x=0.5 --units micrometer
  {PROG} convert a.npy a.ome.zarr --dims zyx --scale-factors 2,4,8 --version 0.4
  {PROG} convert em.zarr em.ome.zarr --scale-factors 'z=1,y=2,x=2;z=2,y=4,x=4' --device cuda
  {PROG} convert img.tif img.ome.zarr --labels nuclei=nuclei.tif --resume

An existing OUTPUT is an error unless --overwrite (replace it) or --resume
(continue an interrupted conversion with the same parameters) is given.
--overwrite writes the new store beside the old one and swaps it in only when
complete: a failure leaves the old store as it was. A conversion that fails or
is interrupted never leaves OME metadata behind, so the store is never mistaken
for a complete image. One conversion per OUTPUT at a time (a lock file beside it).
"""

_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zattrs")


def add_parser(sub: Any) -> None:
    """Register ``convert``."""
    from ngff_gpu.compute.methods import METHOD_NAMES
    from ngff_gpu.io.codecs import CODEC_NAMES

    p = sub.add_parser(
        "convert", help="convert images (TIFF, OME-TIFF, PNG, .npy, Zarr, ...) to OME-Zarr",
        description="Convert an image file, a stack of files (several paths or a glob pattern) "
                    "or a Zarr/OME-Zarr array into an OME-Zarr multiscale pyramid.",
        epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image file, glob pattern (quote it), several 2-D files (a z-stack), "
                        ".npy, Zarr array or OME-Zarr image")
    p.add_argument("output", metavar="OUTPUT", help="OME-Zarr store to write (e.g. out.ome.zarr)")
    g = p.add_argument_group("pyramid")
    g.add_argument("--method", type=c.method_name, choices=METHOD_NAMES, default=None,
                   metavar="METHOD",
                   help="downsampling method: gaussian (default), mean, nearest, mode (labels), "
                        "min, max; ngff-zarr names such as itkwasm_gaussian are accepted")
    g.add_argument("--scale-factors", type=c.scale_factors, default=None, metavar="FACTORS",
                   help="'2,4,8' (absolute factors per level), 'z=1,y=2,x=2;z=2,y=4,x=4' "
                        "(per dim; a missing dim is 1), or one int N for an automatic ladder "
                        "(ngff-zarr's rule: halve the dims at least two chunks long; default "
                        "128); a single level is written '2,'")
    g.add_argument("--chunks", type=c.chunks, default=None, metavar="CHUNKS",
                   help="chunk size: '64' (spatial dims) or 'z=32,y=128,x=128' "
                        "(default 128 in 3-D, 256 in 2-D)")
    g.add_argument("--chunks-per-shard", type=c.shard_counts, default=None, metavar="N",
                   help="shard the arrays: chunks per shard, '4' or 'z=2,y=4,x=4' (0.5 only)")
    o = p.add_argument_group("output")
    o.add_argument("--version", choices=("0.4", "0.5"), default="0.5",
                   help="OME-Zarr version: 0.5 (Zarr v3, default) or 0.4 (Zarr v2)")
    o.add_argument("--codec", type=c.codec_name, choices=CODEC_NAMES, default="zstd",
                   metavar="CODEC", help=f"compressor: {', '.join(CODEC_NAMES)} (default zstd)")
    o.add_argument("--level", type=int, default=None, help="compression level (codec default)")
    o.add_argument("--name", default=None, help="image name (default: from the input)")
    o.add_argument("--labels", action="append", default=[], metavar="[NAME=]PATH",
                   help="a label image of the same shape, written with MODE under "
                        "labels/NAME (repeatable)")
    o.add_argument("--no-omero", action="store_true",
                   help="do not compute omero display windows")
    mode = o.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true",
                      help="replace an existing OUTPUT: the new store is written beside it and "
                           "swapped in when complete (the old one stays as it was on failure)")
    mode.add_argument("--overwrite-in-place", action="store_true",
                      help="delete an existing OUTPUT first, then write in its place (for "
                           "stores without rename, e.g. object stores; not atomic)")
    mode.add_argument("--resume", action="store_true",
                      help="continue an interrupted conversion of OUTPUT")
    a = p.add_argument_group("axes (override what the input says)")
    a.add_argument("--dims", type=c.dims, default=None, metavar="DIMS",
                   help="names of the input's axes as stored, e.g. zyx, yxc, tczyx")
    a.add_argument("--scale", type=c.per_dim_floats, default=None, metavar="SCALE",
                   help="pixel spacing: '0.5' (spatial dims) or 'z=2.0,y=0.5,x=0.5'")
    a.add_argument("--translation", type=c.per_dim_floats, default=None, metavar="ORIGIN",
                   help="position of the first pixel: 'z=0,y=10.5,x=3'")
    a.add_argument("--units", type=c.units, default=None, metavar="UNITS",
                   help="'micrometer' (spatial dims) or 'z=micrometer,t=second'")
    r = p.add_argument_group("run")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="compute backend (default auto: CUDA when available)")
    r.add_argument("--memory-limit", type=c.memory, default=None, metavar="BYTES",
                   help="host memory for data in flight, e.g. 2GiB or 512MB (default 1GiB)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress, no summary")
    p.set_defaults(func=run)


def is_zarr_dir(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, m)) for m in _ZARR_MARKERS)


def check_output(output: str, inputs: list[str], overwrite: bool, resume: bool) -> None:
    """Refuse outputs that would destroy data or that exist without --overwrite/--resume.

    Raises
    ------
    StoreExistsError
        With the reason.
    """
    from ngff_gpu.errors import StoreExistsError

    if "://" in output:
        return  # remote stores: the writer checks
    out = os.path.realpath(output)
    for p in inputs:
        if "://" in p:
            continue
        src = os.path.realpath(p)
        if src == out or src.startswith(out + os.sep) or out.startswith(src + os.sep):
            raise StoreExistsError(f"OUTPUT {output} overlaps the input {p}; write somewhere else")
    if not os.path.lexists(output):
        return
    if not os.path.isdir(output):
        raise StoreExistsError(f"{output} exists and is not a directory; refusing to replace it")
    if not is_zarr_dir(output):
        if os.listdir(output):
            raise StoreExistsError(
                f"{output} exists and is not a Zarr store; refusing to write into it")
        return
    from ngff_gpu.io.lock import check_unlocked

    check_unlocked(output)  # another conversion writing it: say so, not "--resume"
    if not (overwrite or resume):
        raise StoreExistsError(
            f"{output} already exists; pass --overwrite to replace it or --resume to continue "
            "an interrupted conversion")


def _labels(specs: list[str], shape: tuple[int, ...], dims: list[str] | None) -> dict[str, Any]:
    from ngff_gpu.errors import DimsError, InputFormatError
    from ngff_gpu.io.inputs import open_input, safe_name

    out: dict[str, Any] = {}
    for spec in specs:
        name, path = None, spec
        if "=" in spec and not os.path.exists(spec):
            name, path = spec.split("=", 1)
        lab = open_input([path], dims=None)
        name = safe_name(name or lab.name or "labels")
        if name in out:
            raise InputFormatError(f"two label images are named {name!r}; use NAME=PATH")
        if tuple(lab.data.shape) != tuple(shape):
            raise DimsError(f"label image {path} has shape {tuple(lab.data.shape)}, the image "
                            f"has {tuple(shape)}")
        if lab.dims is not None and dims is not None and lab.dims != dims:
            raise DimsError(f"label image {path} has dims {''.join(lab.dims)}, the image "
                            f"{''.join(dims)}")
        if lab.data.dtype.kind not in "iu":
            raise InputFormatError(f"label image {path} has dtype {lab.data.dtype}; labels "
                                   "must be integers")
        out[name] = lab.data
    return out


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(f"{PROG}: {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Convert ``args.inputs`` to ``args.output``."""
    import ngff_gpu as nz
    from ngff_gpu.dims import default_dims
    from ngff_gpu.io.inputs import open_input, safe_name

    t0 = time.perf_counter()
    output = args.output.rstrip("/") or args.output
    overwrite: bool | str = "in-place" if args.overwrite_in_place else args.overwrite
    check_output(output, list(args.inputs), bool(overwrite), args.resume)
    src = open_input(list(args.inputs), dims=args.dims)
    dims = src.dims or default_dims(src.data.ndim)
    scale = dict(src.scale or {})
    scale.update(c.spread(args.scale, dims) if isinstance(args.scale, float | dict)
                 else dict(zip([d for d in dims if d in c.SPATIAL_DIMS], args.scale or [])))
    translation = dict(src.translation or {})
    translation.update(c.spread(args.translation, dims) if isinstance(args.translation, float | dict)
                       else dict(zip([d for d in dims if d in c.SPATIAL_DIMS], args.translation or [])))
    units = dict(src.units or {})
    units.update(c.spread(args.units, dims) if args.units else {})
    name = args.name if args.name is not None else (src.name or "image")
    if safe_name(name) != name:
        raise ValueError(f"--name {name!r}: use letters, digits, '_', '-' and '.' only")
    method = args.method
    if method is None and src.is_label_hint:
        method = "mode"
        _say(args.quiet, "the input is a label image: using --method mode")
    _say(args.quiet, f"reading {src.kind}: shape {tuple(src.data.shape)} {src.data.dtype}, "
                     f"dims {''.join(dims)}")
    image = nz.to_ngff_image(src.data, dims=dims, scale=scale or None,
                             translation=translation or None, name=name,
                             axes_units=units or None)
    scale_factors = 128 if args.scale_factors is None else args.scale_factors
    ms = nz.to_multiscales(image, scale_factors=scale_factors, chunks=args.chunks, method=method)
    labels = _labels(args.labels, tuple(src.data.shape), dims) if args.labels else None
    omero: dict | bool | None = None
    if not (args.no_omero or src.is_label_hint):
        n_c = int(src.data.shape[dims.index("c")]) if "c" in dims else 1
        omero = src.omero if src.omero and len(src.omero.get("channels", [])) == n_c else True
    args.writing = output  # main() names the unfinished store if this fails
    nz.to_ngff_zarr(output, ms, version=args.version, overwrite=overwrite,
                    chunks_per_shard=args.chunks_per_shard, codec=args.codec,
                    codec_level=args.level, resume=args.resume, memory_limit=args.memory_limit,
                    device=args.device, progress=not args.quiet, omero=omero, labels=labels)
    args.writing = None
    if not args.quiet:
        from ngff_gpu.cli.info import print_info, store_info

        print(f"wrote {output} in {time.perf_counter() - t0:.2f} s")
        print_info(store_info(output), columns=("path", "shape", "chunks", "scale", "translation",
                                                "on disk"))
    return 0
