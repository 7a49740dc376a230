"""Every input format through the CLI (``python -m ngff_gpu.cli`` in a subprocess).

Each test writes its input with the format's own library (nibabel, pynrrd,
SimpleITK, pydicom, tifffile) or uses a sample file that library ships, converts
it, and compares the pixels and the spacing/origin/orientation with the source.
Each failure case is one ``ngff-gpu: error:`` line on stderr with a nonzero exit.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from cli_run import cli

import ngff_gpu as nz

nib = pytest.importorskip("nibabel")
nrrd = pytest.importorskip("nrrd")
sitk = pytest.importorskip("SimpleITK")
pydicom = pytest.importorskip("pydicom")

REPO = Path(__file__).resolve().parents[1]
NIB_DATA = Path(nib.__file__).parent / "tests" / "data"



def ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr
    return res


def assert_fails(res: subprocess.CompletedProcess, match: str, code: int = 1) -> None:
    """Exit ``code``, exactly one stderr line ``ngff-gpu: error: ...``, no traceback."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("ngff-gpu: error: "), lines[0]
    assert match in lines[0], lines[0]


def axes(store: Path) -> list[dict]:
    return ome(store)["multiscales"][0]["axes"]


def ome(store: Path) -> dict:
    attrs = json.loads((store / "zarr.json").read_text())["attributes"]
    return attrs["ome"]


def level0(store: Path) -> tuple[np.ndarray, dict, dict]:
    """Pixels, scale and translation of level 0."""
    ms = nz.from_ngff_zarr(str(store))
    assert nz.validate_store(str(store)) == "0.5"
    im = ms.images[0]
    return np.asarray(im.data.compute()), im.scale, im.translation


