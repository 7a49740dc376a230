"""ngff_gpu.io.inputs: each input kind, laziness, axes, physical sizes, omero, errors."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import zarr

from ngff_gpu.errors import DimsError, InputFormatError
from ngff_gpu.io.inputs import InputImage, open_input, udunits
from ngff_gpu.io.inputs.stack import FileStack
from ngff_gpu.io.omero import _subsample, omero_from_data


@pytest.fixture
def volume(rng) -> np.ndarray:
    return rng.integers(0, 4000, (5, 40, 36), dtype=np.uint16)


def _np(x) -> np.ndarray:
    return np.asarray(x.compute() if hasattr(x, "compute") else x[...])


def test_plain_tiff_is_lazy_zarr(tmp_path, volume):
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, volume)
    im = open_input(str(path))
    assert isinstance(im, InputImage)
    assert isinstance(im.data, zarr.Array)  # tifffile's Zarr store, read on demand
    assert im.data.chunks[0] == 1  # page by page
    assert im.dims is None and im.scale is None and im.kind == "TIFF" and im.name == "vol"
    np.testing.assert_array_equal(im.data[2:4, 5:9, 1:3], volume[2:4, 5:9, 1:3])


def test_ome_tiff_axes_sizes_units(tmp_path, volume):
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, volume, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": 0.25, "PhysicalSizeYUnit": "µm",
        "PhysicalSizeZ": 2.0, "PhysicalSizeZUnit": "nm"})
    im = open_input([str(path)])
    assert im.kind == "OME-TIFF" and im.name == "cells"
    assert im.dims == ["z", "y", "x"]
    assert im.scale == {"x": 0.5, "y": 0.25, "z": 2.0}
    assert im.units == {"x": "micrometer", "y": "micrometer", "z": "nanometer"}
    np.testing.assert_array_equal(_np(im.data), volume)


def test_ome_tiff_channels_reordered(tmp_path, rng):
    data = rng.integers(0, 255, (3, 2, 16, 20), dtype=np.uint8)  # ZCYX as stored
    path = tmp_path / "zc.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "ZCYX"})
    im = open_input(str(path))
    assert im.dims == ["c", "z", "y", "x"]
    np.testing.assert_array_equal(_np(im.data), np.transpose(data, (1, 0, 2, 3)))


def test_rgb_tiff_channel_first(tmp_path, rng):
    rgb = rng.integers(0, 255, (16, 20, 3), dtype=np.uint8)
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    im = open_input(str(path))
    assert im.dims == ["c", "y", "x"]
    np.testing.assert_array_equal(_np(im.data), np.moveaxis(rgb, -1, 0))


def test_imagej_tiff_spacing(tmp_path, volume):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, volume, imagej=True, resolution=(4.0, 4.0),
                     metadata={"axes": "ZYX", "spacing": 1.5, "unit": "um"})
    im = open_input(str(path))
    assert im.dims == ["z", "y", "x"]
    assert im.scale == pytest.approx({"x": 0.25, "y": 0.25, "z": 1.5})
    assert im.units == {"x": "micrometer", "y": "micrometer", "z": "micrometer"}


def test_png_rgb_and_grey(tmp_path, rng):
    rgb = rng.integers(0, 255, (12, 18, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "rgb.png", rgb)
    im = open_input(str(tmp_path / "rgb.png"))
    assert im.dims == ["c", "y", "x"] and im.kind == "PNG"
    np.testing.assert_array_equal(np.asarray(im.data), np.moveaxis(rgb, -1, 0))
    grey = rng.integers(0, 60000, (12, 18), dtype=np.uint16)
    iio.imwrite(tmp_path / "grey.png", grey)
    im = open_input(str(tmp_path / "grey.png"))
    assert im.dims == ["y", "x"] and im.data.dtype == np.uint16
    np.testing.assert_array_equal(np.asarray(im.data), grey)


def test_glob_stack_of_pngs_is_lazy(tmp_path, rng):
    planes = rng.integers(0, 255, (11, 10, 14), dtype=np.uint8)
    for i, plane in enumerate(planes):
        iio.imwrite(tmp_path / f"slice_{i}.png", plane)  # natural order: 2 before 10
    im = open_input(str(tmp_path / "slice_*.png"))
    assert im.dims == ["z", "y", "x"] and im.data.shape == (11, 10, 14)
    assert im.data.chunks[0] == (1,) * 11  # one read per file
    assert im.kind == "PNG stack of 11 files"
    # Nothing was decoded when opening: planes rewritten now are what the stack reads.
    new = 255 - planes
    for i, plane in enumerate(new):
        iio.imwrite(tmp_path / f"slice_{i}.png", plane)
    # Reading one plane decodes that file only: the others may be gone meanwhile.
    away = tmp_path / "away"
    away.mkdir()
    for i in range(11):
        if i != 3:
            (tmp_path / f"slice_{i}.png").rename(away / f"slice_{i}.png")
    np.testing.assert_array_equal(im.data[3].compute(), new[3])
    for f in away.iterdir():
        f.rename(tmp_path / f.name)
    np.testing.assert_array_equal(im.data.compute(), new)


def test_list_stack_of_tiffs_reads_regions(tmp_path, rng):
    planes = rng.integers(0, 255, (3, 16, 12), dtype=np.uint16)
    paths = []
    for i, plane in enumerate(planes):
        paths.append(str(tmp_path / f"p{i}.tif"))
        tifffile.imwrite(paths[-1], plane)
    im = open_input(paths)
    assert im.dims == ["z", "y", "x"]
    stack = FileStack(paths, "tiff", (16, 12), np.dtype(np.uint16))
    np.testing.assert_array_equal(stack[1:3, 2:5, 4], planes[1:3, 2:5, 4])
    np.testing.assert_array_equal(im.data.compute(), planes)


def test_rgb_stack_channel_first(tmp_path, rng):
    planes = rng.integers(0, 255, (2, 8, 9, 3), dtype=np.uint8)
    paths = [str(tmp_path / f"c{i}.png") for i in range(2)]
    for p, plane in zip(paths, planes):
        iio.imwrite(p, plane)
    im = open_input(paths)
    assert im.dims == ["c", "z", "y", "x"]
    np.testing.assert_array_equal(im.data.compute(), np.moveaxis(planes, -1, 0))


def test_stack_members_must_match(tmp_path):
    iio.imwrite(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    iio.imwrite(tmp_path / "b.png", np.zeros((8, 9), np.uint8))
    with pytest.raises(InputFormatError, match="stack members differ"):
        open_input([str(tmp_path / "a.png"), str(tmp_path / "b.png")])
    iio.imwrite(tmp_path / "c.png", np.zeros((8, 8), np.uint16))
    with pytest.raises(InputFormatError, match="differ"):
        open_input([str(tmp_path / "a.png"), str(tmp_path / "c.png")])


def test_npy_memmap(tmp_path, volume):
    np.save(tmp_path / "v.npy", volume)
    im = open_input(str(tmp_path / "v.npy"))
    assert isinstance(im.data, np.memmap)
    assert im.dims is None and im.kind == "NumPy .npy"
    im = open_input(str(tmp_path / "v.npy"), dims="zyx")
    assert im.dims == ["z", "y", "x"]
    im = open_input(str(tmp_path / "v.npy"), dims="yxc")  # reordered lazily to c, y, x
    assert im.dims == ["c", "y", "x"] and hasattr(im.data, "dask")
    np.testing.assert_array_equal(im.data.compute(), np.moveaxis(volume, -1, 0))


def test_zarr_array_dimension_names(tmp_path, volume):
    path = str(tmp_path / "a.zarr")
    z = zarr.create_array(path, shape=volume.shape, chunks=(1, 20, 18), dtype=volume.dtype,
                          dimension_names=["z", "y", "x"])
    z[...] = volume
    im = open_input(path)
    assert isinstance(im.data, zarr.Array) and im.dims == ["z", "y", "x"]
    assert im.kind == "Zarr array"
    v2 = str(tmp_path / "b.zarr")
    z2 = zarr.create_array(v2, shape=volume.shape, dtype=volume.dtype, zarr_format=2)
    z2[...] = volume
    assert open_input(v2).dims is None


def test_ome_zarr_store_level0(tmp_path, volume):
    import ngff_gpu as nz

    image = nz.to_ngff_image(volume, dims=["z", "y", "x"], scale={"z": 2.0, "y": 0.5, "x": 0.5},
                             translation={"z": 1.0, "y": 0.0, "x": 3.0}, name="vol",
                             axes_units={"z": "micrometer", "y": "micrometer", "x": "micrometer"})
    ms = nz.to_multiscales(image, scale_factors=[2], chunks=16)
    for version in ("0.4", "0.5"):
        store = str(tmp_path / f"v{version}.ome.zarr")
        nz.to_ngff_zarr(store, ms, version=version, omero=True)
        im = open_input(store)
        assert im.kind == f"OME-Zarr {version}" and im.name == "vol"
        assert im.dims == ["z", "y", "x"]
        assert im.scale == {"z": 2.0, "y": 0.5, "x": 0.5}
        assert im.translation == {"z": 1.0, "y": 0.0, "x": 3.0}
        assert im.units == {"z": "micrometer", "y": "micrometer", "x": "micrometer"}
        assert im.omero and len(im.omero["channels"]) == 1
        assert isinstance(im.data, zarr.Array)
        np.testing.assert_array_equal(im.data[...], volume)


def test_zarr_group_without_metadata(tmp_path):
    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    g.create_array("a", shape=(4, 4), dtype="u1")
    with pytest.raises(InputFormatError, match="without OME-Zarr multiscales metadata"):
        open_input(str(tmp_path / "g.zarr"))


def test_errors(tmp_path, volume):
    with pytest.raises(InputFormatError, match="no such file: .*missing.tif"):
        open_input(str(tmp_path / "missing.tif"))
    with pytest.raises(InputFormatError, match="no file matches"):
        open_input(str(tmp_path / "*.png"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputFormatError, match="unrecognized format"):
        open_input(str(tmp_path / "notes.txt"))
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(InputFormatError, match="cannot read .*bad.tif"):
        open_input(str(tmp_path / "bad.tif"))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputFormatError):
        open_input(str(tmp_path / "bad.png"))
    np.save(tmp_path / "v.npy", volume)
    with pytest.raises(DimsError, match="name 2 axes but .* has 3"):
        open_input(str(tmp_path / "v.npy"), dims="yx")
    with pytest.raises(DimsError, match="unknown axis"):
        open_input(str(tmp_path / "v.npy"), dims="zyq")
    with pytest.raises(InputFormatError):
        open_input([])


def test_udunits():
    assert udunits("µm") == udunits("μm") == udunits("um") == udunits("micron") == "micrometer"
    assert udunits("nm") == "nanometer" and udunits("mm") == "millimeter"
    assert udunits("s") == "second" and udunits("ms") == "millisecond"
    assert udunits("Micrometer") == "micrometer"
    assert udunits("pixel") is None and udunits(None) is None


def test_omero_single_channel(rng):
    data = rng.normal(1000.0, 100.0, (20, 30, 40)).astype(np.float32)
    om = omero_from_data(data, ["z", "y", "x"])
    (ch,) = om["channels"]
    w = ch["window"]
    assert w["min"] <= w["start"] < w["end"] <= w["max"]
    assert w["start"] == pytest.approx(np.quantile(data, 0.001), rel=0.02)
    assert w["end"] == pytest.approx(np.quantile(data, 0.999), rel=0.02)
    assert ch["color"] == "FFFFFF" and om["rdefs"]["defaultZ"] == 10
    json.dumps(om)  # JSON-serializable


def test_omero_channels_int_and_nan(rng):
    data = rng.integers(0, 100, (3, 8, 9), dtype=np.uint16)
    data[1] += 1000
    om = omero_from_data(data, ["c", "y", "x"], labels=["r", "g", "b"])
    assert [c["label"] for c in om["channels"]] == ["r", "g", "b"]
    assert [c["color"] for c in om["channels"]] == ["FF0000", "00FF00", "0000FF"]
    assert om["channels"][1]["window"]["start"] >= 1000
    assert om["channels"][0]["window"]["max"] == 65535
    f = np.full((4, 4), np.nan, np.float32)
    assert omero_from_data(f, ["y", "x"])["channels"][0]["window"]["end"] == 1.0


def test_omero_subsample_is_capped():
    class Probe:
        shape, ndim, dtype = (400, 300, 300), 3, np.dtype(np.uint8)

        def __getitem__(self, key):
            sizes = [len(range(*k.indices(n))) for k, n in zip(key, self.shape)]
            assert int(np.prod(sizes)) <= 10_000
            return np.ones(sizes, np.uint8)

    out = _subsample(Probe(), ["z", "y", "x"], 10_000)
    assert 1000 < out.size <= 10_000
