"""BigDataViewer inputs: the XML (``SpimData``) with its HDF5 or N5 file, or the HDF5 alone.

Layout (as BigDataViewer, BigStitcher and Fiji write it): view setups (a channel,
tile, angle or illumination each) times time points, each a pyramid of which the
finest level is read: ``t00000/s00/0/cells`` (HDF5, ``z, y, x``; unsigned 16-bit
pixels are stored as ``int16`` and read back as ``uint16``) or
``setup0/timepoint0/s0`` (N5, through :mod:`ngff_gpu.io.inputs.n5`).

Setups that differ only in their ``channel`` attribute form the ``c`` axis, time
points the ``t`` axis; setups of different tiles, angles or illuminations are
separate images (series, ``--series N``), as are setups of different sizes when
the XML has no attributes. Voxel size and unit from each setup's ``voxelSize``;
the origin from the translation of its registration at the first time point
when that registration is a scaling and a translation; channel names from the
XML's channel attributes. An HDF5 file given without its XML uses the XML of the
same name beside it when there is one.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import (
    InputImage,
    Stacked,
    arrange_tczyx,
    permuted,
    safe_name,
    stem,
    udunits,
)


@dataclass
class Setup:
    """One view setup of the XML (or found in the HDF5 file)."""

    id: int
    name: str
    size: tuple[int, int, int] | None = None  # x, y, z
    voxel: tuple[float, float, float] | None = None
    unit: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class SpimSequence:
    """What the XML (or the HDF5 file) says about the data."""

    loader: str  # "hdf5" or "n5"
    data_path: str
    setups: list[Setup]
    timepoints: list[int]
    channel_names: dict[str, str] = field(default_factory=dict)
    affines: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)


def is_bdv_xml(head: bytes) -> bool:
    """True when the start of a file is a BigDataViewer ``SpimData`` XML."""
    return b"<SpimData" in head[:4096]


def _text(node: Any, tag: str, default: str | None = None) -> str | None:
    child = node.find(tag)
    return child.text.strip() if child is not None and child.text else default


def _timepoints(node: Any, path: str) -> list[int]:
    if node is None:
        return [0]
    kind = node.get("type", "range")
    if kind == "range":
        return list(range(int(_text(node, "first", "0")), int(_text(node, "last", "0")) + 1))
    pattern = _text(node, "integerpattern", "") or ""
    out: list[int] = []
    for part in re.split(r"[,\s]+", pattern.strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)-(\d+)(?::(\d+))?", part)
        if m:
            out.extend(range(int(m[1]), int(m[2]) + 1, int(m[3] or 1)))
        elif part.isdigit():
            out.append(int(part))
        else:
            raise InputFormatError(f"{path}: time point pattern {pattern!r} is not understood")
    return out or [0]


def parse_xml(path: str) -> SpimSequence:
    """Read a BigDataViewer XML."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputFormatError(f"cannot read {path} as BigDataViewer XML: {exc}") from exc
    base = os.path.dirname(os.path.abspath(path))
    base_node = root.find("BasePath")
    if base_node is not None and base_node.text and base_node.get("type", "relative") == "relative":
        base = os.path.normpath(os.path.join(base, base_node.text.strip()))
    seq = root.find("SequenceDescription")
    loader = seq.find("ImageLoader") if seq is not None else None
    if loader is None:
        raise InputFormatError(f"{path}: no SequenceDescription/ImageLoader in this XML")
    fmt = loader.get("format", "")
    tag = {"bdv.hdf5": "hdf5", "bdv.n5": "n5"}.get(fmt)
    if tag is None:
        raise InputFormatError(f"{path}: image loader {fmt!r} is not supported (bdv.hdf5 and "
                               "bdv.n5 are)")
    node = loader.find(tag)
    if node is None or not node.text:
        raise InputFormatError(f"{path}: the {fmt} loader names no file")
    data = node.text.strip()
    if node.get("type", "relative") == "relative":
        data = os.path.normpath(os.path.join(base, data))
    setups = []
    channel_names = {}
    for vs in seq.iter("ViewSetup"):
        size = _text(vs, "size")
        voxel = vs.find("voxelSize")
        node_attrs = vs.find("attributes")
        attrs = {a.tag: (a.text or "").strip() for a in
                 (list(node_attrs) if node_attrs is not None else [])}
        setups.append(Setup(
            id=int(_text(vs, "id", "0")), name=_text(vs, "name") or _text(vs, "id", "0") or "0",
            size=tuple(int(v) for v in size.split()) if size else None,  # type: ignore[arg-type]
            voxel=tuple(float(v) for v in _text(voxel, "size", "").split()) or None  # type: ignore[arg-type]
            if voxel is not None else None,
            unit=_text(voxel, "unit") if voxel is not None else None, attrs=attrs))
    for attrs in seq.iter("Attributes"):
        if attrs.get("name") == "channel":
            for ch in attrs:
                cid, name = _text(ch, "id"), _text(ch, "name")
                if cid is not None and name:
                    channel_names[cid] = name
    affines = {}
    for reg in root.iter("ViewRegistration"):
        total = np.eye(4)
        for vt in reg.iter("ViewTransform"):
            values = [float(v) for v in (_text(vt, "affine", "") or "").split()]
            if len(values) == 12:
                total = total @ np.vstack([np.reshape(values, (3, 4)), [0, 0, 0, 1]])
        affines[(int(reg.get("timepoint", "0")), int(reg.get("setup", "0")))] = total
    return SpimSequence(tag, data, sorted(setups, key=lambda s: s.id),
                     _timepoints(seq.find("Timepoints"), path), channel_names, affines)


