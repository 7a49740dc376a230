"""Shared pieces of the CLI: the parser class, help formatter and value parsers.

Every value parser raises :class:`argparse.ArgumentTypeError`, so a bad value
is a usage error (exit code 2) reported on one line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from ngff_gpu.dims import AXIS_ORDER, SPATIAL_DIMS, check_dims
from ngff_gpu.errors import NgffGpuError

PROG = "ngff-gpu"

try:  # rich help when rich-argparse is installed (it is not a dependency)
    from rich_argparse import RawDescriptionRichHelpFormatter as HelpFormatter
except ImportError:  # pragma: no cover - depends on the environment
    HelpFormatter = argparse.RawDescriptionHelpFormatter  # type: ignore[assignment,misc]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        """Print ``ngff-gpu: error: <message>`` and exit with status 2."""
        one_line(f"{message} (see '{self.prog} --help')")
        raise SystemExit(2)


def one_line(message: str, prefix: str = "error") -> None:
    """Print ``ngff-gpu: <prefix>: <message>`` on stderr as a single line."""
    text = " ".join(str(message).split()) or "unknown error"
    print(f"{PROG}: {prefix}: {text}", file=sys.stderr, flush=True)


def _split_pairs(text: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"{what}: expected dim=value, got {item!r}")
        dim, value = (s.strip() for s in item.split("=", 1))
        dim = dim.lower()
        if dim not in AXIS_ORDER:
            raise argparse.ArgumentTypeError(f"{what}: unknown dim {dim!r} (use t, c, z, y or x)")
        pairs.append((dim, value))
    if not pairs:
        raise argparse.ArgumentTypeError(f"{what}: empty value")
    return pairs


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: {value!r} is not an integer") from None


def _float(value: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: {value!r} is not a number") from None


def scale_factors(text: str) -> int | list[int] | list[dict[str, int]]:
    """``64`` (auto ladder), ``2,4,8`` (every spatial dim) or ``z=1,y=2,x=2;z=2,y=4,x=4``.

    A single level with one factor for every spatial dim is written ``2,``.
    """
    text = text.strip()
    if "=" in text:
        return [{d: _int(v, "--scale-factors") for d, v in _split_pairs(level, "--scale-factors")}
                for level in text.split(";") if level.strip()]
    if "," in text:
        return [_int(v.strip(), "--scale-factors") for v in text.split(",") if v.strip()]
    return _int(text, "--scale-factors")


def chunks(text: str) -> int | dict[str, int] | tuple[int, ...]:
    """``64`` (spatial dims), ``z=32,y=128,x=128`` or a full tuple ``1,64,64,64``."""
    text = text.strip()
    if "=" in text:
        return {d: _int(v, "--chunks") for d, v in _split_pairs(text, "--chunks")}
    if "," in text:
        return tuple(_int(v.strip(), "--chunks") for v in text.split(",") if v.strip())
    return _int(text, "--chunks")


def shard_counts(text: str) -> int | dict[str, int]:
    """``4`` (every spatial dim) or ``z=2,y=4,x=4`` chunks per shard."""
    text = text.strip()
    if "=" in text:
        return {d: _int(v, "--chunks-per-shard") for d, v in _split_pairs(text, "--chunks-per-shard")}
    return _int(text, "--chunks-per-shard")


def per_dim_floats(text: str) -> float | dict[str, float] | list[float]:
    """``0.5`` (every spatial dim), ``z=2,y=0.5,x=0.5`` or ``2,0.5,0.5`` (spatial dims)."""
    text = text.strip()
    if "=" in text:
        return {d: _float(v, "value") for d, v in _split_pairs(text, "value")}
    if "," in text:
        return [_float(v.strip(), "value") for v in text.split(",") if v.strip()]
    return _float(text, "value")


def units(text: str) -> str | dict[str, str]:
    """``micrometer`` (spatial dims) or ``z=micrometer,t=second``; ``µm``, ``nm``, ``s``... accepted."""
    from ngff_gpu.io.inputs import udunits

    def norm(u: str) -> str:
        name = udunits(u)
        if name is None:
            raise argparse.ArgumentTypeError(
                f"--units: unknown unit {u!r} (use UDUNITS-2 names such as micrometer, "
                "nanometer, millimeter, second, millisecond)")
        return name

    text = text.strip()
    if "=" in text:
        return {d: norm(v) for d, v in _split_pairs(text, "--units")}
    return norm(text)


def dims(text: str) -> list[str]:
    """``zyx`` or ``z,y,x`` -> ``["z", "y", "x"]`` (letters of ``tczyx``, no repeats)."""
    letters = [c for c in text.lower() if c not in ", "]
    if not letters:
        raise argparse.ArgumentTypeError(f"--dims {text!r}: use letters of 'tczyx', e.g. zyx or cyx")
    try:  # the rules of ngff_gpu.dims; the count is checked against the data later
        return check_dims(letters, len(letters), param="--dims")
    except NgffGpuError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def memory(text: str) -> int:
    """``2GiB``, ``512MB``, ``1e9`` -> bytes."""
    import dask.utils

    try:
        value = int(dask.utils.parse_bytes(text))
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(
            f"--memory-limit: cannot parse {text!r} (try 2GiB or 512MB)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("--memory-limit must be positive")
    return value


def method_name(text: str) -> str:
    """Case-insensitive method names: ``ITKWASM-GAUSSIAN`` -> ``itkwasm_gaussian``."""
    return text.strip().lower().replace("-", "_")


def codec_name(text: str) -> str:
    """Case-insensitive codec names: ``Blosc_ZSTD`` -> ``blosc-zstd``."""
    return text.strip().lower().replace("_", "-")


def spread(value: Any, dims: list[str], keep: tuple[str, ...] = SPATIAL_DIMS) -> Any:
    """Expand a single value to a dict over the dims in ``keep``; lists and dicts pass."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {d: value for d in dims if d in keep}
    return value


def is_tty(stream: Any) -> bool:
    """True when ``stream`` is an interactive terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