def scale_of(store: Path) -> list[float]:
    """Level 0's scale in the metadata (every axis, ``t`` included)."""
    return ome(store)["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]


def orientation(store: Path) -> dict[str, str]:
    return {a["name"]: a["orientation"]["value"] for a in axes(store) if "orientation" in a}


# -- NIfTI and Analyze --------------------------------------------------------------------------


@pytest.fixture
def xyz(rng) -> np.ndarray:
    """A small int16 volume in nibabel's (x, y, z) order."""
    return rng.integers(-1000, 3000, (20, 12, 9), dtype=np.int16)


AFFINE = np.array([[0.5, 0, 0, 10.0], [0, 0.75, 0, 20.0], [0, 0, 2.0, 30.0], [0, 0, 0, 1]])


@pytest.mark.parametrize("kind", ["nifti1.nii.gz", "nifti2.nii", "analyze.hdr"])
def test_nifti_and_analyze(tmp_path, xyz, kind):
    cls = {"nifti1.nii.gz": nib.Nifti1Image, "nifti2.nii": nib.Nifti2Image,
           "analyze.hdr": nib.AnalyzeImage}[kind]
    img = cls(xyz, AFFINE)
    if kind != "analyze.hdr":
        img.header.set_xyzt_units("mm", "sec")
    src = tmp_path / kind.replace(".nii", ".dat") if kind == "nifti2.nii" else tmp_path / kind
    nib.save(img, tmp_path / kind)
    if kind == "nifti2.nii":  # detected by content, not by suffix
        (tmp_path / kind).rename(src)
    out = tmp_path / "out.ome.zarr"
    res = ok(cli("convert", src, out, "--chunks", "8"))
    assert "NIfTI" in res.stderr or "Analyze" in res.stderr
    pixels, scale, translation = level0(out)
    np.testing.assert_array_equal(pixels, xyz.transpose(2, 1, 0))
    assert scale == {"z": 2.0, "y": 0.75, "x": 0.5}
    assert [a.get("unit") for a in axes(out)] == ["millimeter"] * 3
    if kind != "analyze.hdr":
        assert translation == {"z": 30.0, "y": 20.0, "x": 10.0}
        assert orientation(out) == {"x": "left-to-right", "y": "posterior-to-anterior",
                                    "z": "inferior-to-superior"}


@pytest.mark.parametrize("name", ["anatomical.nii", "example4d.nii.gz"])
def test_nibabel_samples(tmp_path, name):
    path = NIB_DATA / name
    img = nib.load(path)
    out = tmp_path / "s.ome.zarr"
    ok(cli("convert", path, out, "-q"))
    pixels, scale, translation = level0(out)
    expected = np.asarray(img.dataobj)
    np.testing.assert_array_equal(pixels, expected.transpose(*range(expected.ndim)[::-1])
                                  if expected.ndim == 3 else expected.transpose(3, 2, 1, 0))
    spacing = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    assert [scale[d] for d in "xyz"] == pytest.approx(spacing)
    assert [translation[d] for d in "xyz"] == pytest.approx(img.affine[:3, 3])
    codes = nib.aff2axcodes(img.affine)  # the direction each array axis points to (RAS)
    letter = {"L": "right-to-left", "R": "left-to-right", "A": "posterior-to-anterior",
              "P": "anterior-to-posterior", "S": "inferior-to-superior",
              "I": "superior-to-inferior"}
    assert orientation(out) == {d: letter[c] for d, c in zip("xyz", codes)}
    if expected.ndim == 4:
        assert [a["name"] for a in axes(out)] == ["t", "z", "y", "x"]
        assert scale_of(out)[0] == pytest.approx(float(img.header.get_zooms()[3]))


def test_orientation_kept_when_re_pyramiding(tmp_path, xyz):
    nib.save(nib.Nifti1Image(xyz, AFFINE), tmp_path / "v.nii")
    first, second = tmp_path / "a.ome.zarr", tmp_path / "b.ome.zarr"
    ok(cli("convert", tmp_path / "v.nii", first, "-q"))
    ok(cli("convert", first, second, "-q", "--scale-factors", "2,"))
    assert orientation(second) == orientation(first) and orientation(first)
    third = tmp_path / "c.ome.zarr"
    ok(cli("convert", first, third, "-q", "--no-orientation"))
    assert orientation(third) == {}


# -- NRRD and MetaImage ---------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["raw", "gzip"])
def test_nrrd(tmp_path, xyz, encoding):
    path = tmp_path / "v.nrrd"
    nrrd.write(str(path), xyz, {"encoding": encoding, "space": "left-posterior-superior",
                                "space directions": np.diag([0.5, 0.75, 2.0]),
                                "space origin": [10.0, 20.0, 30.0]})
    out = tmp_path / "v.ome.zarr"
    ok(cli("convert", path, out, "-q"))
    pixels, scale, translation = level0(out)
    data, _ = nrrd.read(str(path))
    np.testing.assert_array_equal(pixels, data.transpose(2, 1, 0))
    assert scale == {"z": 2.0, "y": 0.75, "x": 0.5}
    assert translation == {"z": 30.0, "y": 20.0, "x": 10.0}
    assert orientation(out) == {"x": "right-to-left", "y": "anterior-to-posterior",
                                "z": "inferior-to-superior"}  # LPS


@pytest.mark.parametrize("name", ["v.mha", "v.mhd", "compressed.mha"])
def test_metaimage(tmp_path, rng, name):
    zyx = rng.integers(0, 60000, (7, 11, 13), dtype=np.uint16)
    img = sitk.GetImageFromArray(zyx)
    img.SetSpacing((0.5, 0.75, 2.0))
    img.SetOrigin((10.0, 20.0, 30.0))
    img.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))  # x flipped
    sitk.WriteImage(img, str(tmp_path / name), useCompression=name.startswith("compressed"))
    out = tmp_path / "m.ome.zarr"
    ok(cli("convert", tmp_path / name, out, "-q"))
    pixels, scale, translation = level0(out)
    np.testing.assert_array_equal(pixels, sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / name))))
    assert scale == {"z": 2.0, "y": 0.75, "x": 0.5}
    assert translation == {"z": 30.0, "y": 20.0, "x": 10.0}
    assert orientation(out) == {"x": "left-to-right", "y": "anterior-to-posterior",
                                "z": "inferior-to-superior"}


