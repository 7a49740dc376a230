"""Find, compile (NVRTC, directly) and cache the CUDA kernels of ``kernels/``.

One memoized entry point, :func:`get_kernel`, keyed by device, kernel name and
template arguments. The ``.cu`` sources ship inside the wheel as the package
``ngff_gpu.kernels`` (``pyproject.toml`` maps the top-level ``kernels/`` folder
there); in a source checkout that is not installed they are read from the
repository's ``kernels/`` folder.

:func:`compile_program` compiles a program with NVRTC itself (the
``cuda-bindings`` package; no GPU or driver needed) with exactly
:data:`NVRTC_OPTIONS` and the target architecture, takes the lowered
(mangled) names from NVRTC and caches the cubin on disk, keyed by the source
hash, the options, the architecture and the NVRTC version. CuPy only loads the
cubin as a module: no CuPy compile route runs, so nothing can append or
override an option (CuPy's source route appends ``-ftz=true``).

CuPy and NVRTC are imported lazily inside the functions that need them, so
this module imports on machines without either (CI).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
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

#: NVRTC options, all of them but the architecture: ``--fmad=false`` keeps
#: every product and sum rounded separately and ``--ftz=false`` keeps float32
#: subnormals, as NumPy does (docs/design.md section 2.4).
NVRTC_OPTIONS: tuple[str, ...] = (
    "--std=c++17",
    "--fmad=false",
    "--ftz=false",
    "--prec-div=true",
    "--prec-sqrt=true",
)


def compile_options(arch: str) -> tuple[str, ...]:
    """Every option :func:`compile_program` gives NVRTC for ``arch``.

    ``arch`` is ``sm_XY`` (a cubin for that device) or ``compute_XY`` (PTX only,
    for a device newer than this NVRTC knows; the driver finishes it).
    """
    return NVRTC_OPTIONS + (f"--gpu-architecture={arch}",)


def route_options(arch: str = "sm_90") -> tuple[str, ...]:
    """The options NVRTC finally receives on this loader's compile route.

    The route is :func:`compile_program`, so these are exactly
    :func:`compile_options`. The host stand-in of the CUDA backend
    (``tests/hostkernels``) emulates flush-to-zero for float32 kernels when
    the last ``ftz`` option here says true.
    """
    return compile_options(arch)


_INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')
# NVRTC diagnostics: ``name(LINE): error: message`` (also ``warning``).
_LOG_RE = re.compile(r"^(?P<file>[^\s(][^(]*?)\((?P<line>\d+)\): (?P<kind>error|warning)\b:?\s*"
                     r"(?P<msg>.*)$")


def kernels_dir() -> Path | None:
    """The repository's ``kernels/`` folder, when running from a checkout."""
    path = Path(__file__).resolve().parents[2] / "kernels"  # ngff_gpu/compute/ -> repo root
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


def _nvrtc() -> Any:
    """The NVRTC bindings (``cuda-bindings``), or raise a clear error."""
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        try:
            from cuda import nvrtc  # cuda-python < 12.6
        except ImportError as exc:
            raise KernelCompileError(
                "NVRTC is not available: install ngff-gpu[cuda12] or ngff-gpu[cuda13] "
                "(cuda-bindings and the NVRTC wheel of that CUDA version)") from exc
    return nvrtc


def nvrtc_available() -> bool:
    """True when NVRTC loads (no GPU or driver is needed to compile)."""
    try:
        nvrtc_version()
    except Exception:  # noqa: BLE001 - any failure means "cannot compile here"
        return False
    return True


@cache
def nvrtc_version() -> tuple[int, int]:
    """``(major, minor)`` of the NVRTC library in use."""
    nvrtc = _nvrtc()
    err, major, minor = nvrtc.nvrtcVersion()
    _check(nvrtc, err, "nvrtcVersion")
    return int(major), int(minor)


