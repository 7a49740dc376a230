"""The store session: what it refuses, the order of its hooks, and its place in the writer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

import ngff_gpu as nz
from ngff_gpu.io.session import IN_PROGRESS_ATTR, StoreSession
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import write_multiscales


def _ms():
    return nz.to_multiscales(np.arange(12 * 20 * 24, dtype="uint16").reshape(12, 20, 24),
                             scale_factors=[2], chunks=8)


class _Recording(StoreSession):
    """A session double that records its hooks."""

    calls: list[str] = []

    def _acquire(self):
        self.calls.append("acquire")

    def _target(self):
        self.calls.append("target")
        return super()._target()

    def _commit(self):
        assert IN_PROGRESS_ATTR not in self.root.attrs  # the OME metadata is there already
        self.calls.append("commit")

    def _release(self, failed):
        self.calls.append(f"release failed={failed}")


def test_hooks_run_in_order_on_success_and_failure(tmp_path):
    _Recording.calls = []
    write_multiscales(tmp_path / "a.ome.zarr", _ms(), seams=Seams(session=_Recording))
    assert _Recording.calls == ["acquire", "target", "commit", "release failed=False"]

    def fail(array, region, data):
        raise OSError("simulated")

    _Recording.calls = []
    with pytest.raises(OSError):
        write_multiscales(tmp_path / "b.ome.zarr", _ms(),
                          seams=Seams(session=_Recording, write=fail))
    assert _Recording.calls == ["acquire", "target", "release failed=True"]


def test_refusals(tmp_path):
    (tmp_path / "file").write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    for path in (tmp_path / "file", foreign):
        with StoreSession(path, 3, overwrite=True, resume=False) as s, \
                pytest.raises(nz.StoreExistsError, match="refusing"):
            s.open("fp")
    assert (foreign / "keep.txt").read_text() == "precious"
    store = tmp_path / "s.ome.zarr"
    nz.to_ngff_zarr(store, _ms())
    with StoreSession(store, 3, overwrite=False, resume=False) as s, \
            pytest.raises(nz.StoreExistsError, match="overwrite=True"):
        s.open("fp")
    with StoreSession(store, 2, overwrite=False, resume=True) as s, \
            pytest.raises(nz.InvalidStoreError, match="Zarr v3"):
        s.open("fp")
    with StoreSession(store, 3, overwrite=False, resume=True) as s, \
            pytest.raises(nz.InvalidStoreError, match="another plan"):
        s.open("other-fingerprint")


def test_open_marks_in_progress_and_finalize_writes_metadata_last(tmp_path):
    store = tmp_path / "s.zarr"
    with StoreSession(store, 3, overwrite=True, resume=False) as s:
        assert s.open("fp1")
        assert zarr.open_group(store, mode="r").attrs.asdict() == {IN_PROGRESS_ATTR: "fp1"}
        a = s.array("x/0", (4, 6), (2, 3), "uint8", None, dims=["y", "x"])
        (flags,) = s.progress([3], [["plan"]])
        assert not flags.done(1)
        flags.mark(1)
        a[...] = 1
        s.finalize([("x", {"note": 1})], {"ome": {"version": "0.5"}})
    root = zarr.open_group(store, mode="r")
    assert root.attrs.asdict() == {"ome": {"version": "0.5"}, "ngff_gpu_fingerprint": "fp1"}
    assert root["x"].attrs.asdict() == {"note": 1}
    assert "ngff_gpu_progress" not in root
    # A resume of the complete store of the same plan has nothing to do.
    with StoreSession(store, 3, overwrite=False, resume=True) as s:
        assert not s.open("fp1") and s.complete


def _tree(path):
    """Every file under ``path`` with its bytes."""
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("version", ["0.4", "0.5", "0.6"])
def test_overwrite_false_adds_the_image_beside_zarr_nodes_without_root_metadata(tmp_path,
                                                                                version):
    """ngff-zarr writes a field image into ``<store>/<path>`` first, then the image into
    ``<store>`` with overwrite=False: the directory holds only Zarr nodes, no root."""
    store = tmp_path / "image.ome.zarr"
    field = nz.to_multiscales(np.ones((2, 8, 8), np.float32), scale_factors=[])
    nz.to_ngff_zarr(store / "field", field, version=version)
    before = _tree(store / "field")
    data = np.arange(12 * 20 * 24, dtype="uint16").reshape(12, 20, 24)
    nz.to_ngff_zarr(store, nz.to_multiscales(data, scale_factors=[2], chunks=8),
                    version=version, overwrite=False)
    assert _tree(store / "field") == before  # the user's node, byte for byte
    np.testing.assert_array_equal(np.asarray(nz.from_ngff_zarr(store).images[0].data), data)
    np.testing.assert_array_equal(np.asarray(nz.from_ngff_zarr(store / "field").images[0].data),
                                  1)
    if version != "0.6":
        assert nz.validate_store(str(store)) == version
    else:  # the official 0.6 schema, as ngff-zarr's wheel bundles it
        from ngff_zarr.validate import validate as schema_validate

        schema_validate(json.loads((store / "zarr.json").read_text())["attributes"],
                        version="0.6")
    # the consolidated metadata covers both (ngff-zarr's reason to write in this order)
    consolidated = zarr.open_consolidated(store, zarr_format=2 if version == "0.4" else 3)
    assert "field" in dict(consolidated.members(max_depth=None))


def test_a_directory_of_zarr_nodes_is_refused_on_collision_foreign_files_or_overwrite(
        tmp_path):
    store = tmp_path / "image.ome.zarr"
    ms = nz.to_multiscales(np.ones((16, 16), np.uint8), scale_factors=[])
    nz.to_ngff_zarr(store / "scale0", ms)  # a node with the name our level 0 takes
    before = _tree(store)
    calls = []

    def write(array, region, data):  # no pixel work starts before the refusal
        calls.append(region)

    with pytest.raises(nz.StoreExistsError, match=r"\['scale0'\] that this write would create"):
        write_multiscales(store, _ms(), overwrite=False, seams=Seams(write=write))
    assert calls == [] and _tree(store) == before
    (store / "scale0").rename(store / "field")
    before = _tree(store)
    # overwrite=True would replace the user's nodes: refused, nothing removed
    with pytest.raises(nz.StoreExistsError, match="without root metadata"):
        nz.to_ngff_zarr(store, _ms())
    assert _tree(store) == before
    # anything else than Zarr nodes (a user's file, a plain folder) is refused as before
    for foreign in ("notes.txt", "folder"):
        if foreign == "folder":
            (store / foreign).mkdir()
        else:
            (store / foreign).write_text("precious")
        with pytest.raises(nz.StoreExistsError, match="not a Zarr store"):
            nz.to_ngff_zarr(store, _ms(), overwrite=False)
        assert {k: v for k, v in _tree(store).items() if k.name != "notes.txt"} == before
        assert not (store / "zarr.json").exists()
        if foreign == "folder":
            (store / foreign).rmdir()
        else:
            (store / foreign).unlink()
    # a Zarr v2 node is no node of a Zarr v3 hierarchy
    with pytest.raises(nz.StoreExistsError, match="nor holds only Zarr v2 nodes"):
        nz.to_ngff_zarr(store, _ms(), version="0.4", overwrite=False)
    assert _tree(store) == before


def test_a_failed_write_beside_zarr_nodes_removes_only_what_it_added(tmp_path):
    store = tmp_path / "image.ome.zarr"
    nz.to_ngff_zarr(store / "field", nz.to_multiscales(np.ones((8, 8), np.uint8),
                                                       scale_factors=[]))
    before = _tree(store)

    def fail(array, region, data):
        raise OSError("simulated")

    with pytest.raises(OSError, match="simulated"):
        write_multiscales(store, _ms(), overwrite=False, seams=Seams(write=fail))
    assert _tree(store) == before
    assert sorted(p.name for p in store.iterdir()) == ["field"]