def test_metaimage_truncated_raw(tmp_path, rng):
    img = sitk.GetImageFromArray(rng.integers(0, 255, (4, 8, 8), dtype=np.uint8))
    sitk.WriteImage(img, str(tmp_path / "t.mhd"))
    raw = tmp_path / "t.raw"
    raw.write_bytes(raw.read_bytes()[:100])
    assert_fails(cli("convert", tmp_path / "t.mhd", tmp_path / "t.ome.zarr"), "truncated")
    assert not (tmp_path / "t.ome.zarr").exists()


# -- DICOM -------------------------------------------------------------------------------------------


def _ct_series(folder: Path, n: int = 4) -> list[np.ndarray]:
    """``n`` slices derived from pydicom's CT_small.dcm, written in shuffled name order."""
    from pydicom.data import get_testdata_file

    folder.mkdir()
    src = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    planes = []
    for k in range(n):
        ds = copy.deepcopy(src)
        z = -75.7 + 5.0 * k
        ds.ImagePositionPatient = [-158.1, -179.0, z]
        ds.InstanceNumber = n - k
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        plane = (np.asarray(src.pixel_array) + 7 * k).astype(np.int16)
        ds.PixelData = plane.tobytes()
        ds.save_as(folder / f"img{(k * 7) % n}_{k}.dcm")
        planes.append(plane.astype(np.int32) * int(src.RescaleSlope) + int(src.RescaleIntercept))
    (folder / "README.txt").write_text("not an image")
    return planes


def test_dicom_series_directory_and_glob(tmp_path):
    planes = _ct_series(tmp_path / "ct")
    for i, source in enumerate([tmp_path / "ct", str(tmp_path / "ct" / "img*.dcm")]):
        out = tmp_path / f"ct{i}.ome.zarr"
        res = ok(cli("convert", source, out, "-q"))
        assert res.stderr == ""
        pixels, scale, translation = level0(out)
        np.testing.assert_array_equal(pixels, np.stack(planes))  # sorted by position
        assert scale == pytest.approx({"z": 5.0, "y": 0.661468, "x": 0.661468})
        assert translation == pytest.approx({"z": -75.7, "y": -179.0, "x": -158.1})
        assert orientation(out) == {"x": "right-to-left", "y": "anterior-to-posterior",
                                    "z": "inferior-to-superior"}


def test_dicom_samples_and_multiframe(tmp_path):
    from pydicom.data import get_testdata_file

    for name in ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm"):
        path = get_testdata_file(name)
        ds = pydicom.dcmread(path)
        out = tmp_path / f"{name}.ome.zarr"
        ok(cli("convert", path, out, "-q"))
        pixels, scale, _ = level0(out)
        expected = ds.pixel_array * float(getattr(ds, "RescaleSlope", 1) or 1) + float(
            getattr(ds, "RescaleIntercept", 0) or 0)
        np.testing.assert_array_equal(pixels, expected)
        assert [scale["y"], scale["x"]] == pytest.approx([float(v) for v in ds.PixelSpacing])
    # a multi-frame file: frames along z, spacing from SpacingBetweenSlices
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    frames = np.stack([ds.pixel_array + k for k in range(3)]).astype(np.int16)
    ds.NumberOfFrames = 3
    ds.SpacingBetweenSlices = 1.5
    ds.PixelData = frames.tobytes()
    ds.save_as(tmp_path / "multi.dcm")
    out = tmp_path / "multi.ome.zarr"
    ok(cli("convert", tmp_path / "multi.dcm", out, "-q"))
    pixels, scale, _ = level0(out)
    np.testing.assert_array_equal(pixels, frames)
    assert scale["z"] == 1.5


