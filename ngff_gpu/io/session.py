"""The store session: one conversion's hold on its output store.

A :class:`StoreSession` owns every decision about the store itself, so the writer
only plans and computes:

``open``
    refuse what must not be touched (a file, a non-empty directory that is not a
    Zarr store, an existing store without ``overwrite``/``resume``), open or
    replace the root group, on resume check the store was started by the same
    plan (its *fingerprint*) and remove partial writes a kill left behind, then
    mark the root *in progress* (no OME metadata).
``array``
    create a level array, or on resume reuse the one already there.
``progress``
    one done-flag per brick and pass (:class:`BrickFlags`); on resume only a
    complete set made for the same passes is trusted.
``finalize``
    the metadata of sub-groups (label images, ``labels``), the progress records
    removed, and the root's OME metadata last: a store carrying OME metadata is
    complete.

Hooks (:mod:`ngff_gpu.io.replace` and :mod:`ngff_gpu.io.lock` do the work):
:meth:`StoreSession._acquire` takes the writer lock of a local store and cleans
what a killed run left; :meth:`StoreSession._target` is the store written: a
temporary sibling ``.<name>.ngff-gpu-tmp-<pid>`` when an existing local store
is replaced, else the store itself; :meth:`StoreSession._commit` swaps the
temporary in (after the OME metadata) and :meth:`StoreSession._release` (run on
success and on failure) deletes an unfinished temporary (kept after an
interrupt, for resume) and releases the lock. Tests inject faults by passing a
subclass (a *session double*) to the writer, never by patching this module.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import zarr

from ngff_gpu.errors import ArgumentError, InvalidStoreError, StoreExistsError
from ngff_gpu.io.guards import PARTIAL, ROOT_FILES, refuse_foreign_directory
from ngff_gpu.io.read_pipeline import ZARR_CONFIG_LOCK
from ngff_gpu.io.remote import RetryingStore
from ngff_gpu.io.replace import WriteTarget, local_path, refuse_replacing_valid

PROGRESS_GROUP = "ngff_gpu_progress"
IN_PROGRESS_ATTR = "ngff_gpu_in_progress"
FINGERPRINT_ATTR = "ngff_gpu_fingerprint"
#: Root attributes the OME-Zarr writer owns: every other root key is the user's
#: (``Multiscales.root_attributes``), kept when a store is overwritten or appended to.
OME_ROOT_KEYS = frozenset({"ome", "multiscales", "omero", "labels", "image-label", "plate",
                           "well", "bioformats2raw.layout", FINGERPRINT_ATTR, IN_PROGRESS_ATTR})


def codec_pipeline(requested: str = "auto") -> str | None:
    """The zarr codec pipeline class path to write Zarr v3 with.

    ``auto`` takes the Rust ``zarrs`` pipeline when it is installed (it encodes
    chunks in parallel outside the GIL; ``NGFF_GPU_CODEC_PIPELINE=zarr`` turns it
    off), ``zarrs`` requires it, ``zarr`` keeps zarr-python's own.
    """
    requested = os.environ.get("NGFF_GPU_CODEC_PIPELINE", requested)
    if requested == "zarr":
        return None
    try:
        import zarrs  # noqa: F401
    except ImportError:
        if requested == "zarrs":
            raise ArgumentError("codec pipeline 'zarrs' requested but zarrs is not installed"
                                ) from None
        return None
    return "zarrs.ZarrsCodecPipeline"


def check_root_attributes(attributes: Any) -> dict[str, Any]:
    """``Multiscales.root_attributes`` checked: a dict without the keys the OME writer
    owns (:data:`OME_ROOT_KEYS`; ngff-zarr refuses them too).

    Raises
    ------
    ArgumentTypeError
        For something that is not a dict.
    ArgumentError
        Naming the OME keys it sets.
    """
    from collections.abc import Mapping

    from ngff_gpu.errors import ArgumentTypeError

    if not attributes:
        return {}
    if not isinstance(attributes, Mapping):
        raise ArgumentTypeError(f"multiscales.root_attributes must be a dict, got {attributes!r}")
    owned = sorted(OME_ROOT_KEYS.intersection(attributes))
    if owned:
        raise ArgumentError(f"root_attributes cannot set {owned}: the writer derives the OME "
                            "metadata from the multiscales.")
    return dict(attributes)


def foreign_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The root attributes that are not the OME writer's (see :data:`OME_ROOT_KEYS`)."""
    return {k: v for k, v in attrs.items() if k not in OME_ROOT_KEYS}


