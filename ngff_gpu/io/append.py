"""Appending levels to a stored pyramid (ngff-zarr's ``start_level``), and what a
write must not read.

``to_ngff_zarr(store, ms, overwrite=False, start_level=s)`` writes only the levels
``s, s+1, ...`` of ``ms``: the levels below ``s`` must already be in the store, at
their dataset paths, with the shape and dtype ``ms`` describes; they are read, never
rewritten, and level ``s`` is computed from the stored level ``s - 1`` (when ``ms``
still derives it from level ``s - 1``; a level the user supplied is written as given).
The write is in place (there is nothing to replace atomically: the kept levels stay
where they are), in an order that keeps the store readable at every moment:

1. the root's OME metadata is rewritten to list the kept levels only (a complete,
   smaller pyramid), with the root attributes it had;
2. the arrays the append replaces are deleted (consolidated metadata, where the store
   has it, is refreshed), then created and computed through the engine;
3. the root's OME metadata listing every level is written last.

An append that fails leaves a store that reads as its kept levels; running it again
replaces what the failed one wrote. See docs/design.md section 3.5.

:func:`arrays_read` finds the stored arrays a level reads (its source, or any zarr
array in its dask graph), for the two refusals ngff-zarr makes: a level of an append
that reads an array the append replaces, and (where a store cannot be replaced
atomically) an overwrite of the store a level reads.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import zarr

from ngff_gpu.errors import ArgumentError
from ngff_gpu.io.replace import local_path
from ngff_gpu.model.image import NgffImage, source_view
from ngff_gpu.model.multiscales import Multiscales
from ngff_gpu.namespace import is_dask

#: Where a node is: a store key (``("local",)`` for a directory, else the store's
#: identity) and the node's path within it (absolute for a local directory).
Location = tuple[tuple[Any, ...], str]


def _unwrap(store: Any) -> Any:
    from zarr.storage import StorePath, WrapperStore

    while True:
        if isinstance(store, StorePath):
            store = store.store
        elif isinstance(store, WrapperStore):
            store = store._store
        else:
            return store


def store_location(store: Any, path: str = "") -> Location | None:
    """The :data:`Location` of node ``path`` of ``store`` (a path, URL or store object);
    None when the store's identity cannot be told (a remote URL string)."""
    root = local_path(store)
    if root is None and not isinstance(store, str | os.PathLike | bytes):
        store = _unwrap(store)
        root = local_path(store)
        if root is None:
            from zarr.storage import FsspecStore, MemoryStore

            if isinstance(store, FsspecStore):  # an object store: its URL says which
                protocol = store.fs.protocol
                protocol = protocol if isinstance(protocol, str) else protocol[0]
                base = store.path.strip("/")
                return (("fsspec", protocol), "/".join(p for p in (base, *_parts(path)) if p))
            ident = id(store._store_dict) if isinstance(store, MemoryStore) else id(store)
            return (("object", ident), "/".join(_parts(path)))
    if root is None:  # a URL string: the store it opens is compared instead
        return None
    return (("local",), os.path.realpath(os.path.join(root, *_parts(path))))


def _parts(path: str) -> list[str]:
    return [p for p in str(path).split("/") if p not in ("", ".")]


def _array_location(arr: Any) -> Location | None:
    store, path = getattr(arr, "store", None), getattr(arr, "path", "")
    if store is None:
        return None
    return store_location(store, path or "")


def below(loc: Location, base: Location) -> bool:
    """Whether ``loc`` is ``base`` or a node inside it."""
    (k1, p1), (k2, p2) = loc, base
    if k1 != k2:
        return False
    sep = os.sep if k1 == ("local",) else "/"
    return p2 == "" or p1 == p2 or p1.startswith(p2.rstrip(sep) + sep)


def _graph_arrays(data: Any) -> Iterator[Any]:
    """The zarr arrays held by the tasks of a dask array's graph (where dask keeps the
    arrays it reads: ``da.from_array`` holds them as values)."""
    graph = data.__dask_graph__()
    layers = getattr(graph, "layers", None)
    values = (v for layer in layers.values() for v in getattr(layer, "mapping", {}).values()
              ) if layers is not None else graph.values()
    for value in values:
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, zarr.Array):
                yield item
            elif isinstance(item, tuple | list):
                stack.extend(item)


def arrays_read(image: NgffImage) -> list[Location]:
    """Locations of the stored arrays level ``image`` reads: its source, and the zarr
    arrays in its dask graph. A level still pending (the lazy downsample of the level
    before it, not built) reads only that level and is not walked here."""
    pending = getattr(image, "pending", None)
    if callable(pending) and pending() is not None:
        return []
    found = []
    if image.source is not None and image.reads_source():
        found.append(_array_location(image.source))
    if is_dask(image.data):
        found += [_array_location(a) for a in _graph_arrays(image.data)]
    return [loc for loc in found if loc is not None]


def refuse_overwrite_of_read_store(ms: Multiscales, store: Any) -> None:
    """ngff-zarr's refusal, where an overwrite deletes the store before the data is
    computed (a store without atomic replace): a level that reads the store.

    Raises
    ------
    ArgumentError
        Naming the level and the store (ngff-zarr's words).
    """
    base = store_location(store)
    if base is None:
        return
    for k, image in enumerate(ms.images):
        if any(below(loc, base) for loc in arrays_read(image)):
            raise ArgumentError(
                f"Cannot overwrite '{store}': multiscales.images[{k}] reads its data from "
                "that store, and this store cannot be replaced atomically (no rename): "
                "overwrite removes the store contents before the data is computed. Write "
                "to a different store, append levels with start_level, or materialize the "
                "data first, e.g. image.data = image.data.persist().")


