"""``start_level`` (appending levels to a stored pyramid), root attributes kept on
overwrite, consolidated metadata of in-place writes, and the refusals around them
(ngff-zarr 0.50's contract; docs/design.md section 3.5)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from zarr.storage import MemoryStore

import ngff_gpu as nz
from ngff_gpu.io.session import has_consolidated_metadata
from ngff_gpu.io.validate import validate_store
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import write_multiscales
from ngff_gpu.levels.engine import write_region


def _image(shape=(1, 40, 36, 44), dtype=np.uint16, seed=0):
    data = np.random.default_rng(seed).integers(0, 60000, shape).astype(dtype)
    return nz.to_ngff_image(data, dims=["c", "z", "y", "x"])


def _files(root: Path, level: str) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in (root / level).rglob("*") if p.is_file()}


def _levels(store) -> list[np.ndarray]:
    return [np.asarray(im.data.compute()) for im in nz.from_ngff_zarr(store).images]


@settings(max_examples=8, deadline=None)
@given(version=st.sampled_from(["0.4", "0.5"]), start=st.integers(1, 2),
       method=st.sampled_from(["itkwasm_gaussian", "mean", "mode"]),
       chunks=st.sampled_from([8, 16]))
def test_append_equals_the_whole_write_and_keeps_the_stored_levels(tmp_path_factory, version,
                                                                   start, method, chunks):
    """Levels appended from the stored level ``start - 1`` are bit-identical to the same
    levels of a whole write; the kept levels' files are not touched (bytes and mtimes)."""
    tmp = tmp_path_factory.mktemp("append")
    image = _image()
    whole = nz.to_multiscales(image, [2, 4, 8], method=method, chunks=chunks)
    nz.to_ngff_zarr(tmp / "whole.ome.zarr", whole, version=version)
    path = tmp / "part.ome.zarr"
    nz.to_ngff_zarr(path, nz.to_multiscales(image, [2, 4, 8][:start - 1], method=method,
                                            chunks=chunks), version=version)
    zarr.open_group(path, mode="r+").attrs["mine"] = {"k": 1}
    kept = {f"scale{k}": _files(path, f"scale{k}") for k in range(start)}
    base = nz.from_ngff_zarr(path)
    ms = nz.to_multiscales(base.images[0], [2, 4, 8], method=method, chunks=chunks)
    nz.to_ngff_zarr(path, ms, version=version, overwrite=False, start_level=start)
    for k in range(start):
        assert _files(path, f"scale{k}") == kept[f"scale{k}"]
    for a, b in zip(_levels(path), _levels(tmp / "whole.ome.zarr"), strict=True):
        np.testing.assert_array_equal(a, b)
    back = nz.from_ngff_zarr(path)
    assert back.root_attributes == {"mine": {"k": 1}} and back.metadata.type == method
    assert [im.scale["x"] for im in back.images] == [1.0, 2.0, 4.0, 8.0]
    validate_store(path)


def test_a_supplied_level_is_written_as_given(tmp_path):
    path = tmp_path / "s.ome.zarr"
    nz.to_ngff_zarr(path, nz.to_multiscales(_image(), [], chunks=16))
    ms = nz.to_multiscales(nz.from_ngff_zarr(path).images[0], [2], chunks=16)
    import dask.array as da

    ms.images[1].data = da.full(ms.images[1].data.shape, 7, dtype=np.uint16, chunks=16)
    nz.to_ngff_zarr(path, ms, overwrite=False, start_level=1)
    assert (zarr.open_group(path, mode="r")["scale1/image"][:] == 7).all()


