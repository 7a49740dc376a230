"""``ngff-gpu view STORE``: look at an OME-Zarr store in neuroglancer, served from this machine."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any
from urllib.parse import quote

from ngff_gpu.cli._common import PROG, HelpFormatter

EPILOG = f"""examples:
  {PROG} view volume.ome.zarr
  {PROG} view volume.ozx --port 8080

Serves STORE and the neuroglancer client that the 'neuroglancer' package ships
(pip install 'ngff-gpu[view]'; no internet needed) on 127.0.0.1, and prints a
link that opens STORE in it, x/y/z shown as the image's x/y/z. Ctrl-C stops it.
"""

#: Units of OME-Zarr axes as neuroglancer's (SI base unit, factor).
_SI = {"angstrom": ("m", 1e-10), "picometer": ("m", 1e-12), "nanometer": ("m", 1e-9),
       "micrometer": ("m", 1e-6), "millimeter": ("m", 1e-3), "centimeter": ("m", 1e-2),
       "meter": ("m", 1.0), "kilometer": ("m", 1e3), "inch": ("m", 0.0254),
       "foot": ("m", 0.3048), "nanosecond": ("s", 1e-9), "microsecond": ("s", 1e-6),
       "millisecond": ("s", 1e-3), "second": ("s", 1.0), "minute": ("s", 60.0),
       "hour": ("s", 3600.0), "day": ("s", 86400.0)}


def add_parser(sub: Any) -> None:
    """Register ``view``."""
    p = sub.add_parser("view", help="look at an OME-Zarr store in neuroglancer (local server)",
                       description="Serve an OME-Zarr store (a directory or a .ozx file) with CORS "
                                   "and HTTP range requests on 127.0.0.1, together with the "
                                   "neuroglancer client, and print a link that opens it.",
                       epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("store", metavar="STORE", help="an OME-Zarr image: a directory or a .ozx file")
    p.add_argument("--port", type=int, default=8000,
                   help="port to listen on (default 8000; 0 picks a free one)")
    p.set_defaults(func=run)


def image_path(store: str) -> tuple[str, Any]:
    """The image inside ``store`` (``""``: the root; ``"0"``: the first image of a
    bioformats2raw container) and its :func:`ngff_gpu.cli.info.store_info`."""
    from ngff_gpu.cli.info import store_info
    from ngff_gpu.errors import InvalidStoreError

    try:
        return "", store_info(store)
    except InvalidStoreError as first:
        inner = os.path.join(store, "0")
        if os.path.isdir(inner):
            try:
                return "0", store_info(inner)
            except InvalidStoreError:
                pass
        raise first


def viewer_state(source: str, info: Any, inner: str = "") -> dict[str, Any]:
    """The neuroglancer state that shows the image at ``source`` (a data-source URL).

    Global dimensions are ``x, y, z`` (then ``t``) in that order, each with level 0's
    spacing in SI units, so the panels show x across, y down and z in depth; the
    channel axis stays the layer's own (neuroglancer's ``c'``).
    """
    scale = info.levels[0].scale
    dims: dict[str, list[Any]] = {}
    for name in ("x", "y", "z", "t"):
        if name not in info.axes:
            continue
        i = info.axes.index(name)
        unit, factor = _SI.get(info.units[i] or "", ("", 1.0))
        dims[name] = [float(scale[i]) * factor, unit]
    kind = "zarr3" if info.version == "0.5" else "zarr2"
    url = source.rstrip("/") + (f"/{inner}" if inner else "") + "/"
    if source.lower().endswith(".ozx"):
        url = f"{source}|zip:{inner + '/' if inner else ''}"
    spatial = [d for d in ("x", "y", "z") if d in info.axes]
    return {
        "dimensions": dims,
        "layers": [{"type": "image", "source": f"{url}|{kind}:", "name": info.name or "image"}],
        "selectedLayer": {"layer": info.name or "image", "visible": True},
        "layout": "4panel" if len(spatial) == 3 else "xy",
    }


def link(server: Any, state: dict[str, Any]) -> str:
    """The URL of the served neuroglancer page with ``state`` in its fragment."""
    text = json.dumps(state, separators=(",", ":"))
    return f"{server.viewer_url}#!{quote(text, safe='')}"


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (then exit 0)."""
    from ngff_gpu.errors import ArgumentError, InvalidStoreError
    from ngff_gpu.io.viewer import ViewServer, client_files

    store = args.store.rstrip("/") or args.store
    if "://" in store:
        raise ArgumentError(f"{store}: view serves local stores (a directory or a .ozx file)")
    if not os.path.exists(store):
        raise InvalidStoreError(f"{store}: no such store")
    if not 0 <= args.port <= 65535:
        raise ArgumentError(f"--port {args.port}: must be 0 to 65535")
    if client_files() is None:
        raise ArgumentError("view needs the neuroglancer client: pip install 'ngff-gpu[view]'")
    inner, info = image_path(store)
    try:
        server = ViewServer(store, port=args.port)
    except OSError as exc:
        raise ArgumentError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc} "
                            "(choose another with --port)") from exc
    url = link(server, viewer_state(server.data_url, info, inner))
    # Serving until Ctrl-C (SIGINT) is this command's contract, also when the process
    # inherited SIGINT ignored (a job a non-interactive shell started in the background).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"serving {store} at {server.data_url} (Ctrl-C stops)")
    print(f"open in neuroglancer: {url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr, flush=True)
    finally:
        server.stopping.set()
        server.server_close()
    return 0
