"""Typed errors of ngff_gpu: each names the problem it reports.

Every error ngff_gpu raises on purpose is an :class:`NgffGpuError`; errors about an
argument are also the builtin a caller would expect (:class:`ValueError` for a bad
value, :class:`TypeError` for a wrong type), and their message names the argument.
See docs/design.md, "Errors".
"""

from __future__ import annotations


class NgffGpuError(Exception):
    """Base class of every error ngff_gpu raises on purpose."""


class ArgumentError(NgffGpuError, ValueError):
    """An argument has a bad value (unknown name, out of range, not finite...);
    the message names the argument."""


class ArgumentTypeError(NgffGpuError, TypeError):
    """An argument has the wrong type (``chunks="16"``, ``scale_factors=None``...);
    the message names the argument."""


class ScaleFactorError(ArgumentError):
    """A scale factor is not a positive integer, or a dim is smaller than its
    relative factor."""


class UnsupportedDtypeError(ArgumentTypeError):
    """The array's dtype cannot be downsampled with the requested method."""


class DimsError(ArgumentError):
    """``dims``, ``scale``, ``translation`` or ``chunks`` do not fit the data."""


class StoreExistsError(NgffGpuError, FileExistsError, ValueError):
    """The output store already holds data and ``overwrite`` is False (also a
    ``ValueError``, which ngff-zarr raises in that case)."""


class InvalidStoreError(NgffGpuError, ValueError):
    """A store is not a complete, valid OME-Zarr multiscale image; the message names
    the store and the key or path that is wrong."""


class StoreNotFoundError(InvalidStoreError, FileNotFoundError):
    """The store to read does not exist (a local path with nothing there)."""


class InputFormatError(NgffGpuError, ValueError):
    """An input file cannot be read as an image."""


class BackendUnavailableError(NgffGpuError, RuntimeError):
    """The requested compute backend (for example CUDA) is not available."""


class KernelCompileError(NgffGpuError, RuntimeError):
    """A CUDA kernel failed to compile; the message names the file and line."""


class BackendFallbackWarning(UserWarning):
    """``device="auto"`` fell back from CUDA to the NumPy backend (same pixels, slower)."""


class CpuKernelFallbackWarning(UserWarning):
    """The compiled CPU kernels cannot load or compile on this machine; the NumPy
    reductions compute instead (same pixels, slower). Issued once per process."""


class StoreLockedError(NgffGpuError, RuntimeError):
    """Another live process is writing the same store; the message names it
    (pid, host, start time)."""


class DiskFullError(NgffGpuError, OSError):
    """The output's file system is full ("no space left on device"); names the path."""


class StoreUnreachableError(NgffGpuError, ValueError):
    """The store cannot be written from where the work runs (an in-process store
    such as a ``MemoryStore`` with ``dask.distributed`` worker processes)."""


class RemoteStoreError(NgffGpuError, OSError):
    """A remote store (``s3://``, ``gs://``, ``https://``...) failed an operation for
    good; the message names the store, the key, what failed in our words and how many
    attempts it took. This class itself: the store rejected a request (HTTP 400 or
    another client error that retrying cannot fix)."""


class StoreThrottledError(RemoteStoreError):
    """The store kept throttling (HTTP 503 ``SlowDown``, 429) through every attempt of
    the retry policy."""


class StoreUnavailableError(RemoteStoreError, ConnectionError):
    """The store kept failing or could not be reached (HTTP 500/502/504, connection
    refused or reset, timeouts, short reads) through every attempt of the retry policy."""


class StoreAccessDeniedError(RemoteStoreError, PermissionError):
    """The store denied access (HTTP 403/401, missing credentials); never retried."""
