"""The host backend: NumPy arrays, reduced by the compiled CPU kernels on every core.

:func:`ngff_gpu.compute.reduce_cpu.reduce_region` runs the kernels and falls back to the
reference reductions (:mod:`ngff_gpu.compute.reduce_numpy`, same bits) where they cannot
load; the oracle every backend is tested against stays the NumPy path itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ngff_gpu.compute.reduce_cpu import reduce_region
from ngff_gpu.compute.step import LevelStep, Region
from ngff_gpu.namespace import is_numpy, to_host


class NumpyBackend:
    """Host backend: compiled kernels (or the NumPy path), the bits of the NumPy path."""

    name = "numpy"
    on_device = False

    def asarray(self, a: Any) -> np.ndarray:
        """Return ``a`` as a NumPy array (no copy when it already is one)."""
        return a if is_numpy(a) else to_host(a)

    def to_host(self, a: Any) -> np.ndarray:
        """Return ``a`` as a NumPy array."""
        return self.asarray(a)

    def reduce_region(
        self,
        x: Any,
        step: LevelStep,
        origin: tuple[int, ...],
        in_shape: tuple[int, ...],
        out_region: Region,
    ) -> np.ndarray:
        """See :func:`ngff_gpu.compute.reduce_numpy.reduce_region` (same bits)."""
        return reduce_region(np.asarray(x), step, origin, in_shape, out_region)

    def synchronize(self) -> None:
        """Nothing to wait for on the host."""
