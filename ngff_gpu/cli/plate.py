"""``ngff-gpu plate OUTPUT.ome.zarr --pattern P FILES...``: field images to an HCS plate."""

from __future__ import annotations

import argparse
import csv
import glob
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ngff_gpu.cli import _common as c
from ngff_gpu.cli._common import PROG, HelpFormatter
from ngff_gpu.errors import ArgumentError, InputFormatError

EPILOG = f"""examples:
  {PROG} plate plate.ome.zarr --pattern '{{row}}{{col}}_f{{field}}.tif' images/*.tif
  {PROG} plate plate.ome.zarr --pattern 'r{{row}}c{{col}}f{{field}}.tiff' --rows A-H --columns 1-12 a/*
  {PROG} plate plate.ome.zarr --list fields.csv --jobs 4
  {PROG} plate plate.ozx --pattern '{{row}}{{col}}_f{{field}}.png' images/*.png

--pattern is matched against each file's name: {{row}} is letters (A, B, AA), {{col}}
(or {{column}}) and {{field}} are digits, {{acquisition}} is digits; '*' matches
anything. Columns are written without leading zeros (A01 is well A/1); fields keep
their numbers. --list reads a CSV with the header row,column,field,path (and
optionally acquisition); relative paths are relative to the CSV.

Every file is matched and opened before anything is written; a file that does not
match, two files for one field, or an unreadable file is an error and nothing is
written. Fields are written in parallel (--jobs); the plate metadata is written last,
so an interrupted plate is never taken for a complete one: --resume continues it
(finished fields are kept).
"""

_TOKENS = {"row": "[A-Za-z]+", "col": "[0-9]+", "column": "[0-9]+", "field": "[0-9]+",
           "acquisition": "[0-9]+"}


@dataclass(frozen=True)
class FieldFile:
    """One field image: its well, field index, acquisition and file."""

    row: str
    col: str
    field: int
    path: str
    acquisition: int | None = None


def add_parser(sub: Any) -> None:
    """Register ``plate``."""
    from ngff_gpu.cli.convert import add_image_options

    p = sub.add_parser(
        "plate", help="write field images (one file per field) as an HCS plate",
        description="Write an OME-Zarr HCS plate (rows, columns, wells, fields) from one "
                    "image file per field of view, each field a multiscale pyramid.",
        epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("output", metavar="OUTPUT", help="the plate to write (.ome.zarr or .ozx)")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="field images (or quoted glob patterns), matched by --pattern")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pattern", default=None, metavar="PATTERN",
                     help="file name pattern with {row}, {col}, {field} (and {acquisition})")
    src.add_argument("--list", dest="listing", default=None, metavar="CSV",
                     help="a CSV of row,column,field,path[,acquisition]")
    g = p.add_argument_group("plate")
    g.add_argument("-n", "--name", default=None, help="plate name (default: OUTPUT's stem)")
    g.add_argument("--rows", default=None, metavar="ROWS",
                   help="the plate's rows, e.g. A-H or A,B,C (default: the rows found)")
    g.add_argument("--columns", default=None, metavar="COLUMNS",
                   help="the plate's columns, e.g. 1-12 (default: the columns found)")
    g.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="fields written at once (default: min(4, CPUs)); --memory-limit is "
                        "shared between them")
    add_image_options(p)
    p.set_defaults(func=run, labels=[])


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, pos, seen = [], 0, set()
    for m in re.finditer(r"\{(\w+)\}|\*", pattern):
        out.append(re.escape(pattern[pos:m.start()]))
        if m.group(0) == "*":
            out.append(".*")
        else:
            key = m.group(1)
            if key not in _TOKENS:
                raise ArgumentError(f"--pattern {pattern!r}: unknown placeholder {{{key}}} "
                                    f"(use {', '.join('{' + t + '}' for t in _TOKENS)})")
            name = "col" if key == "column" else key
            if name in seen:
                raise ArgumentError(f"--pattern {pattern!r}: {{{key}}} appears twice")
            seen.add(name)
            out.append(f"(?P<{name}>{_TOKENS[key]})")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    missing = ", ".join("{" + t + "}" for t in sorted({"row", "col", "field"} - seen))
    if missing:
        raise ArgumentError(f"--pattern {pattern!r} needs {missing}")
    return re.compile("".join(out) + r"\Z")


