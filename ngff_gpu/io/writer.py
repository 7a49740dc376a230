"""Write a Multiscales to an OME-Zarr store (0.5 on Zarr v3, or 0.4 on Zarr v2).

Order of writes, so that a store with OME metadata is always complete:

1. the root group with an in-progress marker (the plan's fingerprint), no OME metadata;
2. every level array, brick by brick through the engine; each finished brick
   is recorded in ``ngff_gpu_progress/pass{p}`` so ``resume=True`` skips it;
3. labels and omero, then the OME metadata, then the progress records are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from ngff_gpu.compute.backends import Backend, check_device, device_free_memory, get_backend
from ngff_gpu.compute.methods import Methods, compute_dtype
from ngff_gpu.dims import SPATIAL_DIMS
from ngff_gpu.errors import (
    ArgumentError,
    ArgumentTypeError,
    DimsError,
    InvalidStoreError,
    StoreExistsError,
)
from ngff_gpu.io.codecs import compressors_for
from ngff_gpu.levels.bricks import brick_bytes, count_bricks, plan_passes
from ngff_gpu.levels.engine import Engine, run_distributed
from ngff_gpu.levels.fallback import run_with_fallback
from ngff_gpu.levels.progress import make_progress
from ngff_gpu.levels.source import Grid, plan_with_read_cache, source_grid
from ngff_gpu.model.metadata import SUPPORTED_VERSIONS, metadata_to_json
from ngff_gpu.model.multiscales import Multiscales
from ngff_gpu.namespace import is_device_array

PROGRESS_GROUP = "ngff_gpu_progress"
IN_PROGRESS_ATTR = "ngff_gpu_in_progress"
DEFAULT_MEMORY_LIMIT = 1 << 30
#: Temporary files of zarr's local store (``<key>.<uuid>.partial``) left by a kill.
_PARTIAL = re.compile(r"\.[0-9a-f]{32}\.partial$")


def parse_bytes(value: int | float | str | None, param: str = "memory_limit") -> int | None:
    """``"2GiB"``, ``"512MB"``, ``1e9`` -> bytes (None stays None).

    Raises
    ------
    ArgumentTypeError
        For a value that is not a number or a string.
    ArgumentError
        For a string that is not a size, or a size that is not positive.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating | str):
        raise ArgumentTypeError(f"{param} must be a number of bytes or a string such as "
                                f"'2GiB', got {value!r}")
    if isinstance(value, str):
        import dask.utils

        try:
            value = dask.utils.parse_bytes(value)
        except (ValueError, TypeError) as exc:
            raise ArgumentError(f"{param}: cannot parse {value!r} (try '2GiB' or '512MB')"
                                ) from exc
    if not np.isfinite(value) or value <= 0:
        raise ArgumentError(f"{param} must be a positive number of bytes, got {value!r}")
    return int(value)


def _refuse_foreign_directory(store: Any) -> None:
    """Never delete a local directory that holds something other than a Zarr store."""
    if isinstance(store, str) and "://" in store:
        return
    if not isinstance(store, (str, os.PathLike)):
        return
    path = os.fspath(store)
    if os.path.isfile(path):
        raise StoreExistsError(f"{path} is a file, not a Zarr store; refusing to overwrite it")
    entries = [e for e in os.listdir(path) if not _PARTIAL.search(e)] if os.path.isdir(path) else []
    if entries and not any(
        os.path.exists(os.path.join(path, m)) for m in ("zarr.json", ".zgroup", ".zattrs")
    ):
        raise StoreExistsError(
            f"{path} is a non-empty directory that is not a Zarr store; refusing to overwrite it"
        )


def _open_root(store: Any, zarr_format: int, overwrite: bool, resume: bool) -> zarr.Group:
    _refuse_foreign_directory(store)
    try:
        existing = zarr.open_group(store, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError, ValueError):
        existing = None
    if existing is not None and not (overwrite or resume):
        raise StoreExistsError(
            f"{store} already holds a Zarr group; pass overwrite=True (CLI: --overwrite) "
            "or resume=True (CLI: --resume)"
        )
    if resume and existing is not None:
        if existing.metadata.zarr_format != zarr_format:
            raise InvalidStoreError(
                f"cannot resume {store}: it is Zarr v{existing.metadata.zarr_format}, "
                f"this write is Zarr v{zarr_format}"
            )
        return zarr.open_group(store, mode="r+")
    return zarr.open_group(store, mode="w", zarr_format=zarr_format)


