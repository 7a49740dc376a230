"""ngff-zarr 0.50's API as a drop-in: the two bugs of issue 19 (channel axis not first;
an ``NgffImage`` built around a NumPy array) and the names, parameters and store
behaviour added for it, each checked against ngff-zarr itself where it can be."""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np
import pytest
import zarr

import ngff_gpu as nz

nzr = pytest.importorskip("ngff_zarr")


@pytest.mark.parametrize("dims", ["zyxc", "yxc", "tzycx"])
def test_channel_axis_not_first_is_put_in_canonical_order(tmp_path, dims):
    """Regression (issue 19): a channel axis after space was kept in place, so the store
    had an order OME-Zarr forbids and validate_store refused it."""
    rng = np.random.default_rng(0)
    shape = {"t": 2, "z": 6, "y": 12, "x": 10, "c": 3}
    data = rng.integers(0, 255, [shape[d] for d in dims], dtype=np.uint8)
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=list(dims)), scale_factors=[2])
    canonical = tuple(d for d in "tczyx" if d in dims)
    assert ms.images[0].dims == canonical
    assert [a.name for a in ms.metadata.axes] == list(canonical)
    order = [dims.index(d) for d in canonical]
    np.testing.assert_array_equal(ms.images[0].data.compute(), np.transpose(data, order))
    out = tmp_path / "img.ome.zarr"
    nz.to_ngff_zarr(out, ms)
    assert nz.validate_store(out) == "0.5"
    theirs = nzr.to_multiscales(nzr.to_ngff_image(data, dims=tuple(dims)), scale_factors=[2])
    assert tuple(theirs.images[0].dims) == canonical
    back = nz.from_ngff_zarr(out)
    np.testing.assert_array_equal(back.images[1].data.compute().shape,
                                  theirs.images[1].data.shape)


def test_default_dims_are_ngff_zarrs():
    assert nz.to_ngff_image(np.zeros((2, 3, 4, 5))).dims == ("z", "y", "x", "c")
    ms = nz.to_multiscales(np.zeros((4, 8, 8, 2), np.uint8), scale_factors=[2])
    assert ms.images[0].dims == ("c", "z", "y", "x")


def test_ngff_image_built_around_numpy_data():
    """Regression (issue 19): NgffImage(data=<numpy array>) made to_multiscales crash."""
    data = np.arange(32 * 48, dtype=np.uint16).reshape(32, 48)
    image = nz.NgffImage(data=data, dims=("y", "x"), scale={"y": 1.0, "x": 2.0},
                         translation={"y": 0.0, "x": 0.0})
    ms = nz.to_multiscales(image, scale_factors=[2, 4])
    ref = nz.to_multiscales(nz.to_ngff_image(data, dims=("y", "x"), scale={"y": 1.0, "x": 2.0}),
                            scale_factors=[2, 4])
    for a, b in zip(ms.images, ref.images):
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())
    assert image.data is data  # the caller's image is not changed


