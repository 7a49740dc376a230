"""HDF5, Imaris, BigDataViewer, N5, MRC and CZI inputs, from real files.

Each file is written by a real writer of its format (see ``volume_writers.py``: h5py
in the Imaris and BigDataViewer layouts, tensorstore for N5, mrcfile, pylibCZIrw),
converted by the CLI (``ngff_gpu.cli.main``, in process), and the output's pixels,
spacing, origin, units and channel metadata are compared with what the writer put in.
Failures are one ``ngff-gpu: error:`` line, before any output exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from volume_writers import write_bdv, write_czi, write_imaris, write_n5

import ngff_gpu as nz
from ngff_gpu.cli import main

h5py = pytest.importorskip("h5py")
hdf5plugin = pytest.importorskip("hdf5plugin")
mrcfile = pytest.importorskip("mrcfile")

REPO = Path(__file__).resolve().parents[1]


def convert(capsys, *args: object) -> str:
    """Run ``ngff-gpu convert ARGS -q`` in process; return stderr (asserting success)."""
    code = main(["convert", *map(str, args), "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def fails(capsys, match: str, *args: object) -> str:
    """``ngff-gpu ARGS`` fails with one error line containing ``match``."""
    code = main([*map(str, args)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1, err
    assert len(err) == 1 and err[0].startswith("ngff-gpu: error: "), err
    assert match in err[0], err[0]
    return err[0]


def read_store(store: Path) -> tuple[np.ndarray, dict, dict, dict]:
    """Level 0 pixels, scale, translation and the ``ome`` attributes of a 0.5 store."""
    assert nz.validate_store(str(store)) == "0.5"
    ms = nz.from_ngff_zarr(str(store))
    attrs = json.loads((store / "zarr.json").read_text())["attributes"]["ome"]
    entry = attrs["multiscales"][0]
    names = [a["name"] for a in entry["axes"]]
    found = {t["type"]: t[t["type"]] for t in entry["datasets"][0]["coordinateTransformations"]}
    scale = dict(zip(names, found["scale"]))
    translation = dict(zip(names, found.get("translation", [0.0] * len(names))))
    return np.asarray(ms.images[0].data.compute()), scale, translation, attrs


def units(attrs: dict) -> dict:
    return {a["name"]: a.get("unit") for a in attrs["multiscales"][0]["axes"]}


# -- HDF5 ----------------------------------------------------------------------------------------

FILTERS = {
    "gzip+shuffle": dict(chunks=(8, 16, 16), compression="gzip", shuffle=True),
    "contiguous": {},
    "zstd": dict(chunks=(8, 16, 16), **hdf5plugin.Zstd()),
    "blosc": dict(chunks=(8, 16, 16), **hdf5plugin.Blosc()),
    "lz4": dict(chunks=(5, 16, 7), **hdf5plugin.LZ4()),
    "lzf+fletcher32": dict(chunks=(8, 16, 16), compression="lzf", fletcher32=True),
    "bitshuffle": dict(chunks=(8, 16, 16), **hdf5plugin.Bitshuffle()),
}
VOLUME = np.random.default_rng(7).integers(0, 60000, (19, 33, 41), dtype=np.uint16)


@pytest.fixture(scope="module")
def h5_all(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("h5") / "filters.h5"
    with h5py.File(path, "w") as f:
        for name, kw in FILTERS.items():
            f.create_dataset(name, data=VOLUME, **kw)
        sparse = f.create_dataset("sparse", shape=VOLUME.shape, dtype=VOLUME.dtype,
                                  chunks=(8, 16, 16), fillvalue=7)
        sparse[:8] = VOLUME[:8]
    return path


@pytest.mark.parametrize("name", [*FILTERS, "sparse"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(box=st.tuples(*[st.tuples(st.integers(0, n - 1), st.integers(1, n)) for n in VOLUME.shape]))
def test_hdf5_regions_equal_h5py(h5_all, name, box):
    """Any region our chunk reader decodes equals h5py's read of it, for every layout."""
    from ngff_gpu.io.inputs.hdf5_chunks import H5Chunks

    key = tuple(slice(min(a, b - 1), b) for a, b in box)
    reader = H5Chunks(str(h5_all), name)
    expected_mode = {"contiguous": "mmap", "bitshuffle": "h5py"}.get(name, "chunks")
    assert reader.mode == expected_mode
    with h5py.File(h5_all, "r") as f:
        expected = f[name][key]
    np.testing.assert_array_equal(reader.region_array()[key], expected)


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(range(4)), data=st.data())
def test_permuted_and_squeezed_regions(order, data):
    """The region readers that reorder and drop axes read what NumPy's views give."""
    from ngff_gpu.io.inputs.common import RegionArray, permuted, squeeze

    src = np.arange(3 * 1 * 5 * 7).reshape(3, 1, 5, 7)
    base = RegionArray(src.shape, src.dtype, lambda key: src[key], "x", chunks=(1, 1, 5, 7))
    view = permuted(base, order, "x")
    expected = src.transpose(order)
    assert view.shape == expected.shape and view.chunks == tuple((1, 1, 5, 7)[i] for i in order)
    key = tuple(slice(*sorted(data.draw(st.tuples(st.integers(0, n), st.integers(0, n)))))
                for n in expected.shape)
    np.testing.assert_array_equal(view[key], expected[key])
    dims = [["a", "b", "c", "d"][i] for i in order]
    flat, kept = squeeze(view, dims, ("b",), "x")
    assert kept == [d for d in dims if d != "b"]
    np.testing.assert_array_equal(flat[...], expected.squeeze(dims.index("b")))


