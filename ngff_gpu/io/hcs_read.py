"""Read HCS plates: ``from_hcs_zarr``, ``HCSPlate`` and ``HCSWell`` (ngff-zarr's names).

A plate is read lazily: the plate document at once, a well's document when the well is
first asked for, a field's pyramid (:func:`~ngff_gpu.from_ngff_zarr`, lazy dask arrays)
when the field is. Wells and images are kept in bounded least-recently-used caches
(500 wells per plate, 100 images per well by default, as ngff-zarr's). Any store zarr
opens (a directory, a URL, a zarr store or group) and ``.ozx`` archives are read.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any

import zarr

from ngff_gpu.errors import InvalidStoreError
from ngff_gpu.io.group import open_group
from ngff_gpu.io.reader import from_ngff_zarr
from ngff_gpu.io.session import IN_PROGRESS_ATTR
from ngff_gpu.model.metadata import RFC3_VERSION
from ngff_gpu.model.plate import NAME, Plate, ome_document, plate_from_json, well_from_json
from ngff_gpu.model.schema import validate_document

WELL_CACHE_SIZE = 500
IMAGE_CACHE_SIZE = 100


class LRUCache:
    """A mapping that keeps the ``max_size`` entries used last."""

    def __init__(self, max_size: int = 100) -> None:
        self.max_size = max_size
        self.cache: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        """The value of ``key`` (now the most recent), or None."""
        if key not in self.cache:
            return None
        self.cache.move_to_end(key)
        return self.cache[key]

    def set(self, key: Any, value: Any) -> None:
        """Store ``value``, evicting the least recently used entry when full."""
        if key in self.cache:
            self.cache.move_to_end(key)
        elif len(self.cache) >= self.max_size:
            self.cache.popitem(last=False)
        self.cache[key] = value

    def __contains__(self, key: Any) -> bool:
        return key in self.cache

    def __getitem__(self, key: Any) -> Any:
        if key not in self.cache:
            raise KeyError(key)
        return self.get(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.set(key, value)

    def clear(self) -> None:
        """Forget every entry."""
        self.cache.clear()


def _root(store: Any) -> zarr.Group:
    return store if isinstance(store, zarr.Group) else open_group(store)


class HCSWell:
    """One well of a plate: its fields of view (``images``) and their pyramids."""

    def __init__(self, store: Any, well_path: str, well_metadata: Any,
                 well_group_metadata: Any, image_cache_size: int | None = None) -> None:
        self.store = store
        self.path = well_path
        self.plate_metadata = well_metadata
        self.metadata = well_group_metadata
        self._images = LRUCache(image_cache_size or IMAGE_CACHE_SIZE)

    @classmethod
    def from_store(cls, store: Any, well_path: str, well_metadata: Any,
                   image_cache_size: int | None = None) -> HCSWell:
        """Read the well at ``well_path`` of the plate in ``store``.

        Raises
        ------
        InvalidStoreError
            When the well group is missing or its ``well`` document is malformed.
        """
        root = _root(store)
        where = f"{store}/{well_path}"
        try:
            group = root[well_path]
        except KeyError:
            raise InvalidStoreError(f"{where}: the well group is missing") from None
        doc, version = ome_document(group.attrs.asdict(), "well")
        well = well_from_json(doc if doc is not None else {"images": []}, version or "0.4", where)
        return cls(root, well_path, well_metadata, well, image_cache_size)

    @property
    def row_index(self) -> int:
        """The well's row index in the plate."""
        return self.plate_metadata.rowIndex

    @property
    def column_index(self) -> int:
        """The well's column index in the plate."""
        return self.plate_metadata.columnIndex

    @property
    def images(self) -> list[Any]:
        """The well's fields of view (``WellImage``)."""
        return self.metadata.images

    def get_image(self, field_index: int = 0) -> Any:
        """The pyramid of field ``field_index`` (a position in ``images``), or None.

        Raises
        ------
        InvalidStoreError
            When the field's path is not a plain name below the well group (it could
            point outside the plate), or the field is not a complete image.
        """
        if field_index < 0 or field_index >= len(self.metadata.images):
            return None
        path = self.metadata.images[field_index].path
        if not isinstance(path, str) or not NAME.match(path):
            raise InvalidStoreError(f"{self.store}/{self.path}: image path {path!r} must be a "
                                    "relative path below the well group (letters and digits)")
        key = f"{self.path}/{path}"
        if key not in self._images:
            self._images[key] = from_ngff_zarr(_root(self.store)[key])
        return self._images[key]

    def get_image_by_acquisition(self, acquisition_id: int, field_index: int = 0) -> Any:
        """The ``field_index``-th field of acquisition ``acquisition_id``, or None."""
        matching = [i for i, im in enumerate(self.metadata.images)
                    if im.acquisition == acquisition_id]
        if field_index < 0 or field_index >= len(matching):
            return None
        return self.get_image(matching[field_index])


