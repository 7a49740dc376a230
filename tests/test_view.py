"""``ngff-gpu view``: the store and the neuroglancer client over HTTP, with CORS and ranges.

The server is started in a thread (its socket listens when the constructor returns:
the ready signal) or, for Ctrl-C, as the CLI in a subprocess (the printed link is the
ready signal); never a sleep.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

import ngff_gpu as nz
from ngff_gpu.cli.view import image_path, link, viewer_state
from ngff_gpu.io.viewer import ViewServer

neuroglancer = pytest.importorskip("neuroglancer")
REPO = Path(__file__).resolve().parents[1]


def fetch(url: str, headers: dict | None = None, method: str = "GET"):
    """(status, headers, body) of a request (HTTP errors too)."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.fixture
def sharded(tmp_path) -> Path:
    data = np.random.default_rng(2).integers(0, 255, (24, 40, 56), dtype=np.uint8)
    image = nz.to_ngff_image(data, dims=["z", "y", "x"], scale={"z": 2.0, "y": 0.5, "x": 0.25},
                             axes_units={"z": "micrometer", "y": "micrometer", "x": "nanometer"},
                             name="cells")
    ms = nz.to_multiscales(image, scale_factors=[2], chunks=8)
    store = tmp_path / "cells.ome.zarr"
    nz.to_ngff_zarr(str(store), ms, chunks_per_shard=2)
    return store


def serve(store: Path):
    server = ViewServer(str(store), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def state_of(url: str) -> dict:
    return json.loads(unquote(url.split("#!", 1)[1]))


def test_view_serves_client_and_shard_ranges(sharded):
    server, thread = serve(sharded)
    try:
        inner, info = image_path(str(sharded))
        url = link(server, viewer_state(server.data_url, info, inner))
        state = state_of(url)
        neuroglancer.ViewerState(state)  # the client's own state schema accepts it
        # x, y, z in that order (x across, y down), spacing in SI units
        assert list(state["dimensions"]) == ["x", "y", "z"]
        assert state["dimensions"]["x"] == [pytest.approx(0.25e-9), "m"]
        assert state["dimensions"]["z"] == [pytest.approx(2e-6), "m"]
        source = state["layers"][0]["source"]
        assert source == f"{server.data_url}|zarr3:"
        # the page and a script it loads, from the neuroglancer package
        status, headers, body = fetch(url.split("#", 1)[0])
        assert status == 200 and headers["Content-Type"] == "text/html"
        script = re.search(rb'src="(main\.[0-9a-f]+\.js)"', body)
        assert script, body[:300]
        status, headers, body = fetch(server.viewer_url + script[1].decode())
        assert status == 200 and len(body) > 100_000
        # metadata through the layer's source URL
        status, headers, body = fetch(source.split("|")[0] + "zarr.json")
        assert status == 200 and json.loads(body)["attributes"]["ome"]["multiscales"]
        assert headers["Access-Control-Allow-Origin"] == "*"
        # a byte range of a shard: 206, Content-Range, CORS
        shard = next(p for p in sorted((sharded / "scale0").rglob("*"))
                     if p.is_file() and "c" in p.relative_to(sharded).parts)
        rel = shard.relative_to(sharded).as_posix()
        whole = shard.read_bytes()
        status, headers, body = fetch(f"{server.data_url}{rel}", {"Range": "bytes=3-20"})
        assert status == 206 and body == whole[3:21]
        assert headers["Content-Range"] == f"bytes 3-20/{len(whole)}"
        assert headers["Accept-Ranges"] == "bytes"
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert "Content-Range" in headers["Access-Control-Expose-Headers"]
        status, headers, body = fetch(f"{server.data_url}{rel}", {"Range": "bytes=-16"})
        assert status == 206 and body == whole[-16:]  # the shard index is read this way
        status, headers, _ = fetch(f"{server.data_url}{rel}", {"Range": f"bytes={len(whole)}-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{len(whole)}"
        status, headers, _ = fetch(f"{server.data_url}{rel}", method="OPTIONS")
        assert status == 204 and "Range" in headers["Access-Control-Allow-Headers"]
        assert fetch(f"{server.data_url}scale0/nope/zarr.json")[0] == 404
        assert fetch(f"{server.base_url}/data/cells.ome.zarr/../../etc/passwd")[0] == 404
        assert fetch(f"{server.base_url}/events/ngff-gpu", method="HEAD")[0] == 200
    finally:
        server.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_view_ozx(sharded, tmp_path):
    zipped = tmp_path / "cells.ozx"
    ms = nz.from_ngff_zarr(str(sharded))
    nz.to_ngff_zarr(str(zipped), ms)
    server, thread = serve(zipped)
    try:
        inner, info = image_path(str(zipped))
        state = state_of(link(server, viewer_state(server.data_url, info, inner)))
        assert state["layers"][0]["source"] == f"{server.base_url}/data/cells.ozx|zip:|zarr3:"
        whole = zipped.read_bytes()
        # the end of central directory, read as the zip reader in the client reads it
        status, headers, body = fetch(f"{server.base_url}/data/cells.ozx", {"Range": "bytes=-200"})
        assert status == 206 and body == whole[-200:] and b"PK\x05\x06" in body
        assert headers["Content-Range"] == f"bytes {len(whole) - 200}-{len(whole) - 1}/{len(whole)}"
    finally:
        server.stop()
        thread.join(timeout=30)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_view_cli_ctrl_c(sharded, inherited):
    """Ctrl-C stops the server, also in a process that inherited SIGINT ignored (a job a
    non-interactive shell started in the background, as CI runners may start the suite)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("NGFF_GPU_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", "ngff_gpu.cli", "view", str(sharded), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_ignore_sigint if inherited == "ignored" else None)
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()  # printed once the socket listens
        assert first.startswith(f"serving {sharded} at http://127.0.0.1:"), first
        assert second.startswith("open in neuroglancer: http://127.0.0.1:"), second
        url = second.split(": ", 1)[1].strip()
        assert fetch(url.split("#", 1)[0])[0] == 200
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and err.strip() == "stopped"


def test_view_bad_store(tmp_path, capsys):
    from ngff_gpu.cli import main

    assert main(["view", str(tmp_path / "missing.ome.zarr")]) == 1
    assert "no such store" in capsys.readouterr().err
    (tmp_path / "plain").mkdir()
    assert main(["view", str(tmp_path / "plain")]) == 1
    assert "not a Zarr group" in capsys.readouterr().err


def test_view_bioformats2raw_container(sharded, tmp_path):
    """A container's root shows its first image (OUTPUT/0)."""
    from ngff_gpu.io.bioformats2raw import to_bioformats2raw_zarr

    ms = nz.from_ngff_zarr(str(sharded))
    container = tmp_path / "both.ome.zarr"
    to_bioformats2raw_zarr(str(container), [ms, ms])
    server = ViewServer(str(container), port=0)
    try:
        inner, info = image_path(str(container))
        assert inner == "0" and info.name == "cells"
        state = state_of(link(server, viewer_state(server.data_url, info, inner)))
        assert state["layers"][0]["source"] == f"{server.data_url}0/|zarr3:"
    finally:
        server.server_close()
