"""Copy a level's stored chunks into the output without decoding and encoding them.

When a level is read from a Zarr array whose chunks are stored exactly as the
output stores them (:func:`ngff_gpu.io.chunk_layout.raw_copy_reason` is None), its
chunks go to the output as the bytes they are. The engine still decodes each source
chunk once (for the next level, docs/design.md section 3.2); only the write of the
copied level changes: :func:`raw_write` wraps the engine's write function and hands
the regions of that level to a :class:`RawCopier`.

One stored object (key) of the output is written at a time, whole, by one writer:

- output chunks from source chunks (or whole shards from shards of the same shape
  and index format): on two local stores a file copy, the cheapest the file system
  offers (a ``FICLONE`` reflink, else ``os.copy_file_range``, else a read and a
  write; never a hard link, so the input stays independent of the output), written
  to ``<key>.<uuid>.partial`` and renamed into place, like zarr's own local store;
  elsewhere ``get`` from the source store and ``set`` into the output store;
- output chunks from the inner chunks of a sharded source: each taken out of its
  shard by the shard index (a byte-range read);
- output shards from source chunks (or from shards of another shape): the encoded
  inner chunks are packed, in C order, into a shard with its index
  (``sharding_indexed``: ``(offset, nbytes)`` as ``uint64`` in the index's byte
  order, ``2**64 - 1`` twice for a chunk not stored, then ``crc32c`` of the index
  when the index codecs have it; at the start or the end of the shard).

A source chunk that was never written stays missing (an empty index entry), when
both arrays read a missing chunk as the same fill value; otherwise that chunk (or
its whole shard) is encoded from the decoded pixels the engine hands over, through
the ordinary write. Everything is deterministic, so a brick written again (a resume,
a retry) writes the same bytes.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from ngff_gpu.io.chunk_layout import ChunkLayout, IndexFormat, chunk_layout, raw_copy_reason
from ngff_gpu.levels.engine import WriteFn

Region = tuple[tuple[int, int], ...]
Coords = tuple[int, ...]
#: ``fallback(region, data)``: write ``data`` (the decoded pixels) into ``region``.
Fallback = Callable[[Region, np.ndarray], None]

EMPTY = 2**64 - 1
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


# ---------------------------------------------------------------------- file copies

def copy_file(src: str, dst: str) -> int | None:
    """Copy the file ``src`` to ``dst`` atomically; the bytes copied, or None when
    ``src`` does not exist.

    The copy goes to ``<dst>.<uuid>.partial`` (the name zarr's local store uses for
    its temporaries, which a resume deletes) and is renamed onto ``dst``, so a kill
    never leaves a partial ``dst``. It is a reflink (``FICLONE``) where the file
    system shares extents, else ``os.copy_file_range`` (in-kernel), else a read and
    a write; never a hard link.
    """
    try:
        fin = open(src, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with fin:
        size = os.fstat(fin.fileno()).st_size
        _replace_atomically(dst, lambda fout: _clone(fin, fout, size))
    return size


def _replace_atomically(dst: str, fill: Callable[[BinaryIO], object]) -> None:
    """Write ``dst`` through ``fill`` into a ``<dst>.<uuid>.partial`` temporary renamed
    onto it (removed on any failure), so that ``dst`` is never partial."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = f"{dst}.{uuid.uuid4().hex}.partial"
    try:
        with open(tmp, "wb") as fout:
            fill(fout)
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _clone(fin: Any, fout: Any, size: int) -> None:
    if size == 0:
        return
    try:
        import fcntl

        fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
        return
    except (ImportError, OSError):
        pass
    done = 0
    if hasattr(os, "copy_file_range"):
        try:
            while done < size:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), size - done)
                if n == 0:
                    break
                done += n
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP,
                                 errno.EPERM):
                raise
    if done < size:
        fin.seek(done)
        fout.seek(done)
        while chunk := fin.read(16 << 20):
            fout.write(chunk)


def _write_file(dst: str, data: bytes) -> None:
    """Write ``data`` to ``dst`` atomically (a ``.partial`` temporary renamed)."""
    _replace_atomically(dst, lambda f: f.write(data))


# ---------------------------------------------------------------------- shard index

