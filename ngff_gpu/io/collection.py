"""The root of a collection store: an HCS plate or a ``bioformats2raw.layout`` container.

A collection holds images in sub-groups (a plate's fields, a container's series), each
written by its own store session (:mod:`ngff_gpu.io.session`: its OME metadata last,
resumable brick by brick). :class:`CollectionSession` owns the root, with the same rules
as an image store (docs/design.md section 3.5):

``open``
    refuse a file or a foreign directory, take the writer lock of the root
    (``.<name>.ngff-gpu.lock`` beside it), choose where to write (a temporary sibling
    when an existing store is replaced, swapped in at the end), and mark the root
    *in progress* (``ngff_gpu_in_progress`` names the kind) without the collection's
    OME metadata;
``finalize``
    the root's OME metadata (plate document, container layout) in one put, which drops
    the marker, then the swap and the lock's release.

So a root that carries the collection's metadata and no marker is complete; an
interrupted write leaves the marker, and ``resume=True`` continues it. Collections are
written to local directories only.
"""

from __future__ import annotations

import os
from typing import Any

import zarr

from ngff_gpu.errors import ArgumentTypeError, InvalidStoreError, StoreExistsError
from ngff_gpu.io.replace import WriteTarget, local_path
from ngff_gpu.io.session import IN_PROGRESS_ATTR, refuse_foreign_directory

#: The ``kind`` of a collection, as the in-progress marker records it.
PLATE = "plate"
CONTAINER = "bioformats2raw"


def collection_kind(attrs: dict[str, Any]) -> str | None:
    """``"plate"``, ``"bioformats2raw"`` or None for a root's attributes (complete or not)."""
    marker = attrs.get(IN_PROGRESS_ATTR)
    if marker in (PLATE, CONTAINER):
        return marker
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else {}
    if "plate" in attrs or "plate" in ome:
        return PLATE
    if "bioformats2raw.layout" in attrs or "bioformats2raw.layout" in ome:
        return CONTAINER
    return None


def local_directory(store: Any, what: str) -> str:
    """The local directory of ``store`` (a path, ``file://`` URL or ``LocalStore``).

    Raises
    ------
    ArgumentTypeError
        For any other store (in-process or object stores).
    """
    path = local_path(store)
    if path is None:
        raise ArgumentTypeError(f"{what} are written to local directories; got {store!r} "
                                "(zarr-python store objects are no longer accepted here, as "
                                "in ngff-zarr)")
    return path


class CollectionSession:
    """Open, mark and finalize the root of a plate or container (module docstring).

    Parameters
    ----------
    store : str or os.PathLike
        The collection's local directory.
    zarr_format : {2, 3}
        Zarr format of the write (2 for OME-Zarr 0.4).
    kind : {"plate", "bioformats2raw"}
        What the root becomes.
    overwrite : bool or "in-place"
        Replace an existing store (atomically unless ``"in-place"``).
    resume : bool
        Continue an interrupted write of the same kind (its sub-images resume too).
    append : bool
        Keep an existing collection of this kind and add to it (ngff-zarr's
        ``overwrite=False`` for plates); the existing metadata stays until
        :meth:`finalize` replaces it.
    """

    def __init__(self, store: Any, zarr_format: int, kind: str, *, overwrite: bool | str,
                 resume: bool, append: bool = False) -> None:
        self.store = store
        self.path = local_directory(store, "plates and bioformats2raw containers")
        self.zarr_format = zarr_format
        self.kind = kind
        self.resume = resume
        self.append = append
        self._replace = WriteTarget(self.path, overwrite, resume)
        self.target: str | None = None
        self.root: zarr.Group | None = None
        self.previous: dict[str, Any] = {}

    @property
    def replacing(self) -> bool:
        """True while an existing store is replaced through a temporary."""
        return self._replace.replacing

    def open(self) -> str:
        """Lock the root, choose where to write and mark it in progress.

        Returns
        -------
        str
            The directory to write under (the temporary sibling when replacing).

        Raises
        ------
        StoreExistsError
            A file, a foreign directory, an existing store without ``overwrite``,
            ``resume`` or ``append``, or one that is not a collection of this kind.
        InvalidStoreError
            Resuming or appending to a store of another Zarr format.
        StoreLockedError
            Another live process writes it.
        """
        refuse_foreign_directory(self.path)
        self.target = os.fspath(self._replace.open())
        try:
            self.root = self._open_root()
        except BaseException:
            self._replace.release()
            raise
        return self.target

    def _open_root(self) -> zarr.Group:
        try:
            existing = zarr.open_group(self.target, mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError, ValueError):
            existing = None
        if existing is None:
            root = zarr.open_group(self.target, mode="w", zarr_format=self.zarr_format)
            root.attrs.put({IN_PROGRESS_ATTR: self.kind})
            return root
        attrs = existing.attrs.asdict()
        if not (self.resume or self.append):
            raise StoreExistsError(f"{self.store} already exists; pass overwrite=True (CLI: "
                                   "--overwrite) or resume=True (CLI: --resume)")
        if existing.metadata.zarr_format != self.zarr_format:
            raise InvalidStoreError(f"cannot continue {self.store}: it is Zarr "
                                    f"v{existing.metadata.zarr_format}, this write is Zarr "
                                    f"v{self.zarr_format}")
        kind = collection_kind(attrs)
        if kind not in (None, self.kind) or (kind is None and _has_ome(attrs)):
            what = kind or "an OME-Zarr image"
            raise StoreExistsError(f"{self.store} holds {what}, not a {self.kind} to continue; "
                                   "pass overwrite=True to replace it")
        self.previous = {k: v for k, v in attrs.items() if k != IN_PROGRESS_ATTR}
        root = zarr.open_group(self.target, mode="r+")
        root.attrs.put({**self.previous, IN_PROGRESS_ATTR: self.kind})
        return root

    def finalize(self, attrs: dict[str, Any]) -> None:
        """Write the root's metadata (dropping the marker), swap a replacement in and
        release the lock."""
        if self.root is None:
            raise RuntimeError("CollectionSession.open() was not called")
        self.root.attrs.put(attrs)
        self._replace.commit()

    def abort(self, exc: BaseException | None) -> None:
        """After a failure: the root keeps its marker (``resume`` continues it); a
        replacement's temporary is deleted (kept after an interrupt); the lock is
        released."""
        self._replace.abort(exc)


def _has_ome(attrs: dict[str, Any]) -> bool:
    return bool(attrs.get("ome") or attrs.get("multiscales") or attrs.get(IN_PROGRESS_ATTR))
