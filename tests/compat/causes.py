"""Why an ngff-zarr test fails against ngff_gpu: one :class:`Cause` per documented row.

Each cause names the row of the README's "Differences from ngff-zarr" table that
explains it (``row``, the row's first cell, checked against the README by
``tests/test_ngff_zarr_compat.py``) and says which failures it covers: test node ids
(regular expressions matched against the start of ``file::test``) and, optionally,
failure messages. A failure that no cause covers is "UNEXPLAINED", and the
compatibility test fails on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    """A documented difference and the failures it explains.

    Attributes
    ----------
    key : str
        Short name, printed in the table.
    row : str
        The first cell of the README row (Differences from ngff-zarr).
    tests : tuple of str
        Regular expressions matched at the start of the node id (``test/x.py::t``).
    messages : tuple of str
        Regular expressions searched in the failure message; a cause with both
        lists needs both to match.
    """

    key: str
    row: str
    tests: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()

    def covers(self, nodeid: str, message: str) -> bool:
        if self.tests and not any(re.match(p, nodeid) for p in self.tests):
            return False
        if self.messages and not any(re.search(p, message) for p in self.messages):
            return False
        return bool(self.tests or self.messages)


#: Every documented difference that a failing test can be put down to. The order
#: matters: the first cause that covers a failure is its cause.
CAUSES: tuple[Cause, ...] = ()


def classify(nodeid: str, message: str) -> Cause | None:
    """The cause that covers a failure, or None."""
    for cause in CAUSES:
        if cause.covers(nodeid, message):
            return cause
    return None
