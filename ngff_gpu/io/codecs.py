"""Compression choices for the written arrays (Zarr v3 for 0.5, Zarr v2 for 0.4).

Names: ``zstd`` (default), ``lz4``, ``gzip``, ``blosc-zstd``, ``blosc-lz4``,
``blosc-lz4hc``, ``blosc-zlib``, ``none``. ``lz4`` is Blosc with LZ4 and byte
shuffle in both formats: Zarr v3 has no standard bare LZ4 codec, and numcodecs'
bare LZ4 in Zarr v2 is a numcodecs-only format that TensorStore and ngff-zarr
cannot open. Every name gives a store zarr-python, TensorStore and ngff-zarr open.
"""

from __future__ import annotations

from typing import Any

import numcodecs

CODEC_NAMES = ("zstd", "lz4", "gzip", "blosc-zstd", "blosc-lz4", "blosc-lz4hc", "blosc-zlib",
               "none")

_DEFAULT_LEVEL = {"zstd": 3, "gzip": 5}


def _error(kind: type[Exception], message: str) -> Exception:
    """The package's typed error for ``kind`` (TypeError or ValueError).

    Imported on the error path only, so the benchmarks can load this file alone
    (without the package) to build the same codec objects for their peers.
    """
    from ngff_gpu.errors import ArgumentError, ArgumentTypeError

    return ArgumentTypeError(message) if kind is TypeError else ArgumentError(message)


def check_codec(codec: Any, level: Any) -> str:
    """The normalized codec name; raise before any work on a bad ``codec`` or ``codec_level``.

    Raises
    ------
    ArgumentTypeError
        When ``codec`` is not a string or ``codec_level`` not an int.
    ArgumentError
        For an unknown codec name or a level outside -7..22.
    """
    if not isinstance(codec, str):
        raise _error(TypeError, f"codec must be a string, got {codec!r}")
    name = codec.lower().replace("_", "-")
    if name not in CODEC_NAMES:
        raise _error(ValueError, f"codec: unknown codec {codec!r}; choose one of "
                                 f"{', '.join(CODEC_NAMES)}")
    if level is not None:
        if isinstance(level, bool) or not isinstance(level, int):
            raise _error(TypeError, f"codec_level must be an int or None, got {level!r}")
        if not -7 <= level <= 22:
            raise _error(ValueError, f"codec_level {level} is out of range (-7..22)")
    return name


def compressors_for(codec: str, level: int | None, zarr_format: int,
                    itemsize: int = 1) -> Any:
    """The ``compressors`` argument of ``zarr.create_array`` for ``codec``.

    Parameters
    ----------
    codec : str
        One of :data:`CODEC_NAMES`.
    level : int, optional
        Compression level; the codec's default when None.
    zarr_format : {2, 3}
        Zarr format of the array.
    itemsize : int
        Item size of the data (Blosc's shuffle type size).

    Raises
    ------
    ArgumentError, ArgumentTypeError
        For an unknown codec name or a level out of range (or not an int).
    """
    name = check_codec(codec, level)
    if name == "none":
        return None
    if name.startswith("blosc") or name == "lz4":
        cname = "lz4" if name == "lz4" else name.split("-", 1)[1]
        clevel = 5 if level is None else max(0, min(9, int(level)))
        if zarr_format == 2:
            return numcodecs.Blosc(cname=cname, clevel=clevel, shuffle=numcodecs.Blosc.SHUFFLE)
        from zarr.codecs import BloscCodec

        return BloscCodec(cname=cname, clevel=clevel, shuffle="shuffle", typesize=itemsize)
    lvl = _DEFAULT_LEVEL[name] if level is None else int(level)
    if zarr_format == 2:
        return {"zstd": numcodecs.Zstd(level=lvl), "gzip": numcodecs.GZip(level=lvl)}[name]
    from zarr.codecs import GzipCodec, ZstdCodec

    return ZstdCodec(level=lvl) if name == "zstd" else GzipCodec(level=lvl)


#: numcodecs' Blosc shuffle constants as Zarr v3 ``BloscCodec`` names (-1: AUTOSHUFFLE).
_SHUFFLE = {0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}


def user_compressors(given: Any, zarr_format: int, itemsize: int = 1) -> Any:
    """The caller's ``compressor``/``compressors`` in the form zarr-python takes for
    ``zarr_format``, read as ngff-zarr reads them: one codec or a sequence of them; a
    ``BytesCodec`` in the chain is the serializer (always written) and dropped; in
    Zarr v3 a numcodecs ``Blosc``, ``Zstd`` or ``GZip`` becomes the v3 codec of the
    same configuration. Zarr v2 (0.4) arrays take numcodecs codecs as they are.

    Raises
    ------
    ArgumentTypeError
        For a numcodecs codec that has no Zarr v3 equivalent here.
    """
    if given is None or zarr_format == 2 or isinstance(given, str | dict):
        return given
    from zarr.codecs import BloscCodec, BytesCodec, GzipCodec, ZstdCodec

    chain = list(given) if isinstance(given, list | tuple) else [given]
    out = []
    for codec in chain:
        if isinstance(codec, BytesCodec):
            continue
        if isinstance(codec, numcodecs.abc.Codec):
            cfg = codec.get_config()
            kind = cfg.get("id")
            if kind == "blosc":
                shuffle = _SHUFFLE.get(cfg.get("shuffle", 1),
                                       "bitshuffle" if itemsize == 1 else "shuffle")
                codec = BloscCodec(cname=cfg["cname"], clevel=cfg["clevel"], shuffle=shuffle,
                                   typesize=itemsize, blocksize=cfg.get("blocksize", 0))
            elif kind == "zstd":
                codec = ZstdCodec(level=cfg.get("level", 0))
            elif kind == "gzip":
                codec = GzipCodec(level=cfg.get("level", 5))
            else:
                raise _error(TypeError, f"compressors: numcodecs {kind!r} has no Zarr v3 "
                                        "codec here; pass a zarr.codecs codec (Blosc, Zstd "
                                        "or GZip from numcodecs are converted)")
        out.append(codec)
    return tuple(out)
