"""pytest plugin that runs ngff-zarr's own test files against ngff-zarr or ngff_gpu.

Loaded into a pytest subprocess with ``-p tests.compat.plugin`` (the repository root on
``PYTHONPATH``) by :mod:`tests.compat.suite`; never collected by our own suite.

Environment:

``NGFF_COMPAT_MODE``
    ``control``: ngff-zarr's public names stay ngff-zarr's (each wrapped only to record
    that a test called it). ``ours``: the names of :func:`served_names` (every name both
    packages export at their top level) are replaced, in the ``ngff_zarr`` module
    namespace, by ngff_gpu's (also recorded); everything else stays ngff-zarr's. This is
    what a user does by changing ``import ngff_zarr`` to ``import ngff_gpu``.
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

import enum
import functools
import importlib
import json
import os
import signal
import sys
import time
from typing import Any

import pytest

#: The pyramid names of issue 19's first measurement; every one must be served (a check
#: that the shared-name computation below has not lost one of them).
CORE_NAMES = ("to_ngff_image", "to_multiscales", "to_ngff_zarr", "from_ngff_zarr",
              "NgffImage", "Multiscales", "Methods")


#: ngff-zarr submodules that ngff_gpu mirrors at the same path (``ngff_gpu.rfc4``,
#: ``ngff_gpu.hcs``): the names of the mirror's ``__all__`` are served in ngff-zarr's
#: submodule too, so that a test's ``from ngff_zarr.hcs import X`` gets ours, as the
#: user's renamed import does.
MIRRORED_MODULES = ("rfc4", "hcs")


def _kind(value: Any) -> str:
    """``class`` (constructions are recorded), ``function`` (calls are recorded) or
    ``value`` (an enum or a constant: served, not recorded)."""
    if isinstance(value, type):
        return "value" if issubclass(value, enum.Enum) else "class"
    return "function" if callable(value) else "value"


@functools.cache
def served_names() -> dict[str, str]:
    """Every public name that both ngff-zarr and ngff_gpu export at their top level
    (``ngff_gpu.__all__`` and ngff-zarr's module attributes), with the kind of ours
    (each run records by the kind of the value it serves).

    These are the names a user who changes ``import ngff_zarr`` to ``import ngff_gpu``
    gets from us and that ngff-zarr's tests can reach through ``ngff_zarr.X``: the
    pyramid functions, the model dataclasses, the HCS names, the RFC-4 orientation
    names, the enums. Names imported from ngff-zarr's submodules
    (``ngff_zarr.v06.zarr_metadata``...) stay ngff-zarr's.
    """
    import ngff_zarr

    import ngff_gpu

    shared = sorted(n for n in ngff_gpu.__all__ if hasattr(ngff_zarr, n))
    missing = [n for n in CORE_NAMES if n not in shared]
    if missing:
        raise RuntimeError(f"ngff_gpu or ngff-zarr no longer exports {missing}")
    return {n: _kind(getattr(ngff_gpu, n)) for n in shared}


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
    watched: set[int] = set()
    for name in served_names():
        value = getattr(source, name)
        kind = _kind(value)
        if kind == "function":
            value = _wrap_function(name, value)
        elif kind == "class" and id(value) not in watched:  # Multiscales is NgffMultiscales
            watched.add(id(value))
            _watch_class(name, value)
        setattr(ngff_zarr, name, value)
    if mode == "ours":
        for module in MIRRORED_MODULES:
            theirs = importlib.import_module(f"ngff_zarr.{module}")
            mirror = importlib.import_module(f"ngff_gpu.{module}")
            for name in mirror.__all__:
                # Not wrapped: what a test calls is recorded in the control run alone,
                # which selects the tests (and leaves ngff-zarr's submodules as they are).
                setattr(theirs, name, getattr(mirror, name))


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
