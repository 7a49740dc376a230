"""Find, compile (NVRTC through CuPy) and cache the CUDA kernels of ``kernels/``.

One memoized entry point, :func:`get_kernel`, keyed by device, kernel name and
template arguments. The ``.cu`` sources ship inside the wheel as the package
``ngff_gpu.kernels`` (``pyproject.toml`` maps the top-level ``kernels/`` folder
there); in a source checkout that is not installed they are read from the
repository's ``kernels/`` folder.

CuPy is imported lazily inside the functions that need it, so this module
imports on machines without CuPy or a GPU (CI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ngff_gpu.errors import KernelCompileError

#: Kernel (template) name -> source file in ``kernels/``.
KERNEL_FILES: dict[str, str] = {
    "ngff_gaussian_pass": "gaussian.cu",
    "ngff_mean_float": "mean.cu",
    "ngff_mean_int": "mean.cu",
    "ngff_mean_int64": "mean.cu",
    "ngff_min": "minmax.cu",
    "ngff_max": "minmax.cu",
    "ngff_mode": "mode.cu",
    "ngff_nearest": "nearest.cu",
}

#: NVRTC options; ``--fmad=false`` keeps every product and sum rounded
#: separately, as NumPy does (docs/design.md section 2.4).
NVRTC_OPTIONS: tuple[str, ...] = (
    "--std=c++17",
    "--fmad=false",
    "--prec-div=true",
    "--prec-sqrt=true",
    "--ftz=false",
)

#: What CuPy's source route (``RawModule(code=...)`` -> ``_compile_with_cache_cuda``)
#: appends after the caller's options, unconditionally; NVRTC takes the last value.
CUPY_APPENDED_OPTIONS: tuple[str, ...] = ("-ftz=true",)


def route_options() -> tuple[str, ...]:
    """The options NVRTC finally receives on this loader's compile route.

    The host stand-in of the CUDA backend (``tests/hostkernels``) emulates
    flush-to-zero for float32 kernels when the last ``ftz`` option here says true.
    """
    return NVRTC_OPTIONS + CUPY_APPENDED_OPTIONS


_INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')
# NVRTC diagnostics: ``name(LINE): error: message`` (also ``warning``).
_LOG_RE = re.compile(r"^(?P<file>[^\s(][^(]*?)\((?P<line>\d+)\): (?P<kind>error|warning)\b:?\s*"
                     r"(?P<msg>.*)$")


def kernels_dir() -> Path | None:
    """The repository's ``kernels/`` folder, when running from a checkout."""
    path = Path(__file__).resolve().parent.parent / "kernels"
    return path if path.is_dir() else None


def kernel_files() -> list[str]:
    """Names of every ``.cu`` and ``.cuh`` source the loader can find, sorted."""
    names: set[str] = set()
    try:
        from importlib.resources import files

        root = files("ngff_gpu.kernels")
        names.update(p.name for p in root.iterdir() if p.name.endswith((".cu", ".cuh")))
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    local = kernels_dir()
    if local is not None:
        names.update(p.name for p in local.iterdir() if p.suffix in (".cu", ".cuh"))
    return sorted(names)


@cache
def read_source(filename: str) -> str:
    """Text of one kernel source file (``gaussian.cu``, ``common.cuh``...).

    Looks in the installed package ``ngff_gpu.kernels`` first, then in the
    repository's ``kernels/`` folder.

    Raises
    ------
    FileNotFoundError
        If neither place holds ``filename``.
    """
    try:
        from importlib.resources import files

        resource = files("ngff_gpu.kernels").joinpath(filename)
        if resource.is_file():
            return resource.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    local = kernels_dir()
    if local is not None and (local / filename).is_file():
        return (local / filename).read_text(encoding="utf-8")
    raise FileNotFoundError(f"kernel source {filename!r} not found in ngff_gpu.kernels or "
                            "the repository's kernels/ folder")


