"""Progress display for the engine: a rich bar on a terminal, log lines elsewhere.

Both show levels, bricks (done of total, and how many a resume skipped) and bytes
in binary units (``1.5 GiB``); the bar fits an 80-column terminal.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _levels(p: Any) -> str:
    """``levels 0-3`` (a pass that copies level 0 writes it too) or ``level 4``."""
    first = 0 if p.source == 0 else p.source + 1
    return f"level {p.last}" if first >= p.last else f"levels {first}-{p.last}"


class _Silent:
    def start_pass(self, p: Any) -> None:
        """Nothing to show."""

    def skip(self, n_bricks: int) -> None:
        """Nothing to show."""

    def advance(self, nbytes: int) -> None:
        """Nothing to show."""


class _Lines:
    """Plain log lines (every 10%) for logs and pipes."""

    def __init__(self, total: int, n_levels: int, n_bricks: int, stream: Any) -> None:
        self.total, self.n_levels, self.n_bricks = total, n_levels, n_bricks
        self.stream = stream
        self.done_bytes = self.done_bricks = self.skipped = 0
        self.t0 = time.perf_counter()
        self.next_report = 0.1

    def start_pass(self, p: Any) -> None:
        brick = "x".join(str(n) for n in p.brick)
        print(f"ngff-gpu: {_levels(p)} ({self.n_levels} levels): bricks of {brick}",
              file=self.stream, flush=True)

    def skip(self, n_bricks: int) -> None:
        if n_bricks:
            self.skipped += n_bricks
            self.done_bricks += n_bricks
            print(f"ngff-gpu: resume: {n_bricks} bricks already written, skipped",
                  file=self.stream, flush=True)

    def advance(self, nbytes: int) -> None:
        self.done_bytes += nbytes
        self.done_bricks += 1
        frac = self.done_bricks / max(self.n_bricks, 1)
        if frac >= self.next_report or self.done_bricks == self.n_bricks:
            dt = max(time.perf_counter() - self.t0, 1e-9)
            skipped = f" ({self.skipped} skipped)" if self.skipped else ""
            print(f"ngff-gpu: {100 * frac:5.1f}%  {self.done_bricks}/{self.n_bricks} bricks"
                  f"{skipped}  {human_bytes(self.done_bytes)}  {human_bytes(self.done_bytes / dt)}/s",
                  file=self.stream, flush=True)
            self.next_report = frac + 0.1


class _Rich:
    def __init__(self, progress: Any, total: int, n_levels: int, n_bricks: int) -> None:
        self.progress, self.n_levels = progress, n_levels
        self.task = progress.add_task(f"{n_levels} levels", total=n_bricks, nbytes=0,
                                      total_bytes=total, skipped=0)

    def start_pass(self, p: Any) -> None:
        self.progress.update(self.task, description=_levels(p))

    def skip(self, n_bricks: int) -> None:
        if n_bricks:
            t = self.progress.tasks[self.task]
            self.progress.update(self.task, advance=n_bricks, skipped=t.fields["skipped"] + n_bricks)

    def advance(self, nbytes: int) -> None:
        t = self.progress.tasks[self.task]
        self.progress.update(self.task, advance=1, nbytes=t.fields["nbytes"] + nbytes)


def _columns() -> list[Any]:
    from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Bricks(ProgressColumn):
        def render(self, task: Any) -> Text:
            skipped = task.fields.get("skipped", 0)
            extra = f" ({skipped} skipped)" if skipped else ""
            return Text(f"{int(task.completed)}/{int(task.total or 0)} bricks{extra}",
                        no_wrap=True, overflow="ellipsis")

    class Bytes(ProgressColumn):
        def render(self, task: Any) -> Text:
            done = task.fields.get("nbytes", 0)
            elapsed = task.elapsed or 0.0
            speed = f" {human_bytes(done / elapsed)}/s" if done and elapsed > 0.5 else ""
            return Text(f"{human_bytes(done)}{speed}", no_wrap=True, overflow="ellipsis")

    return [TextColumn("{task.description:<10}"), BarColumn(bar_width=10), Bricks(), Bytes(),
            TimeRemainingColumn()]


@contextmanager
def make_progress(enabled: bool, total_bytes: int, n_levels: int, n_bricks: int,
                  stream: Any = None):
    """Yield an object with ``start_pass(pass)``, ``skip(n_bricks)`` and ``advance(nbytes)``.

    Parameters
    ----------
    enabled : bool
        False shows nothing.
    total_bytes : int
        Bytes of all levels together.
    n_levels, n_bricks : int
        For the labels of the display.
    stream : file, optional
        Where to show it (default ``sys.stderr``).
    """
    stream = stream or sys.stderr
    if not enabled:
        yield _Silent()
        return
    if not stream.isatty():
        yield _Lines(total_bytes, n_levels, n_bricks, stream)
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*_columns(), console=Console(file=stream), transient=False) as prog:
        yield _Rich(prog, total_bytes, n_levels, n_bricks)
