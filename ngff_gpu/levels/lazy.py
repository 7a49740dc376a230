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
from array_api_compat import array_namespace
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from ngff_gpu.compute.backends import backend_for
from ngff_gpu.compute.step import LevelStep, Region


def _bounds(chunks: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(chunks)])


def _assemble(window: Region, pieces: list[tuple[tuple[slice, ...], tuple[slice, ...]]],
              blocks: tuple[Any, ...]) -> Any:
    """Paste ``blocks`` into one array covering ``window``."""
    first = blocks[0]
    shape = tuple(b - a for a, b in window)
    if len(blocks) == 1:
        return first[pieces[0][1]]
    buf = array_namespace(first).empty(shape, dtype=first.dtype)
    for (dst, src), blk in zip(pieces, blocks):
        buf[dst] = blk[src]
    return buf


def _reduce_task(step: LevelStep, in_shape: tuple[int, ...], window: Region, out_region: Region,
                 pieces: list, *blocks: Any) -> Any:
    x = _assemble(window, pieces, blocks)
    backend = backend_for(x)
    return backend.reduce_region(x, step, tuple(a for a, _ in window), in_shape, out_region)


def lazy_level_name(prev: da.Array, step: LevelStep, out_chunks: tuple[tuple[int, ...], ...]) -> str:
    """The dask name :func:`downsample_lazy` gives level ``k`` built from ``prev`` with
    ``step`` and (normalized) ``out_chunks``: equal names mean that graph, so a writer
    can tell a level still derived from the one before it from a replaced one."""
    return "downsample-" + tokenize(prev.name, step, tuple(out_chunks))


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
    name = lazy_level_name(prev, step, out_chunks)
    # Per axis and output block: its region, input window and the pieces of the input
    # chunks that cover the window (computed once per axis, combined per block below).
    per_axis = []
    for axis, (oc, ic) in enumerate(zip(out_chunks, prev.chunks)):
        ob, ib = _bounds(oc), _bounds(ic)
        blocks = []
        for i in range(len(oc)):
            region = (int(ob[i]), int(ob[i + 1]))
            lo, hi = step.axis_window(axis, region, prev.shape[axis])
            first = int(np.searchsorted(ib, lo, side="right")) - 1
            last = int(np.searchsorted(ib, hi, side="left")) - 1
            pieces = []
            for j in range(first, last + 1):
                c0, c1 = int(ib[j]), int(ib[j + 1])
                a, b = max(c0, lo), min(c1, hi)
                pieces.append((j, slice(a - lo, b - lo), slice(a - c0, b - c0)))
            blocks.append((region, (lo, hi), pieces))
        per_axis.append(blocks)
    dsk: dict = {}
    in_shape = tuple(prev.shape)
    for idx in itertools.product(*(range(len(c)) for c in out_chunks)):
        entries = [per_axis[axis][i] for axis, i in enumerate(idx)]
        region = tuple(e[0] for e in entries)
        window = tuple(e[1] for e in entries)
        keys, pieces = [], []
        for combo in itertools.product(*(e[2] for e in entries)):
            keys.append((prev.name, *(c[0] for c in combo)))
            pieces.append((tuple(c[1] for c in combo), tuple(c[2] for c in combo)))
        dsk[(name, *idx)] = (_reduce_task, step, in_shape, window, region, pieces, *keys)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[prev])
    return da.Array(graph, name, out_chunks, meta=prev._meta)
