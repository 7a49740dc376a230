#!/usr/bin/env bash
# Create .venv (if missing) and install ngff-gpu with the given extras into it.
# Usage: bash ci/setup.sh [EXTRAS]   e.g. bash ci/setup.sh test
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
extras="${1:-}"
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch==2.13.0 (CPU build) is pinned in the test extra: pip takes the CPU wheel on this platform.
if [[ -n "$extras" ]]; then
    .venv/bin/python -m pip install --quiet -e ".[${extras}]"
else
    .venv/bin/python -m pip install --quiet -e .
fi