def test_dicom_failures(tmp_path):
    from pydicom.data import get_testdata_file

    planes_dir = tmp_path / "ct"
    _ct_series(planes_dir, 4)
    next(planes_dir.glob("img*_1.dcm")).unlink()  # a gap in the series
    assert_fails(cli("convert", planes_dir, tmp_path / "gap.ome.zarr"), "not evenly spaced")
    # a syntax pydicom has no decoder for at all: one line naming it, nothing written
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "mpeg.dcm", enforce_file_format=True)
    assert_fails(cli("convert", tmp_path / "mpeg.dcm", tmp_path / "mpeg.ome.zarr", "-q"),
                 "MPEG2")
    assert not (tmp_path / "mpeg.ome.zarr").exists()


@pytest.mark.parametrize("syntax", ["JPEG2000Lossless", "JPEGLSLossless", "RLELossless"])
def test_dicom_compressed_syntaxes(tmp_path, syntax):
    """Compressed transfer syntaxes decode through the plug-ins of the ``formats`` extra
    (pylibjpeg-openjpeg, pyjpegls; RLE natively): pixels equal the uncompressed file's."""
    from pydicom.data import get_testdata_file

    uid = getattr(pydicom.uid, syntax)
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    ds.compress(uid)
    ds.save_as(tmp_path / "c.dcm")
    assert pydicom.dcmread(tmp_path / "c.dcm").file_meta.TransferSyntaxUID == uid
    out = tmp_path / "c.ome.zarr"
    ok(cli("convert", tmp_path / "c.dcm", out, "-q"))
    pixels, scale, _ = level0(out)
    np.testing.assert_array_equal(pixels, expected)
    assert [scale["y"], scale["x"]] == pytest.approx([float(v) for v in ds.PixelSpacing])


# -- TIFF ---------------------------------------------------------------------------------------------


def _two_series(path: Path, rng) -> tuple[np.ndarray, np.ndarray]:
    a = rng.integers(0, 255, (4, 16, 16), dtype=np.uint8)
    b = rng.integers(0, 60000, (2, 24, 20), dtype=np.uint16)
    with tifffile.TiffWriter(path, ome=True) as w:
        w.write(a, metadata={"axes": "ZYX", "Name": "first"})
        w.write(b, metadata={"axes": "CYX", "Name": "second",
                             "Channel": {"Name": ["DAPI", "GFP"]}})
    return a, b


def test_tiff_series(tmp_path, rng):
    path = tmp_path / "two.ome.tif"
    a, b = _two_series(path, rng)
    out = tmp_path / "two.ome.zarr"
    res = cli("convert", path, out)
    assert_fails(res, "holds 2 series")
    assert "0: first 4x16x16 uint8" in res.stderr and "1: second 2x24x20 uint16" in res.stderr
    assert not out.exists()
    ok(cli("convert", path, out, "--series", "1", "-q"))
    pixels, _, _ = level0(out)
    np.testing.assert_array_equal(pixels, b)
    assert [ch["label"] for ch in ome(out)["omero"]["channels"]] == ["DAPI", "GFP"]
    # --series each: one store per series, named after it
    ok(cli("convert", path, tmp_path / "all.ome.zarr", "--series", "each", "-q"))
    first, second = tmp_path / "all_first.ome.zarr", tmp_path / "all_second.ome.zarr"
    np.testing.assert_array_equal(level0(first)[0], a)
    np.testing.assert_array_equal(level0(second)[0], b)
    assert ome(second)["multiscales"][0]["name"] == "second"
    # --series all: one bioformats2raw.layout container (tests/test_bioformats2raw.py)
    ok(cli("convert", path, tmp_path / "one.ome.zarr", "--series", "all", "-q"))
    np.testing.assert_array_equal(level0(tmp_path / "one.ome.zarr" / "0")[0], a)
    np.testing.assert_array_equal(level0(tmp_path / "one.ome.zarr" / "1")[0], b)
    assert_fails(cli("convert", path, tmp_path / "x.ome.zarr", "--series", "2"),
                 "--series 2 does not exist")


