"""HCS plates as ngff-zarr 0.50's users meet them (issue 19, deliverables 1 and 3).

ngff-zarr's ``hcs`` module path (``ngff_gpu.hcs``), plate dataclasses that compare equal
to ngff-zarr's, a plate whose declared wells are not all written yet (what ngff-zarr's
``to_hcs_zarr`` and ``write_hcs_well_image`` leave), ``validate=True`` through the
official plate and well schemas first, and plates at 0.9.dev1. ngff-zarr reads and
validates what we write, we read what it writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import ngff_zarr
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ngff_zarr.validate import validate as ngff_zarr_validate

import ngff_gpu as nz
from ngff_gpu import hcs as nz_hcs
from ngff_gpu import rfc4 as nz_rfc4
from ngff_gpu.errors import InvalidStoreError, SchemaValidationError

pytestmark = pytest.mark.filterwarnings("ignore:'version' field not specified")

VERSIONS = ("0.4", "0.5", "0.6", "0.9.dev1")


def plate_of(lib, version: str, rows="AB", cols=("1", "2"), **kw):
    """A plate declaring every well of ``rows`` x ``cols``, built with ``lib``'s classes."""
    wells = [lib.PlateWell(path=f"{r}/{c}", rowIndex=i, columnIndex=j)
             for i, r in enumerate(rows) for j, c in enumerate(cols)]
    return lib.Plate(columns=[lib.PlateColumn(name=c) for c in cols],
                     rows=[lib.PlateRow(name=r) for r in rows], wells=wells, version=version,
                     **kw)


def field(seed: int) -> nz.Multiscales:
    data = np.random.default_rng(seed).integers(0, 255, (2, 24, 20), dtype=np.uint8)
    return nz.to_multiscales(nz.to_ngff_image(data, dims=["c", "y", "x"]), [2])


def root_attrs(store: Path) -> dict:
    if (store / "zarr.json").exists():
        return json.loads((store / "zarr.json").read_text())["attributes"]
    return json.loads((store / ".zattrs").read_text())


def write_attrs(store: Path, attrs: dict) -> None:
    if (store / "zarr.json").exists():
        doc = json.loads((store / "zarr.json").read_text())
        doc["attributes"] = attrs
        (store / "zarr.json").write_text(json.dumps(doc))
    else:
        (store / ".zattrs").write_text(json.dumps(attrs))


def plate_doc(attrs: dict) -> dict:
    return attrs["ome"]["plate"] if "ome" in attrs else attrs["plate"]


# -- module paths and values ------------------------------------------------------------------


@pytest.mark.parametrize(("mirror", "theirs"), [(nz_hcs, "hcs"), (nz_rfc4, "rfc4")])
def test_mirror_modules_hold_ngff_zarrs_names_at_its_paths(mirror, theirs):
    module = __import__(f"ngff_zarr.{theirs}", fromlist=["_"])
    for name in mirror.__all__:
        assert hasattr(module, name), f"ngff_zarr.{theirs} has no {name}"
        # the same objects as the package's top-level names (LRUCache is not one)
        expected = mirror.LRUCache if name == "LRUCache" else getattr(nz, name)
        assert getattr(mirror, name) is expected, name


def test_supported_versions_are_ngff_version_members():
    assert all(isinstance(v, nz.NgffVersion) for v in nz.SUPPORTED_VERSIONS)
    assert [v.value for v in nz.SUPPORTED_VERSIONS] == list(VERSIONS)
    theirs = {v.value for v in ngff_zarr.SUPPORTED_VERSIONS}
    assert {v.value for v in nz.SUPPORTED_VERSIONS} <= theirs
    assert nz.NgffVersion.V05 == "0.5" and "0.6" in nz.SUPPORTED_VERSIONS


names = st.text("ABCDEFGH", min_size=1, max_size=3)
maybe_int = st.none() | st.integers(0, 2**40)


@settings(max_examples=60, deadline=None)
@given(acq_id=st.integers(0, 50), name=st.none() | names, count=maybe_int, start=maybe_int,
       field_count=st.none() | st.integers(1, 9), version=st.sampled_from(VERSIONS))
def test_plate_dataclasses_compare_by_value_with_ngff_zarrs(acq_id, name, count, start,
                                                            field_count, version):
    kw = {"acquisitions": None, "field_count": field_count, "name": name}
    ours = plate_of(nz, version, **kw)
    theirs = plate_of(ngff_zarr, version, **kw)
    ours.acquisitions = [nz.PlateAcquisition(id=acq_id, name=name, maximumfieldcount=count,
                                             starttime=start)]
    theirs.acquisitions = [ngff_zarr.PlateAcquisition(id=acq_id, name=name,
                                                      maximumfieldcount=count, starttime=start)]
    assert ours == theirs and theirs == ours
    assert ours.acquisitions == theirs.acquisitions
    theirs.acquisitions[0].id = acq_id + 1
    assert ours != theirs and ours.acquisitions != theirs.acquisitions
    assert nz.WellImage(path="0", acquisition=1) == ngff_zarr.WellImage(path="0", acquisition=1)
    assert nz.WellImage(path="0", acquisition=1) != ngff_zarr.WellImage(path="0", acquisition=2)


