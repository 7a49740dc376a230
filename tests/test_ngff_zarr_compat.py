"""ngff-zarr 0.50.0's own test suite, run against ngff_gpu (issue 19, deliverable 6).

The test files are downloaded from the package index at test time and never stored
here (:mod:`tests.compat.suite`); they run once against ngff-zarr (the control) and once
with every name both packages export served by ngff_gpu (:mod:`tests.compat.plugin`). The
tests that pass offline in the control and call a served name are the selection; this
test fails when fewer than :data:`THRESHOLD` of them pass against ngff_gpu, or when one
fails for a reason that is not a documented row of the README's "Differences from
ngff-zarr" table (:mod:`tests.compat.causes`). The table of counts per cause is printed
at the end of the pytest run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.compat import causes, suite

#: The share of the selection that must pass. Measured (2026-12-04, 2 cores, the harness
#: alone, `.venv/bin/python -m tests.compat.suite`): 799 of 853 (93.7%); rounded down to
#: 0.91, never above what holds, so that a test of ours timing out on a loaded machine (30 s,
#: tests.compat.suite.TEST_TIMEOUT) does not fail CI while a real regression of more than
#: about twenty tests does. Issue 19's goal is 0.95; the README table says why the rest fail.
THRESHOLD = 0.91
#: The selection must not shrink below this (the control run is the denominator: a
#: broken download or environment that makes ngff-zarr's own tests fail must not pass
#: here by selecting little). Measured: 853.
MIN_SELECTED = 820

#: The user property holding the table of counts per cause.
COMPAT_TABLE = "ngff_zarr_compat_table"

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_rows() -> set[str]:
    text = README.read_text()
    start = text.find("## Differences from ngff-zarr")
    assert start >= 0, "README.md has no 'Differences from ngff-zarr' section"
    section = text[start:]
    end = section.find("\n## ", 5)
    section = section if end < 0 else section[:end]
    return {m.strip() for m in re.findall(r"^\|\s*([^|]+?)\s*\|", section, flags=re.M)}


def test_every_cause_is_a_readme_row():
    rows = _readme_rows()
    missing = [c.row for c in causes.CAUSES if c.row not in rows]
    assert not missing, f"causes without a README row: {missing}"


@pytest.mark.slow
def test_ngff_zarr_suite_runs_against_ngff_gpu(tmp_path, record_property):
    test_dir = suite.fetch_tests()
    control, ours = suite.run_both(test_dir, tmp_path)
    cmp = suite.compare(control, ours)
    # The table travels on the test's report (user_properties), so that the session's end
    # prints it also when the test ran in a pytest-xdist worker (tests/conftest.py).
    record_property(COMPAT_TABLE, cmp.table() + f"\ncontrol {control.seconds:.0f} s, "
                    f"ngff_gpu {ours.seconds:.0f} s (side by side)")
    assert len(cmp.selected) >= MIN_SELECTED, cmp.table()
    unexplained = cmp.per_cause().get("UNEXPLAINED", [])
    assert not unexplained, cmp.table()
    assert cmp.share >= THRESHOLD, cmp.table()
