"""``ngff-gpu upgrade``: rewrite an OME-Zarr image store as another OME-Zarr version.

The command line of :func:`~ngff_gpu.upgrade_ome_zarr` (options as ngff-zarr 0.50's
``ngff-zarr upgrade``): without ``--output`` the store is converted in place, its
metadata rewritten and no chunk touched; with ``--output`` an upgraded copy is written
and the input is left as it was (level 0 copied as stored chunks where the codec allows,
docs/design.md section 3.7).
"""

from __future__ import annotations

import argparse
from typing import Any

from ngff_gpu.cli._common import PROG, HelpFormatter

EPILOG = f"""examples:
  {PROG} upgrade old.ome.zarr                       # 0.4 or 0.5 -> 0.6 in place
  {PROG} upgrade old.ome.zarr --to 0.5
  {PROG} upgrade old.ome.zarr -o new.ome.zarr --to 0.6
"""

#: The versions ``--to`` takes.
VERSIONS = ("0.4", "0.5", "0.6")


def add_parser(sub: Any) -> None:
    """Register ``upgrade``."""
    p = sub.add_parser(
        "upgrade", help="rewrite an OME-Zarr image as another version (0.4, 0.5, 0.6)",
        description="Rewrite an OME-Zarr image store as OME-Zarr 0.4, 0.5 or 0.6. Without "
                    "--output the store is converted in place and only its metadata is "
                    "rewritten (no chunk is decoded or re-encoded): between 0.5 and 0.6, and "
                    "from a local 0.4 store up. With --output an upgraded copy is written and "
                    "the input is left unchanged.",
        epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("input", metavar="INPUT", help="OME-Zarr image store (path or URL)")
    p.add_argument("-o", "--output", default=None, metavar="OUTPUT",
                   help="write an upgraded copy here instead of converting INPUT in place")
    p.add_argument("--to", "--version", dest="version", choices=VERSIONS, default="0.6",
                   help="target OME-Zarr version (default: 0.6)")
    p.add_argument("--validate", action="store_true",
                   help="validate INPUT (as `ngff-gpu validate`) before converting it")
    p.add_argument("--overwrite", dest="overwrite", action="store_true", default=True,
                   help="replace an existing OUTPUT (default)")
    p.add_argument("--no-overwrite", dest="overwrite", action="store_false",
                   help="fail when OUTPUT exists")
    p.add_argument("--storage-options", default=None, metavar="JSON",
                   help="a JSON object of fsspec storage options for a remote INPUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert ``args.input``; print one line saying what was done."""
    from ngff_gpu.io.containers import open_image_group
    from ngff_gpu.io.group import read_ome_attrs
    from ngff_gpu.io.remote import parse_storage_options_json
    from ngff_gpu.io.upgrade import upgrade_ome_zarr

    options = (None if args.storage_options is None
               else parse_storage_options_json(args.storage_options, "--storage-options"))
    found, _ = read_ome_attrs(open_image_group(args.input, storage_options=options))
    in_place = args.output is None or str(args.output) == str(args.input)
    upgrade_ome_zarr(args.input, None if in_place else args.output, version=args.version,
                     validate=args.validate, storage_options=options,
                     overwrite=args.overwrite)
    if in_place and found == args.version:
        print(f"{args.input}: already OME-Zarr {found}; nothing to do")
    elif in_place:
        print(f"{args.input}: OME-Zarr {found} -> {args.version} in place (metadata rewritten, "
              "chunks untouched)")
    else:
        print(f"wrote {args.output}: OME-Zarr {args.version} (from {args.input}, OME-Zarr "
              f"{found}, which is unchanged)")
    return 0
