"""``ngff-gpu info STORE`` and ``ngff-gpu validate STORE``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

from ngff_gpu.cli._common import PROG, HelpFormatter, is_tty

INFO_EPILOG = f"""examples:
  {PROG} info image.ome.zarr
  {PROG} info image.ome.zarr --json
"""

VALIDATE_EPILOG = f"""examples:
  {PROG} validate image.ome.zarr && echo ok
"""


@dataclass
class LevelInfo:
    """What ``info`` shows of one level (one row of the table)."""

    path: str
    shape: list[int]
    chunks: list[int]
    shards: list[int] | None
    dtype: str
    codecs: str
    scale: list[float]
    translation: list[float]
    stored_bytes: int | None


@dataclass
class StoreInfo:
    """What ``info`` shows of a store."""

    store: str
    version: str
    name: str
    axes: list[str]
    units: list[str | None]
    method: str | None
    levels: list[LevelInfo]
    labels: list[str]
    channels: list[str]


def _codec_text(codec: Any) -> str:
    if hasattr(codec, "get_config"):  # numcodecs (Zarr v2)
        config = dict(codec.get_config())
        name = config.pop("id", type(codec).__name__)
    elif hasattr(codec, "to_dict"):  # Zarr v3 codec
        d = codec.to_dict()
        name, config = d.get("name", type(codec).__name__), dict(d.get("configuration") or {})
    else:
        return type(codec).__name__
    keep = {k: v for k, v in config.items() if k in ("level", "clevel", "cname")}
    args = ",".join(f"{k}={v}" for k, v in keep.items())
    return f"{name}({args})" if args else str(name)


def _disk_bytes(root: str | None, path: str) -> int | None:
    if root is None:
        return None
    base = os.path.join(root, *path.split("/"))
    if not os.path.isdir(base):
        return None
    total = 0
    for folder, _, files in os.walk(base):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(folder, f))
            except OSError:
                pass
    return total


def store_info(store: str, storage_options: dict[str, Any] | None = None) -> StoreInfo:
    """Read the levels and metadata of an OME-Zarr image (``storage_options``: for a
    URL, fsspec's options plus our ``"retry"`` policy).

    Raises
    ------
    InvalidStoreError
        When ``store`` is not a Zarr group with OME multiscales metadata.
    """
    from ngff_gpu.io.group import open_dataset, open_group, read_ome_attrs
    from ngff_gpu.model.metadata_json import level_placement, metadata_from_json

    group = open_group(store, storage_options=storage_options)
    version, attrs = read_ome_attrs(group)
    entry = attrs["multiscales"][0]
    meta = metadata_from_json(entry, version)
    axes = [a.name for a in meta.axes]
    units = [a.unit for a in meta.axes]
    root = store if isinstance(store, str) and "://" not in store and os.path.isdir(store) else None
    levels = []
    for i, ds in enumerate(meta.datasets):
        arr = open_dataset(group, ds.path, len(axes), f"multiscales[0].datasets[{i}]")
        codecs = [*arr.filters, *arr.compressors]
        scale, translation = level_placement(meta, i, with_global=False)
        levels.append(LevelInfo(
            path=ds.path, shape=list(arr.shape), chunks=list(arr.chunks),
            shards=list(arr.shards) if getattr(arr, "shards", None) else None,
            dtype=str(arr.dtype), codecs=" + ".join(_codec_text(c) for c in codecs) or "none",
            scale=scale, translation=translation,
            stored_bytes=_disk_bytes(root, ds.path),
        ))
    return StoreInfo(store=str(store), version=version, name=meta.name, axes=axes, units=units,
                     method=entry.get("type") if isinstance(entry.get("type"), str) else None,
                     levels=levels, labels=_labels(group, store),
                     channels=_channels(attrs.get("omero"), store))


def _labels(group: Any, store: str) -> list[str]:
    """Names listed in ``labels/`` (0.4 attributes or the 0.5 ``ome`` block)."""
    from ngff_gpu.errors import InvalidStoreError

    try:
        node = group.get("labels")
        lattrs = node.attrs.asdict() if node is not None else {}
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidStoreError(f"{store}: labels: unreadable metadata ({exc})") from exc
    holder = lattrs.get("ome", lattrs)
    names = holder.get("labels", []) if isinstance(holder, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidStoreError(f"{store}: labels/.labels must be a list of names, got {names!r}")
    return names


def _channels(omero: Any, store: str) -> list[str]:
    """Channel labels of an ``omero`` block (their index where a channel has none)."""
    from ngff_gpu.errors import InvalidStoreError

    if omero is None:
        return []
    channels = omero.get("channels", []) if isinstance(omero, dict) else None
    if not isinstance(channels, list) or not all(isinstance(c, dict) for c in channels):
        raise InvalidStoreError(f"{store}: omero.channels must be a list of objects")
    return [str(c.get("label", i)) for i, c in enumerate(channels)]


def human_bytes(n: int | None) -> str:
    """``1536`` -> ``1.5 KiB``; None -> ``-``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _fmt(values: list[Any] | None, sep: str = "x") -> str:
    if values is None:
        return "-"
    return sep.join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def level_rows(info: StoreInfo, columns: tuple[str, ...]) -> list[list[str]]:
    """Table rows of ``info``'s levels for the named columns."""
    rows = []
    for lv in info.levels:
        cells = {
            "path": lv.path, "shape": _fmt(lv.shape), "chunks": _fmt(lv.chunks),
            "shards": _fmt(lv.shards), "dtype": lv.dtype, "codecs": lv.codecs,
            "scale": _fmt(lv.scale, ","), "translation": _fmt(lv.translation, ","),
            "on disk": human_bytes(lv.stored_bytes),
        }
        rows.append([cells[c] for c in columns])
    return rows


#: Columns ``info`` hides first when a terminal is too narrow for the whole table.
DROP_ORDER = ("codecs", "translation", "shards", "dtype", "chunks", "on disk", "scale")


def _table_width(columns: tuple[str, ...], rows: list[list[str]]) -> int:
    """Width of a rich table (one space of padding each side, one rule per column + 1)."""
    return sum(max(len(c), *(len(r[i]) for r in rows)) + 3 for i, c in enumerate(columns)) + 1 \
        if rows else sum(len(c) + 3 for c in columns) + 1


def fit_columns(columns: tuple[str, ...], rows: list[list[str]], width: int
                ) -> tuple[tuple[str, ...], list[list[str]], list[str]]:
    """Drop columns (in :data:`DROP_ORDER`) until the table fits ``width``; also the dropped."""
    dropped: list[str] = []
    for name in DROP_ORDER:
        if _table_width(columns, rows) <= width:
            break
        if name in columns:
            i = columns.index(name)
            columns = columns[:i] + columns[i + 1:]
            rows = [r[:i] + r[i + 1:] for r in rows]
            dropped.append(name)
    return columns, rows, dropped


def print_table(title: str, columns: tuple[str, ...], rows: list[list[str]],
                stream: Any = None) -> None:
    """A rich table that fits the terminal, aligned plain text when not on a terminal."""
    stream = stream or sys.stdout
    if is_tty(stream):
        from rich.console import Console
        from rich.table import Table

        console = Console(file=stream)
        columns, rows, dropped = fit_columns(columns, rows, console.width)
        if dropped:
            title += f" ({', '.join(dropped)}: see --json or a wider terminal)"
        table = Table(title=title, title_justify="left")
        for c in columns:
            table.add_column(c, justify="right" if c == "on disk" else "left", no_wrap=True,
                             overflow="ellipsis")
        for r in rows:
            table.add_row(*r)
        console.print(table)
        return
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
              for i, c in enumerate(columns)]
    print(title, file=stream)
    print("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(), file=stream)
    for r in rows:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip(), file=stream)