def test_ome_channel_colors_and_imagej_finterval(tmp_path, rng):
    data = rng.integers(0, 255, (3, 2, 16, 16), dtype=np.uint8)
    path = tmp_path / "ch.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={
        "axes": "TCYX", "TimeIncrement": 2.5, "TimeIncrementUnit": "s",
        "Channel": {"Name": ["DAPI", "GFP"], "Color": [0x0000FFFF, 0x00FF00FF]}})
    out = tmp_path / "ch.ome.zarr"
    ok(cli("convert", path, out, "-q"))
    channels = ome(out)["omero"]["channels"]
    assert [(c["label"], c["color"]) for c in channels] == [("DAPI", "0000FF"), ("GFP", "00FF00")]
    assert all(c["window"]["start"] <= c["window"]["end"] for c in channels)
    assert scale_of(out)[0] == 2.5
    ij = tmp_path / "ij.tif"
    tifffile.imwrite(ij, rng.integers(0, 255, (3, 4, 16, 16), dtype=np.uint8), imagej=True,
                     metadata={"axes": "TZYX", "finterval": 0.5})
    out = tmp_path / "ij.ome.zarr"
    ok(cli("convert", ij, out, "-q"))
    assert scale_of(out)[0] == 0.5
    assert axes(out)[0] == {"name": "t", "type": "time", "unit": "second"}


def test_truncated_and_damaged_tiff(tmp_path, rng):
    vol = rng.integers(0, 1000, (64, 128, 128), dtype=np.uint16)
    whole = tmp_path / "whole.tif"
    tifffile.imwrite(whole, vol, tile=(64, 64))
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    res = cli("convert", cut, tmp_path / "cut.ome.zarr")
    assert_fails(res, "cut.tif is truncated or damaged: page 32")
    assert "tifffile" not in res.stderr and not (tmp_path / "cut.ome.zarr").exists()
    small = tmp_path / "z.tif"
    tifffile.imwrite(small, vol[:8], tile=(64, 64), compression="zlib")
    raw = bytearray(small.read_bytes())
    with tifffile.TiffFile(small) as tif:
        offset, count = tif.pages[3].dataoffsets[1], tif.pages[3].databytecounts[1]
    raw[offset:offset + count] = b"\0" * count
    small.write_bytes(bytes(raw))
    res = cli("convert", small, tmp_path / "z.ome.zarr", "-q")
    assert_fails(res, "cannot decode")
    assert "Task exception" not in res.stderr and "Event loop" not in res.stderr


# -- directories, .ozx, ngff-zarr's spellings --------------------------------------------------------


def test_directory_of_slices(tmp_path, rng):
    import imageio.v3 as iio

    planes = rng.integers(0, 255, (12, 10, 14), dtype=np.uint8)
    folder = tmp_path / "slices"
    folder.mkdir()
    for i, plane in enumerate(planes):
        iio.imwrite(folder / f"s{i}.png", plane)  # natural order: s2 before s10
    out = tmp_path / "slices.ome.zarr"
    ok(cli("convert", folder, out, "-q"))
    np.testing.assert_array_equal(level0(out)[0], planes)
    assert ome(out)["multiscales"][0]["name"] == "slices"
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("hello")
    assert_fails(cli("convert", junk, tmp_path / "j.ome.zarr"),
                 "neither a Zarr store")
    # a multi-series TIFF in a stack is refused, never read as its series 0
    multi = tmp_path / "multi"
    multi.mkdir()
    for i in range(2):
        tifffile.imwrite(multi / f"m{i}.tif", planes[i])
    _two_series(multi / "m2.tif", rng)
    assert_fails(cli("convert", str(multi / "m*.tif"), tmp_path / "m.ome.zarr"),
                 "a stack member must hold one")
    assert not (tmp_path / "m.ome.zarr").exists()


