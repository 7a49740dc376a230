"""Several images in one store: the ``bioformats2raw.layout`` container (layout 3).

What OME-Zarr (the "bf2raw" transitional layout) and bioformats2raw define:

* the root group's attributes hold ``bioformats2raw.layout: 3`` (at 0.4 at the top
  level, from 0.5 under ``ome`` beside ``ome.version``);
* the images are the groups ``0/``, ``1/``, ... each a complete OME-Zarr image;
* the group ``OME/`` lists them in ``series`` (same places) and holds
  ``METADATA.ome.xml``, an OME-XML document with one ``Image`` per series, in order.

Order of writes (:class:`~ngff_gpu.io.collection.CollectionSession`): the root with the
in-progress marker, each series by :func:`~ngff_gpu.to_ngff_zarr` in its own session
(its OME metadata last, resumable), then ``OME/`` (``METADATA.ome.xml``, then its
``series``), then the root's layout attribute last. A root with the layout attribute
is complete. The OME-XML is made from what the series groups hold once they are all
written (so a resumed write describes series an earlier run wrote); it is omitted when
a series has a dtype OME-XML has no type for (64-bit integers).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import numpy as np
import zarr

from ngff_gpu.errors import ArgumentError, ArgumentTypeError, InvalidStoreError
from ngff_gpu.io.collection import CONTAINER, CollectionSession
from ngff_gpu.io.containers import series_paths
from ngff_gpu.io.group import open_group
from ngff_gpu.io.reader import from_ngff_zarr
from ngff_gpu.io.session import IN_PROGRESS_ATTR
from ngff_gpu.io.validate import validate_store
from ngff_gpu.io.write_api import to_ngff_zarr
from ngff_gpu.model.multiscales import Multiscales

LAYOUT = 3
OME_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
#: numpy dtype -> OME-XML ``Pixels/@Type`` (the types the 2016-06 schema has).
OME_TYPES = {"int8": "int8", "int16": "int16", "int32": "int32", "uint8": "uint8",
             "uint16": "uint16", "uint32": "uint32", "float32": "float", "float64": "double",
             "bool": "bit"}
#: OME-Zarr (UDUNITS) length units -> OME-XML ``UnitsLength`` symbols.
OME_LENGTH_UNITS = {"meter": "m", "centimeter": "cm", "millimeter": "mm", "micrometer": "µm",
                    "nanometer": "nm", "picometer": "pm", "angstrom": "Å", "kilometer": "km",
                    "inch": "in", "foot": "ft", "yard": "yd", "mile": "mi"}
OME_TIME_UNITS = {"second": "s", "millisecond": "ms", "microsecond": "µs", "nanosecond": "ns",
                  "minute": "min", "hour": "h"}

#: The OME-Zarr versions collections are written at (0.6 plates are not written yet).
SUPPORTED_VERSIONS = ("0.4", "0.5")


def container_attrs(version: str) -> dict[str, Any]:
    """The root's attributes of a container at ``version``."""
    if version == "0.4":
        return {"bioformats2raw.layout": LAYOUT}
    return {"ome": {"version": version, "bioformats2raw.layout": LAYOUT}}


def series_attrs(version: str, series: list[str]) -> dict[str, Any]:
    """The ``OME`` group's attributes listing ``series``."""
    if version == "0.4":
        return {"series": list(series)}
    return {"ome": {"version": version, "series": list(series)}}


