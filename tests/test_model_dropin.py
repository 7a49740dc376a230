"""ngff-zarr 0.50's model methods on ours (issue 19, deliverable 1): transformations'
``to_dict``/``from_dict`` (equal to ngff-zarr's dicts, and read from them),
``ByDimension.produced_outputAxes``, ``Metadata.from_version`` of every form, and
``Multiscales.to_ome_zarr``/``from_ome_zarr``.
"""

from __future__ import annotations

import ngff_zarr.v06.zarr_metadata as v06
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngff_gpu as nz

floats = st.floats(-1e6, 1e6, allow_nan=False).map(float)
names = st.none() | st.text("abcxyz", min_size=1, max_size=4)
idents = st.none() | st.builds(dict, name=st.text("abc", min_size=1, max_size=3))


def _ends(lib, spec):
    out = {}
    for key in ("input", "output"):
        if spec.get(key) is not None:
            out[key] = lib.CoordinateSystemIdentifier(**spec[key])
    if spec.get("name") is not None:
        out["name"] = spec["name"]
    return out


def build(lib, spec):
    """The transformation ``spec`` describes, made of ``lib``'s classes (ngff_gpu's or
    ngff-zarr's 0.6 model)."""
    kind, params = spec["kind"], dict(spec["params"])
    if kind == "sequence":
        params["transformations"] = [build(lib, s) for s in params["transformations"]]
    elif kind == "bijection":
        params = {k: build(lib, s) for k, s in params.items()}
    elif kind == "byDimension":
        params["transformations"] = [
            lib.ByDimensionItem(build(lib, s), [i], [i]) for i, s in enumerate(
                params["transformations"])]
    cls = {"scale": "Scale", "translation": "Translation", "affine": "Affine",
           "rotation": "Rotation", "mapAxis": "MapAxis", "identity": "Identity",
           "displacements": "Displacements", "coordinates": "Coordinates",
           "projectAxis": "ProjectAxis", "sequence": "TransformSequence",
           "bijection": "Bijection", "byDimension": "ByDimension"}[kind]
    ends = _ends(lib, spec)
    if kind == "sequence":
        ends.pop("name", None)
    return getattr(lib, cls)(**params, **ends)


def _leaf(kind, params):
    return st.fixed_dictionaries({"kind": st.just(kind), "params": params,
                                  "input": idents, "output": idents, "name": names})


one_axis = st.sampled_from(["scale", "translation"]).flatmap(
    lambda k: _leaf(k, st.fixed_dictionaries({k: st.lists(floats, min_size=1, max_size=1)})))
leaves = st.one_of(
    st.sampled_from(["scale", "translation"]).flatmap(
        lambda k: _leaf(k, st.fixed_dictionaries({k: st.lists(floats, min_size=1,
                                                                max_size=4)}))),
    _leaf("affine", st.fixed_dictionaries({"affine": st.lists(
        st.lists(floats, min_size=3, max_size=3), min_size=2, max_size=2)})),
    _leaf("rotation", st.fixed_dictionaries({"rotation": st.lists(
        st.lists(floats, min_size=2, max_size=2), min_size=2, max_size=2)})),
    _leaf("mapAxis", st.fixed_dictionaries({"mapAxis": st.permutations(range(3))})),
    _leaf("identity", st.just({})),
    st.sampled_from(["displacements", "coordinates"]).flatmap(
        lambda k: _leaf(k, st.fixed_dictionaries({"path": st.text("fg", min_size=1,
                                                                   max_size=3)}))),
    _leaf("projectAxis", st.fixed_dictionaries({"droppedInputs": st.just([0])})),
)
transforms = st.one_of(
    leaves,
    _leaf("sequence", st.fixed_dictionaries({"transformations": st.lists(leaves, max_size=3)})),
    _leaf("bijection", st.fixed_dictionaries({"forward": leaves, "inverse": leaves})),
    _leaf("byDimension", st.fixed_dictionaries({"transformations": st.lists(
        one_axis, min_size=1, max_size=3)})),
)


