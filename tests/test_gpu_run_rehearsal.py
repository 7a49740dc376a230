"""The GPU run (``ci/gpu_run.sh`` -> ``benchmarks/gpu_run.py``) rehearses on the CPU.

No GPU is lent to most sessions, and a lent one has minutes: the scripts that run there
must not rot. Here they run in rehearsal mode (the CUDA backend on the host stand-in of
``tests/hostkernels``, tiny sizes, no timing meaning): every step ends ``ok``, the result
file has its schema, the correctness checks inside the benchmarks hold (the CUDA store
equals the CPU store, the codec probe's decode-and-compare finds equal chunks and catches
swapped ones, torch results equal the NumPy path), and the files fit what the device tool
returns. ``bash ci/gpu_rehearse.sh`` is the full rehearsal (Python 3.12, the carried wheels,
the test steps). The kernels' SHA-256 computed from the files equals docs/design.md's
``git ls-files`` formula.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))


def test_kernels_sha256_matches_the_git_formula() -> None:
    from gpu_run import kernels_sha256

    try:
        files = subprocess.run(["git", "ls-files", "kernels"], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    h = hashlib.sha256()
    for f in sorted(files, key=lambda s: s.encode()):  # LC_ALL=C sort
        h.update((REPO / f).read_bytes())
    assert kernels_sha256() == h.hexdigest()


def test_gpu_run_rehearsal(tmp_path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_run.py"), "--rehearsal", "--out", str(out),
         "--work", str(tmp_path / "work"), "--steps", "env,kernels,nvcomp,torch,e2e",
         "--e2e-cases", "ngff_gpu_cuda,ngff_gpu_cpu,ngff_gpu_cuda_rawcopy", "--budget", "900"],
        cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    [path] = list(out.glob("*-rehearsal.json"))
    r = json.loads(path.read_text())
    assert r["schema"] == "ngff_gpu/gpu_run/1" and r["rehearsal"] and r["finished"]
    assert {s: e["status"] for s, e in r["steps"].items()} == dict.fromkeys(
        ["env", "kernels", "nvcomp", "torch", "e2e"], "ok")
    assert r["steps"]["env"]["result"]["kernels_sha256"] == r["kernels_sha256"]
    kernels = r["steps"]["kernels"]["result"]["kernels"]
    assert {(k["method"], k["dtype"]) for k in kernels if "GBps" in k} == {
        (m, d) for d in ("uint8", "uint16", "float32")
        for m in ("GAUSSIAN", "MEAN", "NEAREST", "MODE", "MIN", "MAX")
        if not (m == "MODE" and d == "float32")}
    e2e = r["steps"]["e2e"]["result"]
    assert e2e["cuda_equals_cpu"] is True
    for case in ("ngff_gpu_cuda", "ngff_gpu_cpu", "ngff_gpu_cuda_rawcopy"):
        res = e2e["cases"][case]
        assert res["check"]["valid"] and res["check"]["level0_equals_input"]
        assert res["engine_s"]["wall"] > 0
        # every level encoded, as the peers do; the last case copies level 0 as stored
        [level0] = res["level0"]
        assert ("copied raw" if case.endswith("rawcopy") else "recompress asked") in level0
    assert e2e["cases"]["ngff_gpu_cuda"]["backend_s"]["kernel_calls"] > 0
    checks = r["steps"]["nvcomp"]["result"]["rehearsal_checks"]
    for algo in ("zstd", "lz4"):
        assert checks[algo]["equal"] == checks[algo]["chunks"] > 0
    assert checks["shifted_zstd"]["equal"] == 0
    torch_cases = r["steps"]["torch"]["result"]["cases"]
    assert len(torch_cases) == 5 and all(c["equal_to_numpy_path"] for c in torch_cases)
    assert not [t for t in r["targets"] if t["pass"] is False]
    assert r["out_dir"]["ok"]
