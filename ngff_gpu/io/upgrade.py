"""Convert an OME-Zarr image store between versions 0.4, 0.5 and 0.6.

In place (no ``output``) between versions on the same Zarr format (0.5 <-> 0.6) only
the root's metadata is rewritten; a local 0.4 store (Zarr v2) goes up to 0.5/0.6 by
rewriting each array's metadata as a Zarr v3 ``zarr.json`` with the v2 chunk key
encoding and the equivalent codec chain: in both cases no chunk is decoded or
re-encoded. Any other conversion reads the store and writes a new one at ``output``
(levels copied, not recomputed).
"""

from __future__ import annotations

from typing import Any

from ngff_gpu.errors import ArgumentError
from ngff_gpu.io.group import open_group, read_ome_attrs
from ngff_gpu.io.matrices import (
    refuse_occupied_matrix_paths,
    stored_matrix_paths,
    write_matrices,
)
from ngff_gpu.io.reader import from_ngff_zarr
from ngff_gpu.io.replace import local_path
from ngff_gpu.io.write_api import to_ngff_zarr
from ngff_gpu.io.writer import WRITABLE_VERSIONS
from ngff_gpu.model.metadata_json import metadata_from_json, metadata_to_json
from ngff_gpu.model.transforms import uses_rfc5
from ngff_gpu.model.transforms_json import MatrixArrays


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
        Where to write; None (or the same path) converts in place: between 0.5 and 0.6,
        and from a local 0.4 store up (metadata rewritten, chunks untouched).
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
        For an unknown version, or an in-place downgrade to 0.4 or a 0.4 store whose
        codecs have no v3 equivalent: give ``output``.
    """
    version = str(getattr(version, "value", version))
    if version not in WRITABLE_VERSIONS:
        raise ArgumentError(f"version: Unsupported target version {version!r}: cannot write "
                            f"OME-Zarr {version!r}; use one of {WRITABLE_VERSIONS}")
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
    if found == "0.4" and local_path(input) is not None:
        upgrade_v04_in_place(local_path(input), version)
        return
    if "0.4" in (found, version):
        raise ArgumentError(f"{input}: OME-Zarr {found} -> {version} changes the Zarr format "
                            "(v2 <-> v3); in place this is done for a local 0.4 store going up "
                            "only (chunk keys of v3 cannot be kept in v2): give output=")
    meta = metadata_from_json(holder["multiscales"][0], found)
    attrs = group.attrs.asdict()
    ome = dict(attrs["ome"])
    ome["version"] = version
    matrices = MatrixArrays() if uses_rfc5(version) else None
    ome["multiscales"] = [metadata_to_json(meta, version, matrices=matrices)]
    if matrices is not None:
        # Inline matrices move into arrays (the form our writer and ngff-zarr write); an
        # array the store holds already is left as it is, a node of the user's is kept.
        named = stored_matrix_paths(attrs)
        moved = {p: m for p, m in matrices.arrays.items() if p not in named}
        refuse_occupied_matrix_paths(group, list(moved))
        write_matrices(group, moved)
    attrs["ome"] = ome
    group.attrs.put(attrs)


_V2_TO_V3_DTYPE_KINDS = {"b": "bool", "i": "int", "u": "uint", "f": "float"}


def _v3_codecs(meta: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The Zarr v3 codec chain that decodes the chunks a Zarr v2 array wrote."""
    import numpy as np

    if meta.get("filters"):
        raise ArgumentError(f"{where}: Zarr v2 filters {meta['filters']} have no v3 chain "
                            "that reads the same chunks; give output= to copy instead")
    if meta.get("order", "C") != "C":
        raise ArgumentError(f"{where}: Fortran-ordered chunks cannot be kept in Zarr v3; "
                            "give output= to copy instead")
    dtype = np.dtype(meta["dtype"])
    endian = "big" if dtype.byteorder == ">" else "little"
    codecs: list[dict[str, Any]] = [{"name": "bytes", "configuration": {"endian": endian}}]
    comp = meta.get("compressor")
    if comp is None:
        return codecs
    cid = comp.get("id")
    if cid == "zstd":
        codecs.append({"name": "zstd", "configuration": {
            "level": int(comp.get("level", 0)), "checksum": bool(comp.get("checksum", False))}})
    elif cid == "gzip":
        codecs.append({"name": "gzip", "configuration": {"level": int(comp.get("level", 1))}})
    elif cid == "blosc":
        shuffle = {0: "noshuffle", 1: "shuffle", 2: "bitshuffle", -1: "shuffle"}.get(
            int(comp.get("shuffle", 1)), "shuffle")
        codecs.append({"name": "blosc", "configuration": {
            "cname": comp.get("cname", "lz4"), "clevel": int(comp.get("clevel", 5)),
            "shuffle": shuffle, "typesize": dtype.itemsize,
            "blocksize": int(comp.get("blocksize", 0))}})
    else:
        raise ArgumentError(f"{where}: compressor {cid!r} has no Zarr v3 codec here; give "
                            "output= to copy instead")
    return codecs


