"""OME-Zarr 0.6 scenes (``NgffScene``): written by ``to_ngff_zarr``, validated against the
official 0.6 ``scene`` schema (the copy ngff-zarr's wheel bundles), read back by ngff-zarr
0.50 and by ours; every rule of :func:`ngff_gpu.model.scene.check_scene` refused before
anything is written; a failed replacement leaves the old store as it was."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.errors import ArgumentError
from ngff_gpu.io.scene_write import write_scene
from ngff_gpu.io.write_api import to_ngff_zarr
from ngff_gpu.model.transforms import CoordinateSystemIdentifier as Ref

nzr = pytest.importorskip("ngff_zarr")
jsonschema = pytest.importorskip("jsonschema")
from ngff_zarr.validate import validate as schema_validate  # noqa: E402 - its bundled 0.6 schema


def _tile(seed: int, shape=(16, 16)) -> tuple[np.ndarray, nz.Multiscales]:
    data = np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)
    image = nz.to_ngff_image(data, dims=["y", "x"], scale={"y": 0.5, "x": 0.5},
                             axes_units={"y": "micrometer", "x": "micrometer"})
    return data, nz.to_multiscales(image, scale_factors=[2])


def _world(names: str = "yx") -> nz.CoordinateSystem:
    return nz.CoordinateSystem(name="world", axes=[nz.Axis(name=n, type="space",
                                                           unit="micrometer") for n in names])


def _to_world(path: str, offset: list[float]) -> nz.Translation:
    return nz.Translation(translation=list(offset), input=Ref(path=path, name="intrinsic"),
                          output=Ref(name="world"), name=f"{path} to world")


def _scene(paths=("tile_0", "tile_1"), offsets=None):
    pixels, images, transforms = {}, {}, []
    for i, path in enumerate(paths):
        pixels[path], images[path] = _tile(i)
        transforms.append(_to_world(path, offsets[i] if offsets else [0.0, 8.0 * i]))
    return pixels, nz.NgffScene(images=images, coordinateTransformations=transforms,
                                coordinateSystems=[_world()])


def _attrs(path) -> dict:
    return json.loads((path / "zarr.json").read_text())["attributes"]


def _check_store(store, scene, pixels) -> None:
    """Schema-valid root and images; ours and ngff-zarr read the same scene back."""
    attrs = _attrs(store)
    assert attrs["ome"]["version"] == "0.6"
    schema_validate(attrs, version="0.6", model="scene")
    for path in scene.images:
        schema_validate(_attrs(store / path), version="0.6")
    for read in (nz.from_ngff_zarr(store, kind="scene", validate=True),
                 nzr.from_ome_zarr(store, kind="scene", validate=True)):
        assert list(read.images) == list(dict.fromkeys(
            t.input.path for t in scene.coordinateTransformations))
        for path, data in pixels.items():
            np.testing.assert_array_equal(np.asarray(read.images[path].images[0].data), data)
        assert read.coordinateTransformations == scene.coordinateTransformations
        assert read.coordinateSystems == scene.coordinateSystems


def test_round_trip_layout_and_both_readers(tmp_path):
    pixels, scene = _scene()
    store = tmp_path / "tiles.ome.zarr"
    scene.to_ome_zarr(store)
    root = json.loads((store / "zarr.json").read_text())
    assert root["attributes"]["ome"]["scene"]["coordinateTransformations"][1] == {
        "type": "translation", "translation": [0.0, 8.0], "name": "tile_1 to world",
        "input": {"path": "tile_1", "name": "intrinsic"}, "output": {"name": "world"}}
    assert "tile_0/scale0/image" in root["consolidated_metadata"]["metadata"]
    _check_store(store, scene, pixels)
    read = nz.NgffScene.from_ome_zarr(store)
    assert isinstance(read, nz.NgffScene)
    assert read.images["tile_1"].metadata.coordinateSystems[0].name == "intrinsic"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paths=st.lists(st.sampled_from(["a", "b", "s/one", "s/two", "t/u/v"]), min_size=1,
                      max_size=3, unique=True),
       offsets=st.lists(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2,
                                 max_size=2), min_size=3, max_size=3))
def test_any_scene_round_trips(tmp_path_factory, paths, offsets):
    if any(p != q and q.startswith(p + "/") for p in paths for q in paths):
        return  # an image inside another image is no scene
    pixels, scene = _scene(paths, offsets)
    store = tmp_path_factory.mktemp("scene") / "s.ome.zarr"
    nz.to_ngff_zarr(store, scene)
    _check_store(store, scene, pixels)


def test_ngff_zarr_scene_objects_write_as_ours_read(tmp_path):
    """A scene built from ngff-zarr's classes writes the same JSON as ours."""
    from ngff_zarr.v06 import zarr_metadata as v06

    _, ours = _scene()
    theirs = nzr.NgffScene(
        images=ours.images,
        coordinateTransformations=[v06.Translation(
            translation=list(t.translation), name=t.name,
            input=nzr.CoordinateSystemIdentifier(path=t.input.path, name="intrinsic"),
            output=nzr.CoordinateSystemIdentifier(name="world"))
            for t in ours.coordinateTransformations],
        coordinateSystems=[nzr.CoordinateSystem(name="world", axes=[
            v06.Axis(name=n, type="space", unit="micrometer") for n in "yx"])])
    nz.to_ngff_zarr(tmp_path / "a", ours)
    nz.to_ngff_zarr(tmp_path / "b", theirs)
    assert _attrs(tmp_path / "a")["ome"] == _attrs(tmp_path / "b")["ome"]


