"""Several images in one ``bioformats2raw.layout`` container: written by
``to_bioformats2raw_zarr`` and ``convert --series all``, validated with ome-zarr-models
(and its OME-XML with the OME schema, through ome-types), navigated by ngff-zarr,
ome-zarr-py and our ``from_ngff_zarr``; an interrupted container is resumed."""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import ngff_zarr
import numpy as np
import ome_types
import pytest
import tifffile
import zarr
from cli_run import cli

import ngff_gpu as nz
from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.io.bioformats2raw import SeriesContainerWriter, to_bioformats2raw_zarr


def attrs_of(group_dir: Path) -> dict:
    if (group_dir / "zarr.json").exists():
        return json.loads((group_dir / "zarr.json").read_text())["attributes"]
    return json.loads((group_dir / ".zattrs").read_text())


def images(rng) -> list[nz.Multiscales]:
    a = rng.integers(0, 255, (4, 32, 32), dtype=np.uint8)
    b = rng.integers(0, 60000, (2, 24, 20), dtype=np.uint16)
    c = rng.random((40, 30)).astype(np.float32)
    return [
        nz.to_multiscales(nz.to_ngff_image(a, dims=["z", "y", "x"], name="first",
                                           scale={"z": 2.0, "y": 0.5, "x": 0.5},
                                           axes_units={"z": "micrometer", "y": "micrometer",
                                                       "x": "micrometer"}), [2]),
        nz.to_multiscales(nz.to_ngff_image(b, dims=["c", "y", "x"], name="second"), [2]),
        nz.to_multiscales(nz.to_ngff_image(c, dims=["y", "x"], name="third"), [2]),
    ]


def validate_container(root: Path, version: str) -> None:
    if version == "0.4":
        from ome_zarr_models.v04.bioformats2raw import BioFormats2Raw
    else:
        from ome_zarr_models.v05.bioformats2raw import BioFormats2Raw
    model = BioFormats2Raw.from_zarr(zarr.open_group(str(root), mode="r"))
    n = len(model.image_paths)
    assert n >= 1
    for i in range(n):
        assert nz.validate_store(str(root / str(i))) == version


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_container_written_validated_and_navigated(tmp_path, rng, version):
    ims = images(rng)
    root = tmp_path / "multi.ome.zarr"
    to_bioformats2raw_zarr(str(root), ims, version=version)
    validate_container(root, version)
    top, ome = attrs_of(root), attrs_of(root / "OME")
    if version == "0.4":
        assert top == {"bioformats2raw.layout": 3} and ome == {"series": ["0", "1", "2"]}
    else:
        assert top == {"ome": {"version": "0.5", "bioformats2raw.layout": 3}}
        assert ome == {"ome": {"version": "0.5", "series": ["0", "1", "2"]}}
    # the OME-XML is valid against the OME schema and describes every series
    xml = (root / "OME" / "METADATA.ome.xml").read_text()
    ome_types.validate_xml(xml)
    doc = ome_types.from_xml(xml)
    assert [im.name for im in doc.images] == ["first", "second", "third"]
    px = doc.images[0].pixels
    assert (px.size_x, px.size_y, px.size_z, px.size_c, px.type.value) == (32, 32, 4, 1, "uint8")
    assert (px.physical_size_z, px.physical_size_x_unit.value) == (2.0, "µm")
    assert doc.images[1].pixels.size_c == 2 and len(doc.images[1].pixels.channels) == 2
    assert doc.images[2].pixels.type.value == "float"
    for i, ms in enumerate(ims):
        ours = nz.from_ngff_zarr(f"{root}/{i}")
        np.testing.assert_array_equal(np.asarray(ours.images[0].data), np.asarray(ms.images[0].data))
        theirs = ngff_zarr.from_ngff_zarr(f"{root}/{i}")
        np.testing.assert_array_equal(np.asarray(theirs.images[1].data), np.asarray(ms.images[1].data))
    # the root of several series: both name the paths to open (ngff-zarr 0.50's rule)
    with pytest.raises(ArgumentError, match="bioformats2raw container with 3 images"):
        nz.from_ngff_zarr(str(root))
    with pytest.raises(ValueError, match="bioformats2raw container with 3 images"):
        ngff_zarr.from_ngff_zarr(str(root))
    # ome-zarr-py finds the series through the OME-XML and reads each
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader
    from ome_zarr.utils import find_multiscales

    found = find_multiscales(root)
    assert [(Path(p).name, name) for p, name, _ in found] == [("0", "first"), ("1", "second"),
                                                              ("2", "third")]
    node = next(iter(Reader(parse_url(str(root / "1")))()))
    np.testing.assert_array_equal(np.asarray(node.data[0]), np.asarray(ims[1].images[0].data))


