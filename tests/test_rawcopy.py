"""Level 0 without re-encoding (ngff_gpu.io.chunk_layout, ngff_gpu.io.rawcopy).

A level read from a Zarr array stored exactly as the output stores it is copied as
stored bytes. Checked here: every codec pairing claimed across Zarr v2 and v3 gives
the same bitstream and decodes; any parameter that differs falls back to encoding;
copied stores decode to the re-encoding path's store at every level, with level-0
objects equal to the input's bytes and no level-0 encode through the write seam;
shards packed from chunks carry a correct index; every reader opens the result;
resume, kills mid-copy and atomic overwrite behave as for encoded writes; the CLI
reports it and ``--recompress`` turns it off.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
import warnings
from pathlib import Path

import numcodecs
import numpy as np
import pytest
import zarr
import zarr.codecs as zc
from cli_run import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zarr.storage import MemoryStore

import ngff_gpu as nz
from ngff_gpu.io.chunk_layout import IndexFormat, chunk_layout, matching_codecs, raw_copy_reason
from ngff_gpu.io.rawcopy import EMPTY, RawCopier, copy_file, pack_shard, parse_index
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import write_multiscales
from ngff_gpu.levels.engine import write_region

SHAPE = (20, 24, 28)
CHUNKS = (8, 8, 8)


def _data(shape=SHAPE, dtype="uint16", seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape, dtype=np.float32)
    smooth = 2000 + 900 * np.sin(x / 4) * np.cos(y / 3) + 20 * z
    return (smooth + rng.integers(0, 300, shape)).astype(dtype)


def _files(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _chunk_files(array_dir: Path) -> dict[str, bytes]:
    return {k: v for k, v in _files(array_dir).items()
            if k not in ("zarr.json", ".zarray", ".zattrs")}


def _v3_source(path, data, chunks=CHUNKS, codec=None, shards=None, fill=0, missing=()):
    a = zarr.create_array(str(path), shape=data.shape, chunks=chunks, shards=shards,
                          dtype=data.dtype, fill_value=fill,
                          compressors=codec if codec is not None else zc.ZstdCodec(level=3))
    a[...] = data
    for box in missing:  # never written: delete the stored object
        key = a.metadata.encode_chunk_key(box)
        os.remove(Path(path, *key.split("/")))
    return zarr.open_array(str(path), mode="r")


def _levels(store):
    root = zarr.open_group(store, mode="r")
    ms = nz.from_ngff_zarr(store)
    return [root[ds.path][...] for ds in ms.metadata.datasets]


class _Counting:
    """A write seam counting the writes into each array path."""

    def __init__(self, fail_after: int | None = None, path: str | None = None):
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        self.fail_after, self.path = fail_after, path

    def __call__(self, array, region, data):
        with self.lock:
            self.calls[array.path] = self.calls.get(array.path, 0) + 1
            n = sum(self.calls.values()) if self.path is None else self.calls.get(self.path, 0)
        if self.fail_after is not None and n > self.fail_after and \
                (self.path is None or array.path == self.path):
            raise OSError("simulated write failure")
        write_region(array, region, data)


# --------------------------------------------------------------------------- pairings

V2_CODECS = {
    "zstd": st.builds(lambda lv, ck: numcodecs.Zstd(level=lv, checksum=ck),
                      st.integers(-3, 9), st.booleans()),
    "gzip": st.builds(lambda lv: numcodecs.GZip(level=lv), st.integers(0, 9)),
    "blosc": st.builds(lambda cn, cl, sh, bs: numcodecs.Blosc(cname=cn, clevel=cl, shuffle=sh,
                                                             blocksize=bs),
                       st.sampled_from(["lz4", "lz4hc", "zstd", "zlib", "blosclz"]),
                       st.integers(0, 9), st.sampled_from([-1, 0, 1, 2]),
                       st.sampled_from([0, 256])),
}


@settings(max_examples=40, deadline=None)
@given(compressor=st.one_of(*V2_CODECS.values()),
       dtype=st.sampled_from(["uint8", "uint16", "int32", "float32", "float64"]),
       endian=st.sampled_from(["<", ">"]), order=st.sampled_from(["C", "F"]))
def test_v2_pairings_are_the_same_bitstream_and_decode(compressor, dtype, endian, order):
    """Each Zarr v2 compressor claimed equal to a v3 codec chain writes the same bytes for
    the same chunk (zarr-python encoding both), and chunks copied raw from v2 into v3
    decode to the v2 array's pixels."""
    dt = np.dtype(dtype).newbyteorder(endian) if np.dtype(dtype).itemsize > 1 else dtype
    data = _data((9, 10, 11), "uint16").astype(dt)
    v2 = zarr.create_array(MemoryStore(), shape=data.shape, chunks=(4, 5, 6), dtype=dt,
                           zarr_format=2, compressors=compressor, order=order, fill_value=0)
    v2[...] = data
    kwargs = matching_codecs(v2)
    assert kwargs is not None
    v3 = zarr.create_array(MemoryStore(), shape=data.shape, fill_value=0, **kwargs)
    assert raw_copy_reason(v2, v3) is None
    v3[...] = data
    for coords in np.ndindex(*v2.cdata_shape):
        a = zarr.core.sync.sync(v2.store.get(v2.metadata.encode_chunk_key(coords),
                                             zarr.core.buffer.default_buffer_prototype()))
        b = zarr.core.sync.sync(v3.store.get(v3.metadata.encode_chunk_key(coords),
                                             zarr.core.buffer.default_buffer_prototype()))
        a, b = a.to_bytes(), b.to_bytes()
        if compressor.codec_id == "gzip":  # the gzip header holds the time of encoding
            a, b = a[:4] + a[8:], b[:4] + b[8:]
        assert a == b, coords
    fresh = zarr.create_array(MemoryStore(), shape=data.shape, fill_value=0, **kwargs)
    stats = RawCopier(v2, fresh).copy_all()
    assert stats.chunks == int(np.prod(v2.cdata_shape)) and stats.encoded == 0
    np.testing.assert_array_equal(fresh[...], data)


