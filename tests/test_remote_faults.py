"""Remote stores that fail (issue 23): writes and reads through a fault-injecting proxy.

A moto S3 server and an ``http.server`` run on 127.0.0.1 behind
:class:`faultproxy.FaultProxy`, which answers 503 SlowDown / 500 / 502 / 504, resets
connections, loses answers, cuts responses and uploads short, delays and stalls, at
seeded rates, in counted bursts and outages. Every test checks that its faults really
happened (``proxy.injected``), and compares what the store holds with the same
conversion written locally, byte for byte, object by object: so no object holds a
partial chunk, none is missing and none is extra. No test waits on a clock: bursts and
outages are counted in requests, a kill waits on the proxy's event that an upload is
in flight, and the retry waits are made small through storage options.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_run import REPO, cli
from faultproxy import KINDS, FaultProxy
from hypothesis import given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.errors import (
    ArgumentError,
    ArgumentTypeError,
    RemoteStoreError,
    StoreAccessDeniedError,
    StoreThrottledError,
    StoreUnavailableError,
)
from ngff_gpu.io.remote import open_url_store, parse_storage_options_json
from ngff_gpu.io.remote_retry import RetryPolicy, classify

pytest.importorskip("aiohttp")
pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

#: Faults a write can meet (``deny``/``bad_request`` are not retried, ``stall`` needs a timeout).
WRITE_KINDS = ("slowdown", "internal", "bad_gateway", "gateway", "reset", "lost", "truncate",
               "cut_upload", "delay")
SHAPE, CHUNKS, FACTORS = (16, 48, 48), 16, [2, 4]
_names = itertools.count()


def volume() -> np.ndarray:
    rng = np.random.default_rng(23)
    z, y, x = np.indices(SHAPE, dtype=np.float32)
    data = 2000 + 900 * np.sin(x / 5) * np.cos(y / 3) + 40 * z
    return (data + rng.integers(0, 300, SHAPE)).astype(np.uint16)


def multiscales():
    return nz.to_multiscales(nz.to_ngff_image(volume()), scale_factors=FACTORS, chunks=CHUNKS)


def files(root: Path) -> dict[str, bytes]:
    return {f.relative_to(root).as_posix(): f.read_bytes()
            for f in sorted(root.rglob("*")) if f.is_file()}


class Moto:
    """The moto server, read directly (never through the proxy)."""

    def __init__(self, url: str) -> None:
        import boto3

        self.url = url
        self.client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")

    def bucket(self) -> str:
        name = f"ngff{next(_names)}"
        self.client.create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str, prefix: str) -> dict[str, bytes]:
        """Every object under ``prefix/`` (key relative to it) with its bytes."""
        out = {}
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                       Prefix=prefix + "/")
        for page in pages:
            for obj in page.get("Contents", []):
                body = self.client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                out[obj["Key"][len(prefix) + 1:]] = body
        return out

    def upload(self, bucket: str, prefix: str, root: Path) -> None:
        for key, body in files(root).items():
            self.client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=body)


@pytest.fixture(scope="module")
def moto():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield Moto(f"http://{host}:{port}")
    finally:
        server.stop()


#: Remote stores are written through zarr-python's codec pipeline (docs/design.md 3.8); a
#: local store through ``zarrs`` when it is installed, whose zstd may encode a chunk in other
#: bytes (the same values). Local references are written with zarr-python's, to compare bytes.
SAME_PIPELINE = {"NGFF_GPU_CODEC_PIPELINE": "zarr"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """The conversion written locally: what every remote write must hold."""
    out = tmp_path_factory.mktemp("ref") / "v.ome.zarr"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in SAME_PIPELINE.items():
            mp.setenv(k, v)
        nz.to_ngff_zarr(out, multiscales())
    return files(out)


@pytest.fixture
def proxy(moto):
    with FaultProxy(moto.url) as p:
        yield p


ATTEMPTS = 20


def options(proxy: FaultProxy, **retry: float) -> dict:
    """S3 storage options through ``proxy``, with small retry waits (tests stay fast)."""
    return {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": proxy.url, "region_name": "us-east-1"},
            "retry": {"attempts": ATTEMPTS, "backoff": 0.002, "max_backoff": 0.02, **retry}}


def assert_same_objects(moto: Moto, bucket: str, prefix: str, reference: dict[str, bytes]):
    """The store holds exactly the reference's objects, byte for byte."""
    got = moto.objects(bucket, prefix)
    assert sorted(got) == sorted(reference)
    differ = [k for k in reference if got[k] != reference[k]]
    assert not differ, f"objects differ from the local write: {differ[:5]}"


