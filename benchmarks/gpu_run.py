"""The GPU run's steps in time boxes, one result file written as it goes (issue 22).

Started by ``ci/gpu_run.sh`` (which installs the carried wheels first); see that
script for the device call. Steps, in this order (the most needed first, so a lease cut
short still returns them), each a child process killed at the end of its box:

``env``           the machine, the versions, the commit and the kernels' SHA-256
``warm_kernels``  every kernel instantiation compiled for this device (NVRTC, in
                  parallel) into the kernel cache the later steps share
``tests``         ``pytest -m gpu`` on ``tests/test_gpu_*.py`` and, at the same time, the
                  CPU suite's host-kernel sweep (``tests/test_hostkernels_*.py``,
                  ``tests/test_nvrtc.py``, the host half of ``tests/test_gpu_parity.py``)
``kernels``       ``benchmarks/bench_gpu.py``: per-kernel GB/s vs a copy, cuCIM per level
``nvcomp``        ``benchmarks/probe_nvcomp.py``: nvCOMP zstd/LZ4 vs CPU zstd-3
``torch``         ``benchmarks/bench_gpu_torch.py``: torch CUDA in and out, nothing to host
``e2e``           ``benchmarks/bench_gpu_e2e.py``: 4 GiB Zarr -> OME-Zarr, ours (CUDA and
                  CPU), ngff-zarr, a plain copy, stage times

Files under ``--out`` (the device tool returns at most 8, 16 MiB each):
``<date>-<device>.json`` (this run's result; commit it as
``benchmarks/results/<date>-<device>.json``), ``junit-gpu.xml``, ``junit-cpu.xml``,
``pytest-gpu.log``, ``pytest-cpu.log`` (``ci/gpu_run.sh`` adds ``gpu_run.log``).

Usage: ``python benchmarks/gpu_run.py --out DIR [--budget 480] [--steps a,b]
[--rehearsal]``
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _gpu import (  # noqa: E402
    LIVE,
    REPO,
    Deadline,
    child_env,
    kill_group,
    kill_live_on_sigterm,
    read_json,
    run_boxed,
    slug,
    write_json,
)

SCHEMA = "ngff_gpu/gpu_run/1"
STEPS = ("env", "warm_kernels", "tests", "kernels", "nvcomp", "torch", "e2e")
#: Seconds each step may take at most (the run's budget may give less).
BOXES = {"env": 60, "warm_kernels": 120, "tests": 240, "kernels": 90, "nvcomp": 120,
         "torch": 60, "e2e": 360}
#: A rehearsal's boxes are this many times longer: its times measure nothing, and on a
#: loaded 2-core machine a cold cache (numba compiling the CPU kernels that check the
#: results, g++ building the host stand-in) takes minutes; the budget still caps the run.
REHEARSAL_BOX_SCALE = 4
GPU_TESTS = "tests/test_gpu_*.py"
CPU_TESTS = ("tests/test_hostkernels_*.py", "tests/test_nvrtc.py", "tests/test_gpu_parity.py")
#: What the device tool returns (/work/.library/device/README.md, Limits).
OUT_LIMITS = {"files": 8, "file_bytes": 16 << 20}


# ----------------------------------------------------------------------------- env, warm-up


def kernels_sha256(root: Path = REPO) -> str:
    """docs/design.md section 7: SHA-256 of the kernel sources concatenated in byte order
    of their paths (``cat $(git ls-files kernels | LC_ALL=C sort) | sha256sum``), from the
    files (the device's copy has no ``.git``; ``__pycache__`` is never tracked)."""
    files = sorted((p for p in (root / "kernels").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts),
                   key=lambda p: p.relative_to(root).as_posix().encode())
    h = hashlib.sha256()
    for p in files:
        h.update(p.read_bytes())
    return h.hexdigest()


def _version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def env_step(rehearsal: bool) -> dict[str, Any]:
    """Machine, versions and provenance (runs in a child: it may import CuPy)."""
    out: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform(),
                           "cpu_count": os.cpu_count(), "rehearsal": rehearsal}
    try:
        from _common import machine_info

        out["machine"] = machine_info()
    except Exception as exc:  # noqa: BLE001
        out["machine"] = {"error": repr(exc)}
    out["versions"] = {n: _version(n) for n in (
        "numpy", "cupy-cuda13x", "cupy-cuda12x", "torch", "zarr", "zarrs", "numcodecs", "dask",
        "ngff-zarr", "ome-zarr-models", "cucim-cu13", "nvidia-nvcomp-cu13", "cuda-bindings",
        "nvidia-cuda-nvrtc", "hypothesis", "pytest")}
    manifest = read_json(REPO / ".whl" / "manifest.json") or {}
    git_head = _cmd(["git", "-C", str(REPO), "rev-parse", "HEAD"])  # none on the device
    git_head = git_head if len(git_head) == 40 else None
    out["commit"] = os.environ.get("GPU_COMMIT") or git_head or manifest.get("commit")
    out["commit_from"] = ("GPU_COMMIT" if os.environ.get("GPU_COMMIT") else
                          "git" if git_head else ".whl/manifest.json" if manifest else None)
    out["manifest_commit"] = manifest.get("commit")
    out["commit_dirty"] = manifest.get("dirty")
    out["kernels_sha256"] = kernels_sha256()
    out["kernels_sha256_at_commit"] = manifest.get("kernels_sha256")
    out["kernels_match_commit"] = (out["kernels_sha256"] == manifest.get("kernels_sha256")
                                   if manifest else None)
    out["wheels"] = [w.get("wheel") for w in manifest.get("wheels", [])]
    try:
        from ngff_gpu.compute import cuda_loader

        out["nvrtc"] = list(cuda_loader.nvrtc_version())
    except Exception as exc:  # noqa: BLE001
        out["nvrtc"] = f"unavailable: {type(exc).__name__}: {exc}"
    work = Path(os.environ.get("GPU_WORK", REPO / "benchmarks" / "out" / "gpu_run_work"))
    try:
        work.mkdir(parents=True, exist_ok=True)
        usage = shutil.disk_usage(work)
        out["work_dir"] = {"path": str(work), "free_gib": usage.free / 2**30,
                           "df": _cmd(["df", "-hT", str(work)])}
    except OSError as exc:
        out["work_dir"] = {"error": repr(exc)}
    out["gxx"] = shutil.which(os.environ.get("CXX", "g++"))
    if rehearsal:
        out["device"] = "rehearsal (CPU)"
        return out
    out["nvidia_smi"] = _cmd(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,"
                              "clocks.sm,clocks.mem,clocks.max.sm,temperature.gpu,power.draw,"
                              "persistence_mode,compute_mode", "--format=csv"])
    try:
        import cupy

        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"]
        out["device"] = name.decode() if isinstance(name, bytes) else str(name)
        out["cuda"] = {"compute_capability": dev.compute_capability,
                       "multiprocessors": props.get("multiProcessorCount"),
                       "memory_bytes": props.get("totalGlobalMem"),
                       "l2_bytes": props.get("l2CacheSize"),
                       "runtime": cupy.cuda.runtime.runtimeGetVersion(),
                       "driver": cupy.cuda.runtime.driverGetVersion()}
    except Exception as exc:  # noqa: BLE001
        out["device"] = f"unknown ({type(exc).__name__}: {exc})"
    return out


