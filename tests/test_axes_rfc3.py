"""RFC-3 axes (OME-Zarr 0.9.dev1), ``axis_order``, structural validation on read, RFC-4
orientation objects: against ngff-zarr 0.50 (its bundled schemas, its reader, its
exception classes) and against our own pyramids of the same pixels."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.errors import DimsError, InvalidStoreError, StructuralValidationError

nzr = pytest.importorskip("ngff_zarr")


def _attrs(path) -> dict:
    return json.loads((path / "zarr.json").read_text())["attributes"]


@settings(max_examples=8, deadline=None)
@given(name=st.sampled_from(["lambda", "angle", "wavelength"]),
       kind=st.sampled_from(["spectral", "angle", "other"]),
       method=st.sampled_from([nz.Methods.ITKWASM_GAUSSIAN, nz.Methods.DASK_IMAGE_MODE,
                               nz.Methods.DASK_IMAGE_NEAREST]))
def test_a_typed_custom_axis_is_kept_like_a_channel(tmp_path_factory, name, kind, method):
    """An axis of any name whose declared type is not ``space`` is never downsampled:
    its pyramid is, pixel for pixel, the pyramid of the same data with a ``c`` axis."""
    data = np.random.default_rng(7).integers(0, 255, (3, 24, 20), dtype=np.uint8)
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=(name, "y", "x"),
                                            axes_types={name: kind}),
                           scale_factors=[2, 4], method=method)
    ref = nz.to_multiscales(nz.to_ngff_image(data, dims=("c", "y", "x")),
                            scale_factors=[2, 4], method=method)
    assert ms.images[0].dims == (name, "y", "x")
    for a, b in zip(ms.images, ref.images):
        assert a.data.shape == b.data.shape and a.data.shape[0] == 3
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())
    out = tmp_path_factory.mktemp("rfc3") / "a.ome.zarr"
    nz.to_ngff_zarr(out, ms, version="0.9.dev1")
    attrs = _attrs(out)
    from ngff_zarr.validate import validate  # its bundled 0.9.dev1 schema

    validate(attrs, version="0.9.dev1")
    axes = attrs["ome"]["multiscales"][0]["coordinateSystems"][0]["axes"]
    assert axes[0] == {"name": name, "type": kind}
    theirs = nzr.from_ngff_zarr(str(out), validate=True)
    assert tuple(theirs.images[0].dims) == (name, "y", "x")
    ours = nz.from_ngff_zarr(out, validate=True)
    assert ours.images[0].axes_types == {name: kind}
    for a, b in zip(ours.images, ms.images):
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())


def test_an_untyped_unknown_axis_name_is_refused():
    with pytest.raises(DimsError, match="axes_types"):
        nz.to_ngff_image(np.zeros((3, 8, 8)), dims=("lambda", "y", "x"))


@pytest.mark.parametrize("version", ["0.4", "0.5", "0.6"])
def test_rfc3_axes_are_refused_below_0_9_dev1_before_anything_is_written(tmp_path, version):
    data = np.zeros((8, 16, 16, 2), np.uint8)
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=("z", "y", "x", "c")),
                           scale_factors=[2], axis_order="preserve")
    out = tmp_path / "refused.ome.zarr"
    with pytest.raises(ValueError, match=r"\[axis-order\].*0\.9\.dev1"):
        nz.to_ngff_zarr(out, ms, version=version)
    assert not out.exists()


def test_axis_order_preserve_round_trips_through_0_9_dev1(tmp_path):
    data = np.random.default_rng(1).integers(0, 255, (8, 16, 16, 2), dtype=np.uint8)
    image = nz.to_ngff_image(data, dims=("z", "y", "x", "c"), scale={"z": 2.0, "y": 1.0,
                                                                       "x": 1.0})
    kept = nz.to_multiscales(image, scale_factors=[2], axis_order="preserve")
    canonical = nz.to_multiscales(image, scale_factors=[2])
    assert kept.images[1].dims == ("z", "y", "x", "c")
    assert canonical.images[1].dims == ("c", "z", "y", "x")
    np.testing.assert_array_equal(kept.images[1].data.compute(),
                                  np.moveaxis(canonical.images[1].data.compute(), 0, -1))
    out = tmp_path / "kept.ome.zarr"
    nz.to_ngff_zarr(out, kept, version="0.9.dev1")
    theirs = nzr.from_ngff_zarr(str(out), validate=True)
    assert tuple(theirs.images[1].dims) == ("z", "y", "x", "c")
    np.testing.assert_array_equal(np.asarray(theirs.images[1].data),
                                  kept.images[1].data.compute())
    ours = nz.from_ngff_zarr(out, validate=True)
    assert ours.images[1].dims == ("z", "y", "x", "c")
    assert ours.images[1].scale == kept.images[1].scale


def _leak_zarr_format(attrs: dict) -> None:
    attrs["ome"]["multiscales"][0]["zarr_format"] = 2


def _swap_datasets(attrs: dict) -> None:
    ds = attrs["ome"]["multiscales"][0]["datasets"]
    ds[0]["path"], ds[1]["path"] = ds[1]["path"], ds[0]["path"]
    ds.reverse()


def _bad_colour(attrs: dict) -> None:
    attrs["ome"]["omero"] = {"channels": [{"color": "red", "window": {
        "min": 0, "max": 255, "start": 0, "end": 255}}], "version": "0.5"}


def _long_scale(attrs: dict) -> None:
    ct = attrs["ome"]["multiscales"][0]["datasets"][1]["coordinateTransformations"]
    ct[0]["scale"] = [*ct[0]["scale"], 1.0]


@pytest.mark.parametrize(("edit", "rule"), [
    (_leak_zarr_format, "zarr-format"), (_swap_datasets, "dataset-order-highest-to-lowest"),
    (_bad_colour, "omero-channel-color-format"),
    (_long_scale, "scale-length-mismatch")])
def test_structural_rules_on_read_raise_ngff_zarrs_exception(tmp_path, edit, rule):
    from ngff_zarr.structural_validation import ValidationError

    out = tmp_path / "s.ome.zarr"
    nz.to_ngff_zarr(out, nz.to_multiscales(np.zeros((32, 16), np.uint8), scale_factors=[2]))
    meta = json.loads((out / "zarr.json").read_text())
    edit(meta["attributes"])
    (out / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ValidationError) as theirs:
        nzr.from_ngff_zarr(str(out), validate=True)
    assert theirs.value.rule.value == rule
    with pytest.raises(ValidationError) as ours:  # the class user code catches
        nz.from_ngff_zarr(out, validate=True)
    assert isinstance(ours.value, StructuralValidationError)
    assert isinstance(ours.value, InvalidStoreError)
    assert ours.value.rule == rule and ours.value.location == theirs.value.location
    again = pickle.loads(pickle.dumps(ours.value))
    assert isinstance(again, ValidationError) and again.rule == rule
    with pytest.raises(StructuralValidationError):
        nz.validate_store(out)


def test_orientation_rules_are_normative_at_0_9_dev1_only(tmp_path):
    from ngff_zarr.structural_validation import ValidationError

    data = np.zeros((2, 8, 16, 16), np.uint8)
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=("c", "z", "y", "x")),
                           scale_factors=[2], orientation="RAS")
    for version in ("0.6", "0.9.dev1"):
        out = tmp_path / f"o{version}.ome.zarr"
        nz.to_ngff_zarr(out, ms, version=version)
        meta = json.loads((out / "zarr.json").read_text())
        axes = meta["attributes"]["ome"]["multiscales"][0]["coordinateSystems"][0]["axes"]
        axes[0]["orientation"] = {"type": "anatomical", "value": "left-to-right"}
        (out / "zarr.json").write_text(json.dumps(meta))
        if version == "0.6":
            nz.from_ngff_zarr(out, validate=True)
            continue
        with pytest.raises(ValidationError) as info:
            nz.from_ngff_zarr(out, validate=True)
        assert info.value.rule == "axis-orientation-on-non-space"


def test_orientations_read_back_as_the_vocabulary(tmp_path):
    ms = nz.to_multiscales(nz.to_ngff_image(np.zeros((8, 16, 16), np.uint8)),
                           scale_factors=[2], orientation="LPS")
    out = tmp_path / "lps.ome.zarr"
    nz.to_ngff_zarr(out, ms)
    read = nz.from_ngff_zarr(out).images[0].axes_orientations
    theirs = nzr.from_ngff_zarr(str(out)).images[0].axes_orientations
    assert read == theirs  # ngff-zarr's objects compare equal to ours
    assert read["x"].value is nz.AnatomicalOrientationValues.right_to_left
    assert read["x"].value == "right-to-left"