def test_ngff_zarr_names_and_parameters(tmp_path):
    data = np.random.default_rng(1).integers(0, 4000, (16, 32, 32), dtype=np.uint16)
    image = nz.to_ngff_image(data, dims=("z", "y", "x"), axes_units={"z": "micrometer"},
                             channel_names=None)
    ms = nz.to_multiscales(data=image, scale_factors=[2], method=nz.Methods.ITKWASM_GAUSSIAN,
                           chunks=16, cache=False, orientation="LPS", axis_order="canonical")
    assert ms.metadata.axes[0].orientation.value == "inferior-to-superior"
    assert ms.metadata.type == "itkwasm_gaussian"
    assert ms.metadata.metadata.method == "ngff_gpu.gaussian (in place of itkwasm_downsample.downsample)"
    with pytest.raises(ValueError):
        nz.to_multiscales(image, axis_order="sideways")
    out = tmp_path / "a.ome.zarr"
    with pytest.warns(DeprecationWarning):
        nz.to_ome_zarr(out, ms, use_tensorstore=True, consolidate_metadata=True)
    root = json.loads((out / "zarr.json").read_text())
    assert "consolidated_metadata" in root  # as ngff-zarr writes it
    back = nz.from_ome_zarr(out, version="0.5")
    assert back.images[0].axes_orientations["x"].value == "right-to-left"
    with pytest.raises(ValueError):
        nz.from_ngff_zarr(out, version="0.4")
    with pytest.raises(TypeError, match="always written to the same local directory store"):
        nz.to_ngff_zarr(tmp_path / "b.ome.zarr", ms, chunk_store={})
    # ngff-zarr's migration messages for a removed keyword and for chunks=; any other
    # keyword is refused as Python refuses it; nothing is written
    for kwargs, message in (({"enabled_rfcs": [4]}, "no longer accepts 'enabled_rfcs'"),
                            ({"chunks": (16, 16)}, r"to_multiscales\(\.\.\., chunks="),
                            ({"memory_limt": "1G"}, "unexpected keyword argument 'memory_limt'")):
        with pytest.raises(TypeError, match=message):
            nz.to_ome_zarr(tmp_path / "b.ome.zarr", ms, **kwargs)
    assert not (tmp_path / "b.ome.zarr").exists()
    with pytest.raises(ValueError):
        nz.to_ngff_zarr(tmp_path / "b.ome.zarr", ms, filters=[object()])
    with pytest.raises(FileNotFoundError):
        nz.from_ngff_zarr(tmp_path / "missing.ome.zarr")
    # ngff-zarr reads what we wrote.
    theirs = nzr.from_ngff_zarr(str(out))
    np.testing.assert_array_equal(np.asarray(theirs.images[1].data),
                                  ms.images[1].data.compute())


def test_metadata_only_creates_the_arrays_without_pixels(tmp_path):
    ms = nz.to_multiscales(np.ones((32, 32), np.uint8), scale_factors=[2], chunks=16)
    out = tmp_path / "m.ome.zarr"
    nz.to_ngff_zarr(out, ms, metadata_only=True)
    group = zarr.open_group(out, mode="r")
    assert group["scale1/image"].shape == (16, 16)
    assert not any((out / "scale0" / "image" / "c").rglob("*"))  # no chunk written
    assert nz.from_ngff_zarr(out).metadata.datasets[1].path == "scale1/image"


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_big_endian_store_reads_in_native_order(tmp_path, version):
    data = np.arange(64, dtype=">u2").reshape(8, 8)
    ms = nz.to_multiscales(nz.to_ngff_image(data), scale_factors=[2])
    out = tmp_path / "be.ome.zarr"
    nzr.to_ngff_zarr(str(out), nzr.to_multiscales(nzr.to_ngff_image(data), scale_factors=[2]),
                     version=version)
    back = nz.from_ngff_zarr(out)
    assert back.images[0].data.dtype.isnative
    np.testing.assert_array_equal(back.images[0].data.compute(), data.astype("=u2"))
    assert ms.images[0].data.dtype == data.dtype


def test_version_06_written_validated_and_read_back_by_both(tmp_path):
    data = np.random.default_rng(2).integers(0, 255, (3, 16, 24, 24), dtype=np.uint8)
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=("c", "z", "y", "x"),
                                            scale={"z": 2.0, "y": 0.5, "x": 0.5}),
                           scale_factors=[2, 4], orientation="RAS")
    out = tmp_path / "v06.ome.zarr"
    nz.to_ngff_zarr(out, ms, version="0.6")
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    assert attrs["ome"]["version"] == "0.6"
    from ngff_zarr.validate import validate  # its bundled copy of the official 0.6 schema

    validate(attrs, version="0.6")
    entry = attrs["ome"]["multiscales"][0]
    seq = entry["datasets"][1]["coordinateTransformations"][0]
    assert seq["type"] == "sequence" and seq["output"] == {"name": "intrinsic"}
    theirs = nzr.from_ngff_zarr(str(out))
    cs = theirs.metadata.coordinateSystems[0]
    assert [a.name for a in cs.axes] == ["c", "z", "y", "x"]
    ours = nz.from_ngff_zarr(out)
    assert ours.metadata.version == "0.6"
    for a, b in zip(ours.images, ms.images):
        assert a.scale == b.scale and a.translation == b.translation
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())
    assert nz.validate_store(out) == "0.6"


