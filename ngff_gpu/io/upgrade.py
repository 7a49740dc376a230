"""Convert an OME-Zarr image store between versions 0.4, 0.5 and 0.6.

In place (no ``output``) between versions on the same Zarr format (0.5 <-> 0.6) only
the root's metadata is rewritten: no chunk is decoded or re-encoded. Any other
conversion reads the store and writes a new one at ``output`` (levels copied, not
recomputed).
"""

from __future__ import annotations

from typing import Any

from ngff_gpu.errors import ArgumentError
from ngff_gpu.io.group import open_group, read_ome_attrs
from ngff_gpu.io.reader import from_ngff_zarr
from ngff_gpu.io.writer import WRITABLE_VERSIONS, to_ngff_zarr
from ngff_gpu.model.metadata_json import metadata_from_json, metadata_to_json


def upgrade_ome_zarr(input: Any, output: Any = None, *, version: str = "0.6",  # noqa: A002
                     validate: bool = False, storage_options: dict | None = None,
                     overwrite: bool = True) -> None:
    """Rewrite the OME-Zarr image at ``input`` as OME-Zarr ``version`` (ngff-zarr's
    signature).

    Parameters
    ----------
    input : store
        The image store to read.
    output : store, optional
        Where to write; None (or the same path) converts in place, which is only
        possible between 0.5 and 0.6 (same Zarr format: metadata rewritten, chunks
        untouched).
    version : {"0.4", "0.5", "0.6"}
        The target version.
    validate : bool
        Validate the input first.
    storage_options : dict, optional
        fsspec options for URL stores.
    overwrite : bool
        Replace an existing ``output``.

    Raises
    ------
    ArgumentError
        For an unknown version, or an in-place conversion across Zarr formats
        (0.4 <-> 0.5/0.6): give ``output``.
    """
    version = str(getattr(version, "value", version))
    if version not in WRITABLE_VERSIONS:
        raise ArgumentError(f"version: cannot write OME-Zarr {version!r}; use one of "
                            f"{WRITABLE_VERSIONS}")
    if output is not None and str(output) != str(input):
        ms = from_ngff_zarr(input, validate=validate, storage_options=storage_options)
        to_ngff_zarr(output, ms, version=version, overwrite=overwrite)
        return
    if validate:
        from_ngff_zarr(input, validate=True, storage_options=storage_options)
    group = open_group(input, mode="r+")
    found, holder = read_ome_attrs(group)
    tag = (group.attrs.asdict().get("ome") or {}).get("version", found)
    if found == version and tag == version:
        return
    if "0.4" in (found, version):
        raise ArgumentError(f"{input}: OME-Zarr {found} -> {version} changes the Zarr format "
                            "(v2 <-> v3); convert in place is not supported, give output=")
    meta = metadata_from_json(holder["multiscales"][0], found)
    attrs = group.attrs.asdict()
    ome = dict(attrs["ome"])
    ome["version"] = version
    ome["multiscales"] = [metadata_to_json(meta, version)]
    attrs["ome"] = ome
    group.attrs.put(attrs)
