"""Rotation and affine matrices stored as Zarr arrays beside a 0.6 multiscales.

RFC-5 lets a ``rotation`` or ``affine`` hold its matrix inline or in a 2-D array it
names by ``path``, relative to the multiscales group. Our writer takes the array form
for a multiscales (as ngff-zarr 0.50 does: a float64 array holds every bit, JSON
decimals are rounded by some tools): :func:`write_matrices` writes each one as a single
uncompressed float64 chunk. The reader loads each back into the transformation, which
keeps its ``path`` (:func:`load_matrices`), so a rewrite uses the same array.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.io.group import open_group
from ngff_gpu.model.transforms_json import check_array_path, iter_matrix_transforms


def write_matrices(root: zarr.Group, arrays: Mapping[str, Sequence[Sequence[float]]]) -> None:
    """Write each matrix as a one-chunk, uncompressed float64 array at its path below
    ``root`` (parent groups created; an array already there is replaced)."""
    for path, matrix in arrays.items():
        values = np.asarray(matrix, dtype=np.float64)
        parent = path.rpartition("/")[0]
        if parent:
            root.require_group(parent)
        kwargs: dict[str, Any] = {}
        if root.metadata.zarr_format == 2:
            kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        array = root.create_array(path, shape=values.shape, chunks=values.shape,
                                  dtype=np.float64, compressors=None, fill_value=0.0,
                                  overwrite=True, **kwargs)
        array[...] = values


def load_matrices(group: zarr.Group, transforms: Sequence[Any] | None) -> None:
    """Fill in each rotation or affine of ``transforms`` that names the ``path`` of its
    matrix and holds none, from that array below ``group`` (values as Python floats).

    Raises
    ------
    InvalidStoreError
        A path outside the group, a missing or unreadable array, or one that is not a
        non-empty 2-D matrix (the message names the path).
    """
    for t in iter_matrix_transforms(transforms):
        kind, path = t.type, getattr(t, "path", None)
        if getattr(t, kind, None) or not path:
            continue
        try:
            check_array_path(path, f"{kind} transformation")
        except ValueError as exc:
            raise InvalidStoreError(str(exc)) from None
        try:
            node = group[path]
            values = np.asarray(node[...]) if isinstance(node, zarr.Array) else None
        except (KeyError, OSError, ValueError) as exc:
            raise InvalidStoreError(f"the {kind} transformation stores its matrix in the array "
                                    f"at {path!r}, which could not be read ({exc})") from None
        if values is None or values.ndim != 2 or 0 in values.shape:
            raise InvalidStoreError(f"the {kind} transformation's array at {path!r} is not a "
                                    "non-empty 2D matrix")
        setattr(t, kind, values.astype(np.float64).tolist())


def stored_matrix_paths(document: Any) -> set[str]:
    """The ``path`` of every rotation and affine in a stored OME JSON document."""
    found: set[str] = set()
    if isinstance(document, dict):
        if document.get("type") in ("rotation", "affine") and isinstance(document.get("path"),
                                                                         str):
            found.add(document["path"])
        for value in document.values():
            found |= stored_matrix_paths(value)
    elif isinstance(document, list):
        for value in document:
            found |= stored_matrix_paths(value)
    return found


def refuse_occupied_matrix_paths(root: Any, paths: Sequence[str]) -> None:
    """Before an append writes matrices into an existing group: refuse a path where the
    group holds a node (or an array where a parent group would go) that its stored
    metadata does not name as a matrix, so that an array of the user's is never replaced.
    ``root`` is the group or its store.

    Raises
    ------
    ArgumentError
        (a ``ValueError``) naming the path and the node already there.
    """
    if not paths:
        return
    if not isinstance(root, zarr.Group):  # a store: opened read-only for the check
        root = open_group(root, mode="r")
    named = stored_matrix_paths(root.attrs.asdict())
    for path in paths:
        parts = path.split("/")
        for k in range(1, len(parts) + 1):
            prefix = "/".join(parts[:k])
            if prefix in named:
                break
            try:
                node = root[prefix]
            except KeyError:
                break
            if isinstance(node, zarr.Group) and k < len(parts):
                continue  # a parent group: the matrix goes below it
            raise ArgumentError(f"matrix path '{path}': the store holds a node at '{prefix}' "
                                "that its metadata does not name as a matrix; it is kept: "
                                "choose another path")
