"""Each level's samples lie at the physical positions its metadata states."""

from __future__ import annotations

import numpy as np
import pytest

import ngff_gpu as nz
from ngff_gpu.compute.methods import Methods


@pytest.mark.parametrize("method", [Methods.GAUSSIAN, Methods.MEAN, Methods.NEAREST,
                                    Methods.MIN, Methods.MAX, Methods.MODE])
@pytest.mark.parametrize("factors", [[2, 4, 8], [3, 6], [{"y": 2, "x": 4}, {"y": 4, "x": 8}]])
def test_ramp_lands_where_metadata_says(method, factors, tmp_path):
    n = 192
    spacing, origin = 0.5, 10.0
    x = np.arange(n, dtype=np.float64)
    ramp = np.broadcast_to(origin + spacing * x, (n, n)).copy()
    dtype = np.float32 if method is not Methods.MODE else np.int32
    if method is Methods.MODE:
        # integer ramp, constant within blocks of the coarsest factor: the mode is the block value
        ramp = np.broadcast_to(np.arange(n) // 24 * 24, (n, n)).astype(np.int32)
    image = nz.to_ngff_image(ramp.astype(dtype), dims=["y", "x"], scale={"y": spacing, "x": spacing},
                             translation={"y": origin, "x": origin})
    ms = nz.to_multiscales(image, scale_factors=factors, chunks=32, method=method)
    store = tmp_path / "ramp.ome.zarr"
    nz.to_ngff_zarr(store, ms)
    back = nz.from_ngff_zarr(store, validate=True)
    for im in back.images[1:]:
        values = im.data.compute()[0]
        positions = im.translation["x"] + im.scale["x"] * np.arange(values.size)
        if method is Methods.MODE:
            index = (positions - origin) / spacing  # block centre, in input samples
            np.testing.assert_array_equal(values, np.floor(index / 24) * 24)
            continue
        if method in (Methods.MIN, Methods.MAX):
            # block extremes sit half a block (minus half a pixel) from the centre
            half = (im.scale["x"] - spacing) / 2
            expect = positions - half if method is Methods.MIN else positions + half
        else:
            expect = positions
        edge = 3  # the edge-replicate boundary pulls the first and last GAUSSIAN samples
        np.testing.assert_allclose(values[edge:-edge], expect[edge:-edge], rtol=1e-5, atol=1e-5)


def test_nearest_sample_positions_are_exact_input_samples():
    x = np.arange(37, dtype=np.int64)
    for f in (2, 3, 4, 5):
        out = nz.downsample(x, [f], method="nearest", dims=["x"])
        ms = nz.to_multiscales(nz.to_ngff_image(x, dims=["x"]), [f], method="nearest")
        t = ms.images[1].translation["x"]
        np.testing.assert_array_equal(out, t + f * np.arange(out.size))