def _fingerprint(ms: Multiscales, version: str, shards, codec, level) -> str:
    desc = {
        "version": version,
        "dtype": str(ms.images[0].data.dtype),
        "dims": ms.images[0].dims,
        "levels": [[list(lv.shape), list(lv.chunks)] for lv in ms.levels],
        "shards": [list(s) if s else None for s in shards],
        "method": ms.method.value,
        "codec": [codec, level],
        "name": ms.metadata.name,
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


def _shards(ms: Multiscales, chunks_per_shard: Any) -> list[tuple[int, ...] | None]:
    if chunks_per_shard is None:
        return [None] * len(ms.levels)
    dims = ms.images[0].dims
    out = []
    for lv in ms.levels:
        if isinstance(chunks_per_shard, int) and not isinstance(chunks_per_shard, bool):
            cps = [chunks_per_shard if d in SPATIAL_DIMS else 1 for d in dims]
        elif isinstance(chunks_per_shard, Mapping):
            unknown = [d for d in chunks_per_shard if d not in dims]
            if unknown:
                raise DimsError(f"chunks_per_shard names dim(s) {unknown} not in dims {dims}")
            cps = [chunks_per_shard.get(d, 1) for d in dims]
        elif isinstance(chunks_per_shard, Sequence) and not isinstance(chunks_per_shard, str):
            cps = list(chunks_per_shard)
        else:
            raise ArgumentTypeError(f"chunks_per_shard must be an int, a dict {{dim: int}} or "
                                    f"a sequence of ints, got {chunks_per_shard!r}")
        if any(isinstance(c, bool) or not isinstance(c, int | np.integer) for c in cps):
            raise ArgumentTypeError(f"chunks_per_shard {chunks_per_shard!r}: counts must be ints")
        if len(cps) != len(dims) or any(c < 1 for c in cps):
            raise DimsError(f"chunks_per_shard {chunks_per_shard!r} does not fit dims {dims} "
                            "(one positive count per dim)")
        # A shard never needs to be larger than the array (rounded up to chunks).
        out.append(tuple(min(c * p, -(-n // c) * c) for c, p, n in zip(lv.chunks, cps, lv.shape)))
    return out


def codec_pipeline(requested: str = "auto") -> str | None:
    """The zarr codec pipeline class path to write with.

    ``auto`` takes the Rust ``zarrs`` pipeline when it is installed (it encodes
    chunks in parallel outside the GIL; ``NGFF_GPU_CODEC_PIPELINE=zarr`` turns it
    off), ``zarrs`` requires it, ``zarr`` keeps zarr-python's own.
    """
    requested = os.environ.get("NGFF_GPU_CODEC_PIPELINE", requested)
    if requested == "zarr":
        return None
    try:
        import zarrs  # noqa: F401
    except ImportError:
        if requested == "zarrs":
            raise ArgumentError("codec pipeline 'zarrs' requested but zarrs is not installed"
                                ) from None
        return None
    return "zarrs.ZarrsCodecPipeline"


def _create_arrays(root: zarr.Group, ms: Multiscales, shards, compressors, zarr_format: int,
                   resume: bool) -> dict[int, zarr.Array]:
    pipeline = codec_pipeline() if zarr_format == 3 else None
    if pipeline is None:
        return _create_arrays_now(root, ms, shards, compressors, zarr_format, resume)
    # Arrays take their codec pipeline from the config when they are opened.
    with zarr.config.set({"codec_pipeline.path": pipeline}):
        return _create_arrays_now(root, ms, shards, compressors, zarr_format, resume)


def _create_arrays_now(root: zarr.Group, ms: Multiscales, shards, compressors, zarr_format: int,
                       resume: bool) -> dict[int, zarr.Array]:
    arrays = {}
    dtype = ms.images[0].data.dtype
    for lv, ds, shard in zip(ms.levels, ms.metadata.datasets, shards):
        parent = ds.path.rpartition("/")[0]
        if resume and parent:
            root.require_group(parent)  # a kill may have left the array without its group
        if resume and ds.path in root:
            arrays[lv.index] = root[ds.path]
            continue
        kwargs: dict[str, Any] = {}
        if zarr_format == 3:
            kwargs["dimension_names"] = list(ms.images[0].dims)
            if shard is not None:
                kwargs["shards"] = shard
        else:
            kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        arrays[lv.index] = root.create_array(
            ds.path, shape=lv.shape, chunks=lv.chunks, dtype=dtype, compressors=compressors,
            fill_value=0, overwrite=True, **kwargs,
        )
    return arrays


def _markers(root: zarr.Group, counts: list[int], resume: bool,
             plan: list[list[Any]]) -> list[zarr.Array]:
    """One done-flag per brick and pass. On resume, only a complete marker set made
    for the same passes and bricks is trusted; anything else starts over (never skips)."""
    if resume and PROGRESS_GROUP in root:
        g = root[PROGRESS_GROUP]
        try:
            found = [g[f"pass{i}"] for i in range(len(counts))]
            if g.attrs.get("passes") == plan and [m.shape[0] for m in found] == counts:
                return found
        except KeyError:
            pass  # half-created markers: start over
    g = root.create_group(PROGRESS_GROUP, overwrite=True)
    found = [g.create_array(f"pass{i}", shape=(n,), chunks=(1,), dtype="uint8", fill_value=0,
                            compressors=None)
             for i, n in enumerate(counts)]
    g.attrs["passes"] = plan  # last: only complete marker sets carry it
    return found


def _remove_partial_writes(root: zarr.Group) -> None:
    """Delete the temporary ``*.partial`` files an interrupted local write leaves."""
    from zarr.core.sync import sync

    async def run() -> None:
        keys = [k async for k in root.store.list() if _PARTIAL.search(k)]
        for k in keys:
            await root.store.delete(k)

    sync(run())


def _ome_attrs(ms: Multiscales, version: str, omero: dict | None) -> dict[str, Any]:
    entry = metadata_to_json(ms.metadata, version, method=ms.method.value)
    if version == "0.4":
        attrs: dict[str, Any] = {"multiscales": [entry]}
        if omero:
            attrs["omero"] = {"version": "0.4", **omero}
        return attrs
    ome: dict[str, Any] = {"version": "0.5", "multiscales": [entry]}
    if omero:
        ome["omero"] = omero
    return {"ome": ome}


def to_ngff_zarr(
    store: Any,
    multiscales: Multiscales,
    version: str = "0.5",
    overwrite: bool = True,
    chunks_per_shard: int | Mapping[str, int] | None = None,
    codec: str = "zstd",
    codec_level: int | None = None,
    resume: bool = False,
    memory_limit: int | str | None = None,
    device: str = "auto",
    progress: bool = False,
    omero: dict | bool | None = None,
    labels: Mapping[str, Any] | None = None,
    client: Any = None,
) -> None:
    """Compute and write every level of ``multiscales`` to an OME-Zarr store.

    Parameters
    ----------
    store : str, pathlib.Path, zarr store or fsspec URL
        Where to write (anything ``zarr.open_group`` accepts).
    multiscales : Multiscales
        From :func:`to_multiscales`.
    version : {"0.5", "0.4"}
        OME-Zarr version: 0.5 writes Zarr v3 (``dimension_names``, optional
        sharding), 0.4 writes Zarr v2.
    overwrite : bool
        Replace an existing store; if False an existing store raises
        :class:`StoreExistsError`.
    chunks_per_shard : int or dict, optional
        Chunks per shard along each spatial dim (0.5 only).
    codec, codec_level : str, int
        Compressor (see :mod:`ngff_gpu.io.codecs`).
    resume : bool
        Continue an interrupted write of the same plan, skipping finished bricks.
    memory_limit : int or str, optional
        Host bytes for bricks in flight and the read cache of decoded source
        chunks that later bricks still need (default 1 GiB).
    device : {"auto", "cpu", "cuda"}
        Compute backend; device inputs always compute on the device.
    progress : bool
        Show a rich progress bar.
    omero : dict or True, optional
        OME ``omero`` display metadata; True computes windows from the data.
    labels : dict, optional
        ``{name: array or NgffImage}`` label images written under ``labels/`` (MODE).
    client : distributed.Client, optional
        Run bricks as tasks on this client (default: the active client, if any).

    Raises
    ------
    StoreExistsError, InvalidStoreError
        On an existing store without ``overwrite``/``resume``, or a plan that does
        not match the store being resumed.
    ArgumentError, ArgumentTypeError
        On a bad argument (also ``ValueError``/``TypeError``), before anything is written.
    KernelCompileError, BackendUnavailableError
        With ``device="cuda"`` when the CUDA backend fails (``"auto"`` falls back to
        NumPy with one :class:`~ngff_gpu.errors.BackendFallbackWarning`).
    """
    if not isinstance(multiscales, Multiscales):
        raise ArgumentTypeError(f"multiscales must be a Multiscales (from to_multiscales or "
                                f"from_ngff_zarr), got {type(multiscales).__name__}")
    if version not in SUPPORTED_VERSIONS:
        raise ArgumentError(f"version: unsupported OME-Zarr version {version!r}; use '0.4' "
                            "or '0.5'")
    if chunks_per_shard is not None and version == "0.4":
        raise ArgumentError("chunks_per_shard: sharding needs OME-Zarr 0.5 (Zarr v3), "
                            "not version '0.4'")
    zarr_format = 3 if version == "0.5" else 2
    budget = parse_bytes(memory_limit)
    budget = DEFAULT_MEMORY_LIMIT if budget is None else budget
    if budget < 16 << 20:
        raise ArgumentError(f"memory_limit {budget} bytes is too small (at least 16 MiB)")
    check_device(device)
    if omero is not None and not isinstance(omero, bool | Mapping):
        raise ArgumentTypeError(f"omero must be a dict, True or None, got {omero!r}")
    source = multiscales.level0_source()
    dtype = np.dtype(source.dtype)
    shards = _shards(multiscales, chunks_per_shard)
    compressors = compressors_for(codec, codec_level, zarr_format, dtype.itemsize)
    if omero is True:
        from ngff_gpu.io.omero import omero_from_data

        omero = omero_from_data(multiscales.images[0].data, multiscales.images[0].dims)

    root = _open_root(store, zarr_format, overwrite, resume)
    if resume:
        _remove_partial_writes(root)
    fp = _fingerprint(multiscales, version, shards, codec, codec_level)
    attrs = root.attrs.asdict()
    if resume:
        if "ome" in attrs or "multiscales" in attrs:
            if attrs.get("ngff_gpu_fingerprint") == fp:
                return  # already complete
            raise InvalidStoreError(f"cannot resume {store}: it is a complete store of another plan")
        if attrs and attrs.get(IN_PROGRESS_ATTR) != fp:
            raise InvalidStoreError(
                f"cannot resume {store}: it was started with different parameters"
            )
    root.attrs.put({IN_PROGRESS_ATTR: fp})

    levels = multiscales.levels
    grids = [s or lv.chunks for s, lv in zip(shards, levels)]
    ct = compute_dtype(dtype) if multiscales.method is not Methods.MODE else dtype
    level_grids = [Grid.regular(lv.shape, lv.chunks) for lv in levels]  # as written
    if client is None:
        client = _active_client()
    total = sum(int(np.prod(lv.shape)) * dtype.itemsize for lv in levels)

    def write_levels(backend: Backend, shrink: int, retry: bool) -> None:
        """Plan with bricks of ``1/shrink`` of the budget and run every pass on ``backend``."""
        again = resume or retry  # a retry keeps the markers of a matching plan
        passes, read_caches = plan_with_read_cache(
            plan_passes, levels, grids, dtype.itemsize, np.dtype(ct).itemsize, budget,
            lambda host: max(1, brick_budget(host, backend) // shrink),
            lambda p: source_grid(source) if p.source == 0 else level_grids[p.source])
        arrays = _create_arrays(root, multiscales, shards, compressors, zarr_format, again)
        markers = _markers(root, [count_bricks(levels, p) for p in passes], again,
                           [[p.source, p.last, list(p.brick)] for p in passes])
        with make_progress(progress, total, len(levels),
                           sum(count_bricks(levels, p) for p in passes)) as bar:
            for i, p in enumerate(passes):
                done_flags = markers[i][:] if again else np.zeros(markers[i].shape, np.uint8)
                src = source if p.source == 0 else arrays[p.source]
                cost = brick_bytes(levels, p.source, p.last, p.brick, dtype.itemsize,
                                   np.dtype(ct).itemsize)
                bar.start_pass(p)
                if client is not None:
                    run_distributed(client, levels, p, src, arrays, markers[i],
                                    lambda j, f=done_flags: bool(f[j]), device, bar.advance)
                else:
                    engine = Engine(backend, budget, on_brick=bar.advance,
                                    read_cache=read_caches[i])
                    engine.run_pass(levels, p, src, arrays, lambda j, f=done_flags: bool(f[j]),
                                    lambda j, m=markers[i]: m.__setitem__(j, 1), cost)

    on_device = is_device_array(source)
    backend = get_backend("cuda" if on_device else device)
    run_with_fallback(write_levels, backend, "cuda" if on_device or client is not None else device)

    if labels:
        from ngff_gpu.io.labels import write_labels

        write_labels(root, labels, multiscales, version, codec, codec_level, budget, device,
                     write=to_ngff_zarr)
    final = _ome_attrs(multiscales, version, omero if isinstance(omero, dict) else None)
    final["ngff_gpu_fingerprint"] = fp
    del root[PROGRESS_GROUP]
    root.attrs.put(final)


def brick_budget(host_budget: int, backend: Any) -> int:
    """Bytes one brick may use: a third of the host budget (a brick being read, one
    computing, one writing), and on a GPU at most a quarter of the free device memory."""
    per_brick = host_budget // 3
    if backend.on_device:
        per_brick = min(per_brick, device_free_memory(backend) // 4)
    return per_brick


def _active_client() -> Any:
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