def check_start_level(ms: Multiscales, start_level: Any, overwrite: Any, resume: bool,
                      labels: Any) -> int:
    """``start_level`` checked against the Multiscales and the other arguments.

    Raises
    ------
    ArgumentTypeError, ArgumentError
        For a start_level that is not an int in ``[0, levels)``, with ``overwrite``
        (which would delete the kept levels), ``resume`` or ``labels``.
    """
    from ngff_gpu.errors import ArgumentTypeError

    if isinstance(start_level, bool) or not isinstance(start_level, int | np.integer):
        raise ArgumentTypeError(f"start_level must be a non-negative int, got {start_level!r}")
    start_level = int(start_level)
    if not 0 <= start_level < len(ms.images):
        raise ArgumentError(f"start_level={start_level} is out of range for "
                            f"{len(ms.images)} scale levels.")
    if start_level and overwrite:
        raise ArgumentError("start_level keeps the levels already in the store, which "
                            "overwrite=True would delete. Pass overwrite=False.")
    if start_level and resume:
        raise ArgumentError("start_level: an append is not resumed; run it again (it "
                            "replaces what an interrupted append wrote)")
    if start_level and labels:
        raise ArgumentError("start_level: labels are written with the whole pyramid, not "
                            "by an append")
    return start_level


def open_kept_levels(store: Any, ms: Multiscales, start_level: int,
                     zarr_format: int) -> list[zarr.Array]:
    """The stored arrays of levels ``0 .. start_level - 1``, checked against ``ms``.

    Raises
    ------
    ArgumentError
        When a level is not in the store, or has another shape or dtype, or the store
        is of another Zarr format.
    """
    paths = [ms.metadata.datasets[k].path for k in range(start_level)]
    try:
        root = zarr.open_group(store, mode="r", use_consolidated=False)
    except Exception as exc:  # noqa: BLE001 - zarr raises many kinds for "nothing there"
        raise ArgumentError(
            f"start_level expects scale level 0 at '{paths[0]}', but the store has no "
            f"readable array there: {type(exc).__name__}: {exc}") from exc
    if root.metadata.zarr_format != zarr_format:
        raise ArgumentError(
            f"start_level: {store} is Zarr v{root.metadata.zarr_format}, this write is Zarr "
            f"v{zarr_format}; append with the version the store was written in")
    kept = []
    for k, path in enumerate(paths):
        try:
            node = root[path]
        except Exception as exc:  # noqa: BLE001
            raise ArgumentError(
                f"start_level expects scale level {k} at '{path}', but the store has no "
                f"readable array there: {type(exc).__name__}: {exc}") from exc
        if not isinstance(node, zarr.Array):
            raise ArgumentError(f"start_level expects scale level {k} at '{path}', but the "
                                "store has no readable array there: a group")
        image = ms.images[k]
        pending = getattr(image, "pending", None)
        described = pending() if callable(pending) and pending() is not None else image.data
        shape, dtype = tuple(node.shape), np.dtype(node.dtype)
        want_shape, want_dtype = tuple(int(n) for n in described.shape), np.dtype(described.dtype)
        if shape != want_shape or dtype.newbyteorder("=") != want_dtype.newbyteorder("="):
            raise ArgumentError(
                f"The array stored for scale level {k} at '{path}' has shape {shape} and "
                f"dtype {dtype}, but the multiscales describes {want_shape} {want_dtype}.")
        kept.append(node)
    return kept


def refuse_reading_replaced(ms: Multiscales, store: Any, start_level: int) -> None:
    """A level at or after ``start_level`` must not read an array the append replaces
    (it is deleted before the level is computed).

    Raises
    ------
    ArgumentError
        Naming the level and the array (ngff-zarr's words).
    """
    replaced = {store_location(store, ds.path): ds.path
                for ds in ms.metadata.datasets[start_level:]}
    replaced.pop(None, None)
    for k in range(start_level, len(ms.images)):
        for loc in arrays_read(ms.images[k]):
            for target, path in replaced.items():
                if below(loc, target):
                    raise ArgumentError(
                        f"multiscales.images[{k}] reads the array at '{path}', which "
                        f"start_level={start_level} replaces before its data is computed. "
                        "Materialize that level first, e.g. image.data = "
                        "image.data.persist(), or pass a multiscales whose levels from "
                        f"{start_level} on are derived from the stored level "
                        f"{start_level - 1}.")


def bind_kept(ms: Multiscales, kept: Sequence[zarr.Array]) -> Multiscales:
    """A copy of ``ms`` whose levels below ``len(kept)`` read the stored arrays (the
    caller's Multiscales is not changed)."""
    out = copy.copy(ms)
    out.images = list(ms.images)
    for k, arr in enumerate(kept):
        image = copy.copy(ms.images[k])
        data = source_view(arr, arr.chunks)
        if not np.dtype(arr.dtype).isnative:
            data = data.astype(np.dtype(arr.dtype).newbyteorder("="))
        image.data, image.source = data, arr
        out.images[k] = image
    return out
