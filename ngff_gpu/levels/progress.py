"""Progress display for the engine: a rich bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any


class _Silent:
    def start_pass(self, p: Any) -> None:
        """Nothing to show."""

    def advance(self, nbytes: int) -> None:
        """Nothing to show."""


class _Lines:
    """Plain log lines (every 10%) for logs and pipes."""

    def __init__(self, total: int, n_levels: int, n_bricks: int) -> None:
        self.total, self.n_levels, self.n_bricks = total, n_levels, n_bricks
        self.done_bytes = self.done_bricks = 0
        self.t0 = time.perf_counter()
        self.next_report = 0.1

    def start_pass(self, p: Any) -> None:
        print(f"ngff-gpu: levels {p.source}->{p.last}: bricks of {p.brick}", file=sys.stderr)

    def advance(self, nbytes: int) -> None:
        self.done_bytes += nbytes
        self.done_bricks += 1
        frac = self.done_bytes / max(self.total, 1)
        if frac >= self.next_report or self.done_bricks == self.n_bricks:
            dt = time.perf_counter() - self.t0
            print(f"ngff-gpu: {100 * frac:5.1f}%  {self.done_bricks}/{self.n_bricks} bricks  "
                  f"{self.done_bytes / 1e9:.2f} GB  {self.done_bytes / 1e9 / max(dt, 1e-9):.2f} GB/s",
                  file=sys.stderr, flush=True)
            self.next_report = frac + 0.1


class _Rich:
    def __init__(self, progress: Any, total: int, n_levels: int, n_bricks: int) -> None:
        self.progress = progress
        self.bytes_task = progress.add_task(f"writing {n_levels} levels", total=total)
        self.brick_task = progress.add_task("bricks", total=n_bricks)

    def start_pass(self, p: Any) -> None:
        self.progress.update(self.bytes_task,
                             description=f"levels {p.source}->{p.last} (bricks {p.brick})")

    def advance(self, nbytes: int) -> None:
        self.progress.update(self.bytes_task, advance=nbytes)
        self.progress.update(self.brick_task, advance=1)


@contextmanager
def make_progress(enabled: bool, total_bytes: int, n_levels: int, n_bricks: int):
    """Yield an object with ``start_pass(pass)`` and ``advance(nbytes)``.

    Parameters
    ----------
    enabled : bool
        False shows nothing.
    total_bytes : int
        Bytes of all levels together.
    n_levels, n_bricks : int
        For the labels of the display.
    """
    if not enabled:
        yield _Silent()
        return
    if not sys.stderr.isatty():
        yield _Lines(total_bytes, n_levels, n_bricks)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=False) as prog:
        yield _Rich(prog, total_bytes, n_levels, n_bricks)