def _tile0_to(name, path=None):
    return nz.Translation(translation=[0.0, 0.0], input=Ref(path="tile_0", name="intrinsic"),
                          output=Ref(path=path, name=name))


@pytest.mark.parametrize(("transforms", "match"), [
    ([], "at least one coordinate transformation"),
    ([_to_world("tile_9", [0.0, 0.0])], "does not contain"),
    ([_tile0_to("universe")], "does not declare"),
    ([_tile0_to("physical", path="tile_1")], "which declares"),
    ([nz.Translation(translation=[0.0, 0.0], input=Ref(path="tile_0"),
                     output=Ref(name="world"))], "must name a coordinate system"),
    ([_to_world("tile_0", [0.0, 0.0])], "unconnected groups"),
    ([_to_world("tile_0", [0.0, 0.0, 0.0]), _to_world("tile_1", [0.0, 0.0])],
     "3 translation values for the 2 axes"),
    ([nz.MapAxis([0, 1, 2], input=Ref(path="tile_0", name="intrinsic"),
                 output=Ref(name="world")), _to_world("tile_1", [0.0, 0.0])],
     "cannot read back.*mapAxis length 3"),
])
def test_write_refuses_a_scene_before_writing(tmp_path, transforms, match):
    _, scene = _scene()
    scene.coordinateTransformations = transforms
    store = tmp_path / "tiles.ome.zarr"
    with pytest.raises(ArgumentError, match=match):
        nz.to_ngff_zarr(store, scene)
    assert not store.exists()


@pytest.mark.parametrize(("edit", "match"), [
    (lambda s: setattr(s, "coordinateSystems", [_world(), _world()]), "non-empty and unique"),
    (lambda s: s.images.update({"../out": s.images.pop("tile_0")}),
     "relative path below the scene group"),
    (lambda s: setattr(s.coordinateSystems[0], "axes",
                       [nz.Axis(name=n, type="space") for n in "abcdef"]),
     r"scene.coordinateSystems\[0\].axes"),
])
def test_write_refuses_bad_systems_and_paths(tmp_path, edit, match):
    _, scene = _scene()
    edit(scene)
    with pytest.raises(ArgumentError, match=match):
        nz.to_ngff_zarr(tmp_path / "s.ome.zarr", scene)
    assert not (tmp_path / "s.ome.zarr").exists()


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_versions_before_0_6_are_refused(tmp_path, version):
    with pytest.raises(ArgumentError, match="0.6"):
        nz.to_ngff_zarr(tmp_path / "s.ome.zarr", _scene()[1], version=version)


def test_rfc3_axes_at_0_9_dev1(tmp_path):
    _, scene = _scene()
    scene.coordinateSystems[0].axes = [nz.Axis(name=n, type="space") for n in "abcdef"]
    nz.to_ngff_zarr(tmp_path / "dev1", scene, version="0.9.dev1")
    for read in (nz.from_ngff_zarr(tmp_path / "dev1", kind="scene", validate=True),
                 nzr.from_ome_zarr(tmp_path / "dev1", kind="scene", validate=True)):
        assert [a.name for a in read.coordinateSystems[0].axes] == list("abcdef")


