"""Remote inputs and outputs through fsspec, against servers on 127.0.0.1 started here.

Reads: an OME-Zarr directory served over HTTP (``http.server`` in a thread).
Writes: an S3 bucket on a moto server (``ThreadedMotoServer``); the CLI finds
it through ``AWS_ENDPOINT_URL``/``FSSPEC_S3_ENDPOINT_URL`` and dummy credentials.
"""

from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest
from cli_run import cli

import ngff_gpu as nz

pytest.importorskip("aiohttp")
pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")




class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # no access log on stderr
        pass


@pytest.fixture
def http_root(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1; yield (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def s3_env():
    """A moto S3 server on 127.0.0.1 with a bucket ``ngff``; yield the environment to use it."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}",
           "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}"}
    import boto3
    import s3fs

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket="ngff")
    fs = s3fs.S3FileSystem(key="testing", secret="testing",
                           client_kwargs={"endpoint_url": env["AWS_ENDPOINT_URL"],
                                          "region_name": "us-east-1"})
    try:
        yield env, fs
    finally:
        server.stop()


def test_read_ome_zarr_over_http(http_root, tmp_path, rng):
    root, url = http_root
    vol = rng.integers(0, 4000, (8, 32, 32), dtype=np.uint16)
    np.save(tmp_path / "v.npy", vol)
    res = cli("convert", tmp_path / "v.npy", root / "v.ome.zarr", "-q", "--chunks", "16",
              "--scale-factors", "2,")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "from_http.ome.zarr"
    res = cli("convert", f"{url}/v.ome.zarr", out, "-q")
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(nz.from_ngff_zarr(str(out)).images[0].data.compute(), vol)
    info = cli("info", f"{url}/v.ome.zarr")
    assert info.returncode == 0 and "scale1/v" in info.stdout, info.stderr
    missing = cli("convert", f"{url}/nothing.ome.zarr", tmp_path / "n.ome.zarr")
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr


def test_write_to_s3(s3_env, tmp_path, rng):
    env, fs = s3_env
    vol = rng.integers(0, 4000, (8, 32, 32), dtype=np.uint16)
    np.save(tmp_path / "v.npy", vol)
    res = cli("convert", tmp_path / "v.npy", "s3://ngff/v.ome.zarr", "--chunks", "16",
              "--scale-factors", "2,", env=env)
    assert res.returncode == 0, res.stderr
    assert "scale1/v" in res.stdout
    assert fs.exists("ngff/v.ome.zarr/zarr.json")
    local = tmp_path / "copy.ome.zarr"
    fs.get("ngff/v.ome.zarr", str(local), recursive=True)
    assert nz.validate_store(str(local)) == "0.5"
    np.testing.assert_array_equal(nz.from_ngff_zarr(str(local)).images[0].data.compute(), vol)
