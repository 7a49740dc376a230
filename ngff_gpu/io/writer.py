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
options plus :class:`Seams` (the engine's write function, the session class, a
fixed brick budget) and returns a :class:`WriteReport` of the plan it ran.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ngff_gpu.compute.backends import Backend, check_device, device_free_memory, get_backend
from ngff_gpu.compute.methods import Methods, compute_dtype
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
from ngff_gpu.io.guards import disk_full, naming_arrays, refuse_unreachable_store
from ngff_gpu.io.labels import (
    colors_for,
    image_label,
    label_pyramids,
    labels_group_attrs,
    unique_values,
)
from ngff_gpu.io.matrices import refuse_occupied_matrix_paths, write_matrices
from ngff_gpu.io.rawcopy import RawLevels, copy_file
from ngff_gpu.io.read_pipeline import parallel_source
from ngff_gpu.io.remote import is_remote_url, open_url_store, split_storage_options
from ngff_gpu.io.replace import IN_PLACE, local_path
from ngff_gpu.io.session import (  # noqa: F401 - re-exported names
    IN_PROGRESS_ATTR,
    PROGRESS_GROUP,
    StoreSession,
    check_root_attributes,
    codec_pipeline,
    refuse_stale_consolidated,
)
from ngff_gpu.levels.bricks import Pass, brick_bytes, count_bricks, plan_passes
from ngff_gpu.levels.derive import Segment, level_plans, plan_segments
from ngff_gpu.levels.engine import Engine, WriteFn, run_distributed, write_region
from ngff_gpu.levels.fallback import run_with_fallback
from ngff_gpu.levels.plan import LevelPlan
from ngff_gpu.levels.progress import make_progress
from ngff_gpu.levels.schedule import plan_with_read_cache
from ngff_gpu.levels.source import Grid, usable_grid
from ngff_gpu.model.metadata import RFC3_VERSION
from ngff_gpu.model.metadata_json import metadata_to_json
from ngff_gpu.model.multiscales import Multiscales
from ngff_gpu.model.omero import omero_json
from ngff_gpu.model.rules import check_writable
from ngff_gpu.model.transforms import uses_rfc5
from ngff_gpu.model.transforms_json import MatrixArrays
from ngff_gpu.namespace import is_device_array

DEFAULT_MEMORY_LIMIT = 1 << 30


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


@dataclass(frozen=True)
class Seams:
    """What a caller may replace in a write: each a parameter, never a module global.

    Attributes
    ----------
    write : WriteFn
        Writes one region of a level array (the engine's and the distributed
        tasks'); must pickle for a process cluster.
    session : callable
        Builds the :class:`StoreSession` (``session(store, zarr_format,
        overwrite=, resume=)``); a subclass injects store faults.
    brick_budget : int, optional
        Bytes per brick, instead of the share of ``memory_limit`` (forces many
        bricks and passes on small data).
    default_memory_limit : int
        ``memory_limit`` when the caller gives none.
    handover : bool
        Whether one-level passes may run hand-over bricks where they hold less
        (see :mod:`ngff_gpu.levels.schedule`); False plans aligned bricks only.
    raw_copy : callable
        Copies one stored chunk or shard file between two local stores when a level
        is copied raw (:func:`ngff_gpu.io.rawcopy.copy_file`).
    """

    write: WriteFn = write_region
    session: Callable[..., StoreSession] = StoreSession
    brick_budget: int | None = None
    default_memory_limit: int = DEFAULT_MEMORY_LIMIT
    handover: bool = True
    raw_copy: Callable[[str, str], int | None] = copy_file


@dataclass
class PlannedPass:
    """One pass as run: the image group it writes, the segment and the pass."""

    group: str
    segment: Segment
    grids: list[tuple[int, ...]]
    pass_: Pass
    bricks: int
    handover: bool = False


@dataclass
class WriteReport:
    """What :func:`write_multiscales` did.

    Attributes
    ----------
    memory_limit : int
        Host bytes for bricks in flight.
    brick_budget : int
        Bytes one brick was allowed.
    passes : list of PlannedPass
        Every pass of the image and of its labels, in the order they ran.
    client : object
        The ``dask.distributed`` client the bricks ran on, or None.
    already_complete : bool
        A resume found the store complete and wrote nothing.
    raw : RawLevels
        The levels read from Zarr arrays: which were copied raw (with counts), and
        why the others were encoded again (see :mod:`ngff_gpu.io.rawcopy`).
    """

    memory_limit: int
    brick_budget: int = 0
    passes: list[PlannedPass] = field(default_factory=list)
    client: Any = None
    already_complete: bool = False
    raw: RawLevels = field(default_factory=RawLevels)


