"""Write HCS plates: ``to_hcs_zarr``, ``write_hcs_well_image`` and ``HCSPlateWriter``.

The names, parameters and defaults are ngff-zarr 0.50's. Each field of view is an image
pyramid written by :func:`~ngff_gpu.io.writer.to_ngff_zarr` into its group
``ROW/COLUMN/FIELD`` of the plate (our engine, its own store session: OME metadata
last, resumable brick by brick). What the metadata says, and when (docs/design.md
section 3.7):

* a field group carries its ``multiscales`` only once all its levels are written;
* a well's ``images`` lists a field only after that field is complete (ngff-zarr
  writes the well document before the pixels); the list is read, extended and
  written back under a per-well lock, so threads may write fields of one well;
* :class:`HCSPlateWriter` writes the plate document last, when the ``with`` block
  ends without an error, listing the declared wells that hold at least one field.
  Until then the root carries the in-progress marker and no plate document (so no
  reader takes a plate being written, or an interrupted one, for a complete plate);
  ``resume=True`` continues an interrupted plate: fields already complete for the
  same plan are kept, a partial field continues from its finished bricks;
* :func:`to_hcs_zarr` is ngff-zarr's plate-skeleton call: it writes the plate
  document it is given at once (with every declared well, written or not), as
  ngff-zarr does; use :class:`HCSPlateWriter` for a plate whose metadata never lists
  what is not there.

Plates are written to local directories or ``.ozx`` archives (staged in a directory
beside the archive, zipped when the writer closes), as ngff-zarr's are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zarr

from ngff_gpu.errors import ArgumentError, ArgumentTypeError, StoreExistsError
from ngff_gpu.io.collection import PLATE, CollectionSession, local_directory
from ngff_gpu.io.ozx import is_ozx, zip_store
from ngff_gpu.io.replace import WriteTarget
from ngff_gpu.io.session import IN_PROGRESS_ATTR, refuse_foreign_directory
from ngff_gpu.io.write_api import to_ngff_zarr
from ngff_gpu.model.metadata import RFC3_VERSION
from ngff_gpu.model.plate import (
    Well,
    WellImage,
    check_plate,
    ome_document,
    plate_to_json,
    well_from_json,
    well_to_json,
)

_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()

#: The OME-Zarr versions plates are written at (0.6 and 0.9.dev1 keep 0.5's layout: only
#: the version tag differs; their fields are 0.6 or 0.9.dev1 images), as ngff-zarr 0.50's
#: ``WRITABLE_VERSIONS``.
SUPPORTED_VERSIONS = ("0.4", "0.5", "0.6", RFC3_VERSION)


def _lock(store: str, key: str) -> threading.Lock:
    """The lock that serialises updates of group ``key`` of the plate at ``store``."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((os.path.abspath(store), key), threading.Lock())


def zarr_format_of(version: str) -> int:
    """2 for OME-Zarr 0.4, else 3."""
    return 2 if version == "0.4" else 3


def check_hcs_version(version: str, plate: Any = None) -> None:
    """Refuse a version we do not write, or one other than the plate's.

    Raises
    ------
    ArgumentError
        With ngff-zarr's wording ("Unsupported OME-Zarr version: ...", "version ...
        does not match the plate's version ...").
    """
    if version not in SUPPORTED_VERSIONS:
        raise ArgumentError(f"Unsupported OME-Zarr version: {version}. HCS plates can be "
                            f"written at versions {', '.join(SUPPORTED_VERSIONS)}.")
    if plate is not None and version != plate.version:
        raise ArgumentError(
            f"version {version!r} does not match the plate's version {plate.version!r}. A "
            "plate and its wells are written at one OME-Zarr version: pass the version the "
            "Plate was created with.")


def find_well(plate: Any, row_name: str, column_name: str) -> Any:
    """The plate's ``PlateWell`` at ``row_name``/``column_name``.

    Raises
    ------
    ArgumentError
        "Row 'Z' not found in plate metadata" (or column, or well).
    """
    if row_name not in [r.name for r in plate.rows]:
        raise ArgumentError(f"Row '{row_name}' not found in plate metadata")
    if column_name not in [c.name for c in plate.columns]:
        raise ArgumentError(f"Column '{column_name}' not found in plate metadata")
    path = f"{row_name}/{column_name}"
    for well in plate.wells:
        if well.path == path:
            return well
    raise ArgumentError(f"Well '{path}' not found in plate metadata")


