"""Typed errors of ngff_gpu: each names the problem it reports.

Every error ngff_gpu raises on purpose is an :class:`NgffGpuError`; errors about an
argument are also the builtin a caller would expect (:class:`ValueError` for a bad
value, :class:`TypeError` for a wrong type), and their message names the argument.
See docs/design.md, "Errors".
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar


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


#: Subclasses made by :meth:`PeerCompatible.create`, by (our class, the peer's class).
_PEER_CLASSES: dict[tuple[type, type], type] = {}


class PeerCompatible:
    """Mixin of an error that is also an instance of the class another library raises in
    the same case, so that ``except`` clauses written against that library keep working.

    ``peer`` names that class (module, name). :meth:`create` builds the error as an
    instance of a subclass of both classes when the peer's module is loaded (code that
    names the peer's class in an ``except`` clause has imported it), and of this class
    alone otherwise; nothing is imported for it. Raise these errors through
    :meth:`create`.
    """

    peer: ClassVar[tuple[str, str]]

    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> Any:
        """An instance of ``cls``, and of the peer's class when it is loaded."""
        module, name = cls.peer
        other = getattr(sys.modules.get(module), name, None)
        target: type = cls
        if isinstance(other, type) and issubclass(other, BaseException) and not issubclass(
                cls, other):
            key = (cls, other)
            if key not in _PEER_CLASSES:
                try:
                    _PEER_CLASSES[key] = type(cls.__name__, (cls, other), {
                        "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                        "__doc__": cls.__doc__})
                except TypeError:  # incompatible layouts: ours alone
                    _PEER_CLASSES[key] = cls
            target = _PEER_CLASSES[key]
        error = target.__new__(target)
        error._init_args = (args, kwargs)
        cls.__init__(error, *args, **kwargs)
        return error

    def __reduce__(self) -> Any:
        args, kwargs = getattr(self, "_init_args", ((str(self),), {}))
        base = next(c for c in type(self).__mro__ if "peer" in c.__dict__)
        return (_rebuild, (base, args, kwargs))


def _rebuild(cls: Any, args: tuple, kwargs: dict) -> Any:
    return cls.create(*args, **kwargs)


class StructuralValidationError(PeerCompatible, InvalidStoreError):
    """A stored OME-Zarr document breaks a structural rule of the specification that a
    JSON schema cannot state (axis count, order and names, vector lengths, dataset
    order...; ``validate=True``). ``rule`` is the rule's identifier (ngff-zarr's
    ``SpecRule`` value, e.g. ``"axis-order"``), ``location`` the offending node
    (``multiscales[0].axes[1]``); also an ``ngff_zarr.structural_validation.
    ValidationError`` when ngff-zarr is loaded."""

    peer = ("ngff_zarr.structural_validation", "ValidationError")

    def __init__(self, rule: Any, message: str, location: str | None = None,
                 store: str | None = None) -> None:
        self.rule = rule
        self.message = message
        self.location = location
        self.store = store
        Exception.__init__(self, str(self))

    def __str__(self) -> str:
        where = ": ".join(w for w in (self.store, self.location) if w)
        rule = getattr(self.rule, "value", self.rule)
        return f"{where + ': ' if where else ''}spec rule [{rule}] violated: {self.message}"


class SchemaValidationError(PeerCompatible, InvalidStoreError):
    """A stored OME-Zarr document does not satisfy the official JSON schema of its
    version (``validate=True``; :mod:`ngff_gpu.model.schema`). Also a
    ``jsonschema.ValidationError`` (what ngff-zarr raises there; jsonschema is loaded
    whenever the schema pass runs), with its ``message``, ``path``, ``validator``,
    ``validator_value`` and ``instance``; ``version`` and ``schema_file`` name the
    schema, ``store`` the store."""

    peer = ("jsonschema.exceptions", "ValidationError")

    def __init__(self, message: str, version: str, schema: str, path: Any = (),
                 validator: Any = None, validator_value: Any = None, instance: Any = None,
                 store: str | None = None) -> None:
        from collections import deque

        self.message = message
        self.version = version
        self.schema_file = schema
        self.path = self.relative_path = deque(path)
        self.schema_path = self.relative_schema_path = deque()
        self.context: list[Any] = []
        self.cause = None
        self.parent = None
        self.validator = validator
        self.validator_value = validator_value
        self.instance = instance
        self.store = store
        Exception.__init__(self, str(self))

    def __str__(self) -> str:
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)
        return (f"{self.store + ': ' if self.store else ''}OME-Zarr {self.version} schema "
                f"({self.schema_file}): {self.message}{' at ' + at.lstrip('.') if at else ''}")


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


class ArrayWriteError(NgffGpuError, OSError):
    """Writing a level's array failed on an ``OSError`` (reading the source, a corrupt
    or truncated file for instance, or writing the store): names the array(s) and the
    store; the original error is its ``__cause__`` and its ``errno``. An ``OSError``,
    as ngff-zarr's error for the same failure is."""


class StoreUnreachableError(NgffGpuError, ValueError):
    """The store cannot be written from where the work runs (an in-process store
    such as a ``MemoryStore`` with ``dask.distributed`` worker processes)."""


class RemoteStoreError(NgffGpuError, OSError):
    """A remote store (``s3://``, ``gs://``, ``https://``...) failed an operation for
    good; the message names the store, the key, what failed in our words and how many
    attempts it took. This class itself: the store rejected a request (HTTP 400 or
    another client error that retrying cannot fix)."""


class StoreBackendMissingError(NgffGpuError, ImportError):
    """The package that reads a URL's protocol (``s3fs``, ``gcsfs``, ``aiohttp``...) is
    not installed; names the URL, the package and the ``[remote]`` extra. Raised before
    anything is read or written; an ``ImportError``, as ngff-zarr's error for a missing
    remote back-end is."""


class StoreThrottledError(RemoteStoreError):
    """The store kept throttling (HTTP 503 ``SlowDown``, 429) through every attempt of
    the retry policy."""


class StoreUnavailableError(RemoteStoreError, ConnectionError):
    """The store kept failing or could not be reached (HTTP 500/502/504, connection
    refused or reset, timeouts, short reads) through every attempt of the retry policy."""


class StoreAccessDeniedError(RemoteStoreError, PermissionError):
    """The store denied access (HTTP 403/401, missing credentials); never retried."""