@dataclass
class _Job:
    """One image pyramid to write: the image at the root, or one label image.
    ``kept`` levels (an append, ``start_level``) are in the store already: read,
    never written."""

    group: str
    ms: Multiscales
    plans: list[LevelPlan]
    segments: list[Segment]
    shards: list[tuple[int, ...] | None]
    kept: int = 0

    def path(self, k: int) -> str:
        p = self.ms.metadata.datasets[k].path
        return f"{self.group}/{p}" if self.group else p


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
         kept: Sequence[Any] = ()) -> _Job:
    """Plan one pyramid; with ``kept`` (the stored arrays of the levels below
    ``start_level``), only the levels after them, the first computed from the last
    kept level read back from the store when ``ms`` still derives it from that level."""
    plans = level_plans(ms)  # derivation judged on the caller's levels
    shards = shard_shapes(plans, list(ms.images[0].dims), chunks_per_shard,
                          ms.images[0].axes_types)
    if not kept:
        return _Job(group, ms, plans, plan_segments(ms, plans), shards)
    s = len(kept)
    bound = bind_kept(ms, kept)
    plans = [dataclasses.replace(lv, step=None) if lv.index < s else lv for lv in plans]
    segments = [seg for seg in plan_segments(bound, plans)
                if seg.first >= s or (seg.first == s - 1 and len(seg.levels) > 1)]
    return _Job(group, bound, plans, segments, shards, kept=s)


def _fingerprint(jobs: list[_Job], version: str, codec: str, level: int | None) -> str:
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