def has_consolidated_metadata(store: Any, zarr_format: int) -> bool:
    """Whether the root of ``store`` carries consolidated metadata (False when there is
    no readable root)."""
    try:
        root = zarr.open_group(store, mode="r", zarr_format=zarr_format)
    except Exception:  # noqa: BLE001 - nothing (readable) there
        return False
    return root.metadata.consolidated_metadata is not None


def refuse_stale_consolidated(store: Any, zarr_format: int, overwrite: Any, resume: bool,
                              consolidate: bool) -> None:
    """ngff-zarr's rule: an in-place write (``overwrite=False``) of a Zarr v2 store that
    has consolidated metadata (``.zmetadata``, a file beside the group's) must
    consolidate again, or the sidecar would be left stale. (Zarr v3 keeps it in the
    root's ``zarr.json``, which the write rewrites.)

    Raises
    ------
    ArgumentError
        Naming both remedies.
    """
    if zarr_format != 2 or overwrite or resume or consolidate:
        return
    if has_consolidated_metadata(store, 2):
        raise ArgumentError(
            "Cannot write into a zarr v2 store that already has consolidated metadata with "
            "consolidate_metadata=False and overwrite=False: the existing consolidated "
            "metadata would be left stale. Either use overwrite=True, or keep "
            "consolidate_metadata=True.")


def _utf8_path(store: Any) -> bool:
    """False for a local store whose path is not valid UTF-8 (undecodable bytes)."""
    root = getattr(store, "root", None)
    if root is None:
        return True
    try:
        os.fspath(root).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class BrickFlags:
    """The done-flags of one pass: ``done(j)``, ``mark(j)``; ``array`` is the zarr
    array behind them (handed to distributed tasks, which mark their own brick)."""

    def __init__(self, array: zarr.Array, resume: bool) -> None:
        self.array = array
        self._done = array[:] if resume else np.zeros(array.shape, np.uint8)

    def done(self, index: int) -> bool:
        """Whether brick ``index`` was finished by an earlier (interrupted) run."""
        return bool(self._done[index])

    def mark(self, index: int) -> None:
        """Record brick ``index`` as finished."""
        self.array[index] = 1

    def __len__(self) -> int:
        return int(self.array.shape[0])


