"""``.npy`` inputs: ``numpy.load(mmap_mode="r")`` (nothing read until needed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ngff_gpu.errors import InputFormatError
from ngff_gpu.io.inputs.common import InputImage, canonical, checked_dims, safe_name, stem


def open_npy(path: str, dims: Sequence[str] | None) -> InputImage:
    """Open a ``.npy`` file as a memory map."""
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputFormatError(f"cannot read {path} as .npy: {exc}") from exc
    guessed = checked_dims(dims, data.ndim, path, data.shape) if dims is not None else None
    data, out = canonical(data, guessed)
    return InputImage(data=data, dims=out, name=safe_name(stem(path)), kind="NumPy .npy",
                      paths=[path])
