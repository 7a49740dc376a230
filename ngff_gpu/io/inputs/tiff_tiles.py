"""TIFF region reads straight from the tiles or strips, decoded in a thread pool.

tifffile's Zarr store decodes one tile per ``get``, each through zarr-python's
asyncio machinery (about 0.7 ms of overhead per 128x128 tile, on one reader
thread). :class:`TiffTiles` reads a region of a series itself: it finds the
tiles or strips the region needs from offset tables taken when the file is
opened, reads their bytes with ``os.pread`` and decodes them with tifffile's
own decoder (``keyframe.decode``: every compression, predictor and bit order
tifffile supports) on a pool of threads, pasting each decoded segment into the
output. The unit of work is a run of segment rows of a page (about 64 KiB
decoded: thin strips are grouped); consecutive units form a task, about four
tasks per thread per read, so that handing tasks to threads costs little next to
decoding. Decoders release the GIL,
so a region's tiles decode on every core. Each call decodes each segment it touches
once; the read stage (:mod:`ngff_gpu.levels.source`) asks for each segment
once per pass.

Layouts it takes: every page of the series holds one 2-D plane (``YX``) or
contiguous samples (``YXS``), tiled or in strips, not JPEG-compressed, lies in
the opened file, and the series is the C-order stack of its pages. Anything else
(planar-separate samples, tile depth, JPEG tables, one contiguous uncompressed
block, a multi-file OME-TIFF) keeps tifffile's Zarr store, which reads every
layout.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ngff_gpu.io.inputs.common import plain_key

#: JPEG-family compressions, whose segments need per-page tables: left to tifffile's store.
_JPEG = {6, 7, 34892, 33007}
#: Decoded bytes a grid cell of the read stage should hold at most (pages grouped up to it).
_CELL_BYTES = 1 << 20
#: Decoded bytes one decoding unit aims at (segment rows of a page are grouped up to it).
_TASK_BYTES = 1 << 16
#: Tasks a region read gives each decoding thread (consecutive units grouped into them).
_TASKS_PER_WORKER = 4


def _segment_shape(keyframe: Any) -> tuple[int, int]:
    """Rows and columns of one segment: a tile, or a strip (whole rows)."""
    if keyframe.is_tiled:
        return int(keyframe.tilelength), int(keyframe.tilewidth)
    rows = keyframe.rowsperstrip or keyframe.imagelength
    return int(min(rows, keyframe.imagelength)), int(keyframe.imagewidth)


class TiffTiles:
    """One series of a TIFF file read region by region from its tiles or strips.

    Parameters
    ----------
    path : str
        The file.
    series : int
        Which series.
    workers : int, optional
        Decoding threads; default: the CPU count.

    Attributes
    ----------
    shape, dtype, ndim
        Of the series.
    chunks : tuple of int
        The decode grid the read stage uses: one segment (tile or strip) of
        ``group`` consecutive pages along the innermost page axis.
    """

    def __init__(self, path: str, series: int = 0, workers: int | None = None) -> None:
        import tifffile

        self.path, self.series = path, series
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._tif = tifffile.TiffFile(path)
        try:
            s = self._tif.series[series]
            kf = s.keyframe
            if not self.supports(self._tif, s):
                raise ValueError(f"{path}: series {series} has a layout TiffTiles does not read "
                                 "(see TiffTiles.supports)")
            self.shape = tuple(int(n) for n in s.shape)
            self.dtype = np.dtype(s.dtype)
            self.ndim = len(self.shape)
            page_shape = tuple(int(n) for n in kf.shape)
            self._lead = self.shape[: self.ndim - len(page_shape)]
            ch, cw = self._seg = _segment_shape(kf)
            self._nseg = (-(-page_shape[0] // ch), -(-page_shape[1] // cw))
            pages = s.pages
            self._offsets = np.array([p.dataoffsets for p in pages], dtype=np.int64)
            self._counts = np.array([p.databytecounts for p in pages], dtype=np.int64)
        except BaseException:
            self._tif.close()
            raise
        self._keyframe = kf
        samples = page_shape[2:]
        seg_bytes = int(np.prod(self._seg + samples)) * self.dtype.itemsize
        group = max(1, min(self._lead[-1] if self._lead else 1, _CELL_BYTES // max(seg_bytes, 1)))
        self.chunks = (1,) * max(0, len(self._lead) - 1) + ((group,) if self._lead else ()) \
            + self._seg + samples
        self._page_shape = page_shape
        self._fd: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @staticmethod
    def supports(tif: Any, series: Any) -> bool:
        """Whether :class:`TiffTiles` reads ``series`` of the open ``tif`` (else: the Zarr store)."""
        kf = series.keyframe
        shaped = tuple(int(n) for n in kf.shaped)
        page_shape = tuple(int(n) for n in kf.shape)
        shape = tuple(int(n) for n in series.shape)
        if kf.compression in _JPEG or shaped[0] != 1 or shaped[1] != 1:
            return False
        if len(page_shape) not in (2, 3) or (len(page_shape) == 3 and page_shape[2] != shaped[4]):
            return False
        if len(shape) < len(page_shape) or shape[len(shape) - len(page_shape):] != page_shape:
            return False
        if series.dataoffset is not None or int(np.prod(shape[: len(shape) - len(page_shape)])) \
                != len(series.pages):
            return False
        ch, cw = _segment_shape(kf)
        nseg = -(-page_shape[0] // ch) * -(-page_shape[1] // cw)
        # every page in this very file (a multi-file OME-TIFF series spans several files)
        return all(p is not None and p.parent is tif and len(p.dataoffsets) == nseg
                   for p in series.pages)

    # -- pickling (a dask.distributed task reopens the file) -------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "series": self.series, "workers": self.workers}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["series"], state["workers"])  # type: ignore[misc]

    def close(self, wait: bool = True) -> None:
        """Close the file and stop the decoding threads (``wait``: for running tasks)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait)
            self._pool = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._tif.close()

    def __del__(self) -> None:
        try:
            self.close(wait=False)
        except Exception:  # noqa: BLE001,S110 - interpreter shutdown
            pass

    # -- reading ----------------------------------------------------------------------

    def _start(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ngff-tiff")
            return self._pool

    def _bytes(self, page: int, index: int) -> bytes:
        offset, count = int(self._offsets[page, index]), int(self._counts[page, index])
        if hasattr(os, "pread"):
            data = os.pread(self._fd, count, offset)
        else:  # pragma: no cover - Windows
            with self._lock:
                os.lseek(self._fd, offset, os.SEEK_SET)
                data = os.read(self._fd, count)
        if len(data) != count:
            raise ValueError(f"page {page}: segment {index} is truncated "
                             f"({len(data)} of {count} bytes)")
        return data

    def _decode(self, page: int, index: int) -> np.ndarray:
        """Segment ``index`` of page ``page`` decoded: (rows, columns, samples), full size."""
        seg, _, _ = self._keyframe.decode(self._bytes(page, index), index, _fullsize=True)
        if seg is None:
            raise ValueError(f"page {page}: segment {index} is empty")
        return seg.reshape(seg.shape[1:])

    def _rows(self, out: np.ndarray, page: int, dst_lead: tuple[int, ...], iys: range,
              xs: range, y: tuple[int, int], x: tuple[int, int], tail: tuple[slice, ...]) -> None:
        """Decode the segments ``xs`` of segment rows ``iys`` of ``page`` into ``out``."""
        ch, cw = self._seg
        for iy, ix in itertools.product(iys, xs):
            seg = self._decode(page, iy * self._nseg[1] + ix)
            y0, x0 = iy * ch, ix * cw
            ya, yb = max(y[0], y0), min(y[1], y0 + ch)
            xa, xb = max(x[0], x0), min(x[1], x0 + cw)
            src = (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))
            dst = dst_lead + (slice(ya - y[0], yb - y[0]), slice(xa - x[0], xb - x[0]))
            if len(self._page_shape) == 3:
                out[dst] = seg[src + tail]
            else:
                out[dst] = seg[src + (0,)]

    def read(self, key: tuple[Any, ...]) -> np.ndarray:
        """The region ``key`` (ints and slices, one per axis) as a NumPy array."""
        key = tuple(key)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        if len(key) != self.ndim:
            raise IndexError(f"too many indices for an array of {self.ndim} dimensions")
        bounds, after = plain_key(key, self.shape)
        out = np.empty(tuple(b - a for a, b in bounds), dtype=self.dtype)
        self._fill(out, bounds)
        return out[after] if any(a != slice(None) for a in after) else out

    def read_into(self, region: Sequence[tuple[int, int]], out: np.ndarray) -> None:
        """Decode ``region`` (start/stop per axis) straight into ``out`` (any layout,
        e.g. a view of a larger brick), with no intermediate array.

        Raises
        ------
        ValueError
            If ``out`` does not have the region's shape and the series' dtype.
        """
        bounds = [(int(a), int(b)) for a, b in region]
        if len(bounds) != self.ndim or any(not 0 <= a <= b <= n
                                           for (a, b), n in zip(bounds, self.shape)):
            raise ValueError(f"region {bounds} is not inside the series of shape {self.shape}")
        if out.shape != tuple(b - a for a, b in bounds) or out.dtype != self.dtype:
            raise ValueError(f"out has shape {out.shape} and dtype {out.dtype}; region "
                             f"{bounds} of this series needs {self.dtype}")
        self._fill(out, bounds)

    def _fill(self, out: np.ndarray, bounds: Sequence[tuple[int, int]]) -> None:
        """Decode the block ``bounds`` into ``out`` (of its shape), every core at it."""
        if out.size:
            nl = len(self._lead)
            y, x = bounds[nl], bounds[nl + 1]
            tail = tuple(slice(a, b) for a, b in bounds[nl + 2:])
            ch, cw = self._seg
            xs = range(x[0] // cw, -(-x[1] // cw))
            rows = range(y[0] // ch, -(-y[1] // ch))
            # a unit decodes a run of segment rows of one page, about _TASK_BYTES decoded
            # (one row of 128x128 tiles already is; thin strips are grouped)
            row_bytes = ch * cw * len(xs) * self.dtype.itemsize
            per_unit = max(1, _TASK_BYTES // max(row_bytes, 1))
            units = []
            for idx in itertools.product(*(range(a, b) for a, b in bounds[:nl])):
                page = int(np.ravel_multi_index(idx, self._lead)) if nl else 0
                dst = tuple(i - a for i, (a, _) in zip(idx, bounds[:nl]))
                for r in range(0, len(rows), per_unit):
                    units.append((out, page, dst, rows[r:r + per_unit], xs, y, x, tail))
            pool = self._start()  # (opens the file too)
            if len(units) == 1 or self.workers == 1:
                self._units(units)
            else:
                # consecutive units go to one task, _TASKS_PER_WORKER tasks per thread:
                # enough to balance the threads, few enough that handing tasks over
                # does not cost more than the decoding
                per = -(-len(units) // (self.workers * _TASKS_PER_WORKER))
                for fut in [pool.submit(self._units, units[i:i + per])
                            for i in range(0, len(units), per)]:
                    fut.result()

    def _units(self, units: Sequence[tuple[Any, ...]]) -> None:
        for unit in units:
            self._rows(*unit)

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.read(key if isinstance(key, tuple) else (key,))