def assert_marker_last(proxy: FaultProxy, bucket: str, prefix: str) -> None:
    """The root's OME metadata was sent only after every chunk was stored."""
    stored = proxy.stored()
    root = f"/{bucket}/{prefix}/zarr.json"
    marker = [e for e in stored if e.method == "PUT" and e.path == root
              and b'"multiscales"' in e.body]
    chunks = [e for e in stored if e.method == "PUT" and "/c/" in e.path]
    assert marker and chunks
    first = min(e.seq for e in marker)
    late = [e.path for e in chunks if e.done > first]
    assert not late, f"chunks stored after the OME metadata was sent: {late[:5]}"


# ------------------------------------------------------------------------- the policy


def test_default_policy_outlasts_a_10_second_burst():
    low, high = RetryPolicy().window()
    assert 10 < low < high < 60  # every operation waits more than 10 s before giving up


@settings(max_examples=60, deadline=None)
@given(attempts=st.integers(1, 30), backoff=st.floats(0, 2), extra=st.floats(0, 30),
       seed=st.integers(0, 2**32 - 1))
def test_waits_are_jittered_capped_and_bounded(attempts, backoff, extra, seed):
    import random

    policy = RetryPolicy(attempts=attempts, backoff=backoff, max_backoff=backoff + extra)
    rng = random.Random(seed)
    waits = [policy.wait(k, rng) for k in range(1, attempts)]
    for k, w in enumerate(waits, 1):
        d = min(policy.max_backoff, backoff * 2.0 ** (k - 1))
        assert d / 2 <= w <= d <= policy.max_backoff
    low, high = policy.window()
    assert low - 1e-9 <= sum(waits) <= high + 1e-9


def _client_error(status: int, code: str):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


def _http_error(status: int):
    import aiohttp

    return aiohttp.ClientResponseError(None, (), status=status)  # type: ignore[arg-type]


