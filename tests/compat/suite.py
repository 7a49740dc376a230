"""Run ngff-zarr 0.50.0's own test files against ngff-zarr (control) and against ngff_gpu.

Nothing of ngff-zarr's is stored in this repository: :func:`fetch_tests` downloads its
source distribution from the package index at test time
(``pip download --no-binary :all: --no-deps ngff-zarr==0.50.0``) into a cache directory
(``$NGFF_GPU_COMPAT_CACHE``, default ``~/.cache/ngff_gpu/compat``) and unpacks its
``test/`` folder there once. :func:`run_both` runs those files twice in pytest
subprocesses (at the same time, one per core) with :mod:`tests.compat.plugin`: once with
ngff-zarr's names as they are, once with the names of ``plugin.served_names()`` taken from
ngff_gpu. :func:`compare` keeps the tests that pass in the control run *and* call a
served name, and sorts the ones that fail against ngff_gpu by cause
(:mod:`tests.compat.causes`).

Command line (prints the table; ``--keep DIR`` keeps the raw JSON of both runs)::

    .venv/bin/python -m tests.compat.suite
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.compat import plugin
from tests.compat.causes import CAUSES, Cause, classify

PACKAGE = "ngff-zarr"
VERSION = "0.50.0"
ROOT = Path(__file__).resolve().parents[2]

#: Test files left out of both runs, each with the reason. Every other file of
#: ngff-zarr's ``test/`` folder that names a served name runs.
SKIPPED_FILES = {
    # Not a test file: the download helper of the test-data archive.
    "_data.py": "helper module",
    "ome_zarr_to_nifti.py": "helper script",
}

#: Tests deselected from both runs because the control alone takes more than 10 s on
#: each (measured on the 2-core CI machine, 2026-12: 5 to 67 s each, 580 s together,
#: most of the whole control run); the harness must fit CI's budget. Every other
#: test that takes longer than ``TEST_TIMEOUT`` fails in that run.
SLOW_TESTS = (
    "test/test_slab_slices_fix.py",
    "test/test_large_image_chunking.py",
    "test/test_to_ngff_zarr_zarrista.py::test_zarrista_zero_chunk_validation",
    "test/test_to_ngff_zarr_zarrista.py::test_zarrista_regional_write_large_image",
    "test/test_to_ngff_zarr_zarrista.py::test_zarrista_chunk_shape_consistency",
    "test/test_to_ngff_zarr_zarrista.py::test_zarrista_chunk_shape_consistency_with_sharding",
    "test/test_degenerate_chunk_regression.py::test_large_path_multiscale_reads_back",
    "test/test_region_write_coverage.py::test_large_array_region_write_covers_whole_array",
    "test/test_to_multiscales.py::test_to_multiscales_metadata_synced_with_data",
    "test/test_ngff_image_scale_factors.py::test_scale_factors_with_chunk_shape",
)
#: Seconds one test may take in either run before it counts as failed.
TEST_TIMEOUT = 30.0


def cache_dir() -> Path:
    """Where the sdist and its unpacked tests are kept."""
    env = os.environ.get("NGFF_GPU_COMPAT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ngff_gpu" / "compat"


def fetch_tests(where: Path | None = None) -> Path:
    """The ``test/`` folder of ngff-zarr's sdist, downloaded and unpacked once.

    Raises
    ------
    RuntimeError
        When pip cannot download the sdist (no package index reachable).
    """
    where = where or cache_dir()
    target = where / f"ngff_zarr-{VERSION}"
    if (target / "test" / "__init__.py").is_file():
        return target / "test"
    where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
             "--quiet", f"{PACKAGE}=={VERSION}", "-d", tmp],
            capture_output=True, text=True, check=False)
        sdists = list(Path(tmp).glob(f"ngff_zarr-{VERSION}.tar.gz"))
        if proc.returncode != 0 or not sdists:
            raise RuntimeError(f"pip download {PACKAGE}=={VERSION} failed:\n{proc.stderr[-3000:]}")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(sdists[0]) as tar:
            members = [m for m in tar.getmembers()
                       if m.name.startswith(f"ngff_zarr-{VERSION}/test/")]
            tar.extractall(unpacked, members=members, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(unpacked / f"ngff_zarr-{VERSION}", target)
    return target / "test"


def test_files(test_dir: Path) -> list[str]:
    """The test files that name a served function or class (the others cannot call one)."""
    names = [n for n, kind in plugin.served_names().items() if kind != "value"]
    out = []
    for path in sorted(test_dir.glob("test_*.py")):
        if path.name in SKIPPED_FILES:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if any(n in text for n in names):
            out.append(path.name)
    return out


def _start(mode: str, test_dir: Path, files: list[str], work: Path,
           test_timeout: float) -> tuple[subprocess.Popen, Path, Path]:
    """Start one pytest subprocess over a private copy of the tests."""
    run_dir = work / mode
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(test_dir, run_dir / "test",
                    ignore=shutil.ignore_patterns("__pycache__", "data"))
    (run_dir / "pytest.ini").write_text("[pytest]\n")
    out = run_dir / "results.json"
    log = run_dir / "pytest.log"
    env = dict(os.environ)
    env.update({
        "NGFF_COMPAT_MODE": mode,
        "NGFF_COMPAT_OUT": str(out),
        "NGFF_COMPAT_TEST_TIMEOUT": str(test_timeout),
        "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        # One dask thread pool per run: the two runs share the machine's cores.
        "DASK_NUM_WORKERS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    deselect = [a for t in SLOW_TESTS for a in ("--deselect", t)]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
           "-p", "tests.compat.plugin", "--continue-on-collection-errors",
           "-c", str(run_dir / "pytest.ini"), "--rootdir", str(run_dir),
           "-W", "ignore::DeprecationWarning", *deselect,
           *[f"test/{f}" for f in files]]
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=logf,
                                stderr=subprocess.STDOUT)
    return proc, out, log


@dataclass
class RunResult:
    """The outcome of one pytest subprocess."""

    mode: str
    results: dict[str, dict]
    seconds: float
    returncode: int
    log: Path


def run_both(test_dir: Path, work: Path, files: list[str] | None = None,
             test_timeout: float = TEST_TIMEOUT, total_timeout: float = 2400.0
             ) -> tuple[RunResult, RunResult]:
    """Run the control and ours side by side; both results (node id -> record)."""
    files = files if files is not None else test_files(test_dir)
    t0 = time.monotonic()
    started = [(_mode, *_start(_mode, test_dir, files, work, test_timeout))
               for _mode in ("control", "ours")]
    runs = []
    for mode, proc, out, log in started:
        left = max(1.0, total_timeout - (time.monotonic() - t0))
        try:
            rc = proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        seconds = time.monotonic() - t0
        if not out.is_file():
            raise RuntimeError(f"the {mode} run wrote no results (exit {rc}); its log:\n"
                               + log.read_text()[-4000:])
        runs.append(RunResult(mode, json.loads(out.read_text()), seconds, rc, log))
    return runs[0], runs[1]


@dataclass
class Comparison:
    """The selected tests and how they fared against ngff_gpu."""

    collected: int
    control_passed: int
    selected: list[str]
    passed: list[str]
    failed: dict[str, Cause | None]
    messages: dict[str, str] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return len(self.passed) / max(1, len(self.selected))

    def per_cause(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for nodeid, cause in self.failed.items():
            out.setdefault(cause.key if cause else "UNEXPLAINED", []).append(nodeid)
        return out

    def table(self) -> str:
        lines = [f"ngff-zarr {VERSION} tests: {self.collected} run, {self.control_passed} pass "
                 f"with ngff-zarr (control); {len(self.selected)} of those call a served name",
                 f"against ngff_gpu: {len(self.passed)} of {len(self.selected)} pass "
                 f"({100 * self.share:.1f}%)"]
        by_key = {c.key: c for c in CAUSES}
        for key, ids in sorted(self.per_cause().items(), key=lambda kv: -len(kv[1])):
            row = by_key[key].row if key in by_key else "not explained by any documented row"
            lines.append(f"  {len(ids):4d} fail  {key}: {row}")
            if key == "UNEXPLAINED":
                lines += [f"         {i}: {self.messages.get(i, '')[:300]}" for i in ids]
        return "\n".join(lines)


def compare(control: RunResult, ours: RunResult) -> Comparison:
    """Select the control's passing tests that call a served name; classify our failures."""
    selected = sorted(i for i, r in control.results.items()
                      if r["outcome"] == "passed" and r["called"])
    passed, failed, messages = [], {}, {}
    for nodeid in selected:
        r = ours.results.get(nodeid, {"outcome": "missing", "message": "not run", "called": []})
        if r["outcome"] == "passed":
            passed.append(nodeid)
        else:
            failed[nodeid] = classify(nodeid, r.get("message", ""))
            messages[nodeid] = r.get("message", "")
    return Comparison(
        collected=len(control.results),
        control_passed=sum(r["outcome"] == "passed" for r in control.results.values()),
        selected=selected, passed=passed, failed=failed, messages=messages)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="run in this directory and keep it")
    ap.add_argument("files", nargs="*", help="test files (default: every file naming a served name)")
    args = ap.parse_args(argv)
    test_dir = fetch_tests()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        control, ours = run_both(test_dir, work, args.files or None)
        cmp = compare(control, ours)
        print(cmp.table())
        print(f"control {control.seconds:.0f} s, ours {ours.seconds:.0f} s (side by side)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