def _ome_attrs(job: _Job, version: str, omero: dict | None,
               extra: dict[str, Any] | None = None, levels: int | None = None,
               matrices: MatrixArrays | None = None) -> dict[str, Any]:
    """The OME attributes of the job's group (``levels``: of its first levels only)."""
    ms = job.ms
    method = ms.method.value if ms.method is not None else None
    meta = ms.metadata
    if levels is not None:
        meta = copy.copy(meta)
        meta.datasets = list(meta.datasets[:levels])
    entry = metadata_to_json(meta, version, method=method, matrices=matrices)
    if not any(lv.step is not None for lv in job.plans):
        entry.pop("metadata", None)  # no level computed here: do not claim our method made them
    if version == "0.4":
        attrs: dict[str, Any] = {"multiscales": [entry]}
        if omero:
            attrs["omero"] = {"version": "0.4", **omero}
        attrs.update(extra or {})
        return attrs
    ome: dict[str, Any] = {"version": version, "multiscales": [entry]}
    if omero:
        ome["omero"] = omero
    ome.update(extra or {})
    return {"ome": ome}


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
    image_attrs = _ome_attrs(image, version, omero if isinstance(omero, dict) else None,
                             matrices=matrices)
    if multiscales.root_attributes:
        image_attrs = {**check_root_attributes(multiscales.root_attributes), **image_attrs}
    kept_attrs = _ome_attrs(image, version, omero if isinstance(omero, dict) else None,
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
        return _write(session, report, jobs, image, fp, version, resume, compressors, budget,
                      backend, on_device, device, progress, image_attrs, labels, client, seams,
                      metadata_only, consolidate, recompress, kept_attrs,
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


def _write(session: StoreSession, report: WriteReport, jobs: list[_Job], image: _Job, fp: str,
           version: str, resume: bool, compressors: dict[str, Any], budget: int,
           backend: Backend, on_device: bool, device: str, progress: bool,
           image_attrs: dict[str, Any],
           labels: Any, client: Any, seams: Seams, metadata_only: bool = False,
           consolidate: bool = False, recompress: bool = False,
           kept_attrs: dict[str, Any] | None = None,
           matrix_arrays: Mapping[str, Any] | None = None) -> WriteReport:
    """The write itself, in ``session`` (which chose the store, holds the lock and
    swaps a replacement in when it is complete); ``metadata_only`` creates the arrays
    and writes no pixels; ``kept_attrs`` (an append) is the root's OME metadata of the
    kept levels, written before the levels after them are replaced."""
    with session:
        if not session.open(fp):
            report.already_complete = True
            return report
        report.client = client
        if kept_attrs is not None:
            session.keep_levels(kept_attrs, [image.path(k) for k in range(image.kept,
                                                                           len(image.plans))],
                                consolidate=consolidate)

        def write_levels(backend: Backend, shrink: int, retry: bool) -> dict[str, list[Any]]:
            """Plan with bricks of ``1/shrink`` of the budget and run every pass on
            ``backend`` (a retry keeps what an earlier attempt wrote: same bytes)."""
            again = resume or retry

            def per_brick(host: int) -> int:
                return seams.brick_budget or max(1, brick_budget(host, backend) // shrink)

            report.brick_budget = per_brick(budget)
            arrays: dict[str, list[Any]] = {}
            for job in jobs:
                dims = list(job.ms.images[0].dims)
                dtype = job.ms.images[0].data.dtype
                arrays[job.group] = [
                    None if lv.index < job.kept else
                    session.array(job.path(lv.index), lv.shape, lv.chunks, dtype,
                                  compressors[job.group], dims=dims, shards=shard, reuse=again)
                    for lv, shard in zip(job.plans, job.shards)]
            if metadata_only:
                return arrays
            # Levels read from a Zarr array stored as they are written: copied raw (not a
            # level an append keeps: it is not written).
            report.raw = RawLevels.plan(
                [(f"{job.group + ' ' if job.group else ''}level {seg.first}", seg.source,
                  arrays[job.group][seg.first]) for job in jobs for seg in job.segments
                 if arrays[job.group][seg.first] is not None],
                refuse="recompress asked" if recompress else
                "a distributed run encodes every chunk" if client is not None else None,
                copy=seams.raw_copy, earlier=report.raw if retry else None)
            write = report.raw.write(seams.write)
            runs: list[tuple[_Job, PlannedPass, int, int]] = []
            for job in jobs:
                dtype = np.dtype(job.ms.images[0].data.dtype)
                for seg in job.segments:
                    runs += [(job, *r) for r in _plan_segment(job, seg, dtype, budget, per_brick,
                                                               client is None and seams.handover)]
            report.passes = [r[1] for r in runs]
            flags = session.progress(
                [r[1].bricks for r in runs],
                [[r[1].group, r[1].segment.first, r[1].pass_.source, r[1].pass_.last,
                  list(r[1].pass_.brick)] + (["handover"] if r[1].handover else [])
                 for r in runs], reuse=again)
            total = sum(int(np.prod(lv.shape)) * np.dtype(job.ms.images[0].data.dtype).itemsize
                        for job in jobs for lv in job.plans[job.kept:])
            n_levels = sum(len(job.plans) - job.kept for job in jobs)
            with make_progress(progress, total, n_levels, sum(r[1].bricks for r in runs)) as bar:
                for (job, planned, cost, read_cache), flag in zip(runs, flags):
                    seg, p = planned.segment, planned.pass_
                    level_arrays = {i: arrays[job.group][seg.first + i]
                                    for i in range(len(seg.levels))
                                    if arrays[job.group][seg.first + i] is not None}
                    src = seg.source if p.source == 0 else level_arrays[p.source]
                    bar.start_pass(p)
                    if again:  # a resume: show the bricks an earlier run finished
                        bar.skip(sum(flag.done(j) for j in range(len(flag))))
                    with naming_arrays(session.store, [job.path(seg.first + i) for i in sorted(
                            level_arrays) if i <= p.last and (i > p.source or i == 0)]):
                        if client is not None:
                            run_distributed(client, seg.levels, p, src, level_arrays, flag.array,
                                            flag.done, device, bar.advance, write=write)
                        else:
                            Engine(backend, budget, on_brick=bar.advance, write=write,
                                   read_cache=read_cache).run_pass(
                                seg.levels, p, parallel_source(src), level_arrays, flag.done,
                                flag.mark, cost, handover=planned.handover)
            return arrays

        arrays = run_with_fallback(write_levels, backend,
                                   "cuda" if on_device or client is not None else device)

        groups = []
        for job in jobs[1:]:
            colors = colors_for(unique_values(arrays[job.group][0]))
            groups.append((job.group, _ome_attrs(job, version, None,
                                                 {"image-label": image_label(version, colors)})))
        if labels:
            groups.append(("labels", labels_group_attrs(version, [j.group[7:] for j in jobs[1:]])))
        if matrix_arrays:
            write_matrices(session.root, matrix_arrays)
        session.finalize(groups, image_attrs, consolidate=consolidate)
    return report


def _plan_segment(job: _Job, seg: Segment, dtype: np.dtype, budget: int,
                  per_brick: Callable[[int], int],
                  allow_handover: bool) -> list[tuple[PlannedPass, int, int]]:
    """The passes of one segment with, per pass, the working bytes of one brick and the
    bytes its read cache may hold (charged to ``budget`` with the rest of the read
    side, see :func:`~ngff_gpu.levels.schedule.plan_with_read_cache`)."""
    grids = [job.shards[k] or job.plans[k].chunks for k in seg.indices]
    ct = _compute_itemsize(dtype, seg)
    written = [Grid.regular(lv.shape, lv.chunks) for lv in seg.levels]  # as written
    src_grid = usable_grid(seg.source, budget)
    passes, mems = plan_with_read_cache(
        plan_passes, seg.levels, grids, dtype.itemsize, ct, budget, per_brick,
        lambda p: src_grid if p.source == 0 else written[p.source], allow_handover)
    return [(PlannedPass(job.group, seg, grids, p, count_bricks(seg.levels, p), mem.handover),
             brick_bytes(seg.levels, p.source, p.last, p.brick, dtype.itemsize, ct), mem.cache)
            for p, mem in zip(passes, mems)]


def _compute_itemsize(dtype: np.dtype, seg: Segment) -> int:
    steps = [lv.step for lv in seg.levels[1:]]
    if steps and all(s.method is Methods.MODE for s in steps):
        return dtype.itemsize
    return np.dtype(compute_dtype(dtype)).itemsize


def brick_budget(host_budget: int, backend: Any) -> int:
    """Bytes one brick may use: a third of the host budget (a brick being read, one
    computing, one writing), and on a GPU at most a quarter of the free device memory."""
    per_brick = host_budget // 3
    if backend.on_device:
        per_brick = min(per_brick, device_free_memory(backend) // 4)
    return per_brick


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