# --------------------------------------------------------------------------- the rule

def _v3(cfg):
    kind, p = cfg["codec"]
    compressor = {"zstd": lambda: zc.ZstdCodec(level=p[0], checksum=p[1]),
                  "gzip": lambda: zc.GzipCodec(level=p[0]),
                  "blosc": lambda: zc.BloscCodec(cname=p[0], clevel=p[1], shuffle=p[2],
                                                 typesize=p[3], blocksize=p[4]),
                  "none": lambda: None}[kind]()
    filters = [zc.TransposeCodec(order=cfg["transpose"])] if cfg["transpose"] else []
    return zarr.create_array(MemoryStore(), shape=SHAPE, chunks=cfg["chunks"],
                             dtype=cfg["dtype"], fill_value=cfg["fill"], filters=filters,
                             serializer=zc.BytesCodec(endian=cfg["endian"]),
                             compressors=compressor)


def _codec_params(kind):
    return {"zstd": st.tuples(st.integers(0, 9), st.booleans()),
            "gzip": st.tuples(st.integers(0, 9)),
            "blosc": st.tuples(st.sampled_from(["lz4", "zstd", "zlib"]), st.integers(0, 9),
                               st.sampled_from(["noshuffle", "shuffle", "bitshuffle"]),
                               st.sampled_from([1, 2, 4]), st.sampled_from([0, 128])),
            "none": st.just(())}[kind]


@st.composite
def configs(draw):
    kind = draw(st.sampled_from(["zstd", "gzip", "blosc", "none"]))
    return {"codec": (kind, draw(_codec_params(kind))),
            "dtype": draw(st.sampled_from(["uint16", "int16", "float32"])),
            "endian": draw(st.sampled_from(["little", "big"])),
            "chunks": draw(st.sampled_from([(8, 8, 8), (4, 8, 8), (8, 8, 16)])),
            "transpose": draw(st.sampled_from([None, (2, 1, 0), (0, 2, 1)])),
            "fill": draw(st.sampled_from([0, 7]))}


@settings(max_examples=80, deadline=None)
@given(a=configs(), field=st.sampled_from(["codec", "dtype", "endian", "chunks", "transpose",
                                           "fill", None]), data=st.data())
def test_any_parameter_that_differs_falls_back(a, field, data):
    """raw_copy_reason is None exactly when the two arrays agree on every parameter
    that decides the stored bytes; the fill value alone never blocks it."""
    b = dict(a)
    if field == "codec":
        kind = data.draw(st.sampled_from(["zstd", "gzip", "blosc", "none"]))
        b["codec"] = (kind, data.draw(_codec_params(kind)))
    elif field is not None:
        b[field] = data.draw(configs())[field]
    reason = raw_copy_reason(_v3(a), _v3(b))
    differs = [k for k in a if k != "fill" and a[k] != b[k]]
    if differs:
        assert reason is not None, (a, b)
    else:
        assert reason is None, (a, b, reason)


