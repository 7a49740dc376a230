#!/usr/bin/env bash
# The one script to run on a GPU machine: GPU tests, GPU benchmark, result file.
#
# Uses the system python3 (which holds CuPy on the lent machines) or $PYTHON.
# Missing packages come from wheels in .whl/ when that folder exists (offline
# machines: make it here with `bash ci/gpu_wheels.sh` and carry it), else from
# PyPI. Writes benchmarks/results/<date>-<device>.json and, when $OUT is set, a
# copy plus the junit XML and logs under $OUT.
#
# Environment: PYTHON (python to use), BENCH_SIZE (default 1024),
# BENCH_REPEAT (default 5), PYTEST_ARGS (extra pytest arguments).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
PY="${PYTHON:-python3}"
OUTDIR="${OUT:-$ROOT/benchmarks/out}"
mkdir -p "$OUTDIR" benchmarks/results
export PYTHONUNBUFFERED=1

pip_install() {
    if [[ -d .whl ]] && compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --find-links .whl "$@"
    else
        "$PY" -m pip install -q "$@"
    fi
}

# What the package and the tests import; install only what is missing.
missing=()
for spec in numpy scipy "dask[array]:dask" zarr numcodecs array-api-compat:array_api_compat \
            zarrs ome-zarr-models:ome_zarr_models rich tifffile imageio psutil fsspec pytest \
            hypothesis; do
    pkg="${spec%%:*}"; mod="${spec##*:}"
    [[ "$spec" == *:* ]] || mod="$pkg"
    "$PY" -c "import ${mod}" 2>/dev/null || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    echo "installing: ${missing[*]}"
    pip_install "${missing[@]}" || echo "warning: could not install ${missing[*]}" >&2
fi
"$PY" -c "import cupy; print('cupy', cupy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount())"
# NVRTC for cuda_loader (it compiles the kernels itself), of CuPy's CUDA major version.
if ! "$PY" -c "from cuda.bindings import nvrtc; nvrtc.nvrtcVersion()" 2>/dev/null; then
    cuda_major="$("$PY" -c "import cupy; print(cupy.cuda.runtime.runtimeGetVersion() // 1000)")"
    if [[ "$cuda_major" == "12" ]]; then
        pip_install "cuda-bindings>=12.9,<13" "nvidia-cuda-nvrtc-cu12>=12.9,<13"
    else
        pip_install "cuda-bindings>=13,<14" "nvidia-cuda-nvrtc>=13,<14"
    fi
fi
# The package itself, from this checkout, without touching installed deps.
"$PY" -m pip install -q -e . --no-deps --no-build-isolation \
    || echo "warning: editable install failed; using the checkout on PYTHONPATH" >&2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# Kernels hash (docs/design.md section 7), the same bytes with or without git.
if command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1 \
        && [[ -n "$(git ls-files kernels)" ]]; then
    KHASH="$(cat $(git ls-files kernels | LC_ALL=C sort) | sha256sum | cut -d' ' -f1)"
else
    KHASH="$("$PY" - <<'PYEOF'
import hashlib, pathlib
h = hashlib.sha256()
files = sorted((p for p in pathlib.Path("kernels").rglob("*") if p.is_file()
                and "__pycache__" not in p.parts), key=lambda p: p.as_posix().encode())
for p in files:
    h.update(p.read_bytes())
print(h.hexdigest())
PYEOF
)"
fi
echo "kernels sha256: $KHASH"

set +e
"$PY" -m pytest -m gpu -q -p no:cacheprovider --junitxml="$OUTDIR/gpu-junit.xml" \
    ${PYTEST_ARGS:-} 2>&1 | tee "$OUTDIR/gpu-pytest.log"
TEST_RC=${PIPESTATUS[0]}
"$PY" benchmarks/bench_gpu.py --size "${BENCH_SIZE:-1024}" --repeat "${BENCH_REPEAT:-5}" \
    --json "$OUTDIR/bench_gpu.json" 2>&1 | tee "$OUTDIR/bench_gpu.log"
BENCH_RC=${PIPESTATUS[0]}
set -e

"$PY" - "$OUTDIR" "$KHASH" "$TEST_RC" "$BENCH_RC" <<'PYEOF'
import datetime, json, pathlib, re, shutil, subprocess, sys
import xml.etree.ElementTree as ET

outdir, khash, test_rc, bench_rc = pathlib.Path(sys.argv[1]), sys.argv[2], *map(int, sys.argv[3:])
try:
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    device = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
except Exception as exc:  # noqa: BLE001
    device = f"unknown ({exc!r})"
counts = {"tests": 0, "passed": 0, "failures": 0, "errors": 0, "skipped": 0}
junit = outdir / "gpu-junit.xml"
if junit.exists():
    root = ET.parse(junit).getroot()
    for suite in (root.iter("testsuite")):
        for key in ("tests", "failures", "errors", "skipped"):
            counts[key] += int(suite.get(key, 0))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
bench = None
bench_file = outdir / "bench_gpu.json"
if bench_file.exists():
    bench = json.loads(bench_file.read_text())
try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip() or None
except OSError:
    commit = None
today = datetime.date.today().isoformat()
result = {
    "date": today, "device": device, "commit": commit, "kernels_sha256": khash,
    "tests": counts, "pytest_exit_code": test_rc, "bench_exit_code": bench_rc,
    "benchmark": bench,
}
slug = re.sub(r"[^A-Za-z0-9]+", "-", device).strip("-").lower() or "device"
path = pathlib.Path("benchmarks/results") / f"{today}-{slug}.json"
path.write_text(json.dumps(result, indent=2) + "\n")
shutil.copy(path, outdir / path.name)
print(f"wrote {path}: {counts}")
PYEOF
exit "$TEST_RC"