def _from_h5(path: str) -> SpimSequence:
    """The setups and time points found in a BigDataViewer HDF5 file (no XML)."""
    from ngff_gpu.io.inputs.hdf5_chunks import open_h5file

    with open_h5file(path) as f:
        ids = sorted(int(k[1:]) for k in f if re.fullmatch(r"s\d+", k))
        times = sorted(int(k[1:]) for k in f if re.fullmatch(r"t\d+", k))
        setups = []
        for i in ids:
            cells = f.get(f"t{times[0]:05d}/s{i:02d}/0/cells") if times else None
            size = tuple(int(n) for n in reversed(cells.shape)) if cells is not None else None
            setups.append(Setup(i, str(i), size))  # type: ignore[arg-type]
    return SpimSequence("hdf5", path, setups, times)


def _sibling_xml(h5: str) -> SpimSequence | None:
    """The XML of the same name beside ``h5`` when it points at ``h5``."""
    xml = os.path.splitext(h5)[0] + ".xml"
    if not os.path.isfile(xml):
        return None
    try:
        seq = parse_xml(xml)
    except InputFormatError:
        return None
    return seq if os.path.abspath(seq.data_path) == os.path.abspath(h5) else None


def groups(seq: SpimSequence) -> list[list[Setup]]:
    """The images of a sequence: setups grouped by everything but their channel."""
    if all(s.attrs for s in seq.setups):
        keyed: dict[tuple, list[Setup]] = {}
        for s in seq.setups:
            key = tuple(sorted((k, v) for k, v in s.attrs.items() if k != "channel"))
            keyed.setdefault(key, []).append(s)
        out = list(keyed.values())
    else:
        out = [list(seq.setups)]
    final = []
    for g in out:  # setups of different sizes cannot share a c axis
        sizes = {s.size for s in g}
        final.extend([g] if len(sizes) <= 1 else [[s] for s in g])
    return final


def _group_name(group: list[Setup]) -> str:
    attrs = {k: v for k, v in group[0].attrs.items() if k != "channel"}
    if attrs:
        return safe_name("_".join(f"{k}{v}" for k, v in sorted(attrs.items())))
    return safe_name(f"setup{group[0].id}" if len(group) == 1 else "setups")


def list_bdv(path: str) -> list[Any]:
    """The images (series) of a BigDataViewer XML or HDF5 file."""
    from ngff_gpu.io.inputs.tiff import SeriesInfo

    seq = _sequence(path)
    out = []
    for i, g in enumerate(groups(seq)):
        x, y, z = g[0].size or (0, 0, 0)
        shape = (len(seq.timepoints), len(g), z, y, x)
        out.append(SeriesInfo(i, _group_name(g), shape, "uint16", "TCZYX"))
    return out


def _sequence(path: str) -> SpimSequence:
    if path.lower().endswith(".xml"):
        return parse_xml(path)
    return _sibling_xml(path) or _from_h5(path)


def open_bdv_xml(path: str, dims: Sequence[str] | None, series: int | None = None) -> InputImage:
    """Open a BigDataViewer XML (with its HDF5 or N5 data)."""
    return _open(path, _sequence(path), dims, series)