class HCSPlate:
    """A plate: its metadata (``Plate``) and its wells, read on demand.

    ``HCSPlate(None, plate_metadata)`` holds metadata only (for :func:`to_hcs_zarr`).
    """

    def __init__(self, store: Any, plate_metadata: Plate, well_cache_size: int | None = None,
                 image_cache_size: int | None = None, validate: bool = False) -> None:
        self.store = store
        self.metadata = plate_metadata
        self.image_cache_size = image_cache_size
        self._validate = validate
        self._wells = LRUCache(well_cache_size or WELL_CACHE_SIZE)
        self._group: zarr.Group | None = store if isinstance(store, zarr.Group) else None

    @property
    def name(self) -> str | None:
        """The plate's name."""
        return self.metadata.name

    @property
    def rows(self) -> list[Any]:
        """The plate's rows."""
        return self.metadata.rows

    @property
    def columns(self) -> list[Any]:
        """The plate's columns."""
        return self.metadata.columns

    @property
    def wells(self) -> list[Any]:
        """The wells the plate lists (``PlateWell``)."""
        return self.metadata.wells

    @property
    def acquisitions(self) -> list[Any] | None:
        """The plate's acquisitions."""
        return self.metadata.acquisitions

    @property
    def field_count(self) -> int | None:
        """The plate's ``field_count``."""
        return self.metadata.field_count

    def get_well(self, row_name: str, column_name: str) -> HCSWell | None:
        """The well at ``row_name``/``column_name``, or None when the plate lists none."""
        path = f"{row_name}/{column_name}"
        listed = next((w for w in self.metadata.wells if w.path == path), None)
        if listed is None:
            return None
        if path not in self._wells:
            if self.store is None:
                raise InvalidStoreError("this HCSPlate holds metadata only (no store)")
            if self._group is None:
                self._group = _root(self.store)
            self._wells[path] = HCSWell.from_store(self._group, path, listed,
                                                   self.image_cache_size)
        return self._wells[path]

    def get_well_by_indices(self, row_index: int, column_index: int) -> HCSWell | None:
        """The well at row ``row_index`` and column ``column_index``, or None."""
        if not (0 <= row_index < len(self.rows) and 0 <= column_index < len(self.columns)):
            return None
        return self.get_well(self.rows[row_index].name, self.columns[column_index].name)


def validate_plate(group: zarr.Group, version: str) -> None:
    """Validate a plate: its document against the official plate schema of its version
    (bundled, offline), then its wells and their images (``ome-zarr-models`` for 0.4 and
    0.5; our checks for 0.6 and 0.9.dev1). A well the plate lists but the store does not
    hold yet (a plate being filled, as ngff-zarr's writers leave one) is not checked.

    Raises
    ------
    SchemaValidationError
        (a ``jsonschema.ValidationError``) for the schema's most relevant error.
    InvalidStoreError
        With the validator's reason; for a version it does not know.
    """
    validate_document(group.attrs.asdict(), "plate", str(group.store))
    if version in ("0.6", RFC3_VERSION):
        _validate_06(group, version)
        return
    try:
        if version == "0.4":
            from ome_zarr_models.v04.hcs import HCS
        elif version == "0.5":
            from ome_zarr_models.v05.hcs import HCS
        else:
            raise InvalidStoreError(f"{group.store}: ome-zarr-models cannot validate an "
                                    f"OME-Zarr {version} plate")
    except ImportError as exc:  # pragma: no cover - the validate extra
        raise InvalidStoreError("plate validation needs ome-zarr-models (pip install "
                                "ngff-gpu[validate])") from exc
    try:
        with warnings.catch_warnings():
            # from 0.5 a plate's version is ome.version (the spec); the validator warns
            # that the plate document has none of its own
            warnings.filterwarnings("ignore", message="'version' field not specified")
            HCS.from_zarr(group)
    except Exception as exc:  # noqa: BLE001 - any failure is an invalid plate
        msg = " ".join(str(exc).strip().splitlines()[:6])
        raise InvalidStoreError(f"OME-Zarr {version} plate validation failed: {msg}") from exc