def test_a_failed_replacement_keeps_the_old_store(tmp_path):
    pixels, scene = _scene()
    store = tmp_path / "tiles.ome.zarr"
    nz.to_ngff_zarr(store, scene)
    before = sorted(str(p.relative_to(store)) for p in store.rglob("*"))
    calls = []

    def failing(path, multiscales, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk gone")
        to_ngff_zarr(path, multiscales, **kwargs)

    with pytest.raises(OSError, match="disk gone"):
        write_scene(store, scene, failing)
    assert sorted(str(p.relative_to(store)) for p in store.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["tiles.ome.zarr"]  # no temporary left
    _check_store(store, scene, pixels)


def _field() -> nz.Multiscales:
    import dask.array as da

    image = nz.NgffImage(data=da.zeros((2, 16, 16), dtype=np.float32), dims=("c", "y", "x"),
                         scale={"c": 1.0, "y": 0.5, "x": 0.5},
                         translation={"c": 0.0, "y": 0.0, "x": 0.0},
                         axes_types={"c": "displacement"})
    return nz.to_multiscales(image, scale_factors=[])


def test_a_displacement_field_between_two_images(tmp_path):
    pixels, scene = _scene()
    warp = nz.Displacements(path="coordinateTransformations/dfield", interpolation="linear",
                            input=Ref(path="tile_0", name="intrinsic"),
                            output=Ref(path="tile_1", name="intrinsic"))
    scene.coordinateTransformations.append(warp)
    store = tmp_path / "registered.ome.zarr"
    with pytest.raises(ArgumentError, match="write those first"):
        nz.to_ngff_zarr(store, scene)
    with pytest.raises(ArgumentError, match="which the store does not hold"):
        nz.to_ngff_zarr(store, scene, overwrite=False)
    assert not store.exists()
    nz.to_ngff_zarr(store / warp.path, _field(), version="0.6")
    nz.to_ngff_zarr(store, scene, overwrite=False)
    consolidated = json.loads((store / "zarr.json").read_text())["consolidated_metadata"]
    assert f"{warp.path}/scale0/image" in consolidated["metadata"]
    _check_store(store, scene, pixels)
    field = nz.from_ngff_zarr(store / warp.path)
    assert [a.type for a in field.metadata.coordinateSystems[0].axes][0] == "displacement"


def test_overwrite_false_keeps_root_attributes_and_refuses_an_image_root(tmp_path):
    import zarr

    store = tmp_path / "tiles.ome.zarr"
    zarr.open_group(store, mode="w", zarr_format=3).attrs.put({"myorg:note": "kept"})
    nz.to_ngff_zarr(store, _scene()[1], overwrite=False)
    assert _attrs(store)["myorg:note"] == "kept" and "scene" in _attrs(store)["ome"]
    image = tmp_path / "image.ome.zarr"
    nz.to_ngff_zarr(image, _tile(0)[1], version="0.6")
    with pytest.raises(ArgumentError, match="already holds OME-Zarr metadata"):
        nz.to_ngff_zarr(image, _scene()[1], overwrite=False)
    assert "scene" not in _attrs(image)["ome"]


def test_kind_selects_what_a_store_holds(tmp_path):
    pixels, scene = _scene()
    store = tmp_path / "tiles.ome.zarr"
    nz.to_ngff_zarr(store, scene)
    with pytest.raises(ValueError, match="kind='scene'"):
        nz.from_ngff_zarr(store)
    with pytest.raises(ValueError, match="kind='scene'"):
        nz.from_ngff_zarr(store, kind="multiscales")
    image = nz.from_ngff_zarr(store / "tile_1")  # a path into a scene reads that image
    np.testing.assert_array_equal(np.asarray(image.images[0].data), pixels["tile_1"])
    with pytest.raises(ValueError, match="holds no scene"):
        nz.NgffScene.from_ome_zarr(store / "tile_1")
    with pytest.raises(ValueError, match="holds no scene"):
        nz.from_ngff_zarr(store / "tile_1", kind="scene")


def test_ozx_is_refused_on_write_and_read(tmp_path):
    from ngff_gpu.io.ozx import zip_store

    pixels, scene = _scene()
    store = tmp_path / "tiles.ome.zarr"
    nz.to_ngff_zarr(store, scene)
    with pytest.raises(ArgumentError, match="written to a directory path"):
        nz.to_ngff_zarr(tmp_path / "tiles.ozx", scene)
    zip_store(store, tmp_path / "tiles.ozx", version="0.6")
    read = nz.from_ngff_zarr(tmp_path / "tiles.ozx", kind="scene")
    np.testing.assert_array_equal(np.asarray(read.images["tile_1"].images[0].data),
                                  pixels["tile_1"])


def _edit_root(store, edit) -> None:
    document = json.loads((store / "zarr.json").read_text())
    edit(document["attributes"]["ome"]["scene"])
    (store / "zarr.json").write_text(json.dumps(document))


def test_validating_read_checks_the_references(tmp_path):
    store = tmp_path / "tiles.ome.zarr"
    nz.to_ngff_zarr(store, _scene()[1], consolidate_metadata=False)
    _edit_root(store, lambda s: s.pop("coordinateSystems"))
    assert nz.from_ngff_zarr(store, kind="scene").coordinateSystems is None
    with pytest.raises(ArgumentError, match="does not declare"):
        nz.from_ngff_zarr(store, kind="scene", validate=True)


@pytest.mark.parametrize("path", ["../tile_0", "..\\tile_0", "%2e%2e/tile_0", "/tile_0",
                                  "C:/tile_0", "C:tile_0"])
def test_read_refuses_image_paths_outside_the_scene(tmp_path, path):
    store = tmp_path / "tiles.ome.zarr"
    nz.to_ngff_zarr(store, _scene()[1], consolidate_metadata=False)
    _edit_root(store, lambda s: s["coordinateTransformations"][0]["input"].update(path=path))
    with pytest.raises(ArgumentError, match="relative path below the scene group"):
        nz.from_ngff_zarr(store, kind="scene")
    assert os.path.isdir(store)


@pytest.mark.parametrize("option", [{"labels": {"x": np.zeros((16, 16), np.uint8)}},
                                    {"omero": True}, {"resume": True}])
def test_image_only_options_are_refused_for_a_scene(tmp_path, option):
    with pytest.raises(ArgumentError, match="not available for a scene"):
        nz.to_ngff_zarr(tmp_path / "s.ome.zarr", _scene()[1], **option)
    assert not (tmp_path / "s.ome.zarr").exists()
