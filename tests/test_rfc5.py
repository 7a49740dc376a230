"""OME-Zarr 0.6 (RFC-5): every transformation type to JSON and back, multiscale-level
transformations between coordinate systems written (matrices as arrays, as ngff-zarr
0.50 stores them), validated against the official 0.6 schema (the copy ngff-zarr's wheel
bundles) and read back by ngff-zarr and by ours, and the RFC-5 rules checked before a
write."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.errors import ArgumentError, InvalidStoreError
from ngff_gpu.model.transforms import (
    Affine,
    Bijection,
    ByDimension,
    ByDimensionItem,
    Coordinates,
    CoordinateSystemIdentifier,
    Displacements,
    Identity,
    MapAxis,
    ProjectAxis,
    Rotation,
    Scale,
    TransformSequence,
    Translation,
)
from ngff_gpu.model.transforms_json import transform_json, transforms_from_json

nzr = pytest.importorskip("ngff_zarr")
jsonschema = pytest.importorskip("jsonschema")
from ngff_zarr.validate import validate as schema_validate  # noqa: E402 - its bundled 0.6 schema


def _ends(a: str = "in", b: str = "out") -> dict:
    return {"input": CoordinateSystemIdentifier(name=a),
            "output": CoordinateSystemIdentifier(name=b)}


EVERY_TYPE = [
    Identity(**_ends()),
    Scale([2.0, 0.5], name="s", **_ends()),
    Translation([1.0, -3.5], **_ends()),
    Rotation([[0.0, -1.0], [1.0, 0.0]], **_ends()),
    Affine([[1.0, 0.0, 4.0], [0.0, 2.0, -1.0]], **_ends()),
    Affine([], path="coordinateTransformations/a", **_ends()),
    MapAxis([1, 0], **_ends()),
    ProjectAxis(droppedInputs=[2], **_ends()),
    ProjectAxis(createdOutputs=[0, 1], **_ends()),
    Displacements(path="field", interpolation="linear", **_ends()),
    Coordinates(path="coords", **_ends()),
    ByDimension([ByDimensionItem(Scale([2.0]), [0], [1]),
                 ByDimensionItem(Translation([1.0]), [1], [0])], **_ends()),
    Bijection(forward=Affine([[2.0, 0.0], [0.0, 1.0]]),
              inverse=Affine([[0.5, 0.0], [0.0, 1.0]]), **_ends()),
    TransformSequence([Scale([2.0, 2.0]), Translation([1.0, 1.0])], **_ends()),
]


@pytest.mark.parametrize("t", EVERY_TYPE, ids=lambda t: t.type)
def test_every_rfc5_type_round_trips_through_json(t):
    doc = transform_json(t, "t", inline=True)
    assert doc["type"] == t.type and doc["input"] == {"name": "in"}
    back = transforms_from_json([json.loads(json.dumps(doc))], None, "t", "0.6")
    assert back == [t]
    # ngff-zarr's class of the same name compares equal (read by attribute both ways)
    theirs = getattr(nzr.v06.zarr_metadata, type(t).__name__, None)
    if theirs is not None and t.type in ("scale", "translation", "mapAxis"):
        other = theirs(**{t.type: getattr(t, t.type)}, input=t.input, output=t.output,
                       name=t.name)
        assert t == other


def test_04_and_05_keep_only_scale_and_translation():
    doc = [{"type": "identity"}, {"type": "scale", "scale": [1.0, 2.0]}]
    assert transforms_from_json(doc, 2, "t", "0.5") == [Scale([1.0, 2.0])]
    with pytest.raises(InvalidStoreError, match="expected 'scale'"):
        transforms_from_json([{"type": "affine", "affine": [[1, 0, 0]]}], 2, "t", "0.5")


@pytest.mark.parametrize("make, message", [
    (lambda: MapAxis([0, 0]), "permutation"),
    (lambda: ProjectAxis(), "droppedInputs, createdOutputs"),
    (lambda: ByDimension([ByDimensionItem(Scale([1.0]), [0], [0]),
                          ByDimensionItem(Scale([1.0]), [1], [0])]), "exactly one"),
    (lambda: ByDimensionItem(Scale([1.0, 2.0]), [0], [0]), "2-dimensional"),
])
def test_own_parameters_are_checked_on_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def _pyramid():
    data = np.random.default_rng(7).integers(0, 255, (2, 12, 16, 16), dtype=np.uint8)
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=("c", "z", "y", "x"),
                                            scale={"z": 2.0, "y": 0.5, "x": 0.5},
                                            axes_units={"z": "micrometer", "y": "micrometer",
                                                        "x": "micrometer"}),
                           scale_factors=[2])
    return data, ms


def _with_physical(ms, transform):
    meta = ms.metadata.to_version("0.6")
    axes = [nz.Axis(name=a.name, type=a.type, unit=a.unit) for a in meta.axes]
    meta.coordinateSystems.append(nz.CoordinateSystem(name="physical", axes=axes))
    meta.coordinateTransformations = [transform]
    ms.metadata = meta
    return ms


AFFINE = [[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 10.0],
          [0.0, 0.0, 0.6, -0.8, 0.0], [0.0, 0.0, 0.8, 0.6, 2.5]]


@pytest.mark.parametrize("own_classes", [True, False], ids=["ngff_gpu", "ngff_zarr"])
def test_multiscale_level_affine_written_as_array_validated_and_read_by_both(tmp_path,
                                                                            own_classes):
    data, ms = _pyramid()
    ends = dict(input=CoordinateSystemIdentifier(name="intrinsic"),
                output=CoordinateSystemIdentifier(name="physical"))
    if own_classes:
        affine = Affine(AFFINE, name="to_physical", **ends)
    else:  # a user who built the transformation with ngff-zarr's classes
        v06 = nzr.v06.zarr_metadata
        affine = v06.Affine(affine=AFFINE, name="to_physical",
                            input=v06.CoordinateSystemIdentifier(name="intrinsic"),
                            output=v06.CoordinateSystemIdentifier(name="physical"))
    ms = _with_physical(ms, affine)
    out = tmp_path / "affine.ome.zarr"
    nz.to_ngff_zarr(out, ms, version="0.6")
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    schema_validate(attrs, version="0.6")
    schema_validate(attrs, version="0.6", strict=True)
    entry = attrs["ome"]["multiscales"][0]
    [stored] = entry["coordinateTransformations"]
    assert stored["type"] == "affine" and "affine" not in stored
    assert stored["path"] == "coordinateTransformations/to_physical"
    assert [cs["name"] for cs in entry["coordinateSystems"]] == ["intrinsic", "physical"]
    import zarr

    np.testing.assert_array_equal(zarr.open_array(out / stored["path"])[...], AFFINE)
    assert nz.validate_store(out) == "0.6"

    ours = nz.from_ngff_zarr(out)
    assert isinstance(ours.metadata, nz.Metadata06)
    [back] = ours.metadata.coordinateTransformations
    assert back == Affine(AFFINE, path=stored["path"], name="to_physical", **ends)
    assert [cs.name for cs in ours.metadata.coordinateSystems] == ["intrinsic", "physical"]
    for a, b in zip(ours.images, ms.images):
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())
        assert a.scale == b.scale and a.translation == b.translation

    theirs = nzr.from_ngff_zarr(str(out))
    [t] = theirs.metadata.coordinateTransformations
    assert t.type == "affine"
    np.testing.assert_array_equal(np.asarray(t.affine, dtype=float), AFFINE)
    np.testing.assert_array_equal(np.asarray(theirs.images[1].data), ms.images[1].data.compute())

    # rewriting what was read keeps the same array and metadata
    again = tmp_path / "again.ome.zarr"
    nz.to_ngff_zarr(again, ours, version="0.6")
    entry2 = json.loads((again / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]
    assert entry2["coordinateTransformations"] == entry["coordinateTransformations"]
    np.testing.assert_array_equal(zarr.open_array(again / stored["path"])[...], AFFINE)


def test_a_store_written_by_ngff_zarr_with_an_affine_reads_the_same(tmp_path):
    data, _ = _pyramid()
    theirs = nzr.to_multiscales(nzr.to_ngff_image(data, dims=["c", "z", "y", "x"]),
                                scale_factors=[2])
    v06 = nzr.v06.zarr_metadata
    meta = theirs.metadata
    meta.coordinateSystems.append(v06.CoordinateSystem(name="physical",
                                                       axes=list(meta.coordinateSystems[0].axes)))
    meta.coordinateTransformations = [v06.Affine(
        affine=AFFINE, input=v06.CoordinateSystemIdentifier(name="intrinsic"),
        output=v06.CoordinateSystemIdentifier(name="physical"))]
    out = tmp_path / "theirs.ome.zarr"
    nzr.to_ngff_zarr(str(out), theirs, version="0.6")
    ours = nz.from_ngff_zarr(out)
    [t] = ours.metadata.coordinateTransformations
    assert t.type == "affine" and t.affine == AFFINE
    assert ours.metadata.coordinateSystems[1].name == "physical"
    np.testing.assert_array_equal(ours.images[1].data.compute(), np.asarray(theirs.images[1].data))


@pytest.mark.parametrize("transform, message", [
    (Affine([[1.0, 0.0, 0.0]], input=CoordinateSystemIdentifier(name="intrinsic"),
            output=CoordinateSystemIdentifier(name="physical")), "does not map"),
    (MapAxis([1, 0, 2, 3], input=CoordinateSystemIdentifier(name="intrinsic")),
     "names no output"),
    (Scale([1.0, 2.0], input=CoordinateSystemIdentifier(name="intrinsic"),
           output=CoordinateSystemIdentifier(name="physical")), r"2 (scale )?values"),
])
def test_a_transformation_that_does_not_fit_is_refused_before_any_write(tmp_path, transform,
                                                                        message):
    _, ms = _pyramid()
    ms = _with_physical(ms, transform)
    out = tmp_path / "bad.ome.zarr"
    with pytest.raises(ArgumentError, match=message):
        nz.to_ngff_zarr(out, ms, version="0.6")
    assert not out.exists()


def test_a_05_write_refuses_to_drop_what_it_cannot_hold(tmp_path):
    _, ms = _pyramid()
    ms = _with_physical(ms, Affine(AFFINE, input=CoordinateSystemIdentifier(name="intrinsic"),
                                   output=CoordinateSystemIdentifier(name="physical")))
    with pytest.raises(ArgumentError, match="no form in OME-Zarr 0.5"):
        nz.to_ngff_zarr(tmp_path / "x.ome.zarr", ms, version="0.5")
    assert not (tmp_path / "x.ome.zarr").exists()


@settings(max_examples=25, deadline=None)
@given(scale=st.lists(st.floats(0.01, 100), min_size=2, max_size=2),
       shift=st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=2),
       perm=st.permutations([0, 1]))
def test_sequences_of_placements_and_axis_maps_round_trip(scale, shift, perm):
    t = TransformSequence([Scale(scale), Translation(shift), MapAxis(list(perm))], **_ends())
    doc = json.loads(json.dumps(transform_json(t, "t", inline=True)))
    assert transforms_from_json([doc], None, "t", "0.6") == [t]


def test_an_ngff_zarr_multiscales_with_an_affine_is_written_with_it(tmp_path):
    data, _ = _pyramid()
    theirs = nzr.to_multiscales(nzr.to_ngff_image(data, dims=["c", "z", "y", "x"]),
                                scale_factors=[2])
    v06 = nzr.v06.zarr_metadata
    meta = theirs.metadata
    meta.coordinateSystems.append(v06.CoordinateSystem(name="physical",
                                                       axes=list(meta.coordinateSystems[0].axes)))
    meta.coordinateTransformations = [v06.Affine(
        affine=AFFINE, input=v06.CoordinateSystemIdentifier(name="intrinsic"),
        output=v06.CoordinateSystemIdentifier(name="physical"))]
    out = tmp_path / "adopted.ome.zarr"
    nz.to_ngff_zarr(out, theirs, version="0.6")
    schema_validate(json.loads((out / "zarr.json").read_text())["attributes"], version="0.6")
    [t] = nz.from_ngff_zarr(out).metadata.coordinateTransformations
    assert t.type == "affine" and t.affine == AFFINE


def _chunk_files(store):
    return {p.relative_to(store): p.read_bytes() for p in store.rglob("*")
            if p.is_file() and not p.name.startswith((".z", "zarr.json"))}


def test_cli_upgrade_04_to_05_to_06_in_place_keeps_every_chunk(tmp_path, capsys):
    from ngff_gpu.cli import main

    data, ms = _pyramid()
    out = tmp_path / "old.ome.zarr"
    nz.to_ngff_zarr(out, ms, version="0.4")
    chunks = _chunk_files(out)
    assert main(["upgrade", str(out), "--to", "0.5"]) == 0
    assert "OME-Zarr 0.4 -> 0.5 in place" in capsys.readouterr().out
    assert nz.validate_store(out) == "0.5"
    assert main(["upgrade", str(out)]) == 0  # default: 0.6
    assert "0.5 -> 0.6" in capsys.readouterr().out
    assert _chunk_files(out) == chunks and chunks
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    schema_validate(attrs, version="0.6")
    assert nz.validate_store(out) == "0.6"
    assert main(["upgrade", str(out), "--to", "0.6"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    theirs = nzr.from_ngff_zarr(str(out))
    np.testing.assert_array_equal(np.asarray(theirs.images[0].data), data)
    for a, b in zip(nz.from_ngff_zarr(out).images, ms.images):
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())


def test_cli_upgrade_to_output_leaves_input_and_fails_nonzero(tmp_path):
    from cli_run import cli

    _, ms = _pyramid()
    src = tmp_path / "src.ome.zarr"
    nz.to_ngff_zarr(src, ms, version="0.5")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    dst = tmp_path / "dst.ome.zarr"
    res = cli("upgrade", src, "-o", dst, "--to", "0.6", "--validate")
    assert res.returncode == 0, res.stderr
    assert f"wrote {dst}" in res.stdout
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before
    assert nz.validate_store(dst) == "0.6"
    res = cli("upgrade", dst, "-o", src, "--no-overwrite")
    assert res.returncode == 1 and res.stderr.startswith("ngff-gpu: error:")
    res = cli("upgrade", dst, "--to", "0.4")  # in place down to Zarr v2: refused, unchanged
    assert res.returncode == 1 and "give output=" in res.stderr
    assert nz.validate_store(dst) == "0.6"
    res = cli("upgrade", tmp_path / "missing.ome.zarr")
    assert res.returncode == 1 and "ngff-gpu: error:" in res.stderr


def test_systems_added_to_the_flat_form_are_kept_and_written_at_06(tmp_path):
    """ngff-zarr 0.50's pattern on what to_multiscales returns: append a system to
    ``metadata.coordinateSystems``, set multiscale-level transformations, write 0.6."""
    _, ms = _pyramid()
    assert isinstance(ms.metadata, nz.Metadata)  # the seed page's form
    physical = nz.CoordinateSystem(name="physical", axes=list(ms.metadata.axes))
    ms.metadata.coordinateSystems.append(physical)
    assert ms.metadata.coordinateSystems[1] is physical
    assert ms.metadata.intrinsic_coordinate_system.axes is ms.metadata.axes
    rot = Rotation(np.eye(4).tolist(), name="r",
                   input=CoordinateSystemIdentifier(name="intrinsic"),
                   output=CoordinateSystemIdentifier(name="physical"))
    ms.metadata.coordinateTransformations = [rot]
    out = tmp_path / "flat.ome.zarr"
    nz.to_ngff_zarr(out, ms, version="0.6")
    schema_validate(json.loads((out / "zarr.json").read_text())["attributes"], version="0.6")
    back = nz.from_ngff_zarr(out).metadata
    assert [cs.name for cs in back.coordinateSystems] == ["intrinsic", "physical"]
    assert back.coordinateTransformations == [Rotation(np.eye(4).tolist(), name="r",
                                                       path="coordinateTransformations/r",
                                                       input=rot.input, output=rot.output)]
    # 0.5 cannot hold a transformation between systems: refused, not dropped
    with pytest.raises(ArgumentError, match="no form in OME-Zarr 0.5"):
        nz.to_ngff_zarr(tmp_path / "flat05.ome.zarr", ms, version="0.5")
    # a 0.4/0.5 multiscale-level scale (no ends) still applies to every level at 0.6
    ms.metadata.coordinateTransformations = [Scale([1.0, 3.0, 1.0, 1.0])]
    m06 = ms.metadata.to_version("0.6")
    assert m06.coordinateTransformations is None
    seq = m06.datasets[1].coordinateTransformations[0]
    assert [t.type for t in seq.transformations] == ["scale", "translation", "scale"]


def test_a_transformation_stored_alone_round_trips_and_is_told_apart(tmp_path):
    t = Affine([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], name="ji to yx",
               input=CoordinateSystemIdentifier(name="ji"),
               output=CoordinateSystemIdentifier(name="yx"))
    store = tmp_path / "affine.ome.zarr"
    nz.to_ngff_zarr(store, t)  # version None: 0.6
    ome = json.loads((store / "zarr.json").read_text())["attributes"]["ome"]
    assert ome == {"version": "0.6", "coordinateTransformations": [
        {"type": "affine", "affine": t.affine, "input": {"name": "ji"},
         "output": {"name": "yx"}, "name": "ji to yx"}]}
    assert nz.from_ngff_zarr(store, kind="transformation") == t
    assert nzr.from_ome_zarr(store, kind="transformation") == t  # ngff-zarr reads ours
    with pytest.raises(ValueError, match="kind='transformation'"):
        nz.from_ngff_zarr(store)
    image = tmp_path / "image.ome.zarr"
    nz.to_ngff_zarr(image, _pyramid()[1], version="0.6")
    with pytest.raises(ValueError, match="holds no transformation"):
        nz.from_ngff_zarr(image, kind="transformation")
    with pytest.raises(ValueError, match="version='0.6'"):
        nz.to_ngff_zarr(tmp_path / "x.ome.zarr", t, version="0.5")
    assert not (tmp_path / "x.ome.zarr").exists()
    with pytest.raises(ValueError, match="directory path"):
        nz.to_ngff_zarr(tmp_path / "t.ozx", t)


def test_a_displacement_field_is_written_first_and_its_path_stays_inside(tmp_path):
    warp = Displacements(path="coordinateTransformations/dfield", interpolation="linear",
                         input=CoordinateSystemIdentifier(name="fixed"),
                         output=CoordinateSystemIdentifier(name="moving"))
    store = tmp_path / "warp.ome.zarr"
    with pytest.raises(ValueError, match="write those first"):
        nz.to_ngff_zarr(store, warp)
    with pytest.raises(ValueError, match="does not hold"):
        nz.to_ngff_zarr(store, warp, overwrite=False)
    assert not store.exists()
    field = nz.to_ngff_image(np.zeros((2, 8, 8), np.float32), dims=("c", "y", "x"))
    nz.to_ngff_zarr(store / warp.path, nz.to_multiscales(field, scale_factors=[]),
                    version="0.6")
    nz.to_ngff_zarr(store, warp, overwrite=False)
    doc = json.loads((store / "zarr.json").read_text())
    assert "coordinateTransformations" in doc["consolidated_metadata"]["metadata"]
    assert nz.from_ngff_zarr(store, kind="transformation") == warp
    assert nz.from_ngff_zarr(store / warp.path).images[0].data.shape == (2, 8, 8)
    for path in ("../dfield", "..\\dfield", "%2e%2e/dfield"):
        with pytest.raises(ValueError, match="relative path below"):
            nz.to_ngff_zarr(tmp_path / "out.ome.zarr",
                            Displacements(path=path, input=warp.input, output=warp.output),
                            overwrite=False)
    doc["attributes"]["ome"]["coordinateTransformations"] = [
        {"type": "displacements", "path": "../dfield"}]
    (store / "zarr.json").write_text(json.dumps(doc))
    assert nz.from_ngff_zarr(store, kind="transformation").path == "../dfield"
    with pytest.raises(ValueError, match="relative path below"):
        nz.from_ngff_zarr(store, kind="transformation", validate=True)


def test_a_06_plate_is_written_validated_and_read_by_both(tmp_path):
    rng = np.random.default_rng(11)
    wells = [nz.PlateWell(f"{r}/{c}", i, j) for i, r in enumerate("AB") for j, c in enumerate("12")]
    plate = nz.Plate(columns=[nz.PlateColumn(c) for c in "12"],
                     rows=[nz.PlateRow(r) for r in "AB"], wells=wells, version="0.6",
                     name="p06", field_count=1)
    out = tmp_path / "plate.ome.zarr"
    fields = {w.path: rng.integers(0, 900, (2, 16, 12)).astype(np.uint16) for w in wells}
    with nz.HCSPlateWriter(str(out), plate) as writer:
        for path, data in fields.items():
            writer.write_well_image(nz.to_multiscales(nz.to_ngff_image(data, dims=["c", "y", "x"]),
                                                      [2]), *path.split("/"), field_index=0)

    def attrs(p):
        return json.loads((p / "zarr.json").read_text())["attributes"]

    schema_validate(attrs(out), version="0.6", model="plate")
    for path in fields:
        schema_validate(attrs(out / path), version="0.6", model="well")
        schema_validate(attrs(out / path / "0"), version="0.6")
    ours = nz.from_hcs_zarr(str(out), validate=True)
    assert ours.metadata.version == "0.6" and [w.path for w in ours.wells] == list(fields)
    theirs = nzr.from_hcs_zarr(str(out))
    for path, data in fields.items():
        np.testing.assert_array_equal(
            np.asarray(ours.get_well(*path.split("/")).get_image(0).images[0].data), data)
        np.testing.assert_array_equal(
            np.asarray(theirs.get_well(*path.split("/")).get_image(0).images[0].data), data)
    # a well left at another version is reported by a validating read
    doc = json.loads((out / "B/2/zarr.json").read_text())
    doc["attributes"]["ome"]["version"] = "0.5"
    (out / "B/2/zarr.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidStoreError, match="B/2"):
        nz.from_hcs_zarr(str(out), validate=True)


def test_a_06_axis_has_discrete_and_a_04_05_axis_has_none(tmp_path):
    """As ngff-zarr 0.50: its 0.6 axes (``to_multiscales``'s, a 0.6 read) have ``discrete``
    (True on a displacement/coordinate axis, else None); its 0.4/0.5 axes have none."""
    field = nz.to_ngff_image(np.zeros((2, 8, 8), np.float32), dims=("c", "y", "x"),
                             axes_types={"c": "displacement"})
    ms = nz.to_multiscales(field, scale_factors=[])
    axes = ms.metadata.intrinsic_coordinate_system.axes
    assert [a.discrete for a in axes] == [True, None, None]
    out = tmp_path / "field.ome.zarr"
    nz.to_ngff_zarr(out, ms, version="0.6")
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    schema_validate(attrs, version="0.6")
    stored = attrs["ome"]["multiscales"][0]["coordinateSystems"][0]["axes"]
    assert [a.get("discrete") for a in stored] == [True, None, None]
    for read in (nz.from_ngff_zarr, pytest.importorskip("ngff_zarr").from_ngff_zarr):
        back = read(str(out)).metadata.intrinsic_coordinate_system.axes
        assert [(a.type, a.discrete) for a in back] == [
            ("displacement", True), ("space", None), ("space", None)]
    image = nz.to_multiscales(np.zeros((8, 8), np.uint8), scale_factors=[])
    image.metadata.axes[0] = nz.Axis(name="y", type="space", discrete=False)
    for version in ("0.4", "0.5"):
        out = tmp_path / f"image{version}.ome.zarr"
        nz.to_ngff_zarr(out, image, version=version)
        assert nz.validate_store(str(out)) == version
        assert "discrete" not in (out / (".zattrs" if version == "0.4" else "zarr.json")
                                  ).read_text()  # RFC-5's, dropped at 0.4/0.5
        back = nz.from_ngff_zarr(str(out)).metadata.axes
        assert not any(hasattr(a, "discrete") for a in back)


def test_the_flat_form_takes_coordinate_systems_on_construction_as_ngff_zarr_does(tmp_path):
    """ngff-zarr 0.50's code builds 0.6 metadata with ``coordinateSystems=`` (its
    ``declare_field_transform`` calls ``dataclasses.replace(metadata,
    coordinateSystems=..., coordinateTransformations=...)``): the flat form takes it too,
    as the same 0.6 view ``metadata.coordinateSystems`` reads; the repr and ``==`` of the
    0.4/0.5 form stay as they were."""
    import dataclasses

    data = np.random.default_rng(3).normal(size=(2, 6, 8)).astype(np.float32)
    image = nz.to_ngff_image(data, dims=["c", "y", "x"], axes_types={"c": "displacement"})
    ms = nz.to_multiscales(image, scale_factors=[])
    before = repr(ms.metadata)
    physical = nz.CoordinateSystem(name="physical", axes=[
        nz.Axis(name="y", type="space"), nz.Axis(name="x", type="space")])
    warp = Displacements(path=ms.metadata.datasets[0].path, interpolation="linear",
                         input=CoordinateSystemIdentifier(name="physical"),
                         output=CoordinateSystemIdentifier(name="physical"))
    meta = dataclasses.replace(ms.metadata,
                               coordinateSystems=[*ms.metadata.coordinateSystems, physical],
                               coordinateTransformations=[warp])
    assert [cs.name for cs in meta.coordinateSystems] == ["intrinsic", "physical"]
    assert [cs.name for cs in ms.metadata.coordinateSystems] == ["intrinsic"]  # not mutated
    assert repr(ms.metadata) == before and meta.axes == ms.metadata.axes
    assert dataclasses.replace(meta).coordinateSystems == meta.coordinateSystems  # kept
    with pytest.raises(ArgumentError, match="intrinsic system"):
        nz.Metadata(axes=list(meta.axes), datasets=meta.datasets,
                    coordinateSystems=[physical])
    out = tmp_path / "field.ome.zarr"
    nz.to_ngff_zarr(out, dataclasses.replace(ms, metadata=meta), version="0.6")
    schema_validate(json.loads((out / "zarr.json").read_text())["attributes"], version="0.6")
    for read in (nz.from_ngff_zarr, nzr.from_ngff_zarr):
        back = read(str(out)).metadata
        assert [cs.name for cs in back.coordinateSystems] == ["intrinsic", "physical"]
        assert [(t.type, t.path, t.input.name) for t in back.coordinateTransformations] == [
            ("displacements", "scale0/image", "physical")]
    # ngff-zarr's own function on our multiscales gives the same declaration
    declared = nzr.declare_field_transform(ms)
    assert declared.metadata.coordinateTransformations == [warp]
    assert declared.metadata.coordinateSystems == meta.coordinateSystems
