"""Write a Multiscales to an OME-Zarr store (0.5 on Zarr v3, or 0.4 on Zarr v2).

The plan comes from the Multiscales as it is (:mod:`ngff_gpu.levels.derive`):
each level is written as ``images[k].data`` holds it, with its dask chunks, at
its dataset path; levels still derived lazily from the level before are computed
by the engine. Label images are checked before anything is written and are
written in the same store session.

Order of writes (:class:`~ngff_gpu.io.session.StoreSession`), so that a store
with OME metadata is always complete:

1. the root group with an in-progress marker (the plan's fingerprint), no OME metadata;
2. every level array of the image and of its labels, brick by brick through the
   engine; each finished brick is recorded so ``resume=True`` skips it;
3. each label image's metadata (``multiscales`` and ``image-label`` in one put),
   the ``labels`` group, then the root's OME metadata last.

:func:`to_ngff_zarr` is the public entry; :func:`write_multiscales` takes the same
options plus :class:`~ngff_gpu.io.write_passes.Seams` (the engine's write function, the
session class, a fixed brick budget) and returns a
:class:`~ngff_gpu.io.write_passes.WriteReport` of the plan it ran. This module checks
the options and plans the write (one :class:`~ngff_gpu.io.write_passes.WriteJob` per
pyramid, its fingerprint, the OME metadata) before the store is touched; the write loop
itself is :func:`ngff_gpu.io.write_passes.run_write`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ngff_gpu.compute.backends import check_device, get_backend
from ngff_gpu.dims import spatial_dims
from ngff_gpu.errors import ArgumentError, ArgumentTypeError, DimsError
from ngff_gpu.io.append import (
    bind_kept,
    check_start_level,
    open_kept_levels,
    refuse_overwrite_of_read_store,
    refuse_reading_replaced,
)
from ngff_gpu.io.codecs import compressors_for, user_compressors
from ngff_gpu.io.guards import disk_full, refuse_unreachable_store
from ngff_gpu.io.labels import label_pyramids
from ngff_gpu.io.matrices import refuse_occupied_matrix_paths
from ngff_gpu.io.remote import is_remote_url, open_url_store, split_storage_options
from ngff_gpu.io.replace import IN_PLACE, local_path
from ngff_gpu.io.session import (  # noqa: F401 - re-exported names
    IN_PROGRESS_ATTR,
    PROGRESS_GROUP,
    check_root_attributes,
    codec_pipeline,
    refuse_stale_consolidated,
)
from ngff_gpu.io.write_passes import Seams, WriteJob, WriteReport, ome_attrs, run_write
from ngff_gpu.levels.derive import level_plans, plan_segments
from ngff_gpu.levels.plan import LevelPlan
from ngff_gpu.model.metadata import RFC3_VERSION
from ngff_gpu.model.multiscales import Multiscales
from ngff_gpu.model.omero import omero_json
from ngff_gpu.model.rules import check_writable
from ngff_gpu.model.transforms import uses_rfc5
from ngff_gpu.model.transforms_json import MatrixArrays
from ngff_gpu.namespace import is_device_array


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


def shard_shapes(plans: list[LevelPlan], dims: list[str], chunks_per_shard: Any,
                 types: Mapping[str, Any] | None = None) -> list[tuple[int, ...] | None]:
    """Shard shape per level for ``chunks_per_shard`` (None: no sharding; an int counts
    chunks along the spatial dims, :func:`ngff_gpu.dims.spatial_dims`)."""
    if chunks_per_shard is None:
        return [None] * len(plans)
    spatial = spatial_dims(dims, types)
    out = []
    for lv in plans:
        if isinstance(chunks_per_shard, int) and not isinstance(chunks_per_shard, bool):
            cps = [chunks_per_shard if d in spatial else 1 for d in dims]
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


def _job(group: str, ms: Multiscales, chunks_per_shard: Any,
         kept: Sequence[Any] = ()) -> WriteJob:
    """Plan one pyramid; with ``kept`` (the stored arrays of the levels below
    ``start_level``), only the levels after them, the first computed from the last
    kept level read back from the store when ``ms`` still derives it from that level."""
    plans = level_plans(ms)  # derivation judged on the caller's levels
    shards = shard_shapes(plans, list(ms.images[0].dims), chunks_per_shard,
                          ms.images[0].axes_types)
    if not kept:
        return WriteJob(group, ms, plans, plan_segments(ms, plans), shards)
    s = len(kept)
    bound = bind_kept(ms, kept)
    plans = [dataclasses.replace(lv, step=None) if lv.index < s else lv for lv in plans]
    segments = [seg for seg in plan_segments(bound, plans)
                if seg.first >= s or (seg.first == s - 1 and len(seg.levels) > 1)]
    return WriteJob(group, bound, plans, segments, shards, kept=s)


def _fingerprint(jobs: list[WriteJob], version: str, codec: str, level: int | None) -> str:
    desc = {"version": version, "codec": [codec, level], "images": [
        {
            "group": job.group,
            "name": job.ms.metadata.name,
            "dtype": str(job.ms.images[0].data.dtype),
            "dims": list(job.ms.images[0].dims),
            "levels": [[job.path(lv.index), list(lv.shape), list(lv.chunks),
                        [list(lv.step.factors), lv.step.method.value] if lv.step else None]
                       for lv in job.plans],
            "shards": [list(s) if s else None for s in job.shards],
            **({"kept": job.kept} if job.kept else {}),
        } for job in jobs]}
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


#: The OME-Zarr versions :func:`to_ngff_zarr` writes (0.4 on Zarr v2, the others on v3;
#: 0.9.dev1, RFC-3 axes, only when asked for).
WRITABLE_VERSIONS = ("0.4", "0.5", "0.6", RFC3_VERSION)


def write_multiscales(
    store: Any,
    multiscales: Multiscales,
    *,
    version: str = "0.5",
    overwrite: bool | str = True,
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
    compressors: Any = None,
    metadata_only: bool = False,
    consolidate: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    start_level: int = 0,
    seams: Seams | None = None,
    recompress: bool = False,
) -> WriteReport:
    """:func:`to_ngff_zarr` with its :class:`Seams` and a :class:`WriteReport`.

    Parameters are those of :func:`to_ngff_zarr` (``compressors``: the codec(s) of
    every array, or None for ``codec``; ``consolidate``: write consolidated metadata;
    ``recompress``: encode every level, see :mod:`ngff_gpu.io.rawcopy`; ``start_level``:
    append the levels from it on, :mod:`ngff_gpu.io.append`), plus ``seams`` (default
    :class:`Seams`). A ``.ozx`` store is written to a staging directory, then zipped
    (:mod:`ngff_gpu.io.ozx`); the report is the staged write's.
    """
    from ngff_gpu.io.ozx import is_ozx, write_ozx

    if is_ozx(store):  # RFC-9 zipped OME-Zarr: staged as a directory store, then zipped
        if resume:
            raise ArgumentError(f"{store}: a .ozx archive cannot be resumed; write a .ome.zarr "
                                "directory to resume, or start again with overwrite")
        if metadata_only:
            raise ArgumentError("metadata_only=True is not available for .ozx output")
        if start_level:
            raise ArgumentError("start_level is not available for .ozx output: a zipped "
                                "OME-Zarr is written in one piece.")
        split_storage_options(storage_options)  # checked, unused: a local file
        reports: list[WriteReport] = []
        write_ozx(store, lambda stage: reports.append(write_multiscales(
            stage, multiscales, version=version, overwrite=True,
            chunks_per_shard=chunks_per_shard, codec=codec, codec_level=codec_level,
            memory_limit=memory_limit, device=device, progress=progress, omero=omero,
            labels=labels, client=client, compressors=compressors, consolidate=consolidate,
            seams=seams, recompress=recompress)), overwrite=overwrite, version=version)
        return reports[0]
    seams = seams or Seams()
    multiscales = Multiscales.adopt(multiscales)
    if version not in WRITABLE_VERSIONS:
        raise ArgumentError(f"version: unsupported OME-Zarr version {version!r}; use one of "
                            f"{WRITABLE_VERSIONS}")
    # The axes and vectors the version can hold (RFC-3 axes need 0.9.dev1), first.
    check_writable(multiscales.metadata.to_version(version), version)
    if chunks_per_shard is not None and version == "0.4":
        raise ArgumentError("chunks_per_shard: sharding needs OME-Zarr 0.5 (Zarr v3), "
                            "not version '0.4'")
    if not (isinstance(overwrite, bool) or overwrite == IN_PLACE):
        raise ArgumentError(f"overwrite: {overwrite!r} is not True, False or {IN_PLACE!r}")
    zarr_format = 2 if version == "0.4" else 3
    budget = parse_bytes(memory_limit)
    budget = seams.default_memory_limit if budget is None else budget
    if budget < 16 << 20:
        raise ArgumentError(f"memory_limit {budget} bytes is too small (at least 16 MiB)")
    check_device(device)
    if omero is not None and not isinstance(omero, bool | Mapping):
        raise ArgumentTypeError(f"omero must be a dict, True or None, got {omero!r}")
    if labels is not None and not isinstance(labels, Mapping):
        raise ArgumentTypeError(f"labels must be a dict {{name: array}}, got {labels!r}")
    start_level = check_start_level(multiscales, start_level, overwrite, resume, labels)
    if is_remote_url(store):  # every operation through our retry policy
        store = open_url_store(store, storage_options)
    else:
        split_storage_options(storage_options)  # checked, unused (as ngff-zarr does)
    report = WriteReport(memory_limit=budget)

    # Everything is planned and checked before the store is touched.
    refuse_stale_consolidated(store, zarr_format, overwrite, resume, consolidate)
    kept: list[Any] = []
    if start_level:
        kept = open_kept_levels(store, multiscales, start_level, zarr_format)
        refuse_reading_replaced(multiscales, store, start_level)
    elif overwrite and local_path(store) is None and not resume:
        refuse_overwrite_of_read_store(multiscales, store)  # no atomic replace there
    image = _job("", multiscales, chunks_per_shard, kept)
    jobs = [image]
    if labels:
        for name, lms in label_pyramids(labels, multiscales, image.plans).items():
            jobs.append(_job(f"labels/{name}", lms, chunks_per_shard))
    given = compressors
    compressors = {job.group: user_compressors(
        given, zarr_format, np.dtype(job.ms.images[0].data.dtype).itemsize)
        if given is not None else compressors_for(
        codec, codec_level, zarr_format, np.dtype(job.ms.images[0].data.dtype).itemsize)
                   for job in jobs}
    if omero is None and multiscales.metadata.omero is not None:
        omero = omero_json(multiscales.metadata.omero)
    if omero is True:
        from ngff_gpu.io.omero import omero_from_data

        omero = omero_from_data(multiscales.images[0].data, multiscales.images[0].dims)
    # The OME metadata is written last but made now: metadata JSON cannot hold fails first.
    # 0.6: rotation and affine matrices go to arrays (written just before the metadata).
    matrices = MatrixArrays() if uses_rfc5(version) else None
    image_attrs = ome_attrs(image, version, omero if isinstance(omero, dict) else None,
                            matrices=matrices)
    if multiscales.root_attributes:
        image_attrs = {**check_root_attributes(multiscales.root_attributes), **image_attrs}
    kept_attrs = ome_attrs(image, version, omero if isinstance(omero, dict) else None,
                           levels=start_level) if start_level else None
    if start_level and matrices is not None:
        refuse_occupied_matrix_paths(store, list(matrices.arrays))
    fp = _fingerprint(jobs, version, codec, codec_level)
    on_device = is_device_array(image.segments[0].source)
    backend = get_backend("cuda" if on_device else device)

    if client is None:
        client = _active_client()
    elif client is False:
        client = None
    refuse_unreachable_store(store, client)
    nodes = {job.path(k).split("/")[0] for job in jobs for k in range(len(job.plans))}  # ours
    nodes |= {PROGRESS_GROUP, *(p.split("/")[0] for p in (matrices.arrays if matrices else {}))}
    session = seams.session(store, zarr_format, overwrite=overwrite, resume=resume,
                            nodes=nodes, **({"append": True} if start_level else {}))
    try:
        return run_write(session, report, jobs, image, fp, version, resume, compressors,
                         budget, backend, on_device, device, progress, image_attrs, labels,
                         client, seams, metadata_only, consolidate, recompress, kept_attrs,
                         matrices.arrays if matrices else {})
    except BaseException as exc:
        full = disk_full(exc, local_path(store) or store) if isinstance(exc, Exception) else None
        for e in (exc, full):
            if e is not None:
                # For the CLI's line: was an existing store being replaced (it is intact)?
                e.ngff_gpu_replacing = getattr(session, "replacing", False)  # type: ignore[attr-defined]
        if full is not None:
            raise full from exc
        raise


def _active_client() -> Any:
    """The default ``dask.distributed`` client, if any. A client exists only once
    ``distributed`` has been imported, so without it nothing is imported (the import
    alone takes about 0.3 s)."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None
