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
    return text.strip().lower().replace("_", "-").replace(":", "-")


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


#: RFC-4 anatomical orientation values (ngff-zarr's ``AnatomicalOrientationValues``).
ORIENTATIONS = (
    "left-to-right", "right-to-left", "anterior-to-posterior", "posterior-to-anterior",
    "inferior-to-superior", "superior-to-inferior", "dorsal-to-ventral", "ventral-to-dorsal",
    "dorsal-to-palmar", "palmar-to-dorsal", "dorsal-to-plantar", "plantar-to-dorsal",
    "rostral-to-caudal", "caudal-to-rostral", "cranial-to-caudal", "caudal-to-cranial",
    "proximal-to-distal", "distal-to-proximal", "superficial-to-deep", "deep-to-superficial",
    "apical-to-basal", "basal-to-apical", "apex-to-base", "base-to-apex",
)
ORIENTATION_PRESETS = {
    "LPS": {"x": "right-to-left", "y": "anterior-to-posterior", "z": "inferior-to-superior"},
    "RAS": {"x": "left-to-right", "y": "posterior-to-anterior", "z": "inferior-to-superior"},
}


#: Joins the values of one multi-value option (see :func:`regroup`).
SEP = "\x1f"


def _is_int(t: str) -> bool:
    return t.isdigit()


def _is_number_or_dim(t: str) -> bool:
    if t.lower() in AXIS_ORDER and len(t) == 1:
        return True
    try:
        float(t)
        return True
    except ValueError:
        return False


def _is_dims(t: str) -> bool:
    return bool(t) and all(ch in AXIS_ORDER + "," for ch in t.lower())


def _is_unit_or_dim(t: str) -> bool:
    from ngff_gpu.io.inputs import udunits

    return (len(t) == 1 and t.lower() in AXIS_ORDER) or udunits(t) is not None


def _is_orientation(t: str) -> bool:
    return (len(t) == 1 and t.lower() in AXIS_ORDER) or t in ORIENTATIONS


#: Options that take several values (ngff-zarr's ``-s z 4.0 y 1.0``) and what a value looks like.
MULTI_VALUE = {
    "-c": _is_int, "--chunks": _is_int, "--chunks-per-shard": _is_int,
    "-s": _is_number_or_dim, "--scale": _is_number_or_dim,
    "-t": _is_number_or_dim, "--translation": _is_number_or_dim,
    "-d": _is_dims, "--dims": _is_dims, "-u": _is_unit_or_dim, "--units": _is_unit_or_dim,
    "--orientation": _is_orientation,
}


