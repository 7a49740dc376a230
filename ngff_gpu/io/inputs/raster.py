"""PNG, JPEG, BMP and GIF inputs (imageio): one image, decoded whole when first read."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np

from ngff_gpu.dims import AXIS_ORDER
from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import InputImage, checked_dims, safe_name, stem


def raster_props(path: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the header (nothing decoded)."""
    import imageio.v3 as iio

    try:
        with warnings.catch_warnings():  # imageio probes plugins, some deprecated
            warnings.simplefilter("ignore")
            props = iio.improps(path)
    except Exception as exc:  # noqa: BLE001 - imageio raises many kinds
        raise InputFormatError(f"cannot read {path} as an image: {exc}") from exc
    if props.is_batch:
        raise InputFormatError(f"{path} holds several images; give one image per file")
    return tuple(int(n) for n in props.shape), np.dtype(props.dtype)


def read_raster(path: str) -> np.ndarray:
    """Decode one image file."""
    import imageio.v3 as iio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(iio.imread(path))
    except Exception as exc:  # noqa: BLE001
        raise InputFormatError(f"cannot read {path} as an image: {exc}") from exc


def open_raster(path: str, dims: Sequence[str] | None) -> InputImage:
    """Open a PNG/JPEG/BMP/GIF file (``y, x`` or ``c, y, x``)."""
    raster_props(path)  # header check: clear error before decoding
    image = read_raster(path)
    guessed = ["y", "x", "c"] if image.ndim == 3 else ["y", "x"] if image.ndim == 2 else None
    if dims is not None:
        guessed = checked_dims(dims, image.ndim, path, image.shape)
    if guessed is not None and guessed != sorted(guessed, key=AXIS_ORDER.index):
        order = sorted(range(image.ndim), key=lambda i: AXIS_ORDER.index(guessed[i]))
        image, guessed = np.transpose(image, order), [guessed[i] for i in order]  # a view
    kind = os.path.splitext(path)[1].lstrip(".").upper() or "image"
    return InputImage(data=image, dims=guessed, name=safe_name(stem(path)), kind=kind,
                      paths=[path])