def test_metadata_forms_convert_both_ways():
    ms = nz.to_multiscales(np.zeros((16, 16), np.uint8), scale_factors=[2, 4])
    m06 = ms.metadata.to_version("0.6")
    assert isinstance(m06, nz.Metadata06)
    assert m06.intrinsic_coordinate_system.name == "intrinsic"
    seq = m06.datasets[2].coordinateTransformations[0]
    assert [t.type for t in seq.transformations] == ["scale", "translation"]
    back = m06.to_version("0.5")
    assert back == ms.metadata
    assert ms.metadata.coordinateSystems[0].axes == ms.metadata.axes
    with pytest.raises(ValueError):
        ms.metadata.to_version("0.7")


def test_upgrade_in_place_between_05_and_06_keeps_chunks(tmp_path):
    ms = nz.to_multiscales(np.arange(1024, dtype=np.uint16).reshape(32, 32), scale_factors=[2])
    out = tmp_path / "u.ome.zarr"
    nz.to_ngff_zarr(out, ms)
    chunks = {p: p.read_bytes() for p in out.rglob("c/**/*") if p.is_file()}
    nz.upgrade_ome_zarr(out, version="0.6")
    assert nz.from_ngff_zarr(out).metadata.version == "0.6"
    assert {p: p.read_bytes() for p in out.rglob("c/**/*") if p.is_file()} == chunks
    nz.upgrade_ome_zarr(out, version="0.5")
    assert nz.validate_store(out) == "0.5"
    copy = tmp_path / "u04.ome.zarr"
    nz.upgrade_ome_zarr(out, copy, version="0.4")
    assert nz.validate_store(copy) == "0.4"


def test_compute_omero_and_root_attributes(tmp_path):
    data = np.random.default_rng(3).integers(0, 1000, (2, 32, 32), dtype=np.uint16)
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=("c", "y", "x"),
                                            channel_names=["a", "b"]), scale_factors=[2])
    omero = nz.compute_omero_from_multiscales(ms)
    assert [c.label for c in omero.channels] == ["a", "b"]
    lo, hi = np.quantile(data[0], [0.02, 0.98])
    assert abs(omero.channels[0].window.start - lo) < 50 and abs(omero.channels[0].window.end - hi) < 50
    ms.metadata.omero = omero
    ms.root_attributes = {"provenance": {"tool": "test"}}
    out = tmp_path / "o.ome.zarr"
    nz.to_ngff_zarr(out, ms)
    back = nz.from_ngff_zarr(out)
    assert back.root_attributes == {"provenance": {"tool": "test"}}
    assert [c.label for c in back.metadata.omero.channels] == ["a", "b"]
    assert back.images[0].channel_names == ["a", "b"]


def test_a_multiscales_of_ngff_zarr_is_written(tmp_path):
    theirs = nzr.to_multiscales(nzr.to_ngff_image(np.arange(256, dtype=np.uint8).reshape(16, 16)),
                                scale_factors=[2])
    out = tmp_path / "t.ome.zarr"
    nz.to_ngff_zarr(out, theirs)
    back = nz.from_ngff_zarr(out)
    np.testing.assert_array_equal(back.images[1].data.compute(), np.asarray(theirs.images[1].data))


