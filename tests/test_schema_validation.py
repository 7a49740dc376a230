"""The JSON-schema pass of ``validate=True`` (``ngff_gpu.model.schema``): the official
OME-NGFF schemas bundled with the package, checked offline, in ngff-zarr 0.50's order
(schema, structural rules, arrays) and with its version handling (pre-release tags, the
superseded ``0.6.dev4``, forged versions). ngff-zarr's ``validate`` is the oracle of
what the schema accepts (hypothesis over edited documents)."""

from __future__ import annotations

import copy
import json
import pickle
import warnings
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import zarr
from cli_run import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.errors import InvalidStoreError, SchemaValidationError, StructuralValidationError
from ngff_gpu.model import schema
from ngff_gpu.model.scene import SCENE_VERSIONS

VERSIONS = ("0.4", "0.5", "0.6", "0.9.dev1")


def _write(path: Path, version: str, shape=(4, 16, 16), factors=(2,)) -> Path:
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    nz.to_ngff_zarr(path, nz.to_multiscales(data, list(factors)), version=version)
    return path


def _edit_ome(path: Path, edit) -> None:
    root = zarr.open_group(str(path), mode="r+")
    ome = root.attrs.asdict()["ome"]
    edit(ome)
    root.attrs["ome"] = ome


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("schema")
    return {v: _write(base / f"{v}.ome.zarr", v) for v in VERSIONS}


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_written_stores_pass_every_pass(stores):
    for version, path in stores.items():
        assert nz.validate_store(path) == version
        assert nz.from_ngff_zarr(path, validate=True).metadata is not None


@pytest.mark.parametrize("version", ["0.5", "0.6"])
def test_a_duplicate_multiscales_entry_breaks_the_schema_only(stores, tmp_path, version):
    # uniqueItems: a pure schema concern (the structural rules read multiscales[0] only).
    path = _copy(stores[version], tmp_path / "dup.ome.zarr")
    _edit_ome(path, lambda ome: ome.update(multiscales=ome["multiscales"] * 2))
    with pytest.raises(jsonschema.ValidationError) as info:
        nz.from_ngff_zarr(path, validate=True)
    error = info.value
    assert isinstance(error, SchemaValidationError) and isinstance(error, InvalidStoreError)
    assert error.version == version and error.schema_file == "image.schema"
    assert list(error.path) == ["ome", "multiscales"] and error.validator == "uniqueItems"
    assert str(path) in str(error) and "image.schema" in str(error)
    again = pickle.loads(pickle.dumps(error))
    assert isinstance(again, jsonschema.ValidationError) and str(again) == str(error)
    assert nz.from_ngff_zarr(path).images  # validate=False reads it
    assert_fails_cli(path, "non-unique elements")


def assert_fails_cli(path: Path, match: str) -> None:
    res = cli("validate", path)
    assert res.returncode == 1 and "invalid:" in res.stderr and match in res.stderr, res.stderr


def test_the_superseded_0_6_tag_warns_and_the_rest_is_checked(stores, tmp_path):
    path = _copy(stores["0.6"], tmp_path / "dev4.ome.zarr")
    _edit_ome(path, lambda ome: ome.update(version="0.6.dev4"))
    with pytest.warns(UserWarning, match="superseded 0.6 pre-release tag '0.6.dev4'"):
        assert len(nz.from_ngff_zarr(path, validate=True).images) == 2
    _edit_ome(path, lambda ome: ome["multiscales"][0].pop("coordinateSystems"))
    with pytest.warns(UserWarning, match="superseded"), \
            pytest.raises(SchemaValidationError, match="coordinateSystems"):
        nz.from_ngff_zarr(path, validate=True)


@pytest.mark.parametrize(("tag", "accepted"), [("0.6rc0", True), ("0.6.dev5", False)])
def test_a_pre_release_tag_is_checked_against_its_release(stores, tmp_path, tag, accepted):
    path = _copy(stores["0.6"], tmp_path / "pre.ome.zarr")
    _edit_ome(path, lambda ome: ome.update(version=tag))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing is substituted or reported
        if accepted:
            assert len(nz.from_ngff_zarr(path, validate=True).images) == 2
        else:
            with pytest.raises(SchemaValidationError, match=f"'{tag}' is not one of"):
                nz.from_ngff_zarr(path, validate=True)


@pytest.mark.parametrize("forged", ["../../../../../../etc", "0.7", "latest", "0.6.post1", "/etc"])
def test_a_version_no_schema_is_bundled_for_is_refused_by_name(stores, tmp_path, forged):
    path = _copy(stores["0.6"], tmp_path / "forged.ome.zarr")
    _edit_ome(path, lambda ome: ome.update(version=forged))
    for kwargs in ({"version": "0.6"}, {}):
        with pytest.raises(InvalidStoreError, match="No JSON Schema is bundled") as info:
            nz.from_ngff_zarr(path, validate=True, **kwargs)
        assert repr(forged) in str(info.value) and "ngff_schemas" not in str(info.value)


