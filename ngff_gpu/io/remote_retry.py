"""Our retry policy for remote stores, and what a store error means.

:class:`RetryPolicy` says how often and how patiently one store operation is tried:
``attempts`` times in all, waiting an exponentially growing, jittered, capped time
between attempts (:meth:`RetryPolicy.wait`). What is retried and what is not is decided
by :func:`classify`:

* retried: HTTP 429, 500, 502, 503 and 504 (S3's ``SlowDown``, ``InternalError``,
  ``ServiceUnavailable``...; S3's 400 ``RequestTimeout``), connection resets and
  refusals, timeouts, and short reads (a body that ends before its length);
* not retried: 403 and 401 (denied, also missing credentials), 404 (a missing key
  is an answer: zarr reads it as "no chunk"), any other 4xx (a bad request), TLS
  errors, a host name that does not exist (the name server's answer ``EAI_NONAME`` or
  ``EAI_NODATA``, a typo in the URL: a :class:`~ngff_gpu.errors.StoreUnavailableError`
  after one attempt; a lookup that could not be made, ``EAI_AGAIN``, is retried), and
  every error that does not come from the store.

:func:`store_error` maps an operation that runs out of attempts, or is denied, to a
:class:`~ngff_gpu.errors.RemoteStoreError` subclass in our words. The store that
applies both is :class:`ngff_gpu.io.remote.RetryingStore`.
"""

from __future__ import annotations

import functools
import random
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ngff_gpu.errors import (
    ArgumentError,
    ArgumentTypeError,
    RemoteStoreError,
    StoreAccessDeniedError,
    StoreThrottledError,
    StoreUnavailableError,
)

#: The storage-option key that holds the retry policy (removed before fsspec sees it).
RETRY_KEY = "retry"

THROTTLED, UNAVAILABLE, DENIED, REJECTED, MISSING, UNRESOLVED = (
    "throttled", "unavailable", "denied", "rejected", "missing", "unresolved")
RETRIED = (THROTTLED, UNAVAILABLE)

_THROTTLE_CODES = {"SlowDown", "SlowDownRead", "SlowDownWrite", "Throttling",
                   "ThrottlingException", "ThrottledException", "RequestThrottled",
                   "RequestLimitExceeded", "TooManyRequests", "TooManyRequestsException",
                   "ProvisionedThroughputExceededException", "RequestThrottledException",
                   "BandwidthLimitExceeded", "ServiceUnavailable", "503"}
