#!/usr/bin/env bash
# Rehearse ci/gpu_run.sh here, on the CPU, the way the device runs it: a Python 3.12 venv
# holding only packages the device image has (KINDS.md; not torch: its CPU build is not
# on the index for 3.12, so the torch step reports itself skipped), the carried wheels
# installed from .whl/ with --no-index --no-deps into a scratch folder, GPU_REHEARSAL=1
# (the CUDA backend on the host stand-in of tests/hostkernels, small sizes). Then checks
# what came out: the result JSON, every step ok, and $OUT within the device tool's limits.
# About 5 minutes on the 2-core machine (the host-kernel sweep takes most of it).
#
# Usage: bash ci/gpu_rehearse.sh [OUT_DIR]
# Environment: PY312 (a python3.12; default: on PATH or under ~/.pyenv), REHEARSAL_VENV
# (default ~/.cache/ngff_gpu/rehearsal-venv-py312).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
is312() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; }
found=""
for cand in ${PY312:-} python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12; do
    if is312 "$cand"; then found="$cand"; break; fi
done
if [[ -z "$found" ]]; then
    echo "error: no Python 3.12 here (set PY312)" >&2
    exit 2
fi
PY312="$found"
VENV="${REHEARSAL_VENV:-$HOME/.cache/ngff_gpu/rehearsal-venv-py312}"
# What the run imports that the device image provides (its versions where known; numba
# compiles the CPU kernels there as here).
REQS=("numpy==2.5.*" scipy rich tifffile imageio psutil fsspec pytest hypothesis click
      cloudpickle pyyaml toolz packaging lazy-loader msgpack numba
      "cuda-bindings>=13,<14" "nvidia-cuda-nvrtc>=13,<14")
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PY312" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
if [[ "$(cat "$VENV/.rehearsal-reqs" 2>/dev/null)" != "${REQS[*]}" ]]; then
    "$VENV/bin/python" -m pip install -q "${REQS[@]}"
    echo "${REQS[*]}" > "$VENV/.rehearsal-reqs"
fi
[[ -x .venv/bin/python ]] || bash ci/setup.sh test
if compgen -G ".whl/*.whl" >/dev/null; then
    .venv/bin/python ci/gpu_wheels.py --check-only
else
    bash ci/gpu_wheels.sh
fi
OUT="${1:-$ROOT/benchmarks/out/gpu_rehearsal}"
rm -rf "$OUT"
mkdir -p "$OUT"
set +e
GPU_REHEARSAL=1 PYTHON="$VENV/bin/python" OUT="$OUT" GPU_WORK="$ROOT/benchmarks/out/gpu_rehearsal_work" \
    GPU_SITE="${TMPDIR:-/tmp}/ngff-gpu-rehearsal-site" bash ci/gpu_run.sh
rc=$?
set -e
.venv/bin/python - "$OUT" "$rc" <<'PYEOF'
import json, pathlib, re, sys

out, rc = pathlib.Path(sys.argv[1]), int(sys.argv[2])
files = sorted(p for p in out.rglob("*") if p.is_file())
problems = []
if len(files) > 8:
    problems.append(f"{len(files)} files under OUT (the device tool returns 8)")
for p in files:
    rel = p.relative_to(out)
    if p.stat().st_size > 16 << 20:
        problems.append(f"{rel} is over 16 MiB")
    if len(rel.parts) > 3 or not all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for part in rel.parts):
        problems.append(f"{rel}: too deep or a name the tool refuses")
results = [p for p in files if p.name.endswith("-rehearsal.json")]
if len(results) != 1:
    problems.append(f"expected one <date>-rehearsal.json, found {[p.name for p in results]}")
else:
    r = json.loads(results[0].read_text())
    for key in ("schema", "date", "commit", "kernels_sha256", "steps", "targets", "finished"):
        if r.get(key) in (None, "", []):
            problems.append(f"result file: {key} missing")
    for step, e in r["steps"].items():
        if e.get("status") != "ok":
            problems.append(f"step {step}: {e.get('status')}")
    steps = r["steps"]
    if not (steps.get("nvcomp", {}).get("result") or {}).get("nvcomp_version"):
        problems.append("nvidia.nvcomp did not import from the carried wheels")
    versions = (steps.get("env", {}).get("result") or {}).get("versions", {})
    for dist in ("zarr", "zarrs", "numcodecs", "dask", "ngff-zarr", "ome-zarr-models",
                 "cucim-cu13", "nvidia-nvcomp-cu13"):
        if not versions.get(dist):
            problems.append(f"{dist} is not installed from the carried wheels")
    nz_case = ((steps.get("e2e", {}).get("result") or {}).get("cases") or {}).get("ngff_zarr", {})
    if not (nz_case.get("check") or {}).get("valid"):
        problems.append("ngff-zarr's default did not write a valid store from the carried wheels")
    tests = r["steps"].get("tests", {}).get("result", {})
    if tests.get("cpu", {}).get("passed", 0) == 0:
        problems.append("the host-kernel sweep ran no test")
    if tests.get("gpu", {}).get("tests", 0) == 0:
        problems.append("no GPU test was collected")
print("rehearsal files:", [str(p.relative_to(out)) for p in files])
print("rehearsal:", "OK" if not problems and rc == 0 else f"FAILED (exit {rc})")
for p in problems:
    print("  -", p)
sys.exit(0 if not problems and rc == 0 else 1)
PYEOF
