"""The store session: what it refuses, the order of its hooks, and its place in the writer."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import ngff_gpu as nz
from ngff_gpu.io.session import IN_PROGRESS_ATTR, StoreSession
from ngff_gpu.io.writer import Seams, write_multiscales


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
