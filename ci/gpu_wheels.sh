#!/usr/bin/env bash
# Build .whl/ here: the wheels the lent GPU machine lacks (Python 3.12, x86-64, no network
# there), slimmed to fit the device tool's 64 MiB with the working tree; checks their
# dependency closure and the size, and records the commit and the kernels' SHA-256 in
# .whl/manifest.json. Commit first: the run reports that commit. Details: ci/gpu_wheels.py.
# Then run ci/gpu_run.sh on the device with carry [".whl"] (see that script's header).
# Usage: bash ci/gpu_wheels.sh [--without ngff-zarr] [--check-only]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -x .venv/bin/python ]] || bash ci/setup.sh test
exec .venv/bin/python ci/gpu_wheels.py "$@"
