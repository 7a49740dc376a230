"""The kernels under AddressSanitizer and UndefinedBehaviorSanitizer (on the CPU).

Builds the host kernel library with ``-fsanitize=address,undefined
-fno-sanitize-recover=all`` and runs a smaller version of the host-kernel
tests (``test_hostkernels_standin.py`` and ``test_hostkernels_sweep.py``) in a
child process with libasan preloaded: an out-of-bounds read or write, or
undefined behaviour such as signed overflow, aborts the child and fails here
with the sanitizer's report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostkernels.build import build, compiler

ROOT = Path(__file__).resolve().parent.parent


def _libasan() -> str | None:
    cxx = compiler()
    if cxx is None:
        return None
    path = subprocess.run([cxx, "-print-file-name=libasan.so"], capture_output=True, text=True,
                          check=False).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


LIBASAN = _libasan()


@pytest.mark.skipif(LIBASAN is None, reason="needs g++ with libasan")
def test_kernels_clean_under_asan_and_ubsan() -> None:
    build(sanitize=True)  # compile errors show here, not in the child
    env = dict(os.environ, NGFF_HOSTKERNELS_SANITIZE="1", LD_PRELOAD=LIBASAN,
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:exitcode=86",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--capture=sys",
         "-k", "not refuses_implicit", "tests/test_hostkernels_standin.py",
         "tests/test_hostkernels_sweep.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)
    report = proc.stderr[:5000] + "\n...\n" + proc.stdout[-3000:]  # the report, then pytest
    assert proc.returncode == 0, report
    assert "passed" in proc.stdout, report
