"""Remote stores (``s3://``, ``gs://``, ``https://``...) with our retry policy.

Every URL store ngff_gpu reads or writes is opened here (:func:`open_url_store`): an
fsspec filesystem built from the caller's storage options, inside zarr's
``FsspecStore``, inside a :class:`RetryingStore` that applies the
:class:`RetryPolicy` to every store operation (get, set, delete, exists, list),
for reads and writes alike.

The policy is ours, not the libraries': the S3 client's own retries (botocore's
attempts, s3fs's loop) are turned off on the filesystems built here, so one store
operation is tried ``attempts`` times in all, waiting an exponentially growing,
jittered, capped time between attempts. What is retried and what is not is decided
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

An operation that runs out of attempts, or is denied, raises a
:class:`~ngff_gpu.errors.RemoteStoreError` subclass whose one line names the store,
says in our words what failed (throttled, unreachable, denied, rejected), the key,
and the attempts it took. An upload is one ``PUT`` (or a multipart upload that is
completed last), which the object store commits whole or not at all, so retrying it
never leaves half an object; writes are idempotent (the same key, the same bytes).

Storage options are fsspec's, plus one key of ours, ``"retry"``, an object with
the keys of :class:`RetryPolicy` (``attempts``, ``backoff``, ``max_backoff``,
``timeout``); it is removed before the options reach fsspec.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import FsspecStore, WrapperStore

from ngff_gpu.errors import (
    ArgumentError,
    ArgumentTypeError,
    RemoteStoreError,
    StoreAccessDeniedError,
    StoreBackendMissingError,
    StoreThrottledError,
    StoreUnavailableError,
)

T = TypeVar("T")

#: The storage-option key that holds the retry policy (removed before fsspec sees it).
RETRY_KEY = "retry"
#: URL schemes that are local or in-process: no retries there.
LOCAL_PROTOCOLS = ("file", "local", "memory")

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


# --------------------------------------------------------------------- options


def split_storage_options(storage_options: Any,
                          param: str = "storage_options") -> tuple[dict[str, Any], RetryPolicy]:
    """fsspec's options and our :class:`RetryPolicy` from ``storage_options``.

    Raises
    ------
    ArgumentTypeError
        When ``storage_options`` is not a dict (or None).
    ArgumentError
        For a bad ``"retry"`` entry.
    """
    if storage_options is None:
        return {}, RetryPolicy()
    if not isinstance(storage_options, Mapping):
        raise ArgumentTypeError(f"{param} must be a dict of fsspec options (such as "
                                f'{{"anon": True}}), got {type(storage_options).__name__}')
    options = dict(storage_options)
    policy = RetryPolicy.from_options(options.pop(RETRY_KEY, None))
    return options, policy


def parse_storage_options_json(text: str, option: str = "--storage-options") -> dict[str, Any]:
    """The JSON object given to the CLI's ``option`` (checked like the API's).

    Raises
    ------
    ArgumentError
        Naming ``option``: not valid JSON, not an object, or a bad ``"retry"`` entry.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"{option}: not valid JSON ({exc.msg} at character {exc.pos}): "
                            f"{text!r}") from None
    if not isinstance(value, dict):
        raise ArgumentError(f"{option} must be a JSON object such as '{{\"anon\": true}}', "
                            f"got {text!r}")
    try:
        split_storage_options(value, option)
    except (ArgumentError, ArgumentTypeError) as exc:
        raise ArgumentError(f"{option}: {exc}") from None
    return value


def is_remote_url(store: Any) -> bool:
    """True for an fsspec URL string of a store that is not local or in-process."""
    if not isinstance(store, str) or "://" not in store:
        return False
    return _protocol(store) not in LOCAL_PROTOCOLS