def _check_field(plate: Any, field_index: Any, acquisition_id: Any) -> None:
    if isinstance(field_index, bool) or not isinstance(field_index, int) or field_index < 0:
        raise ArgumentError(f"field_index must be a non-negative int, got {field_index!r}")
    if acquisition_id is None:
        if len(plate.acquisitions or []) > 1:
            raise ArgumentError(
                f"The plate declares {len(plate.acquisitions)} acquisitions, so every well "
                "image must reference one: pass acquisition_id.")
    elif isinstance(acquisition_id, bool) or not isinstance(acquisition_id, int):
        raise ArgumentTypeError(f"acquisition_id must be an int or None, got {acquisition_id!r}")


def _group_attrs(root: str, path: str, zarr_format: int) -> dict[str, Any] | None:
    try:
        group = zarr.open_group(os.path.join(root, path) if path else root, mode="r",
                                zarr_format=zarr_format)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError, ValueError):
        return None
    return group.attrs.asdict()


def _require_groups(root: str, well_path: str, zarr_format: int) -> None:
    """The row and well groups of ``well_path`` (bare groups until a field is listed)."""
    with _lock(root, ""):
        group = zarr.open_group(root, mode="a", zarr_format=zarr_format)
        group.require_group(well_path)


def _list_field(root: str, well_path: str, field: str, acquisition_id: int | None,
                well_metadata: Any, version: str) -> None:
    """Add (or update) ``field`` in the well's ``images`` (kept in field order), under
    the well's lock."""
    zarr_format = zarr_format_of(version)
    with _lock(root, well_path):
        if well_metadata is None:
            attrs = _group_attrs(root, well_path, zarr_format) or {}
            doc, found = ome_document(attrs, "well")
            well_metadata = (well_from_json(doc, found or version, f"{root}/{well_path}")
                             if doc is not None else Well(images=[], version=version))
        for image in well_metadata.images:
            if image.path == field:
                image.acquisition = acquisition_id
                break
        else:
            well_metadata.images.append(WellImage(path=field, acquisition=acquisition_id))
            # fields in order of their index, whichever thread finished first
            well_metadata.images.sort(key=lambda im: (not im.path.isdigit(),
                                                      int(im.path) if im.path.isdigit() else 0))
        group = zarr.open_group(os.path.join(root, well_path), mode="r+",
                                zarr_format=zarr_format)
        group.attrs.put(well_to_json(well_metadata.images, version))


def write_hcs_well_image(
    store: Any,
    multiscales: Any,
    plate_metadata: Any,
    row_name: str,
    column_name: str,
    field_index: int = 0,
    acquisition_id: int | None = 0,
    well_metadata: Any = None,
    version: str = "0.4",
    **kwargs: Any,
) -> None:
    """Write one field of view into its well of a plate (ngff-zarr's signature).

    The field's pyramid is written by :func:`~ngff_gpu.to_ngff_zarr` to
    ``ROW/COLUMN/FIELD`` (creating the root, row and well groups as needed), then the
    well's ``images`` lists it: a well never lists a field that is not complete.

    Parameters
    ----------
    store : str or os.PathLike
        The plate's local directory.
    multiscales : Multiscales
        The field's pyramid (from :func:`~ngff_gpu.to_multiscales`, or read).
    plate_metadata : Plate
        The plate's layout; ``row_name``, ``column_name`` and the well must be in it.
    row_name, column_name : str
        The well (``"A"``, ``"1"``).
    field_index : int
        The field's index in the well (its group name).
    acquisition_id : int or None
        The acquisition recorded for the field (None: no ``acquisition`` key,
        refused when the plate declares several acquisitions).
    well_metadata : Well, optional
        The well's image list to extend (default: the one stored).
    version : str
        OME-Zarr version; must be the plate's (default "0.4", as ngff-zarr's).
    **kwargs
        Passed to :func:`~ngff_gpu.to_ngff_zarr` (``overwrite`` defaults to True;
        ``resume``, ``memory_limit``, ``device``, ``chunks_per_shard``, ...).

    Raises
    ------
    ArgumentError
        For a version other than the plate's, a row, column or well not in the plate,
        a missing acquisition; before anything is written.
    """
    check_hcs_version(version, plate_metadata)
    check_plate(plate_metadata)
    _check_field(plate_metadata, field_index, acquisition_id)
    well = find_well(plate_metadata, row_name, column_name)
    root = local_directory(store, "HCS plates")
    refuse_foreign_directory(root)
    zarr_format = zarr_format_of(version)
    _require_groups(root, well.path, zarr_format)
    kwargs.setdefault("overwrite", True)
    to_ngff_zarr(os.path.join(root, well.path, str(field_index)), multiscales,
                 version=version, **kwargs)
    _list_field(root, well.path, str(field_index), acquisition_id, well_metadata, version)


