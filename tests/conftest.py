"""Shared fixtures and the ``gpu`` marker's skip rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# No test depends on timing: hypothesis's per-example deadline and its "too slow" health
# check both measure wall time, which a loaded machine stretches, so neither is used.
settings.register_profile("ngff_gpu", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ngff_gpu")


def pytest_configure(config):
    """dask.distributed's connect and heartbeat timeouts (30 s) are clocks too: on a loaded
    machine a worker process can take longer than that to start; give them room."""
    import dask

    dask.config.set({"distributed.comm.timeouts.connect": "300s",
                     "distributed.comm.timeouts.tcp": "300s",
                     "distributed.deploy.lost-worker-timeout": "300s"})


#: Test files that take the longest (2-core CI machine, ``--durations``, 2026-12): collected
#: first, so that pytest-xdist (``--dist loadfile``, which hands out files in collection
#: order) starts them at once instead of leaving one of them to run alone at the end.
LONGEST_FIRST = ("test_ngff_zarr_compat.py", "test_resume_kill.py", "test_reliability.py",
                 "test_remote_faults.py")


def pytest_collection_modifyitems(config, items):
    """Put :data:`LONGEST_FIRST` first (order only; every test still runs), and skip tests
    marked ``gpu`` unless CuPy imports and sees a CUDA device."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable
    from ngff_gpu.compute.backends import cuda_available

    if cuda_available():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)



_RELIABILITY: dict[str, list[tuple[str, str]]] = {}
#: Tables of the ngff-zarr compatibility run, taken from its report's user properties
#: (they reach the controlling process also when the test ran in a pytest-xdist worker).
_COMPAT_TABLES: list[str] = []


def pytest_runtest_logreport(report):
    """Record the outcome of every ``reliability`` case (tests/test_reliability.py) and
    the table of the ngff-zarr compatibility run (tests/test_ngff_zarr_compat.py)."""
    if report.when == "call":
        _COMPAT_TABLES.extend(v for k, v in report.user_properties if k == "ngff_zarr_compat_table")
    marker = report.keywords.get("reliability")
    if marker is None or not (report.when == "call" or report.outcome != "passed"):
        return
    case = getattr(report, "reliability_case", None) or report.nodeid
    _RELIABILITY.setdefault(case, []).append((report.nodeid, report.outcome))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Carry the case name of a ``reliability`` marker onto its report."""
    outcome = yield
    marker = item.get_closest_marker("reliability")
    if marker is not None and marker.args:
        outcome.get_result().reliability_case = marker.args[0]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print which reliability cases held (every run of the case passed), and the
    table of the ngff-zarr compatibility run."""
    print_compat_table(terminalreporter)
    if not _RELIABILITY:
        return
    tr = terminalreporter
    tr.section("reliability cases")
    held = 0
    for case, runs in _RELIABILITY.items():
        outcomes = {o for _, o in runs}
        state = ("held" if outcomes == {"passed"} else
                 "skipped" if outcomes == {"skipped"} else "FAILED")
        held += state == "held"
        tr.write_line(f"{state:8} {case} ({len(runs)} run{'s' if len(runs) > 1 else ''})")
    tr.write_line(f"{held} of {len(_RELIABILITY)} reliability cases held")


def print_compat_table(terminalreporter):
    """Print the table of the ngff-zarr compatibility run (tests/test_ngff_zarr_compat.py)."""
    for table in _COMPAT_TABLES:
        terminalreporter.section("ngff-zarr 0.50.0 test suite against ngff_gpu")
        for line in table.splitlines():
            terminalreporter.write_line(line)