def test_ozx_output_and_input(tmp_path, rng):
    import zipfile

    vol = rng.integers(0, 4000, (16, 32, 32), dtype=np.uint16)
    np.save(tmp_path / "v.npy", vol)
    ozx = tmp_path / "v.ozx"
    res = ok(cli("convert", tmp_path / "v.npy", ozx, "--chunks", "16", "--scale-factors", "2,"))
    assert "scale1/v" in res.stdout
    with zipfile.ZipFile(ozx) as zf:
        names = zf.namelist()
        assert names[0] == "zarr.json"
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        assert json.loads(zf.comment)["ome"]["version"] == "0.5"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".v.ozx")]  # staging gone
    ms = nz.from_ngff_zarr(str(ozx))
    np.testing.assert_array_equal(ms.images[0].data.compute(), vol)
    import ngff_zarr

    theirs = ngff_zarr.from_ngff_zarr(str(ozx))
    np.testing.assert_array_equal(np.asarray(theirs.images[1].data), ms.images[1].data.compute())
    again = tmp_path / "again.ome.zarr"
    ok(cli("convert", ozx, again, "-q"))  # .ozx as input
    np.testing.assert_array_equal(level0(again)[0], vol)
    assert_fails(cli("convert", tmp_path / "v.npy", ozx), "already exists")
    ok(cli("convert", tmp_path / "v.npy", ozx, "--overwrite", "-q"))


def test_ngff_zarr_spellings(tmp_path, rng):
    vol = rng.integers(0, 4000, (8, 32, 24), dtype=np.uint16)
    np.save(tmp_path / "v.npy", vol)
    out = tmp_path / "v.ome.zarr"
    res = ok(cli("convert", "-i", tmp_path / "v.npy", "-o", out, "-d", "z", "y", "x",
                 "-s", "z", "4.0", "y", "1.0", "x", "0.5", "-t", "z", "-2", "y", "3", "x", "0",
                 "-u", "z", "micrometer", "y", "micrometer", "x", "nm", "-c", "4", "16", "16",
                 "-m", "itkwasm_bin_shrink", "--ome-zarr-version", "0.4",
                 "--compression-level", "3", "--memory-target", "64MB", "-n", "spelled", "-q"))
    assert res.stdout == "" and res.stderr == ""
    entry = json.loads((out / ".zattrs").read_text())["multiscales"][0]
    assert entry["name"] == "spelled" and entry["type"] == "itkwasm_bin_shrink"  # by name
    assert entry["datasets"][0]["coordinateTransformations"] == [
        {"type": "scale", "scale": [4.0, 1.0, 0.5]},
        {"type": "translation", "translation": [-2.0, 3.0, 0.0]}]
    assert [a["unit"] for a in entry["axes"]] == ["micrometer", "micrometer", "nanometer"]
    assert zarr.open_array(str(out / "scale0" / "spelled"), mode="r").chunks == (4, 16, 16)
    # positional INPUT OUTPUT with ngff-zarr's multi-value options before them
    out2 = tmp_path / "w.ome.zarr"
    ok(cli("convert", "-s", "z", "2", "y", "1", "x", "1", "-c", "16", tmp_path / "v.npy", out2,
           "-q"))
    assert level0(out2)[1] == {"z": 2.0, "y": 1.0, "x": 1.0}
    assert_fails(cli("convert", "-i", tmp_path / "v.npy"), "give OUTPUT", code=2)


def test_device_cuda_without_gpu_creates_nothing(tmp_path):
    from ngff_gpu.compute.backends import cuda_available

    if cuda_available():
        pytest.skip("a GPU is present")
    np.save(tmp_path / "v.npy", np.zeros((4, 4), np.uint8))
    out = tmp_path / "v.ome.zarr"
    assert_fails(cli("convert", tmp_path / "v.npy", out, "--device", "cuda"), "cuda")
    assert not out.exists()
    assert_fails(cli("demo", tmp_path / "d.ome.zarr", "--device", "cuda"), "cuda")
    assert not (tmp_path / "d.ome.zarr").exists()


def test_info_into_a_closed_pipe_is_quiet(tmp_path):
    res = ok(cli("demo", tmp_path / "d.ome.zarr", "--size", "24", "-q"))
    hint = res.stdout.strip().splitlines()[-1]
    assert hint.startswith("next: ") and "info" in hint
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # 'true' exits at once, long before Python starts: every write meets a closed pipe
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; '{sys.executable}' -m ngff_gpu.cli "
                           f"info '{tmp_path / 'd.ome.zarr'}' | true"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
