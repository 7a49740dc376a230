"""A local HTTP server for looking at a store: the store's files and the neuroglancer client.

:class:`ViewServer` (``http.server.ThreadingHTTPServer``, bound to 127.0.0.1) serves

- ``/data/NAME/...``: the files of a store directory, or ``/data/NAME.ozx`` the zip file
  itself, with CORS headers (any origin; ``Range`` allowed, ``Content-Range`` exposed)
  and single HTTP byte ranges (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``: ``206 Partial
  Content`` with ``Content-Range``; ``Accept-Ranges: bytes`` on every file), which
  sharded stores and zip files are read with; a missing file is 404 (Zarr readers
  probe for metadata files that may not exist);
- ``/v/TOKEN/...``: the neuroglancer client that the ``neuroglancer`` Python package
  ships (its ``static/client`` files, read from the installed package: no internet),
  under the path its Python-integration build expects (``/v/<token>/``); the page takes
  its viewer state from the URL fragment (``#!{...}``);
- ``/events/TOKEN`` and ``/state/TOKEN``: what that client's connection to a Python
  server asks for, answered so that it stays quiet (an event stream that sends only
  comments until the server stops; state updates acknowledged and ignored).

Nothing outside the store and the client files is served (paths are resolved and
checked against their root).
"""

from __future__ import annotations

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "ngff-gpu"
_CHUNK = 1 << 20
_TYPES = {".json": "application/json", ".html": "text/html", ".js": "application/javascript",
          ".css": "text/css", ".wasm": "application/wasm", ".map": "application/json",
          ".ozx": "application/zip", ".zip": "application/zip"}


def client_files() -> Any:
    """The folder (an importlib resource) of the neuroglancer client the package ships."""
    try:
        from importlib.resources import files

        folder = files("neuroglancer.static").joinpath("client")
    except ModuleNotFoundError:
        return None
    return folder if folder.joinpath("index.html").is_file() else None


class ViewServer(ThreadingHTTPServer):
    """Serve ``store`` (a directory or an ``.ozx`` file) and the neuroglancer client.

    The socket is bound and listening when the constructor returns (requests queue
    until :meth:`serve_forever` runs them): that is the ready signal.

    Parameters
    ----------
    store : str
        The store directory or ``.ozx`` file.
    port : int
        The port (0: any free one; see :attr:`port`).
    host : str
        The address to bind (default 127.0.0.1: this machine only).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, store: str, port: int = 0, host: str = "127.0.0.1") -> None:
        self.store = os.path.realpath(store)
        self.name = os.path.basename(self.store.rstrip(os.sep)) or "store"
        self.client = client_files()
        self.stopping = threading.Event()
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.server_address[0]}:{self.port}"

    @property
    def data_url(self) -> str:
        """The URL of the store (a directory: with a trailing slash)."""
        tail = "" if os.path.isfile(self.store) else "/"
        return f"{self.base_url}/data/{self.name}{tail}"

    @property
    def viewer_url(self) -> str:
        """The URL of the neuroglancer page (without state)."""
        return f"{self.base_url}/v/{TOKEN}/"

    def stop(self) -> None:
        """End the event streams, stop serving and close the socket."""
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: ViewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # quiet: the CLI prints the link, not every request

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS, POST")
        self.send_header("Access-Control-Allow-Headers", "Range, Content-Type")
        self.send_header("Access-Control-Expose-Headers",
                         "Content-Range, Content-Length, Accept-Ranges, ETag")

    def _empty(self, status: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self._cors()
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's name
        self._empty(204)

    def do_HEAD(self) -> None:  # noqa: N802
        self._get(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._get(body=True)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith(f"/state/{TOKEN}"):
            self._bytes(json.dumps({"g": "0"}).encode(), "application/json", body=True)
        else:
            self._empty(404)

    def _get(self, body: bool) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        from urllib.parse import unquote

        path = unquote(path)
        if path in ("/", f"/v/{TOKEN}"):
            self._empty(302, {"Location": f"/v/{TOKEN}/"})
        elif path.startswith(f"/v/{TOKEN}/"):
            self._client(path[len(f"/v/{TOKEN}/"):] or "index.html", body)
        elif path.startswith(f"/events/{TOKEN}"):
            self._events()
        elif path.startswith("/data/"):
            self._data(path[len("/data/"):], body)
        else:
            self._empty(404)

    def _client(self, name: str, body: bool) -> None:
        folder = self.server.client
        if folder is None or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            self._empty(404)
            return
        item = folder.joinpath(name)
        if not item.is_file():
            self._empty(404)
            return
        self._bytes(item.read_bytes(), _TYPES.get(os.path.splitext(name)[1], "application/octet-stream"),
                    body)

    def _events(self) -> None:
        self.send_response(200)
        self._cors()
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            self.wfile.write(b": ngff-gpu view\n\n")
            self.wfile.flush()
            while not self.server.stopping.wait(15):
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True

    def _bytes(self, data: bytes, kind: str, body: bool) -> None:
        self.send_response(200)
        self._cors()
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _resolve(self, rel: str) -> str | None:
        """The file ``rel`` (``NAME/...``) names inside the store, or None."""
        store, name = self.server.store, self.server.name
        if os.path.isfile(store):
            return store if rel == name else None
        if rel != name and not rel.startswith(name + "/"):
            return None
        inner = rel[len(name):].strip("/")
        full = os.path.realpath(os.path.join(store, *inner.split("/"))) if inner else store
        if full != store and not full.startswith(store + os.sep):
            return None
        return full if os.path.isfile(full) else None

    def _data(self, rel: str, body: bool) -> None:
        full = self._resolve(rel)
        if full is None:
            self._empty(404)
            return
        size = os.path.getsize(full)
        span = _byte_range(self.headers.get("Range"), size)
        if span == "bad":
            self._empty(416, {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
            return
        start, stop = span if span is not None else (0, size)
        self.send_response(206 if span is not None else 200)
        self._cors()
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", _TYPES.get(os.path.splitext(full)[1],
                                                    "application/octet-stream"))
        self.send_header("Content-Length", str(stop - start))
        if span is not None:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        self.end_headers()
        if not body:
            return
        try:
            with open(full, "rb") as fh:
                fh.seek(start)
                left = stop - start
                while left > 0:
                    block = fh.read(min(_CHUNK, left))
                    if not block:
                        break
                    self.wfile.write(block)
                    left -= len(block)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The ``[start, stop)`` of a single-range ``Range`` header; None without one (or
    for a form not handled: several ranges, other units: the whole file is sent);
    ``"bad"`` when it lies outside the file."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if m is None or (not m[1] and not m[2]):
        return None
    if not m[1]:  # suffix: the last n bytes
        n = int(m[2])
        return (max(0, size - n), size) if n > 0 and size > 0 else "bad"
    start = int(m[1])
    stop = min(size, int(m[2]) + 1) if m[2] else size
    if start >= size or stop <= start:
        return "bad"
    return start, stop
