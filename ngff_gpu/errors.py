"""Typed errors of ngff_gpu: each names the problem it reports."""

from __future__ import annotations


class NgffGpuError(Exception):
    """Base class of every error ngff_gpu raises on purpose."""


class ScaleFactorError(NgffGpuError, ValueError):
    """A scale factor is not a positive integer multiple of the previous level's,
    or a dim is smaller than its factor."""


class UnsupportedDtypeError(NgffGpuError, TypeError):
    """The array's dtype cannot be downsampled with the requested method."""


class DimsError(NgffGpuError, ValueError):
    """``dims``, ``scale``, ``translation`` or ``chunks`` do not fit the data."""


class StoreExistsError(NgffGpuError, FileExistsError):
    """The output store already holds data and ``overwrite`` is False."""


class InvalidStoreError(NgffGpuError, ValueError):
    """A store is not a complete, valid OME-Zarr multiscale image."""


class InputFormatError(NgffGpuError, ValueError):
    """An input file cannot be read as an image."""


class BackendUnavailableError(NgffGpuError, RuntimeError):
    """The requested compute backend (for example CUDA) is not available."""


class KernelCompileError(NgffGpuError, RuntimeError):
    """A CUDA kernel failed to compile; the message names the file and line."""
