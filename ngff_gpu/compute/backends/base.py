"""The backend interface: one object owns allocation, transfer and compute.

The engine and the lazy graphs call only these methods, so a backend (NumPy,
CUDA through CuPy) plugs in without the engine knowing which it is.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from ngff_gpu.compute.step import LevelStep, Region


@runtime_checkable
class Backend(Protocol):
    """What a compute backend provides.

    Attributes
    ----------
    name : str
        ``"numpy"`` or ``"cuda"``.
    on_device : bool
        True when arrays live in accelerator memory.
    """

    name: str
    on_device: bool

    def asarray(self, a: Any) -> Any:
        """Move a host (or foreign) array into this backend's memory (H2D)."""

    def to_host(self, a: Any) -> np.ndarray:
        """Copy a backend array to a host NumPy array (D2H; pinned on CUDA)."""

    def reduce_region(
        self,
        x: Any,
        step: LevelStep,
        origin: tuple[int, ...],
        in_shape: tuple[int, ...],
        out_region: Region,
    ) -> Any:
        """Compute ``out_region`` of ``step`` from brick ``x``; same contract and
        bits as :func:`ngff_gpu.compute.reduce_numpy.reduce_region`."""

    def synchronize(self) -> None:
        """Wait for queued work (no-op on the host)."""
