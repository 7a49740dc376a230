"""OME-Zarr HCS plate and well metadata: ngff-zarr's dataclasses and their JSON.

``Plate(columns, rows, wells, version="0.4", acquisitions, field_count, name)`` and
``Well(images=[WellImage(path, acquisition)], version="0.4")`` have ngff-zarr 0.50's
fields and defaults (its ``ngff_zarr.v04.zarr_metadata``), so code that builds them
runs unchanged. They are mutable dataclasses, as ngff-zarr's are (tests and user code
set and append to their fields), and compare by value, also with ngff-zarr's instance of
the same class (:class:`~ngff_gpu.model.pretty.ValueEq`), so that a plate read by
ngff_gpu equals the one a user built with ngff-zarr's classes; :func:`check_plate`
validates one where it is used, and reads any object with the same attributes
(ngff-zarr's own instances too).

:func:`plate_to_json` / :func:`well_to_json` give the attributes of the plate's root
group and of a well group: at 0.4 the document sits at the top level with its own
``version``; from 0.5 it sits under ``ome`` beside ``ome.version``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

from ngff_gpu.errors import ArgumentError, ArgumentTypeError, InvalidStoreError
from ngff_gpu.model.pretty import ValueEq

#: The spec's pattern for a row, column or field name (and each part of a well path).
NAME = re.compile(r"^[A-Za-z0-9]+$")


@dataclass(eq=False)
class PlateAcquisition(ValueEq):
    """One acquisition of a plate (``id`` unique within the plate)."""

    id: int
    name: str | None = None
    maximumfieldcount: int | None = None
    description: str | None = None
    starttime: int | None = None
    endtime: int | None = None


@dataclass(eq=False)
class PlateColumn(ValueEq):
    """A column of the plate (``"1"``, ``"2"``...)."""

    name: str


@dataclass(eq=False)
class PlateRow(ValueEq):
    """A row of the plate (``"A"``, ``"B"``...)."""

    name: str


@dataclass(eq=False)
class PlateWell(ValueEq):
    """A well of the plate: its group ``path`` (``"A/1"``) and its row and column."""

    path: str
    rowIndex: int  # noqa: N815 - OME-NGFF name
    columnIndex: int  # noqa: N815 - OME-NGFF name


@dataclass(eq=False)
class Plate(ValueEq):
    """A plate's layout: rows, columns, the wells that hold images, acquisitions."""

    columns: list[PlateColumn]
    rows: list[PlateRow]
    wells: list[PlateWell]
    version: str = "0.4"
    acquisitions: list[PlateAcquisition] | None = None
    field_count: int | None = None
    name: str | None = None


@dataclass(eq=False)
class WellImage(ValueEq):
    """One field of view of a well: its group ``path`` and its acquisition."""

    path: str
    acquisition: int | None = None


@dataclass(eq=False)
class Well(ValueEq):
    """A well's fields of view."""

    images: list[WellImage]
    version: str = "0.4"


