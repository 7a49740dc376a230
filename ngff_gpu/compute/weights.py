"""Per-axis weights of the window methods (pure Python/NumPy, no data touched).

The GAUSSIAN method is ITK's discrete Gaussian (the kernel ngff-zarr's default
``ITKWASM_GAUSSIAN`` uses) followed by linear interpolation at the sample
position ``f*i + (f-1)/2``. Both steps are linear and separable, so they fuse
into one weight vector per axis and factor: ``out[i] = sum_d w[d] *
x[clamp(f*i + first + d)]``. See docs/design.md section 2.3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.special import ive

#: ITK's defaults: maximum error of the truncated kernel and largest half-width.
MAXIMUM_ERROR = 0.01
MAXIMUM_HALF_WIDTH = 32


def gaussian_sigma(factor: int) -> float:
    """Sigma, in input pixels, of the anti-aliasing Gaussian for ``factor``.

    Parameters
    ----------
    factor : int
        Relative downsampling factor along the axis.

    Returns
    -------
    float
        ``sqrt((f*f - 1) / (8 ln 2))``; 0.7355 for ``f = 2``.
    """
    return math.sqrt((factor * factor - 1) / (8.0 * math.log(2.0)))


@cache
def discrete_gaussian(factor: int) -> tuple[float, ...]:
    """Normalized symmetric ITK discrete Gaussian kernel for ``factor``.

    ``c_n = exp(-t) I_n(t)`` with ``t = sigma**2``; terms are added until the
    symmetric kernel holds ``1 - MAXIMUM_ERROR`` of the mass or the half-width
    reaches ``MAXIMUM_HALF_WIDTH``, then the kernel is normalized to sum 1.

    Parameters
    ----------
    factor : int
        Relative downsampling factor (>= 1).

    Returns
    -------
    tuple of float
        The full kernel ``c_{-R} .. c_R`` (length ``2R + 1``).
    """
    if factor == 1:
        return (1.0,)
    t = gaussian_sigma(factor) ** 2
    half = [float(ive(0, t))]
    total = half[0]
    n = 0
    while total < 1.0 - MAXIMUM_ERROR and n < MAXIMUM_HALF_WIDTH:
        n += 1
        c = float(ive(n, t))
        half.append(c)
        total += 2.0 * c
    full = half[:0:-1] + half
    return tuple(c / total for c in full)


@dataclass(frozen=True)
class AxisWeights:
    """Fused weights of one axis: ``out[i] = sum_d w[d] * x[clamp(f*i + first + d)]``.

    Attributes
    ----------
    factor : int
        Relative factor along the axis.
    first : int
        Offset of the first tap from ``f*i`` (negative: the halo before).
    weights : tuple of float
        Tap weights in float64, applied in order (the summation order is part
        of the contract: the CUDA kernels add the taps in the same order).
    """

    factor: int
    first: int
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, got {self.factor}")
        if not self.weights:
            raise ValueError("weights must not be empty")

    @property
    def last(self) -> int:
        """Offset of the last tap from ``f*i``."""
        return self.first + len(self.weights) - 1

    @property
    def halo(self) -> tuple[int, int]:
        """Input samples needed before ``f*i`` and after ``f*i + f - 1``."""
        return max(0, -self.first), max(0, self.last - (self.factor - 1))


@cache
def gaussian_axis_weights(factor: int) -> AxisWeights:
    """Fused blur + linear-interpolation weights of GAUSSIAN for ``factor``.

    For odd ``f`` the sample position ``f*i + (f-1)/2`` is an input index and
    the weights are the kernel itself, centred there. For even ``f`` the
    position lies half-way between ``k = f*i + f/2 - 1`` and ``k + 1``; the
    weights are ``(c[d] + c[d-1]) / 2`` over taps ``k - R .. k + R + 1``.

    Parameters
    ----------
    factor : int
        Relative factor (>= 1).

    Returns
    -------
    AxisWeights
    """
    kernel = discrete_gaussian(factor)
    radius = (len(kernel) - 1) // 2
    if factor % 2 == 1:
        centre = (factor - 1) // 2
        return AxisWeights(factor, centre - radius, kernel)
    k = factor // 2 - 1
    padded = (0.0,) + kernel + (0.0,)
    fused = tuple(0.5 * (padded[j + 1] + padded[j]) for j in range(len(kernel) + 1))
    return AxisWeights(factor, k - radius, fused)


def weights_array(axis: AxisWeights, dtype: np.dtype) -> np.ndarray:
    """The weights as an array of the compute dtype (float32 or float64)."""
    return np.asarray(axis.weights, dtype=np.float64).astype(dtype)
