#!/usr/bin/env bash
# The one command of a GPU lease (issue 22): the GPU tests and the CPU host-kernel sweep on
# the same commit, per-kernel bandwidth against a device copy, cuCIM per level, torch CUDA
# in and out, the nvCOMP codec probe, and a 4 GiB Zarr -> OME-Zarr 0.5 run end to end
# (ours on CUDA and on the CPU, ngff-zarr's default, a plain copy). About 8 minutes on one
# H200; every step in a time box, the result file rewritten after each step.
#
# In a session that IS lent a GPU (the device tool's `status`: can_start_another true):
#   1. here, in the repo root:  bash ci/gpu_wheels.sh
#        (.whl/: the wheels the device lacks, slimmed; it checks their dependency
#        closure and that .whl plus the working tree fit the tool's 64 MiB; it records
#        the commit, so commit first)
#   2. optional, here:  bash ci/gpu_rehearse.sh   (the same run on this CPU, ~5 min)
#   3. the device tool's run, exactly:
#        command:   bash ci/gpu_run.sh
#        carry:     [".whl"]
#        timeout_s: 540
#      (the steps get GPU_RUN_BUDGET_S=480 s, cut so that the whole script ends within
#      GPU_CALL_LIMIT_S=530 s; 540 covers the wheel install and the summary, and leaves
#      about 4 minutes of the 15-minute lease, machine start included, for one partial
#      rerun on the still-warm machine, e.g.
#        command:   GPU_STEPS=tests,kernels GPU_RUN_BUDGET_S=150 GPU_CALL_LIMIT_S=190 bash ci/gpu_run.sh
#        carry:     [".whl"]
#        timeout_s: 200
#      then give_back).
#   4. from the reply's files: copy <date>-<device>.json to benchmarks/results/ and commit
#      it; the figures go into benchmarks/README.md ("GPU run").
# Files under $OUT (the tool returns 8 at most): <date>-<device>.json, gpu_run.log,
# junit-gpu.xml, junit-cpu.xml, pytest-gpu.log, pytest-cpu.log.
#
# Environment: PYTHON (default python3: on the device the image's Python 3.12 with CuPy
# and torch), OUT (default benchmarks/out/gpu_run), GPU_REHEARSAL=1 (run on the CPU: host
# stand-in for CuPy, small sizes), GPU_STEPS (comma list, default all: env,warm_kernels,
# tests,kernels,nvcomp,torch,e2e), GPU_RUN_BUDGET_S (default 480), GPU_CALL_LIMIT_S (the
# whole script's limit, default 530, under the call's timeout_s), GPU_WORK (scratch on
# the machine's disk, default benchmarks/out/gpu_run_work; the e2e input is kept there
# for a rerun), GPU_SITE (where the wheels go, default /tmp/ngff-gpu-site).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
PY="${PYTHON:-python3}"
OUT="${OUT:-$ROOT/benchmarks/out/gpu_run}"
WORK="${GPU_WORK:-$ROOT/benchmarks/out/gpu_run_work}"
SITE="${GPU_SITE:-/tmp/ngff-gpu-site}"
BUDGET="${GPU_RUN_BUDGET_S:-480}"
LIMIT="${GPU_CALL_LIMIT_S:-530}"  # stay under the device call's timeout_s (540)
REHEARSAL="${GPU_REHEARSAL:-0}"
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/gpu_run.log") 2>&1
TEE_PID=$!
export PYTHONUNBUFFERED=1 GPU_WORK="$WORK" NGFF_GPU_KERNEL_CACHE="$WORK/kernel-cache"
started=$(date +%s)
echo "gpu_run: $(date -u +%FT%TZ) python=$("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])') rehearsal=$REHEARSAL budget=${BUDGET}s"
if [[ "$REHEARSAL" != 1 ]]; then
    nvidia-smi || echo "gpu_run: nvidia-smi failed"
fi

# The carried wheels, into a folder of their own that goes first on the path (the image's
# own packages stay untouched). They are built for CPython 3.12.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    if "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
        rm -rf "$SITE"
        t0=$(date +%s)
        if timeout 180 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
                --upgrade --target "$SITE" .whl/*.whl; then
            export PYTHONPATH="$ROOT:$SITE"
            echo "gpu_run: installed $(ls .whl/*.whl | wc -l) wheels into $SITE in $(( $(date +%s) - t0 )) s"
        else
            echo "gpu_run: error: the wheel install failed; steps that need them will fail"
        fi
    else
        echo "gpu_run: $PY is not Python 3.12: the wheels in .whl/ are not installed"
    fi
else
    echo "gpu_run: no .whl/ (run 'bash ci/gpu_wheels.sh' here and carry .whl)"
fi
"$PY" - <<'PYEOF'
import importlib
for name in ("numpy", "cupy", "torch", "zarr", "zarrs", "numcodecs", "dask", "ngff_zarr",
             "ome_zarr_models", "cucim", "nvidia.nvcomp", "ngff_gpu"):
    try:
        m = importlib.import_module(name)
        print(f"gpu_run: import {name:16} {getattr(m, '__version__', '')}")
    except Exception as exc:
        print(f"gpu_run: import {name:16} FAILED {type(exc).__name__}: {exc}")
PYEOF

# What is left of the call's limit goes to the steps (less the summary's margin).
left=$(( LIMIT - ($(date +%s) - started) ))
(( BUDGET > left - 40 )) && BUDGET=$(( left - 40 ))
args=(--out "$OUT" --work "$WORK" --budget "$BUDGET")
[[ -n "${GPU_STEPS:-}" ]] && args+=(--steps "$GPU_STEPS")
[[ "$REHEARSAL" == 1 ]] && args+=(--rehearsal)
echo "gpu_run: steps budget ${BUDGET}s, ${left}s left of the call's ${LIMIT}s"
timeout --kill-after=10 $(( left - 15 )) "$PY" benchmarks/gpu_run.py "${args[@]}"
rc=$?
echo "gpu_run: exit $rc after $(( $(date +%s) - started )) s; files in $OUT:"
ls -la "$OUT"
exec 1>&- 2>&-
wait "$TEE_PID"
exit "$rc"
