#!/usr/bin/env bash
# Quick start 1: set up, then convert the built-in sample volume and print the levels written.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/setup.sh validate
exec .venv/bin/ngff-gpu demo "${@}"