def pack_shard(chunks: Mapping[Coords, bytes], per_shard: Sequence[int],
               fmt: IndexFormat) -> bytes:
    """A shard of the encoded inner chunks ``chunks`` (keyed by their position in the
    shard), in C order, with its index in ``fmt``; positions not in ``chunks`` get
    empty entries."""
    index = np.full((*per_shard, 2), EMPTY, dtype=np.uint64)
    order = sorted(chunks)
    offset = fmt.nbytes(int(np.prod(per_shard))) if fmt.location == "start" else 0
    for c in order:
        index[c] = (offset, len(chunks[c]))
        offset += len(chunks[c])
    raw = index.astype(">u8" if fmt.endian == "big" else "<u8").tobytes()
    if fmt.crc32c:
        import google_crc32c

        raw += int(google_crc32c.value(raw)).to_bytes(4, "little")
    body = b"".join(chunks[c] for c in order)
    return raw + body if fmt.location == "start" else body + raw


def parse_index(raw: bytes, per_shard: Sequence[int], fmt: IndexFormat, where: str) -> np.ndarray:
    """The ``(offset, nbytes)`` pairs (shape ``per_shard + (2,)``, ``uint64``) of a shard
    index read as ``raw``.

    Raises
    ------
    InvalidStoreError
        When the index has the wrong size or its ``crc32c`` does not match (``where``
        names the shard).
    """
    from ngff_gpu.errors import InvalidStoreError

    n = int(np.prod(per_shard))
    if len(raw) != fmt.nbytes(n):
        raise InvalidStoreError(f"{where}: shard index of {len(raw)} bytes, expected "
                                f"{fmt.nbytes(n)}")
    if fmt.crc32c:
        import google_crc32c

        body, crc = raw[:-4], int.from_bytes(raw[-4:], "little")
        if int(google_crc32c.value(body)) != crc:
            raise InvalidStoreError(f"{where}: shard index checksum does not match")
        raw = body
    dt = ">u8" if fmt.endian == "big" else "<u8"
    return np.frombuffer(raw, dtype=dt).astype(np.uint64).reshape(*per_shard, 2)


# ---------------------------------------------------------------------- stores

