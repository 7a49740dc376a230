"""``ngff-gpu convert INPUT... OUTPUT.ome.zarr``: files to an OME-Zarr multiscale image."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, NoReturn

from ngff_gpu.cli import _common as c
from ngff_gpu.cli._common import PROG, HelpFormatter
from ngff_gpu.errors import ArgumentError, StoreAccessDeniedError

EPILOG = f"""examples:
  {PROG} convert volume.tif volume.ome.zarr
  {PROG} convert cells.ome.tif cells.ome.zarr --method mean --chunks 64 --chunks-per-shard 4
  {PROG} convert 'slices/*.png' stack.ome.zarr --scale z=2,y=0.5,x=0.5 --units micrometer
  {PROG} convert slices/ stack.ome.zarr                 # a directory of 2-D slices
  {PROG} convert brain.nii.gz brain.ome.zarr           # NIfTI, NRRD, MetaImage, DICOM...
  {PROG} convert dicom_series/ ct.ozx                   # a zipped OME-Zarr (RFC-9)
  {PROG} convert two_series.ome.tif out.ome.zarr --series all    # one container: out.ome.zarr/0, /1
  {PROG} convert two_series.ome.tif out.ome.zarr --series each   # out_NAME.ome.zarr per series
  {PROG} convert -i a.npy -o a.ome.zarr -d z y x -s z 4.0 y 1.0 x 1.0 -c 64   # ngff-zarr style

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
    p = sub.add_parser(
        "convert", help="convert images (TIFF, NIfTI, NRRD, DICOM, PNG, Zarr, ...) to OME-Zarr",
        description="Convert an image file, a stack of files (several paths, a glob pattern or "
                    "a directory of slices), a DICOM series, or a Zarr/OME-Zarr array into an "
                    "OME-Zarr multiscale pyramid (a directory, or a .ozx zip file).",
        epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("paths", nargs="*", metavar="INPUT... OUTPUT",
                   help="image file(s), glob pattern (quote it), directory of slices or DICOM "
                        "series, .npy, Zarr array or OME-Zarr image; then the OME-Zarr store "
                        "to write (out.ome.zarr, or out.ozx for a zip file)")
    p.add_argument("-i", "--input", action=c.Tokens, nargs="+", default=None, metavar="INPUT",
                   help="input(s), ngff-zarr's spelling (then OUTPUT is -o or the last path)")
    p.add_argument("-o", "--output", default=None, metavar="OUTPUT",
                   help="the store to write, ngff-zarr's spelling")
    add_image_options(p)
    o = p.add_argument_group("convert")
    o.add_argument("-n", "--name", default=None, help="image name (default: from the input)")
    o.add_argument("--series", type=c.series_value, default=None, metavar="N|all|each",
                   help="the series of a multi-series TIFF (a CZI scene, a BigDataViewer tile "
                        "or angle); 'all' writes every series into "
                        "one bioformats2raw.layout container (OUTPUT/0, OUTPUT/1, ... and "
                        "OUTPUT/OME); 'each' writes each series to its own store "
                        "OUTPUT-base_SERIESNAME.ome.zarr")
    o.add_argument("--labels", action="append", default=[], metavar="[NAME=]PATH",
                   help="a label image of the same shape, written with MODE under "
                        "labels/NAME (repeatable)")
    o.add_argument("--recompress", action="store_true",
                   help="encode level 0 even when the input is a Zarr array stored with the "
                        "output's chunks, data type and codec (by default its chunks are then "
                        "copied as they are, without decoding and encoding them again)")
    st = p.add_argument_group("remote stores (s3://, gs://, https://)")
    st.add_argument("--storage-options", default=None, metavar="JSON",
                    help="a JSON object of fsspec storage options for remote inputs and OUTPUT, "
                         "ngff-zarr's spelling, e.g. '{\"anon\": true}' or "
                         "'{\"client_kwargs\": {\"endpoint_url\": \"http://minio:9000\"}}'; "
                         "its key \"retry\" sets our retry policy, e.g. "
                         "'{\"retry\": {\"attempts\": 10, \"backoff\": 0.1, "
                         "\"max_backoff\": 15, \"timeout\": null}}' (the defaults). "
                         "Without it, s3:// inputs are read anonymously, as in ngff-zarr")
    st.add_argument("--input-storage-options", default=None, metavar="JSON",
                    help="options for remote inputs only (keys override --storage-options)")
    st.add_argument("--output-storage-options", default=None, metavar="JSON",
                    help="options for a remote OUTPUT only (keys override --storage-options)")
    p.set_defaults(func=run)


def add_image_options(p: Any) -> None:
    """The options of the pyramid, the output, the axes and the run (``convert`` and
    ``plate``)."""
    from ngff_gpu.compute.methods import METHOD_NAMES
    from ngff_gpu.io.codecs import CODEC_NAMES

    g = p.add_argument_group("pyramid")
    g.add_argument("-m", "--method", type=c.method_name, choices=METHOD_NAMES, default=None,
                   metavar="METHOD",
                   help="downsampling method: gaussian (default), mean, nearest, mode (labels), "
                        "min, max; ngff-zarr names such as itkwasm_gaussian are accepted")
    g.add_argument("--scale-factors", type=c.scale_factors, default=None, metavar="FACTORS",
                   help="'2,4,8' (absolute factors per level), 'z=1,y=2,x=2;z=2,y=4,x=4' "
                        "(per dim; a missing dim is 1), or one int N for an automatic ladder "
                        "(ngff-zarr's rule: halve the dims at least two chunks long; default "
                        "128); a single level is written '2,'")
    g.add_argument("-c", "--chunks", action=c.Tokens, convert=c.chunk_tokens, default=None,
                   metavar="CHUNKS",
                   help="chunk size: '64' (spatial dims), 'z=32,y=128,x=128', or one per axis "
                        "'1 64 64' (default 128 in 3-D, 256 in 2-D)")
    g.add_argument("--chunks-per-shard", action=c.Tokens, convert=c.shard_tokens, default=None,
                   metavar="N",
                   help="shard the arrays: chunks per shard, '4', 'z=2,y=4,x=4' or '2 4 4' "
                        "(0.5 only)")
    o = p.add_argument_group("output")
    o.add_argument("--version", "--ome-zarr-version", dest="version",
                   choices=("0.4", "0.5", "0.6"), default="0.5",
                   help="OME-Zarr version: 0.5 (Zarr v3, default), 0.6 (Zarr v3, RFC-5 "
                        "coordinate systems) or 0.4 (Zarr v2)")
    o.add_argument("--codec", type=c.codec_name, choices=CODEC_NAMES, default="zstd",
                   metavar="CODEC", help=f"compressor: {', '.join(CODEC_NAMES)} (default zstd; "
                                         "blosc:zstd is blosc-zstd)")
    o.add_argument("--level", "--compression-level", dest="level", type=int, default=None,
                   help="compression level (codec default)")
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
    a.add_argument("-d", "--dims", action=c.Tokens, convert=c.dims_tokens, default=None,
                   metavar="DIMS", help="names of the input's axes as stored: zyx, yxc or z y x")
    a.add_argument("-s", "--scale", action=c.Tokens, convert=c.float_tokens, default=None,
                   metavar="SCALE",
                   help="pixel spacing: '0.5' (spatial dims), 'z=2.0,y=0.5,x=0.5' or pairs "
                        "'z 2.0 y 0.5 x 0.5'")
    a.add_argument("-t", "--translation", action=c.Tokens, convert=c.float_tokens, default=None,
                   metavar="ORIGIN",
                   help="position of the first pixel: 'z=0,y=10.5,x=3' or 'z 0 y 10.5 x 3'")
    a.add_argument("-u", "--units", action=c.Tokens, convert=c.unit_tokens, default=None,
                   metavar="UNITS",
                   help="'micrometer' (spatial dims), 'z=micrometer,t=second' or pairs")
    orient = a.add_mutually_exclusive_group()
    orient.add_argument("--orientation", action=c.Tokens, convert=c.orientation_tokens,
                        default=None, metavar="ORIENTATION",
                        help="RFC-4 anatomical orientation: LPS, RAS or pairs "
                             "'x right-to-left y anterior-to-posterior ...'")
    orient.add_argument("--no-orientation", action="store_true",
                        help="do not write the orientation the input carries")
    r = p.add_argument_group("run")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="compute backend (default auto: CUDA when available)")
    r.add_argument("--memory-limit", "--memory-target", dest="memory_limit", type=c.memory,
                   default=None, metavar="BYTES",
                   help="host memory for data in flight, e.g. 2GiB or 512MB (default 1GiB)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress, no summary")


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
    from ngff_gpu.io.ozx import is_ozx

    if "://" in output:
        return  # remote stores: the writer checks
    out = os.path.realpath(output)
    for p in inputs:
        if "://" in p:
            continue
        src = os.path.realpath(p)
        if src == out or src.startswith(out + os.sep) or out.startswith(src + os.sep):
            raise StoreExistsError(f"OUTPUT {output} overlaps the input {p}; write somewhere else")
    if is_ozx(output):
        if resume:
            raise StoreExistsError(f"{output}: a .ozx file cannot be resumed (it is zipped at the "
                                   "end); write a .ome.zarr directory to use --resume")
        if os.path.isdir(output):
            raise StoreExistsError(f"{output} is a directory; refusing to replace it with a file")
        if os.path.lexists(output) and not overwrite:
            raise StoreExistsError(f"{output} already exists; pass --overwrite to replace it")
        return
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