def test_hdf5_dataset_path_and_spacing(tmp_path, capsys):
    src = tmp_path / "vol.h5"
    with h5py.File(src, "w") as f:
        d = f.create_dataset("g/data", data=VOLUME, chunks=(8, 16, 16), compression="gzip")
        d.attrs["element_size_um"] = [2.0, 0.5, 0.25]
        f.create_dataset("g/other", data=VOLUME[:4])
    out = tmp_path / "out.ome.zarr"
    fails(capsys, "holds 2 image datasets (/g/data 19x33x41 uint16, /g/other 4x33x41 uint16); "
                  "name one as", "convert", src, out)
    assert not out.exists()
    convert(capsys, f"{src}:/g/data", out, "--chunks", "16", "--series", "each")  # one image
    out = tmp_path / "out_vol_g_data.ome.zarr"
    pixels, scale, _, attrs = read_store(out)
    np.testing.assert_array_equal(pixels, VOLUME)
    assert scale == {"z": 2.0, "y": 0.5, "x": 0.25}
    assert units(attrs) == {"z": "micrometer", "y": "micrometer", "x": "micrometer"}


def test_hdf5_bad_files(tmp_path, capsys):
    src = tmp_path / "vol.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("raw", data=VOLUME, chunks=(8, 16, 16), compression="gzip")
        f.create_dataset("labels/cells", data=VOLUME.astype(np.uint8))
    out = tmp_path / "out.ome.zarr"
    fails(capsys, f"{src}:/missing is not in the file; its datasets: /labels/cells 19x33x41 uint8, "
                  "/raw 19x33x41 uint16", "convert", f"{src}:/missing", out)
    fails(capsys, "is a group, not a dataset", "convert", f"{src}:/labels", out)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(src.read_bytes()[: os.path.getsize(src) // 2])
    fails(capsys, f"cannot read {cut} as HDF5: truncated", "convert", f"{cut}:/raw", out)
    assert not out.exists()


def test_hdf5_filter_without_plugin(tmp_path):
    """A filter HDF5 has no plugin for is named, with the extra that brings it (hdf5plugin
    hidden from a subprocess: a stand-in module that fails to import)."""
    src = tmp_path / "z.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("raw", data=VOLUME, chunks=(8, 16, 16), **hdf5plugin.Zstd())
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "hdf5plugin.py").write_text("raise ImportError('hidden by the test')\n")
    out = tmp_path / "out.ome.zarr"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hide), str(REPO)]), HDF5_PLUGIN_PATH=str(hide))
    env.pop("NGFF_GPU_DEBUG", None)
    res = subprocess.run([sys.executable, "-m", "ngff_gpu.cli", "convert", f"{src}:/raw", str(out)],
                         capture_output=True, text=True, env=env, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert "compressed with Zstandard (filter 32015)" in lines[0], lines[0]
    assert "install hdf5plugin (pip install 'ngff-gpu[hdf5]')" in lines[0], lines[0]
    assert not out.exists()


# -- Imaris ---------------------------------------------------------------------------------------


def test_imaris(tmp_path, capsys):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 4000, (2, 2, 11, 21, 30), dtype=np.uint16)
    src = tmp_path / "cells.ims"
    write_imaris(src, data, voxel=(0.5, 0.25, 2.0), origin=(10.0, -5.0, 1.0),
                 names=["DAPI", "GFP"], colors=[(0, 0, 1), (0, 1, 0)], step_s=2.5)
    out = tmp_path / "out.ome.zarr"
    convert(capsys, src, out, "--chunks", "8")
    pixels, scale, translation, attrs = read_store(out)
    np.testing.assert_array_equal(pixels, data)  # the padding Imaris adds is cropped
    assert scale == pytest.approx({"t": 2.5, "c": 1.0, "z": 2.0, "y": 0.25, "x": 0.5})
    assert translation == pytest.approx({"t": 0.0, "c": 0.0, "z": 1.0, "y": -5.0, "x": 10.0})
    assert units(attrs) == {"t": "second", "c": None, "z": "micrometer", "y": "micrometer",
                            "x": "micrometer"}
    chans = attrs["omero"]["channels"]
    assert [c["label"] for c in chans] == ["DAPI", "GFP"]
    assert [c["color"] for c in chans] == ["0000FF", "00FF00"]
    assert attrs["multiscales"][0]["name"] == "specimen"