def _from(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


def test_classify_what_is_retried_and_what_is_not():
    import aiohttp
    from botocore import exceptions as be

    cases = {
        "throttled": [_client_error(503, "SlowDown"), _client_error(429, "TooManyRequests"),
                      _client_error(503, "503"), _http_error(503), _http_error(429),
                      _from(OSError(16, "Please reduce your request rate."),
                            _client_error(503, "SlowDown")),
                      _from(FileNotFoundError("https://x/a"), _http_error(503))],
        "unavailable": [_client_error(500, "InternalError"), _client_error(502, "502"),
                        _client_error(504, "504"), _client_error(400, "RequestTimeout"),
                        _http_error(500), ConnectionResetError(104, "reset"),
                        ConnectionRefusedError(111, "refused"), TimeoutError(),
                        aiohttp.ServerDisconnectedError(), aiohttp.ClientPayloadError("short"),
                        be.EndpointConnectionError(endpoint_url="http://x"),
                        be.ReadTimeoutError(endpoint_url="http://x"),
                        be.IncompleteReadError(actual_bytes=1, expected_bytes=2),
                        _from(FileNotFoundError("https://x/a"),
                              aiohttp.ServerDisconnectedError())],
        "denied": [_client_error(403, "AccessDenied"), _http_error(403), _http_error(401),
                   _from(PermissionError("Access Denied"), _client_error(403, "AccessDenied")),
                   be.NoCredentialsError()],
        "rejected": [_client_error(400, "BadRequest"), _http_error(400), _http_error(416)],
        "missing": [_client_error(404, "NoSuchKey"), _http_error(404)],
        None: [FileNotFoundError("a"), ValueError("not a store error"), KeyError("k"),
               OSError(28, "No space left on device")],
    }
    for verdict, errors in cases.items():
        for e in errors:
            assert classify(e) == verdict, (e, verdict)


def test_storage_options_are_checked_before_anything_is_written(tmp_path):
    ms = multiscales()
    with pytest.raises(ArgumentTypeError, match="storage_options"):
        nz.to_ngff_zarr("s3://bucket/a.ome.zarr", ms, storage_options="anon")
    with pytest.raises(ArgumentError, match=r"storage_options\['retry'\]: unknown key"):
        nz.to_ngff_zarr("s3://bucket/a.ome.zarr", ms, storage_options={"retry": {"tries": 3}})
    with pytest.raises(ArgumentError, match=r"\['attempts'\] must be at least 1"):
        nz.to_ngff_zarr("s3://bucket/a.ome.zarr", ms, storage_options={"retry": {"attempts": 0}})
    with pytest.raises(ArgumentTypeError, match=r"\['backoff'\] must be a number"):
        nz.from_ngff_zarr("s3://bucket/a.ome.zarr", storage_options={"retry": {"backoff": "1"}})
    out = tmp_path / "local.ome.zarr"  # a local path: checked, then unused (as ngff-zarr does)
    with pytest.raises(ArgumentTypeError, match="storage_options"):
        nz.to_ngff_zarr(out, ms, storage_options=[1])
    assert not out.exists()
    nz.to_ngff_zarr(out, ms, storage_options={"anon": True, "retry": {"attempts": 2}})
    assert nz.validate_store(out, storage_options={"anon": True}) == "0.5"


@pytest.mark.parametrize(("value", "says"), [
    ("{anon: true}", "not valid JSON"), ("[1, 2]", "must be a JSON object"),
    ('"anon"', "must be a JSON object"), ('{"retry": {"attempts": -1}}', "must be at least 1"),
    ('{"retry": [3]}', "must be an object"),
])
def test_storage_options_json_is_an_object(value, says):
    with pytest.raises(ArgumentError, match="--output-storage-options") as info:
        parse_storage_options_json(value, "--output-storage-options")
    assert says in str(info.value)
    assert parse_storage_options_json('{"anon": true, "retry": {"attempts": 3}}') == {
        "anon": True, "retry": {"attempts": 3}}


def test_cli_storage_options_must_be_a_json_object(tmp_path):
    np.save(tmp_path / "v.npy", volume())
    for cmd, flag, value, says in [
        ("convert", "--storage-options", "{anon: true}", "not valid JSON"),
        ("info", "--storage-options", '"anon"', "must be a JSON object"),
    ]:
        args = [tmp_path / "v.npy", tmp_path / "o.ome.zarr"] if cmd == "convert" else \
            [tmp_path / "o.ome.zarr"]
        res = cli(cmd, *args, flag, value)
        assert res.returncode == 1, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and flag in lines[0] and says in lines[0], res.stderr
    assert not (tmp_path / "o.ome.zarr").exists()


def test_store_pickles_with_its_policy_and_without_library_retries():
    import pickle

    store = open_url_store("s3://bucket/a.zarr", {"anon": True, "retry": {"attempts": 4}})
    back = pickle.loads(pickle.dumps(store))
    assert str(back) == "s3://bucket/a.zarr" and back.policy == RetryPolicy(attempts=4)
    for s in (store, back):  # botocore's and s3fs's own retries are off: ours count
        assert s._store.fs.retries == 1
        assert s._store.fs.config_kwargs["retries"] == {"total_max_attempts": 1}


# ------------------------------------------------------------------------- writes


def _write(moto: Moto, proxy: FaultProxy, **kw) -> tuple[str, str]:
    bucket, prefix = moto.bucket(), "v.ome.zarr"
    nz.to_ngff_zarr(f"s3://{bucket}/{prefix}", multiscales(), storage_options=options(proxy, **kw))
    return bucket, prefix


@pytest.mark.parametrize("kinds", [k for k in WRITE_KINDS if k not in ("bad_gateway", "gateway")]
                         + ["bad_gateway+gateway"])
def test_write_survives_20pct_faults_of_one_kind(moto, proxy, reference, kinds):
    """20% of the requests get one kind of fault (502 and 504 share the 20%). One store
    operation may take several requests (a listing, then deletes), so the tests allow
    20 attempts; ``max_in_a_row`` keeps one request's faults below that."""
    kinds = kinds.split("+")
    proxy.set_rates(dict.fromkeys(kinds, 0.20 / len(kinds)), seed=7)
    proxy.max_in_a_row = ATTEMPTS - 1
    bucket, prefix = _write(moto, proxy)
    assert all(proxy.injected[k] >= 3 for k in kinds), proxy.injected
    assert_same_objects(moto, bucket, prefix, reference)
    assert_marker_last(proxy, bucket, prefix)


@pytest.mark.parametrize("total", [0.05, 0.20], ids=["5pct-mixed", "20pct-mixed"])
def test_write_survives_mixed_faults_and_reads_back(moto, proxy, reference, total, tmp_path):
    proxy.set_rates(dict.fromkeys(WRITE_KINDS, total / len(WRITE_KINDS)), seed=11)
    proxy.max_in_a_row = ATTEMPTS - 1
    bucket, prefix = _write(moto, proxy)
    hit = {k for k, n in proxy.injected.items() if n}
    assert sum(proxy.injected.values()) >= 3 and len(hit) >= (2 if total < 0.1 else 5), \
        proxy.injected
    assert_same_objects(moto, bucket, prefix, reference)
    assert_marker_last(proxy, bucket, prefix)
    # Read back through the faults too: every level decodes to the local write's values.
    back = nz.from_ngff_zarr(f"s3://{bucket}/{prefix}", storage_options=options(proxy))
    local = tmp_path / "local.ome.zarr"
    nz.to_ngff_zarr(local, multiscales())  # its own pipeline: the values are compared
    for a, b in zip(back.images, nz.from_ngff_zarr(local).images, strict=True):
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())