@cache
def supported_archs() -> tuple[int, ...]:
    """Compute capabilities (``90`` for sm_90) this NVRTC can build cubins for."""
    nvrtc = _nvrtc()
    err, n = nvrtc.nvrtcGetNumSupportedArchs()
    _check(nvrtc, err, "nvrtcGetNumSupportedArchs")
    err, archs = nvrtc.nvrtcGetSupportedArchs()
    _check(nvrtc, err, "nvrtcGetSupportedArchs")
    return tuple(sorted(int(a) for a in archs[:n]))


def target_arch(capability: int, supported: tuple[int, ...]) -> str:
    """NVRTC target for a device of compute capability ``capability`` (``86``...).

    ``sm_<cc>`` when NVRTC knows it (a cubin); otherwise PTX for the newest
    architecture it knows below it (``compute_<cc>``), which the driver compiles.

    Raises
    ------
    KernelCompileError
        If the device is older than every architecture NVRTC supports.
    """
    if capability in supported:
        return f"sm_{capability}"
    older = [a for a in supported if a < capability]
    if not older:
        raise KernelCompileError(
            f"this NVRTC ({'.'.join(map(str, nvrtc_version()))}) cannot target compute "
            f"capability {capability}; it supports {', '.join(map(str, supported))}")
    return f"compute_{max(older)}"


def _check(nvrtc: Any, err: Any, what: str) -> None:
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise KernelCompileError(f"{what} failed: {err!r}")


def _get_bytes(nvrtc: Any, prog: Any, size_fn: str, get_fn: str) -> bytes:
    err, size = getattr(nvrtc, size_fn)(prog)
    _check(nvrtc, err, size_fn)
    buf = b" " * size
    (err,) = getattr(nvrtc, get_fn)(prog, buf)
    _check(nvrtc, err, get_fn)
    return buf.rstrip(b"\0")


