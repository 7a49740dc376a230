"""What "the same result" means between the CUDA kernels and the NumPy path.

docs/design.md section 2.4: bit-identical, except two things the contract leaves open:
the sign of a zero (``+0 == -0``: MIN/MAX of a block holding both may return
either) and the payload bits of a NaN (the positions of NaNs always agree).
"""

from __future__ import annotations

import numpy as np


def assert_same(got: np.ndarray, ref: np.ndarray, context: str = "") -> None:
    """Assert ``got`` equals ``ref`` within the contract (dtype and shape too).

    Integers: every value equal. Floats: every value equal with ``+0 == -0``,
    NaN at the same positions (payload unspecified), nothing else tolerated.
    """
    assert got.dtype == ref.dtype, (got.dtype, ref.dtype, context)
    assert got.shape == ref.shape, (got.shape, ref.shape, context)
    if ref.dtype.kind == "f":
        same_nan = np.isnan(got) == np.isnan(ref)
        same = same_nan & ((got == ref) | np.isnan(ref))
    else:
        same = got == ref
    if not same.all():
        bad = np.argwhere(~same)[:5]
        detail = [(tuple(int(i) for i in b), got[tuple(b)], ref[tuple(b)]) for b in bad]
        raise AssertionError(f"{context}: {int((~same).sum())} of {same.size} elements differ "
                             f"(index, got, numpy): {detail}")