def test_write_survives_a_counted_throttling_burst(moto, proxy, reference):
    proxy.burst("slowdown", requests=30, after=15)  # every request, 30 in a row
    bucket, prefix = _write(moto, proxy, attempts=32)
    assert proxy.injected["slowdown"] == 30
    assert_same_objects(moto, bucket, prefix, reference)
    assert_marker_last(proxy, bucket, prefix)


def test_write_survives_a_10_second_throttling_burst(moto, proxy, reference):
    """10 s of throttling (the proxy's clock) against a policy whose waits add up to more
    than 10 s, as the default's do (``test_default_policy_outlasts_a_10_second_burst``;
    the benchmark runs the default itself), but in steps of at most 0.5 s so the test
    ends soon after the burst. Nothing here waits on a clock: every operation retries
    for longer than the burst lasts, and load only lengthens the waits."""
    retry = {"attempts": 60, "backoff": 0.01, "max_backoff": 0.5}
    assert RetryPolicy(**retry).window()[0] > 10
    proxy.burst("slowdown", seconds=10, after=15)
    bucket, prefix = _write(moto, proxy, **retry)
    assert proxy.injected["slowdown"] >= 10
    assert_same_objects(moto, bucket, prefix, reference)
    assert_marker_last(proxy, bucket, prefix)


def test_a_stalled_request_times_out_and_is_retried(moto, proxy, reference):
    proxy.burst("stall", requests=1, after=5, method="PUT")
    bucket, prefix = _write(moto, proxy, timeout=2.0)  # generous: load only slows a try
    assert proxy.injected["stall"] == 1
    assert_same_objects(moto, bucket, prefix, reference)


# ------------------------------------------------------------------------- what is not retried


def _puts(proxy: FaultProxy, path: str) -> int:
    return sum(e.method == "PUT" and e.path == path for e in proxy.log)


@pytest.mark.parametrize(("kind", "error", "says"), [
    ("deny", StoreAccessDeniedError, "access denied"),
    ("bad_request", RemoteStoreError, "the store rejected"),
])
def test_denied_and_bad_requests_are_not_retried(moto, proxy, kind, error, says):
    bucket = moto.bucket()
    proxy.burst(kind, requests=1, after=3, method="PUT")
    with pytest.raises(error, match=says) as info:
        _write_to(bucket, proxy)
    assert type(info.value) is error and f"s3://{bucket}/v.ome.zarr" in str(info.value)
    faulted = [e for e in proxy.log if e.fault == kind]
    assert len(faulted) == 1 and _puts(proxy, faulted[0].path) == 1  # one attempt