@dataclass(frozen=True)
class CompiledProgram:
    """What NVRTC produced for one kernel file and a set of name expressions.

    Attributes
    ----------
    filename : str
        Kernel source file (``mean.cu``).
    arch : str
        ``sm_XY`` (``image`` is a cubin) or ``compute_XY`` (``image`` is PTX).
    options : tuple of str
        Every option NVRTC was given.
    lowered : dict of str to str
        Name expression -> mangled name of the ``__global__`` function.
    ptx : str
        The PTX NVRTC generated with these options.
    image_path : pathlib.Path
        The cubin (or PTX) on disk, for ``cupy.RawModule(path=...)``.
    """

    filename: str
    arch: str
    options: tuple[str, ...]
    lowered: dict[str, str]
    ptx: str
    image_path: Path


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$NGFF_GPU_KERNEL_CACHE``, else
    ``$XDG_CACHE_HOME/ngff_gpu/kernels`` (``~/.cache`` by default)."""
    env = os.environ.get("NGFF_GPU_KERNEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ngff_gpu" / "kernels"


def cache_key(source: str, options: tuple[str, ...], expressions: tuple[str, ...],
              version: tuple[int, int]) -> str:
    """Hash of everything the compiled bytes depend on."""
    h = hashlib.sha256()
    for part in (source, "\0".join(options), "\0".join(sorted(expressions)),
                 ".".join(map(str, version))):
        h.update(part.encode("utf-8") + b"\0\1")
    return h.hexdigest()[:32]


def nvrtc_compile(source: str, filename: str, expressions: tuple[str, ...],
                  options: tuple[str, ...]) -> tuple[bytes, str, dict[str, str]]:
    """Compile ``source`` with NVRTC exactly as given: ``(image, ptx, lowered names)``.

    ``image`` is the cubin for an ``sm_`` architecture, else the PTX bytes.

    Raises
    ------
    KernelCompileError
        If NVRTC rejects the program (the message names the file and line).
    """
    nvrtc = _nvrtc()
    err, prog = nvrtc.nvrtcCreateProgram(source.encode("utf-8"), filename.encode(), 0, [], [])
    _check(nvrtc, err, "nvrtcCreateProgram")
    try:
        for expression in expressions:
            (err,) = nvrtc.nvrtcAddNameExpression(prog, expression.encode())
            _check(nvrtc, err, "nvrtcAddNameExpression")
        opts = [o.encode() for o in options]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            log = _get_bytes(nvrtc, prog, "nvrtcGetProgramLogSize", "nvrtcGetProgramLog")
            raise compile_error(filename, ", ".join(expressions), log.decode(errors="replace"))
        lowered = {}
        for expression in expressions:
            err, name = nvrtc.nvrtcGetLoweredName(prog, expression.encode())
            _check(nvrtc, err, "nvrtcGetLoweredName")
            lowered[expression] = name.decode()
        ptx = _get_bytes(nvrtc, prog, "nvrtcGetPTXSize", "nvrtcGetPTX")
        targets = [o.split("=", 1)[1] for o in options if o.startswith("--gpu-architecture=")]
        cubin = bool(targets) and targets[-1].startswith("sm_")
        image = _get_bytes(nvrtc, prog, "nvrtcGetCUBINSize", "nvrtcGetCUBIN") if cubin else ptx
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    return image, ptx.decode(), lowered


def compile_program(filename: str, expressions: tuple[str, ...] | list[str], arch: str,
                    directory: Path | None = None) -> CompiledProgram:
    """Compile ``filename`` for ``arch`` with every name expression, through the disk cache.

    Parameters
    ----------
    filename : str
        Kernel source in ``kernels/`` (``gaussian.cu``).
    expressions : sequence of str
        Name expressions to instantiate (``ngff_min<float>``).
    arch : str
        ``sm_XY`` or ``compute_XY`` (see :func:`target_arch`).
    directory : pathlib.Path, optional
        Cache folder; :func:`cache_dir` when None.

    Returns
    -------
    CompiledProgram

    Raises
    ------
    KernelCompileError
        If NVRTC is missing or rejects the program.
    """
    expressions = tuple(expressions)
    source = program_source(filename)
    options = compile_options(arch)
    key = cache_key(source, options, expressions, nvrtc_version())
    folder = Path(directory) if directory is not None else cache_dir()
    ext = ".cubin" if arch.startswith("sm_") else ".ptx"
    image_path, meta_path = folder / f"{key}{ext}", folder / f"{key}.json"
    if image_path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            return CompiledProgram(filename, arch, options, meta["lowered"], meta["ptx"],
                                   image_path)
        except (OSError, ValueError, KeyError):
            pass  # a damaged entry: compile again and replace it
    image, ptx, lowered = nvrtc_compile(source, filename, expressions, options)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.mkdtemp(prefix="ngff_gpu_kernels_"))
        image_path, meta_path = folder / f"{key}{ext}", folder / f"{key}.json"
    meta = {"filename": filename, "arch": arch, "options": list(options), "lowered": lowered,
            "nvrtc": list(nvrtc_version()), "ptx": ptx}
    for path, data in ((image_path, image), (meta_path, json.dumps(meta).encode("utf-8"))):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return CompiledProgram(filename, arch, options, lowered, ptx, image_path)


def _current_device() -> int:
    import cupy

    return int(cupy.cuda.runtime.getDevice())


def get_kernel(name: str, *type_args: str, device_id: int | None = None) -> Any:
    """The compiled ``cupy.RawKernel`` of one kernel template instantiation.

    Compiled by :func:`compile_program` for the device's architecture and
    loaded with ``cupy.RawModule(path=...)`` (CuPy compiles nothing).

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
        If NVRTC is missing or rejects the source; the message names the file and line.
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
    device = cupy.cuda.Device(device_id)
    with device:
        arch = target_arch(int(device.compute_capability), supported_archs())
        program = compile_program(filename, (expression,), arch)
        module = cupy.RawModule(path=str(program.image_path))
        return module.get_function(program.lowered[expression])