def _v2_array_to_v3(path: str, dims: list[str]) -> None:
    """Rewrite the Zarr v2 array metadata in directory ``path`` as Zarr v3 ``zarr.json``
    that reads the same chunk files (v2 chunk key encoding): no chunk is touched."""
    import json
    import os

    import numpy as np

    with open(os.path.join(path, ".zarray")) as f:
        meta = json.load(f)
    dtype = np.dtype(meta["dtype"])
    kind = _V2_TO_V3_DTYPE_KINDS.get(dtype.kind)
    if kind is None:
        raise ArgumentError(f"{path}: dtype {dtype} has no Zarr v3 name here")
    data_type = "bool" if kind == "bool" else f"{kind}{dtype.itemsize * 8}"
    fill = meta.get("fill_value")
    out = {
        "zarr_format": 3, "node_type": "array", "shape": meta["shape"], "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": meta["chunks"]}},
        "chunk_key_encoding": {"name": "v2", "configuration": {
            "separator": meta.get("dimension_separator", ".")}},
        "fill_value": 0 if fill is None else fill,
        "codecs": _v3_codecs(meta, path),
        "attributes": {}, "dimension_names": dims,
    }
    attrs_path = os.path.join(path, ".zattrs")
    if os.path.exists(attrs_path):
        with open(attrs_path) as f:
            out["attributes"] = json.load(f)
    with open(os.path.join(path, "zarr.json"), "w") as f:
        json.dump(out, f, indent=2)
    for name in (".zarray", ".zattrs"):
        if os.path.exists(os.path.join(path, name)):
            os.remove(os.path.join(path, name))


def upgrade_v04_in_place(root: str, version: str) -> None:
    """OME-Zarr 0.4 (Zarr v2) at local directory ``root`` -> ``version`` (0.5/0.6, Zarr
    v3) in place: every array's metadata becomes a ``zarr.json`` that reads the same chunk
    files; groups get ``zarr.json`` with the OME metadata under ``ome``; no chunk is decoded
    or re-encoded. Everything is checked before the first file is changed."""
    import json
    import os

    group = open_group(root)
    found, holder = read_ome_attrs(group)
    meta = metadata_from_json(holder["multiscales"][0], found)
    dims = [a.name for a in meta.axes]
    arrays = [os.path.join(root, *ds.path.split("/")) for ds in meta.datasets]
    for a in arrays:  # refuse before changing anything
        with open(os.path.join(a, ".zarray")) as f:
            _v3_codecs(json.load(f), a)
    for a in arrays:
        _v2_array_to_v3(a, dims)
    attrs = group.attrs.asdict()
    ome: dict[str, Any] = {"version": version, "multiscales": [metadata_to_json(meta, version)]}
    if isinstance(attrs.get("omero"), dict):
        ome["omero"] = {k: v for k, v in attrs["omero"].items() if k != "version"}
    rest = {k: v for k, v in attrs.items() if k not in ("multiscales", "omero")}
    for dirpath, _dirnames, filenames in os.walk(root):
        if ".zgroup" not in filenames:
            continue
        node_attrs: dict[str, Any] = {}
        if os.path.samefile(dirpath, root):
            node_attrs = {**rest, "ome": ome}
        elif ".zattrs" in filenames:
            with open(os.path.join(dirpath, ".zattrs")) as f:
                node_attrs = json.load(f)
        with open(os.path.join(dirpath, "zarr.json"), "w") as f:
            json.dump({"zarr_format": 3, "node_type": "group", "attributes": node_attrs}, f,
                      indent=2)
        for name in (".zgroup", ".zattrs", ".zmetadata"):
            if os.path.exists(os.path.join(dirpath, name)):
                os.remove(os.path.join(dirpath, name))