class StoreSession:
    """Open, resume, mark and finalize one OME-Zarr store (see the module docstring).

    Parameters
    ----------
    store : str, pathlib.Path, zarr store or fsspec URL
        The output store, as the user gave it.
    zarr_format : {2, 3}
        Zarr format of the write.
    overwrite : bool or "in-place"
        Replace an existing store: atomically for a local store (a temporary
        sibling swapped in when complete); elsewhere only a store that is not a
        complete OME-Zarr, unless ``"in-place"`` (delete it, then write).
    resume : bool
        Continue an interrupted write of the same plan (in place, or in the
        temporary a killed replacement left).
    append : bool
        Write in place into an existing store whose first levels are kept
        (``start_level``, :mod:`ngff_gpu.io.append`): no marker, the root keeps its
        OME metadata until :meth:`keep_levels` and :meth:`finalize` rewrite it.
    nodes : collection of str
        The top-level names this write creates. With ``overwrite=False``, a local
        directory whose every entry is a Zarr node (a hierarchy without root metadata,
        :func:`~ngff_gpu.io.guards.zarr_children`) is written into when none of its
        entries has one of these names: the root and these nodes are added, nothing is
        removed, and a failed write (not an interrupt, kept for resume) removes what it
        added.

    The root attributes of an existing store that are not the OME writer's
    (:func:`foreign_attrs`) are kept: written again under the new ones by
    :meth:`finalize` (an overwrite, an append), as ngff-zarr does.

    Examples
    --------
    >>> with StoreSession(path, 3, overwrite=True, resume=False) as s:  # doctest: +SKIP
    ...     if s.open(fingerprint):
    ...         a = s.array("scale0/image", shape, chunks, dtype, None, dims=dims)
    ...         flags = s.progress([n_bricks], plan)
    ...         ...
    ...         s.finalize([], root_attrs)
    """

    def __init__(self, store: Any, zarr_format: int, *, overwrite: bool | str,
                 resume: bool, append: bool = False, nodes: Collection[str] = ()) -> None:
        self.store = store
        self.zarr_format = zarr_format
        self.overwrite = overwrite
        self.resume = resume
        self.append = append
        self.nodes = frozenset(nodes)
        #: The user's Zarr nodes a write with ``overwrite=False`` adds its own beside.
        self.beside: list[str] | None = None
        self._added_root = False
        #: Root attributes of the existing store that are not the OME writer's.
        self.kept_attrs: dict[str, Any] = {}
        self.root: zarr.Group | None = None
        self.fingerprint: str | None = None
        self.complete = False
        self._replace = WriteTarget(store, overwrite, resume)  # checks ``overwrite``
        self._out: Any = store
        self._exc: BaseException | None = None

    @property
    def replacing(self) -> bool:
        """True while an existing store is being replaced through a temporary (the
        store at the user's path is then untouched until :meth:`finalize`)."""
        return self._replace.replacing

    # ------------------------------------------------------------------ hooks

    def _acquire(self) -> None:
        """Called first by :meth:`open`: refuse a foreign path (before an in-place
        delete could touch it), take the writer lock of a local store, recover what a
        killed run left and choose where to write (see :class:`WriteTarget`).

        Raises
        ------
        StoreLockedError
            Another live process writes the store.
        """
        refuse_foreign_directory(self.store, self._adding(), self.zarr_format)
        self._out = self._replace.open()

    def _adding(self) -> frozenset[str] | None:
        """The names this write adds beside a hierarchy without root metadata: only
        with ``overwrite=False``, not resumed, and declared ``nodes``."""
        return self.nodes if self.overwrite is False and not self.resume and self.nodes \
            else None

    def _target(self) -> Any:
        """The store the arrays are written to: the user's store, or the temporary
        sibling of an atomic replace."""
        return self._out

    def _commit(self) -> None:
        """Called last by :meth:`finalize`, after the OME metadata: swap a temporary
        in for the user's store (then delete the old one) and release the lock."""
        self._replace.commit()

    def _release(self, failed: bool) -> None:
        """Called when the session ends, on success or failure: after a failure the
        unfinished temporary is deleted (kept after an interrupt, for resume); the lock
        is released."""
        try:
            if failed and self._added_root and not isinstance(self._exc, KeyboardInterrupt):
                self._remove_added()
        finally:
            if failed:
                self._replace.abort(self._exc)
            else:
                self._replace.release()

    def _remove_added(self) -> None:
        """After a failed write beside the user's nodes (:attr:`beside`): remove the
        root metadata and the nodes this write added (none of them was there before);
        the user's nodes are untouched."""
        import shutil

        path = local_path(self.store)
        assert path is not None
        for name in sorted(self.nodes):
            if os.path.isdir(os.path.join(path, name)):
                shutil.rmtree(os.path.join(path, name))
        for name in ROOT_FILES:
            if os.path.isfile(os.path.join(path, name)):
                os.remove(os.path.join(path, name))

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> StoreSession:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._exc = exc
        self._release(exc_type is not None)

    def open(self, fingerprint: str) -> bool:
        """Open the store for a write of the plan ``fingerprint``.

        Returns
        -------
        bool
            False when resuming a store that is already complete for this plan
            (nothing to write), else True.

        Raises
        ------
        StoreExistsError
            A file, a foreign directory, or an existing store without
            ``overwrite``/``resume``.
        InvalidStoreError
            Resuming a store of another Zarr format or another plan.
        """
        self._acquire()
        self.fingerprint = fingerprint
        # again once the lock is held (and what a killed run left recovered); this also
        # says which of the user's nodes a write with overwrite=False goes beside
        self.beside = refuse_foreign_directory(self.store, self._adding(), self.zarr_format)
        target = self._target()
        existing = self._existing(target)
        if existing is not None and not (self.overwrite or self.resume or self.append):
            raise StoreExistsError(
                f"{self.store} already holds a Zarr group; pass overwrite=True (CLI: --overwrite) "
                "or resume=True (CLI: --resume), or start_level=K to write the levels from K "
                "on beside the ones it holds"
            )
        previous = existing if target is self.store else self._existing(self.store)
        if previous is not None:
            try:
                self.kept_attrs = foreign_attrs(previous.attrs.asdict())
            except (ValueError, TypeError):  # unreadable attributes: nothing to keep
                self.kept_attrs = {}
        if self.append:
            if existing is None or existing.metadata.zarr_format != self.zarr_format:
                raise InvalidStoreError(f"cannot append to {self.store}: no Zarr "
                                        f"v{self.zarr_format} group there")
            self.root = zarr.open_group(target, mode="r+", use_consolidated=False)
            self._remove_partial_writes(self.root)
            return True
        if self.resume and existing is not None:
            if existing.metadata.zarr_format != self.zarr_format:
                raise InvalidStoreError(
                    f"cannot resume {self.store}: it is Zarr v{existing.metadata.zarr_format}, "
                    f"this write is Zarr v{self.zarr_format}"
                )
            root = zarr.open_group(target, mode="r+")
            self._remove_partial_writes(root)
            attrs = root.attrs.asdict()
            if "ome" in attrs or "multiscales" in attrs:
                if attrs.get(FINGERPRINT_ATTR) == fingerprint:
                    self.root, self.complete = root, True
                    return False
                raise InvalidStoreError(
                    f"cannot resume {self.store}: it is a complete store of another plan")
            if attrs and attrs.get(IN_PROGRESS_ATTR) != fingerprint:
                raise InvalidStoreError(
                    f"cannot resume {self.store}: it was started with different parameters")
        else:
            if existing is not None and self.overwrite is True and local_path(target) is None:
                # No rename here (MemoryStore, object stores): no atomic replace.
                refuse_replacing_valid(self.store, existing.attrs.asdict())
            # overwrite=False never deletes: "a" creates the root (there is none: see
            # ``existing``) beside what the directory holds
            mode = "w" if self.overwrite else "a"
            try:
                root = zarr.open_group(target, mode=mode, zarr_format=self.zarr_format)
            except (zarr.errors.ContainsArrayError, zarr.errors.ContainsGroupError) as e:
                raise StoreExistsError(f"{self.store} already holds a Zarr node at its root; "
                                       "pass overwrite=True (CLI: --overwrite)") from e
            self._added_root = self.beside is not None
        root.attrs.put({IN_PROGRESS_ATTR: fingerprint})
        self.root = root
        return True

    @staticmethod
    def _existing(target: Any) -> zarr.Group | None:
        try:
            return zarr.open_group(target, mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError, ValueError):
            return None

    @staticmethod
    def _remove_partial_writes(root: zarr.Group) -> None:
        """Delete the temporary ``*.partial`` files an interrupted local write leaves."""
        from zarr.core.sync import sync

        async def run() -> None:
            keys = [k async for k in root.store.list() if PARTIAL.search(k)]
            for k in keys:
                await root.store.delete(k)

        sync(run())

    # ------------------------------------------------------------------ arrays

    @contextmanager
    def _pipeline(self, sharded: bool = False) -> Iterator[None]:
        """Arrays take their codec pipeline from zarr's config when they are opened.

        A local path that is not valid UTF-8 keeps zarr-python's pipeline (``zarrs``
        takes paths as UTF-8 strings), and so does a remote store (its writes go
        through :class:`~ngff_gpu.io.remote.RetryingStore`, which ``zarrs`` cannot
        call). A sharded array gets one ``zarrs`` thread per write: ``zarrs`` encodes
        the inner chunks of a shard that is not entirely inside the array in parallel
        and appends them as they finish, so their order in the shard (not the values)
        would change from run to run; the engine's writer threads still write bricks in
        parallel.
        """
        pipeline = codec_pipeline() if self.zarr_format == 3 else None
        store = self._root().store
        if pipeline is not None and (not _utf8_path(store) or isinstance(store, RetryingStore)):
            pipeline = None  # a remote store: every write goes through our retry policy
        if pipeline is None:
            with ZARR_CONFIG_LOCK:  # no other session's setting is in force meanwhile
                yield
            return
        cfg: dict[str, Any] = {"codec_pipeline.path": pipeline}
        if sharded:
            # zarrs reads its thread count from ``threading.max_workers``; create zarr's
            # own thread pool first (at its default size) so the setting reaches zarrs only.
            from zarr.core.sync import _get_executor

            _get_executor()
            cfg["threading.max_workers"] = 1
        with ZARR_CONFIG_LOCK, zarr.config.set(cfg):
            yield

    def array(self, path: str, shape: Sequence[int], chunks: Sequence[int], dtype: Any,
              compressors: Any, *, dims: Sequence[str], shards: Sequence[int] | None = None,
              reuse: bool | None = None) -> zarr.Array:
        """Create the array at ``path``; on resume (or ``reuse``: a retry of this write)
        reuse it when it is there.

        Zarr v3 arrays carry ``dimension_names``; Zarr v2 arrays use ``/`` chunk keys.
        """
        root = self._root()
        parent = path.rpartition("/")[0]
        reuse = self.resume if reuse is None else reuse
        with self._pipeline(sharded=shards is not None):
            if reuse and parent:
                root.require_group(parent)  # a kill may have left the array without its group
            if reuse and path in root:
                return root[path]
            kwargs: dict[str, Any] = {}
            if self.zarr_format == 3:
                kwargs["dimension_names"] = list(dims)
                if shards is not None:
                    kwargs["shards"] = tuple(shards)
            else:
                kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
            return root.create_array(path, shape=tuple(shape), chunks=tuple(chunks), dtype=dtype,
                                     compressors=compressors, fill_value=0, overwrite=True,
                                     **kwargs)

    def _root(self) -> zarr.Group:
        if self.root is None:
            raise RuntimeError("StoreSession.open() was not called")
        return self.root

    # ------------------------------------------------------------------ progress

    def progress(self, counts: Sequence[int], plan: list[Any],
                 reuse: bool | None = None) -> list[BrickFlags]:
        """One :class:`BrickFlags` per pass (``counts[i]`` bricks in pass ``i``).

        On resume (or ``reuse``: a retry of this write), only a complete marker set
        made for the same ``plan`` (a JSON description of the passes) and brick
        counts is trusted; anything else starts over, so a brick is never skipped
        wrongly.
        """
        root = self._root()
        reuse = self.resume if reuse is None else reuse
        if reuse and PROGRESS_GROUP in root:
            g = root[PROGRESS_GROUP]
            try:
                found = [g[f"pass{i}"] for i in range(len(counts))]
                if g.attrs.get("passes") == plan and [m.shape[0] for m in found] == list(counts):
                    return [BrickFlags(m, True) for m in found]
            except KeyError:
                pass  # half-created markers: start over
        g = root.create_group(PROGRESS_GROUP, overwrite=True)
        arrays = [self._marker(g, i, n) for i, n in enumerate(counts)]
        g.attrs["passes"] = plan  # last: only complete marker sets carry it
        return [BrickFlags(a, False) for a in arrays]

    def _marker(self, group: zarr.Group, index: int, n: int) -> zarr.Array:
        return group.create_array(f"pass{index}", shape=(n,), chunks=(1,), dtype="uint8",
                                  fill_value=0, compressors=None)

    def keep_levels(self, ome_attrs: dict[str, Any], replaced: Sequence[str],
                    consolidate: bool) -> None:
        """An append's first step: the root lists only the kept levels (``ome_attrs``,
        with the kept root attributes), the arrays at ``replaced`` are deleted, and the
        consolidated metadata, where the store had it, is made again (without it
        where ``consolidate`` is False: Zarr v3 rewrites it with the root)."""
        root = self._root()
        had = has_consolidated_metadata(root.store, self.zarr_format)
        root.attrs.put({**self.kept_attrs, **ome_attrs})
        for path in replaced:
            if path in root:
                del root[path]
        if had and consolidate:
            self._consolidate(root)

    def _consolidate(self, root: zarr.Group) -> None:
        import warnings

        with warnings.catch_warnings():  # v3: "not part of the specification" notice
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(root.store, path=root.path or None,
                                      zarr_format=self.zarr_format)

    # ------------------------------------------------------------------ finalize

    def finalize(self, groups: Sequence[tuple[str, dict[str, Any]]],
                 root_attrs: dict[str, Any], consolidate: bool = False) -> None:
        """Write the sub-groups' attributes (in order), drop the progress records, then
        the root's attributes (with the fingerprint) last; then :meth:`_commit`.

        Parameters
        ----------
        groups : sequence of (path, attrs)
            Sub-groups' complete attributes, each written in one put (a label
            image's ``multiscales`` and ``image-label`` together).
        root_attrs : dict
            The root's OME attributes (over the kept root attributes of the store
            replaced or appended to).
        consolidate : bool
            Then write consolidated metadata (``.zmetadata`` in Zarr v2, the root
            ``zarr.json``'s ``consolidated_metadata`` in v3), before the commit.
        """
        root = self._root()
        for path, attrs in groups:
            root.require_group(path).attrs.put(attrs)
        if PROGRESS_GROUP in root:
            del root[PROGRESS_GROUP]
        root.attrs.put({**self.kept_attrs, **root_attrs, FINGERPRINT_ATTR: self.fingerprint})
        if consolidate:
            self._consolidate(root)
        self.complete = True
        self._commit()
