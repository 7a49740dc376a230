"""Remote-write benchmark: throughput to S3 with 5% faults against none, in the same run.

The parent starts a moto S3 server on 127.0.0.1 and the fault proxy of the tests
(``tests/faultproxy.py``) in front of it, writes a deterministic uint16 volume to
``benchmarks/out/`` once, and then runs each case in a fresh child process that
converts it to a new bucket through the proxy and reports its wall time::

    np.load(mmap) -> to_ngff_image -> to_multiscales(..., [2, 4], chunks) ->
    to_ngff_zarr("s3://bucket/v.ome.zarr", storage_options=...)   # timed

Cases (interleaved over ``--repeat`` rounds, so drift in load hits all alike):

``clean``
    through the proxy, no faults: the reference of the ratio.
``faults``
    through the proxy, ``--rate`` (default 5%) of the requests failing, spread evenly
    over 503 SlowDown, 500, 502, 504, reset connections, lost answers, cut responses,
    cut uploads and 20 ms delays; our default retry policy (no ``"retry"`` option).
``direct``
    straight to moto (informational: what the proxy costs).
``burst`` (``--burst``)
    a 10 s burst of 503 SlowDown (every request) after the first 20, default policy:
    shows that the default survives it, and what it costs.

After each case (outside the timed region) every object of the bucket is compared
with the same conversion written locally (through zarr-python's codec pipeline, as
remote stores are), byte for byte. Reported: wall time (min
and median over rounds), MB/s of input, requests and faults injected, and the
target (docs/design.md section 3.8): faults / clean <= 1.5.

Usage::

    python benchmarks/bench_remote.py [--size 160] [--chunks 32] [--repeat 3] [--rate 0.05]
                                      [--burst] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import numpy as np  # noqa: E402
from _common import OUT_DIR, machine_info, run_child, versions  # noqa: E402

FACTORS = [2, 4]
FAULT_KINDS = ("slowdown", "internal", "bad_gateway", "gateway", "reset", "lost", "truncate",
               "cut_upload", "delay")
RATIO_BOUND = 1.5
CREDENTIALS = {"key": "testing", "secret": "testing"}


def _input(size: int) -> Path:
    path = OUT_DIR / f"remote_input_{size}.npy"
    if not path.exists():
        rng = np.random.default_rng(23)
        z, y, x = np.indices((size, size, size), dtype=np.float32)
        vol = 2000 + 900 * np.sin(x / 7) * np.cos(y / 5) + 10 * z
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        np.save(path, (vol + rng.integers(0, 300, vol.shape)).astype(np.uint16))
    return path


def child(args: argparse.Namespace) -> None:
    """One timed conversion to ``args.url``; prints a JSON line."""
    import s3fs  # noqa: F401 - imported before the clock, as ngff_gpu is

    import ngff_gpu as nz

    data = np.load(args.input, mmap_mode="r")
    options = json.loads(args.options)
    t0 = time.perf_counter()
    ms = nz.to_multiscales(nz.to_ngff_image(data), scale_factors=FACTORS, chunks=args.chunks)
    nz.to_ngff_zarr(args.url, ms, storage_options=options)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds}))


def _objects(client: Any, bucket: str) -> dict[str, bytes]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            key = obj["Key"].split("/", 1)[1]
            out[key] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {f.relative_to(root).as_posix(): f.read_bytes() for f in root.rglob("*")
            if f.is_file()}


def parent(args: argparse.Namespace) -> int:
    import boto3
    from faultproxy import FaultProxy
    from moto.server import ThreadedMotoServer

    import ngff_gpu as nz

    # Remote stores are written through zarr-python's codec pipeline; so is the reference
    # (zarrs' zstd may encode a chunk in other bytes with the same values).
    os.environ["NGFF_GPU_CODEC_PIPELINE"] = "zarr"
    src = _input(args.size)
    data = np.load(src, mmap_mode="r")
    local = OUT_DIR / "remote_reference.ome.zarr"
    ms = nz.to_multiscales(nz.to_ngff_image(data), scale_factors=FACTORS, chunks=args.chunks)
    nz.to_ngff_zarr(local, ms, overwrite=True)
    reference = _files(local)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=moto, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    cases = ["clean", "faults", "direct"] + (["burst"] if args.burst else [])
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    n = 0
    try:
        with FaultProxy(moto) as proxy:
            for r in range(args.repeat):
                for case in cases:
                    n += 1
                    bucket = f"bench{n}"
                    client.create_bucket(Bucket=bucket)
                    proxy.restore()
                    proxy.set_rates({} if case != "faults" else
                                    dict.fromkeys(FAULT_KINDS, args.rate / len(FAULT_KINDS)),
                                    seed=r)
                    if case == "burst":
                        proxy.burst("slowdown", seconds=10, after=20)
                    endpoint = moto if case == "direct" else proxy.url
                    options = {**CREDENTIALS, "client_kwargs": {"endpoint_url": endpoint,
                                                                "region_name": "us-east-1"}}
                    before, injected = proxy.requests, sum(proxy.injected.values())
                    res = run_child(__file__, ["--child", "--input", str(src), "--chunks",
                                               str(args.chunks), "--url",
                                               f"s3://{bucket}/v.ome.zarr", "--options",
                                               json.dumps(options)], timeout=args.timeout)
                    res["requests"] = proxy.requests - before
                    res["faults"] = sum(proxy.injected.values()) - injected
                    if "error" not in res:
                        got = _objects(client, bucket)
                        res["verified"] = got == reference
                    runs[case].append(res)
                    print(f"round {r + 1} {case:7s} " + (
                        f"{res['seconds']:.2f} s, {res['requests']} requests, {res['faults']} "
                        f"faults, verified={res.get('verified')}" if "seconds" in res
                        else res["error"]), flush=True)
    finally:
        server.stop()

    mb = data.nbytes / 1e6
    table = {}
    for case, rs in runs.items():
        secs = [x["seconds"] for x in rs if "seconds" in x]
        if not secs:
            continue
        table[case] = {"min_s": min(secs), "median_s": statistics.median(secs),
                       "mb_per_s": mb / min(secs),
                       "requests": statistics.median(x["requests"] for x in rs),
                       "faults": statistics.median(x["faults"] for x in rs),
                       "verified": all(x.get("verified") for x in rs)}
    ratio = None
    if "clean" in table and "faults" in table:
        ratio = table["faults"]["min_s"] / table["clean"]["min_s"]
    print(f"\n{args.size}^3 uint16 ({mb:.1f} MB), chunks {args.chunks}, factors {FACTORS}, "
          f"{args.repeat} rounds")
    print(f"{'case':8s} {'min s':>7s} {'median s':>9s} {'MB/s':>7s} {'requests':>9s} "
          f"{'faults':>7s} verified")
    for case, row in table.items():
        print(f"{case:8s} {row['min_s']:7.2f} {row['median_s']:9.2f} {row['mb_per_s']:7.1f} "
              f"{row['requests']:9.0f} {row['faults']:7.0f} {row['verified']}")
    if ratio is not None:
        ok = ratio <= RATIO_BOUND
        print(f"\nfaults ({args.rate:.0%}) / clean: {ratio:.2f}x (target <= {RATIO_BOUND}x): "
              f"{'pass' if ok else 'FAIL'}")
    report = {"machine": machine_info(), "versions": versions(), "size": args.size,
              "chunks": args.chunks, "factors": FACTORS, "rate": args.rate,
              "repeat": args.repeat, "runs": runs, "table": table, "ratio": ratio,
              "bound": RATIO_BOUND}
    out = Path(args.json) if args.json else OUT_DIR / "bench_remote.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0 if all(row["verified"] for row in table.values()) else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=160, help="edge of the uint16 cube (160)")
    p.add_argument("--chunks", type=int, default=32, help="chunk edge (32)")
    p.add_argument("--repeat", type=int, default=3, help="rounds of every case (3)")
    p.add_argument("--rate", type=float, default=0.05, help="fault rate of 'faults' (0.05)")
    p.add_argument("--burst", action="store_true", help="add the 10 s throttling burst case")
    p.add_argument("--timeout", type=float, default=600, help="seconds per case (600)")
    p.add_argument("--json", default=None, help="report path (benchmarks/out/bench_remote.json)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--options", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
