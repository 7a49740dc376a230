"""Parallel decoding of Zarr inputs: reopen them through the Rust ``zarrs`` pipeline."""

from __future__ import annotations

import os
import threading
from typing import Any

#: Held around every change of zarr's global config (``zarr.config.set``) and while arrays
#: are opened under it: such a context restores, on exit, the values it found on entry, so
#: two overlapping contexts in two threads (fields of a plate written in parallel) would
#: leave one's setting in force for everyone after both end.
ZARR_CONFIG_LOCK = threading.RLock()


def parallel_source(source: Any) -> Any:
    """``source`` reopened through the Rust ``zarrs`` codec pipeline, which decodes
    the chunks of a read in parallel outside the GIL, when it is a zarr array on a
    store zarrs reads (local files); otherwise ``source`` itself (zarr-python's own
    pipeline still decodes a read's chunks concurrently in threads, and tifffile's
    store decodes tiles in threads). ``NGFF_GPU_CODEC_PIPELINE=zarr`` turns it off.
    A data type in non-native byte order (a big-endian Zarr v2 array) keeps zarr-python's
    pipeline: ``zarrs`` refuses to decode into such a buffer."""
    if os.environ.get("NGFF_GPU_CODEC_PIPELINE") == "zarr":
        return source
    try:
        import zarr
        import zarrs  # noqa: F401
    except ImportError:
        return source
    if not isinstance(source, zarr.Array) or not source.dtype.isnative:
        return source
    from ngff_gpu.io.remote import RetryingStore

    if isinstance(source.store, RetryingStore):
        return source  # remote: zarrs would read around the retry policy (and cannot wrap it)
    name = "ZarrsCodecPipeline"
    if type(source.async_array.codec_pipeline).__name__ == name:
        return source
    try:
        with ZARR_CONFIG_LOCK, zarr.config.set({"codec_pipeline.path": f"zarrs.{name}"}):
            reopened = zarr.open_array(source.store, path=source.path, mode="r")
    except Exception:  # noqa: BLE001 - any failure keeps the array as it was opened
        return source
    if type(reopened.async_array.codec_pipeline).__name__ != name or \
            reopened.shape != source.shape or reopened.dtype != source.dtype:
        return source
    return reopened

