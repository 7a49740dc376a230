"""HDF5 region reads: the chunks a region needs, read and decoded on every core.

h5py reads a hyperslab through the HDF5 library, which holds one global lock:
every chunk is read and decompressed on one thread at a time. :class:`H5Chunks`
reads a region of a dataset itself instead, like the TIFF tile reader
(:mod:`ngff_gpu.io.inputs.tiff_tiles`):

- a **chunked** dataset whose filters it knows (deflate, shuffle, fletcher32,
  LZF, zstd, LZ4 and Blosc: HDF5's own and the common ``hdf5plugin`` ones) has the
  file offset and size of every stored chunk listed once when the dataset is
  first read (``chunk_iter``, no data read); a region reads the bytes of the
  chunks under it with ``os.pread`` and decodes them with ``imagecodecs`` /
  ``numcodecs`` (which release the GIL) on a pool of threads, pasting each into the
  output; a chunk never written is the dataset's fill value;
- a **contiguous**, unfiltered dataset is memory-mapped (a region is a slice);
- any other layout or filter (szip, scale-offset, N-bit, bitshuffle, Blosc2...)
  is read by h5py's hyperslab (``read_direct``), one region at a time, which
  decodes only the chunks under it too, on one thread.

A filter HDF5 cannot decode at all (no plugin loaded) is an
:class:`~ngff_gpu.errors.InputFormatError` when the file is opened, naming the
filter and the extra that brings it (``hdf5plugin``: ``pip install
'ngff-gpu[hdf5]'``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import RegionArray, plain_key

#: HDF5 filter ids and the names the messages use (registered filters, see the HDF Group's list).
FILTER_NAMES = {1: "deflate (gzip)", 2: "shuffle", 3: "fletcher32", 4: "szip",
                5: "nbit", 6: "scaleoffset", 307: "bzip2", 32000: "LZF", 32001: "Blosc",
                32004: "LZ4", 32008: "bitshuffle", 32013: "zfp", 32015: "Zstandard",
                32017: "SZ", 32018: "FCIDECOMP", 32024: "SZ3", 32026: "Blosc2",
                32019: "JPEG", 32012: "JPEG-XR"}
#: Filters our chunk reader decodes itself.
DIRECT = {1, 2, 3, 32000, 32001, 32004, 32015}
NEEDS = "pip install 'ngff-gpu[hdf5]'"


def h5py_module() -> Any:
    """h5py (with hdf5plugin's filters registered when installed), or a clear error."""
    try:
        import h5py
    except ImportError:
        raise InputFormatError(f"reading HDF5 files needs h5py: {NEEDS}") from None
    try:
        import hdf5plugin  # noqa: F401 - registers Blosc, LZ4, zstd... with HDF5
    except ImportError:
        pass
    return h5py


def open_h5file(path: str) -> Any:
    """``h5py.File(path, "r")``; a damaged or truncated file is one ``InputFormatError``."""
    h5py = h5py_module()
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        detail = " ".join(str(exc).split())
        if "truncated" in detail:
            detail = f"truncated ({detail})"
        raise InputFormatError(f"cannot read {path} as HDF5: {detail}") from exc


_POOL: list[ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()


def shared_pool() -> ThreadPoolExecutor:
    """The decoding threads every HDF5 reader of the process shares (one per CPU)."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="ngff-hdf5"))
        return _POOL[0]


#: Decoded bytes a grid cell of the read stage should hold at least (small chunks grouped).
_CELL_BYTES = 1 << 20


def filter_name(code: int, name: bytes | str | None = None) -> str:
    """A readable name of HDF5 filter ``code``."""
    if code in FILTER_NAMES:
        return f"{FILTER_NAMES[code]} (filter {code})"
    text = name.decode(errors="replace") if isinstance(name, bytes) else (name or "")
    text = text.split(";")[0].strip()
    return f"{text or 'unknown'} (filter {code})"


def dataset_filters(dset: Any) -> list[tuple[int, tuple[int, ...], bytes]]:
    """The filter pipeline of an h5py dataset: ``(id, client values, name)`` in order."""
    plist = dset.id.get_create_plist()
    out = []
    for i in range(plist.get_nfilters()):
        code, _flags, values, name = plist.get_filter(i)
        out.append((int(code), tuple(int(v) for v in values), name))
    return out


def check_filters(dset: Any, path: str) -> None:
    """Raise when a filter of ``dset`` cannot be decoded here (no plugin for it)."""
    import h5py

    try:
        import hdf5plugin  # noqa: F401 - registers the compression plugins with HDF5
    except ImportError:
        pass
    for code, _values, name in dataset_filters(dset):
        if not h5py.h5z.filter_avail(code):
            raise InputFormatError(
                f"{path}:{dset.name} is compressed with {filter_name(code, name)}, which this "
                "installation cannot decode: install hdf5plugin (pip install 'ngff-gpu[hdf5]')")


def _decoder(code: int, values: tuple[int, ...], itemsize: int, nbytes: int) -> Any:
    """A function decoding one stage of the pipeline (bytes -> bytes)."""
    import imagecodecs

    if code == 1:
        return imagecodecs.zlib_decode
    if code == 2:
        def unshuffle(data: bytes) -> bytes:
            a = np.frombuffer(data, dtype=np.uint8)
            n = len(a) // itemsize
            body = a[: n * itemsize].reshape(itemsize, n).T.tobytes()
            return body + a[n * itemsize:].tobytes()
        return unshuffle if itemsize > 1 else (lambda data: data)
    if code == 3:
        return lambda data: data[:-4]
    if code == 32000:
        return lambda data: imagecodecs.lzf_decode(data, out=nbytes)
    if code == 32001:
        return imagecodecs.blosc_decode
    if code == 32004:
        return imagecodecs.lz4h5_decode
    if code == 32015:
        return imagecodecs.zstd_decode
    raise ValueError(f"no direct decoder for {filter_name(code)}")


class H5Chunks:
    """A region reader of one HDF5 dataset (see the module docstring).

    Parameters
    ----------
    path : str
        The file.
    name : str
        The dataset's path inside it.
    shape : sequence of int, optional
        The part of the dataset that is the image (Imaris pads its datasets to whole
        chunks): the leading corner of this shape; default the whole dataset.
    workers : int, optional
        How many tasks a read is cut into per thread pair; 1 decodes on the calling
        thread; default the CPU count (the threads are :func:`shared_pool`'s).
    view : numpy dtype, optional
        Reinterpret the stored bytes as this dtype of the same size (BigDataViewer
        stores unsigned 16-bit pixels as HDF5 ``int16``).

    Attributes
    ----------
    shape, dtype, ndim, chunks
        Of the image; ``chunks`` is the read stage's grid: the dataset's chunks,
        grouped along the outer axes up to about 1 MiB.
    mode : str
        ``"chunks"`` (our decoder), ``"mmap"`` (contiguous) or ``"h5py"`` (hyperslab).
    """

    def __init__(self, path: str, name: str, shape: Sequence[int] | None = None,
                 workers: int | None = None, view: Any = None) -> None:
        import h5py

        self.path, self.name = path, name
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._view = np.dtype(view) if view is not None else None
        self._file = h5py.File(path, "r")
        try:
            dset = self._file[name]
            check_filters(dset, path)
            stored = tuple(int(n) for n in dset.shape)
            self.shape = tuple(int(n) for n in (shape if shape is not None else stored))
            if len(self.shape) != len(stored) or any(a > b for a, b in zip(self.shape, stored)):
                raise InputFormatError(f"{path}:{name} has shape {stored}, smaller than the "
                                       f"image size {self.shape} its metadata gives")
            self._stored_dtype = np.dtype(dset.dtype)
            self.dtype = self._view if self._view is not None else self._stored_dtype
            self.ndim = len(self.shape)
            self._chunk = tuple(int(c) for c in dset.chunks) if dset.chunks else None
            filters = dataset_filters(dset)
            self._filters = filters
            self._fill = dset.fillvalue
            if self._chunk is None and not filters and dset.id.get_offset() is not None:
                self.mode = "mmap"
                self._offset = int(dset.id.get_offset())
            elif self._chunk is not None and all(code in DIRECT for code, _, _ in filters) \
                    and self._stored_dtype.kind in "biuf" and hasattr(dset.id, "chunk_iter"):
                self.mode = "chunks"
            else:
                self.mode = "h5py"
        except BaseException:
            self._file.close()
            raise
        self._dset = dset
        self._table: tuple[tuple[int, ...], np.ndarray, np.ndarray, np.ndarray] | None = None
        self._decoders: list[Any] | None = None
        self._mmap: np.ndarray | None = None
        self._fd: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.chunks = self._grid()

    def _grid(self) -> tuple[int, ...]:
        """The dataset's chunks (contiguous: rows of the last axes), grouped along the
        outermost axes while a cell holds less than ``_CELL_BYTES``."""
        if self._chunk is not None:
            base = [min(c, n) for c, n in zip(self._chunk, self.shape)]
        else:
            base = [1] * (self.ndim - 2) + list(self.shape[-2:]) if self.ndim >= 2 else list(self.shape)
        cell = list(max(1, c) for c in base)
        for ax in range(self.ndim):
            while int(np.prod(cell)) * self.dtype.itemsize < _CELL_BYTES and cell[ax] < self.shape[ax]:
                cell[ax] = min(self.shape[ax], cell[ax] * 2)
            if int(np.prod(cell)) * self.dtype.itemsize >= _CELL_BYTES:
                break
        return tuple(cell)

    # -- pickling (a dask.distributed task reopens the file) ---------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name, "shape": self.shape,
                "workers": self.workers, "view": self._view}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["name"], state["shape"],  # type: ignore[misc]
                      state["workers"], state["view"])

    def close(self) -> None:
        """Close the file (the shared threads stay)."""
        self._pool = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._mmap = None
        self._file.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001,S110 - interpreter shutdown
            pass

    # -- reading ------------------------------------------------------------------------

    def _start(self) -> None:
        """Open the chunk table, the file descriptor and the pool (first read only)."""
        with self._lock:
            if self.mode == "mmap" and self._mmap is None:
                stored = tuple(int(n) for n in self._dset.shape)
                self._mmap = np.memmap(self.path, dtype=self._stored_dtype, mode="r",
                                       offset=self._offset, shape=stored)
            if self.mode != "chunks" or self._table is not None:
                return
            # one row per chunk of the grid (-1: never written): 20 bytes a chunk, so a
            # 500 GB dataset of 64^3 uint16 chunks lists its ~1M chunks in about 20 MB
            chunk = self._chunk
            grid = tuple(-(-int(n) // c) for n, c in zip(self._dset.shape, chunk))
            offsets = np.full(int(np.prod(grid)), -1, dtype=np.int64)
            sizes = np.zeros(offsets.size, dtype=np.int64)
            masks = np.zeros(offsets.size, dtype=np.uint32)

            strides = [int(np.prod(grid[k + 1:])) for k in range(len(grid))]

            def add(info: Any) -> None:
                i = sum(int(o) // c * s for o, c, s in zip(info.chunk_offset, chunk, strides))
                offsets[i], sizes[i], masks[i] = info.byte_offset, info.size, info.filter_mask

            self._dset.id.chunk_iter(add)
            stored = offsets >= 0
            past = np.flatnonzero(stored & (offsets + sizes > os.path.getsize(self.path)))
            if past.size:
                key = tuple(int(i) for i in np.unravel_index(int(past[0]), grid))
                raise InputFormatError(
                    f"{self.path}:{self.name} is truncated: chunk {key} lies past the end "
                    "of the file")
            table = (grid, offsets, sizes, masks)
            nbytes = int(np.prod(chunk)) * self._stored_dtype.itemsize
            self._decoders = [_decoder(code, values, self._stored_dtype.itemsize, nbytes)
                              for code, values, _ in self._filters]
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            if self.workers > 1:
                self._pool = shared_pool()
            self._table = table

    def _chunk_data(self, key: tuple[int, ...]) -> np.ndarray | None:
        """Chunk ``key`` decoded (full chunk shape), or None when it was never written."""
        grid, offsets, sizes, masks = self._table  # type: ignore[misc]
        i = np.ravel_multi_index(key, grid)
        offset, count, mask = int(offsets[i]), int(sizes[i]), int(masks[i])
        if offset < 0:
            return None
        data: Any = os.pread(self._fd, count, offset)  # type: ignore[arg-type]
        if len(data) != count:
            raise InputFormatError(f"{self.path}:{self.name}: chunk {key} is truncated "
                                   f"({len(data)} of {count} bytes)")
        for i in reversed(range(len(self._decoders))):  # type: ignore[arg-type]
            if not mask & (1 << i):
                data = self._decoders[i](data)  # type: ignore[index]
        arr = np.frombuffer(data, dtype=self._stored_dtype)
        expected = int(np.prod(self._chunk))  # type: ignore[arg-type]
        if arr.size != expected:
            raise InputFormatError(f"{self.path}:{self.name}: chunk {key} decodes to "
                                   f"{arr.size} values, not {expected}")
        return arr.reshape(self._chunk)  # type: ignore[arg-type]

    def _paste(self, out: np.ndarray, bounds: Sequence[tuple[int, int]],
               keys: Sequence[tuple[int, ...]]) -> None:
        for key in keys:
            lo = [k * c for k, c in zip(key, self._chunk)]  # type: ignore[arg-type]
            src, dst = [], []
            for (a, b), l0, c in zip(bounds, lo, self._chunk):  # type: ignore[arg-type]
                s0, s1 = max(a, l0), min(b, l0 + c)
                src.append(slice(s0 - l0, s1 - l0))
                dst.append(slice(s0 - a, s1 - a))
            chunk = self._chunk_data(key)
            target = out[tuple(dst)]
            if chunk is None:
                target[...] = self._fill
            elif self._view is not None:
                target[...] = chunk[tuple(src)].view(self._view)
            else:
                target[...] = chunk[tuple(src)]

    def _fill_region(self, out: np.ndarray, bounds: Sequence[tuple[int, int]]) -> None:
        if not out.size:
            return
        self._start()
        if self.mode == "mmap":
            block = self._mmap[tuple(slice(a, b) for a, b in bounds)]  # type: ignore[index]
            out[...] = block.view(self._view) if self._view is not None else block
            return
        if self.mode == "h5py":
            with self._lock:
                block = self._dset[tuple(slice(a, b) for a, b in bounds)]
            out[...] = block.view(self._view) if self._view is not None else block
            return
        ranges = [range(a // c, -(-b // c)) for (a, b), c in zip(bounds, self._chunk)]  # type: ignore[arg-type]
        keys = list(np.ndindex(*[len(r) for r in ranges]))
        keys = [tuple(r[i] for r, i in zip(ranges, k)) for k in keys]
        if self._pool is None or len(keys) == 1:
            self._paste(out, bounds, keys)
            return
        per = -(-len(keys) // (self.workers * 2))
        for fut in [self._pool.submit(self._paste, out, bounds, keys[i:i + per])
                    for i in range(0, len(keys), per)]:
            fut.result()

    def read(self, key: tuple[slice, ...]) -> np.ndarray:
        """The region ``key`` (one slice per axis, steps of 1) as a NumPy array."""
        bounds = [k.indices(n)[:2] for k, n in zip(key, self.shape)]
        out = np.empty(tuple(max(0, b - a) for a, b in bounds), dtype=self.dtype)
        self._fill_region(out, bounds)
        return out

    def read_into(self, region: Sequence[tuple[int, int]], out: np.ndarray) -> None:
        """Decode ``region`` (start/stop per axis) straight into ``out`` (of its shape)."""
        self._fill_region(out, [(int(a), int(b)) for a, b in region])

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        bounds, after = plain_key(key, self.shape)
        out = self.read(tuple(slice(a, b) for a, b in bounds))
        return out[after] if any(a != slice(None) for a in after) else out

    def region_array(self) -> RegionArray:
        """This reader as a :class:`RegionArray` (errors name the file)."""
        return RegionArray(self.shape, self.dtype, self.read, f"{self.path}:{self.name}",
                           chunks=self.chunks, read_into=self.read_into)