def _int(value: Any, what: str, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{what} must be an int, got {value!r}")
    if value < minimum:
        raise ArgumentError(f"{what} must be at least {minimum}, got {value}")


def _name(value: Any, what: str) -> None:
    if not isinstance(value, str) or not NAME.match(value):
        raise ArgumentError(f"{what} {value!r} must be letters and digits only (the spec's "
                            "pattern [A-Za-z0-9]+)")


def check_plate(plate: Any, strict: bool = False) -> None:
    """Check a plate layout before anything is written.

    ngff-zarr writes a well wherever its path says (it looks rows and columns up by
    name), so by default ``rowIndex``/``columnIndex`` are not checked against the path;
    ``strict`` checks them too (the CLI, which builds the plate itself).

    Raises
    ------
    ArgumentTypeError
        When ``plate`` lacks the fields of :class:`Plate`, or a field has the wrong type.
    ArgumentError
        For names outside the spec's pattern (which also keeps every path inside the
        plate), duplicates, well paths that are not ``ROW/COLUMN``, and with
        ``strict`` indices that do not match the names.
    """
    for attr in ("columns", "rows", "wells", "version"):
        if not hasattr(plate, attr):
            raise ArgumentTypeError(f"plate_metadata must be a Plate (rows, columns, wells, "
                                    f"version), got {type(plate).__name__}")
    rows = [r.name for r in plate.rows]
    cols = [c.name for c in plate.columns]
    for kind, names in (("row", rows), ("column", cols)):
        if not names:
            raise ArgumentError(f"the plate has no {kind}s")
        for n in names:
            _name(n, f"{kind} name")
        if len(set(names)) != len(names):
            raise ArgumentError(f"the plate's {kind} names repeat: {names}")
    paths = set()
    for w in plate.wells:
        _int(w.rowIndex, f"well {w.path!r} rowIndex")
        _int(w.columnIndex, f"well {w.path!r} columnIndex")
        parts = w.path.split("/") if isinstance(w.path, str) else []
        if len(parts) != 2:
            raise ArgumentError(f"well path {w.path!r} must be ROW/COLUMN")
        _name(parts[0], f"well {w.path!r}: row")
        _name(parts[1], f"well {w.path!r}: column")
        if strict and (w.rowIndex >= len(rows) or w.columnIndex >= len(cols)
                       or w.path != f"{rows[w.rowIndex]}/{cols[w.columnIndex]}"):
            raise ArgumentError(f"well path {w.path!r} does not match its rowIndex "
                                f"{w.rowIndex} and columnIndex {w.columnIndex} in the "
                                f"plate's rows {rows} and columns {cols}")
        if w.path in paths:
            raise ArgumentError(f"well {w.path!r} is listed twice")
        paths.add(w.path)
    ids = [a.id for a in plate.acquisitions or []]
    for i in ids:
        _int(i, "acquisition id")
    if len(set(ids)) != len(ids):
        raise ArgumentError(f"acquisition ids repeat: {ids}")
    if plate.field_count is not None:
        _int(plate.field_count, "field_count", 1)


def plate_document(plate: Any, wells: list[Any] | None = None) -> dict[str, Any]:
    """The ``plate`` document (without its version) listing ``wells`` (default: all)."""
    doc: dict[str, Any] = {
        "columns": [{"name": c.name} for c in plate.columns],
        "rows": [{"name": r.name} for r in plate.rows],
        "wells": [{"path": w.path, "rowIndex": w.rowIndex, "columnIndex": w.columnIndex}
                  for w in (plate.wells if wells is None else wells)],
    }
    if plate.acquisitions:
        keys = ("name", "maximumfieldcount", "description", "starttime", "endtime")
        doc["acquisitions"] = [
            {"id": a.id, **{k: getattr(a, k) for k in keys if getattr(a, k) is not None}}
            for a in plate.acquisitions]
    if plate.field_count is not None:
        doc["field_count"] = plate.field_count
    if plate.name is not None:
        doc["name"] = plate.name
    return doc


def plate_to_json(plate: Any, version: str, wells: list[Any] | None = None) -> dict[str, Any]:
    """The root group's attributes of a plate at ``version``."""
    doc = plate_document(plate, wells)
    if version == "0.4":
        return {"plate": {**doc, "version": version}}
    return {"ome": {"version": version, "plate": doc}}


def well_to_json(images: list[WellImage], version: str) -> dict[str, Any]:
    """A well group's attributes at ``version``; an image without an acquisition
    records no ``acquisition`` key."""
    doc: dict[str, Any] = {"images": [
        {"path": im.path} if im.acquisition is None
        else {"path": im.path, "acquisition": im.acquisition} for im in images]}
    if version == "0.4":
        return {"well": {**doc, "version": version}}
    return {"ome": {"version": version, "well": doc}}


def ome_document(attrs: dict[str, Any], key: str) -> tuple[dict[str, Any] | None, str | None]:
    """The ``key`` document (``plate`` or ``well``) in group attributes and its version
    (from ``ome.version`` from 0.5, from the document at 0.4); (None, None) if absent."""
    ome = attrs.get("ome")
    if isinstance(ome, dict) and isinstance(ome.get(key), dict):
        version = ome.get("version")
        return ome[key], version if isinstance(version, str) else None
    doc = attrs.get(key)
    if isinstance(doc, dict):
        version = doc.get("version", "0.4")
        return doc, version if isinstance(version, str) else "0.4"
    return None, None


def plate_from_json(doc: dict[str, Any], version: str, where: str) -> Plate:
    """A :class:`Plate` from a stored plate document.

    A document without ``rows``, ``columns`` or ``wells`` (which the schema requires,
    so ``validate=True`` refuses it first) reads, as ngff-zarr reads it, with that list
    empty, and a ``UserWarning`` naming the key.

    Raises
    ------
    InvalidStoreError
        Naming ``where`` and the key, for rows, columns or wells that are not a list of
        objects.
    """
    def entries(key: str) -> list[dict[str, Any]]:
        value = doc.get(key)
        if value is None:
            warnings.warn(f"{where}: the plate document has no {key!r} (the OME-Zarr plate "
                          f"schema requires it); read with no {key}", UserWarning,
                          stacklevel=4)
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise InvalidStoreError(f"{where}: plate.{key} must be a list of objects, "
                                    f"got {value!r:.60}")
        return value

    try:
        acqs = doc.get("acquisitions")
        return Plate(
            columns=[PlateColumn(name=str(c["name"])) for c in entries("columns")],
            rows=[PlateRow(name=str(r["name"])) for r in entries("rows")],
            wells=[PlateWell(path=str(w["path"]), rowIndex=int(w["rowIndex"]),
                             columnIndex=int(w["columnIndex"])) for w in entries("wells")],
            version=version,
            acquisitions=None if not isinstance(acqs, list) else [
                PlateAcquisition(**{k: a.get(k) for k in (
                    "id", "name", "maximumfieldcount", "description", "starttime", "endtime")})
                for a in acqs if isinstance(a, dict) and isinstance(a.get("id"), int)],
            field_count=doc.get("field_count") if isinstance(doc.get("field_count"), int)
            else None,
            name=doc.get("name") if isinstance(doc.get("name"), str) else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidStoreError):
            raise
        raise InvalidStoreError(f"{where}: malformed plate metadata ({exc!r})") from exc


def well_from_json(doc: dict[str, Any], version: str, where: str) -> Well:
    """A :class:`Well` from a stored well document.

    Raises
    ------
    InvalidStoreError
        For a document without a list of images, or an image without a path.
    """
    images = doc.get("images")
    if not isinstance(images, list):
        raise InvalidStoreError(f"{where}: well.images must be a list, got {images!r:.60}")
    out = []
    for i, im in enumerate(images):
        if not isinstance(im, dict) or not isinstance(im.get("path"), str):
            raise InvalidStoreError(f"{where}: well.images[{i}] has no path")
        acq = im.get("acquisition")
        out.append(WellImage(path=im["path"], acquisition=acq if isinstance(acq, int) else None))
    return Well(images=out, version=version)
