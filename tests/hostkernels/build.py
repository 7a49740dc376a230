"""Build ``kernels/*.cu`` as a host shared library (g++), cached by content.

Each kernel file becomes one translation unit: ``shim.h``, the ``.cu`` file
itself (its own explicit instantiations included), ``launch.h``, and a table
of the instantiations :func:`ngff_gpu.compute.backends.cupy_backend.kernel_instances`
lists for that file. Each table exports ``ngff_host_<stem>_count / _name /
_sig / _launch`` (C linkage); ``ngff_host_set_ftz`` switches the x86 MXCSR
flush-to-zero and denormals-are-zero bits (the emulation of ``-ftz=true``).

The library is cached under ``$NGFF_HOSTKERNELS_CACHE`` (default: a folder in
the temp dir), keyed by the hash of the sources, the generated tables, the
flags and the compiler's version, so only a change recompiles.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

from ngff_gpu.compute.backends.cupy_backend import kernel_instances
from ngff_gpu.compute.cuda_loader import KERNEL_FILES, name_expression

HERE = Path(__file__).resolve().parent
KERNELS = HERE.parent.parent / "kernels"

#: IEEE arithmetic exactly as written: no contraction into FMA, no fast-math.
BASE_FLAGS: tuple[str, ...] = ("-std=c++17", "-fPIC", "-ffp-contract=off", "-fno-fast-math",
                               "-fno-strict-aliasing", "-w")
OPT_FLAGS: tuple[str, ...] = ("-O2",)
#: AddressSanitizer + UndefinedBehaviorSanitizer; any report aborts the process.
SANITIZE_FLAGS: tuple[str, ...] = ("-O1", "-g", "-fno-omit-frame-pointer",
                                   "-fsanitize=address,undefined", "-fno-sanitize-recover=all")

_FTZ_SOURCE = """\
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
extern "C" int ngff_host_set_ftz(int on) {
    const unsigned int bits = 0x8040u;  // FTZ (bit 15) | DAZ (bit 6)
    _mm_setcsr(on ? (_mm_getcsr() | bits) : (_mm_getcsr() & ~bits));
    return 1;
}
#else
extern "C" int ngff_host_set_ftz(int) { return 0; }  // no emulation on this CPU
#endif
"""


def compiler() -> str | None:
    """The C++ compiler (``$CXX`` or ``g++``), or None when there is none."""
    return shutil.which(os.environ.get("CXX", "g++"))


def instances_by_file() -> dict[str, list[str]]:
    """Kernel file -> the name expressions built from it, sorted."""
    out: dict[str, list[str]] = defaultdict(list)
    for name, args in kernel_instances():
        out[KERNEL_FILES[name]].append(name_expression(name, args))
    return {k: sorted(v) for k, v in sorted(out.items())}


def stem(filename: str) -> str:
    """C identifier part of a kernel file name (``mean.cu`` -> ``mean``)."""
    return filename.rsplit(".", 1)[0]


def translation_unit(filename: str, expressions: list[str]) -> str:
    """The host C++ source of one kernel file with its launch table."""
    s = stem(filename)
    rows = ",\n".join(f'    NGFF_HOST_ENTRY("{e}", {e})' for e in expressions)
    return f"""\
#include "shim.h"
#include "{filename}"
#include "launch.h"

static const ngff_host::entry table[] = {{
{rows}
}};
static const int table_size = (int)(sizeof(table) / sizeof(table[0]));

extern "C" int ngff_host_{s}_count() {{ return table_size; }}
extern "C" const char* ngff_host_{s}_name(int i) {{ return table[i].name; }}
extern "C" const char* ngff_host_{s}_sig(int i) {{ return table[i].signature(); }}
extern "C" void ngff_host_{s}_launch(int i, unsigned int g, unsigned int b, void** a) {{
    table[i].launch(g, b, a);
}}
"""


def _version(cxx: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    return subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False,
                          env=env).stdout.splitlines()[0]


def cache_dir() -> Path:
    """Where built libraries are kept."""
    env = os.environ.get("NGFF_HOSTKERNELS_CACHE")
    return Path(env) if env else Path(tempfile.gettempdir()) / "ngff_hostkernels"


def build(sanitize: bool = False) -> Path:
    """Build (or reuse) the host kernel library; returns the ``.so`` path.

    Parameters
    ----------
    sanitize : bool
        Build with AddressSanitizer and UndefinedBehaviorSanitizer (the
        library then needs ``libasan`` preloaded into the process).

    Raises
    ------
    RuntimeError
        If there is no C++ compiler or a compile fails (with its output).
    """
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler (g++ or $CXX) to build the host kernels")
    flags = BASE_FLAGS + (SANITIZE_FLAGS if sanitize else OPT_FLAGS)
    units = {f"{stem(f)}.cpp": translation_unit(f, e) for f, e in instances_by_file().items()}
    units["ftz.cpp"] = _FTZ_SOURCE
    h = hashlib.sha256()
    for part in (_version(cxx), " ".join(flags)):
        h.update(part.encode() + b"\0")
    for path in sorted([*KERNELS.glob("*.cu"), *KERNELS.glob("*.cuh"), HERE / "shim.h",
                        HERE / "launch.h"]):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for name, text in sorted(units.items()):
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    key = h.hexdigest()[:24]
    target = cache_dir() / f"ngff_hostkernels_{'asan_' if sanitize else ''}{key}.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # no libasan in g++
        procs = []
        for name, text in units.items():
            (work / name).write_text(text)
            cmd = [cxx, *flags, f"-I{HERE}", f"-I{KERNELS}", "-c", name, "-o", f"{name}.o"]
            procs.append((name, subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT, text=True, env=env)))
        failed = []
        for name, proc in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                failed.append(f"{name}:\n{out}")
        if failed:
            raise RuntimeError("host kernel build failed:\n" + "\n".join(failed))
        lib = work / "lib.so"
        link = [cxx, *flags, "-shared", "-o", str(lib), *(f"{n}.o" for n in units)]
        proc = subprocess.run(link, cwd=work, capture_output=True, text=True, check=False,
                              env=env)
        if proc.returncode != 0:
            raise RuntimeError("host kernel link failed:\n" + proc.stdout + proc.stderr)
        os.replace(lib, target)
    return target