def test_sharded_layouts_compare_inner_chunks():
    inner = zarr.create_array(MemoryStore(), shape=SHAPE, chunks=(4, 8, 8), shards=(8, 8, 16),
                              dtype="uint16", compressors=zc.ZstdCodec(level=3))
    plain = zarr.create_array(MemoryStore(), shape=SHAPE, chunks=(4, 8, 8), dtype="uint16",
                              compressors=zc.ZstdCodec(level=3))
    other = zarr.create_array(MemoryStore(), shape=SHAPE, chunks=(8, 8, 8), shards=(8, 8, 16),
                              dtype="uint16", compressors=zc.ZstdCodec(level=3))
    assert raw_copy_reason(inner, plain) is None and raw_copy_reason(plain, inner) is None
    assert "chunks" in raw_copy_reason(inner, other)
    lay = chunk_layout(inner)
    assert lay.chunks == (4, 8, 8) and lay.shards == (8, 8, 16)
    assert lay.index == IndexFormat("little", True, "end")


def test_copy_all_for_an_upgrade(tmp_path):
    """What an OME-Zarr upgrade does: a Zarr v3 array made with matching_codecs (here
    sharded) takes a Zarr v2 array's chunks whole-array, a few objects at a time; a missing
    chunk whose fill value the target reads differently is encoded from the source."""
    data = _data()
    v2 = zarr.create_array(str(tmp_path / "v2"), shape=data.shape, chunks=CHUNKS,
                           dtype="uint16", zarr_format=2, compressors=numcodecs.Zstd(level=5),
                           fill_value=9)
    v2[...] = data
    os.remove(tmp_path / "v2" / "1.1.1")
    data[8:16, 8:16, 8:16] = 9
    kwargs = matching_codecs(v2)
    assert kwargs["shards"] is None and kwargs["chunks"] == CHUNKS
    kwargs["shards"] = (16, 16, 16)
    v3 = zarr.create_array(str(tmp_path / "v3"), shape=data.shape, fill_value=0, **kwargs)
    stats = RawCopier(v2, v3).copy_all(batch=2)
    assert stats.encoded == 1 and stats.chunks == int(np.prod(v2.cdata_shape)) - 8
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "v3"))[...], data)
    assert matching_codecs(zarr.create_array(MemoryStore(), shape=(4,), dtype="uint8",
                                             zarr_format=2, compressors=numcodecs.LZ4())) is None


# --------------------------------------------------------------------------- shard index

@settings(max_examples=20, deadline=None)
@given(endian=st.sampled_from(["little", "big"]), crc=st.booleans(),
       location=st.sampled_from(["start", "end"]),
       present=st.lists(st.booleans(), min_size=8, max_size=8))
def test_packed_shards_are_read_by_zarr(endian, crc, location, present):
    """pack_shard's index in every format sharding_indexed allows: zarr-python reads each
    inner chunk from it, an empty entry reads as the fill value, and parse_index reads
    back what pack_shard wrote."""
    data = _data((8, 8, 8), "uint16")
    src = zarr.create_array(MemoryStore(), shape=(8, 8, 8), chunks=(4, 4, 4), dtype="uint16",
                            compressors=zc.ZstdCodec(level=3), fill_value=5)
    src[...] = data
    index_codecs = [zc.BytesCodec(endian=endian)] + ([zc.Crc32cCodec()] if crc else [])
    sharding = zc.ShardingCodec(chunk_shape=(4, 4, 4), codecs=[zc.BytesCodec(),
                                                                zc.ZstdCodec(level=3)],
                                index_codecs=index_codecs, index_location=location)
    tgt = zarr.create_array(MemoryStore(), shape=(8, 8, 8), chunks=(8, 8, 8), dtype="uint16",
                            serializer=sharding, compressors=None, filters=None, fill_value=5)
    proto = zarr.core.buffer.default_buffer_prototype()
    chunks = {}
    for c, keep in zip(np.ndindex(2, 2, 2), present):
        if keep:
            chunks[c] = zarr.core.sync.sync(
                src.store.get(src.metadata.encode_chunk_key(c), proto)).to_bytes()
    fmt = chunk_layout(tgt).index
    assert fmt == IndexFormat(endian, crc, location)
    shard = pack_shard(chunks, (2, 2, 2), fmt)
    zarr.core.sync.sync(tgt.store.set(tgt.metadata.encode_chunk_key((0, 0, 0)),
                                      proto.buffer.from_bytes(shard)))
    got = tgt[...]
    for c, keep in zip(np.ndindex(2, 2, 2), present):
        box = tuple(slice(4 * i, 4 * i + 4) for i in c)
        want = data[box] if keep else np.full((4, 4, 4), 5, np.uint16)
        np.testing.assert_array_equal(got[box], want)
    n = fmt.nbytes(8)
    index = parse_index(shard[:n] if location == "start" else shard[-n:], (2, 2, 2), fmt, "s")
    for c, keep in zip(np.ndindex(2, 2, 2), present):
        off, size = (int(v) for v in index[c])
        if keep:
            assert shard[off:off + size] == chunks[c]
        else:
            assert off == size == EMPTY