class _Fails:
    """A write function that fails after ``n`` writes of level 1 (a disk going away)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, array, region, data) -> None:
        if "scale1" in array.path:
            if self.n == 0:
                raise OSError("disk gone")
            self.n -= 1
        write_region(array, region, data)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_a_failed_append_leaves_the_kept_levels_readable_and_a_rerun_finishes(tmp_path,
                                                                               version):
    path = tmp_path / "f.ome.zarr"
    image = _image()
    nz.to_ngff_zarr(path, nz.to_multiscales(image, [2], chunks=8), version=version)
    ms = nz.to_multiscales(nz.from_ngff_zarr(path).images[0], [2, 4], chunks=8)
    before = _levels(path)
    with pytest.raises(OSError, match="disk gone"):
        write_multiscales(path, ms, version=version, overwrite=False, start_level=1,
                          seams=Seams(write=_Fails(3), brick_budget=4096))
    # The root lists only the kept level, whose pixels are as they were.
    read = nz.from_ngff_zarr(path)
    assert len(read.images) == 1
    np.testing.assert_array_equal(read.images[0].data.compute(), before[0])
    validate_store(path)
    nz.to_ngff_zarr(path, ms, version=version, overwrite=False, start_level=1)
    whole = nz.to_multiscales(image, [2, 4], chunks=8)
    for a, b in zip(_levels(path), [im.data.compute() for im in whole.images], strict=True):
        np.testing.assert_array_equal(a, b)


def test_refusals_name_the_problem_before_anything_is_written(tmp_path):
    path = tmp_path / "r.ome.zarr"
    nz.to_ngff_zarr(path, nz.to_multiscales(_image(), [], chunks=16), version="0.4")
    before = _files(path, "scale0")
    ms = nz.to_multiscales(nz.from_ngff_zarr(path).images[0], [2], chunks=16)
    with pytest.raises(ValueError, match="overwrite=False"):
        nz.to_ngff_zarr(path, ms, version="0.4", start_level=1)
    with pytest.raises(ValueError, match="out of range"):
        nz.to_ngff_zarr(path, ms, version="0.4", overwrite=False, start_level=2)
    with pytest.raises(TypeError, match="start_level"):
        nz.to_ngff_zarr(path, ms, version="0.4", overwrite=False, start_level=1.0)
    with pytest.raises(ValueError, match="resumed"):
        nz.to_ngff_zarr(path, ms, version="0.4", overwrite=False, start_level=1, resume=True)
    with pytest.raises(ValueError, match="Zarr v2"):
        nz.to_ngff_zarr(path, ms, version="0.5", overwrite=False, start_level=1)
    with pytest.raises(ValueError, match=".ozx"):
        nz.to_ngff_zarr(tmp_path / "x.ozx", ms, overwrite=False, start_level=1)
    with pytest.raises(ValueError, match="no readable array"):
        nz.to_ngff_zarr(tmp_path / "missing.ome.zarr", ms, overwrite=False, start_level=1)
    other = nz.to_multiscales(_image((1, 20, 36, 44)), [2], chunks=16)
    with pytest.raises(ValueError, match=r"shape \(1, 40, 36, 44\)"):
        nz.to_ngff_zarr(path, other, version="0.4", overwrite=False, start_level=1)
    with pytest.raises(ValueError, match="start_level"):  # named as the way to add levels
        nz.to_ngff_zarr(path, ms, version="0.4", overwrite=False)
    assert _files(path, "scale0") == before
    assert len(nz.from_ngff_zarr(path).images) == 1


def test_a_level_reading_the_array_an_append_replaces_is_refused(tmp_path):
    path = tmp_path / "g.ome.zarr"
    nz.to_ngff_zarr(path, nz.to_multiscales(_image(), [2], chunks=16))
    ms = nz.to_multiscales(nz.from_ngff_zarr(path).images[0], [2], chunks=16)
    ms.images[1] = nz.from_ngff_zarr(path).images[1]
    with pytest.raises(ValueError, match="replaces before its data is computed"):
        nz.to_ngff_zarr(path, ms, overwrite=False, start_level=1)
    assert zarr.open_group(path, mode="r")["scale1/image"][:].max() > 0


def test_overwriting_a_store_that_cannot_be_replaced_while_reading_it_is_refused():
    """Without rename (a MemoryStore) an overwrite deletes the store first: a level that
    reads it would read zeros, so it is refused; on a local path the replacement is
    atomic (written beside, swapped in) and reading the old store is fine."""
    store = MemoryStore()
    nz.to_ngff_zarr(store, nz.to_multiscales(_image(), [2], chunks=16))
    ms = nz.to_multiscales(nz.from_ngff_zarr(store).images[0], [2], chunks=16)
    with pytest.raises(ValueError, match=r"images\[0\] reads its data from that store"):
        nz.to_ngff_zarr(store, ms, overwrite="in-place")
    assert nz.from_ngff_zarr(store).images[0].data.compute().max() > 0


def test_overwriting_the_local_store_being_read_is_atomic(tmp_path):
    path = tmp_path / "a.ome.zarr"
    image = _image()
    nz.to_ngff_zarr(path, nz.to_multiscales(image, [], chunks=16))
    ms = nz.to_multiscales(nz.from_ngff_zarr(path).images[0], [2], chunks=16)
    nz.to_ngff_zarr(path, ms)
    whole = nz.to_multiscales(image, [2], chunks=16)
    for a, b in zip(_levels(path), [im.data.compute() for im in whole.images], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_root_attributes_are_kept_on_overwrite_and_ome_keys_refused(tmp_path, version):
    path = tmp_path / "k.ome.zarr"
    ms = nz.to_multiscales(_image(), [2], chunks=16)
    ms.root_attributes = {"a": 1, "keep": True}
    nz.to_ngff_zarr(path, ms, version="0.4")
    again = nz.to_multiscales(_image(), [], chunks=16)
    again.root_attributes = {"a": 2}
    nz.to_ngff_zarr(path, again, version=version)  # 0.4 -> 0.5 drops the stale OME keys
    attrs = zarr.open_group(path, mode="r").attrs.asdict()
    assert nz.from_ngff_zarr(path).root_attributes == {"a": 2, "keep": True}
    assert ("ome" in attrs) == (version == "0.5") and ("multiscales" in attrs) == (
        version == "0.4")
    validate_store(path)
    for key in ("multiscales", "ome", "omero", "ngff_gpu_in_progress"):
        bad = nz.to_multiscales(_image(), [], chunks=16)
        bad.root_attributes = {key: []}
        with pytest.raises(ValueError, match="root_attributes cannot set"):
            nz.to_ngff_zarr(tmp_path / "bad.ome.zarr", bad)
    assert not os.path.exists(tmp_path / "bad.ome.zarr")


def test_consolidated_metadata_of_in_place_writes(tmp_path):
    image = _image((1, 16, 16, 16))
    for version, fmt in (("0.4", 2), ("0.5", 3)):
        path = tmp_path / f"c{fmt}.ome.zarr"
        nz.to_ngff_zarr(path, nz.to_multiscales(image, []), version=version)
        assert has_consolidated_metadata(path, fmt)
        ms = nz.to_multiscales(nz.from_ngff_zarr(path).images[0], [2])
        if fmt == 2:  # .zmetadata would be left stale
            for extra in ({"start_level": 1}, {}):
                with pytest.raises(ValueError, match="would be left stale"):
                    nz.to_ngff_zarr(path, ms, version=version, overwrite=False,
                                    consolidate_metadata=False, **extra)
            nz.to_ngff_zarr(path, ms, version=version, overwrite=False, start_level=1)
            assert zarr.open_consolidated(path, zarr_format=2)["scale1/image"].shape == (
                1, 8, 8, 8)
        else:  # the root's zarr.json is rewritten: consolidation dropped with it
            nz.to_ngff_zarr(path, ms, version=version, overwrite=False, start_level=1,
                            consolidate_metadata=False)
            assert not has_consolidated_metadata(path, fmt)
        assert len(nz.from_ngff_zarr(path).images) == 2
