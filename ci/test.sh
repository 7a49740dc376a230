#!/usr/bin/env bash
# Quick start 2: set up with the test extra, lint, and run the test suite. No GPU needed for the
# kernels: tests/test_nvrtc.py compiles them through the production NVRTC route (sm_80 + sm_90)
# and the tests/test_hostkernels_*.py run them on the CPU through the real CUDA backend (g++);
# tests marked gpu skip without a CUDA device. ci/compile_kernels.sh (nvcc) remains for manual use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/setup.sh test
.venv/bin/ruff check ngff_gpu kernels tests benchmarks
# One pytest-xdist worker per core (at most 8), each test file on one worker (its module
# fixtures, e.g. the NVRTC and g++ kernel builds, run once): the suite is mostly one thread at
# a time, so this roughly halves its time on the 2-core CI machine. NGFF_GPU_TEST_WORKERS=0
# runs it in one process.
workers="${NGFF_GPU_TEST_WORKERS:-$(nproc)}"
if (( workers > 8 )); then workers=8; fi
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider -n "$workers" --dist loadfile "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    echo "error: pytest collected no tests" >&2
fi
exit $rc