@pytest.mark.parametrize("codec", ["zstd", "blosc-lz4", "gzip", "none"])
@pytest.mark.parametrize("target", ["0.5", "0.6"])
def test_upgrade_04_in_place_keeps_every_chunk_file(tmp_path, codec, target):
    data = np.random.default_rng(4).integers(0, 60000, (2, 20, 24), dtype=np.uint16)
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=("c", "y", "x")), scale_factors=[2],
                           chunks=8)
    out = tmp_path / "v04.ome.zarr"
    nz.to_ngff_zarr(out, ms, version="0.4", codec=codec)
    chunks = {p.relative_to(out): p.read_bytes() for p in out.rglob("*")
              if p.is_file() and not p.name.startswith((".z", "zarr.json"))}
    nz.upgrade_ome_zarr(out, version=target)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*")
             if p.is_file() and not p.name.startswith((".z", "zarr.json"))}
    assert after == chunks and chunks
    assert not list(out.rglob(".z*"))
    assert nz.validate_store(out) == target
    back = nz.from_ngff_zarr(out)
    for a, b in zip(back.images, ms.images):
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())
    theirs = nzr.from_ngff_zarr(str(out))
    np.testing.assert_array_equal(np.asarray(theirs.images[1].data), ms.images[1].data.compute())
    with pytest.raises(ValueError):
        nz.upgrade_ome_zarr(out, version="0.4")


