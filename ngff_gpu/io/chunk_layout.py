"""What a Zarr array's chunks are as bytes, and when two arrays' chunks are interchangeable.

A chunk's stored bytes are a function of its pixels, the chunk shape, the data type
with its byte order and the codec chain with every parameter. Two arrays that agree
on all of these (and on the shape) store the same chunk as bytes that decode to the
same pixels through either array's metadata, so the bytes can be copied from one to
the other without decoding and encoding again (:mod:`ngff_gpu.io.rawcopy`).

:func:`chunk_layout` describes one array (Zarr v2 or v3) in a form that compares
across formats: the codec chain of Zarr v3 (``transpose``, ``bytes`` with its
endianness, ``zstd``/``gzip``/``blosc``...) with every parameter filled in (the
defaults an array's metadata leaves out, Blosc's ``typesize``). A Zarr v2 array is
described by the v3 chain whose bitstream is the same: ``order="F"`` is ``transpose``
with the axes reversed, the dtype's byte order is ``bytes``'s endianness, numcodecs'
``Zstd``, ``GZip`` and ``Blosc`` are the v3 ``zstd``, ``gzip`` and ``blosc`` codecs with
the same parameters (zarr-python's v3 codecs call the same numcodecs functions;
``tests/test_rawcopy.py`` checks each pairing bit for bit and by decoding). Filters
and other compressors of Zarr v2 keep numcodecs' names (``v2:<id>``), so they only
ever match another v2 array with the same ones.

For a sharded array the chunk is the *inner* chunk and the layout carries the shard
shape and the shard index's format (``sharding_indexed``: offsets and sizes as
``uint64`` in the index codecs' byte order, with or without ``crc32c``, at the start
or the end of the shard).

:func:`raw_copy_reason` is the rule: None when a target can take the source's
chunks as they are, else why not (one line for a report).
:func:`matching_codecs` gives ``zarr.create_array`` arguments for a Zarr v3 array
that takes a source's chunks as they are (what an OME-Zarr version upgrade creates).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

#: One codec of a normalized chain: its name and its configuration as canonical JSON.
Codec = tuple[str, str]

_BLOSC_SHUFFLE = {0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}
#: The v3 codecs a Zarr v2 compressor is the same bitstream as (numcodecs id -> v3 name).
_V2_AS_V3 = {"zstd": "zstd", "gzip": "gzip", "blosc": "blosc"}


@dataclass(frozen=True)
class IndexFormat:
    """How a shard's index is stored (``sharding_indexed``'s ``index_codecs`` and
    ``index_location``): one ``(offset, nbytes)`` pair of ``uint64`` per inner chunk in
    C order, ``2**64 - 1`` twice for a chunk that is not stored."""

    endian: str
    crc32c: bool
    location: str

    def nbytes(self, n_chunks: int) -> int:
        """Bytes of the index of a shard of ``n_chunks`` inner chunks."""
        return 16 * n_chunks + (4 if self.crc32c else 0)


@dataclass(frozen=True)
class ChunkLayout:
    """What decides the stored bytes of an array's chunks.

    Attributes
    ----------
    zarr_format : {2, 3}
    shape : tuple of int
        Array shape.
    dtype : numpy.dtype
        Data type in little-endian (or no) byte order; the stored byte order is part
        of ``codecs``.
    chunks : tuple of int
        The unit encoded on its own: the chunk, or the inner chunk when sharded.
    codecs : tuple of Codec
        The normalized codec chain of one chunk (see the module docstring).
    fill : bytes
        The fill value as the dtype's bytes (what a chunk that is not stored reads as).
    shards : tuple of int or None
        Shard shape when sharded.
    index : IndexFormat or None
        The shard index's format when sharded.
    """

    zarr_format: int
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: tuple[int, ...]
    codecs: tuple[Codec, ...]
    fill: bytes
    shards: tuple[int, ...] | None = None
    index: IndexFormat | None = None

    @property
    def unit(self) -> tuple[int, ...]:
        """The shape of one stored object (key): the shard, else the chunk."""
        return self.shards or self.chunks


class LayoutError(ValueError):
    """An array whose chunk bytes this module cannot describe (so never copied raw)."""


def _canonical(config: Any) -> str:
    return json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))


def _norm(name: str, config: dict[str, Any], itemsize: int) -> Codec | None:
    """One v3 codec with its defaults filled in; None for a codec that changes nothing."""
    config = dict(config or {})
    if name == "bytes":
        return ("bytes", _canonical({} if itemsize == 1 else
                                    {"endian": config.get("endian") or "little"}))
    if name == "transpose":
        order = [int(i) for i in config.get("order", ())]
        return None if order == sorted(order) else ("transpose", _canonical({"order": order}))
    if name == "zstd":
        return ("zstd", _canonical({"level": int(config.get("level", 0)),
                                    "checksum": bool(config.get("checksum", False))}))
    if name == "gzip":
        return ("gzip", _canonical({"level": int(config.get("level", 5))}))
    if name == "blosc":
        shuffle = config.get("shuffle", "noshuffle")
        if isinstance(shuffle, int):
            shuffle = _BLOSC_SHUFFLE.get(shuffle, shuffle)
        return ("blosc", _canonical({
            "typesize": int(config.get("typesize") or itemsize), "cname": str(config["cname"]),
            "clevel": int(config["clevel"]), "shuffle": str(shuffle),
            "blocksize": int(config.get("blocksize") or 0)}))
    return (name, _canonical(config))


def _v3_chain(dicts: Any, itemsize: int) -> tuple[Codec, ...]:
    out = []
    for d in dicts:
        d = d if isinstance(d, dict) else d.to_dict()
        if d["name"] == "sharding_indexed":
            raise LayoutError("nested sharding")
        c = _norm(d["name"], d.get("configuration") or {}, itemsize)
        if c is not None:
            out.append(c)
    return tuple(out)


def _index_format(config: dict[str, Any]) -> IndexFormat:
    codecs = [c if isinstance(c, dict) else c.to_dict() for c in config.get("index_codecs", ())]
    names = [c["name"] for c in codecs]
    if names not in (["bytes"], ["bytes", "crc32c"]):
        raise LayoutError(f"shard index codecs {names} (only bytes, then optionally crc32c)")
    endian = (codecs[0].get("configuration") or {}).get("endian") or "little"
    location = config.get("index_location", "end")
    location = getattr(location, "value", location)
    return IndexFormat(str(endian), names == ["bytes", "crc32c"], str(location))


def _v2_chain(meta: Any, native: np.dtype) -> tuple[Codec, ...]:
    out: list[Codec] = []
    if meta.order == "F" and len(meta.shape) > 1:
        out.append(("transpose", _canonical({"order": list(range(len(meta.shape)))[::-1]})))
    for f in meta.filters or ():
        cfg = dict(f.get_config())
        out.append((f"v2:{cfg.pop('id')}", _canonical(cfg)))
    if native.itemsize > 1 and native.byteorder != "|":
        out.append(("bytes", _canonical({"endian": "big" if native.byteorder == ">" or (
            native.byteorder == "=" and np.little_endian is False) else "little"})))
    else:
        out.append(("bytes", _canonical({})))
    if meta.compressor is not None:
        cfg = dict(meta.compressor.get_config())
        cid = cfg.pop("id")
        if cid in _V2_AS_V3:
            if cid == "blosc" and cfg.get("shuffle") == -1:  # numcodecs' AUTOSHUFFLE
                cfg["shuffle"] = 2 if native.itemsize == 1 else 1
            c = _norm(_V2_AS_V3[cid], cfg, native.itemsize)
            if c is not None:
                out.append(c)
        else:
            out.append((f"v2:{cid}", _canonical(cfg)))
    return tuple(out)


def _fill_bytes(value: Any, dtype: np.dtype) -> bytes:
    if value is None:  # Zarr v2 ``null``: zarr-python reads missing chunks as zeros
        value = 0
    return np.asarray(value, dtype=dtype).tobytes()


def chunk_layout(array: Any) -> ChunkLayout:
    """The :class:`ChunkLayout` of a zarr array (v2 or v3).

    Raises
    ------
    LayoutError
        For an array whose chunk bytes are not described here (an irregular chunk
        grid, storage transformers, nested sharding, a shard index with other codecs,
        variable-length data types).
    """
    meta = array.metadata
    native = np.dtype(meta.dtype.to_native_dtype() if meta.zarr_format == 2
                      else meta.data_type.to_native_dtype())
    if native.kind not in "biufcmM" or native.fields is not None:
        raise LayoutError(f"data type {native}")
    dtype = native.newbyteorder("<") if native.itemsize > 1 else native
    shape = tuple(int(n) for n in meta.shape)
    fill = _fill_bytes(meta.fill_value, dtype)
    if meta.zarr_format == 2:
        return ChunkLayout(2, shape, dtype, tuple(int(c) for c in meta.chunks),
                           _v2_chain(meta, native), fill)
    if getattr(meta, "storage_transformers", ()):
        raise LayoutError("storage transformers")
    grid = getattr(meta.chunk_grid, "chunk_shape", None)
    if grid is None:
        raise LayoutError(f"chunk grid {type(meta.chunk_grid).__name__} (not regular)")
    grid = tuple(int(c) for c in grid)
    codecs = [c.to_dict() for c in meta.codecs]
    if codecs and codecs[0]["name"] == "sharding_indexed":
        if len(codecs) > 1:
            raise LayoutError("codecs after sharding_indexed")
        cfg = codecs[0]["configuration"]
        return ChunkLayout(3, shape, dtype, tuple(int(c) for c in cfg["chunk_shape"]),
                           _v3_chain(cfg["codecs"], dtype.itemsize), fill, grid,
                           _index_format(cfg))
    return ChunkLayout(3, shape, dtype, grid, _v3_chain(codecs, dtype.itemsize), fill)


def describe(codecs: tuple[Codec, ...]) -> str:
    """``bytes(endian=little) > zstd(checksum=false, level=3)``: a chain for a message."""
    parts = []
    for name, cfg in codecs:
        args = ", ".join(f"{k}={json.dumps(v)}" for k, v in json.loads(cfg).items())
        parts.append(f"{name}({args})")
    return " > ".join(parts) or "none"


def raw_copy_reason(source: Any, target: Any) -> str | None:
    """None when ``target`` can take the stored chunks of ``source`` as they are; else
    why not, in one line.

    The rule: same shape, same (inner) chunk shape, same data type, and the same
    normalized codec chain (every parameter: level, shuffle, typesize, checksum,
    byte order, transpose...). The fill value, the chunk key encoding, dimension
    names and attributes may differ (a missing chunk is handled where it is copied,
    :mod:`ngff_gpu.io.rawcopy`). Sharding may differ too: inner chunks are packed
    into the target's shards, or taken out of the source's.

    Parameters
    ----------
    source, target : zarr.Array
        Zarr v2 or v3 arrays.
    """
    try:
        src = chunk_layout(source)
    except LayoutError as exc:
        return f"the input's {exc} cannot be copied raw"
    except (AttributeError, TypeError) as exc:
        return f"not a zarr array ({exc})"
    try:
        tgt = chunk_layout(target)
    except LayoutError as exc:
        return f"the output's {exc} cannot take raw chunks"
    if src.shape != tgt.shape:
        return f"shape {src.shape} differs from the output's {tgt.shape}"
    if src.dtype != tgt.dtype:
        return f"data type {src.dtype} differs from the output's {tgt.dtype}"
    if src.chunks != tgt.chunks:
        return f"chunks {src.chunks} differ from the output's {tgt.chunks}"
    if src.codecs != tgt.codecs:
        same = 0
        while src.codecs[same:same + 1] == tgt.codecs[same:same + 1]:
            same += 1
        return (f"codec {describe(src.codecs[same:])} differs from the output's "
                f"{describe(tgt.codecs[same:])}")
    return None


def matching_codecs(source: Any) -> dict[str, Any] | None:
    """``zarr.create_array`` arguments (``chunks``, ``shards``, ``filters``,
    ``serializer``, ``compressors``, ``dtype``) for a Zarr v3 array of ``source``'s
    shape that takes its stored chunks as they are (:func:`raw_copy_reason` is None),
    or None when Zarr v3 has no such codec chain (Zarr v2 filters, compressors
    without a v3 codec of the same bitstream) or the layout is not described here.

    ``shards`` is ``source``'s (None when not sharded); passing another shard shape
    still takes the chunks raw (they are packed into the new shards).
    """
    from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec
    from zarr.registry import get_codec_class

    try:
        layout = chunk_layout(source)
    except (LayoutError, AttributeError, TypeError):
        return None
    filters: list[Any] = []
    serializer = None
    compressors: list[Any] = []
    for name, cfg in layout.codecs:
        if name.startswith("v2:"):
            return None
        config = json.loads(cfg)
        if name == "bytes" and not config:
            config = {"endian": "little"}  # one-byte types: any endianness is the same
        try:
            codec = get_codec_class(name).from_dict({"name": name, "configuration": config})
        except (KeyError, TypeError, ValueError):
            return None
        if isinstance(codec, ArrayArrayCodec):
            filters.append(codec)
        elif isinstance(codec, ArrayBytesCodec):
            serializer = codec
        else:
            compressors.append(codec)
    if serializer is None:
        return None
    return {"chunks": layout.chunks, "shards": layout.shards, "filters": filters,
            "serializer": serializer, "compressors": compressors, "dtype": layout.dtype}