def _labels(specs: list[str], shape: tuple[int, ...], dims: list[str] | None,
            storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    from ngff_gpu.errors import DimsError, InputFormatError
    from ngff_gpu.io.inputs import open_input, safe_name

    out: dict[str, Any] = {}
    for spec in specs:
        name, path = None, spec
        if "=" in spec and not os.path.exists(spec):
            name, path = spec.split("=", 1)
        lab = open_input([path], dims=None, storage_options=storage_options)
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


def _usage(message: str) -> NoReturn:
    c.one_line(f"{message} (see '{PROG} convert --help')")
    raise SystemExit(2)


def inputs_and_output(args: argparse.Namespace) -> tuple[list[str], str]:
    """INPUT... OUTPUT from the positional paths and ngff-zarr's ``-i``/``-o``."""
    paths, inputs, output = list(args.paths), list(args.input or []), args.output
    if not inputs:
        if output is None:
            if len(paths) < 2:
                _usage("give INPUT... OUTPUT (or -i INPUT -o OUTPUT)")
            inputs, output = paths[:-1], paths[-1]
        else:
            inputs = paths
    elif output is None:
        if len(paths) != 1:
            _usage("give OUTPUT with -o OUTPUT or as the last path")
        output = paths[0]
    elif paths:
        _usage(f"unexpected paths {paths} next to -i and -o")
    if not inputs:
        _usage("no INPUT given")
    return inputs, output.rstrip("/") or output


def series_outputs(output: str, names: list[str]) -> list[str]:
    """One store per series, as ngff-zarr names them: ``BASE_NAME.ome.zarr`` (``.ozx``: the
    first series at OUTPUT itself, the others ``BASE_NAME.ozx``)."""
    low = output.lower()
    seen: dict[str, int] = {}
    unique = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        unique.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    if low.endswith(".ozx"):
        base = output[:-4]
        return [output] + [f"{base}_{n}.ozx" for n in unique[1:]]
    for suffix in (".ome.zarr", ".zarr"):
        if low.endswith(suffix):
            base = output[: -len(suffix)]
            return [f"{base}_{n}{suffix}" for n in unique]
    return [f"{output}_{n}" for n in unique]


def storage_options(args: argparse.Namespace, inputs: list[str]) -> None:
    """Parse the ``--*storage-options`` JSON into ``args.input_options`` and
    ``args.output_options`` (None when none was given).

    An ``s3://`` input without any options is read anonymously (``{"anon": true}``),
    as ngff-zarr's CLI does; ``args.anon_default`` records it for the error line.

    Raises
    ------
    ArgumentError
        Naming the option: not valid JSON, not an object, or a bad ``"retry"`` entry.
    """
    from ngff_gpu.io.remote import parse_storage_options_json

    def parsed(flag: str) -> dict[str, Any] | None:
        text = getattr(args, flag.lstrip("-").replace("-", "_"))
        return None if text is None else parse_storage_options_json(text, flag)

    shared = parsed("--storage-options")
    given_in, given_out = parsed("--input-storage-options"), parsed("--output-storage-options")
    args.input_options = None if shared is None and given_in is None else \
        {**(shared or {}), **(given_in or {})}
    args.output_options = None if shared is None and given_out is None else \
        {**(shared or {}), **(given_out or {})}
    args.anon_default = args.input_options is None and any(
        p.lower().startswith("s3://") for p in inputs)
    if args.anon_default:
        args.input_options = {"anon": True}


def run(args: argparse.Namespace) -> int:
    """Convert the inputs to OUTPUT (every series with ``--series all`` or ``each``)."""
    t0 = time.perf_counter()
    inputs, output = inputs_and_output(args)
    storage_options(args, inputs)
    try:
        return _run(args, inputs, output, t0)
    except StoreAccessDeniedError as exc:
        if not (args.anon_default and any(str(exc).startswith(p.rstrip("/")) for p in inputs)):
            raise
        raise StoreAccessDeniedError(
            f"{exc}; s3:// inputs are read anonymously unless --storage-options is given (as "
            "in ngff-zarr): pass --storage-options '{\"anon\": false}' to use your "
            "credentials") from exc


def _run(args: argparse.Namespace, inputs: list[str], output: str, t0: float) -> int:
    from ngff_gpu.errors import InputFormatError
    from ngff_gpu.io.inputs import list_series, open_input

    args.overwrite_mode = "in-place" if args.overwrite_in_place else args.overwrite
    device = c.describe_backend(args.device)  # fails before anything is created
    if args.series in ("all", "each"):
        if len(inputs) != 1:
            raise InputFormatError(f"--series {args.series} needs one file as INPUT")
        infos = list_series(inputs[0])
        if args.series == "all":
            return convert_container(inputs, output, infos, args, device, t0)
        outputs = series_outputs(output, [s.name for s in infos])
        for out in outputs:
            check_output(out, inputs, bool(args.overwrite_mode), args.resume)
        for info, out in zip(infos, outputs):
            src = open_input(inputs, dims=args.dims, series=info.index,
                             storage_options=args.input_options)
            convert_one(src, out, args, device, t0)
        return 0
    check_output(output, inputs, bool(args.overwrite_mode), args.resume)
    src = open_input(inputs, dims=args.dims, series=args.series,
                     storage_options=args.input_options)
    convert_one(src, output, args, device, t0)
    return 0


def convert_container(inputs: list[str], output: str, infos: list[Any],
                      args: argparse.Namespace, device: str, t0: float) -> int:
    """Every series of the input into one ``bioformats2raw.layout`` container at OUTPUT:
    series ``i`` at ``OUTPUT/i``, then ``OUTPUT/OME`` and the root's layout last."""
    from ngff_gpu.io.bioformats2raw import SeriesContainerWriter
    from ngff_gpu.io.inputs import open_input
    from ngff_gpu.io.ozx import is_ozx

    if is_ozx(output):
        raise ArgumentError(f"{output}: --series all writes a container directory; use "
                            ".ome.zarr (or --series each for one .ozx per series)")
    if args.labels:
        raise ArgumentError("--labels needs a single image; not with --series all")
    check_output(output, inputs, bool(args.overwrite_mode), args.resume)
    args.writing = output
    writer = SeriesContainerWriter(output, version=args.version,
                                   overwrite=args.overwrite_mode, resume=args.resume)
    try:
        with writer:
            for i, info in enumerate(infos):
                src = open_input(inputs, dims=args.dims, series=info.index)
                convert_one(src, writer.series_store(i), args, device, t0,
                            shown=f"{output}/{i}", summary=False)
    except BaseException as exc:
        exc.ngff_gpu_replacing = writer.replacing  # type: ignore[attr-defined]
        raise
    args.writing = None
    if not args.quiet:
        print(f"wrote {output} ({len(infos)} series: {output}/0 .. {output}/{len(infos) - 1}) "
              f"in {time.perf_counter() - t0:.2f} s on {device}")
    return 0


def _per_dim(value: Any, dims: list[str], what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list | tuple):
        spatial = [d for d in dims if d in c.SPATIAL_DIMS]
        if len(value) == len(spatial):
            return dict(zip(spatial, value))
        if len(value) == len(dims):
            return dict(zip(dims, value))
        raise ArgumentError(f"{what}: {len(value)} values for dims {''.join(dims)} (give one per "
                            f"spatial dim or one per axis)")
    return c.spread(value, dims)


def _omero(src: Any, image: Any, dims: list[str]) -> dict | bool | None:
    """The input's omero block, with display windows computed where it has none."""
    n_c = int(src.data.shape[dims.index("c")]) if "c" in dims else 1
    channels = (src.omero or {}).get("channels") or []
    if len(channels) != n_c:
        return True
    if all("window" in ch for ch in channels):
        return src.omero
    from ngff_gpu.io.omero import omero_from_data

    computed = omero_from_data(image.data, dims, labels=[str(ch.get("label", f"channel {i}"))
                                                         for i, ch in enumerate(channels)])
    for ch, given in zip(computed["channels"], channels):
        ch.update({k: v for k, v in given.items() if k != "window"})
    return computed


#: Packages whose frames in a traceback mean "the input could not be decoded".
READER_PACKAGES = ("tifffile", "imagecodecs", "nibabel", "pydicom", "nrrd", "SimpleITK",
                   "imageio", "PIL", "h5py", "mrcfile", "pylibCZIrw", "zarr_n5")


#: Zarr's codec packages: a failure in one of their *decode* functions is a damaged source
#: chunk (the writer only encodes).
ZARR_CODEC_PACKAGES = ("zarr", "numcodecs", "zarrs")


def from_reader(exc: BaseException) -> bool:
    """True when ``exc`` (or what it was raised from) went through an input reader's code
    or a Zarr codec's decode."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_globals.get("__name__", "")
            package = name.split(".")[0]
            if package in READER_PACKAGES:
                return True
            if package in ZARR_CODEC_PACKAGES and "decode" in tb.tb_frame.f_code.co_name:
                return True
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    return False


def prepare(src: Any, args: argparse.Namespace, device: str,
            name: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The pyramid of one opened input and the keyword arguments of its write
    (``to_ngff_zarr``'s, without the store and the version)."""
    import ngff_gpu as nz
    from ngff_gpu.dims import default_dims
    from ngff_gpu.io.inputs import safe_name

    dims = src.dims or default_dims(src.data.ndim)
    scale = dict(src.scale or {})
    scale.update(_per_dim(args.scale, dims, "--scale"))
    translation = dict(src.translation or {})
    translation.update(_per_dim(args.translation, dims, "--translation"))
    units = dict(src.units or {})
    units.update(c.spread(args.units, dims) if args.units else {})
    scale = {d: v for d, v in scale.items() if d in dims}
    translation = {d: v for d, v in translation.items() if d in dims}
    units = {d: v for d, v in units.items() if d in dims}
    orientation = {} if args.no_orientation else dict(src.orientation or {})
    orientation.update(args.orientation or {})
    orientation = {d: v for d, v in orientation.items() if d in dims}
    if name is None:
        name = args.name if args.name is not None else (src.name or "image")
    if safe_name(name) != name:
        raise ArgumentError(f"--name {name!r}: use letters, digits, '_', '-' and '.' only")
    method = args.method
    if method is None and src.is_label_hint:
        method = "mode"
        _say(args.quiet, "the input is a label image: using --method mode")
    _say(args.quiet, f"reading {src.kind}: shape {tuple(src.data.shape)} {src.data.dtype}, "
                     f"dims {''.join(dims)}")
    _say(args.quiet, f"computing on {device}")
    image = nz.to_ngff_image(src.data, dims=dims, scale=scale or None,
                             translation=translation or None, name=name,
                             axes_units=units or None)
    scale_factors = 128 if args.scale_factors is None else args.scale_factors
    ms = nz.to_multiscales(image, scale_factors=scale_factors, chunks=args.chunks, method=method)
    for ax in ms.metadata.axes:
        if ax.name in orientation:
            ax.orientation = {"type": "anatomical", "value": orientation[ax.name]}
    labels = (_labels(args.labels, tuple(src.data.shape), dims,
                      getattr(args, "input_options", None))
              if getattr(args, "labels", None) else None)
    omero = None if (args.no_omero or src.is_label_hint) else _omero(src, image, dims)
    shards = args.chunks_per_shard
    if isinstance(shards, tuple):
        shards = _per_dim(list(shards), dims, "--chunks-per-shard")
        shards = {d: v for d, v in shards.items() if d in c.SPATIAL_DIMS}
    return ms, {"chunks_per_shard": shards, "codec": args.codec, "codec_level": args.level,
                "memory_limit": args.memory_limit, "device": args.device,
                "progress": not args.quiet, "omero": omero, "labels": labels}


def decoding(src: Any, write: Any) -> None:
    """Run ``write()``; a failure inside an input reader or a codec's decode becomes an
    :class:`InputFormatError` naming the input."""
    from ngff_gpu.errors import InputFormatError, NgffGpuError

    try:
        write()
    except Exception as exc:
        if isinstance(exc, NgffGpuError | OSError | MemoryError) or not from_reader(exc):
            raise
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise InputFormatError(f"cannot decode {src.paths[0] if src.paths else 'the input'}: "
                               f"{detail}") from exc


def convert_one(src: Any, output: str, args: argparse.Namespace, device: str, t0: float,
                shown: str | None = None, summary: bool = True) -> None:
    """Convert one opened input to ``output`` (named ``shown`` in messages; ``summary``:
    print the written store's levels and whether level 0 was copied)."""
    from ngff_gpu.io.writer import write_multiscales

    ms, kwargs = prepare(src, args, device)
    if summary:
        args.writing = output  # main() names the unfinished store if this fails
    reports: list[Any] = []
    decoding(src, lambda: reports.append(write_multiscales(
        output, ms, version=args.version, overwrite=args.overwrite_mode, resume=args.resume,
        storage_options=args.output_options, recompress=args.recompress, **kwargs)))
    if not summary:
        if not args.quiet:
            print(f"wrote {shown or output}")
        return
    args.writing = None
    if not args.quiet:
        from ngff_gpu.cli.info import print_info, store_info

        print(f"wrote {output} in {time.perf_counter() - t0:.2f} s on {device}")
        for line in reports[0].raw.summary():
            print(line)
        print_info(store_info(output, args.output_options),
                   columns=("path", "shape", "chunks", "scale", "translation", "on disk"))
