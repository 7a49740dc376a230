"""A fault-injecting HTTP proxy on 127.0.0.1, for the tests of remote stores.

It stands in front of one upstream HTTP server (a moto S3 server, an ``http.server``),
forwards each request and, per request, may inject a fault instead:

=============== ==============================================================
kind            what the client sees
=============== ==============================================================
``slowdown``    503 with S3's ``SlowDown`` XML body (the request is not forwarded)
``internal``    500 ``InternalError`` (not forwarded)
``bad_gateway`` 502 (not forwarded)
``gateway``     504 (not forwarded)
``deny``        403 ``AccessDenied`` (not forwarded)
``bad_request`` 400 ``BadRequest`` (not forwarded)
``reset``       the connection is reset (RST) before the request is forwarded
``lost``        the request is forwarded (an upload is stored), then the connection
                is reset: the client never hears the answer
``truncate``    the response is forwarded with its full ``Content-Length`` but only
                half its body, then the connection closes (a short read)
``cut_upload``  only half of the request body is forwarded (with the full
                ``Content-Length``), the upstream connection is dropped, and the
                client's connection is reset: an upload cut in the middle
``delay``       the response is forwarded after ``delay_s`` seconds
``stall``       nothing is answered until the client gives up (closes the connection)
=============== ==============================================================

Which request gets a fault is decided by a hash of ``(seed, method, path, n)`` where
``n`` counts earlier requests with the same method and path: the decision does not
depend on the order in which concurrent requests arrive, so a run with the same
requests gets the same faults. ``max_in_a_row`` bounds the faults one ``(method,
path)`` gets in a row (so a client with more attempts than that always gets through).

Bursts and outages are driven by request counts or by the test, never by a clock
(:meth:`FaultProxy.burst` with ``seconds`` is the one exception, a burst that lasts that
long from its first fault): ``burst(kind, requests=N, after=K)`` faults the N requests
that follow the next K, ``outage(kind, after=K)`` faults every request after the next K
until ``restore()`` (both may count only the requests of one ``method``), and
``hold(method, after=K)`` stops the (K+1)-th matching request once its body has
arrived, sets an event, and keeps it until ``release()`` (forwarded or dropped).

Everything it did is counted: ``injected`` (a Counter by kind), ``requests``, and
``log`` (one :class:`Entry` per request, with the upstream status of forwarded ones);
tests assert that the faults really happened.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import select
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("slowdown", "internal", "bad_gateway", "gateway", "deny", "bad_request", "reset",
         "lost", "truncate", "cut_upload", "delay", "stall")

#: (status, reason, S3 error code, message) of the faults answered by the proxy itself.
_ANSWERS = {
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "internal": (500, "Internal Server Error", "InternalError",
                 "We encountered an internal error. Please try again."),
    "bad_gateway": (502, "Bad Gateway", "BadGateway", "Bad gateway."),
    "gateway": (504, "Gateway Timeout", "GatewayTimeout", "Gateway timeout."),
    "deny": (403, "Forbidden", "AccessDenied", "Access Denied"),
    "bad_request": (400, "Bad Request", "BadRequest", "Bad Request"),
}

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
        "upgrade", "content-length"}


@dataclass
class Entry:
    """One request as the proxy saw it."""

    seq: int  # event number when the request arrived (its body read)
    method: str
    path: str
    fault: str | None
    status: int | None = None  # upstream status of a forwarded request
    done: int | None = None  # event number when the upstream answered
    body: bytes = b""  # request body (uploads)

    @property
    def stored(self) -> bool:
        """True when the upstream accepted a write (PUT/POST/DELETE answered 2xx)."""
        return (self.method in ("PUT", "POST", "DELETE") and self.status is not None
                and 200 <= self.status < 300)


@dataclass
class _Burst:
    kind: str
    after: int  # matching requests let through first
    requests: int | None  # matching requests faulted then (None: until restore())
    seconds: float | None = None  # a timed burst (benchmarks): from its first fault
    method: str | None = None  # only requests with this method match (None: all)
    seen: int = 0
    until: float | None = None


@dataclass
class _Hold:
    method: str
    after: int
    match: str | None = None
    held: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    forward: bool = False
    entry: Entry | None = None


class FaultProxy:
    """Forward HTTP requests to ``upstream`` (``host:port``) and inject faults.

    Parameters
    ----------
    upstream : str
        ``host:port`` or ``http://host:port`` of the server behind the proxy.
    rates : dict, optional
        Probability per request of each fault kind (see the module docstring); their
        sum is at most 1.
    seed : int
        Seed of the per-request decisions.
    max_in_a_row : int, optional
        At most this many rate-drawn faults in a row for one ``(method, path)``.
    delay_s : float
        The delay of a ``delay`` fault.
    methods : iterable of str, optional
        Only requests with these methods get rate-drawn faults (default: all).

    Use as a context manager; ``url`` is the proxy's base URL.
    """

    def __init__(self, upstream: str, rates: dict[str, float] | None = None, seed: int = 0,
                 max_in_a_row: int | None = None, delay_s: float = 0.02,
                 methods: tuple[str, ...] | None = None) -> None:
        up = upstream.split("://", 1)[-1].rstrip("/")
        host, _, port = up.rpartition(":")
        self.upstream = (host, int(port))
        self.seed = seed
        self.max_in_a_row = max_in_a_row
        self.delay_s = delay_s
        self.methods = None if methods is None else {m.upper() for m in methods}
        self.set_rates(rates or {})
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._events = 0
        self.log: list[Entry] = []
        self._seen: Counter[tuple[str, str]] = Counter()
        self._streak: Counter[tuple[str, str]] = Counter()
        self._bursts: list[_Burst] = []
        self._holds: list[_Hold] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._open: set[socket.socket] = set()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    # ------------------------------------------------------------------ control

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; stalled and held requests are let go."""
        self._stop.set()
        with self._lock:
            holds, conns = list(self._holds), list(self._open)
        for h in holds:
            h.released.set()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_rates(self, rates: dict[str, float], seed: int | None = None) -> None:
        """Replace the fault rates (and the seed)."""
        unknown = set(rates) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {KINDS}")
        if sum(rates.values()) > 1 + 1e-9 or any(r < 0 for r in rates.values()):
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1: {rates}")
        self.rates = dict(rates)
        if seed is not None:
            self.seed = seed

    def burst(self, kind: str, requests: int | None = None, after: int = 0,
              seconds: float | None = None, method: str | None = None) -> None:
        """Let the next ``after`` requests (with ``method``, if given) through, then
        fault the ``requests`` that follow with ``kind`` (None: every one until
        :meth:`restore`), or every one for ``seconds`` from the first fault (a timed
        burst: the one clock-driven fault, for benchmarks and the 10 s burst test)."""
        if kind not in KINDS:
            raise ValueError(kind)
        with self._lock:
            self._bursts.append(_Burst(kind, after, requests, seconds,
                                       None if method is None else method.upper()))

    def outage(self, kind: str = "slowdown", after: int = 0, method: str | None = None) -> None:
        """Fault every request after the next ``after`` with ``kind`` until :meth:`restore`."""
        self.burst(kind, None, after, method=method)

    def restore(self) -> None:
        """End every burst and outage."""
        with self._lock:
            self._bursts.clear()

    def hold(self, method: str = "PUT", after: int = 0, match: str | None = None) -> _Hold:
        """Hold the (``after`` + 1)-th request from now on with ``method`` (and ``match``
        in its path, if given) once its body has arrived: ``hold.held`` is set then; the
        request waits for :meth:`release`."""
        h = _Hold(method.upper(), after, match)
        with self._lock:
            self._holds.append(h)
        return h

    def release(self, hold: _Hold, forward: bool = False) -> None:
        """Let a held request go: forwarded upstream, or dropped (connection reset)."""
        hold.forward = forward
        hold.released.set()

    def stored(self) -> list[Entry]:
        """The writes the upstream accepted, in the order it answered them."""
        with self._lock:
            return sorted((e for e in self.log if e.stored), key=lambda e: e.done or 0)

    # ------------------------------------------------------------------ decisions

    def _decide(self, method: str, path: str) -> tuple[Entry, _Hold | None]:
        with self._lock:
            seq = self._event()
            self.requests += 1
            key = (method, path)
            n = self._seen[key]
            self._seen[key] += 1
            hold = None
            for h in self._holds:
                if h.method == method and (h.match is None or h.match in path):
                    if h.after == 0:
                        hold = h  # ``held`` is set by the handler: the body is in
                        break
                    h.after -= 1
            fault = self._burst_fault(method)
            if fault is None and self.rates and (self.methods is None or method in self.methods):
                fault = self._drawn(key, n)
                if fault is not None:
                    self._streak[key] += 1
                    if self.max_in_a_row is not None and self._streak[key] > self.max_in_a_row:
                        fault = None
                if fault is None:
                    self._streak[key] = 0
            if fault is not None:
                self.injected[fault] += 1
            entry = Entry(seq, method, path, fault)
            self.log.append(entry)
            if hold is not None:
                self._holds.remove(hold)
                hold.entry = entry
            return entry, hold

    def _event(self) -> int:
        """The next number of the one sequence that orders arrivals and answers."""
        self._events += 1
        return self._events

    def _answered(self, entry: Entry, status: int) -> None:
        with self._lock:
            entry.status, entry.done = status, self._event()

    def _burst_fault(self, method: str) -> str | None:
        fault = None
        for b in self._bursts:
            if b.method is not None and b.method != method:
                continue
            b.seen += 1
            if fault is not None or b.seen <= b.after:
                continue
            if b.seconds is not None:
                now = time.monotonic()
                if b.until is None:
                    b.until = now + b.seconds
                if now < b.until:
                    fault = b.kind
            elif b.requests is None or b.seen <= b.after + b.requests:
                fault = b.kind
        return fault

    def _drawn(self, key: tuple[str, str], n: int) -> str | None:
        digest = hashlib.blake2b(f"{self.seed}|{key[0]}|{key[1]}|{n}".encode(),
                                 digest_size=8).digest()
        u = struct.unpack(">Q", digest)[0] / 2.0**64
        acc = 0.0
        for kind in KINDS:
            acc += self.rates.get(kind, 0.0)
            if u < acc:
                return kind
        return None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, *args: object) -> None:  # no access log on stderr
        pass

    def setup(self) -> None:
        super().setup()
        with self.owner._lock:
            self.owner._open.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        with self.owner._lock:
            self.owner._open.discard(self.connection)

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    # ------------------------------------------------------------------ one request

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raw = bytearray()
            while True:  # keep the chunked framing: the upstream decodes it
                line = self.rfile.readline()
                raw += line
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, then the blank line
                        t = self.rfile.readline()
                        raw += t
                        if t in (b"\r\n", b"\n", b""):
                            return bytes(raw)
                raw += self.rfile.read(size + 2)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self) -> None:
        owner = self.owner
        body = self._body()
        entry, hold = owner._decide(self.command, self.path)
        entry.body = body if self.command in ("PUT", "POST") else b""
        if hold is not None:
            hold.held.set()
            hold.released.wait()
            if not hold.forward or owner._stop.is_set():
                entry.fault = "held"
                self._reset()
                return
        kind = entry.fault
        if kind in _ANSWERS:
            self._answer(*_ANSWERS[kind])
            return
        if kind == "reset":
            self._reset()
            return
        if kind == "stall":
            self._stall()
            return
        if kind == "cut_upload" and len(body) > 1:
            self._forward_cut(body)
            self._reset()
            return
        if kind == "delay":
            owner._stop.wait(owner.delay_s)
        try:
            status, reason, headers, payload = self._forward(body)
        except OSError:
            self._answer(502, "Bad Gateway", "BadGateway", "upstream unreachable")
            return
        owner._answered(entry, status)
        if kind in ("lost", "cut_upload") or (kind == "truncate" and len(payload) < 2):
            self._reset()
            return
        self.send_response_only(status, reason)
        for k, v in headers:
            if k.lower() not in _HOP:
                self.send_header(k, v)
        if self.command == "HEAD":
            length = dict((k.lower(), v) for k, v in headers).get("content-length")
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(payload)))
        if kind == "truncate":
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.end_headers()
        self.wfile.write(payload)

    def _upstream(self) -> http.client.HTTPConnection:
        host, port = self.owner.upstream
        return http.client.HTTPConnection(host, port, timeout=60)

    def _headers(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k.lower() not in ("connection",
                                                                          "keep-alive")}

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        conn = self._upstream()
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self._headers().items():
                conn.putheader(k, v)
            conn.endheaders(body or None)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, resp.reason, resp.getheaders(), payload
        finally:
            conn.close()

    def _forward_cut(self, body: bytes) -> None:
        """Send the request with its full Content-Length but half its body, then drop."""
        conn = self._upstream()
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self._headers().items():
                conn.putheader(k, v)
            conn.endheaders()
            conn.send(body[: len(body) // 2])
        except OSError:
            pass
        finally:
            sock = conn.sock
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            conn.close()

    def _answer(self, status: int, reason: str, code: str, message: str) -> None:
        payload = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                   f"<Message>{message}</Message><RequestId>faultproxy</RequestId></Error>"
                   ).encode()
        self.send_response_only(status, reason)
        self.send_header("Content-Type", "application/xml")
        if self.command == "HEAD":
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _stall(self) -> None:
        """Answer nothing until the client closes the connection (or the proxy stops)."""
        sock = self.connection
        while not self.owner._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.1)
            if ready:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        break
                except OSError:
                    break
        self._reset()