def test_single_series_root_opens_the_series(tmp_path, rng):
    ms = images(rng)[:1]
    root = tmp_path / "one.ome.zarr"
    to_bioformats2raw_zarr(str(root), ms)
    for read in (nz.from_ngff_zarr(str(root)), ngff_zarr.from_ngff_zarr(str(root))):
        np.testing.assert_array_equal(np.asarray(read.images[0].data), np.asarray(ms[0].images[0].data))
    # a container without the OME group: the numbered groups are the series
    bare = tmp_path / "bare.zarr"
    g = zarr.open_group(str(bare), mode="w", zarr_format=2)
    g.attrs["bioformats2raw.layout"] = 3
    with pytest.raises(InvalidStoreError, match="no image subgroups were found"):
        nz.from_ngff_zarr(str(bare))


def test_64_bit_series_has_no_ome_xml(tmp_path, rng):
    data = rng.integers(0, 2**40, (16, 16), dtype=np.int64)
    root = tmp_path / "big.ome.zarr"
    to_bioformats2raw_zarr(str(root), [nz.to_multiscales(nz.to_ngff_image(data), [2])])
    assert not (root / "OME" / "METADATA.ome.xml").exists()  # OME-XML has no int64 type
    validate_container(root, "0.5")


class Boom(Exception):
    pass


def test_interrupted_container_resumes(tmp_path, rng):
    ims = images(rng)
    data = np.asarray(ims[2].images[0].data)

    def fail(block, block_info=None):
        raise Boom("source failed")

    bad = nz.to_multiscales(nz.to_ngff_image(da.from_array(data, chunks=10).map_blocks(
        fail, dtype=data.dtype), dims=["y", "x"], name="third"), [2])
    root = tmp_path / "multi.ome.zarr"
    with pytest.raises(Boom):
        to_bioformats2raw_zarr(str(root), ims[:2] + [bad])
    assert attrs_of(root) == {"ngff_gpu_in_progress": "bioformats2raw"}  # no layout: incomplete
    assert not (root / "OME").exists()
    with pytest.raises(InvalidStoreError):
        nz.from_ngff_zarr(str(root))
    first = {p: p.stat().st_mtime_ns for p in (root / "0").rglob("*") if p.is_file()}
    to_bioformats2raw_zarr(str(root), ims, resume=True)
    assert {p: p.stat().st_mtime_ns for p in first} == first  # series 0 was kept
    validate_container(root, "0.5")
    np.testing.assert_array_equal(np.asarray(nz.from_ngff_zarr(f"{root}/2").images[0].data), data)
    # gaps are refused: series 0 and 2 without 1
    with pytest.raises(ArgumentError, match="without gaps"):
        with SeriesContainerWriter(str(tmp_path / "gap.ome.zarr")) as w:
            w.write_series(0, ims[0])
            w.write_series(2, ims[2])
    assert "bioformats2raw.layout" not in json.dumps(attrs_of(tmp_path / "gap.ome.zarr"))


def test_cli_series_all_and_refusals(tmp_path, rng):
    a = rng.integers(0, 255, (4, 16, 16), dtype=np.uint8)
    b = rng.integers(0, 60000, (2, 24, 20), dtype=np.uint16)
    path = tmp_path / "two.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as w:
        w.write(a, metadata={"axes": "ZYX", "Name": "first"})
        w.write(b, metadata={"axes": "CYX", "Name": "second"})
    out = tmp_path / "two.ome.zarr"
    res = cli("convert", path, out, "--series", "all", "--version", "0.4")
    assert res.returncode == 0, res.stderr
    assert f"wrote {out} (2 series" in res.stdout
    validate_container(out, "0.4")
    assert [i.name for i in ome_types.from_xml((out / "OME" / "METADATA.ome.xml").read_text()).images] \
        == ["first", "second"]
    np.testing.assert_array_equal(np.asarray(nz.from_ngff_zarr(f"{out}/1").images[0].data), b)
    for args, match in ((["--labels", str(path)], "not with --series all"),
                        ([], "already exists")):
        res = cli("convert", path, out, "--series", "all", *args)
        assert res.returncode == 1 and res.stderr.count("\n") == 1 and match in res.stderr, res.stderr
    res = cli("convert", path, tmp_path / "two.ozx", "--series", "all")
    assert res.returncode == 1 and "container directory" in res.stderr
    assert not (tmp_path / "two.ozx").exists()
    res = cli("convert", path, out, "--series", "all", "--overwrite", "-q")
    assert res.returncode == 0, res.stderr
    validate_container(out, "0.5")
