"""pytest plugin that runs ngff-zarr's own test files against ngff-zarr or ngff_gpu.

Loaded into a pytest subprocess with ``-p tests.compat.plugin`` (the repository root on
``PYTHONPATH``) by :mod:`tests.compat.suite`; never collected by our own suite.

Environment:

``NGFF_COMPAT_MODE``
    ``control``: ngff-zarr's public names stay ngff-zarr's (each wrapped only to record
    that a test called it). ``ours``: the names in :data:`SERVED` are replaced, in the
    ``ngff_zarr`` module namespace, by ngff_gpu's (also recorded); everything else
    stays ngff-zarr's. This is what a user does by changing ``import ngff_zarr`` to
    ``import ngff_gpu``.
``NGFF_COMPAT_OUT``
    JSON file written at the end: per test node id its outcome, the served names it
    called, and the first line of its failure.
``NGFF_COMPAT_TEST_TIMEOUT``
    Seconds one test may run (default 120); a test past it fails with
    :class:`CompatTimeout`.

A test "calls" a served name when, during its setup or call, code outside the
``ngff_zarr`` and ``ngff_gpu`` packages (the test, its helpers, its fixtures) called one
of the served functions or constructed one of the served classes.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
from typing import Any

import pytest

#: ngff-zarr 0.50's public names that ngff_gpu serves (deliverable 1 of issue 19): the
#: names that make, write, read and upgrade pyramids, and the model dataclasses.
SERVED_FUNCTIONS = (
    "to_ngff_image",
    "to_multiscales",
    "to_ngff_zarr",
    "to_ome_zarr",
    "from_ngff_zarr",
    "from_ome_zarr",
    "compute_omero_from_multiscales",
    "upgrade_ome_zarr",
)
SERVED_CLASSES = ("NgffImage", "Multiscales", "NgffMultiscales", "NgffScene")
#: Served too, but not counted as a call (an enum and a constant).
SERVED_VALUES = ("Methods", "SUPPORTED_VERSIONS")
SERVED = SERVED_FUNCTIONS + SERVED_CLASSES + SERVED_VALUES

_INTERNAL = ("ngff_zarr", "ngff_gpu")
_current: set[str] | None = None
_results: dict[str, dict[str, Any]] = {}


class CompatTimeout(Exception):
    """A test ran past ``NGFF_COMPAT_TEST_TIMEOUT``."""


def _external_caller(depth: int = 2) -> bool:
    module = sys._getframe(depth).f_globals.get("__name__", "")
    return module.split(".")[0] not in _INTERNAL


def _record(name: str) -> None:
    if _current is not None:
        _current.add(name)


def _wrap_function(name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def called(*args: Any, **kwargs: Any) -> Any:
        _record(name)
        return fn(*args, **kwargs)

    return called


def _watch_class(name: str, cls: type) -> None:
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if _external_caller():
            _record(name)
        init(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[method-assign]


def _serve(mode: str) -> None:
    import ngff_zarr

    source: Any = ngff_zarr
    if mode == "ours":
        import ngff_gpu

        source = ngff_gpu
    elif mode != "control":
        raise pytest.UsageError(f"NGFF_COMPAT_MODE must be 'control' or 'ours', got {mode!r}")
    missing = [n for n in SERVED if not hasattr(source, n)]
    for name in SERVED:
        if name in missing:
            continue  # ours lacks it: the tests that need it fail (and say so)
        value = getattr(source, name)
        if name in SERVED_FUNCTIONS:
            value = _wrap_function(name, value)
        setattr(ngff_zarr, name, value)
    watched: set[int] = set()
    for name in SERVED_CLASSES:
        if name in missing:
            continue
        cls = getattr(source, name)
        if id(cls) not in watched:  # Multiscales is NgffMultiscales
            watched.add(id(cls))
            _watch_class(name, cls)
    # Tests of ours that lack a served name fail on it: make that visible.
    for name in missing:
        if hasattr(ngff_zarr, name):
            delattr(ngff_zarr, name)


def pytest_configure(config: pytest.Config) -> None:
    _serve(os.environ.get("NGFF_COMPAT_MODE", "control"))


def _on_alarm(signum: int, frame: Any) -> None:
    raise CompatTimeout(f"test ran past {os.environ.get('NGFF_COMPAT_TEST_TIMEOUT', '120')} s")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Any:
    global _current
    _current = set()
    _results[item.nodeid] = {"outcome": "passed", "called": [], "message": ""}
    t0 = time.monotonic()
    try:
        yield
    finally:
        _results[item.nodeid]["called"] = sorted(_current)
        _results[item.nodeid]["seconds"] = round(time.monotonic() - t0, 3)
        _current = None


def _armed() -> Any:
    """Run one phase (setup, call, teardown) of a test under the timeout; the alarm is
    off again before pytest builds the phase's report."""
    timeout = float(os.environ.get("NGFF_COMPAT_TEST_TIMEOUT", "120"))
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    yield from _armed()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    yield from _armed()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: Any) -> Any:
    yield from _armed()


def _message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)[:2000]
    return str(report.longrepr)[-2000:]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _results.setdefault(report.nodeid, {"outcome": "passed", "called": [],
                                                "message": ""})
    if report.failed and entry["outcome"] != "failed":
        entry["outcome"] = "failed"
        entry["message"] = _message(report)
        entry["when"] = report.when
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _results[report.nodeid] = {"outcome": "collect-error", "called": [],
                                   "message": str(report.longrepr)[-2000:]}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    out = os.environ.get("NGFF_COMPAT_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(_results, f, indent=0, sort_keys=True)
