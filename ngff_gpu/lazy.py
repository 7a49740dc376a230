"""Lazy dask graphs of pyramid levels.

Each output chunk of level k is one task that depends only on the chunks of
level k-1 overlapping its input window (:meth:`LevelStep.input_window`),
assembles that window and calls the owning backend's ``reduce_region``: the
same code and bits as the streaming engine, whatever the chunking.
"""

from __future__ import annotations

import itertools
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .backends import backend_for
from .step import LevelStep, Region


def _bounds(chunks: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(chunks)])


def _assemble(window: Region, pieces: list[tuple[tuple[slice, ...], tuple[slice, ...]]],
              blocks: tuple[Any, ...]) -> Any:
    """Paste ``blocks`` into one array covering ``window``."""
    first = blocks[0]
    shape = tuple(b - a for a, b in window)
    if len(blocks) == 1:
        return first[pieces[0][1]]
    xp = np
    if type(first).__module__.split(".")[0] == "cupy":
        import cupy as xp  # noqa: PLC0415 - only on the device path
    buf = xp.empty(shape, dtype=first.dtype)
    for (dst, src), blk in zip(pieces, blocks):
        buf[dst] = blk[src]
    return buf


def _reduce_task(step: LevelStep, in_shape: tuple[int, ...], window: Region, out_region: Region,
                 pieces: list, *blocks: Any) -> Any:
    x = _assemble(window, pieces, blocks)
    backend = backend_for(x)
    return backend.reduce_region(x, step, tuple(a for a, _ in window), in_shape, out_region)


def downsample_lazy(prev: da.Array, step: LevelStep, chunks: tuple[int, ...]) -> da.Array:
    """Level ``k`` as a lazy dask array computed from level ``k-1`` (``prev``).

    Parameters
    ----------
    prev : dask.array.Array
        The previous level (any chunking, NumPy or CuPy chunks).
    step : LevelStep
        Relative factors and method.
    chunks : tuple of int
        Chunk shape of the output.
    """
    out_shape = step.out_shape(prev.shape)
    out_chunks = da.core.normalize_chunks(chunks, out_shape)
    in_bounds = [_bounds(c) for c in prev.chunks]
    name = "downsample-" + tokenize(prev.name, step, out_chunks)
    dsk: dict = {}
    out_bounds = [_bounds(c) for c in out_chunks]
    for idx in itertools.product(*(range(len(c)) for c in out_chunks)):
        region = tuple((int(b[i]), int(b[i + 1])) for b, i in zip(out_bounds, idx))
        window = step.input_window(region, prev.shape)
        ranges = []
        for (lo, hi), b in zip(window, in_bounds):
            first = int(np.searchsorted(b, lo, side="right")) - 1
            last = int(np.searchsorted(b, hi, side="left")) - 1
            ranges.append(range(first, last + 1))
        keys, pieces = [], []
        for in_idx in itertools.product(*ranges):
            dst, src = [], []
            for axis, i in enumerate(in_idx):
                c0, c1 = int(in_bounds[axis][i]), int(in_bounds[axis][i + 1])
                lo, hi = max(c0, window[axis][0]), min(c1, window[axis][1])
                dst.append(slice(lo - window[axis][0], hi - window[axis][0]))
                src.append(slice(lo - c0, hi - c0))
            keys.append((prev.name, *in_idx))
            pieces.append((tuple(dst), tuple(src)))
        dsk[(name, *idx)] = (_reduce_task, step, tuple(prev.shape), window, region, pieces,
                             *keys)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[prev])
    return da.Array(graph, name, out_chunks, meta=prev._meta)