# -- BigDataViewer --------------------------------------------------------------------------------


@pytest.fixture
def bdv_data():
    rng = np.random.default_rng(5)
    return {(t, s): rng.integers(0, 65535, (12, 20, 24), dtype=np.uint16)
            for t in range(2) for s in range(2)}


def test_bdv_channels_and_timepoints(tmp_path, capsys, bdv_data):
    h5, xml = tmp_path / "spim.h5", tmp_path / "spim.xml"
    write_bdv(h5, xml, bdv_data, [{"channel": 0, "angle": 0}, {"channel": 1, "angle": 0}],
              voxel=(0.4, 0.4, 1.6), channel_names={0: "488nm", 1: "561nm"})
    expected = np.stack([np.stack([bdv_data[(t, s)] for s in range(2)]) for t in range(2)])
    for src in (xml, h5):  # the .h5 alone finds its XML beside it
        out = tmp_path / f"{src.suffix[1:]}.ome.zarr"
        convert(capsys, src, out)
        pixels, scale, translation, attrs = read_store(out)
        np.testing.assert_array_equal(pixels, expected)  # uint16, stored as int16
        assert pixels.dtype == np.uint16
        assert {d: scale[d] for d in "zyx"} == pytest.approx({"z": 1.6, "y": 0.4, "x": 0.4})
        assert {d: translation[d] for d in "zyx"} == pytest.approx({"z": 1.5, "y": -3.0, "x": 5.0})
        assert units(attrs)["x"] == "micrometer"
        assert [c["label"] for c in attrs["omero"]["channels"]] == ["488nm", "561nm"]
    xml.unlink()  # without the XML: the pixels still, no spacing
    out = tmp_path / "bare.ome.zarr"
    convert(capsys, h5, out)
    pixels, scale, _, _ = read_store(out)
    np.testing.assert_array_equal(pixels, expected)
    assert scale["x"] == 1.0


def test_bdv_tiles_are_series(tmp_path, capsys, bdv_data):
    h5, xml = tmp_path / "tiles.h5", tmp_path / "tiles.xml"
    write_bdv(h5, xml, bdv_data, [{"channel": 0, "tile": 0}, {"channel": 0, "tile": 1}],
              voxel=(0.4, 0.4, 1.6))
    out = tmp_path / "t.ome.zarr"
    fails(capsys, "holds 2 images (setups of different tiles, angles or illuminations: 0: tile0 "
                  "2x1x12x20x24 uint16 (TCZYX); 1: tile1", "convert", xml, out)
    convert(capsys, xml, out, "--series", "1")
    pixels, _, translation, attrs = read_store(out)
    np.testing.assert_array_equal(pixels, np.stack([bdv_data[(0, 1)], bdv_data[(1, 1)]]))
    assert [a["name"] for a in attrs["multiscales"][0]["axes"]] == ["t", "z", "y", "x"]
    assert translation["x"] == pytest.approx(105.0)  # the tile's registration


# -- N5 -------------------------------------------------------------------------------------------


def test_n5(tmp_path, capsys):
    pytest.importorskip("tensorstore")
    pytest.importorskip("zarr_n5")
    rng = np.random.default_rng(9)
    data = rng.integers(0, 1000, (9, 17, 23), dtype=np.uint16)
    container = tmp_path / "c.n5"
    write_n5(container, "volumes/raw", data, [8, 8, 4],
             {"resolution": [0.3, 0.35, 1.2], "unit": "um", "offset": [1.0, 2.0, 3.0]})
    for src in (f"{container}:/volumes/raw", container / "volumes" / "raw", container):
        out = tmp_path / "out.ome.zarr"
        convert(capsys, src, out, "--overwrite")
        pixels, scale, translation, attrs = read_store(out)
        np.testing.assert_array_equal(pixels, data)
        assert scale == pytest.approx({"z": 1.2, "y": 0.35, "x": 0.3})
        assert translation == pytest.approx({"z": 3.0, "y": 2.0, "x": 1.0})
        assert units(attrs) == {"z": "micrometer", "y": "micrometer", "x": "micrometer"}
    write_n5(container, "volumes/mask", data.astype(np.uint8), [8, 8, 4])
    fails(capsys, "holds 2 datasets (/volumes/mask 23x17x9 uint8, /volumes/raw 23x17x9 uint16)",
          "convert", container, tmp_path / "x.ome.zarr")
    fails(capsys, "is not an N5 dataset; its datasets: /volumes/mask, /volumes/raw",
          "convert", f"{container}:/volumes/nope", tmp_path / "x.ome.zarr")
    write_n5(container, "volumes/xz", data, [8, 8, 4], compression="xz")
    fails(capsys, "unsupported codec with type xz (zarr-n5 decodes raw, gzip, zstd and Blosc",
          "convert", f"{container}:/volumes/xz", tmp_path / "x.ome.zarr")
    assert not (tmp_path / "x.ome.zarr").exists()