def to_hcs_zarr(plate: Any, store: Any, overwrite: bool = True) -> None:
    """Write a plate's root document (ngff-zarr's plate skeleton).

    The document lists every well of ``plate.metadata`` now, as ngff-zarr writes it;
    fields are added with :func:`write_hcs_well_image`. :class:`HCSPlateWriter`
    writes a plate whose document comes last and lists only the wells written.

    Parameters
    ----------
    plate : HCSPlate
        Its ``metadata`` (a :class:`~ngff_gpu.Plate`) is written.
    store : str or os.PathLike
        The plate's local directory.
    overwrite : bool
        True: replace whatever is there (atomically: the old store stays until the new
        root is written). False: keep the existing content and merge the plate document
        into the root's attributes.
    """
    meta = plate.metadata
    check_hcs_version(meta.version)
    check_plate(meta)
    path = local_directory(store, "HCS plates")
    refuse_foreign_directory(path)
    attrs = plate_to_json(meta, meta.version)
    zarr_format = zarr_format_of(meta.version)
    if not overwrite and os.path.isdir(path):
        root = zarr.open_group(path, mode="a", zarr_format=zarr_format)
        current = root.attrs.asdict()
        current.pop(IN_PROGRESS_ATTR, None)
        root.attrs.put({**current, **attrs})
        return
    target = WriteTarget(path, True, False)
    written = target.open()
    try:
        zarr.open_group(written, mode="w", zarr_format=zarr_format).attrs.put(attrs)
    except BaseException as exc:
        target.abort(exc)
        raise
    target.commit()