def open_url_store(url: str, storage_options: Mapping[str, Any] | None = None, *,
                   read_only: bool = False) -> RetryingStore:
    """The store of ``url`` with our retry policy around it.

    Raises
    ------
    ArgumentError, ArgumentTypeError
        For bad storage options, or a protocol fsspec does not know (before anything
        is read or written).
    StoreBackendMissingError
        When the package of the URL's protocol (s3fs, gcsfs, aiohttp...) is not
        installed (an ``ImportError``).
    """
    options, policy = split_storage_options(storage_options)
    return RetryingStore(url, options, policy, read_only=read_only)


#: Protocols whose fsspec package the ``[remote]`` extra installs; Azure's (adlfs) it does not.
_REMOTE_EXTRA = ("s3", "s3a", "gs", "gcs", "http", "https")
_AZURE = ("az", "abfs", "abfss", "adl")


def _protocol(url: str) -> str:
    return url.split("::")[-1].split("://", 1)[0].lower()


def _filesystem_options(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """fsspec options for ``url`` with the S3 client's own retries turned off (ours
    count every attempt); a ``config_kwargs["retries"]`` the caller gives is kept."""
    protocol = _protocol(url)
    out = dict(options)
    if protocol in ("s3", "s3a"):
        config = dict(out.get("config_kwargs") or {})
        config.setdefault("retries", {"total_max_attempts": 1})
        out["config_kwargs"] = config
    return out


def _build(url: str, options: dict[str, Any], read_only: bool) -> FsspecStore:
    try:
        store = FsspecStore.from_url(url, storage_options=_filesystem_options(url, options),
                                     read_only=read_only)
    except TypeError as exc:  # an option the filesystem does not take
        raise ArgumentError(f"storage_options for {url}: {exc}") from None
    except ImportError as exc:  # fsspec knows the protocol; its package is missing
        protocol = _protocol(url)
        hint = ("pip install 'ngff-gpu[remote]'" if protocol in _REMOTE_EXTRA else
                "pip install adlfs" if protocol in _AZURE else
                f"install the fsspec implementation of {protocol}://")
        raise StoreBackendMissingError(f"{url}: {exc} ({hint})") from None
    except ValueError as exc:
        if "Protocol not known" not in str(exc):
            raise
        protocol = _protocol(url)
        hint = (" (Azure Blob Storage is az:// or abfs:// through adlfs: pip install adlfs)"
                if protocol == "azure" else "")
        raise ArgumentError(f"{url}: no fsspec file system reads {protocol}:// URLs; "
                            f"ngff_gpu reads and writes s3://, gs://, http(s):// (pip install "
                            f"'ngff-gpu[remote]') and any protocol fsspec knows{hint}") from None
    fs = store.fs
    if "s3" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)) \
            and hasattr(fs, "retries"):
        # s3fs's own loop: one try, ours retry. fsspec caches instances by their options,
        # and ours carry the botocore setting above: only our stores share this one.
        fs.retries = 1
    return store


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


# --------------------------------------------------------------------- the store


