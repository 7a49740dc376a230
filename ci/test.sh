#!/usr/bin/env bash
# Quick start 2: set up with the test extra, compile the CUDA kernels (nvcc, sm_80 + sm_90),
# lint, and run the test suite (GPU tests skip without a CUDA device).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/setup.sh test
bash ci/compile_kernels.sh
.venv/bin/ruff check ngff_gpu kernels tests benchmarks
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    echo "error: pytest collected no tests" >&2
fi
exit $rc