@given(st.text(max_size=20))
def test_schema_version_is_a_bundled_name_or_a_refusal(text):
    try:
        found = schema.schema_version(text)
    except InvalidStoreError as exc:
        assert "No JSON Schema is bundled" in str(exc) and repr(text) in str(exc)
    else:
        assert found in schema.BUNDLED_VERSIONS
        assert text == found or text.startswith(found)


def test_every_reference_resolves_offline():
    # Every $ref of every bundled file (0.6's cross-file ones included) resolves in the
    # version's registry: nothing would be fetched.
    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for version in schema.BUNDLED_VERSIONS:
        registry = schema.registry(version)
        for name, contents in schema._tree(version).items():  # noqa: SLF001
            resolver = registry.resolver(base_uri=contents.get("$id", ""))
            for ref in refs(contents):
                resolver.lookup(ref)  # raises when unresolvable
            assert name.endswith(".schema")


def test_the_bundled_files_are_the_official_ones():
    # The 0.5 and 0.6 files are the ones ngff-zarr's wheel bundles, byte for byte.
    theirs = resources.files("ngff_zarr").joinpath("spec")
    ours = resources.files("ngff_gpu.model").joinpath("ngff_schemas")
    for version in ("0.5", "0.6"):
        names = sorted(e.name for e in ours.joinpath(version).iterdir())
        assert names == sorted(e.name for e in theirs.joinpath(version, "schemas").iterdir()
                               if e.name.endswith(".schema"))
        for name in names:
            assert ours.joinpath(version, name).read_bytes() == \
                theirs.joinpath(version, "schemas", name).read_bytes()
    assert ours.joinpath("LICENSE").is_file()


# --- 0.9.dev1: derived from 0.6's schema by RFC-3 and RFC-4 -------------------------------


def test_0_9_dev1_refuses_an_unnamed_axis_and_the_flat_shape(stores, tmp_path):
    path = _copy(stores["0.9.dev1"], tmp_path / "unnamed.ome.zarr")
    _edit_ome(path, lambda ome: ome["multiscales"][0]["coordinateSystems"][0]["axes"][0]
              .pop("name"))
    with pytest.raises(SchemaValidationError, match="'name' is a required property"):
        nz.from_ngff_zarr(path, validate=True)

    flat = _copy(stores["0.9.dev1"], tmp_path / "flat.ome.zarr")

    def flatten(ome):
        entry = ome["multiscales"][0]
        entry["axes"] = entry.pop("coordinateSystems")[0]["axes"]
        for ds in entry["datasets"]:
            ds["coordinateTransformations"] = ds["coordinateTransformations"][0].get(
                "transformations", ds["coordinateTransformations"])
    _edit_ome(flat, flatten)
    with pytest.raises(jsonschema.ValidationError):
        nz.from_ngff_zarr(flat, validate=True)


def test_0_9_dev1_lifts_the_axis_limits_and_checks_orientations(tmp_path):
    # RFC-3: six axes of any type pass the derived schema (0.6's has at most five).
    data = np.zeros((2, 2, 2, 3, 8, 8), np.uint8)
    dims = ("t", "c", "angle", "z", "y", "x")
    image = nz.to_ngff_image(data, dims=dims, axes_types={"angle": "angle"})
    path = tmp_path / "six.ome.zarr"
    nz.to_ngff_zarr(path, nz.to_multiscales(image, []), version="0.9.dev1")
    assert nz.validate_store(path) == "0.9.dev1"
    # RFC-4: an orientation outside the vocabulary is the schema's to refuse.
    _edit_ome(path, lambda ome: ome["multiscales"][0]["coordinateSystems"][0]["axes"][5]
              .update(orientation={"type": "anatomical", "value": "up-to-down"}))
    with pytest.raises(SchemaValidationError, match="'up-to-down' is not one of"):
        nz.validate_store(path)


# --- 0.4 metadata in a Zarr v3 group, and the order of the passes -------------------------