def _expand(files: list[str]) -> list[str]:
    out = []
    for f in files:
        if any(ch in f for ch in "*?[") and not os.path.exists(f):
            found = sorted(glob.glob(f))
            if not found:
                raise InputFormatError(f"{f}: no file matches")
            out += found
        else:
            out.append(f)
    return out


def _col(text: str) -> str:
    return str(int(text))


def fields_from_pattern(pattern: str, files: list[str]) -> list[FieldFile]:
    """One :class:`FieldFile` per file, from its name.

    Raises
    ------
    ArgumentError
        For a bad pattern, or a file whose name does not match it.
    """
    regex = _pattern_regex(pattern)
    out = []
    for path in _expand(files):
        m = regex.match(os.path.basename(path))
        if m is None:
            raise ArgumentError(f"{path}: the name does not match --pattern {pattern!r}")
        acq = m.groupdict().get("acquisition")
        out.append(FieldFile(m["row"], _col(m["col"]), int(m["field"]), path,
                             int(acq) if acq is not None else None))
    return out


def fields_from_csv(listing: str) -> list[FieldFile]:
    """One :class:`FieldFile` per row of a CSV (header ``row,column,field,path``).

    Raises
    ------
    ArgumentError, InputFormatError
        For a missing column, a bad value, or an unreadable file.
    """
    base = os.path.dirname(os.path.abspath(listing))
    try:
        with open(listing, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFormatError(f"{listing}: cannot read the list ({exc})") from exc
    out = []
    for n, row in enumerate(rows, start=2):
        try:
            acq = (row.get("acquisition") or "").strip()
            path = row["path"].strip()
            out.append(FieldFile(row["row"].strip(), _col(row["column"].strip()),
                                 int(row["field"].strip()),
                                 path if os.path.isabs(path) else os.path.join(base, path),
                                 int(acq) if acq else None))
        except (KeyError, ValueError, AttributeError) as exc:
            raise ArgumentError(f"{listing} line {n}: needs row, column (a number), field (a "
                                f"number) and path ({exc!r})") from None
    return out


def _names(spec: str | None, found: list[str], what: str, numeric: bool) -> list[str]:
    """The plate's rows or columns: ``A-H``, ``1-12``, ``A,B,C`` or those found."""
    def key(n: str) -> tuple[int, str]:
        return (int(n), "") if numeric else (len(n), n)

    if spec is None:
        return sorted(set(found), key=key)
    names: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = (x.strip() for x in part.split("-", 1))
            if numeric and a.isdigit() and b.isdigit():
                names += [str(i) for i in range(int(a), int(b) + 1)]
            elif len(a) == 1 and len(b) == 1 and a.isalpha() and b.isalpha():
                names += [chr(i) for i in range(ord(a), ord(b) + 1)]
            else:
                raise ArgumentError(f"--{what} {spec!r}: cannot read the range {part!r}")
        elif part:
            names.append(_col(part) if numeric and part.isdigit() else part)
    missing = sorted(set(found) - set(names), key=key)
    if missing:
        raise ArgumentError(f"--{what} {spec!r} lacks {', '.join(missing)}, which the files use")
    return names


def build_plate(fields: list[FieldFile], name: str | None, version: str, rows: str | None,
                columns: str | None) -> Any:
    """The plate's layout for ``fields`` (checked: no field twice, names valid)."""
    from ngff_gpu.model.plate import (
        Plate,
        PlateAcquisition,
        PlateColumn,
        PlateRow,
        PlateWell,
        check_plate,
    )

    if not fields:
        raise ArgumentError("no field images given")
    seen: dict[tuple[str, str, int], str] = {}
    for f in fields:
        key = (f.row, f.col, f.field)
        if key in seen:
            raise ArgumentError(f"{seen[key]} and {f.path} are both field {f.field} of well "
                                f"{f.row}/{f.col}")
        seen[key] = f.path
    row_names = _names(rows, [f.row for f in fields], "rows", numeric=False)
    col_names = _names(columns, [f.col for f in fields], "columns", numeric=True)
    wells = sorted({(f.row, f.col) for f in fields},
                   key=lambda w: (row_names.index(w[0]), col_names.index(w[1])))
    acqs = sorted({f.acquisition for f in fields if f.acquisition is not None})
    per_well: dict[tuple[str, str], int] = {}
    for f in fields:
        per_well[(f.row, f.col)] = per_well.get((f.row, f.col), 0) + 1
    plate = Plate(columns=[PlateColumn(n) for n in col_names],
                  rows=[PlateRow(n) for n in row_names],
                  wells=[PlateWell(f"{r}/{c_}", row_names.index(r), col_names.index(c_))
                         for r, c_ in wells],
                  version=version,
                  acquisitions=[PlateAcquisition(id=a) for a in acqs] or None,
                  field_count=max(per_well.values()), name=name)
    check_plate(plate, strict=True)
    return plate


def run(args: argparse.Namespace) -> int:
    """Write the plate."""
    from ngff_gpu.cli.convert import check_output, decoding, prepare
    from ngff_gpu.io.hcs import HCSPlateWriter
    from ngff_gpu.io.inputs import open_input
    from ngff_gpu.io.writer import parse_bytes

    t0 = time.perf_counter()
    output = args.output.rstrip("/") or args.output
    if args.listing is not None:
        if args.files:
            raise ArgumentError("give the field images with --list or as FILEs, not both")
        fields = fields_from_csv(args.listing)
    else:
        fields = fields_from_pattern(args.pattern, args.files)
    stem = os.path.basename(output)
    for suffix in (".ome.zarr", ".zarr", ".ozx"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    plate = build_plate(fields, args.name or stem or None, args.version, args.rows, args.columns)
    jobs = args.jobs if args.jobs is not None else max(1, min(4, os.cpu_count() or 1))
    if jobs < 1:
        raise ArgumentError(f"--jobs {jobs}: must be 1 or more")
    args.overwrite_mode = "in-place" if args.overwrite_in_place else args.overwrite
    device = c.describe_backend(args.device)
    check_output(output, [f.path for f in fields], bool(args.overwrite_mode), args.resume)
    if args.chunks_per_shard is not None and args.version == "0.4":
        raise ArgumentError("--chunks-per-shard: sharding needs OME-Zarr 0.5 (Zarr v3), not "
                            "--version 0.4")
    total = parse_bytes(args.memory_limit) or (1 << 30)
    args.memory_limit = max(16 << 20, total // jobs)
    field_args = argparse.Namespace(**{**vars(args), "quiet": True})
    # Every input is opened and its pyramid planned before the plate is created.
    planned = []
    for f in fields:
        src = open_input([f.path], dims=args.dims)
        name = os.path.splitext(os.path.basename(f.path))[0]
        ms, kwargs = prepare(src, field_args, device, name=re.sub(r"[^A-Za-z0-9_.-]", "_", name))
        kwargs.pop("labels", None)
        planned.append((f, src, ms, kwargs))

    def write(item: tuple[FieldFile, Any, Any, dict[str, Any]]) -> None:
        f, src, ms, kwargs = item
        decoding(src, lambda: writer.write_well_image(
            ms, f.row, f.col, field_index=f.field,
            acquisition_id=f.acquisition if f.acquisition is not None else 0, **kwargs))
        if not args.quiet:
            print(f"wrote {f.row}/{f.col}/{f.field} from {f.path}", flush=True)

    args.writing = output
    writer = HCSPlateWriter(output, plate, args.version, overwrite=args.overwrite_mode,
                            resume=args.resume)
    try:
        with writer:
            if jobs == 1:
                for item in planned:
                    write(item)
            else:
                with ThreadPoolExecutor(jobs, thread_name_prefix="ngff-gpu-field") as pool:
                    list(pool.map(write, planned))
    except BaseException as exc:
        exc.ngff_gpu_replacing = writer.replacing  # type: ignore[attr-defined]
        raise
    args.writing = None
    if not args.quiet:
        print(f"wrote {output}: {len(plate.wells)} wells, {len(fields)} fields in "
              f"{time.perf_counter() - t0:.2f} s on {device} ({jobs} at once)", file=sys.stdout)
    return 0
