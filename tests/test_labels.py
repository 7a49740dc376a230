"""Label images: checked before anything is written, written in the image's store session
(its sharding, its resume), with image-label ``colors`` (the strict label schema)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import ngff_gpu as nz
from ngff_gpu.io.session import StoreSession
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import write_multiscales

SHAPE = (10, 36, 44)


def _image():
    z, y, x = np.indices(SHAPE, dtype=np.float32)
    return (1000 + 400 * np.sin(x / 4) * np.cos(y / 3) + 20 * z).astype("uint16")


def _labels(image):
    return ((image > 1100).astype(np.uint8) + (image > 1300).astype(np.uint8)) * 3


def _files(path):
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _ms():
    return nz.to_multiscales(_image(), scale_factors=[2, 4], chunks=8)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_labels_carry_colors_and_validate(tmp_path, version):
    image = _image()
    store = tmp_path / "s.ome.zarr"
    nz.to_ngff_zarr(store, _ms(), version=version, labels={"cells": _labels(image)})
    group = zarr.open_group(store / "labels" / "cells", mode="r")
    attrs = group.attrs.asdict()
    entry = attrs["ome"]["image-label"] if version == "0.5" else attrs["image-label"]
    assert [c["label-value"] for c in entry["colors"]] == [3, 6]
    assert all(len(c["rgba"]) == 4 and all(0 <= v <= 255 for v in c["rgba"])
               for c in entry["colors"])
    assert entry["source"] == {"image": "../../"}
    if version == "0.4":
        assert entry["version"] == "0.4"
    # The official models accept the label image (colors, rgba, source parsed).
    if version == "0.5":
        from ome_zarr_models.v05.image_label import ImageLabel
    else:
        from ome_zarr_models.v04.image_label import ImageLabel
    model = ImageLabel.from_zarr(group)
    parsed = model.attributes.ome.image_label if version == "0.5" else \
        model.attributes.image_label
    assert [c.label_value for c in parsed.colors] == [3, 6]
    assert nz.validate_store(store / "labels" / "cells") == version
    back = nz.from_ngff_zarr(store / "labels" / "cells")
    np.testing.assert_array_equal(back.images[0].data.compute(), _labels(image))


def test_only_background_still_has_one_color(tmp_path):
    store = tmp_path / "s.ome.zarr"
    nz.to_ngff_zarr(store, _ms(), labels={"empty": np.zeros(SHAPE, np.uint16)})
    entry = zarr.open_group(store / "labels" / "empty").attrs["ome"]["image-label"]
    assert entry["colors"] == [{"label-value": 0, "rgba": [0, 0, 0, 0]}]


@pytest.mark.parametrize("bad,error,words", [
    (np.zeros(SHAPE, np.float32), nz.UnsupportedDtypeError, ["'seg'", "float32", "integer"]),
    (np.zeros((10, 36, 40), np.uint8), nz.DimsError, ["'seg'", "(10, 36, 40)"]),
    (np.zeros((36, 44), np.uint8), nz.DimsError, ["'seg'", "2 dims"]),
    (nz.to_ngff_image(np.zeros(SHAPE, np.uint8), dims=["c", "y", "x"]), nz.DimsError,
     ["'seg'", "cyx"]),
])
def test_bad_label_is_refused_before_anything_is_written(tmp_path, bad, error, words):
    ms = _ms()
    store = tmp_path / "s.ome.zarr"
    nz.to_ngff_zarr(store, ms)
    before = _files(store)
    with pytest.raises(error) as info:
        nz.to_ngff_zarr(store, ms, overwrite=True, labels={"ok": _labels(_image()), "seg": bad})
    assert all(w in str(info.value) for w in words), str(info.value)
    assert _files(store) == before  # the old store is untouched
    fresh = tmp_path / "fresh.ome.zarr"
    with pytest.raises(error):
        nz.to_ngff_zarr(fresh, ms, labels={"seg": bad})
    assert not fresh.exists()


def test_labels_share_the_image_sharding(tmp_path):
    store = tmp_path / "s.ome.zarr"
    nz.to_ngff_zarr(store, _ms(), chunks_per_shard=2, labels={"cells": _labels(_image())})
    image = zarr.open_group(store, mode="r")
    for k in range(3):
        lab = image[f"labels/cells/{k}"]
        img = image[f"scale{k}/image"]
        assert lab.shards == img.shards and lab.shards is not None, k
        assert lab.chunks == img.chunks, k


class _KilledBeforeRootMetadata(StoreSession):
    """A session double: killed after the sub-groups' metadata, before the root's."""

    def finalize(self, groups, root_attrs, **kwargs):
        root = self._root()
        for path, attrs in groups:
            root.require_group(path).attrs.put(attrs)
        raise KeyboardInterrupt


def test_kill_in_finalize_leaves_no_half_labelled_group_and_resumes(tmp_path):
    ms, labels = _ms(), {"cells": _labels(_image())}
    store = tmp_path / "s.ome.zarr"
    with pytest.raises(KeyboardInterrupt):
        write_multiscales(store, ms, labels=labels,
                          seams=Seams(session=_KilledBeforeRootMetadata))
    attrs = zarr.open_group(store / "labels" / "cells", mode="r").attrs.asdict()
    assert "multiscales" in attrs["ome"] and "image-label" in attrs["ome"]  # one put: both
    with pytest.raises(nz.InvalidStoreError):
        nz.validate_store(store)  # the root is not complete
    report = write_multiscales(store, ms, labels=labels, resume=True)
    assert not report.already_complete
    clean = tmp_path / "clean.ome.zarr"
    nz.to_ngff_zarr(clean, ms, labels=labels)
    assert _files(store) == _files(clean)


def test_labels_written_through_the_engine_write_seam(tmp_path):
    written: list[str] = []

    def write(array, region, data):
        written.append(array.path)
        array[tuple(slice(a, b) for a, b in region)] = data

    store = tmp_path / "s.ome.zarr"
    report = write_multiscales(store, _ms(), labels={"cells": _labels(_image())},
                               seams=Seams(write=write))
    assert {pp.group for pp in report.passes} == {"", "labels/cells"}
    assert {"labels/cells/0", "labels/cells/1", "labels/cells/2"} <= set(written)
    # The label pyramid is MODE of the labels, level by level.
    lab = nz.from_ngff_zarr(store / "labels" / "cells")
    assert lab.method is nz.Methods.MODE
    assert set(np.unique(lab.images[2].data.compute())) <= {0, 3, 6}