def ome_xml(images: Sequence[Multiscales]) -> str | None:
    """A minimal OME-XML document with one ``Image`` per pyramid (its level 0), or
    None when a dtype has no OME-XML pixel type.

    Each ``Image`` has its name and ``Pixels`` (``DimensionOrder="XYZCT"``, the sizes,
    the type, the physical sizes where the axis has a length unit OME-XML knows, one
    ``Channel`` per channel and ``MetadataOnly``: the pixels are in the Zarr arrays).
    """
    ET.register_namespace("", OME_NS)
    root = ET.Element(f"{{{OME_NS}}}OME", {"Creator": "ngff-gpu"})
    for i, ms in enumerate(images):
        level0 = ms.images[0]
        dtype = np.dtype(level0.data.dtype)
        if dtype.name not in OME_TYPES:
            return None
        dims = list(level0.dims)
        size = {d: int(n) for d, n in zip(dims, level0.data.shape)}
        pixels = {"ID": f"Pixels:{i}", "DimensionOrder": "XYZCT", "Type": OME_TYPES[dtype.name],
                  "BigEndian": "false"}
        for d in "xyzct":
            pixels[f"Size{d.upper()}"] = str(size.get(d, 1))
        units = {a.name: a.unit for a in ms.metadata.axes if a.unit}
        for d in "xyz":
            if d in dims and units.get(d) in OME_LENGTH_UNITS:
                pixels[f"PhysicalSize{d.upper()}"] = repr(float(level0.scale.get(d, 1.0)))
                pixels[f"PhysicalSize{d.upper()}Unit"] = OME_LENGTH_UNITS[units[d]]
        image = ET.SubElement(root, f"{{{OME_NS}}}Image",
                              {"ID": f"Image:{i}", "Name": str(ms.metadata.name or f"series {i}")})
        px = ET.SubElement(image, f"{{{OME_NS}}}Pixels", pixels)
        for c in range(size.get("c", 1)):
            ET.SubElement(px, f"{{{OME_NS}}}Channel",
                          {"ID": f"Channel:{i}:{c}", "SamplesPerPixel": "1"})
        ET.SubElement(px, f"{{{OME_NS}}}MetadataOnly")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


class SeriesContainerWriter:
    """Write images as the series ``0/``, ``1/``, ... of one container, then its metadata.

    Use as a context manager; :meth:`series_store` is where series ``i`` goes (pass it
    to :func:`~ngff_gpu.to_ngff_zarr`, or call :meth:`write_series`). The container's
    metadata is written when the block ends without an error, and only if the series
    written are ``0 .. n-1``.

    Parameters
    ----------
    store : str or os.PathLike
        The container's local directory.
    version : str
        OME-Zarr version of the container and its series.
    overwrite : bool or "in-place"
        Replace an existing store (atomically unless ``"in-place"``).
    resume : bool
        Continue an interrupted write: complete series are kept, a partial one
        continues from its finished bricks.
    """

    def __init__(self, store: Any, *, version: str = "0.5", overwrite: bool | str = True,
                 resume: bool = False) -> None:
        if version not in SUPPORTED_VERSIONS:
            raise ArgumentError(f"version: unsupported OME-Zarr version {version!r}; use "
                                f"{', '.join(SUPPORTED_VERSIONS)}")
        self.version = version
        self.resume = resume
        self.overwrite = overwrite
        self.session = CollectionSession(store, 2 if version == "0.4" else 3, CONTAINER,
                                         overwrite=overwrite, resume=resume)
        self.target: str | None = None

    @property
    def replacing(self) -> bool:
        """True while an existing store is replaced through a temporary."""
        return self.session.replacing

    def __enter__(self) -> SeriesContainerWriter:
        self.target = self.session.open()
        return self

    def series_store(self, index: int) -> str:
        """The directory of series ``index`` (under a temporary when replacing)."""
        if self.target is None:
            raise RuntimeError("SeriesContainerWriter is not open: use it in a with block")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ArgumentError(f"series index must be a non-negative int, got {index!r}")
        return os.path.join(self.target, str(index))

    def write_series(self, index: int, multiscales: Multiscales, **kwargs: Any) -> None:
        """Write ``multiscales`` as series ``index`` (``kwargs`` go to
        :func:`~ngff_gpu.to_ngff_zarr`; ``resume`` follows the container's)."""
        kwargs.setdefault("resume", self.resume)
        kwargs.setdefault("overwrite", True)
        to_ngff_zarr(self.series_store(index), multiscales, version=self.version, **kwargs)

    def written(self) -> list[str]:
        """The series groups that hold a complete image, ``0 .. n-1`` in order."""
        out = []
        while True:
            path = self.series_store(len(out))
            try:
                from_ngff_zarr(path)
            except (ValueError, OSError):
                return out
            out.append(str(len(out)))

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None:
            self.session.abort(exc)
            return False
        try:
            series = self.written()
            extra = sorted(e for e in os.listdir(self.target) if e.isdigit()
                           and e not in series)
            if not series or extra:
                raise ArgumentError(
                    f"{self.session.store}: the series written must be 0, 1, ... without gaps "
                    f"(complete: {series or 'none'}; others: {extra})")
            xml = ome_xml([from_ngff_zarr(self.series_store(int(s))) for s in series])
            ome = os.path.join(self.target, "OME")
            group = zarr.open_group(ome, mode="a", zarr_format=self.session.zarr_format)
            if xml is not None:
                with open(os.path.join(ome, "METADATA.ome.xml"), "w", encoding="utf-8") as f:
                    f.write(xml)
            group.attrs.put(series_attrs(self.version, series))
            self.session.finalize(container_attrs(self.version))
        except BaseException as err:
            self.session.abort(err)
            raise
        return False


