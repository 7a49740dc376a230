"""The ``ngff-gpu`` command line: ``convert``, ``plate``, ``info``, ``validate``,
``upgrade``, ``view`` and ``demo``.

Every failure is one line on stderr, ``ngff-gpu: error: <message>``, with exit
status 1 (2 for usage errors, 130 when interrupted); no traceback unless the
environment variable ``NGFF_GPU_DEBUG`` is set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from ngff_gpu.cli._common import PROG, HelpFormatter, Parser, one_line

__all__ = ["build_parser", "entry", "main"]

DESCRIPTION = """Fast OME-Zarr multiscale pyramids (CUDA kernels, bit-identical NumPy fallback).

Run 'ngff-gpu COMMAND --help' for the options of a command."""

EPILOG = f"""examples:
  {PROG} demo
  {PROG} convert volume.tif volume.ome.zarr
  {PROG} plate plate.ome.zarr --pattern '{{row}}{{col}}_f{{field}}.tif' images/*.tif
  {PROG} info volume.ome.zarr
  {PROG} validate volume.ome.zarr
  {PROG} upgrade old.ome.zarr --to 0.6
  {PROG} view volume.ome.zarr
"""


def build_parser() -> Parser:
    """The argument parser with every subcommand."""
    from ngff_gpu.cli import convert, demo, info, plate, upgrade, view

    parser = Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                    formatter_class=HelpFormatter)
    parser.add_argument("-V", "--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    convert.add_parser(sub)
    plate.add_parser(sub)
    info.add_info_parser(sub)
    info.add_validate_parser(sub)
    upgrade.add_parser(sub)
    view.add_parser(sub)
    demo.add_parser(sub)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ngff-gpu")
    except Exception:  # noqa: BLE001 - not installed: the source tree's version
        from ngff_gpu import __version__

        return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 on an error, 2 on a usage error, 130 when interrupted.
    """
    from ngff_gpu.errors import NgffGpuError

    debug = bool(os.environ.get("NGFF_GPU_DEBUG"))
    _quiet_library_logs(debug)
    if not debug:
        _quiet_libraries()
    args = None
    try:
        from ngff_gpu.cli._common import regroup

        argv = list(sys.argv[1:] if argv is None else argv)
        parser = build_parser()
        if argv[:1] == ["plate"]:
            # ``plate OUTPUT --pattern P FILE...``: FILEs after an option are positionals too
            args, extra = parser.parse_known_args(regroup(argv))
            if any(e.startswith("-") for e in extra):
                parser.parse_args(regroup(argv))  # the usual usage error
            args.files = list(args.files) + extra
        else:
            args = parser.parse_args(regroup(argv) if argv[:1] == ["convert"] else argv)
        return int(args.func(args) or 0)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt as exc:
        if getattr(exc, "ngff_gpu_replacing", False):
            one_line(f"interrupted; {args.writing} is unchanged (the unfinished replacement beside "
                     "it is kept: 'convert --resume' continues it)")
        else:
            one_line("interrupted (an unfinished store carries no OME metadata; "
                     "'convert --resume' continues it)")
        return 130
    except BrokenPipeError:  # 'ngff-gpu info STORE | head': the reader left, not an error
        _silence_stdout()
        return 0
    except (NgffGpuError, OSError, ValueError, TypeError, KeyError) as exc:
        if debug:
            raise
        one_line(_message(exc) + _partial(args, exc))
        _cancel_pending_reads()
        return 1
    except Exception as exc:  # noqa: BLE001 - still one line, never a traceback
        if debug:
            raise
        kind = type(exc).__qualname__
        if type(exc).__module__ not in ("builtins", None):
            kind = f"{type(exc).__module__}.{kind}"
        one_line(f"unexpected {kind}: {exc}{_partial(args, exc)} (NGFF_GPU_DEBUG=1 shows a traceback)")
        _cancel_pending_reads()
        return 1


def _quiet_library_logs(debug: bool) -> None:
    """Send asyncio's reports to the debug log: after a decode error, zarr's event loop
    reports every read it cancelled ("Task was destroyed but it is pending!", "Exception
    ignored in: <coroutine ...>"), hundreds of lines after the one error line that
    already says what failed. ``NGFF_GPU_DEBUG=1`` shows them."""
    import logging
    import warnings

    if debug:
        return
    warnings.filterwarnings("ignore", message=r"coroutine .* was never awaited",
                            category=RuntimeWarning)
    logger = logging.getLogger("asyncio")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    log = logging.getLogger("ngff_gpu")

    def unraisable(info: Any) -> None:
        log.debug("ignored in %r: %r", info.object, info.exc_value)

    sys.unraisablehook = unraisable


def _cancel_pending_reads() -> None:
    """Cancel the reads still pending on zarr's event loop after a failure (a decode
    error fails one read of a batch; the others would be destroyed at exit)."""
    import asyncio

    try:
        from zarr.core import sync as zsync
    except ImportError:  # pragma: no cover
        return
    loop = getattr(zsync, "loop", [None])[0] if isinstance(getattr(zsync, "loop", None), list) else None
    if loop is None or loop.is_closed():
        return

    async def cancel_all() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout=5)
    except Exception:  # noqa: BLE001 - best effort: exit anyway
        pass


def _quiet_libraries() -> None:
    """Keep the log messages of tifffile, asyncio and friends off the terminal: the one
    error line says what went wrong (``NGFF_GPU_DEBUG=1`` shows them)."""
    import logging

    for name in ("tifffile", "asyncio", "imageio", "nibabel", "pydicom", "nrrd", "h5py", "mrcfile",
                 "zarr_n5"):
        log = logging.getLogger(name)
        log.addHandler(logging.NullHandler())
        log.propagate = False


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def entry() -> None:
    """The ``ngff-gpu`` console script: :func:`main`, then a quiet exit.

    After a failure or Ctrl-C the process ends at once (``os._exit`` once the
    streams are flushed), so that no worker thread, event loop or garbage-collected
    task can print "Exception ignored", "Task exception was never retrieved" or
    "Event loop is closed" after the one error line.
    """
    import signal

    try:
        code = main()
    except KeyboardInterrupt:  # a second Ctrl-C while main() was reporting the first
        code = 130
    if code != 0:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(0)


def _partial(args: object, exc: BaseException | None = None) -> str:
    """A note on the unfinished store when a conversion failed while writing."""
    from ngff_gpu.errors import StoreLockedError

    out = getattr(args, "writing", None)
    if isinstance(exc, StoreLockedError):
        return ""  # another process is writing it: its state is not ours to describe
    if out and getattr(exc, "ngff_gpu_replacing", False):
        return f"; {out} is unchanged (the replacement was not finished)"
    if not out or ("://" not in out and not os.path.exists(out)):
        return ""
    return (f"; {out} is incomplete (it carries no OME metadata): rerun with --resume to "
            "continue or --overwrite to start again")


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, KeyError):
        return f"missing key {exc}"
    return str(exc) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    entry()