_SERVER_CODES = {"InternalError", "InternalFailure", "RequestTimeout", "RequestTimeoutException",
                 "PriorRequestNotComplete", "BadGateway", "GatewayTimeout", "500", "502", "504"}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "InvalidAccessKeyId",
                 "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "AllAccessDisabled",
                 "AccountProblem", "403", "401"}


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one store operation is retried.

    Attempt ``k`` (``k = 1 .. attempts - 1``) is followed by a wait drawn uniformly
    from ``[d/2, d]`` with ``d = min(max_backoff, backoff * 2**(k-1))`` ("equal
    jitter": concurrent clients spread out, and the total wait is bounded on both
    sides, see :meth:`window`).

    Attributes
    ----------
    attempts : int
        Tries of one operation in all (at least 1; 1 means no retry). Default 10.
    backoff : float
        Seconds: the first wait's upper bound ``d`` (default 0.1).
    max_backoff : float
        Seconds: the cap of ``d`` (default 15).
    timeout : float or None
        Seconds one attempt may take before it is abandoned and retried (None, the
        default: only the client's own timeouts apply, for S3 a 5 s connect and a
        15 s read timeout per socket operation).
    """

    attempts: int = 10
    backoff: float = 0.1
    max_backoff: float = 15.0
    timeout: float | None = None

    def __post_init__(self) -> None:
        where = f"storage_options[{RETRY_KEY!r}]"
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ArgumentTypeError(f"{where}['attempts'] must be an int, got {self.attempts!r}")
        if self.attempts < 1:
            raise ArgumentError(f"{where}['attempts'] must be at least 1, got {self.attempts}")
        for name in ("backoff", "max_backoff", "timeout"):
            value = getattr(self, name)
            if value is None and name == "timeout":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ArgumentTypeError(f"{where}[{name!r}] must be a number of seconds, "
                                        f"got {value!r}")
            if not value >= 0 or value == float("inf") or (name == "timeout" and value == 0):
                raise ArgumentError(f"{where}[{name!r}] must be a finite number of seconds "
                                    f"{'> 0' if name == 'timeout' else '>= 0'}, got {value!r}")
        if self.max_backoff < self.backoff:
            raise ArgumentError(f"{where}: max_backoff ({self.max_backoff}) is smaller than "
                                f"backoff ({self.backoff})")

    @classmethod
    def from_options(cls, value: Any) -> RetryPolicy:
        """The policy of a storage options' ``"retry"`` entry (None: the defaults).

        Raises
        ------
        ArgumentTypeError, ArgumentError
            Naming the key, for a value that is not an object, an unknown key or a
            bad value.
        """
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ArgumentTypeError(f"storage_options[{RETRY_KEY!r}] must be an object such as "
                                    f'{{"attempts": 10, "backoff": 0.1}}, got {value!r}')
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(value) - known)
        if unknown:
            raise ArgumentError(f"storage_options[{RETRY_KEY!r}]: unknown key(s) {unknown}; "
                                f"known: {sorted(known)}")
        return cls(**dict(value))

    def wait(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        d = min(self.max_backoff, self.backoff * 2.0 ** (retry - 1))
        return d / 2 + rng.uniform(0, d / 2)

    def window(self) -> tuple[float, float]:
        """The least and the most total wait before an operation gives up (seconds;
        the time the attempts themselves take comes on top)."""
        most = sum(min(self.max_backoff, self.backoff * 2.0 ** (k - 1))
                   for k in range(1, self.attempts))
        return most / 2, most

# --------------------------------------------------------------------- classify


def _chain(exc: BaseException | None) -> Iterable[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


@functools.cache
def _transient_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    import http.client

    types.append(http.client.IncompleteRead)
    try:
        from fsspec.exceptions import FSTimeoutError

        types.append(FSTimeoutError)
    except ImportError:  # pragma: no cover
        pass
    try:
        import aiohttp

        types += [aiohttp.ClientConnectionError, aiohttp.ClientPayloadError]
    except ImportError:  # pragma: no cover
        pass
    try:
        from botocore import exceptions as be

        types += [be.ConnectionError, be.HTTPClientError, be.IncompleteReadError,
                  be.ResponseStreamingError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


@functools.cache
def _denied_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [PermissionError]
    try:
        from botocore import exceptions as be

        types += [be.NoCredentialsError, be.PartialCredentialsError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _is_tls(e: BaseException) -> bool:
    import ssl

    if isinstance(e, ssl.SSLError):
        return True
    names = {c.__name__ for c in type(e).__mro__}
    return bool(names & {"SSLError", "ClientSSLError", "ClientConnectorCertificateError"})


def _status(e: BaseException) -> tuple[int | None, str | None]:
    """(HTTP status, error code) of a client error (botocore, aiohttp), else (None, None)."""
    response = getattr(e, "response", None)
    if isinstance(response, Mapping):  # botocore ClientError
        code = (response.get("Error") or {}).get("Code")
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return (int(status) if status else None), (str(code) if code else None)
    status = getattr(e, "status", None)
    if isinstance(status, int) and type(e).__module__.startswith("aiohttp"):
        return status, None
    return None, None


#: ``getaddrinfo``'s answers that the host does not exist (not ``EAI_AGAIN``: no answer).
_NO_SUCH_HOST = tuple(getattr(socket, n) for n in ("EAI_NONAME", "EAI_NODATA")
                      if hasattr(socket, n))


def _unresolved(e: BaseException) -> bool:
    """A name lookup answered that the host does not exist (``EAI_NONAME``,
    ``EAI_NODATA``; not ``EAI_AGAIN``, a lookup that could not be made)."""
    for cand in (e, getattr(e, "os_error", None)):  # aiohttp keeps it in ``os_error``
        if isinstance(cand, socket.gaierror) and cand.errno in _NO_SUCH_HOST:
            return True
    return False


def _verdict(e: BaseException) -> str | None:
    if _unresolved(e):
        return UNRESOLVED
    if isinstance(e, socket.gaierror) and e.errno == socket.EAI_AGAIN:
        return UNAVAILABLE  # the lookup could not be made (yet)
    status, code = _status(e)
    if status is not None or code is not None:
        if status == 429 or code in _THROTTLE_CODES or status == 503:
            return THROTTLED
        if code in _SERVER_CODES or status in (500, 502, 504) or (status or 0) >= 500:
            return UNAVAILABLE
        if code in _DENIED_CODES or status in (401, 403):
            return DENIED
        if status == 404 or code in ("NoSuchKey", "NoSuchBucket", "404"):
            return MISSING
        return REJECTED
    if _is_tls(e):
        return REJECTED
    if isinstance(e, _denied_types()):
        return DENIED
    if isinstance(e, _transient_types()):
        return UNAVAILABLE
    return None


def classify(exc: BaseException) -> str | None:
    """What a store error means: ``"throttled"``, ``"unavailable"`` (both retried),
    ``"denied"``, ``"rejected"`` (a bad request), ``"missing"``, ``"unresolved"`` (no
    such host: a name lookup's answer, not retried), or None (not an error of the
    store: raised as it is).

    The whole chain of causes is read (fsspec wraps an HTTP 503 in a
    ``FileNotFoundError``, s3fs a ``SlowDown`` in an ``OSError``): a transient cause
    anywhere makes the error transient.
    """
    verdicts = [v for v in (_verdict(e) for e in _chain(exc)) if v is not None]
    for v in (UNRESOLVED, THROTTLED, UNAVAILABLE, DENIED, REJECTED, MISSING):
        if v in verdicts:
            return v
    return None


def _detail(exc: BaseException) -> str:
    """A short description of the last failure, e.g. ``HTTP 503 SlowDown``."""
    for e in _chain(exc):
        status, code = _status(e)
        if status is not None or code is not None:
            text = f"HTTP {status}" if status else "HTTP"
            return f"{text} {code}" if code and code != str(status) else text
    for e in _chain(exc):
        if isinstance(e, _transient_types() + _denied_types()):
            msg = " ".join(str(e).split())
            name = type(e).__name__
            return f"{name}: {msg[:120]}" if msg else name
    msg = " ".join(str(exc).split())
    return msg[:120] or type(exc).__name__


def store_error(url: str, what: str, key: str, verdict: str, exc: BaseException,
                attempts: int, seconds: float) -> RemoteStoreError:
    """The typed error of a failed store operation, in our words."""
    detail = _detail(exc)
    tried = f"after {attempts} attempt{'s' if attempts != 1 else ''} in {seconds:.1f} s"
    where = f"{what} {key!r}" if key else what
    if verdict == THROTTLED:
        return StoreThrottledError(f"{url}: the store is throttling requests ({detail}); gave "
                                   f"up {where} {tried}")
    if verdict == UNRESOLVED:
        return StoreUnavailableError(f"{url}: the store's host name does not resolve "
                                     f"({detail}); gave up {where} {tried}, not retried: the "
                                     "name server answered that no such host exists")
    if verdict == UNAVAILABLE:
        return StoreUnavailableError(f"{url}: the store is unreachable or failing ({detail}); "
                                     f"gave up {where} {tried}")
    if verdict == DENIED:
        return StoreAccessDeniedError(f"{url}: access denied {where} ({detail}); check the "
                                      "credentials and the storage options")
    return RemoteStoreError(f"{url}: the store rejected {where} ({detail})")
