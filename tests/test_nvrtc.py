"""The production NVRTC route, checked without a GPU.

``cuda_loader.compile_program`` (what ``get_kernel`` runs on a GPU machine)
compiles every kernel file with every name expression the backend can
request, for sm_80 and sm_90. The PTX built with the options really used has
no flush-to-zero and no fused multiply-add instruction, and each kernel's
mangled parameter list matches the arguments the backend passes (count,
order, int vs long long vs double vs pointers, pointer element types).
NVRTC comes from the ``cuda-bindings`` and NVRTC wheels of the ``test``
extra; on CI (``CI=true``) a missing NVRTC fails instead of skipping.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ngff_gpu.compute import cuda_loader
from ngff_gpu.compute.backends.cupy_backend import CupyBackend
from ngff_gpu.errors import KernelCompileError
from tests.hostkernels.abi import param_codes, same_param
from tests.hostkernels.build import compiler, instances_by_file
from tests.hostkernels.standin import (
    HostCupy,
    HostKernels,
    RecordingKernels,
    every_launch,
    flushes_to_zero,
)

ARCHS = ["sm_80", "sm_90"]
FILES = sorted(instances_by_file())

if not cuda_loader.nvrtc_available():
    if os.environ.get("CI") == "true":
        raise RuntimeError("NVRTC does not load on CI: the test extra must bring cuda-bindings "
                           "and nvidia-cuda-nvrtc")
    pytest.skip("NVRTC (cuda-bindings + nvidia-cuda-nvrtc) is not installed",
                allow_module_level=True)

#: Flush-to-zero (any ``.ftz`` modifier) and fused multiply-adds on floats.
_FTZ = re.compile(r"\.ftz\b")
_FMA = re.compile(r"\b(?:fma|mad)(?:\.\w+)*\.f(?:16|32|64)\b")


def ptx_violations(ptx: str) -> list[str]:
    """PTX instruction lines that flush subnormals or fuse a multiply and an add."""
    return [line.strip() for line in ptx.splitlines()
            if not line.lstrip().startswith("//") and (_FTZ.search(line) or _FMA.search(line))]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[tuple[str, str], cuda_loader.CompiledProgram]:
    """Every file for every arch, compiled cold into an empty cache folder."""
    folder = tmp_path_factory.mktemp("kernel_cache")
    return {(arch, f): cuda_loader.compile_program(f, instances_by_file()[f], arch, folder)
            for arch in ARCHS for f in FILES}


@pytest.fixture(scope="module")
def launches() -> dict[str, set[tuple[str, ...]]]:
    """Argument codes of every launch the backend makes, per name expression."""
    import numpy as np

    recorder = RecordingKernels()
    with np.errstate(all="ignore"):  # nothing runs: outputs are garbage
        every_launch(CupyBackend(xp=HostCupy(), kernels=recorder))
    return recorder.launches


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("filename", FILES)
def test_compiles_every_expression(compiled, arch, filename) -> None:
    program = compiled[arch, filename]
    assert set(program.lowered) == set(instances_by_file()[filename])
    assert program.image_path.read_bytes()[:4] == b"\x7fELF"  # a cubin for the device
    assert f".target {arch}" in program.ptx


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("filename", FILES)
def test_ptx_has_no_ftz_and_no_fma(compiled, arch, filename) -> None:
    program = compiled[arch, filename]
    assert program.options == cuda_loader.compile_options(arch)
    assert program.options == cuda_loader.route_options(arch)
    assert not flushes_to_zero(program.options)
    assert "--fmad=false" in program.options
    assert ptx_violations(program.ptx) == []


def test_ptx_check_sees_ftz_and_fma() -> None:
    """The check above fails on a build with -ftz=true --fmad=true (CuPy's route did the first)."""
    source = cuda_loader.program_source("gaussian.cu")
    expr = ("ngff_gaussian_pass<float, float, float>",)
    options = cuda_loader.compile_options("sm_90") + ("-ftz=true", "--fmad=true")
    _, ptx, _ = cuda_loader.nvrtc_compile(source, "gaussian.cu", expr, options)
    found = ptx_violations(ptx)
    assert any(".ftz" in line for line in found)
    assert any(line.startswith("fma") for line in found)


@pytest.mark.parametrize("arch", ARCHS)
def test_parameters_match_backend_arguments(compiled, launches, arch) -> None:
    lowered = {e: n for f in FILES for e, n in compiled[arch, f].lowered.items()}
    assert set(launches) == set(lowered)
    for expression, arg_lists in launches.items():
        params = param_codes(lowered[expression])
        for args in arg_lists:
            assert len(args) == len(params), (expression, params, args)
            bad = [(i, p, a) for i, (p, a) in enumerate(zip(params, args)) if not same_param(p, a)]
            assert not bad, (expression, bad)


@pytest.mark.skipif(compiler() is None, reason="needs g++ to build the host kernels")
def test_host_build_has_the_device_parameters(compiled) -> None:
    """The host library (tests/hostkernels) compiles the same parameter lists."""
    host = HostKernels()
    for f in FILES:
        for expression, mangled in compiled["sm_90", f].lowered.items():
            assert host.kernels[expression].params == param_codes(mangled), expression


def test_param_codes_demangles_substitutions() -> None:
    assert param_codes("_Z8ngff_minIfEvPKT_PS0_xi") == ["PKf", "Pf", "x", "i"]
    assert param_codes("_Z18ngff_gaussian_passIhfsEvPKT_PT1_PKT0_xdd") == [
        "PKh", "Ps", "PKf", "x", "d", "d"]


def test_disk_cache_hits_and_keys(tmp_path: Path, monkeypatch) -> None:
    expr = ("ngff_nearest<unsigned char>",)
    first = cuda_loader.compile_program("nearest.cu", expr, "sm_80", tmp_path)

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled again despite a cache entry")

    monkeypatch.setattr(cuda_loader, "nvrtc_compile", no_compile)
    again = cuda_loader.compile_program("nearest.cu", expr, "sm_80", tmp_path)
    assert again.image_path == first.image_path and again.lowered == first.lowered
    with pytest.raises(AssertionError, match="compiled again"):  # another arch: another key
        cuda_loader.compile_program("nearest.cu", expr, "sm_90", tmp_path)
    source = cuda_loader.program_source("nearest.cu")
    version = cuda_loader.nvrtc_version()
    opts = cuda_loader.compile_options("sm_80")
    key = cuda_loader.cache_key(source, opts, expr, version)
    assert key != cuda_loader.cache_key(source + "\n", opts, expr, version)
    assert key != cuda_loader.cache_key(source, opts + ("-ftz=true",), expr, version)
    assert first.image_path.name.startswith(key)


def test_compile_error_names_file_and_line() -> None:
    source = cuda_loader.program_source("nearest.cu").replace("NGFF_UNPACK_STEP",
                                                              "NGFF_UNPACK_STEP oops;", 1)
    with pytest.raises(KernelCompileError, match=r"nearest\.cu:\d+"):
        cuda_loader.nvrtc_compile(source, "nearest.cu", ("ngff_nearest<unsigned char>",),
                                  cuda_loader.compile_options("sm_80"))


def test_target_arch() -> None:
    supported = (75, 80, 86, 90)
    assert cuda_loader.target_arch(86, supported) == "sm_86"
    assert cuda_loader.target_arch(89, supported) == "compute_86"  # PTX, the driver finishes it
    with pytest.raises(KernelCompileError):
        cuda_loader.target_arch(70, supported)