# -- a plate being filled ---------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_plate_with_wells_not_yet_written_reads_and_validates(tmp_path, version):
    """ngff-zarr's writers list every declared well at once and fill them later: such a
    plate reads and validates (the wells it holds are checked), in ours and in ngff-zarr."""
    store = tmp_path / "plate.ome.zarr"
    plate = plate_of(nz, version, name="filling", field_count=1)
    nz.to_hcs_zarr(nz.HCSPlate(None, plate), str(store))
    nz.write_hcs_well_image(str(store), field(1), plate, "A", "1", field_index=0,
                            version=version)
    read = nz.from_hcs_zarr(str(store), validate=True)
    assert [w.path for w in read.wells] == ["A/1", "A/2", "B/1", "B/2"]
    assert read.metadata == plate  # also by value against what was declared
    np.testing.assert_array_equal(np.asarray(read.get_well("A", "1").get_image(0).images[0].data),
                                  np.asarray(field(1).images[0].data))
    assert read.get_well("A", "1").metadata.version == version
    # ngff-zarr's reader and its schema agree
    assert ngff_zarr.from_hcs_zarr(str(store), validate=True).get_well("A", "1") is not None
    ngff_zarr_validate(root_attrs(store), version=version, model="plate")
    ngff_zarr_validate(root_attrs(store / "A" / "1"), version=version, model="well")
    # a written well that breaks its schema is still found
    well_attrs = root_attrs(store / "A" / "1")
    doc = well_attrs["ome"]["well"] if "ome" in well_attrs else well_attrs["well"]
    doc["images"] = [{"acquisition": 0}]  # no path
    write_attrs(store / "A" / "1", well_attrs)
    with pytest.raises(InvalidStoreError):
        nz.from_hcs_zarr(str(store), validate=True)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("key", ["rows", "columns", "wells"])
def test_validate_checks_the_plate_schema_first(tmp_path, version, key):
    store = tmp_path / "plate.ome.zarr"
    nz.to_hcs_zarr(nz.HCSPlate(None, plate_of(nz, version)), str(store))
    attrs = root_attrs(store)
    del plate_doc(attrs)[key]
    write_attrs(store, attrs)
    with pytest.raises(SchemaValidationError, match=f"'{key}' is a required property") as err:
        nz.from_hcs_zarr(str(store), validate=True)
    assert isinstance(err.value, jsonschema.ValidationError)
    assert isinstance(err.value, ValueError)
    with pytest.raises(jsonschema.ValidationError):  # ngff-zarr's verdict is the same
        ngff_zarr_validate(attrs, version=version, model="plate")
    # without validation the plate reads, as ngff-zarr reads it, with that list empty
    with pytest.warns(UserWarning, match=f"no '{key}'"):
        read = nz.from_hcs_zarr(str(store))
    assert getattr(read, key) == []
    assert read.metadata.version == version


def test_malformed_plate_lists_are_still_refused(tmp_path):
    store = tmp_path / "plate.ome.zarr"
    nz.to_hcs_zarr(nz.HCSPlate(None, plate_of(nz, "0.5")), str(store))
    attrs = root_attrs(store)
    plate_doc(attrs)["rows"] = "AB"
    write_attrs(store, attrs)
    with pytest.raises(InvalidStoreError, match="plate.rows must be a list of objects"):
        nz.from_hcs_zarr(str(store))


# -- 0.9.dev1 plates --------------------------------------------------------------------------


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.sampled_from(["A", "AB", "ABC"]), cols=st.sampled_from([("1",), ("1", "2")]),
       fields=st.integers(1, 2))
def test_plates_at_0_9_dev1_round_trip_through_both_readers(tmp_path_factory, rows, cols,
                                                            fields):
    store = tmp_path_factory.mktemp("p") / "plate.ome.zarr"
    plate = plate_of(nz, "0.9.dev1", rows=rows, cols=cols, field_count=fields)
    with nz.HCSPlateWriter(str(store), plate) as writer:
        for w in plate.wells:
            r, c = w.path.split("/")
            for f in range(fields):
                writer.write_well_image(field(f), r, c, field_index=f)
    attrs = root_attrs(store)
    assert attrs["ome"]["version"] == "0.9.dev1" and "version" not in attrs["ome"]["plate"]
    ngff_zarr_validate(attrs, version="0.9.dev1", model="plate")
    ours = nz.from_hcs_zarr(str(store), validate=True)
    theirs = ngff_zarr.from_hcs_zarr(str(store), validate=True)
    assert ours.metadata == theirs.metadata
    for w in plate.wells:
        r, c = w.path.split("/")
        well = ours.get_well(r, c)
        assert len(well.images) == fields
        for f in range(fields):
            got = ours.get_well(r, c).get_image(f)
            assert got.metadata.version == "0.9.dev1"
            np.testing.assert_array_equal(np.asarray(got.images[0].data),
                                          np.asarray(field(f).images[0].data))
            np.testing.assert_array_equal(
                np.asarray(theirs.get_well(r, c).get_image(f).images[0].data),
                np.asarray(field(f).images[0].data))
