#!/usr/bin/env bash
# Compile every kernels/*.cu standalone with nvcc for sm_80 and sm_90 (docs/design.md section 7).
#
# One line per file and arch; exits nonzero on any failure. Without nvcc it
# warns and exits 0, unless nvcc is required: NGFF_REQUIRE_NVCC=1, or CI=true
# with NGFF_REQUIRE_NVCC unset (set NGFF_REQUIRE_NVCC=0 to opt out).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

require="${NGFF_REQUIRE_NVCC:-}"
if [[ -z "$require" ]]; then
    if [[ "${CI:-}" == "true" ]]; then require=1; else require=0; fi
fi

NVCC="${NVCC:-$(command -v nvcc || true)}"
if [[ -z "$NVCC" && -x /usr/local/cuda/bin/nvcc ]]; then NVCC=/usr/local/cuda/bin/nvcc; fi
if [[ -z "$NVCC" ]]; then
    if [[ "$require" == "1" ]]; then
        echo "error: nvcc not found and NGFF_REQUIRE_NVCC/CI requires it" >&2
        exit 1
    fi
    echo "warning: nvcc not found; kernels not compiled" >&2
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
shopt -s nullglob
files=(kernels/*.cu)
if (( ${#files[@]} == 0 )); then
    echo "error: no kernels/*.cu found" >&2
    exit 1
fi
status=0
for f in "${files[@]}"; do
    for arch in 80 90; do
        out="$tmp/$(basename "$f" .cu).sm_${arch}.cubin"
        if log="$("$NVCC" -std=c++17 -Ikernels -arch="sm_${arch}" -cubin --fmad=false \
                -o "$out" "$f" 2>&1)"; then
            echo "ok     sm_${arch}  $f"
        else
            echo "FAILED sm_${arch}  $f"
            echo "$log" >&2
            status=1
        fi
    done
done
exit "$status"
