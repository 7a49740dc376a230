"""Run a write on the CUDA backend, and fall back when the device cannot do it.

Under ``device="auto"``: a kernel that does not compile, or a device out of memory even
after the brick budget is halved, moves the whole run to the NumPy backend with one
:class:`~ngff_gpu.errors.BackendFallbackWarning`. The NumPy backend gives the same bits
(docs/design.md, "Numerics"), and every brick writes whole chunks or shards, so chunks
the CUDA attempt already wrote are simply written again with the same bytes. Under
``device="cuda"`` the failure is raised (:class:`~ngff_gpu.errors.KernelCompileError`,
or :class:`~ngff_gpu.errors.BackendUnavailableError` for memory).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ngff_gpu.compute.backends import Backend, NumpyBackend, fallback_warning
from ngff_gpu.errors import BackendUnavailableError, KernelCompileError

T = TypeVar("T")


def run_with_fallback(run: Callable[[Backend, int, bool], T], backend: Backend,
                      device: str) -> T:
    """Call ``run(backend, shrink, retry)``, retrying as described above.

    Parameters
    ----------
    run : callable
        Does the work with bricks of ``1/shrink`` of the usual per-brick budget
        (``shrink`` is 1, then 2 after running out of device memory); ``retry`` is True
        on every call after the first (the store may hold what an earlier attempt wrote).
    backend : Backend
        The backend chosen for ``device``.
    device : str
        The ``device`` argument: only ``"auto"`` falls back.

    Raises
    ------
    KernelCompileError, BackendUnavailableError
        When the CUDA backend fails and ``device`` is not ``"auto"``.
    """
    if not backend.on_device:
        return run(backend, 1, False)
    try:
        return run(backend, 1, False)
    except KernelCompileError as exc:
        if device != "auto":
            raise
        cause: BaseException = exc
    except MemoryError:
        try:
            return run(backend, 2, True)
        except KernelCompileError as exc:
            if device != "auto":
                raise
            cause = exc
        except MemoryError as exc:
            if device != "auto":
                raise BackendUnavailableError(
                    "the CUDA device ran out of memory even with bricks of half the usual "
                    f"size ({exc}); lower memory_limit or use device='cpu'") from exc
            cause = exc
    fallback_warning(cause)
    return run(NumpyBackend(), 1, True)
