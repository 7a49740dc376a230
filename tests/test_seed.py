"""The three examples of ngff-zarr's "Python Array API" page, verbatim with
``import ngff_gpu as nz``; the printed reprs show the same fields."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest

# The page's code, as written there (prompts stripped; the page imports ngff_zarr as nz,
# we import ngff_gpu as nz).
EXAMPLE_1 = """\
from imageio.v3 import imread
data = imread('cthead1.png')
print(type(data))
"""
EXAMPLE_2 = """\
import ngff_gpu as nz
image = nz.to_ngff_image(data,
                             dims=['y', 'x'],
                             scale={'y': 1.0, 'x': 1.0},
                             translation={'y': 0.0, 'x': 0.0})
print(image)
"""
EXAMPLE_3 = """\
multiscales = nz.to_multiscales(image,
                                    scale_factors=[2,4],
                                    chunks=64)
print(multiscales)
"""
EXAMPLE_4 = """\
nz.to_ngff_zarr('cthead1.ome.zarr', multiscales)
"""

# What the page prints (field names in order) for the image and the multiscales.
PAGE_IMAGE = """NgffImage(
    data=dask.array<array, shape=(256, 256), dtype=uint8, chunksize=(256, 256), chunktype=numpy.ndarray>,
    dims=['y', 'x'],
    scale={'y': 1.0, 'x': 1.0},
    translation={'y': 0.0, 'x': 0.0},
    name='image',
    axes_units=None,
    computed_callbacks=[]
)"""
PAGE_MULTISCALES_FIELDS = (
    ["images"] + ["data", "dims", "scale", "translation", "name", "axes_units",
                  "computed_callbacks"] * 3
    + ["metadata", "axes", "name", "type", "unit", "name", "type", "unit", "datasets"]
    + ["path", "coordinateTransformations", "scale", "type", "translation", "type"] * 3
    + ["coordinateTransformations", "name", "version", "scale_factors", "method", "chunks"]
)


def _fields(text: str) -> list[str]:
    return [
        m for m in re.findall(r"(?<![<\w])(\w+)=", re.sub(r"dask\.array<[^>]*>", "X", text))
    ]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    from imageio.v3 import imwrite

    yy, xx = np.mgrid[0:256, 0:256]
    head = (120 + 100 * np.exp(-((yy - 128) ** 2 + (xx - 120) ** 2) / 4000.0)).astype(np.uint8)
    imwrite(tmp_path / "cthead1.png", head)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(code: str, ns: dict) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<seed>", "exec"), ns)  # noqa: S102 - the page's own code
    return out.getvalue()


def test_seed_examples_run_verbatim(in_tmp):
    ns: dict = {}
    assert _run(EXAMPLE_1, ns).strip() == "<class 'numpy.ndarray'>"
    printed_image = _run(EXAMPLE_2, ns)
    assert printed_image.strip() == PAGE_IMAGE
    printed_ms = _run(EXAMPLE_3, ns)
    assert _fields(printed_ms) == PAGE_MULTISCALES_FIELDS
    for line in ("Scale(scale=[2.0, 2.0], type='scale')", "translation=[1.5, 1.5],",
                 "path='scale2/image'", "chunks={'y': 64, 'x': 64}", "scale_factors=[2, 4],"):
        assert line in printed_ms
    _run(EXAMPLE_4, ns)
    import ngff_gpu as nz

    assert nz.validate_store(in_tmp / "cthead1.ome.zarr") == "0.5"
    back = nz.from_ngff_zarr("cthead1.ome.zarr")
    assert [im.data.shape for im in back.images] == [(256, 256), (128, 128), (64, 64)]
    np.testing.assert_array_equal(back.images[0].data.compute(), ns["data"])
    ms = ns["multiscales"]
    assert [im.translation for im in ms.images] == [{"y": 0.0, "x": 0.0}, {"y": 0.5, "x": 0.5},
                                                    {"y": 1.5, "x": 1.5}]
