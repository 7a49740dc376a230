"""A malformed store is an InvalidStoreError naming the key or path, from every reader:
``from_ngff_zarr``, ``validate_store`` and ``ngff-gpu info`` (never IndexError, KeyError,
JSONDecodeError...). Valid stores are corrupted in many ways, by hand and by hypothesis."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.cli import main
from ngff_gpu.cli.info import store_info


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    x = np.arange(8 * 12 * 16, dtype=np.uint16).reshape(8, 12, 16)
    ms = nz.to_multiscales(nz.to_ngff_image(x, scale=[2.0, 0.5, 0.5]), scale_factors=[2],
                           chunks=8)
    out = {}
    for version in ("0.4", "0.5"):
        path = tmp_path_factory.mktemp("valid") / f"v{version}.ome.zarr"
        nz.to_ngff_zarr(path, ms, version=version)
        out[version] = path
    return out


def _meta_file(path: Path, version: str) -> Path:
    return path / ("zarr.json" if version == "0.5" else ".zattrs")


def _edit(path: Path, version: str, fn: Callable[[dict], None]) -> None:
    """Apply ``fn`` to the dict that holds ``multiscales`` (the ``ome`` block in 0.5)."""
    f = _meta_file(path, version)
    doc = json.loads(f.read_text())
    holder = doc["attributes"]["ome"] if version == "0.5" else doc
    fn(holder)
    f.write_text(json.dumps(doc))


def _entry(fn: Callable[[dict], None]) -> Callable[[dict], None]:
    return lambda holder: fn(holder["multiscales"][0])


def _set(*keys, value):
    def fn(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return _entry(fn)


def _delete(*keys):
    def fn(d):
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return _entry(fn)


def _drop_axis(entry):
    entry["axes"].pop(0)
    for ds in entry["datasets"]:
        for t in ds["coordinateTransformations"]:
            t[t["type"]].pop(0)


# name -> (edit of the multiscales holder, a word the message must contain)
EDITS = {
    "no multiscales": (lambda h: h.pop("multiscales"), "multiscales"),
    "multiscales an object": (lambda h: h.update(multiscales={}), "multiscales"),
    "multiscales empty": (lambda h: h.update(multiscales=[]), "multiscales"),
    "multiscales of numbers": (lambda h: h.update(multiscales=[5]), "multiscales"),
    "no axes": (_delete("axes"), "axes"),
    "axes a string": (_set("axes", value="zyx"), "axes"),
    "axes empty": (_set("axes", value=[]), "axes"),
    "axis a number": (_set("axes", 0, value=3), "axes[0]"),
    "axis without name": (_delete("axes", 1, "name"), "axes[1].name"),
    "axis name a number": (_set("axes", 2, "name", value=7), "axes[2].name"),
    "axis names repeat": (_set("axes", 0, "name", value="y"), "axes"),
    "axis unit a number": (_set("axes", 0, "unit", value=1), "axes[0].unit"),
    "axes fewer than the arrays' dims": (_entry(_drop_axis), "datasets[0]"),
    "no datasets": (_delete("datasets"), "datasets"),
    "datasets empty": (_set("datasets", value=[]), "datasets"),
    "dataset a string": (_set("datasets", 1, value="scale1/image"), "datasets[1]"),
    "dataset without path": (_delete("datasets", 0, "path"), "datasets[0].path"),
    "dataset path a number": (_set("datasets", 0, "path", value=0), "datasets[0].path"),
    "dataset path missing": (_set("datasets", 1, "path", value="nothing/here"), "nothing/here"),
    "dataset path a group": (_set("datasets", 1, "path", value="scale1"), "scale1"),
    "transforms a string": (_set("datasets", 0, "coordinateTransformations", value="scale"),
                            "datasets[0].coordinateTransformations"),
    "transform unknown type": (_set("datasets", 1, "coordinateTransformations", 0, "type",
                                    value="affine"), "datasets[1].coordinateTransformations[0]"),
    "transform a number": (_set("datasets", 1, "coordinateTransformations", 1, value=1),
                           "datasets[1].coordinateTransformations[1]"),
    "scale without vector": (_delete("datasets", 0, "coordinateTransformations", 0, "scale"),
                             "coordinateTransformations[0]"),
    "scale too short": (_set("datasets", 0, "coordinateTransformations", 0, "scale",
                             value=[1.0, 1.0]), "coordinateTransformations[0].scale"),
    "scale of strings": (_set("datasets", 0, "coordinateTransformations", 0, "scale",
                              value=["1", "1", "1"]), "coordinateTransformations[0].scale"),
    "scale zero": (_set("datasets", 1, "coordinateTransformations", 0, "scale",
                        value=[0.0, 1.0, 1.0]), "coordinateTransformations[0].scale"),
    "translation a number": (_set("datasets", 0, "coordinateTransformations", 1, "translation",
                                  value=0.0), "coordinateTransformations[1].translation"),
    "global transforms an object": (_set("coordinateTransformations", value={}),
                                    "multiscales[0].coordinateTransformations"),
    "name a number": (_set("name", value=5), "name"),
    "unknown version": (lambda h: (h.update(version="0.3") if "version" in h else
                                   h["multiscales"][0].update(version="0.3")), "0.3"),
    "version a number": (lambda h: (h.update(version=5) if "version" in h else
                                    h["multiscales"][0].update(version=5)), "version"),
}


def _readers(path: Path) -> list[tuple[str, Callable[[], object]]]:
    return [("from_ngff_zarr", lambda: nz.from_ngff_zarr(path)),
            ("validate_store", lambda: nz.validate_store(path)),
            ("info", lambda: store_info(str(path)))]


def _check_every_reader(path: Path, word: str | None) -> None:
    for name, read in _readers(path):
        with pytest.raises(nz.InvalidStoreError) as info:
            read()
        if word is not None and name != "validate_store":  # validate may fail on the schema first
            assert word in str(info.value), f"{name}: {info.value}"


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("name", sorted(EDITS))
def test_malformed_metadata_is_invalid_store_error_naming_the_key(tmp_path, stores, version,
                                                                  name):
    edit, word = EDITS[name]
    path = tmp_path / "s.ome.zarr"
    shutil.copytree(stores[version], path)
    _edit(path, version, edit)
    _check_every_reader(path, word)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_a_dataset_without_transforms_reads_with_a_warning_and_fails_validation(
        tmp_path, stores, version):
    """As ngff-zarr reads it: scale 1, translation 0 (tests/test_compat_io.py); a warning
    names it, and validation refuses it."""
    path = tmp_path / "s.ome.zarr"
    shutil.copytree(stores[version], path)
    _edit(path, version, _delete("datasets", 0, "coordinateTransformations"))
    for name, read in _readers(path):
        if name == "validate_store":
            with pytest.raises(nz.InvalidStoreError, match="coordinateTransformations"):
                read()
            continue
        with pytest.warns(UserWarning, match=r"datasets\[0\]: missing key "
                          "'coordinateTransformations'"):
            read()


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("damage", ["truncated", "empty", "a list", "not utf-8"])
def test_unreadable_group_metadata(tmp_path, stores, version, damage):
    path = tmp_path / "s.ome.zarr"
    shutil.copytree(stores[version], path)
    f = _meta_file(path, version)
    text = f.read_text()
    f.write_bytes({"truncated": text[: len(text) // 2].encode(), "empty": b"",
                   "a list": b"[1, 2]", "not utf-8": b"\xff\xfe{"}[damage])
    _check_every_reader(path, "s.ome.zarr")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("damage", ["array metadata truncated", "array removed"])
def test_damaged_level_array(tmp_path, stores, version, damage):
    path = tmp_path / "s.ome.zarr"
    shutil.copytree(stores[version], path)
    level = path / "scale1" / "image"
    if damage == "array removed":
        shutil.rmtree(level)
    else:
        f = level / ("zarr.json" if version == "0.5" else ".zarray")
        f.write_text(f.read_text()[:20])
    _check_every_reader(path, "scale1/image")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_axes_that_are_not_tczyx_read_and_fail_validation(tmp_path, stores, version):
    # A space axis named "q" breaks 0.4/0.5's axis-order rule: read as stored (RFC-3's
    # data model, as ngff-zarr reads it), refused by validation with the rule's name
    path = tmp_path / "s.ome.zarr"
    shutil.copytree(stores[version], path)
    _edit(path, version, _set("axes", 0, "name", value="q"))
    assert store_info(str(path)).axes[0] == "q"
    assert nz.from_ngff_zarr(path).images[0].dims[0] == "q"
    with pytest.raises(nz.StructuralValidationError, match=r"\[axis-order\]") as info:
        nz.from_ngff_zarr(path, validate=True)
    assert info.value.location == "multiscales[0].axes[0]"


def test_cli_info_on_a_malformed_store_is_one_line(tmp_path, stores, capsys):
    path = tmp_path / "s.ome.zarr"
    shutil.copytree(stores["0.5"], path)
    _edit(path, "0.5", _set("datasets", 0, "coordinateTransformations", value="scale"))
    for cmd in ("info", "validate"):
        assert main([cmd, str(path)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "coordinateTransformations" in err[0], err


# -- hypothesis: any value anywhere in the multiscales entry ------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False)
    | st.sampled_from(["", "x", "scale", "translation", "scale0/image", "z"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "scale", "translation", "name", "path"]), inner, max_size=3),
    max_leaves=6,
)


def _nodes(value, prefix=()):
    """Every (key path) inside a JSON value, the value itself first."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _nodes(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nodes(v, prefix + (i,))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, stores):
    path = tmp_path_factory.mktemp("hyp") / "s.ome.zarr"
    shutil.copytree(stores["0.5"], path)
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_corruption_reads_or_raises_invalid_store_error(stores, scratch, data):
    doc = json.loads(_meta_file(stores["0.5"], "0.5").read_text())
    entry = doc["attributes"]["ome"]["multiscales"][0]
    paths = [p for p in _nodes(entry) if p]
    where = data.draw(st.sampled_from(paths))
    parent = entry
    for k in where[:-1]:
        parent = parent[k]
    if data.draw(st.booleans()):
        parent[where[-1]] = data.draw(JSON)
    elif isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent.pop(where[-1])
    _meta_file(scratch, "0.5").write_text(json.dumps(doc))
    for _name, read in _readers(scratch):
        try:
            read()
        except nz.InvalidStoreError:
            pass  # anything else (IndexError, KeyError, TypeError...) fails the test