class RetryingStore(WrapperStore[FsspecStore]):
    """zarr's ``FsspecStore`` of ``url`` with the :class:`RetryPolicy` on every operation.

    Parameters
    ----------
    url : str
        The store's URL (named in every error).
    options : dict
        fsspec's storage options (without ``"retry"``).
    policy : RetryPolicy
        Attempts and waits.
    read_only : bool
        Open read-only.

    It pickles as its URL, options and policy (a ``dask.distributed`` worker builds
    its own filesystem with the same settings).
    """

    def __init__(self, url: str, options: dict[str, Any], policy: RetryPolicy, *,
                 read_only: bool = False, store: FsspecStore | None = None) -> None:
        super().__init__(store if store is not None else _build(url, options, read_only))
        self.url = url
        self.options = options
        self.policy = policy
        self._rng = random.Random()

    # pickling and copies ------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "options": self.options, "policy": asdict(self.policy),
                "read_only": self.read_only}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state["options"], RetryPolicy(**state["policy"]),  # type: ignore[misc]
                      read_only=state["read_only"])

    def _with_store(self, store: FsspecStore) -> RetryingStore:
        return type(self)(self.url, self.options, self.policy, store=store)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"RetryingStore({self.url!r}, {self.policy})"

    # the retry loop -----------------------------------------------------------------

    async def _retry(self, what: str, key: str, op: Callable[[], Awaitable[T]]) -> T:
        policy = self.policy
        t0 = time.monotonic()
        for attempt in range(1, policy.attempts + 1):
            try:
                if policy.timeout is None:
                    return await op()
                return await asyncio.wait_for(op(), policy.timeout)
            except Exception as exc:  # noqa: BLE001 - classified below
                verdict = classify(exc)
                if verdict is None or verdict == MISSING:
                    raise
                if verdict not in RETRIED or attempt == policy.attempts:
                    raise store_error(self.url, what, key, verdict, exc, attempt,
                                      time.monotonic() - t0) from exc
            await asyncio.sleep(policy.wait(attempt, self._rng))
        raise AssertionError("unreachable")  # pragma: no cover

    # reads --------------------------------------------------------------------------

    async def get(self, key: str, prototype: BufferPrototype,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        return await self._retry("reading", key, lambda: self._store.get(key, prototype,
                                                                          byte_range))

    async def get_partial_values(self, prototype: BufferPrototype,
                                 key_ranges: Iterable[tuple[str, ByteRequest | None]]
                                 ) -> list[Buffer | None]:
        key_ranges = list(key_ranges)
        key = key_ranges[0][0] if key_ranges else ""
        return await self._retry("reading", key, lambda: self._store.get_partial_values(
            prototype, key_ranges))

    async def _get_many(self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
                        ) -> AsyncIterator[tuple[str, Buffer | None]]:
        for key, prototype, byte_range in requests:
            yield key, await self.get(key, prototype, byte_range)

    async def exists(self, key: str) -> bool:
        store = self._store
        path = f"{store.path}/{key}" if store.path else key

        async def op() -> bool:
            # fsspec's _exists turns every error into False; _info raises them.
            try:
                await store.fs._info(path)
            except FileNotFoundError as exc:
                if classify(exc) in RETRIED:
                    raise
                return False
            return True

        return await self._retry("checking", key, op)

    async def getsize(self, key: str) -> int:
        return await self._retry("sizing", key, lambda: self._store.getsize(key))

    async def is_empty(self, prefix: str) -> bool:
        async for _ in self.list_prefix(prefix):
            return False
        return True

    async def _listed(self, what: str, prefix: str,
                      lister: Callable[[], AsyncIterator[str]]) -> list[str]:
        async def op() -> list[str]:
            return [k async for k in lister()]

        return await self._retry(what, prefix, op)

    async def list(self) -> AsyncIterator[str]:  # type: ignore[override]
        for k in await self._listed("listing", "", self._store.list):
            yield k

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:  # type: ignore[override]
        for k in await self._listed("listing", prefix, lambda: self._store.list_prefix(prefix)):
            yield k

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:  # type: ignore[override]
        for k in await self._listed("listing", prefix, lambda: self._store.list_dir(prefix)):
            yield k

    # writes -------------------------------------------------------------------------

    async def set(self, key: str, value: Buffer) -> None:
        await self._retry("writing", key, lambda: self._store.set(key, value))

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        await self._retry("writing", key, lambda: self._store.set_if_not_exists(key, value))

    async def _set_many(self, values: Iterable[tuple[str, Buffer]]) -> None:
        await asyncio.gather(*(self.set(k, v) for k, v in values))

    async def delete(self, key: str) -> None:
        await self._retry("deleting", key, lambda: self._store.delete(key))

    async def delete_dir(self, prefix: str) -> None:
        await self._retry("deleting", prefix, lambda: self._store.delete_dir(prefix))

    async def clear(self) -> None:
        await self._retry("deleting", "", self._store.clear)