@settings(max_examples=300, deadline=None)
@given(spec=transforms)
def test_to_dict_and_from_dict_as_ngff_zarrs(spec):
    ours, theirs = build(nz, spec), build(v06, spec)
    assert ours.to_dict() == theirs.to_dict()
    again = type(ours).from_dict(theirs.to_dict())
    assert again == ours and again == theirs
    assert type(again) is type(ours)
    assert type(ours).from_dict(ours.to_dict()) == ours
    systems = [v06.CoordinateSystem(name="a", axes=[v06.Axis(name="x", type="space")])]
    assert type(ours).from_dict(theirs.to_dict(), systems) == ours  # ngff-zarr's signature


def test_from_dict_takes_json_strings_and_legacy_keys_and_refuses_other_types():
    scale = nz.Scale.from_dict({"type": "scale", "scale": [2.0], "input": "a",
                                "output": {"name": "b"}})
    assert scale.input == nz.CoordinateSystemIdentifier(name="a")
    assert scale.output.name == "b"
    item = nz.ByDimensionItem.from_dict({"transformation": {"type": "scale", "scale": [2.0]},
                                         "input_axes": [1], "output_axes": [0]})
    assert item.inputAxes == [1] and item.outputAxes == [0]
    assert isinstance(item.transformation, nz.Scale)
    with pytest.raises(ValueError, match="of type 'translation', not 'scale'"):
        nz.Scale.from_dict({"type": "translation", "translation": [1.0]})
    with pytest.raises(ValueError, match="unknown transformation type 'warp'"):
        nz.TransformSequence.from_dict({"transformations": [{"type": "warp"}]})
    with pytest.raises(TypeError, match="bogus"):
        nz.Scale.from_dict({"scale": [1.0], "bogus": 1})


@given(outputs=st.lists(st.integers(0, 6), min_size=1, max_size=5, unique=True))
def test_produced_output_axes(outputs):
    items = [nz.ByDimensionItem(nz.Scale(scale=[1.0]), [i], [o]) for i, o in enumerate(outputs)]
    theirs = [v06.ByDimensionItem(v06.Scale(scale=[1.0]), [i], [o])
              for i, o in enumerate(outputs)]
    assert nz.ByDimension(transformations=items).produced_outputAxes == set(outputs)
    assert v06.ByDimension(transformations=theirs).produced_outputAxes == set(outputs)


@pytest.mark.parametrize("start", ["0.4", "0.5", "0.6", "0.9.dev1"])
def test_metadata_from_version_of_every_form(start):
    ms = nz.to_multiscales(np.zeros((8, 6), np.uint8), [2], method=nz.Methods.ITKWASM_GAUSSIAN)
    meta = ms.metadata.to_version(start)
    flat = nz.Metadata.from_version(meta)
    assert type(flat) is nz.Metadata
    assert flat.version == (start if start in ("0.4", "0.5") else "0.5")
    assert flat.to_version("0.5") == ms.metadata
    six = nz.Metadata06.from_version(meta)
    assert type(six) is nz.Metadata06 and six.version == "0.6"
    nine = nz.Metadata09.from_version(meta)
    assert type(nine) is nz.Metadata09 and nine.version == "0.9.dev1"
    assert nz.Metadata.from_version(six) == nz.Metadata.from_version(nine) == ms.metadata
    with pytest.raises(ValueError, match="unsupported metadata type dict"):
        nz.Metadata06.from_version({})


@pytest.mark.parametrize("version", ["0.4", "0.5", "0.6"])
def test_multiscales_to_and_from_ome_zarr(tmp_path, version):
    data = np.arange(12 * 10, dtype=np.uint16).reshape(12, 10)
    ms = nz.to_multiscales(nz.to_ngff_image(data, dims=["y", "x"]), [2])
    store = tmp_path / "m.ome.zarr"
    assert ms.to_ome_zarr(str(store), version=version) is None
    for cls in (nz.Multiscales, nz.NgffMultiscales):
        back = cls.from_ome_zarr(str(store), validate=True)
        assert isinstance(back, nz.Multiscales)
        np.testing.assert_array_equal(np.asarray(back.images[0].data), data)
        assert [np.asarray(i.data).shape for i in back.images] == [(12, 10), (6, 5)]
    # keywords reach the functions: overwrite=False refuses an existing store
    with pytest.raises(FileExistsError):
        ms.to_ome_zarr(str(store), version=version, overwrite=False)