def open_bdv_h5(path: str, dims: Sequence[str] | None, series: int | None = None) -> InputImage:
    """Open a BigDataViewer HDF5 file (its XML beside it is used when there is one)."""
    return _open(path, _sequence(path), dims, series)


def _part(seq: SpimSequence, setup: int, tp: int, where: str) -> Any:
    """The finest level of one setup at one time point, ``z, y, x``, read by region."""
    if seq.loader == "hdf5":
        from ngff_gpu.io.inputs.hdf5_chunks import H5Chunks, open_h5file

        name = f"/t{tp:05d}/s{setup:02d}/0/cells"
        with open_h5file(seq.data_path) as f:
            if name not in f:
                raise InputFormatError(f"{where}: {seq.data_path} has no dataset {name} (setup "
                                       f"{setup}, time point {tp})")
            stored = np.dtype(f[name].dtype)
        view = np.uint16 if stored == np.int16 else None  # BDV's unsigned 16-bit
        return H5Chunks(seq.data_path, name, view=view)
    from ngff_gpu.io.inputs.n5 import open_n5_array

    arr = open_n5_array(seq.data_path, f"setup{setup}/timepoint{tp}/s0")
    return permuted(arr, [2, 1, 0], f"{seq.data_path}:setup{setup}/timepoint{tp}/s0")


def _open(path: str, seq: SpimSequence, dims: Sequence[str] | None,
          series: int | None) -> InputImage:
    from ngff_gpu.io.inputs.tiff import series_listing

    if not os.path.exists(seq.data_path):
        raise InputFormatError(f"{path}: its data file {seq.data_path} does not exist")
    images = groups(seq)
    if series is None and len(images) > 1:
        raise InputFormatError(
            f"{path} holds {len(images)} images (setups of different tiles, angles or "
            f"illuminations: {series_listing(list_bdv(path))}); choose one with --series N, "
            "or --series all")
    index = series or 0
    if not 0 <= index < len(images):
        raise InputFormatError(f"{path} has {len(images)} images; --series {index} does not exist")
    group = images[index]
    parts = {(it, ic): _part(seq, s.id, tp, path)
             for it, tp in enumerate(seq.timepoints) for ic, s in enumerate(group)}
    first = parts[(0, 0)]
    inner = tuple(int(n) for n in first.shape)
    for key, p in parts.items():
        if tuple(p.shape) != inner or p.dtype != first.dtype:
            raise InputFormatError(f"{path}: setup {group[key[1]].id} at time point "
                                   f"{seq.timepoints[key[0]]} is {tuple(p.shape)} {p.dtype}, "
                                   f"the first is {inner} {first.dtype}")
    lead = (len(seq.timepoints), len(group))
    stack = Stacked({k: (p.region_array() if hasattr(p, "region_array") else p)
                     for k, p in parts.items()}, lead, inner, first.dtype)
    data: Any = stack.region_array(path, first.chunks)
    scale: dict[str, float] = {}
    units: dict[str, str] = {}
    translation: dict[str, float] = {}
    s0 = group[0]
    if s0.voxel and len(s0.voxel) == 3:
        unit = udunits(s0.unit or "") if s0.unit else None
        for d, v in zip("xyz", s0.voxel):
            if v > 0:
                scale[d] = v
                if unit:
                    units[d] = unit
        affine = seq.affines.get((seq.timepoints[0], s0.id))
        if affine is not None and np.allclose(affine[:3, :3], np.diag(np.diag(affine[:3, :3]))):
            translation = {d: float(affine[i, 3]) for i, d in enumerate("xyz")}
    names = [seq.channel_names.get(s.attrs.get("channel", ""), "") for s in group]
    omero = {"channels": [{"label": n} for n in names]} if all(names) and names else None
    data, guessed, scale, translation, units = arrange_tczyx(data, dims, path, scale,
                                                             translation, units)
    name = stem(path) if len(images) == 1 else f"{stem(path)}_{_group_name(group)}"
    kind = f"BigDataViewer {'HDF5' if seq.loader == 'hdf5' else 'N5'}"
    if len(images) > 1:
        kind += f" image {index}"
    return InputImage(data=data, dims=guessed, scale=scale or None,
                      translation=translation or None, units=units or None,
                      name=safe_name(name), omero=omero, kind=kind,
                      paths=[path, seq.data_path] if seq.data_path != path else [path])
