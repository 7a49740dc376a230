"""The ``ngff-gpu`` CLI, driven through ``python -m ngff_gpu.cli`` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import zarr
from cli_run import cli

import ngff_gpu as nz
from ngff_gpu.cli import main


def assert_fails(res: subprocess.CompletedProcess, match: str, code: int = 1) -> None:
    """Exit ``code``, exactly one stderr line ``ngff-gpu: error: ...``, no traceback."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("ngff-gpu: error: "), lines[0]
    assert match in lines[0], lines[0]


def root_attrs(store: Path) -> dict:
    """The root group's attributes (0.5 ``zarr.json`` or 0.4 ``.zattrs``); {} if none."""
    if (store / "zarr.json").exists():
        return json.loads((store / "zarr.json").read_text()).get("attributes", {})
    if (store / ".zattrs").exists():
        return json.loads((store / ".zattrs").read_text())
    return {}


def assert_no_ome(store: Path) -> None:
    attrs = root_attrs(store)
    assert "ome" not in attrs and "multiscales" not in attrs, attrs


@pytest.fixture
def volume(rng) -> np.ndarray:
    return rng.integers(0, 4000, (6, 40, 36), dtype=np.uint16)


# -- each input kind ----------------------------------------------------------------------------


def test_convert_ome_tiff(tmp_path, volume):
    src = tmp_path / "cells.ome.tif"
    tifffile.imwrite(src, volume, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": 0.5, "PhysicalSizeYUnit": "µm",
        "PhysicalSizeZ": 2.0, "PhysicalSizeZUnit": "µm"})
    out = tmp_path / "cells.ome.zarr"
    res = cli("convert", src, out, "--chunks", "16", "--scale-factors", "2,4")
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout and "scale2/cells" in res.stdout
    assert nz.validate_store(str(out)) == "0.5"
    ms = nz.from_ngff_zarr(str(out))
    assert [a.unit for a in ms.metadata.axes] == ["micrometer"] * 3
    assert ms.images[0].scale == {"z": 2.0, "y": 0.5, "x": 0.5}
    assert ms.images[1].scale == {"z": 4.0, "y": 1.0, "x": 1.0}
    np.testing.assert_array_equal(ms.images[0].data.compute(), volume)
    window = root_attrs(out)["ome"]["omero"]["channels"][0]["window"]
    assert window["start"] < window["end"]


def test_convert_plain_tiff_quiet_v04_options(tmp_path, volume):
    src = tmp_path / "vol.tif"
    tifffile.imwrite(src, volume)
    out = tmp_path / "vol.ome.zarr"
    res = cli("convert", src, out, "-q", "--version", "0.4", "--method", "MEAN", "--codec",
              "GZIP", "--level", "3", "--chunks", "z=2,y=16,x=16", "--scale", "z=3,y=1,x=1",
              "--units", "nm", "--name", "v1", "--no-omero", "--memory-limit", "64MiB",
              "--device", "cpu", "--scale-factors", "z=1,y=2,x=2;z=1,y=4,x=4")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and res.stderr == ""
    assert nz.validate_store(str(out)) == "0.4"
    attrs = root_attrs(out)
    entry = attrs["multiscales"][0]
    assert "omero" not in attrs and entry["type"] == "mean"
    assert [d["path"] for d in entry["datasets"]] == ["scale0/v1", "scale1/v1", "scale2/v1"]
    arr = zarr.open_array(str(out / "scale2" / "v1"), mode="r")
    assert arr.shape == (6, 10, 9) and arr.chunks == (2, 10, 9)
    assert entry["axes"][0]["unit"] == "nanometer"