def to_bioformats2raw_zarr(store: Any, images: Sequence[Multiscales], *, version: str = "0.5",
                           overwrite: bool | str = True, resume: bool = False,
                           **kwargs: Any) -> None:
    """Write several pyramids as the series of one ``bioformats2raw.layout`` container.

    Parameters
    ----------
    store : str or os.PathLike
        The container's local directory.
    images : sequence of Multiscales
        Series ``0``, ``1``, ... in order.
    version : str
        OME-Zarr version of the container and its series.
    overwrite, resume : bool
        As for :func:`~ngff_gpu.to_ngff_zarr`, for the whole container.
    **kwargs
        Passed to :func:`~ngff_gpu.to_ngff_zarr` for each series.

    Raises
    ------
    ArgumentTypeError
        When ``images`` is not a non-empty sequence of ``Multiscales``.
    """
    if isinstance(images, Multiscales) or not isinstance(images, Sequence) or not images or \
            not all(isinstance(ms, Multiscales) for ms in images):
        raise ArgumentTypeError("images must be a non-empty sequence of Multiscales, got "
                                f"{type(images).__name__}")
    with SeriesContainerWriter(store, version=version, overwrite=overwrite,
                               resume=resume) as writer:
        for i, ms in enumerate(images):
            writer.write_series(i, ms, **kwargs)


def validate_container(store: Any) -> tuple[str, list[str]]:
    """Check that ``store`` is a complete, valid ``bioformats2raw.layout`` container.

    The layout with ``ome-zarr-models`` (0.4, 0.5), then every series as an image
    (:func:`~ngff_gpu.validate_store`).

    Returns
    -------
    str, list of str
        The OME-Zarr version and the series paths.

    Raises
    ------
    InvalidStoreError
        With the reason.
    """
    group = open_group(store)
    attrs = group.attrs.asdict()
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else {}
    if attrs.get(IN_PROGRESS_ATTR) == CONTAINER:
        raise InvalidStoreError(f"{store}: an unfinished container (resume continues it)")
    if ome.get("bioformats2raw.layout", attrs.get("bioformats2raw.layout")) != LAYOUT:
        raise InvalidStoreError(f"{store}: no bioformats2raw.layout {LAYOUT} attribute")
    version = ome.get("version", "0.4") if ome else "0.4"
    try:
        if version == "0.4":
            from ome_zarr_models.v04.bioformats2raw import BioFormats2Raw
        else:
            from ome_zarr_models.v05.bioformats2raw import BioFormats2Raw
        BioFormats2Raw.from_zarr(group)
    except ImportError as exc:  # pragma: no cover - the validate extra
        raise InvalidStoreError("validation needs ome-zarr-models") from exc
    except Exception as exc:  # noqa: BLE001 - any failure is an invalid container
        msg = " ".join(str(exc).strip().splitlines()[:6])
        raise InvalidStoreError(f"OME-Zarr {version} container validation failed: {msg}") from exc
    series = series_paths(group)
    if not series:
        raise InvalidStoreError(f"{store}: the container holds no series")
    for s in series:
        try:
            validate_store(group[s])
        except KeyError:
            raise InvalidStoreError(f"{store}: series {s!r} is missing") from None
    return version, series