@pytest.mark.parametrize("factors", [[2, 3], [2, 3, 6], [3, 4], [{"y": 2, "x": 3}, {"y": 3, "x": 4}]])
def test_non_integer_relative_factors_as_ngff_zarr(tmp_path, factors):
    """A level whose factors are not multiples of the previous level's is computed from
    the nearest earlier level whose factors divide its own; shapes, scale and
    translation equal ngff-zarr's (metadata exact)."""
    x = np.random.default_rng(5).integers(0, 255, (72, 60), dtype=np.uint8)
    ms = nz.to_multiscales(nz.to_ngff_image(x, dims=("y", "x")), scale_factors=factors)
    theirs = nzr.to_multiscales(nzr.to_ngff_image(x, dims=("y", "x")), scale_factors=factors)
    assert [im.data.shape for im in ms.images] == [im.data.shape for im in theirs.images]
    for a, b in zip(ms.images, theirs.images):
        assert a.scale == pytest.approx(dict(b.scale)) and a.translation == pytest.approx(
            dict(b.translation))
    # Each level is the downsample of its source level (the nearest one that divides it).
    levels = [np.asarray(im.data.compute()) for im in ms.images]
    absolute = [{"y": 1, "x": 1}] + [f if isinstance(f, dict) else {"y": f, "x": f}
                                     for f in factors]
    for k in range(1, len(levels)):
        j = max(i for i in range(k) if all(absolute[k][d] % absolute[i][d] == 0 for d in "yx"))
        rel = [absolute[k][d] // absolute[j][d] for d in "yx"]
        np.testing.assert_array_equal(levels[k], nz.downsample(levels[j], rel))
    out = tmp_path / "f.ome.zarr"
    nz.to_ngff_zarr(out, ms)
    assert nz.validate_store(out) == "0.5"
    back = nz.from_ngff_zarr(out)
    for a, b in zip(back.images, levels):
        np.testing.assert_array_equal(a.data.compute(), b)
    np.testing.assert_array_equal(nz.pyramid(x, factors)[-1], levels[-1])


def _bad_stores(root):
    """Stores that are not OME-Zarr images, each with the phrase ngff-zarr's error has."""
    (root / "empty.zarr").mkdir()
    (root / "junk.zarr").mkdir()
    (root / "junk.zarr" / "random.txt").write_text("not zarr")
    zarr.save(str(root / "array.zarr"), np.arange(5))
    g = zarr.open_group(root / "ome_only.zarr", mode="w", zarr_format=3)
    g.create_array("0", data=np.zeros((8, 8), np.uint8))
    g.attrs["ome"] = {"version": "0.5", "other": 1}
    g = zarr.open_group(root / "no_ome.zarr", mode="w", zarr_format=3)
    g.create_array("0", data=np.zeros((8, 8), np.uint8))
    g.attrs["multiscales"] = [{"version": "0.5", "datasets": [{"path": "0"}],
                               "axes": [{"name": "y", "type": "space"},
                                        {"name": "x", "type": "space"}]}]
    g = zarr.open_group(root / "empty_list.zarr", mode="w", zarr_format=2)
    g.create_array("0", data=np.zeros((8, 8), np.uint8))
    g.attrs["multiscales"] = []
    return {"empty.zarr": "No valid Zarr group found", "junk.zarr": "No valid Zarr group found",
            "array.zarr": "contains an array at the root level",
            "ome_only.zarr": "Available keys under 'ome'", "no_ome.zarr": "'ome' key",
            "empty_list.zarr": "Could not detect NGFF version"}


def test_store_errors_are_value_errors_with_ngff_zarrs_phrases(tmp_path):
    """Code that matches ngff-zarr's messages keeps working: each phrase is checked in
    ngff-zarr's own error for the same store first."""
    for name, phrase in _bad_stores(tmp_path).items():
        with pytest.raises(ValueError) as theirs:
            nzr.from_ngff_zarr(str(tmp_path / name))
        assert phrase in str(theirs.value), name
        with pytest.raises(ValueError, match=re.escape(phrase)):
            nz.from_ngff_zarr(str(tmp_path / name))
    with pytest.raises(ValueError, match="Unsupported target version"):
        nz.upgrade_ome_zarr(tmp_path / "empty.zarr", version="0.3")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_a_zipped_store_reads_as_ngff_zarr_reads_it(tmp_path, version):
    data = np.random.default_rng(3).integers(0, 255, (12, 10), dtype=np.uint8)
    store = tmp_path / "image.ome.zarr"
    nz.to_ngff_zarr(store, nz.to_multiscales(nz.to_ngff_image(data, dims=("y", "x")), [2]),
                    version=version)
    archive = tmp_path / "image.ome.zarr.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(store.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(store).as_posix())
    ours, theirs = nz.from_ngff_zarr(archive), nzr.from_ngff_zarr(str(archive))
    for a, b in zip(ours.images, theirs.images, strict=True):
        np.testing.assert_array_equal(np.asarray(a.data), np.asarray(b.data))


def _codecs(path):
    return json.loads((path / "scale0" / "image" / "zarr.json").read_text())["codecs"]


def test_compressors_as_ngff_zarr_reads_them(tmp_path):
    """One codec or a chain; a BytesCodec in it is the serializer; a numcodecs Blosc in
    Zarr v3 is stored as the v3 codec: the chain stored is ngff-zarr's for each."""
    numcodecs = pytest.importorskip("numcodecs")
    from zarr.codecs import BytesCodec, GzipCodec, ZstdCodec

    data = np.random.default_rng(5).integers(0, 255, (2, 32, 32), dtype=np.uint8)
    cases = [[BytesCodec()], [BytesCodec(), ZstdCodec(level=3), GzipCodec(level=2)],
             ZstdCodec(level=4), numcodecs.Blosc(cname="lz4", clevel=5)]
    for i, given in enumerate(cases):
        ours, theirs = tmp_path / f"o{i}.ome.zarr", tmp_path / f"t{i}.ome.zarr"
        nz.to_ngff_zarr(ours, nz.to_multiscales(nz.to_ngff_image(data, dims=("c", "y", "x")),
                                                [2]), compressors=given)
        nzr.to_ngff_zarr(str(theirs), nzr.to_multiscales(
            nzr.to_ngff_image(data, dims=("c", "y", "x")), scale_factors=[2]),
            compressors=given)
        assert _codecs(ours) == _codecs(theirs), given
        np.testing.assert_array_equal(np.asarray(nz.from_ngff_zarr(ours).images[0].data), data)
    with pytest.raises(TypeError, match="no Zarr v3"):
        nz.to_ngff_zarr(tmp_path / "x.ome.zarr", nz.to_multiscales(
            nz.to_ngff_image(data, dims=("c", "y", "x")), []),
            compressors=numcodecs.Delta(dtype="uint8"))