def test_convert_png_rgb_and_info(tmp_path, rng):
    src = tmp_path / "photo.png"
    iio.imwrite(src, rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    out = tmp_path / "photo.ome.zarr"
    res = cli("convert", src, out, "--chunks", "32", "--chunks-per-shard", "2")
    assert res.returncode == 0, res.stderr
    attrs = root_attrs(out)["ome"]
    assert [a["name"] for a in attrs["multiscales"][0]["axes"]] == ["c", "y", "x"]
    assert len(attrs["omero"]["channels"]) == 3
    nz.validate_store(str(out))
    info = cli("info", out)
    assert info.returncode == 0, info.stderr
    assert "scale0/photo" in info.stdout and "3x64x80" in info.stdout
    assert "1x64x64" in info.stdout  # shards
    js = json.loads(cli("info", out, "--json").stdout)
    assert js["axes"] == ["c", "y", "x"] and js["levels"][0]["shards"] == [1, 64, 64]
    assert js["levels"][0]["stored_bytes"] > 0


def test_convert_glob_stack(tmp_path, rng):
    planes = rng.integers(0, 255, (12, 24, 20), dtype=np.uint8)
    for i, plane in enumerate(planes):
        iio.imwrite(tmp_path / f"z{i:02d}.png", plane)
    out = tmp_path / "stack.ome.zarr"
    res = cli("convert", str(tmp_path / "z*.png"), out, "--chunks", "8", "--scale-factors", "2,")
    assert res.returncode == 0, res.stderr
    ms = nz.from_ngff_zarr(str(out))
    assert len(ms.images) == 2 and ms.images[0].dims == ("z", "y", "x")
    np.testing.assert_array_equal(ms.images[0].data.compute(), planes)


def test_convert_npy_with_dims_and_labels(tmp_path, volume):
    np.save(tmp_path / "v.npy", volume)
    labels = (volume > 2000).astype(np.uint8)
    tifffile.imwrite(tmp_path / "mask.tif", labels)
    out = tmp_path / "v.ome.zarr"
    res = cli("convert", tmp_path / "v.npy", out, "--dims", "zyx", "--scale", "0.25",
              "--chunks", "16", "--labels", f"cells={tmp_path / 'mask.tif'}", "-q")
    assert res.returncode == 0, res.stderr
    nz.validate_store(str(out))
    ms = nz.from_ngff_zarr(str(out))
    assert ms.images[0].scale == {"z": 0.25, "y": 0.25, "x": 0.25}
    lab = nz.from_ngff_zarr(str(out / "labels" / "cells"))
    np.testing.assert_array_equal(lab.images[0].data.compute(), labels)
    assert "cells" in cli("info", out).stdout


def test_convert_zarr_array_and_ome_zarr_input(tmp_path, volume):
    arr = zarr.create_array(str(tmp_path / "a.zarr"), shape=volume.shape, chunks=(2, 20, 18),
                            dtype=volume.dtype, dimension_names=["z", "y", "x"])
    arr[...] = volume
    first = tmp_path / "a.ome.zarr"
    res = cli("convert", tmp_path / "a.zarr", first, "--chunks", "16", "--scale", "z=2,y=1,x=1",
              "-q")
    assert res.returncode == 0, res.stderr
    # Re-pyramid an OME-Zarr store: its level 0, scale and name are kept.
    second = tmp_path / "b.ome.zarr"
    res = cli("convert", first, second, "--method", "itkwasm_bin_shrink", "--version", "0.4",
              "--scale-factors", "2,", "-q")
    assert res.returncode == 0, res.stderr
    ms = nz.from_ngff_zarr(str(second))
    assert ms.images[0].scale == {"z": 2.0, "y": 1.0, "x": 1.0} and ms.images[0].name == "a"
    np.testing.assert_array_equal(ms.images[0].data.compute(), volume)


# -- failures: one line, exit 1 (2 for usage), no OME metadata left behind -------------------------


def test_missing_file(tmp_path):
    out = tmp_path / "o.ome.zarr"
    assert_fails(cli("convert", tmp_path / "nope.tif", out), "no such file")
    assert not out.exists()


def test_unreadable_format(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    out = tmp_path / "o.ome.zarr"
    assert_fails(cli("convert", tmp_path / "notes.txt", out), "unrecognized format")
    assert not out.exists()


def test_dims_not_fitting(tmp_path, volume):
    np.save(tmp_path / "v.npy", volume)
    out = tmp_path / "o.ome.zarr"
    assert_fails(cli("convert", tmp_path / "v.npy", out, "--dims", "yx", "-q"),
                 "name 2 axes but")
    assert not out.exists()


def test_existing_output_needs_overwrite(tmp_path, volume):
    np.save(tmp_path / "v.npy", volume)
    out = tmp_path / "o.ome.zarr"
    assert cli("convert", tmp_path / "v.npy", out, "-q", "--chunks", "32").returncode == 0
    assert_fails(cli("convert", tmp_path / "v.npy", out, "-q"), "already exists")
    nz.validate_store(str(out))  # untouched
    res = cli("convert", tmp_path / "v.npy", out, "-q", "--chunks", "32", "--resume")
    assert res.returncode == 0, res.stderr  # same plan, already complete: nothing to do
    res = cli("convert", tmp_path / "v.npy", out, "-q", "--overwrite", "--method", "nearest")
    assert res.returncode == 0, res.stderr
    assert root_attrs(out)["ome"]["multiscales"][0]["type"] == "nearest"
    other = tmp_path / "not_zarr"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    assert_fails(cli("convert", tmp_path / "v.npy", other, "--overwrite"), "not a Zarr store")
    assert (other / "keep.txt").exists()


def test_bad_scale_factors(tmp_path, volume):
    np.save(tmp_path / "v.npy", volume)
    out = tmp_path / "o.ome.zarr"
    assert_fails(cli("convert", tmp_path / "v.npy", out, "--scale-factors", "2.5"),
                 "not an integer", code=2)
    assert_fails(cli("convert", tmp_path / "v.npy", out, "--method", "bicubic"),
                 "invalid choice", code=2)


def test_failure_while_writing_leaves_no_metadata(tmp_path, rng):
    data = rng.integers(0, 4000, (8, 64, 64), dtype=np.uint16)
    src = tmp_path / "corrupt.tif"
    tifffile.imwrite(src, data, compression="zlib")
    with tifffile.TiffFile(src) as tif:
        offset, count = tif.pages[6].dataoffsets[0], tif.pages[6].databytecounts[0]
    with open(src, "r+b") as fh:  # destroy one page's compressed data
        fh.seek(offset)
        fh.write(b"\x00" * count)
    out = tmp_path / "o.ome.zarr"
    res = cli("convert", src, out, "--chunks", "16", "--no-omero", "-q")
    assert_fails(res, "is incomplete")
    assert out.exists()
    assert_no_ome(out)
    assert_fails(cli("validate", out), "invalid:")


def test_validate(tmp_path, volume):
    out = tmp_path / "o.ome.zarr"
    nz.to_ngff_zarr(str(out), nz.to_multiscales(nz.to_ngff_image(volume), [2], chunks=16))
    res = cli("validate", out)
    assert res.returncode == 0 and res.stdout.startswith("valid: "), res.stderr
    bare = tmp_path / "bare.zarr"
    zarr.open_group(str(bare), mode="w").create_array("0", shape=(4, 4), dtype="u1")
    assert_fails(cli("validate", bare), "no OME-Zarr multiscales metadata")
    assert_fails(cli("validate", tmp_path / "missing.zarr"), "invalid:")
    assert_fails(cli("info", bare), "no OME-Zarr multiscales metadata")


def test_demo(tmp_path):
    res = cli("demo", "--size", "40", "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "demo.ome.zarr").is_dir()
    for text in ("valid OME-Zarr 0.5", "scale0/demo", "40x40x40", "scale1/demo", "written in"):
        assert text in res.stdout
    assert nz.validate_store(str(tmp_path / "demo.ome.zarr")) == "0.5"
    assert cli("demo", "--size", "40", "-q", cwd=tmp_path).returncode == 0  # replaces its store


def test_usage_errors_in_process(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ngff-gpu: error: ")
    assert main(["convert", "only-one-path"]) == 2
    assert main(["convert", "a.tif", "b.zarr", "--overwrite", "--resume"]) == 2
    assert main(["convert", "a.tif", "b.zarr", "--units", "furlong"]) == 2
    assert main(["--help"]) == 0
    assert "convert" in capsys.readouterr().out


def test_plain_help_without_rich_argparse(monkeypatch, capsys):
    import importlib

    import ngff_gpu.cli._common as common

    monkeypatch.setitem(sys.modules, "rich_argparse", None)  # import fails
    try:
        importlib.reload(common)
        assert common.HelpFormatter.__module__ == "argparse"
        from ngff_gpu.cli import convert

        parser = common.Parser(prog="ngff-gpu", formatter_class=common.HelpFormatter)
        convert.add_parser(parser.add_subparsers(parser_class=common.Parser))
        with pytest.raises(SystemExit):
            parser.parse_args(["convert", "--help"])
        assert "--scale-factors" in capsys.readouterr().out
    finally:
        monkeypatch.undo()
        importlib.reload(common)
