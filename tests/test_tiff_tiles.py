"""The TIFF tile reader (``TiffTiles``): any region of any layout it takes equals
tifffile's own read of the whole series; layouts it does not take stay with
tifffile's zarr store; a damaged tile is one error naming the file."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs import open_input, tiff_tiles
from ngff_gpu.io.inputs.common import RegionArray
from ngff_gpu.io.inputs.tiff_tiles import TiffTiles


def _supported(path) -> bool:
    with tifffile.TiffFile(path) as tif:
        return TiffTiles.supports(tif, tif.series[0])


@st.composite
def _layouts(draw):
    """A volume and the keywords to write it: tiles or strips, 0-2 page axes, grey or RGB,
    integer or float samples, with or without a predictor."""
    n_lead = draw(st.integers(0, 2))
    # (tifffile squeezes axes of length 1 and reads tiny planes as samples: sizes from 2)
    lead = tuple(draw(st.integers(2, 4)) for _ in range(n_lead))
    plane = (draw(st.integers(2, 40)), draw(st.integers(5, 40)))
    rgb = draw(st.booleans())
    dtype = np.dtype(draw(st.sampled_from(["uint8", "uint16", "int32", "float32"])))
    if rgb:
        dtype = np.dtype("uint8")
    shape = lead + plane + ((3,) if rgb else ())
    kw: dict = {"photometric": "rgb" if rgb else "minisblack",
                "compression": draw(st.sampled_from(["zlib", "lzma", "lzw", "zstd", "packbits",
                                                     None]))}
    if kw["compression"] is None:  # (uncompressed: tiled, else one contiguous block)
        kw["tile"] = (16, 16)
    if "tile" in kw or draw(st.booleans()):
        kw["tile"] = (16 * draw(st.integers(1, 2)), 16 * draw(st.integers(1, 3)))
    else:
        kw["rowsperstrip"] = draw(st.integers(1, 12))
    if kw["compression"] not in (None, "packbits") and draw(st.booleans()):
        kw["predictor"] = True  # horizontal differencing, floating point for floats
    return shape, dtype, kw


def _key(draw, shape):
    key = []
    for n in shape:
        kind = draw(st.sampled_from(["all", "range", "step", "int"]))
        if kind == "int":
            key.append(draw(st.integers(-n, n - 1)))
        elif kind == "all":
            key.append(slice(None))
        else:
            a, b = sorted((draw(st.integers(0, n)), draw(st.integers(0, n))))
            step = draw(st.sampled_from([2, 3, -1, -2])) if kind == "step" else 1
            key.append(slice(a, b, step) if step > 0 else slice(b, a if a else None, step))
    return tuple(key)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(layout=_layouts(), data=st.data(), workers=st.sampled_from([1, 3]),
       task_bytes=st.sampled_from([1, 1 << 16]), per_worker=st.sampled_from([1, 4, 10**9]))
def test_any_region_equals_tifffile(tmp_path, layout, data, workers, task_bytes, per_worker):
    shape, dtype, kw = layout
    rng = np.random.default_rng(0)
    vol = (rng.integers(0, 250, shape) if dtype.kind in "ui"
           else rng.normal(size=shape)).astype(dtype)
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, vol, **kw)
    with tifffile.TiffFile(path) as tif:
        assert TiffTiles.supports(tif, tif.series[0]) == (tif.series[0].dataoffset is None)
        if tif.series[0].dataoffset is not None:  # uncompressed, one block: tifffile's store
            return
    tiles = TiffTiles(str(path), workers=workers)
    default_task_bytes = tiff_tiles._TASK_BYTES, tiff_tiles._TASKS_PER_WORKER
    tiff_tiles._TASK_BYTES = task_bytes  # 1: every segment row a unit of its own
    tiff_tiles._TASKS_PER_WORKER = per_worker  # 10**9: every unit a task of its own
    try:
        assert tiles.shape == vol.shape and tiles.dtype == vol.dtype
        for _ in range(4):
            key = _key(data.draw, shape)
            got = tiles[key]
            assert got.dtype == vol.dtype and np.array_equal(got, vol[key]), key
        # decoding straight into a view of a larger buffer touches that view only
        region = [tuple(sorted((data.draw(st.integers(0, n)), data.draw(st.integers(0, n)))))
                  for n in shape]
        buf = np.full(tuple(b - a + 2 for a, b in region), 7, dtype=vol.dtype)
        view = buf[(slice(1, -1),) * len(shape)]
        tiles.read_into(region, view)
        assert np.array_equal(view, vol[tuple(slice(a, b) for a, b in region)])
        view[...] = 7
        assert (buf == 7).all()
        # the read stage's grid: each cell lies inside one segment (tile or strip) per page
        assert len(tiles.chunks) == len(shape)
        assert tiles.chunks[len(shape) - (3 if len(shape) > 2 and kw["photometric"] == "rgb"
                                          else 2):][:2] == tiles._seg
    finally:
        tiff_tiles._TASK_BYTES, tiff_tiles._TASKS_PER_WORKER = default_task_bytes
        tiles.close()


def test_pickled_reader_reopens_the_file(tmp_path):
    vol = np.arange(4 * 40 * 36, dtype=np.uint16).reshape(4, 40, 36)
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, vol, tile=(16, 16), compression="zlib", photometric="minisblack")
    tiles = TiffTiles(str(path))
    clone = pickle.loads(pickle.dumps(tiles))
    assert np.array_equal(clone[1:3, 5:30, 7:], vol[1:3, 5:30, 7:])
    assert np.array_equal(clone[...], vol) and np.array_equal(clone[1, ..., 3], vol[1, ..., 3])
    with pytest.raises(IndexError):
        clone[0, 0, 0, 0]
    clone.close()
    tiles.close()


@pytest.mark.parametrize("kw", [
    {"compression": None},  # one contiguous block (tifffile memory-maps it)
    {"tile": (16, 16), "compression": "zlib", "planarconfig": "separate",
     "photometric": "rgb"},  # samples in separate planes
])
def test_other_layouts_keep_tifffiles_store(tmp_path, kw):
    shape = (3, 40, 36) if kw.get("planarconfig") else (2, 40, 36)
    vol = np.random.default_rng(1).integers(0, 255, shape).astype(np.uint8)
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, vol, **kw)
    assert not _supported(path)
    with pytest.raises(ValueError, match="layout TiffTiles does not read"):
        TiffTiles(str(path))
    opened = open_input(str(path))
    assert not isinstance(opened.data, RegionArray)
    assert np.array_equal(np.asarray(opened.data[...]), vol)


def test_opened_tiff_is_read_by_the_engine_without_dask(tmp_path):
    """``to_ngff_image`` keeps the reader as the image's source, so the engine reads
    it on its tile grid (not through a dask graph)."""
    vol = np.random.default_rng(2).integers(0, 60000, (6, 48, 40)).astype(np.uint16)
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, vol, tile=(16, 16), compression="zlib", photometric="minisblack")
    opened = open_input(str(path), dims=["z", "y", "x"])
    assert isinstance(opened.data, RegionArray) and opened.data.chunks == (6, 16, 16)
    img = nz.to_ngff_image(opened.data, dims=["z", "y", "x"])
    assert img.source is opened.data and img.reads_source()
    ms = nz.to_multiscales(img, [2], chunks=16)
    assert np.array_equal(np.asarray(ms.images[0].data), vol)


def test_damaged_tile_names_the_file(tmp_path):
    vol = np.random.default_rng(3).integers(0, 1000, (4, 64, 64)).astype(np.uint16)
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, vol, tile=(32, 32), compression="zlib", photometric="minisblack")
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages[2].dataoffsets[1], tif.pages[2].databytecounts[1]
    raw[offset:offset + count] = b"\1" * count
    path.write_bytes(bytes(raw))
    opened = open_input(str(path))
    assert isinstance(opened.data, RegionArray)
    assert np.array_equal(opened.data[:2], vol[:2])  # the undamaged pages read
    with pytest.raises(InputFormatError, match=r"cannot decode .*z\.tif"):
        opened.data[2]


@pytest.mark.parametrize("compression,reader", [("lzw", "tiles"), ("zstd", "tiles"),
                                                ("jpeg", "store")])
def test_common_codecs_convert_from_the_cli(tmp_path, compression, reader):
    """LZW, zstd (our reader) and JPEG (tifffile's store: per-page tables) TIFFs convert;
    level 0 holds exactly what tifffile reads."""
    from cli_run import cli

    vol = np.random.default_rng(4).integers(0, 255, (8, 48, 40)).astype(np.uint8)
    path = tmp_path / f"{compression}.tif"
    tifffile.imwrite(path, vol, tile=(16, 16), compression=compression, photometric="minisblack")
    opened = open_input(str(path))
    assert isinstance(opened.data, RegionArray) == (reader == "tiles")
    out = tmp_path / "out.ome.zarr"
    res = cli("convert", path, out, "-q")
    assert res.returncode == 0, res.stderr
    assert nz.validate_store(out) == "0.5"
    import zarr

    group = zarr.open_group(out, mode="r")
    level0 = group[nz.from_ngff_zarr(out).metadata.datasets[0].path][...]
    assert np.array_equal(level0, tifffile.imread(path))


def test_pages_of_another_file_keep_tifffiles_store(tmp_path):
    """A series whose pages live in another file (multi-file OME-TIFF) is not ours to pread."""
    import types

    path = tmp_path / "in.tif"
    tifffile.imwrite(path, np.zeros((3, 32, 32), np.uint16), tile=(16, 16), compression="zlib",
                     photometric="minisblack")
    with tifffile.TiffFile(path) as tif, tifffile.TiffFile(path) as other:
        series = tif.series[0]
        assert TiffTiles.supports(tif, series)
        pages = list(series.pages)
        foreign = types.SimpleNamespace(parent=other, dataoffsets=pages[1].dataoffsets)
        fake = types.SimpleNamespace(keyframe=series.keyframe, shape=series.shape,
                                     dataoffset=None, pages=[pages[0], foreign, pages[2]])
        assert not TiffTiles.supports(tif, fake)


def test_read_into_checks_its_arguments(tmp_path):
    path = tmp_path / "in.tif"
    vol = np.random.default_rng(0).integers(0, 9, (4, 32, 32), dtype=np.uint16)
    tifffile.imwrite(path, vol, tile=(16, 16), compression="zlib", photometric="minisblack")
    tiles = TiffTiles(str(path))
    try:
        with pytest.raises(ValueError, match="not inside"):
            tiles.read_into([(0, 5), (0, 32), (0, 32)], np.empty((5, 32, 32), np.uint16))
        with pytest.raises(ValueError, match="shape"):
            tiles.read_into([(0, 4), (0, 32), (0, 32)], np.empty((4, 32, 31), np.uint16))
        with pytest.raises(ValueError, match="dtype"):
            tiles.read_into([(0, 4), (0, 32), (0, 32)], np.empty((4, 32, 32), np.float32))
    finally:
        tiles.close()


def test_engine_decodes_tiff_boxes_in_place(tmp_path, monkeypatch):
    """Through the CLI's opener, the engine decodes a TIFF box that lies inside its brick
    straight into the brick (``RegionArray.read_into`` -> ``TiffTiles.read_into``): a
    MEAN conversion (no halo) never calls the copying ``read`` for data; the levels are
    exact."""
    vol = np.random.default_rng(1).integers(0, 60000, (24, 64, 64)).astype(np.uint16)
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, vol, tile=(16, 16), compression="zlib", photometric="minisblack")
    calls = []
    real = TiffTiles.read
    monkeypatch.setattr(TiffTiles, "read", lambda self, key: calls.append(key) or real(self, key))
    opened = open_input(str(path), dims=["z", "y", "x"])
    ms = nz.to_multiscales(nz.to_ngff_image(opened.data, dims=["z", "y", "x"]),
                           scale_factors=[2], chunks=16, method="mean")
    store = zarr.storage.MemoryStore()
    nz.to_ngff_zarr(store, ms)
    # (empty reads are metadata probes: nothing decoded)
    assert [k for k in calls if all(sl.stop > sl.start for sl in k)] == []
    want = nz.to_multiscales(vol, scale_factors=[2], chunks=16, method="mean")
    got = zarr.open_group(store, mode="r")
    for k, ds in enumerate(ms.metadata.datasets):
        assert np.array_equal(got[ds.path][...], np.asarray(want.images[k].data)), k


def test_region_array_read_into_names_the_file_and_falls_back():
    from ngff_gpu.io.inputs.common import RegionArray

    def broken(region, out):
        raise ValueError("bad tile")

    arr = RegionArray((4, 4), np.uint16, lambda key: np.zeros((4, 4))[key], "/x/in.tif",
                      read_into=broken)
    with pytest.raises(InputFormatError, match="/x/in.tif.*bad tile"):
        arr.read_into([(0, 4), (0, 4)], np.empty((4, 4), np.uint16))
    plain = RegionArray((4, 4), ">u2", lambda key: np.arange(16, dtype=">u2").reshape(4, 4)[key],
                        "/x/in.nrrd")
    out = np.empty((2, 3), np.uint16)
    plain.read_into([(1, 3), (0, 3)], out)
    assert np.array_equal(out, np.arange(16).reshape(4, 4)[1:3, 0:3])
