"""One pyramid step: level k-1 -> level k with integer relative factors per axis.

A :class:`LevelStep` knows, without touching data, which input window every
output region needs (the halo), so the planner can cut bricks and any backend
(NumPy or CUDA) can compute any output region from any brick that covers its
window: results never depend on the decomposition.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ngff_gpu.compute.methods import Methods, as_method
from ngff_gpu.compute.weights import AxisWeights, gaussian_axis_weights
from ngff_gpu.errors import ScaleFactorError

Region = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class LevelStep:
    """Relative factors of one level over the previous one, and the method.

    Parameters
    ----------
    factors : tuple of int
        Relative factor per array axis (1 on ``t``, ``c`` and kept axes).
    method : Methods
        Downsampling method; an ngff-zarr name is replaced by its definition
        (:attr:`Methods.definition`), so a step only ever holds one of our six.
    """

    factors: tuple[int, ...]
    method: Methods

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", as_method(self.method).definition)
        for f in self.factors:
            if not isinstance(f, int) or f < 1:
                raise ScaleFactorError(f"relative factors must be positive integers: {self.factors}")

    @property
    def axes(self) -> tuple[int, ...]:
        """Axes that are downsampled (factor > 1), in the order they are processed."""
        return tuple(a for a, f in enumerate(self.factors) if f > 1)

    @cached_property
    def axis_weights(self) -> tuple[AxisWeights | None, ...]:
        """GAUSSIAN weights per axis (None where the factor is 1 or the method is not GAUSSIAN)."""
        if self.method is not Methods.GAUSSIAN:
            return tuple(None for _ in self.factors)
        return tuple(gaussian_axis_weights(f) if f > 1 else None for f in self.factors)

    def taps(self, axis: int) -> tuple[int, int]:
        """First and last input offset from ``f*i`` read for output ``i`` along ``axis``."""
        f = self.factors[axis]
        if f == 1:
            return 0, 0
        if self.method is Methods.GAUSSIAN:
            w = self.axis_weights[axis]
            return w.first, w.last
        if self.method is Methods.NEAREST:
            o = (f - 1) // 2
            return o, o
        return 0, f - 1

    def sample_offset(self, axis: int) -> float:
        """Sample position minus ``f*i``: ``(f-1)/2`` (window methods) or ``floor((f-1)/2)``."""
        f = self.factors[axis]
        if self.method is Methods.NEAREST:
            return float((f - 1) // 2)
        return (f - 1) / 2.0

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape ``floor(n / f)``; raises if a dim is smaller than its factor."""
        out = []
        for axis, (n, f) in enumerate(zip(in_shape, self.factors)):
            if n < f:
                raise ScaleFactorError(
                    f"axis {axis} has {n} samples, fewer than its relative factor {f}"
                )
            out.append(n // f)
        return tuple(out)

    def axis_window(self, axis: int, region: tuple[int, int], n: int) -> tuple[int, int]:
        """Input samples ``[lo, hi)`` (clamped to ``[0, n)``) read along ``axis`` for
        outputs ``region``."""
        f = self.factors[axis]
        first, last = self.taps(axis)
        return max(0, f * region[0] + first), min(n, f * (region[1] - 1) + last + 1)

    def input_window(self, out_region: Region, in_shape: tuple[int, ...]) -> Region:
        """Input region (clamped to the array) read to compute ``out_region``."""
        return tuple(self.axis_window(axis, r, n)
                     for axis, (r, n) in enumerate(zip(out_region, in_shape)))

    def halo(self) -> tuple[tuple[int, int], ...]:
        """Samples read before ``f*a`` and after ``f*b - 1`` per axis (before clamping)."""
        out = []
        for axis, f in enumerate(self.factors):
            first, last = self.taps(axis)
            out.append((max(0, -first), max(0, last - (f - 1))))
        return tuple(out)