def _cmd(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{cmd[0]}: {exc}"


def _compile_one(job: tuple[str, str, str]) -> tuple[str, float, str | None]:
    from ngff_gpu.compute import cuda_loader

    filename, expression, arch = job
    t0 = time.perf_counter()
    try:
        cuda_loader.compile_program(filename, (expression,), arch)
        return expression, time.perf_counter() - t0, None
    except Exception as exc:  # noqa: BLE001
        return expression, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"


def warm_kernels_step(rehearsal: bool) -> dict[str, Any]:
    """Compile every instantiation the backend can request, as ``get_kernel`` would
    (one program per instantiation, the device's target), in parallel processes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ngff_gpu.compute import cuda_loader
    from ngff_gpu.compute.backends.cupy_backend import kernel_instances

    if rehearsal:
        capability = 90
    else:
        import cupy

        capability = int(cupy.cuda.Device().compute_capability)
    arch = cuda_loader.target_arch(capability, cuda_loader.supported_archs())
    jobs = [(cuda_loader.KERNEL_FILES[name], cuda_loader.name_expression(name, args), arch)
            for name, args in kernel_instances()]
    t0 = time.perf_counter()
    # spawn, not fork: the parent may hold a CUDA context (NVRTC alone runs in the children)
    with ProcessPoolExecutor(max(1, min(16, os.cpu_count() or 1)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        done = list(pool.map(_compile_one, jobs))
    errors = [f"{e}: {err}" for e, _, err in done if err]
    return {"arch": arch, "instances": len(jobs), "seconds": time.perf_counter() - t0,
            "slowest_s": max((s for _, s, _ in done), default=0.0), "errors": errors,
            "cache": str(cuda_loader.cache_dir())}


# ----------------------------------------------------------------------------- tests


def junit_summary(path: Path) -> dict[str, Any]:
    """Counts and the failing tests (id and first line of the message) of a junit file."""
    if not path.exists():
        return {"missing": True}
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed: list[str] = []
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    for case in root.iter("testcase"):
        for tag in ("failure", "error"):
            el = case.find(tag)
            if el is not None:
                msg = (el.get("message") or "").strip().splitlines()
                failed.append(f"{case.get('classname')}::{case.get('name')} [{tag}] "
                              f"{msg[0][:300] if msg else ''}")
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts | {"failed": failed[:50]}


class Background:
    """A child process running beside the steps (own process group, output to a file),
    joined later within a time box counted from its start."""

    def __init__(self, cmd: list[str], log: Path, box: float) -> None:
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 - closed in join()
        self.t0 = time.monotonic()
        self.box = box
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        LIVE.add(self.proc)

    def join(self) -> dict[str, Any]:
        left = max(1.0, self.box - (time.monotonic() - self.t0))
        try:
            rc = self.proc.wait(timeout=left)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(self.proc)
            rc = self.proc.wait()
        LIVE.discard(self.proc)
        self._log.close()
        return {"exit_code": rc, "timed_out": timed_out,
                "seconds": round(time.monotonic() - self.t0, 1)}


def pytest_cmd(kind: str, out: Path) -> tuple[list[str], list[str]]:
    """The pytest command of the GPU tests (``gpu``) or the host-kernel sweep (``cpu``)."""
    if kind == "gpu":
        files = sorted(str(p.relative_to(REPO)) for p in REPO.glob(GPU_TESTS))
        marker = "gpu"
    else:
        files = sorted({str(p.relative_to(REPO)) for pat in CPU_TESTS for p in REPO.glob(pat)})
        marker = "not gpu"
    return ([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", "-m",
             marker, f"--junitxml={out / f'junit-{kind}.xml'}"] + files), files


def pytest_result(kind: str, out: Path, run: dict[str, Any], files: list[str]) -> dict[str, Any]:
    tail = (out / f"pytest-{kind}.log").read_text(errors="replace").splitlines()[-25:]
    print(f"--- pytest {kind} (exit {run['exit_code']}{', timed out' if run['timed_out'] else ''})"
          f": last lines", *tail, sep="\n", flush=True)
    return run | {"files": files} | junit_summary(out / f"junit-{kind}.xml")


# ----------------------------------------------------------------------------- targets


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of issue 22 / docs/design.md section 6 this run measured."""
    steps = result["steps"]
    rows: list[dict[str, Any]] = []

    def add(what: str, value: Any, bound: str, ok: bool | None, timing: bool = False) -> None:
        if timing and result["rehearsal"]:
            ok = None  # a rehearsal's times measure nothing
        rows.append({"target": what, "value": value, "bound": bound, "pass": ok})

    tests = steps.get("tests", {}).get("result") or {}
    for name in ("gpu", "cpu"):
        t = tests.get(name)
        if t and "tests" in t:
            bad = t["failures"] + t["errors"]
            ran = t["passed"] > 0 or result["rehearsal"]  # a rehearsal skips the GPU tests
            add(f"tests {name}: passed/failed/skipped",
                f"{t['passed']}/{bad}/{t['skipped']}", "0 failed, some passed",
                bad == 0 and ran and not t["timed_out"] and t["exit_code"] == 0)
    k = steps.get("kernels", {}).get("result") or {}
    for row in k.get("kernels", []):
        if row.get("fraction_of_copy") is not None:
            add(f"kernel {row['method']} {row['dtype']} of copy", round(row["fraction_of_copy"], 3),
                ">= 0.70", row["fraction_of_copy"] >= 0.7, timing=True)
    for row in (k.get("cucim") or {}).get("levels", []):
        if row.get("speedup") is not None:
            add(f"vs cuCIM {row['method']} {row['dtype']} level {row['level']}",
                round(row["speedup"], 2), ">= 2", row["speedup"] >= 2, timing=True)
    e = (steps.get("e2e", {}).get("result") or {})
    s = e.get("summary", {})
    if "cuda_speedup_over_ngff_zarr" in s:
        add("e2e CUDA vs ngff-zarr default", round(s["cuda_speedup_over_ngff_zarr"], 1), ">= 30",
            s["cuda_speedup_over_ngff_zarr"] >= 30, timing=True)
    elif "cuda_speedup_over_ngff_zarr_at_least" in s:
        v = s["cuda_speedup_over_ngff_zarr_at_least"]
        add("e2e CUDA vs ngff-zarr default (lower bound)", round(v, 1), ">= 30",
            True if v >= 30 else None, timing=True)
    if "cuda_x_plain_copy" in s:
        add("e2e CUDA time / plain copy of level 0", round(s["cuda_x_plain_copy"], 2),
            "(reference)", None)
    if "cuda_equals_cpu" in e:
        add("e2e CUDA store == CPU store (every level)", e["cuda_equals_cpu"], "True",
            e["cuda_equals_cpu"])
    for case, r in (e.get("cases") or {}).items():
        chk = r.get("check") or {}
        if chk:
            ok = chk.get("level0_equals_input") and chk.get("valid", True)
            add(f"e2e {case} store valid, level 0 == input", bool(ok), "True", bool(ok))
    n = steps.get("nvcomp", {}).get("result") or {}
    for algo, r in (n.get("gpu") or {}).items():
        dec = r.get("cpu_decode") or {}
        if dec:
            add(f"nvCOMP {algo} chunks numcodecs decodes equal", f"{dec['equal']}/{dec['chunks']}",
                "all", dec["equal"] == dec["chunks"])
    if "summary" in n:
        add("nvCOMP zstd GB/s / CPU zstd-3 GB/s (16 cores)",
            round(n["summary"]["gpu_zstd_over_cpu_zstd3"], 2), "(decision)", None)
    tt = steps.get("torch", {}).get("result") or {}
    for row in tt.get("cases", []):
        if "nothing_crossed_to_host" in row:
            add(f"torch {row['dtype']} {row['method']}: nothing crossed to host, equal",
                f"{row['nothing_crossed_to_host']}, {row.get('equal_to_numpy_path')}", "True, True",
                bool(row["nothing_crossed_to_host"]) and bool(row.get("equal_to_numpy_path")))
    return rows


# ----------------------------------------------------------------------------- run


def check_out(out: Path) -> dict[str, Any]:
    """Whether ``out`` fits what the device tool returns."""
    files = [p for p in out.rglob("*") if p.is_file()]
    big = [f"{p.name} ({p.stat().st_size} bytes)" for p in files
           if p.stat().st_size > OUT_LIMITS["file_bytes"]]
    deep = [str(p.relative_to(out)) for p in files if len(p.relative_to(out).parts) > 3]
    return {"files": sorted(str(p.relative_to(out)) for p in files), "too_big": big,
            "too_deep": deep, "ok": len(files) <= OUT_LIMITS["files"] and not big and not deep}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--work", type=Path,
                   default=Path(os.environ.get("GPU_WORK",
                                               REPO / "benchmarks" / "out" / "gpu_run_work")))
    p.add_argument("--budget", type=float, default=480.0, help="seconds for every step")
    p.add_argument("--steps", default=",".join(STEPS))
    p.add_argument("--e2e-cases", default=None, help="cases of bench_gpu_e2e.py (default all)")
    p.add_argument("--rehearsal", action="store_true")
    p.add_argument("--step", help=argparse.SUPPRESS)  # a child: one in-process step
    p.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.step:
        fn = {"env": env_step, "warm_kernels": warm_kernels_step}[args.step]
        write_json(args.json, fn(args.rehearsal))
        return 0

    kill_live_on_sigterm()
    deadline = Deadline(args.budget)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["GPU_WORK"] = str(args.work)
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    result: dict[str, Any] = {
        "schema": SCHEMA, "date": today, "rehearsal": args.rehearsal, "device": None,
        "commit": None, "kernels_sha256": kernels_sha256(), "budget_s": args.budget,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "finished": None, "command": " ".join([Path(sys.executable).name] + sys.argv),
        "steps": {}, "targets": [],
    }
    name = f"{today}-rehearsal.json" if args.rehearsal else f"{today}-device.json"
    path = args.out / name

    def save() -> None:
        result["targets"] = targets(result)
        write_json(path, result)

    save()
    wanted = [s for s in args.steps.split(",") if s]
    flag = ["--rehearsal"] if args.rehearsal else []
    background: dict[str, tuple[Background, list[str]]] = {}

    def join_cpu_tests() -> None:
        """Wait for the host-kernel sweep (started with the GPU tests) and record it."""
        if "cpu" not in background:
            return
        job, files = background.pop("cpu")
        entry = result["steps"]["tests"]
        entry["result"]["cpu"] = pytest_result("cpu", args.out, job.join(), files)
        r = entry["result"]
        entry["status"] = ("timeout" if any(r[k]["timed_out"] for k in r if k in ("gpu", "cpu"))
                           else "ok" if all(r[k]["exit_code"] == 0 for k in ("gpu", "cpu"))
                           else "failed")
        entry["seconds"] = max(r["gpu"]["seconds"], r["cpu"]["seconds"])
        print(f"=== tests (gpu and cpu): {entry['status']}", flush=True)
        save()

    for step in STEPS:
        if step not in wanted:
            continue
        if step in ("nvcomp", "torch", "e2e"):
            join_cpu_tests()  # the CPU-timed steps run on an otherwise idle machine
        scale = REHEARSAL_BOX_SCALE if args.rehearsal else 1
        box = deadline.box(BOXES[step] * scale, reserve=5)
        if box < 5:
            result["steps"][step] = {"status": "skipped", "reason": "no time left in the budget"}
            save()
            continue
        print(f"\n=== {step} (box {box:.0f} s, {deadline.left():.0f} s left of the budget)",
              flush=True)
        res_json = args.work / f"{step}.json"
        res_json.unlink(missing_ok=True)
        entry: dict[str, Any] = {}
        if step == "tests":
            # The host-kernel sweep (CPU) and the e2e input (CPU) run beside the GPU tests
            # and the kernel benchmark (timed with device events); joined before nvcomp.
            cmd, files = pytest_cmd("cpu", args.out)
            background["cpu"] = (Background(cmd, args.out / "pytest-cpu.log", box), files)
            if "e2e" in wanted and not args.rehearsal:
                prep = [sys.executable, str(REPO / "benchmarks" / "bench_gpu_e2e.py"),
                        "--prepare-only", "--work", str(args.work / "e2e")]
                background["e2e_input"] = (Background(prep, args.work / "e2e_input.log",
                                                      BOXES["e2e"]), [])
            cmd, files = pytest_cmd("gpu", args.out)
            job = Background(cmd, args.out / "pytest-gpu.log", box)
            entry["result"] = {"gpu": pytest_result("gpu", args.out, job.join(), files)}
            entry["status"] = "running"  # until the CPU half is joined
            entry["seconds"] = entry["result"]["gpu"]["seconds"]
        else:
            script = {"env": None, "warm_kernels": None, "kernels": "bench_gpu.py",
                      "nvcomp": "probe_nvcomp.py", "torch": "bench_gpu_torch.py",
                      "e2e": "bench_gpu_e2e.py"}[step]
            if script is None:
                cmd = [sys.executable, __file__, "--out", str(args.out), "--step", step,
                       "--json", str(res_json)] + flag
            else:
                cmd = [sys.executable, str(REPO / "benchmarks" / script), "--json",
                       str(res_json)] + flag
            if step == "e2e":
                if "e2e_input" in background:
                    entry["input_prepared_beside_tests"] = background.pop("e2e_input")[0].join()
                box = deadline.box(BOXES[step] * scale, reserve=5)
                cmd += ["--budget", str(max(10.0, box - 15)), "--work", str(args.work / "e2e")]
                if args.e2e_cases:
                    cmd += ["--cases", args.e2e_cases]
            run = run_boxed(cmd, box, env=child_env())
            entry.update(run)
            entry["result"] = read_json(res_json)
            entry["status"] = ("timeout" if run["timed_out"] else
                               "ok" if run["exit_code"] == 0 else "failed")
            if step == "env" and entry["result"]:
                env = entry["result"]
                result["device"] = env.get("device")
                result["commit"] = env.get("commit")
                result["kernels_match_commit"] = env.get("kernels_match_commit")
                if not args.rehearsal and env.get("device"):
                    new = args.out / f"{today}-{slug(str(env['device']))}.json"
                    path.unlink(missing_ok=True)
                    path = new
        result["steps"][step] = entry
        print(f"=== {step}: {entry['status']} in {entry.get('seconds', 0):.0f} s", flush=True)
        save()
    join_cpu_tests()
    for job, _ in background.values():
        job.join()
    result["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    result["out_dir"] = check_out(args.out)
    save()
    print_summary(result, path)
    failed = [s for s, e in result["steps"].items() if e.get("status") != "ok"]
    return 1 if failed else 0


def print_summary(result: dict[str, Any], path: Path) -> None:
    """The short table the device tool's output tail carries back."""
    print("\n=== summary", result["device"], "commit", result["commit"], "kernels",
          result["kernels_sha256"][:16], flush=True)
    for step, e in result["steps"].items():
        print(f"{step:13} {e.get('status', '?'):8} {e.get('seconds', 0):7.1f} s")
    for t in result["targets"]:
        mark = {True: "PASS", False: "FAIL", None: "----"}[t["pass"]]
        print(f"{mark} {t['target']:58} {t['value']!s:>14}  ({t['bound']})")
    print(f"result: {path}  out files ok: {result['out_dir']['ok']} {result['out_dir']['files']}")
    print(json.dumps({"steps": {s: e.get("status") for s, e in result["steps"].items()}}))


if __name__ == "__main__":
    raise SystemExit(main())