def test_a_damaged_index_is_refused():
    fmt = IndexFormat("little", True, "end")
    shard = bytearray(pack_shard({(0,): b"abc"}, (2,), fmt))
    shard[-5] ^= 1
    with pytest.raises(nz.InvalidStoreError, match="checksum"):
        parse_index(bytes(shard[-fmt.nbytes(2):]), (2,), fmt, "s")


# --------------------------------------------------------------------------- file copies

def test_copy_file_is_an_independent_atomic_copy(tmp_path):
    src = tmp_path / "a"
    src.write_bytes(os.urandom(100_000))
    dst = tmp_path / "out" / "b"
    assert copy_file(str(src), str(dst)) == 100_000
    assert dst.read_bytes() == src.read_bytes()
    assert os.stat(dst).st_ino != os.stat(src).st_ino and os.stat(src).st_nlink == 1
    dst.write_bytes(b"changed")
    assert len(src.read_bytes()) == 100_000
    assert copy_file(str(tmp_path / "missing"), str(tmp_path / "c")) is None
    assert not (tmp_path / "c").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b"]  # no temporaries
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert copy_file(str(empty), str(tmp_path / "e")) == 0 and (tmp_path / "e").exists()


# --------------------------------------------------------------------------- the writer

def _write(out, source, *, write=None, **kwargs):
    ms = nz.to_multiscales(nz.to_ngff_image(source, dims="zyx"), scale_factors=[2, 4],
                           chunks=kwargs.pop("chunks", 8))
    seams = Seams(write=write or write_region, brick_budget=kwargs.pop("budget", None),
                  **({"raw_copy": kwargs.pop("raw_copy")} if "raw_copy" in kwargs else {}))
    return write_multiscales(out, ms, seams=seams, **kwargs)


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_level0_is_copied_raw_and_decodes_as_reencoded(tmp_path, version):
    data = _data()
    src = _v3_source(tmp_path / "in.zarr", data, missing=[(0, 0, 0), (1, 2, 3)])
    count = _Counting()
    rep = _write(tmp_path / "raw.ome.zarr", src, write=count, version=version)
    ref = _write(tmp_path / "ref.ome.zarr", src, recompress=True, version=version)
    stats = rep.raw.copiers["scale0/image"].stats
    n_chunks = int(np.prod(src.cdata_shape))
    assert (stats.chunks, stats.missing, stats.encoded) == (n_chunks - 2, 2, 0)
    assert count.calls.get("scale0/image", 0) == 0  # nothing of level 0 went to the encoder
    assert count.calls.get("scale1/image", 0) > 0
    assert ref.raw.reasons == {"scale0/image": "recompress asked"}
    for a, b in zip(_levels(tmp_path / "raw.ome.zarr"), _levels(tmp_path / "ref.ome.zarr")):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    # Level 0's stored objects are the input's, byte for byte (keys in the output's encoding).
    sep = "/" if version == "0.4" else "c/"
    got = _chunk_files(tmp_path / "raw.ome.zarr" / "scale0" / "image")
    want = {(sep + k[2:] if version == "0.4" else k): v
            for k, v in _chunk_files(tmp_path / "in.zarr").items()}
    assert {k.lstrip("/"): v for k, v in got.items()} == {k.lstrip("/"): v for k, v in want.items()}
    assert len(got) == n_chunks - 2
    assert nz.validate_store(tmp_path / "raw.ome.zarr") == version