# -- MRC ------------------------------------------------------------------------------------------


def test_mrc(tmp_path, capsys):
    rng = np.random.default_rng(11)
    data = rng.standard_normal((10, 14, 18)).astype(np.float32)
    src = tmp_path / "map.mrc"
    with mrcfile.new(src) as m:
        m.set_data(data)
        m.voxel_size = (1.5, 2.5, 3.5)
        m.header.origin = (10.0, 20.0, 30.0)
    out = tmp_path / "map.ome.zarr"
    convert(capsys, src, out, "--method", "mean")
    pixels, scale, translation, attrs = read_store(out)
    np.testing.assert_array_equal(pixels, data)
    assert scale == pytest.approx({"z": 3.5, "y": 2.5, "x": 1.5})
    assert translation == pytest.approx({"z": 30.0, "y": 20.0, "x": 10.0})
    assert units(attrs) == {"z": "angstrom", "y": "angstrom", "x": "angstrom"}
    stack = tmp_path / "particles.mrcs"
    with mrcfile.new(stack) as m:
        m.set_data(data.astype(np.int16))
        m.set_image_stack()
        m.voxel_size = 4.0
    fails(capsys, "--series applies to files that hold several images", "convert", stack,
          tmp_path / "s.ome.zarr", "--series", "1")
    out2 = tmp_path / "stack.ome.zarr"
    convert(capsys, stack, out2)
    pixels, scale, _, _ = read_store(out2)
    np.testing.assert_array_equal(pixels, data.astype(np.int16))
    assert scale["x"] == 4.0
    cut = tmp_path / "cut.mrc"
    cut.write_bytes(src.read_bytes()[:-100])
    out3 = tmp_path / "cut.ome.zarr"
    line = fails(capsys, f"cannot read {cut} as MRC: truncated (the file has", "convert", cut, out3)
    assert line.count("cannot read") == 1
    assert not out3.exists()


# -- CZI ------------------------------------------------------------------------------------------


def test_czi_scenes(tmp_path, capsys):
    pytest.importorskip("pylibCZIrw")
    rng = np.random.default_rng(13)
    scenes = [((0, 0), rng.integers(0, 4000, (2, 3, 40, 50), dtype=np.uint16)),
              ((100, 60), rng.integers(0, 4000, (2, 3, 20, 30), dtype=np.uint16))]
    src = tmp_path / "slide.czi"
    write_czi(src, scenes, ["DAPI", "GFP"], [(0, 0, 255), (0, 255, 0)], (0.5e-6, 0.5e-6, 2e-6))
    out = tmp_path / "slide.ome.zarr"
    fails(capsys, "holds 2 scenes (0: scene0 1x2x3x40x50 uint16 (TCZYX); 1: scene1 "
                  "1x2x3x20x30 uint16 (TCZYX)); choose one with --series N", "convert", src, out)
    assert not out.exists()
    convert(capsys, src, out, "--series", "each")
    convert(capsys, src, tmp_path / "both.ome.zarr", "--series", "all")  # one bioformats2raw container
    for i, name in enumerate(["scene0", "scene1"]):
        store = tmp_path / f"slide_{name}.ome.zarr"
        np.testing.assert_array_equal(read_store(tmp_path / "both.ome.zarr" / str(i))[0],
                                      scenes[i][1])
        pixels, scale, translation, attrs = read_store(store)
        np.testing.assert_array_equal(pixels, scenes[i][1])
        assert {d: scale[d] for d in "zyx"} == pytest.approx({"z": 2.0, "y": 0.5, "x": 0.5})
        x0, y0 = scenes[i][0]
        assert translation["x"] == pytest.approx(x0 * 0.5)
        assert translation["y"] == pytest.approx(y0 * 0.5)
        assert units(attrs)["x"] == "micrometer"
        chans = attrs["omero"]["channels"]
        assert [(c["label"], c["color"]) for c in chans] == [("DAPI", "0000FF"), ("GFP", "00FF00")]
