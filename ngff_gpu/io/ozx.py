"""RFC-9 zipped OME-Zarr (``.ozx``): written as ngff-zarr 0.50 writes it, read through zarr's ZipStore.

Writing stages the store in a hidden temporary directory beside the archive (the
system temp directory is often a small tmpfs), then zips it: the root
``zarr.json`` first, the other ``zarr.json`` files next (shallower first), then
every other file in sorted order; no compression of the entries (``ZIP_STORED``:
chunks are compressed already and readers can seek into them); ZIP64; and the
archive comment ``{"ome": {"version": "0.5", "zipFile": {"centralDirectory":
{"jsonFirst": true}}}}``. The archive is written under a temporary name and
renamed into place, so an interrupted write never leaves a partial ``.ozx``.
RFC-9 requires Zarr v3, so ``.ozx`` is OME-Zarr 0.5 or 0.6.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ngff_gpu.errors import ArgumentError, StoreExistsError


def is_ozx(store: Any) -> bool:
    """True for a local path (str or ``Path``) whose name ends in ``.ozx``."""
    return isinstance(store, str | os.PathLike) and str(store).lower().endswith(".ozx") \
        and "://" not in str(store)


def ordered_entries(root: Path) -> list[str]:
    """The files under ``root`` (relative, ``/``-separated) in RFC-9 order."""
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    metas = sorted((f for f in files if f.endswith("zarr.json") and f != "zarr.json"),
                   key=lambda f: (f.count("/"), f))
    head = (["zarr.json"] if "zarr.json" in files else []) + metas
    return head + [f for f in files if not f.endswith("zarr.json")]


def zip_store(root: str | Path, path: str | Path, version: str = "0.5") -> None:
    """Zip the directory store ``root`` into the archive ``path`` (RFC-9 layout)."""
    root, path = Path(root), Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_STORED,
                             allowZip64=True) as zf:
            for name in ordered_entries(root):
                zf.write(root / name, arcname=name)
            zf.comment = json.dumps({"ome": {"version": version, "zipFile": {
                "centralDirectory": {"jsonFirst": True}}}}).encode()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_ozx(path: str | Path, write: Callable[[str], None], overwrite: bool,
              version: str = "0.5") -> None:
    """Run ``write(directory)`` into a staging directory, then zip it to ``path``.

    Raises
    ------
    StoreExistsError
        When ``path`` exists and ``overwrite`` is False, or is not a file.
    ArgumentError
        For a version on Zarr v2 (0.4).
    """
    if version not in ("0.5", "0.6", "0.9.dev1"):
        raise ArgumentError(f"version: .ozx (RFC-9) requires OME-Zarr 0.5 or later (Zarr v3); "
                            f"got version {version}")
    path = Path(path)
    if path.exists() and (path.is_dir() or not overwrite):
        raise StoreExistsError(f"{path} already exists; pass --overwrite to replace it"
                               if not path.is_dir() else f"{path} is a directory, not a .ozx file")
    stage = tempfile.mkdtemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
    try:
        write(stage)
        zip_store(stage, path, version)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def open_zip_store(path: str | Path) -> Any:
    """A read-only ``zarr.storage.ZipStore`` on the archive ``path``."""
    from zarr.storage import ZipStore

    return ZipStore(path, mode="r", read_only=True)