def _write_to(bucket: str, proxy: FaultProxy, **kw) -> None:
    nz.to_ngff_zarr(f"s3://{bucket}/v.ome.zarr", multiscales(),
                    storage_options=options(proxy, **kw))


def test_a_missing_key_is_an_answer_not_retried(moto, proxy):
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    store = open_url_store(f"s3://{moto.bucket()}/x", options(proxy))
    for op in (lambda: store.get("nothing/here", default_buffer_prototype()),
               lambda: store.exists("nothing/here")):
        proxy.log.clear()
        assert not sync(op())
        # s3fs asks twice (the key, then a listing: "is it a directory?"), once each
        assert len(proxy.log) == len({(e.method, e.path) for e in proxy.log}) <= 2
        assert {e.status for e in proxy.log} <= {404, 200} and proxy.log[0].status == 404


@pytest.mark.parametrize(("kind", "error", "says"), [
    ("slowdown", StoreThrottledError, "throttling requests (HTTP 503 SlowDown)"),
    ("internal", StoreUnavailableError, "unreachable or failing (HTTP 500 InternalError)"),
    ("reset", StoreUnavailableError, "unreachable or failing"),
])
def test_retries_run_out_with_our_words(moto, proxy, kind, error, says):
    bucket = moto.bucket()
    proxy.outage(kind, after=3, method="PUT")
    with pytest.raises(error) as info:
        _write_to(bucket, proxy, attempts=3)
    msg = str(info.value)
    assert says in msg and "after 3 attempts" in msg and f"s3://{bucket}/v.ome.zarr" in msg
    assert isinstance(info.value, OSError)
    faulted = {e.path for e in proxy.log if e.fault == kind}
    assert faulted and all(_puts(proxy, p) >= 3 for p in faulted)


# ------------------------------------------------------------------------- outage, kill, resume


@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """An OME-Zarr input (the API's local write) and its CLI conversion, written locally."""
    root = tmp_path_factory.mktemp("cli")
    src = root / "src.ome.zarr"
    nz.to_ngff_zarr(src, multiscales())
    want = root / "want.ome.zarr"
    res = cli("convert", src, want, *CLI_FLAGS, env=SAME_PIPELINE)
    assert res.returncode == 0, res.stderr
    return src, files(want)


CLI_FLAGS = ("-q", "--chunks", "32", "--scale-factors", "2,")


def test_total_outage_stops_with_one_line_and_resume_finishes(moto, proxy, cli_reference):
    src, want = cli_reference
    bucket = moto.bucket()
    url = f"s3://{bucket}/v.ome.zarr"
    so = json.dumps(options(proxy, attempts=3))
    proxy.outage("slowdown", after=20)
    res = cli("convert", src, url, *CLI_FLAGS, "--storage-options", so)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"ngff-gpu: error: {url}: the store is throttling requests")
    assert "--resume" in lines[0] and proxy.injected["slowdown"] >= 3
    root = moto.objects(bucket, "v.ome.zarr").get("zarr.json", b"")
    assert b"multiscales" not in root  # the unfinished store never looks complete
    proxy.restore()
    res = cli("convert", src, url, *CLI_FLAGS, "--storage-options", so, "--resume")
    assert res.returncode == 0, res.stderr
    assert_same_objects(moto, bucket, "v.ome.zarr", want)


HOLD_AFTER = 6  # the 7th chunk upload of level 0 (bricks of about 2 chunks: some are done)
KILL_SCRIPT = r"""
import json, sys
import numpy as np
import ngff_gpu as nz
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import write_multiscales
sys.path.insert(0, sys.argv[3])
from test_remote_faults import multiscales
write_multiscales(sys.argv[1], multiscales(), storage_options=json.loads(sys.argv[2]),
                  seams=Seams(brick_budget=200_000))
"""


