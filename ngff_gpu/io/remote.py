"""Remote stores (``s3://``, ``gs://``, ``https://``...) with our retry policy.

Every URL store ngff_gpu reads or writes is opened here (:func:`open_url_store`): an
fsspec filesystem built from the caller's storage options, inside zarr's
``FsspecStore``, inside a :class:`RetryingStore` that applies the
:class:`~ngff_gpu.io.remote_retry.RetryPolicy` to every store operation (get, set,
delete, exists, list), for reads and writes alike.

The policy is ours, not the libraries': the S3 client's own retries (botocore's
attempts, s3fs's loop) are turned off on the filesystems built here, so one store
operation is tried ``attempts`` times in all, waiting an exponentially growing,
jittered, capped time between attempts. What is retried and what is not is decided
by :func:`~ngff_gpu.io.remote_retry.classify` (:mod:`ngff_gpu.io.remote_retry` lists
both).

An operation that runs out of attempts, or is denied, raises a
:class:`~ngff_gpu.errors.RemoteStoreError` subclass whose one line names the store,
says in our words what failed (throttled, unreachable, denied, rejected), the key,
and the attempts it took. An upload is one ``PUT`` (or a multipart upload that is
completed last), which the object store commits whole or not at all, so retrying it
never leaves half an object; writes are idempotent (the same key, the same bytes).

Storage options are fsspec's, plus one key of ours, ``"retry"``, an object with
the keys of :class:`~ngff_gpu.io.remote_retry.RetryPolicy` (``attempts``, ``backoff``,
``max_backoff``, ``timeout``); it is removed before the options reach fsspec.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any, TypeVar

from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import FsspecStore, WrapperStore

from ngff_gpu.errors import ArgumentError, ArgumentTypeError, StoreBackendMissingError
from ngff_gpu.io.remote_retry import (
    MISSING,
    RETRIED,
    RETRY_KEY,
    RetryPolicy,
    classify,
    store_error,
)

T = TypeVar("T")

#: URL schemes that are local or in-process: no retries there.
LOCAL_PROTOCOLS = ("file", "local", "memory")


# --------------------------------------------------------------------- options


def split_storage_options(storage_options: Any,
                          param: str = "storage_options") -> tuple[dict[str, Any], RetryPolicy]:
    """fsspec's options and our :class:`~ngff_gpu.io.remote_retry.RetryPolicy` from
    ``storage_options``.

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



# --------------------------------------------------------------------- the store


class RetryingStore(WrapperStore[FsspecStore]):
    """zarr's ``FsspecStore`` of ``url`` with the
    :class:`~ngff_gpu.io.remote_retry.RetryPolicy` on every operation.

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