def regroup(argv: list[str]) -> list[str]:
    """Join the values of each multi-value option into one argument, so that
    ``-s z 4.0 y 1.0 in.tif out.zarr`` keeps its positionals: an option takes its first
    value, then the following arguments while they look like values of that option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        test = MULTI_VALUE.get(arg)
        if test is None or i + 1 >= len(argv):
            out.append(arg)
            i += 1
            continue
        values = [argv[i + 1]]
        i += 2
        while i < len(argv) and test(argv[i]) and argv[i] != "--":
            values.append(argv[i])
            i += 1
        out += [arg, SEP.join(values)]
    return out


class Tokens(argparse.Action):
    """Split an option's values (joined by :func:`regroup`) and convert them with
    ``convert(tokens)``; a bad value is a usage error (exit 2)."""

    def __init__(self, *args: Any, convert: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.convert = convert

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        raw = [values] if isinstance(values, str) else list(values)
        tokens = [t for v in raw for t in str(v).split(SEP)]
        try:
            setattr(namespace, self.dest, self.convert(tokens) if self.convert else tokens)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"{option_string}: {exc}")


def _pairs(tokens: list[str], what: str) -> list[tuple[str, str]] | None:
    """``z 4.0 y 1.0`` (ngff-zarr's spelling) as pairs; None when the tokens are not pairs."""
    if len(tokens) < 2 or len(tokens) % 2 or tokens[0].lower() not in AXIS_ORDER:
        return None
    pairs = [(tokens[i].lower(), tokens[i + 1]) for i in range(0, len(tokens), 2)]
    bad = [d for d, _ in pairs if d not in AXIS_ORDER]
    if bad:
        raise argparse.ArgumentTypeError(f"{what}: unknown dim {bad[0]!r} (use t, c, z, y or x)")
    return pairs


def float_tokens(tokens: list[str]) -> float | dict[str, float] | list[float]:
    """``0.5``, ``z=2,y=0.5``, ``2,0.5,0.5``, ``z 2 y 0.5`` (pairs) or ``2 0.5 0.5``."""
    if len(tokens) == 1:
        return per_dim_floats(tokens[0])
    pairs = _pairs(tokens, "value")
    if pairs is not None:
        return {d: _float(v, "value") for d, v in pairs}
    return [_float(t, "value") for t in tokens]


def unit_tokens(tokens: list[str]) -> str | dict[str, str]:
    """``micrometer``, ``z=micrometer,t=second`` or pairs ``z micrometer t second``."""
    if len(tokens) == 1:
        return units(tokens[0])
    pairs = _pairs(tokens, "--units")
    if pairs is None:
        raise argparse.ArgumentTypeError("expected one unit or dim/unit pairs such as "
                                         "'z micrometer y micrometer'")
    return {d: units(u) for d, u in pairs}  # type: ignore[misc]


def chunk_tokens(tokens: list[str]) -> int | dict[str, int] | tuple[int, ...]:
    """``64``, ``z=32,y=128,x=128``, ``1,64,64`` or ``1 64 64`` (one per axis)."""
    if len(tokens) == 1:
        return chunks(tokens[0])
    return tuple(_int(t, "--chunks") for t in tokens)


def shard_tokens(tokens: list[str]) -> int | dict[str, int] | tuple[int, ...]:
    """``4``, ``z=2,y=4,x=4`` or ``2 4 4`` (one per spatial axis or per axis)."""
    if len(tokens) == 1:
        return shard_counts(tokens[0])
    return tuple(_int(t, "--chunks-per-shard") for t in tokens)


def dims_tokens(tokens: list[str]) -> list[str]:
    """``zyx``, ``z,y,x`` or ``z y x``."""
    return dims("".join(tokens))


def orientation_tokens(tokens: list[str]) -> dict[str, str]:
    """``LPS``/``RAS`` or pairs ``x right-to-left y anterior-to-posterior``."""
    if len(tokens) == 1:
        preset = ORIENTATION_PRESETS.get(tokens[0].upper())
        if preset is None:
            raise argparse.ArgumentTypeError(
                f"unknown preset {tokens[0]!r} (use LPS, RAS or dim/value pairs)")
        return dict(preset)
    pairs = _pairs(tokens, "--orientation")
    if pairs is None:
        raise argparse.ArgumentTypeError("expected LPS, RAS or pairs such as 'x right-to-left'")
    for d, v in pairs:
        if d not in SPATIAL_DIMS:
            raise argparse.ArgumentTypeError(f"{d!r} is not a spatial dim")
        if v not in ORIENTATIONS:
            raise argparse.ArgumentTypeError(f"unknown orientation {v!r} (e.g. {ORIENTATIONS[0]})")
    return dict(pairs)


def series_value(text: str) -> int | str:
    """``N`` (a series index), ``all`` or ``each``."""
    if text.strip().lower() in ("all", "each"):
        return text.strip().lower()
    value = _int(text.strip(), "--series")
    if value < 0:
        raise argparse.ArgumentTypeError(f"--series {value}: must be 0 or more, 'all' or 'each'")
    return value


def describe_backend(device: str) -> str:
    """``cpu (NumPy, 2 threads)`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``; raises like ``get_backend``."""
    import os

    from ngff_gpu.compute.backends import get_backend

    backend = get_backend(device)
    if not getattr(backend, "on_device", False):
        return f"cpu (NumPy, {max(1, os.cpu_count() or 1)} threads)"
    try:
        import cupy

        dev = cupy.cuda.Device()
        name = cupy.cuda.runtime.getDeviceProperties(dev.id)["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        return f"cuda:{dev.id} ({name})"
    except Exception:  # noqa: BLE001 - the name is cosmetic
        return "cuda"