def _validate_06(group: zarr.Group, version: str) -> None:
    """An OME-Zarr 0.6 or 0.9.dev1 plate (ome-zarr-models has no model for them yet):
    every listed well the store holds has a well document of the plate's version that
    the official well schema accepts, and every field it lists is a complete image of
    that version (:func:`~ngff_gpu.io.validate.validate_store`)."""
    from ngff_gpu.io.validate import validate_store

    doc, _ = ome_document(group.attrs.asdict(), "plate")
    for well in doc.get("wells", []) if isinstance(doc, dict) else []:
        path = well.get("path") if isinstance(well, dict) else None
        try:
            node = group[path]
        except (KeyError, TypeError):
            continue  # listed, not written yet
        attrs = node.attrs.asdict()
        wdoc, wversion = ome_document(attrs, "well")
        if not isinstance(wdoc, dict) or wversion != version:
            raise InvalidStoreError(f"{group.store}: well {path!r} holds no OME-Zarr {version} "
                                    f"well document (found version {wversion!r})")
        validate_document(attrs, "well", f"{group.store}/{path}")
        for image in wdoc.get("images", []):
            field = image.get("path") if isinstance(image, dict) else None
            try:
                found = validate_store(node[field])
            except (KeyError, TypeError):
                raise InvalidStoreError(f"{group.store}: field {path}/{field} listed in the "
                                        "well is missing") from None
            if found != version:
                raise InvalidStoreError(f"{group.store}: field {path}/{field} is OME-Zarr "
                                        f"{found} in a {version} plate")


def from_hcs_zarr(store: Any, validate: bool = False, well_cache_size: int | None = None,
                  image_cache_size: int | None = None) -> HCSPlate:
    """Open an HCS plate (ngff-zarr's signature).

    Parameters
    ----------
    store : str, pathlib.Path, zarr store or group, fsspec URL, or ``.ozx`` path
        The plate's root.
    validate : bool
        Validate the plate first (:func:`validate_plate`: the official plate schema,
        then its wells and images).
    well_cache_size, image_cache_size : int, optional
        How many wells (per plate) and images (per well) to keep opened.

    Returns
    -------
    HCSPlate

    Raises
    ------
    SchemaValidationError
        With ``validate``, for a plate document the official schema refuses.
    InvalidStoreError
        When the root has no plate document ("No plate metadata found"), is a plate
        still being written or interrupted, or the document is malformed.
    """
    root = open_group(store)
    attrs = root.attrs.asdict()
    doc, version = ome_document(attrs, "plate")
    if attrs.get(IN_PROGRESS_ATTR) == "plate" and doc is None:
        raise InvalidStoreError(f"{store}: an unfinished plate (being written, or interrupted: "
                                "HCSPlateWriter(resume=True) or 'ngff-gpu plate --resume' "
                                "continues it)")
    if doc is None:
        raise InvalidStoreError(f"{store}: No plate metadata found in store")
    if validate:
        validate_plate(root, version or "0.4")
    plate = HCSPlate(store, plate_from_json(doc, version or "0.4", str(store)), well_cache_size,
                     image_cache_size, validate=validate)
    plate._group = root  # opened once (an .ozx archive too)
    return plate