def test_every_reader_opens_raw_stores(tmp_path):
    data = _data()
    src = _v3_source(tmp_path / "in.zarr", data)
    plain, sharded = tmp_path / "plain.ome.zarr", tmp_path / "sharded.ome.zarr"
    assert _write(plain, src).raw.copiers
    assert _write(sharded, src, chunks_per_shard=2).raw.copiers
    ts = pytest.importorskip("tensorstore")
    nzr = pytest.importorskip("ngff_zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    for store in (plain, sharded):
        assert nz.validate_store(store) == "0.5"
        np.testing.assert_array_equal(zarr.open_group(store)["scale0/image"][...], data)
        arr = ts.open({"driver": "zarr3", "kvstore": {"driver": "file",
                                                      "path": str(store / "scale0" / "image")}}
                      ).result()
        np.testing.assert_array_equal(arr.read().result(), data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = nzr.from_ngff_zarr(str(store))
            np.testing.assert_array_equal(np.asarray(theirs.images[0].data), data)
            node = next(iter(Reader(parse_url(str(store)))()))
            np.testing.assert_array_equal(np.asarray(node.data[0]), data)


def test_shards_packed_from_chunks(tmp_path):
    """Inner chunks packed into shards: the index points at each source chunk's bytes, a
    never-written chunk has an empty entry, and the array decodes as zarr-python's own
    sharded write of the same pixels."""
    data = _data()
    src = _v3_source(tmp_path / "in.zarr", data, missing=[(0, 0, 0), (2, 1, 1)])
    out, ref = tmp_path / "o.ome.zarr", tmp_path / "r.ome.zarr"
    count = _Counting()
    rep = _write(out, src, chunks_per_shard=2, write=count)
    _write(ref, src, chunks_per_shard=2, recompress=True)
    assert count.calls.get("scale0/image", 0) == 0
    stats = rep.raw.copiers["scale0/image"].stats
    assert (stats.chunks, stats.missing, stats.encoded) == (int(np.prod(src.cdata_shape)) - 2,
                                                            2, 0)
    for a, b in zip(_levels(out), _levels(ref)):
        assert a.tobytes() == b.tobytes()
    arr = zarr.open_array(str(out / "scale0" / "image"))
    fmt = chunk_layout(arr).index
    per = tuple(s // c for s, c in zip(arr.shards, arr.chunks))
    seen = 0
    for shard in np.ndindex(*[-(-n // s) for n, s in zip(arr.shape, arr.shards)]):
        path = out / "scale0" / "image" / arr.metadata.encode_chunk_key(shard)
        blob = path.read_bytes()
        index = parse_index(blob[-fmt.nbytes(int(np.prod(per))):], per, fmt, str(path))
        for inner in np.ndindex(*per):
            c = tuple(s * p + i for s, p, i in zip(shard, per, inner))
            off, size = (int(v) for v in index[inner])
            src_file = tmp_path / "in.zarr" / "c" / "/".join(map(str, c))
            if any(i >= n for i, n in zip(c, src.cdata_shape)) or not src_file.exists():
                assert off == size == EMPTY, c
            else:
                assert blob[off:off + size] == src_file.read_bytes(), c
                seen += 1
    assert seen == stats.chunks


@pytest.mark.parametrize("out_cps", [None, 2, 1])
def test_sharded_source(tmp_path, out_cps):
    """From a sharded input: whole shards copied (same shard shape and index), inner chunks
    taken out of shards (unsharded output), or repacked (other shard shape)."""
    data = _data()
    src_path = tmp_path / "in.zarr"
    src = _v3_source(src_path, data, shards=(16, 16, 16))
    a = zarr.open_array(str(src_path), mode="r+")
    a[:8, :8, :8] = 0  # an inner chunk that zarr does not store (empty index entry)
    out = tmp_path / "o.ome.zarr"
    count = _Counting()
    rep = _write(out, zarr.open_array(str(src_path), mode="r"), chunks_per_shard=out_cps,
                 write=count)
    assert count.calls.get("scale0/image", 0) == 0
    stats = rep.raw.copiers["scale0/image"].stats
    assert stats.chunks == _inner_chunks(src) - 1
    expect = data.copy()
    expect[:8, :8, :8] = 0
    np.testing.assert_array_equal(zarr.open_group(out)["scale0/image"][...], expect)
    if out_cps == 2:  # shard (16, 16, 16) both sides: the files are the input's
        assert _chunk_files(out / "scale0" / "image") == _chunk_files(src_path)
    ref = tmp_path / "r.ome.zarr"
    _write(ref, zarr.open_array(str(src_path), mode="r"), chunks_per_shard=out_cps,
           recompress=True)
    for x, y in zip(_levels(out), _levels(ref)):
        assert x.tobytes() == y.tobytes()


def _inner_chunks(array) -> int:
    """Inner chunks of the array (those inside its shape)."""
    return int(np.prod([-(-n // c) for n, c in zip(array.shape, array.chunks)]))


def test_v2_source_into_v3_output(tmp_path):
    data = _data()
    v2 = zarr.create_array(str(tmp_path / "in.zarr"), shape=data.shape, chunks=CHUNKS,
                           dtype="uint16", zarr_format=2, compressors=numcodecs.Zstd(level=3),
                           fill_value=0)
    v2[...] = data
    rep = _write(tmp_path / "o.ome.zarr", zarr.open_array(str(tmp_path / "in.zarr")))
    assert rep.raw.copiers["scale0/image"].stats.chunks == int(np.prod(v2.cdata_shape))
    got = _chunk_files(tmp_path / "o.ome.zarr" / "scale0" / "image")
    want = {"c/" + k.replace(".", "/"): v for k, v in _chunk_files(tmp_path / "in.zarr").items()}
    assert got == want
    np.testing.assert_array_equal(zarr.open_group(tmp_path / "o.ome.zarr")["scale0/image"][...],
                                  data)


def test_a_fill_value_that_differs_encodes_missing_chunks(tmp_path):
    """A never-written source chunk reads as the source's fill value: the output (fill 0)
    cannot leave it missing, so that chunk alone is encoded (shards: the whole shard)."""
    data = _data()
    src = _v3_source(tmp_path / "in.zarr", data, fill=7, missing=[(1, 1, 1)])
    expect = data.copy()
    expect[8:16, 8:16, 8:16] = 7
    for cps in (None, 2):
        out = tmp_path / f"o{cps}.ome.zarr"
        count = _Counting()
        rep = _write(out, src, chunks_per_shard=cps, write=count)
        stats = rep.raw.copiers["scale0/image"].stats
        assert stats.encoded == 1 and count.calls["scale0/image"] == 1
        np.testing.assert_array_equal(zarr.open_group(out)["scale0/image"][...], expect)


def test_codec_mismatch_through_the_writer_reencodes(tmp_path):
    src = _v3_source(tmp_path / "in.zarr", _data(), codec=zc.ZstdCodec(level=5))
    count = _Counting()
    rep = _write(tmp_path / "o.ome.zarr", src, write=count)
    assert not rep.raw.copiers and "level=5" in rep.raw.reasons["scale0/image"]
    assert count.calls["scale0/image"] > 0
    assert _write(tmp_path / "p.ome.zarr", src, codec_level=5).raw.copiers
    other = _write(tmp_path / "q.ome.zarr", src, codec_level=5, chunks=(4, 8, 8))
    assert "chunks" in other.raw.reasons["scale0/image"]


@st.composite
def writer_cases(draw):
    """A Zarr source (v2 or v3) and the output's codec choice: half of them with the
    source's codec drawn equal to the output's, the others with any parameters."""
    fmt = draw(st.sampled_from([2, 3]))
    out = draw(st.sampled_from(["zstd", "gzip", "blosc-zstd", "blosc-lz4", "lz4"]))
    level = draw(st.sampled_from([None, 3, 5]))
    if draw(st.booleans()):
        kind, params = _written_codec(out, level)
        if fmt == 2 and kind == "blosc":
            params["shuffle"] = draw(st.sampled_from(["shuffle", "auto"]))
    else:
        kind = draw(st.sampled_from(["zstd", "gzip", "blosc"]))
        if kind == "zstd":
            params = {"level": draw(st.sampled_from([1, 3, 5])), "checksum": draw(st.booleans())}
        elif kind == "gzip":
            params = {"level": draw(st.sampled_from([5, 6]))}
        else:
            params = {"cname": draw(st.sampled_from(["zstd", "lz4"])),
                      "clevel": draw(st.sampled_from([3, 5])),
                      "shuffle": draw(st.sampled_from(["shuffle", "bitshuffle", "noshuffle"] +
                                                      (["auto"] if fmt == 2 else []))),
                      "typesize": 2 if fmt == 2 else draw(st.sampled_from([2, 4])),
                      "blocksize": draw(st.sampled_from([0, 256]))}
    return {"fmt": fmt, "kind": kind, "params": params,
            "endian": draw(st.sampled_from(["little", "big"])),
            "chunks": draw(st.sampled_from([(8, 8, 8), (4, 8, 8)])),
            "fill": draw(st.sampled_from([0, 3])), "missing": draw(st.booleans()),
            "version": draw(st.sampled_from(["0.5", "0.4"])), "out": out, "level": level}


def _written_codec(out: str, level: int | None) -> tuple[str, dict]:
    """What the writer encodes with for ``--codec out --level level`` (uint16), spelled out
    here from docs/cli.md, independently of the code under test."""
    if out == "zstd":
        return "zstd", {"level": 3 if level is None else level, "checksum": False}
    if out == "gzip":
        return "gzip", {"level": 5 if level is None else level}
    cname = "lz4" if out == "lz4" else out.split("-")[1]
    return "blosc", {"cname": cname, "clevel": 5 if level is None else level,
                     "shuffle": "shuffle", "typesize": 2, "blocksize": 0}


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=writer_cases())
def test_writer_copies_raw_exactly_when_every_parameter_matches(tmp_path_factory, case):
    tmp = tmp_path_factory.mktemp("w")
    data = _data()
    p = dict(case["params"])
    dt = np.dtype("uint16").newbyteorder("<" if case["endian"] == "little" else ">")
    if case["fmt"] == 2:
        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2, "auto": -1}.get(p.get("shuffle"))
        comp = {"zstd": lambda: numcodecs.Zstd(**p),
                "gzip": lambda: numcodecs.GZip(**p),
                "blosc": lambda: numcodecs.Blosc(cname=p["cname"], clevel=p["clevel"],
                                                 shuffle=shuffle, blocksize=p["blocksize"])}
        src = zarr.create_array(str(tmp / "in.zarr"), shape=SHAPE, chunks=case["chunks"],
                                dtype=dt, zarr_format=2, compressors=comp[case["kind"]](),
                                fill_value=case["fill"])
        if p.get("shuffle") == "auto":
            p["shuffle"] = "shuffle"  # numcodecs' AUTOSHUFFLE is byte shuffle for 2-byte items
    else:
        comp = {"zstd": zc.ZstdCodec, "gzip": zc.GzipCodec, "blosc": zc.BloscCodec}
        src = zarr.create_array(str(tmp / "in.zarr"), shape=SHAPE, chunks=case["chunks"],
                                dtype="uint16", serializer=zc.BytesCodec(endian=case["endian"]),
                                compressors=comp[case["kind"]](**p), fill_value=case["fill"])
    expect = data.copy()
    if case["missing"]:
        data[8:16, 8:16] = case["fill"]  # chunks all fill: zarr does not store them
        expect = data
    src[...] = data
    src = zarr.open_array(str(tmp / "in.zarr"), mode="r")
    # The output keeps the byte order of the array it is given: a big-endian Zarr v2 input
    # is big-endian in a Zarr v2 output (0.4); Zarr v3 arrays read as native order.
    out_endian = "big" if (case["version"], case["fmt"], case["endian"]) == (
        "0.4", 2, "big") else "little"
    raw = (case["chunks"] == (8, 8, 8) and case["endian"] == out_endian
           and (case["kind"], p) == _written_codec(case["out"], case["level"]))
    count = _Counting()
    rep = _write(tmp / "o.ome.zarr", src, write=count, codec=case["out"],
                 codec_level=case["level"], version=case["version"])
    if raw:
        stats = rep.raw.copiers["scale0/image"].stats
        assert count.calls.get("scale0/image", 0) == stats.encoded
        assert stats.encoded == (stats.missing if case["fill"] != 0 else 0)
    else:
        assert "scale0/image" in rep.raw.reasons and not rep.raw.copiers
        assert count.calls["scale0/image"] > 0
    got = zarr.open_group(tmp / "o.ome.zarr")["scale0/image"][...]
    assert got.dtype.str[1:] == src.dtype.str[1:]  # a v3 array reads in native byte order
    np.testing.assert_array_equal(got, expect)


def test_in_memory_stores_go_through_get_and_set(tmp_path):
    """Neither side a local directory: the stored bytes go through the stores' get/set."""
    data = _data()
    src = zarr.create_array(MemoryStore(), shape=data.shape, chunks=CHUNKS, dtype="uint16",
                            compressors=zc.ZstdCodec(level=3), fill_value=0)
    src[...] = data
    out = MemoryStore()
    rep = _write(out, src, chunks_per_shard=2)
    assert rep.raw.copiers["scale0/image"].stats.chunks == int(np.prod(src.cdata_shape))
    np.testing.assert_array_equal(zarr.open_group(out)["scale0/image"][...], data)
    local = tmp_path / "o.ome.zarr"
    assert _write(local, src).raw.copiers["scale0/image"].stats.encoded == 0
    np.testing.assert_array_equal(zarr.open_group(local)["scale0/image"][...], data)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_remote_source_over_http(tmp_path, monkeypatch):
    pytest.importorskip("aiohttp")
    # The server runs in this process: zarrs' pipeline, reading through fsspec, would block
    # the thread that serves it (a separate server process does not hang).
    monkeypatch.setenv("NGFF_GPU_CODEC_PIPELINE", "zarr")
    data = _data()
    www = tmp_path / "www"
    _v3_source(www / "in.zarr", data, missing=[(0, 0, 0)])
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/in.zarr"
        src = zarr.open_array(url, mode="r")
        rep = _write(tmp_path / "o.ome.zarr", src, chunks_per_shard={"z": 1, "y": 2, "x": 2})
    finally:
        server.shutdown()
        server.server_close()
    stats = rep.raw.copiers["scale0/image"].stats
    assert (stats.chunks, stats.missing) == (int(np.prod(src.cdata_shape)) - 1, 1)
    expect = data.copy()
    expect[:8, :8, :8] = 0
    np.testing.assert_array_equal(zarr.open_group(tmp_path / "o.ome.zarr")["scale0/image"][...],
                                  expect)


# --------------------------------------------------------------------------- crash safety

def test_failed_raw_run_resumes_to_the_clean_store(tmp_path):
    data = _data((40, 48, 56))
    src = _v3_source(tmp_path / "in.zarr", data, missing=[(1, 1, 1)])
    opts = {"budget": 60_000, "chunks": 8}
    clean = tmp_path / "clean.ome.zarr"
    _write(clean, src, **opts)
    broken = tmp_path / "broken.ome.zarr"
    with pytest.raises(OSError, match="simulated"):
        _write(broken, src, write=_Counting(fail_after=20, path="scale1/image"), **opts)
    attrs = zarr.open_group(broken, mode="r").attrs.asdict()
    assert "ome" not in attrs
    copied = _chunk_files(broken / "scale0" / "image")
    assert 0 < len(copied) < len(_chunk_files(clean / "scale0" / "image"))
    rep = _write(broken, src, resume=True, **opts)
    assert rep.raw.copiers["scale0/image"].stats.chunks < int(np.prod(src.cdata_shape)) - 1
    assert _files(broken) == _files(clean)


def test_a_kill_mid_copy_leaves_nothing_that_looks_complete(tmp_path):
    """A copy killed half-way leaves only its ``.partial`` temporary: no chunk file with
    part of the bytes, no OME metadata; resume deletes it and gives the clean store."""
    data = _data((40, 48, 56))
    src = _v3_source(tmp_path / "in.zarr", data)
    opts = {"budget": 60_000, "chunks": 8}
    clean = tmp_path / "clean.ome.zarr"
    _write(clean, src, **opts)
    calls = [0]

    def killed(a: str, b: str):
        calls[0] += 1
        if calls[0] == 30:  # what a SIGKILL during the copy leaves: a partial temporary
            os.makedirs(os.path.dirname(b), exist_ok=True)
            with open(a, "rb") as f, open(f"{b}.{'0' * 32}.partial", "wb") as g:
                g.write(f.read()[:10])
            raise KeyboardInterrupt
        return copy_file(a, b)

    broken = tmp_path / "broken.ome.zarr"
    with pytest.raises(KeyboardInterrupt):
        _write(broken, src, raw_copy=killed, **opts)
    files = _files(broken)
    assert any(k.endswith(".partial") for k in files)
    assert "ome" not in json.loads(files["zarr.json"])["attributes"]
    _write(broken, src, resume=True, **opts)
    assert _files(broken) == _files(clean)


def test_failed_raw_overwrite_keeps_the_old_store(tmp_path):
    data = _data()
    src = _v3_source(tmp_path / "in.zarr", data)
    out = tmp_path / "o.ome.zarr"
    nz.to_ngff_zarr(out, nz.to_multiscales(data * 0 + 1, scale_factors=[2], chunks=8))
    before = _files(out)

    def fail(a: str, b: str):
        raise OSError("simulated copy failure")

    with pytest.raises(OSError, match="simulated"):
        _write(out, src, raw_copy=fail)
    assert _files(out) == before
    assert not [p for p in tmp_path.iterdir() if "ngff-gpu-tmp" in p.name]


# --------------------------------------------------------------------------- CLI

def test_cli_reports_raw_copy_and_recompress_turns_it_off(tmp_path):
    data = _data()
    _v3_source(tmp_path / "in.zarr", data)
    r = cli("convert", tmp_path / "in.zarr", tmp_path / "o.ome.zarr", "--chunks", "8")
    assert r.returncode == 0, r.stderr
    n = int(np.prod([-(-s // c) for s, c in zip(SHAPE, CHUNKS)]))
    assert f"level 0: {n} chunks copied raw" in r.stdout and "no re-encode" in r.stdout
    assert _chunk_files(tmp_path / "o.ome.zarr" / "scale0" / "in") == \
        _chunk_files(tmp_path / "in.zarr")
    r = cli("convert", tmp_path / "in.zarr", tmp_path / "p.ome.zarr", "--chunks", "8",
            "--recompress")
    assert r.returncode == 0, r.stderr
    assert "level 0: re-encoded (recompress asked)" in r.stdout
    assert _levels(tmp_path / "o.ome.zarr")[1].tobytes() == \
        _levels(tmp_path / "p.ome.zarr")[1].tobytes()