@pytest.mark.parametrize("orientation_axis", [0, 2])
def test_a_0_4_document_in_a_zarr_v3_group_reads_validated(tmp_path, orientation_axis):
    # What zarr.open_group(mode="w") makes: ngff-zarr and the 0.4 schema accept it;
    # ome-zarr-models' 0.4 model cannot open its arrays. RFC-4 is inert below 0.9.dev1,
    # so an orientation on the time axis or out of the vocabulary reads cleanly.
    store = tmp_path / "v3.zarr"
    root = zarr.open_group(str(store), mode="w")
    root.create_array("0", shape=(2, 10, 10), dtype="uint8")
    axes = [{"name": "t", "type": "time"}, {"name": "y", "type": "space"},
            {"name": "x", "type": "space"}]
    axes[orientation_axis]["orientation"] = {"type": "anatomical", "value": "not-a-direction"}
    root.attrs["multiscales"] = [{"version": "0.4", "name": "test", "axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0] * 3}]}]}]
    ms = nz.from_ngff_zarr(store, validate=True)
    assert [a.name for a in ms.metadata.axes] == ["t", "y", "x"]
    # ...while the schema still runs on it: a dataset without a path breaks it.
    attrs = root.attrs.asdict()
    del attrs["multiscales"][0]["datasets"][0]["path"]
    root.attrs["multiscales"] = attrs["multiscales"]
    with pytest.raises(SchemaValidationError, match="'path' is a required property"):
        nz.from_ngff_zarr(store, validate=True)


def test_the_schema_runs_before_the_structural_rules(stores, tmp_path):
    path = _copy(stores["0.5"], tmp_path / "both.ome.zarr")

    def both(ome):
        entry = ome["multiscales"][0]
        entry["axes"] = entry["axes"][::-1]  # axis-order broken
        ome["multiscales"] = [entry, entry]  # uniqueItems broken
    _edit_ome(path, both)
    with pytest.raises(SchemaValidationError):
        nz.from_ngff_zarr(path, validate=True)
    _edit_ome(path, lambda ome: ome.update(multiscales=ome["multiscales"][:1]))
    with pytest.raises(StructuralValidationError, match=r"\[axis-order\]"):
        nz.from_ngff_zarr(path, validate=True)


@pytest.mark.parametrize("missing", ["absent", "null"])
def test_a_0_5_block_without_a_version_is_checked_as_0_5(stores, tmp_path, missing):
    # As ngff-zarr reads it: the schema sees "0.5", the 0.5 namespacing rule still runs.
    path = _copy(stores["0.5"], tmp_path / "noversion.ome.zarr")

    def edit(ome):
        if missing == "absent":
            del ome["version"]
        else:
            ome["version"] = None
        ome["multiscales"][0]["ome"] = {"version": "0.5"}
    _edit_ome(path, edit)
    with pytest.raises(StructuralValidationError, match=r"\[ome-namespace\]"):
        nz.from_ngff_zarr(path, validate=True)


# --- scenes -------------------------------------------------------------------------------


def test_a_scene_is_checked_against_the_scene_schema(tmp_path):
    from ngff_gpu.model.transforms import CoordinateSystemIdentifier as Ref

    assert "0.6" in SCENE_VERSIONS
    world = nz.CoordinateSystem(name="world", axes=[nz.Axis(name=n, type="space")
                                                    for n in "yx"])
    to_world = nz.Translation(translation=[0.0, 8.0], input=Ref(path="tile_0", name="intrinsic"),
                              output=Ref(name="world"))
    scene = nz.NgffScene(images={"tile_0": nz.to_multiscales(np.zeros((8, 8), np.uint8), [])},
                         coordinateTransformations=[to_world], coordinateSystems=[world])
    path = tmp_path / "tiles.ome.zarr"
    nz.to_ngff_zarr(path, scene, version="0.6")
    assert nz.from_ngff_zarr(path, kind="scene", validate=True).images
    doc = json.loads((path / "zarr.json").read_text())
    doc["attributes"]["ome"]["scene"]["coordinateTransformations"] = []
    (path / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(jsonschema.ValidationError, match="should be non-empty") as info:
        nz.from_ngff_zarr(path, kind="scene", validate=True)
    assert info.value.schema_file == "scene.schema"
    nz.from_ngff_zarr(path, kind="scene")  # read without validating: parsed as it is


# --- ngff-zarr's validate as the oracle of what the schema accepts ------------------------


def _paths(node, prefix=()):
    """Every (path, value) of a JSON tree."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


_REPLACEMENTS = st.sampled_from([None, "", "x", 0, -1, 2.5, True, [], {}, [1.0], {"a": 1}])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_schema_pass_agrees_with_ngff_zarr(stores, data):
    from ngff_zarr.validate import validate as their_validate

    version = data.draw(st.sampled_from(VERSIONS))  # 0.9.dev1: against ngff-zarr's own tree
    attrs = zarr.open_group(str(stores[version]), mode="r").attrs.asdict()
    doc = copy.deepcopy(attrs)
    paths = [p for p, _ in _paths(doc) if p]
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(_REPLACEMENTS)
    recorded = schema._recorded_version(doc)  # noqa: SLF001
    try:
        their_version = schema.schema_version(recorded)
    except InvalidStoreError:
        with pytest.raises(InvalidStoreError, match="No JSON Schema is bundled"):
            schema.validate_document(doc)
        return
    try:
        ome = doc.get("ome")
        floored = {**doc, "ome": {**ome, "version": "0.5"}} if isinstance(ome, dict) and \
            ome.get("version") is None else doc  # ngff-zarr's 0.5 reader floors a None
        their_validate(floored, version=their_version)
        theirs = None
    except jsonschema.ValidationError as exc:
        theirs = exc
    try:
        schema.validate_document(doc)
        ours = None
    except SchemaValidationError as exc:
        ours = exc
    assert (ours is None) == (theirs is None), (path, ours, theirs)
