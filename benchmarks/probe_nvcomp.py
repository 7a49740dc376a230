"""GPU codec probe: can the GPU write standard zstd (or LZ4) Zarr chunks? (issue 22, item 3)

Data: the level-0 chunks (``--chunk``^3 uint16, 128^3 = 4 MiB each) of the end-to-end
volume (:class:`_common.VolumeRecipe`, ``2048 x 1024 x 1024``, 4 GiB: 1024 chunks).

GPU: nvCOMP's batched ``Zstd`` and ``LZ4`` (the ``nvidia-nvcomp-cu13`` wheel,
``nvidia.nvcomp.Codec(algorithm=..., bitstream_kind=BitstreamKind.RAW,
uncomp_chunk_size=<chunk bytes>)``: raw bitstreams, no nvCOMP container, one stream per
Zarr chunk; nvCOMP's default chunking if that is refused) encode every chunk, as the
1-D bytes of the chunk, from device memory in one batch; timed with the device
synchronized before and after (median of ``--repeat``), GB/s of uncompressed input. The
compressed chunks are copied to the host and EVERY chunk is decoded on the CPU with
numcodecs (``Zstd().decode``, what zarr-python reads zstd chunks with; LZ4 raw blocks
through ``numcodecs.LZ4().decode`` after the 4-byte little-endian size header numcodecs
puts before its blocks) and compared with the input. The zstd frame header is read for
what a reader needs (content size present, checksum). nvCOMP's own GPU decode of the batch
is timed and compared too.

CPU reference, same chunks, same run: numcodecs ``Zstd(level=3)`` (ngff_gpu's default
codec) and ``LZ4()`` on a pool of ``--threads`` threads (all cores by default; numcodecs
releases the GIL), GB/s and compression ratio.

``--rehearsal``: small volume, CPU only; the decode-and-compare path runs on raw streams
the CPU made (a zstd frame; an LZ4 block without numcodecs' header) and ``nvidia.nvcomp``
is only imported.

Usage: ``python benchmarks/probe_nvcomp.py [--shape 2048,1024,1024] [--chunk 128]
[--repeat 3] [--threads N] [--json PATH] [--rehearsal]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import VolumeRecipe  # noqa: E402
from _gpu import gbps, write_json  # noqa: E402

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def make_chunks(shape: tuple[int, int, int], chunk: int, threads: int) -> list[np.ndarray]:
    """The volume's chunks in C order of the chunk grid, each C-contiguous."""
    recipe = VolumeRecipe(shape, seed=0)

    def slab(z0: int) -> list[np.ndarray]:
        s = recipe.slab(z0, min(shape[0], z0 + chunk))
        return [np.ascontiguousarray(s[:, y:y + chunk, x:x + chunk])
                for y in range(0, shape[1], chunk) for x in range(0, shape[2], chunk)]

    with ThreadPoolExecutor(max(1, min(8, threads // 2))) as pool:
        return [c for part in pool.map(slab, range(0, shape[0], chunk)) for c in part]


def zstd_frame_info(raw: bytes) -> dict[str, Any]:
    """What the header of a zstd frame says (RFC 8878 section 3.1.1.1)."""
    if raw[:4] != ZSTD_MAGIC:
        return {"zstd_magic": False}
    fhd = raw[4]
    return {"zstd_magic": True, "content_size_present": bool(fhd >> 6) or bool(fhd >> 5 & 1),
            "checksum": bool(fhd >> 2 & 1), "single_segment": bool(fhd >> 5 & 1)}


def decode_and_compare(algo: str, comp: list[bytes], chunks: list[np.ndarray],
                       threads: int) -> dict[str, Any]:
    """Decode every raw stream on the CPU with numcodecs and compare it with its chunk."""
    import numcodecs

    zstd, lz4 = numcodecs.Zstd(), numcodecs.LZ4()

    def one(i: int) -> str | None:
        ref = chunks[i]
        try:
            if algo == "zstd":
                out = zstd.decode(comp[i])
            else:
                out = lz4.decode(struct.pack("<I", ref.nbytes) + comp[i])
            got = np.frombuffer(out, dtype=ref.dtype)
            if got.size != ref.size or not np.array_equal(got, ref.reshape(-1)):
                return f"chunk {i}: decoded {got.size} values, not equal to the input"
        except Exception as exc:  # noqa: BLE001 - recorded per chunk
            return f"chunk {i}: {type(exc).__name__}: {exc}"
        return None

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        problems = [p for p in pool.map(one, range(len(chunks))) if p]
    dt = time.perf_counter() - t0
    nbytes = sum(c.nbytes for c in chunks)
    return {"chunks": len(chunks), "equal": len(chunks) - len(problems),
            "problems": problems[:5], "seconds": dt, "GBps": gbps(nbytes, dt),
            "threads": threads}


def cpu_codecs(chunks: list[np.ndarray], threads: int, repeat: int) -> dict[str, Any]:
    """numcodecs zstd level 3 and LZ4 on ``threads`` threads: GB/s and ratio."""
    import numcodecs

    nbytes = sum(c.nbytes for c in chunks)
    out = {}
    for name, codec in (("zstd-3", numcodecs.Zstd(level=3)), ("lz4", numcodecs.LZ4())):
        times = []
        with ThreadPoolExecutor(threads) as pool:
            for _ in range(repeat):
                t0 = time.perf_counter()
                enc = list(pool.map(codec.encode, chunks))
                times.append(time.perf_counter() - t0)
        comp = sum(len(e) for e in enc)
        t = statistics.median(times)
        out[name] = {"seconds": t, "all_s": times, "GBps": gbps(nbytes, t), "ratio": nbytes / comp,
                     "compressed_bytes": comp, "threads": threads}
        print(f"CPU {name:7} {threads:3} threads: {t:7.3f} s {out[name]['GBps']:7.2f} GB/s "
              f"ratio {out[name]['ratio']:.3f}", flush=True)
    return out


def import_nvcomp() -> Any:
    """``nvidia.nvcomp``, also when another ``nvidia`` package on the path is a regular
    package (with an ``__init__.py``) that would hide the carried wheel's namespace part."""
    import importlib

    try:
        return importlib.import_module("nvidia.nvcomp")
    except ImportError:
        import nvidia

        for entry in sys.path:
            part = Path(entry) / "nvidia"
            if (part / "nvcomp").is_dir() and str(part) not in list(nvidia.__path__):
                nvidia.__path__.append(str(part))
        return importlib.import_module("nvidia.nvcomp")


def nvcomp_codecs(algo: str, chunk_bytes: int) -> list[tuple[Any, dict[str, Any]]]:
    """nvCOMP codecs for ``algo`` (``Zstd`` or ``LZ4``) writing raw bitstreams, in the order
    to try: one stream per chunk (``uncomp_chunk_size`` = the chunk), then nvCOMP's default
    chunking (whose output the CPU decode then judges)."""
    nvcomp = import_nvcomp()
    out = []
    for extra in ({"uncomp_chunk_size": chunk_bytes}, {}):
        options = {"algorithm": algo, "bitstream_kind": nvcomp.BitstreamKind.RAW, **extra}
        out.append((options, {k: str(v) for k, v in options.items()}))
    return [(nvcomp.Codec(**o), shown) for o, shown in out]


def gpu_probe(algo: str, chunks: list[np.ndarray], d_chunks: list[Any], repeat: int,
              threads: int) -> dict[str, Any]:
    """Encode every chunk on the GPU in one batch, decode every one on the CPU, compare."""
    import cupy

    nvcomp = import_nvcomp()
    res: dict[str, Any] = {"tried": []}
    nbytes = sum(c.nbytes for c in chunks)
    batch = nvcomp.as_arrays(d_chunks)
    for codec, shown in nvcomp_codecs(algo, chunks[0].nbytes):
        try:
            _ = codec.encode(nvcomp.as_arrays(d_chunks[:8])).buffer_sizes  # warm-up
            res["codec_options"] = shown
            break
        except Exception as exc:  # noqa: BLE001 - try the next options
            res["tried"].append(f"{shown}: {type(exc).__name__}: {exc}")
    else:
        raise RuntimeError(f"no nvCOMP {algo} codec encoded: {res['tried']}")
    times = []
    for _ in range(repeat):
        cupy.cuda.Device().synchronize()
        t0 = time.perf_counter()
        enc = codec.encode(batch)
        sizes = enc.buffer_sizes  # waits for the encode
        cupy.cuda.Device().synchronize()
        times.append(time.perf_counter() - t0)
        del enc
    enc = codec.encode(batch)
    sizes = enc.buffer_sizes
    t = statistics.median(times)
    res["encode"] = {"seconds": t, "all_s": times, "GBps": gbps(nbytes, t),
                     "note": "device-resident chunks, one batch, nvCOMP's output allocation "
                             "included"}
    res["compressed_bytes"] = int(sum(sizes))
    res["ratio"] = nbytes / res["compressed_bytes"]
    t0 = time.perf_counter()
    host = enc.cpu()
    comp = [np.asarray(host[i]).tobytes() for i in range(len(sizes))]
    res["d2h_seconds"] = time.perf_counter() - t0
    print(f"GPU {algo:4} encode {t:7.3f} s {res['encode']['GBps']:8.2f} GB/s ratio "
          f"{res['ratio']:.3f}", flush=True)
    if algo == "Zstd":
        res["frame"] = zstd_frame_info(comp[0])
    res["cpu_decode"] = decode_and_compare(algo.lower(), comp, chunks, threads)
    print(f"    CPU decode of every chunk: {res['cpu_decode']['equal']} of "
          f"{res['cpu_decode']['chunks']} equal the input", flush=True)
    try:  # nvCOMP's own decode, for the read side
        cupy.cuda.Device().synchronize()
        t0 = time.perf_counter()
        dec = codec.decode(enc, data_type="|u1")
        _ = dec.buffer_sizes  # waits for the decode
        cupy.cuda.Device().synchronize()
        dt = time.perf_counter() - t0
        equal = sum(bool(cupy.array_equal(cupy.asarray(dec[i]), d_chunks[i]))
                    for i in range(len(d_chunks)))
        res["gpu_decode"] = {"seconds": dt, "GBps": gbps(nbytes, dt), "equal": equal,
                             "note": "first call, allocation included"}
    except Exception as exc:  # noqa: BLE001 - extra information only
        res["gpu_decode"] = {"error": f"{type(exc).__name__}: {exc}"}
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="2048,1024,1024")
    p.add_argument("--chunk", type=int, default=128)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--rehearsal", action="store_true")
    args = p.parse_args(argv)
    if args.rehearsal:
        args.shape, args.chunk, args.repeat = "64,128,128", 32, 1
    shape = tuple(int(s) for s in args.shape.split(","))
    result: dict[str, Any] = {
        "benchmark": "probe_nvcomp", "rehearsal": args.rehearsal,
        "config": {"shape": list(shape), "dtype": "uint16", "chunk": args.chunk,
                   "repeat": args.repeat, "threads": args.threads},
        "cpu": {}, "gpu": {}, "errors": [],
    }

    def save() -> None:
        if args.json is not None:
            write_json(args.json, result)

    t0 = time.perf_counter()
    chunks = make_chunks(shape, args.chunk, args.threads)
    result["config"].update(chunks=len(chunks), input_bytes=sum(c.nbytes for c in chunks),
                            seconds_to_make=time.perf_counter() - t0)
    try:
        nvcomp = import_nvcomp()
        result["nvcomp_version"] = getattr(nvcomp, "__version__", None)
        result["nvcomp_cuda_version"] = getattr(nvcomp, "__cuda_version__", None)
    except Exception as exc:  # noqa: BLE001 - an error on the device; noted in a rehearsal
        msg = f"import nvidia.nvcomp: {type(exc).__name__}: {exc}"
        if args.rehearsal:
            result["nvcomp_import_error"] = msg
        else:
            result["errors"].append(msg)
    save()
    if not args.rehearsal and "nvcomp_version" in result:
        try:
            import cupy

            # each chunk as the bytes of a Zarr chunk: 1-D, contiguous, uint8
            d_chunks = [cupy.asarray(c).reshape(-1).view(cupy.uint8) for c in chunks]
            cupy.cuda.Device().synchronize()
            for algo in ("Zstd", "LZ4"):
                try:
                    result["gpu"][algo] = gpu_probe(algo, chunks, d_chunks, args.repeat,
                                                    args.threads)
                except Exception:  # noqa: BLE001 - one codec failing keeps the other
                    result["gpu"][algo] = {"error": traceback.format_exc(limit=4)}
                    print(result["gpu"][algo]["error"], flush=True)
                save()
            del d_chunks
        except Exception:  # noqa: BLE001
            result["errors"].append(traceback.format_exc(limit=4))
    elif args.rehearsal:
        import numcodecs

        # The decode-and-compare path on raw streams made here: a zstd frame, and an LZ4
        # block without the 4-byte size header numcodecs puts before it.
        z = [bytes(numcodecs.Zstd(level=3).encode(c)) for c in chunks]
        lz = [bytes(numcodecs.LZ4().encode(c))[4:] for c in chunks]
        result["rehearsal_checks"] = {
            "zstd": decode_and_compare("zstd", z, chunks, args.threads) | {
                "frame": zstd_frame_info(z[0])},
            "lz4": decode_and_compare("lz4", lz, chunks, args.threads),
            # the comparison can fail: every stream handed to the wrong chunk
            "shifted_zstd": decode_and_compare("zstd", z[1:] + z[:1], chunks, args.threads)}
        try:
            nvcomp_codecs("Zstd", chunks[0].nbytes)
            result["rehearsal_checks"]["nvcomp_codec"] = "created"
        except Exception as exc:  # noqa: BLE001 - no device here
            result["rehearsal_checks"]["nvcomp_codec"] = f"{type(exc).__name__}: {exc}"
    save()
    result["cpu"] = cpu_codecs(chunks, args.threads, args.repeat)
    cpu = result["cpu"]["zstd-3"]["GBps"]
    gpu = result["gpu"].get("Zstd", {}).get("encode", {}).get("GBps")
    if gpu and cpu:
        ok = result["gpu"]["Zstd"]["cpu_decode"]["equal"] == len(chunks)
        result["summary"] = {"gpu_zstd_over_cpu_zstd3": gpu / cpu,
                             "gpu_zstd_ratio": result["gpu"]["Zstd"]["ratio"],
                             "cpu_zstd3_ratio": result["cpu"]["zstd-3"]["ratio"],
                             "gpu_zstd_chunks_readable_by_numcodecs": ok}
    save()
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