def expand_source(filename: str, _seen: frozenset[str] = frozenset()) -> str:
    """``filename``'s text with local ``#include "x"`` inlined under ``#line`` markers.

    The ``#line`` directives make NVRTC report errors against the original
    file names and line numbers, whatever file they are in.
    """
    if filename in _seen:
        return ""
    out = [f'#line 1 "{filename}"']
    for lineno, line in enumerate(read_source(filename).splitlines(), start=1):
        match = _INCLUDE_RE.match(line)
        if match:
            out.append(expand_source(match.group(1), _seen | {filename}))
            out.append(f'#line {lineno + 1} "{filename}"')
        else:
            out.append(line)
    return "\n".join(out)


def program_source(filename: str) -> str:
    """The complete NVRTC program for ``filename`` (``NGFF_NVRTC`` defined)."""
    return "#define NGFF_NVRTC 1\n" + expand_source(filename) + "\n"


@dataclass(frozen=True)
class Diagnostic:
    """One NVRTC diagnostic mapped to a kernel source file and line."""

    file: str
    line: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}: {self.message}"


def parse_nvrtc_log(log: str) -> list[Diagnostic]:
    """Diagnostics of an NVRTC log, file names reduced to their base name.

    Parameters
    ----------
    log : str
        The compiler log (CuPy's ``CompileException`` text).

    Returns
    -------
    list of Diagnostic
        Errors and warnings in log order; lines that are not diagnostics are skipped.
    """
    found = []
    for raw in log.splitlines():
        match = _LOG_RE.match(raw.strip())
        if match:
            found.append(Diagnostic(Path(match.group("file").strip()).name,
                                    int(match.group("line")), match.group("kind"),
                                    match.group("msg").strip()))
    return found


def compile_error(filename: str, expression: str, log: str) -> KernelCompileError:
    """A :class:`KernelCompileError` naming the file, the line(s) and the log."""
    errors = [d for d in parse_nvrtc_log(log) if d.kind == "error"]
    where = "; ".join(str(d) for d in errors[:5]) or f"{filename}: (no line in the log)"
    return KernelCompileError(
        f"CUDA kernel {expression} from {filename} failed to compile: {where}\n{log}"
    )


def name_expression(name: str, type_args: tuple[str, ...]) -> str:
    """C++ name expression of a template instantiation, e.g. ``ngff_min<float>``."""
    return f"{name}<{', '.join(type_args)}>" if type_args else name


def _current_device() -> int:
    import cupy

    return int(cupy.cuda.runtime.getDevice())


def get_kernel(name: str, *type_args: str, device_id: int | None = None) -> Any:
    """The compiled ``cupy.RawKernel`` of one kernel template instantiation.

    Parameters
    ----------
    name : str
        Kernel template name, a key of :data:`KERNEL_FILES`.
    *type_args : str
        C++ template arguments (``"float"``, ``"unsigned short"``...).
    device_id : int, optional
        CUDA device; the current device when None.

    Returns
    -------
    cupy.RawKernel

    Raises
    ------
    KeyError
        If ``name`` is not a known kernel.
    KernelCompileError
        If NVRTC rejects the source; the message names the file and line.
    """
    if name not in KERNEL_FILES:
        raise KeyError(f"unknown kernel {name!r}; known: {', '.join(sorted(KERNEL_FILES))}")
    if device_id is None:
        device_id = _current_device()
    return _compiled(int(device_id), name, tuple(type_args))


@cache
def _compiled(device_id: int, name: str, type_args: tuple[str, ...]) -> Any:
    import cupy

    filename = KERNEL_FILES[name]
    expression = name_expression(name, type_args)
    options = list(NVRTC_OPTIONS)
    local = kernels_dir()
    if local is not None:
        options.append(f"-I{local}")
    with cupy.cuda.Device(device_id):
        try:
            module = cupy.RawModule(code=program_source(filename), options=tuple(options),
                                    name_expressions=(expression,))
            return module.get_function(expression)
        except Exception as exc:  # CompileException; only its class name is stable
            if type(exc).__name__ != "CompileException":
                raise
            raise compile_error(filename, expression, str(exc)) from exc