def test_killed_during_an_upload_resumes_byte_identically(moto, proxy, reference):
    bucket = moto.bucket()
    url = f"s3://{bucket}/v.ome.zarr"
    hold = proxy.hold("PUT", after=HOLD_AFTER, match="/scale0/image/c/")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH",
                                                                                  "")]))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, url, json.dumps(options(proxy)),
                             str(Path(__file__).parent)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert hold.held.wait(timeout=180), "the writer never reached the upload to hold"
        proc.send_signal(signal.SIGKILL)  # while the upload is in flight
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proxy.release(hold, forward=False)  # the cut upload is never stored
    assert proc.returncode == -signal.SIGKILL
    killed = moto.objects(bucket, "v.ome.zarr")
    assert killed and b"multiscales" not in killed.get("zarr.json", b"")
    held_key = hold.entry.path.split("/v.ome.zarr/", 1)[1]
    assert held_key not in killed  # the upload in flight was never committed
    assert any(k.startswith("scale0/image/c/") for k in killed)  # others were
    proxy.set_rates({"slowdown": 0.05, "reset": 0.05}, seed=3)
    proxy.max_in_a_row = ATTEMPTS - 1
    nz.to_ngff_zarr(url, multiscales(), resume=True, storage_options=options(proxy))
    assert_same_objects(moto, bucket, "v.ome.zarr", reference)


# ------------------------------------------------------------------------- reads


@pytest.fixture
def http_proxy(tmp_path):
    """``tmp_path/www`` served by ``http.server`` on 127.0.0.1, behind a fault proxy."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with FaultProxy(f"127.0.0.1:{server.server_address[1]}") as p:
            yield root, p
    finally:
        server.shutdown()
        server.server_close()


READ_KINDS = ("slowdown", "internal", "bad_gateway", "gateway", "reset", "truncate", "delay")


@pytest.mark.parametrize("scheme", ["http", "s3"])
def test_remote_input_through_faults_converts_like_the_local_input(moto, proxy, http_proxy,
                                                                   cli_reference, tmp_path,
                                                                   scheme):
    src, want = cli_reference
    if scheme == "http":
        root, front = http_proxy
        import shutil

        shutil.copytree(src, root / "src.ome.zarr")
        url = f"{front.url}/src.ome.zarr"
        so = {"retry": options(front)["retry"]}
    else:
        front, bucket = proxy, moto.bucket()
        moto.upload(bucket, "src.ome.zarr", src)
        url, so = f"s3://{bucket}/src.ome.zarr", options(proxy)
    front.set_rates(dict.fromkeys(READ_KINDS, 0.05), seed=5)  # 5% of each kind at once
    front.max_in_a_row = ATTEMPTS - 1
    got = tmp_path / "got.ome.zarr"
    res = cli("convert", url, got, *CLI_FLAGS, "--input-storage-options", json.dumps(so),
              env=SAME_PIPELINE)
    assert res.returncode == 0, res.stderr
    assert sum(front.injected.values()) >= 3, front.injected
    assert files(got) == want


def test_kinds_are_known():
    assert set(WRITE_KINDS) | set(READ_KINDS) | {"deny", "bad_request", "stall"} == set(KINDS)


def test_s3_input_without_options_is_read_anonymously_and_says_so(moto, proxy, cli_reference,
                                                                  tmp_path):
    """ngff-zarr's CLI default: an s3:// input without --storage-options is read
    anonymously; moto's private bucket denies that, and the one line says what to do."""
    src, _ = cli_reference
    bucket = moto.bucket()
    moto.upload(bucket, "src.ome.zarr", src)
    env = {"FSSPEC_S3_ENDPOINT_URL": proxy.url, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    res = cli("convert", f"s3://{bucket}/src.ome.zarr", tmp_path / "o.ome.zarr", *CLI_FLAGS,
              env=env)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "access denied" in lines[0], res.stderr
    assert "read anonymously" in lines[0] and '{"anon": false}' in lines[0]
    denied = [(e.method, e.path) for e in proxy.log if e.status == 403]
    assert denied and len(denied) == len(set(denied))  # each denied once: not retried