class HCSPlateWriter:
    """Write a plate field by field, in parallel if you like, then its plate document.

    ngff-zarr's context manager, with its parameters; the plate document is written
    when the block ends without an error (see the module docstring for what the
    metadata says while wells are added). ``write_well_image`` may be called from
    several threads: one writer per field, never two on one field.

    Parameters
    ----------
    store : str or os.PathLike
        The plate: a ``.ome.zarr`` directory or a ``.ozx`` archive (zipped on exit).
    plate_metadata : Plate
        The plate's layout.
    version : str, optional
        Default: the plate's version; when given, it must be the plate's.
    overwrite : bool or "in-place"
        True: replace an existing plate (atomically: the old one stays until the new
        one is complete; ``"in-place"`` deletes it first). False: keep what is there
        and add to it; each field written replaces that field.
    resume : bool
        Keyword-only: continue an interrupted plate: a field complete for the same
        plan is kept (not rewritten), a partial one continues from its finished bricks.
    on_field : callable, optional
        Keyword-only: ``on_field(path)`` after each field is complete and listed in its
        well (``path`` is ``"A/1/0"``), in the thread that wrote it.

    Raises
    ------
    ArgumentError
        An unsupported version, one other than the plate's, ``.ozx`` below 0.5, or
        ``resume`` with ``.ozx``.
    """

    def __init__(self, store: Any, plate_metadata: Any, version: str | None = None,
                 overwrite: bool | str = True, *, resume: bool = False,
                 on_field: Callable[[str], None] | None = None) -> None:
        if version is None:
            version = getattr(plate_metadata, "version", None)
        check_hcs_version(version, plate_metadata)
        check_plate(plate_metadata)
        self.final_store = store
        self.plate_metadata = plate_metadata
        self.version = version
        self.overwrite = overwrite
        self.resume = resume
        self.on_field = on_field
        self.is_ozx = is_ozx(store)
        if self.is_ozx and zarr_format_of(version) != 3:
            raise ArgumentError(
                "RFC-9 zipped OME-Zarr (.ozx) requires OME-Zarr version 0.5 or later (Zarr "
                f"v3). Got version '{version}'.")
        if self.is_ozx and resume:
            raise ArgumentError(f"{store}: a .ozx archive cannot be resumed; write a "
                                ".ome.zarr directory to resume")
        if not self.is_ozx:
            local_directory(store, "HCS plates")
        #: True once open when an existing plate is replaced through a temporary.
        self.replacing = False
        self._session: CollectionSession | None = None
        self._stage: str | None = None
        self._root: str | None = None

    def __enter__(self) -> HCSPlateWriter:
        zarr_format = zarr_format_of(self.version)
        if self.is_ozx:
            path = Path(self.final_store)
            if path.is_dir() or (path.exists() and not self.overwrite):
                raise StoreExistsError(f"{path} exists; pass overwrite=True to replace it")
            self._stage = tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.")
            store, overwrite = os.path.join(self._stage, "plate"), True
        else:
            store, overwrite = self.final_store, self.overwrite
        self._session = CollectionSession(store, zarr_format, PLATE,
                                          overwrite=overwrite and not self.resume,
                                          resume=self.resume, append=not overwrite)
        try:
            self._root = self._session.open()
        except BaseException:
            self._drop_stage()
            raise
        self.replacing = self._session.replacing
        return self

    @property
    def root(self) -> str:
        """The directory the plate is written under (a temporary when replacing)."""
        if self._root is None:
            raise RuntimeError("HCSPlateWriter is not open: use it in a with block")
        return self._root

    def write_well_image(self, multiscales: Any, row_name: str, column_name: str,
                         field_index: int = 0, acquisition_id: int | None = 0,
                         well_metadata: Any = None, **kwargs: Any) -> None:
        """Write one field (see :func:`write_hcs_well_image`; ``kwargs`` go to
        :func:`~ngff_gpu.to_ngff_zarr`)."""
        if self.resume:
            kwargs.setdefault("resume", True)
        write_hcs_well_image(self.root, multiscales, self.plate_metadata, row_name,
                             column_name, field_index=field_index,
                             acquisition_id=acquisition_id, well_metadata=well_metadata,
                             version=self.version, **kwargs)
        if self.on_field is not None:
            self.on_field(f"{row_name}/{column_name}/{field_index}")

    def written_wells(self) -> list[Any]:
        """The wells (declared, or listed by the plate before) that hold a field now,
        in the plate's order."""
        zarr_format = zarr_format_of(self.version)
        doc, _ = ome_document(self._session.previous if self._session else {}, "plate")
        before = {w["path"] for w in (doc or {}).get("wells", []) if isinstance(w, dict)}
        out = []
        for well in self.plate_metadata.wells:
            attrs = _group_attrs(self.root, well.path, zarr_format) or {}
            wdoc, _ = ome_document(attrs, "well")
            if (wdoc and wdoc.get("images")) or well.path in before:
                out.append(well)
        return out

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        session = self._session
        if session is None:
            return False
        try:
            if exc_type is not None:
                session.abort(exc)
                return False
            wells = self.written_wells()
            if not wells:
                session.abort(None)
                raise ArgumentError(f"{self.final_store}: no field image was written, so no "
                                    "plate metadata either (a plate lists at least one well)")
            session.finalize(plate_to_json(self.plate_metadata, self.version, wells))
            if self.is_ozx:
                zip_store(self.root, self.final_store, self.version)
            return False
        finally:
            self._session = None
            self._drop_stage()

    def _drop_stage(self) -> None:
        if self._stage is not None:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None