class _Side:
    """One array's stored objects: keys, and file paths on a local store."""

    def __init__(self, array: Any, layout: ChunkLayout) -> None:
        from zarr.storage import LocalStore

        self.array = array
        self.layout = layout
        self.store = array.store
        self.prefix = f"{array.path}/" if array.path else ""
        self.root = os.fspath(self.store.root) if isinstance(self.store, LocalStore) else None
        self.per_shard = (tuple(s // c for s, c in zip(layout.shards, layout.chunks))
                          if layout.shards else None)

    def key(self, unit: Coords) -> str:
        return self.prefix + self.array.metadata.encode_chunk_key(unit)

    def path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def get(self, requests: Sequence[tuple[str, Any]]) -> list[bytes | None]:
        """The bytes of each ``(key, what)``, ``what`` None (the whole object), a
        ``(start, stop)`` range or ``-n`` (the last ``n`` bytes); None for a missing key."""
        if self.root is not None:
            return [self._read_file(k, r) for k, r in requests]
        from zarr.abc.store import RangeByteRequest, SuffixByteRequest
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        proto = default_buffer_prototype()

        async def one(key: str, what: Any) -> bytes | None:
            req = (None if what is None else SuffixByteRequest(-what) if isinstance(what, int)
                   else RangeByteRequest(*what))
            buf = await self.store.get(key, prototype=proto, byte_range=req)
            return None if buf is None else buf.to_bytes()

        async def every() -> list[bytes | None]:
            import asyncio

            return list(await asyncio.gather(*(one(k, r) for k, r in requests)))

        return sync(every()) if requests else []

    def _read_file(self, key: str, what: Any) -> bytes | None:
        try:
            with open(self.path(key), "rb") as f:
                if what is None:
                    return f.read()
                if isinstance(what, int):
                    size = os.fstat(f.fileno()).st_size
                    return os.pread(f.fileno(), min(-what, size), max(0, size + what))
                return os.pread(f.fileno(), what[1] - what[0], what[0])
        except FileNotFoundError:
            return None

    def set(self, items: Sequence[tuple[str, bytes]]) -> None:
        if self.root is not None:
            for k, v in items:
                _write_file(self.path(k), v)
            return
        if not items:
            return
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        proto = default_buffer_prototype()

        async def every() -> None:
            import asyncio

            await asyncio.gather(*(self.store.set(k, proto.buffer.from_bytes(v))
                                   for k, v in items))

        sync(every())


# ---------------------------------------------------------------------- the copier

@dataclass
class CopyStats:
    """What a :class:`RawCopier` did.

    Attributes
    ----------
    chunks : int
        (Inner) chunks whose stored bytes went to the output as they were.
    nbytes : int
        Bytes written to the output that way (shard indexes included).
    objects : int
        Output objects (chunk or shard keys) written that way.
    missing : int
        Source chunks never written, left missing in the output.
    encoded : int
        Output objects encoded from pixels after all (a missing source chunk whose
        fill value the output reads differently).
    """

    chunks: int = 0
    nbytes: int = 0
    objects: int = 0
    missing: int = 0
    encoded: int = 0

    def summary(self) -> str:
        """``512 chunks copied raw (1.23 GiB), no re-encode``."""
        gib = self.nbytes / (1 << 30)
        size = f"{gib:.2f} GiB" if gib >= 0.1 else f"{self.nbytes / (1 << 20):.2f} MiB"
        tail = (f", {self.encoded} re-encoded (fill value differs)" if self.encoded
                else ", no re-encode")
        return f"{self.chunks} chunks copied raw ({size}){tail}"


class RawCopier:
    """Copies the stored chunks of ``source`` into ``target`` (see the module docstring).

    Parameters
    ----------
    source, target : zarr.Array
        Arrays for which :func:`~ngff_gpu.io.chunk_layout.raw_copy_reason` is None.
    copy : callable
        ``copy(src_path, dst_path) -> bytes or None``: the whole-file copy between two
        local stores (default :func:`copy_file`; a seam for tests).

    Raises
    ------
    ValueError
        When the arrays' chunks are not interchangeable (the reason in the message).
    """

    def __init__(self, source: Any, target: Any,
                 copy: Callable[[str, str], int | None] = copy_file) -> None:
        reason = raw_copy_reason(source, target)
        if reason is not None:
            raise ValueError(f"cannot copy chunks raw: {reason}")
        self.src = _Side(source, chunk_layout(source))
        self.dst = _Side(target, chunk_layout(target))
        self.copy = copy
        s, t = self.src.layout, self.dst.layout
        self.same_fill = s.fill == t.fill
        # One object -> one object: chunk to chunk, or shard to shard of the same shape and
        # index (a shard's empty entries then read as the same fill value, too).
        self.whole = s.unit == t.unit and s.index == t.index and (
            t.shards is None or self.same_fill)
        self.stats = CopyStats()
        self._lock = threading.Lock()

    def _add(self, **counts: int) -> None:
        with self._lock:
            for k, v in counts.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)

    def _units(self, region: Region) -> Iterator[Coords]:
        unit = self.dst.layout.unit
        ranges = [range(a // u, -(-b // u)) for (a, b), u in zip(region, unit)]
        return itertools.product(*ranges)

    def _unit_region(self, unit: Coords) -> Region:
        shape, size = self.dst.layout.shape, self.dst.layout.unit
        return tuple((i * u, min((i + 1) * u, n)) for i, u, n in zip(unit, size, shape))

    def copy_region(self, region: Region, data: np.ndarray | None = None,
                    fallback: Fallback | None = None) -> None:
        """Copy every output object inside ``region`` (aligned to the output's chunks,
        or shards when sharded).

        ``data`` (the decoded pixels of ``region``) and ``fallback`` write what cannot
        be copied (a missing source chunk whose fill value the output reads
        differently); without them the pixels are read from the source.
        """
        for a, b in region:
            if a > b:
                raise ValueError(f"empty region {region}")
        self._copy_units(list(self._units(region)), region, data, fallback)

    def copy_all(self, fallback: Fallback | None = None, batch: int = 64) -> CopyStats:
        """Copy every stored object of the array (a whole-array copy, e.g. an OME-Zarr
        version upgrade), ``batch`` output objects at a time (so at most that many are
        held in memory, fetched concurrently from a remote store); returns the stats.
        ``fallback`` (default: ``target[region] = source[region]``) writes the objects
        that must be encoded (a missing chunk whose fill value differs)."""
        units = self._units(tuple((0, n) for n in self.dst.layout.shape))
        while group := list(itertools.islice(units, batch)):
            self._copy_units(group, None, None, fallback)
        return self.stats

    def _copy_units(self, units: list[Coords], region: Region | None,
                    data: np.ndarray | None, fallback: Fallback | None) -> None:
        if self.whole:
            missing = self._copy_whole(units)
        elif self.dst.layout.shards is None:
            missing = self._copy_chunks(units)
        else:
            missing = self._pack_shards(units)
        for unit in missing:
            self._encode(unit, region, data, fallback)

    def _encode(self, unit: Coords, region: Region | None, data: np.ndarray | None,
                fallback: Fallback | None) -> None:
        sub = self._unit_region(unit)
        sl = tuple(slice(a, b) for a, b in sub)
        if data is not None and region is not None:
            crop = tuple(slice(a - r0, b - r0) for (a, b), (r0, _) in zip(sub, region))
            pixels = data[crop]
        else:
            pixels = self.src.array[sl]
        if fallback is not None:
            fallback(sub, pixels)
        else:
            self.dst.array[sl] = pixels
        self._add(encoded=1)

    # one object -> one object ------------------------------------------------

    def _copy_whole(self, units: list[Coords]) -> list[Coords]:
        """Output objects from source objects of the same shape (chunk to chunk, or
        shard to shard with the same index format); returns the units to encode."""
        todo: list[Coords] = []
        pairs = [(self.src.key(u), self.dst.key(u)) for u in units]
        if self.src.root is not None and self.dst.root is not None:
            sizes = [self.copy(self.src.path(s), self.dst.path(d)) for s, d in pairs]
            blobs = None
        else:
            blobs = self.src.get([(s, None) for s, _ in pairs])
            self.dst.set([(d, b) for (_, d), b in zip(pairs, blobs) if b is not None])
            sizes = [None if b is None else len(b) for b in blobs]
        for i, (unit, size) in enumerate(zip(units, sizes)):
            if size is None:
                self._add(missing=self._inner_count(unit))
                if not self.same_fill:
                    todo.append(unit)
                continue
            chunks = 1
            if self.dst.layout.shards is not None:
                chunks = self._stored_inner(pairs[i][1], blobs[i] if blobs else None)
                self._add(missing=max(0, self._inner_count(unit) - chunks))
            self._add(chunks=chunks, nbytes=size, objects=1)
        return todo

    def _inner_count(self, unit: Coords) -> int:
        """Inner chunks of the array inside output object ``unit``."""
        lay = self.dst.layout
        n = 1
        for (a, b), c in zip(self._unit_region(unit), lay.chunks):
            n *= -(-(b - a) // c)
        return n

    def _stored_inner(self, key: str, blob: bytes | None) -> int:
        """Inner chunks stored in the output shard ``key`` (from its index)."""
        lay, per = self.dst.layout, self.dst.per_shard
        n = lay.index.nbytes(int(np.prod(per)))
        if blob is None:
            raw = self.dst.get([(key, (0, n) if lay.index.location == "start" else -n)])[0]
        else:
            raw = blob[:n] if lay.index.location == "start" else blob[-n:]
        index = parse_index(raw, per, lay.index, key)
        return int(np.count_nonzero(index[..., 0] != EMPTY))

    # inner chunks ------------------------------------------------------------

    def _inner_coords(self, unit: Coords) -> list[Coords]:
        """Array chunk coordinates inside output object ``unit`` (C order)."""
        lay = self.dst.layout
        region = self._unit_region(unit)
        return list(itertools.product(*(range(a // c, -(-b // c))
                                        for (a, b), c in zip(region, lay.chunks))))

    def _source_chunks(self, coords: list[Coords]) -> list[bytes | None]:
        """The stored bytes of the source's (inner) chunks at ``coords`` (None: missing)."""
        lay = self.src.layout
        if lay.shards is None:
            return self.src.get([(self.src.key(c), None) for c in coords])
        per = self.src.per_shard
        shards = sorted({tuple(i // p for i, p in zip(c, per)) for c in coords})
        indexes = dict(zip(shards, self._source_indexes(shards)))
        requests: list[tuple[str, Any]] = []
        where: list[int] = []
        for i, c in enumerate(coords):
            shard = tuple(x // p for x, p in zip(c, per))
            index = indexes[shard]
            if index is None:
                continue
            off, n = (int(v) for v in index[tuple(x % p for x, p in zip(c, per))])
            if off == EMPTY:
                continue
            requests.append((self.src.key(shard), (off, off + n)))
            where.append(i)
        out: list[bytes | None] = [None] * len(coords)
        for i, blob in zip(where, self.src.get(requests)):
            out[i] = blob
        return out

    def _source_indexes(self, shards: list[Coords]) -> list[np.ndarray | None]:
        lay, per = self.src.layout, self.src.per_shard
        n = lay.index.nbytes(int(np.prod(per)))
        keys = [self.src.key(s) for s in shards]
        raws = self.src.get([(k, (0, n) if lay.index.location == "start" else -n)
                             for k in keys])
        return [None if r is None else parse_index(r, per, lay.index, k)
                for r, k in zip(raws, keys)]

    def _copy_chunks(self, units: list[Coords]) -> list[Coords]:
        """Output chunks from the inner chunks of a sharded source."""
        blobs = self._source_chunks(units)
        self.dst.set([(self.dst.key(u), b) for u, b in zip(units, blobs) if b is not None])
        todo = []
        for unit, blob in zip(units, blobs):
            if blob is None:
                self._add(missing=1)
                if not self.same_fill:
                    todo.append(unit)
            else:
                self._add(chunks=1, nbytes=len(blob), objects=1)
        return todo

    def _pack_shards(self, units: list[Coords]) -> list[Coords]:
        """Output shards packed from the source's (inner) chunks, one shard at a time."""
        lay, per = self.dst.layout, self.dst.per_shard
        todo = []
        for unit in units:
            coords = self._inner_coords(unit)
            blobs = self._source_chunks(coords)
            missing = sum(b is None for b in blobs)
            if missing and not self.same_fill:
                todo.append(unit)  # the shard is encoded whole from the pixels
                self._add(missing=missing)
                continue
            present = {tuple(c - u * p for c, u, p in zip(cc, unit, per)): b
                       for cc, b in zip(coords, blobs) if b is not None}
            self._add(missing=missing)
            if not present:
                continue  # zarr stores no shard without chunks either
            shard = pack_shard(present, per, lay.index)
            self.dst.set([(self.dst.key(unit), shard)])
            self._add(chunks=len(present), nbytes=len(shard), objects=1)
        return todo


# ---------------------------------------------------------------------- the writer's hook

@dataclass
class RawLevels:
    """The levels of one write whose chunks are copied raw, and why others are not.

    Attributes
    ----------
    copiers : dict
        ``{array path: RawCopier}`` of the output arrays written raw.
    reasons : dict
        ``{array path: reason}`` for levels read from a Zarr array that are encoded
        again (the codecs differ, ``recompress`` was asked...).
    labels : dict
        ``{array path: label}``, how a summary names each level (``level 0``).
    """

    copiers: dict[str, RawCopier] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def plan(cls, levels: Iterable[tuple[str, Any, Any]], refuse: str | None = None,
             copy: Callable[[str, str], int | None] = copy_file,
             earlier: RawLevels | None = None) -> RawLevels:
        """Decide, for each ``(label, source, target)``, whether the target level is
        copied raw: the source is a zarr array and
        :func:`~ngff_gpu.io.chunk_layout.raw_copy_reason` is None. ``refuse`` (a
        reason) re-encodes every one of them. The copiers of ``earlier`` (an attempt of
        the same write that was retried) pass their counts on."""
        import zarr

        out = cls()
        for label, source, target in levels:
            if not isinstance(source, zarr.Array):
                continue
            out.labels[target.path] = label
            reason = refuse or raw_copy_reason(source, target)
            if reason is None:
                copier = out.copiers[target.path] = RawCopier(source, target, copy)
                if earlier is not None and target.path in earlier.copiers:
                    copier.stats = earlier.copiers[target.path].stats
            else:
                out.reasons[target.path] = reason
        return out

    def write(self, inner: WriteFn) -> WriteFn:
        """The engine's write function: regions of a raw level are copied, the rest go
        to ``inner``."""
        return inner if not self.copiers else _RawWrite(inner, self.copiers)

    def summary(self) -> list[str]:
        """One line per level read from a Zarr array: copied raw, or why encoded again."""
        lines = [f"{self.labels[p]}: {c.stats.summary()}" for p, c in self.copiers.items()]
        lines += [f"{self.labels[p]}: re-encoded ({r})" for p, r in self.reasons.items()]
        return lines


@dataclass(frozen=True)
class _RawWrite:
    inner: WriteFn
    copiers: Mapping[str, RawCopier]

    def __call__(self, array: Any, region: Any, data: np.ndarray) -> None:
        copier = self.copiers.get(array.path)
        if copier is None:
            self.inner(array, region, data)
            return
        copier.copy_region(tuple((int(a), int(b)) for a, b in region), data,
                           lambda sub, pixels: self.inner(array, sub, pixels))


def raw_write(inner: WriteFn, copiers: Mapping[str, RawCopier]) -> WriteFn:
    """``inner`` with the regions of the arrays in ``copiers`` (by array path) copied
    raw instead of encoded."""
    return _RawWrite(inner, dict(copiers)) if copiers else inner
