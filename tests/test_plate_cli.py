"""``ngff-gpu plate``: field images to an HCS plate from a pattern or a CSV list; every bad
input is one error line before anything is written; ``--resume`` finishes a plate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from cli_run import cli

import ngff_gpu as nz

pytestmark = pytest.mark.filterwarnings("ignore:'version' field not specified")


def make_fields(folder: Path, rng, wells=("A01", "A03", "B01"), fields=(0, 1)) -> dict:
    folder.mkdir()
    out = {}
    for w in wells:
        for f in fields:
            data = rng.integers(0, 4000, (2, 40, 48), dtype=np.uint16)
            tifffile.imwrite(folder / f"{w}_f{f}.tif", data, metadata={"axes": "CYX"})
            out[(w[0], str(int(w[1:])), f)] = data
    return out


def fails(res, match: str) -> None:
    assert res.returncode != 0, res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ngff-gpu: error: ") and match in lines[0], \
        res.stderr


def test_plate_from_pattern(tmp_path, rng):
    data = make_fields(tmp_path / "imgs", rng)
    out = tmp_path / "screen.ome.zarr"
    files = sorted((tmp_path / "imgs").iterdir())
    res = cli("plate", out, "--pattern", "{row}{col}_f{field}.tif", *files,
              "--rows", "A-H", "--columns", "1-12", "--jobs", "3")
    assert res.returncode == 0, res.stderr
    assert "wrote A/3/1 from" in res.stdout and "3 wells, 6 fields" in res.stdout
    plate = nz.from_hcs_zarr(str(out), validate=True)
    assert plate.name == "screen" and len(plate.rows) == 8 and len(plate.columns) == 12
    assert [w.path for w in plate.wells] == ["A/1", "A/3", "B/1"]
    assert [(w.rowIndex, w.columnIndex) for w in plate.wells] == [(0, 0), (0, 2), (1, 0)]
    for (r, c, f), pixels in data.items():
        got = plate.get_well(r, c).get_image(f)
        np.testing.assert_array_equal(np.asarray(got.images[0].data), pixels)
    info = cli("info", out)
    assert info.returncode == 0 and "A/3: fields 0, 1" in info.stdout
    val = cli("validate", out)
    assert val.returncode == 0 and "complete OME-Zarr 0.5 plate (3 wells, 6 fields)" in val.stdout
    assert val.stderr == ""


def test_plate_from_csv_at_04(tmp_path, rng):
    data = make_fields(tmp_path / "imgs", rng, wells=("B02",), fields=(1, 2))
    listing = tmp_path / "fields.csv"
    listing.write_text("row,column,field,path,acquisition\n"
                       "B,02,1,imgs/B02_f1.tif,3\nB,2,2,imgs/B02_f2.tif,3\n")
    out = tmp_path / "p.ome.zarr"
    res = cli("plate", out, "--list", listing, "--version", "0.4", "-q", "--name", "csv")
    assert res.returncode == 0 and res.stdout == "", res.stderr
    plate = nz.from_hcs_zarr(str(out), validate=True)
    assert plate.metadata.version == "0.4" and plate.name == "csv"
    assert [a.id for a in plate.acquisitions] == [3]
    well = plate.get_well("B", "2")
    assert [(im.path, im.acquisition) for im in well.images] == [("1", 3), ("2", 3)]
    np.testing.assert_array_equal(np.asarray(well.get_image(1).images[0].data), data[("B", "2", 2)])


def test_plate_refusals_write_nothing(tmp_path, rng):
    make_fields(tmp_path / "imgs", rng, wells=("A01",))
    files = sorted((tmp_path / "imgs").iterdir())
    out = tmp_path / "p.ome.zarr"
    (tmp_path / "imgs" / "notes.txt").write_text("x")
    (tmp_path / "imgs" / "A01_f7.tif").write_text("not a tiff")
    cases = [
        (["--pattern", "{row}{col}_f{field}.tif", *files, tmp_path / "imgs" / "notes.txt"],
         "does not match --pattern"),
        (["--pattern", "{row}_f{field}.tif", *files], "needs {col}"),
        (["--pattern", "{row}{col}_f{field}.tif", files[0], files[0]], "are both field 0"),
        (["--pattern", "{row}{col}_f{field}.tif", *files, "--rows", "B-C"], "lacks A"),
        (["--pattern", "{row}{col}_f{field}.tif", *files, tmp_path / "imgs" / "A01_f7.tif"],
         "A01_f7.tif"),
        (["--pattern", "{row}{col}_f{field}.tif", *files, "--version", "0.4", "--chunks-per-shard",
          "2"], "sharding"),
    ]
    for args, match in cases:
        fails(cli("plate", out, *args), match)
        assert not out.exists(), args
    ok = cli("plate", out, "--pattern", "{row}{col}_f{field}.tif", *files, "-q")
    assert ok.returncode == 0, ok.stderr
    fails(cli("plate", out, "--pattern", "{row}{col}_f{field}.tif", *files), "already exists")


def test_plate_resume_from_cli(tmp_path, rng):
    """A plate whose second field fails to decode stops with one error line and no plate
    metadata; ``plate --resume`` with the repaired file keeps the first field and writes
    the rest."""
    data = make_fields(tmp_path / "imgs", rng, wells=("A01", "B01"), fields=(0,))
    files = sorted((tmp_path / "imgs").iterdir())
    bad = tmp_path / "imgs" / "B01_f0.tif"
    good = bad.read_bytes()
    tifffile.imwrite(bad, data[("B", "1", 0)], metadata={"axes": "CYX"}, compression="zlib")
    with tifffile.TiffFile(bad) as tif:
        offset, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    raw = bytearray(bad.read_bytes())
    raw[offset:offset + count] = b"\xff" * count  # the header reads, the pixels do not
    bad.write_bytes(bytes(raw))
    out = tmp_path / "p.ome.zarr"
    args = ("plate", out, "--pattern", "{row}{col}_f{field}.tif", *files, "--jobs", "1")
    fails(cli(*args), "cannot decode")
    assert "ome" not in json.loads((out / "zarr.json").read_text())["attributes"]
    kept = {p: p.stat().st_mtime_ns for p in (out / "A" / "1" / "0").rglob("*") if p.is_file()}
    assert kept
    bad.write_bytes(good)
    res = cli(*args, "--resume", "-q")
    assert res.returncode == 0, res.stderr
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    read = nz.from_hcs_zarr(str(out), validate=True)
    assert [w.path for w in read.wells] == ["A/1", "B/1"]
    np.testing.assert_array_equal(np.asarray(read.get_well("B", "1").get_image(0).images[0].data),
                                  data[("B", "1", 0)])
    assert json.loads((out / "zarr.json").read_text())["attributes"]["ome"]["plate"]["name"] == "p"
