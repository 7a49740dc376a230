"""Run ``python -m ngff_gpu.cli`` in a subprocess, as a user would (shared by the CLI tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli(*args: object, cwd: Path | None = None, env: dict | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the CLI with ``args`` (text output captured); ``env`` adds to the environment.

    The repository comes first on ``PYTHONPATH`` and ``NGFF_GPU_DEBUG`` is unset, so the
    subprocess runs this checkout and prints what a user sees (no tracebacks).
    """
    full = dict(os.environ)
    full["PYTHONPATH"] = os.pathsep.join([str(REPO), full.get("PYTHONPATH", "")])
    full.pop("NGFF_GPU_DEBUG", None)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "ngff_gpu.cli", *map(str, args)],
                          capture_output=True, text=True, env=full, cwd=cwd, timeout=timeout)