def print_info(info: StoreInfo, columns: tuple[str, ...] | None = None) -> None:
    """Print the header lines and the level table of ``info``."""
    columns = columns or ("path", "shape", "chunks", "shards", "dtype", "codecs", "scale",
                          "translation", "on disk")
    axes = ", ".join(f"{a} ({u})" if u else a for a, u in zip(info.axes, info.units))
    total = sum(lv.stored_bytes or 0 for lv in info.levels)
    print(f"{info.store}: OME-Zarr {info.version} image {info.name!r}")
    print(f"  axes: {axes}")
    if info.method:
        print(f"  method: {info.method}")
    if info.channels:
        print(f"  channels: {', '.join(info.channels)}")
    if info.labels:
        print(f"  labels: {', '.join(info.labels)}")
    if any(lv.stored_bytes is not None for lv in info.levels):
        print(f"  on disk: {human_bytes(total)}")
    print_table(f"{len(info.levels)} levels", columns, level_rows(info, columns))


def add_info_parser(sub: Any) -> None:
    """Register ``info``."""
    p = sub.add_parser("info", help="show the levels, chunks, codecs and size of an OME-Zarr image",
                       description="Show the levels of an OME-Zarr image: shapes, chunks, shards, "
                                   "codecs, dtype, scale, translation and size on disk.",
                       epilog=INFO_EPILOG, formatter_class=HelpFormatter)
    p.add_argument("store", metavar="STORE", help="OME-Zarr image (path or URL)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _storage_option(p)
    p.set_defaults(func=run_info)


def _storage_option(p: Any) -> None:
    p.add_argument("--storage-options", default=None, metavar="JSON",
                   help="a JSON object of fsspec storage options for a remote STORE, e.g. "
                        "'{\"anon\": true}', with \"retry\" for our retry policy")


def _options(args: argparse.Namespace) -> dict[str, Any] | None:
    from ngff_gpu.io.remote import parse_storage_options_json

    text = args.storage_options
    return None if text is None else parse_storage_options_json(text, "--storage-options")


def add_validate_parser(sub: Any) -> None:
    """Register ``validate``."""
    p = sub.add_parser("validate", help="check that a store is a complete, valid OME-Zarr image",
                       description="Check a store against the official OME-Zarr JSON schema "
                                   "of its version (0.4, 0.5, 0.6, 0.9.dev1; bundled), the "
                                   "structural rules, ome-zarr-models (0.4/0.5) and for "
                                   "completeness. Exit status 1 when it is not valid.",
                       epilog=VALIDATE_EPILOG, formatter_class=HelpFormatter)
    p.add_argument("store", metavar="STORE", help="OME-Zarr image (path or URL)")
    _storage_option(p)
    p.set_defaults(func=run_validate)


def run_info(args: argparse.Namespace) -> int:
    """Print ``info`` of ``args.store``."""
    options = _options(args)
    if collection_info(args.store, options):
        return 0
    info = store_info(args.store, options)
    if args.json:
        print(json.dumps(asdict(info), indent=2))
    else:
        print_info(info)
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Validate ``args.store``; exit status 1 with the reason when invalid."""
    from ngff_gpu.errors import InvalidStoreError
    from ngff_gpu.io.validate import validate_store

    options = _options(args)
    try:
        kind = _kind(args.store, options)
        if kind == "plate":
            from ngff_gpu.io.hcs_read import from_hcs_zarr

            plate = from_hcs_zarr(args.store, validate=True)
            fields = sum(len(_well_fields(plate, w.path)) for w in plate.wells)
            print(f"valid: {args.store} is a complete OME-Zarr {plate.metadata.version} plate "
                  f"({len(plate.wells)} wells, {fields} fields)")
            return 0
        if kind == "bioformats2raw":
            from ngff_gpu.io.bioformats2raw import validate_container

            version, series = validate_container(args.store)
            print(f"valid: {args.store} is a complete OME-Zarr {version} bioformats2raw "
                  f"container ({len(series)} series)")
            return 0
        version = validate_store(args.store, options)
        n = len(store_info(args.store, options).levels)
    except InvalidStoreError as exc:
        raise InvalidStoreError(f"invalid: {args.store}: {exc}") from None
    print(f"valid: {args.store} is a complete OME-Zarr {version} image ({n} levels)")
    return 0


def _kind(store: str, storage_options: dict[str, Any] | None = None) -> str | None:
    """``"plate"``, ``"bioformats2raw"`` (complete or not) or None for an image."""
    from ngff_gpu.errors import InvalidStoreError
    from ngff_gpu.io.collection import collection_kind
    from ngff_gpu.io.group import open_group

    try:
        return collection_kind(open_group(store, storage_options=storage_options).attrs.asdict())
    except (InvalidStoreError, ValueError, TypeError):
        return None


def _well_fields(plate: Any, path: str) -> list[str]:
    """The field paths a well lists; none for a listed well whose group is missing (a plate
    document written first, as ngff-zarr's ``to_hcs_zarr`` does, lists declared wells)."""
    from ngff_gpu.errors import InvalidStoreError

    try:
        well = plate.get_well(*path.split("/"))
    except InvalidStoreError:
        return []
    return [im.path for im in well.images] if well is not None else []


def collection_info(store: str, storage_options: dict[str, Any] | None = None) -> bool:
    """Print a plate's wells or a container's series; False for an image."""
    kind = _kind(store, storage_options)
    if kind is None:
        return False
    if kind == "plate":
        from ngff_gpu.io.hcs_read import from_hcs_zarr

        plate = from_hcs_zarr(store)
        print(f"{store}: OME-Zarr {plate.metadata.version} plate {plate.name or ''}".rstrip())
        print(f"  {len(plate.rows)} rows x {len(plate.columns)} columns, "
              f"{len(plate.wells)} wells listed")
        for w in plate.wells:
            fields = _well_fields(plate, w.path)
            print(f"  {w.path}: " + (f"fields {', '.join(fields)}" if fields else "no fields"))
        return True
    from ngff_gpu.io.containers import series_paths
    from ngff_gpu.io.group import open_group

    group = open_group(store)
    if "bioformats2raw.layout" not in str(group.attrs.asdict()):
        from ngff_gpu.errors import InvalidStoreError

        raise InvalidStoreError(f"{store}: an unfinished container ('convert --resume' "
                                "continues it)")
    series = series_paths(group)
    print(f"{store}: bioformats2raw container of {len(series)} series")
    for s in series:
        info = store_info(f"{store}/{s}")
        level0 = info.levels[0]
        print(f"  {s}: {info.name} {'x'.join(map(str, level0.shape))} {level0.dtype}, "
              f"{len(info.levels)} levels")
    return True
