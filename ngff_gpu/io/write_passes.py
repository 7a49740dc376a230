"""The write loop: a planned write run in its store session, pass by pass.

:func:`run_write` is what :func:`ngff_gpu.io.writer.write_multiscales` runs once it
has planned and checked everything: inside the
:class:`~ngff_gpu.io.session.StoreSession` it creates every level array, plans the
levels copied raw (:mod:`ngff_gpu.io.rawcopy`) and the passes of each segment
(:func:`plan_segment`), runs every pass brick by brick through the engine (or on a
``dask.distributed`` client), falling back from the GPU when it must
(:mod:`ngff_gpu.levels.fallback`), then writes the label images' metadata, the
matrices and the root's OME metadata last (:meth:`StoreSession.finalize`).

Here too are what the loop runs on and reports: :class:`WriteJob` (one pyramid to
write), :class:`Seams` (what a caller may replace), :class:`PlannedPass` and
:class:`WriteReport`, and :func:`ome_attrs` (the OME attributes of a job's group).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ngff_gpu.compute.backends import Backend, device_free_memory
from ngff_gpu.compute.methods import Methods, compute_dtype
from ngff_gpu.io.guards import naming_arrays
from ngff_gpu.io.labels import colors_for, image_label, labels_group_attrs, unique_values
from ngff_gpu.io.matrices import write_matrices
from ngff_gpu.io.rawcopy import RawLevels, copy_file
from ngff_gpu.io.read_pipeline import parallel_source
from ngff_gpu.io.session import StoreSession
from ngff_gpu.levels.bricks import Pass, brick_bytes, count_bricks, plan_passes
from ngff_gpu.levels.derive import Segment
from ngff_gpu.levels.engine import Engine, WriteFn, run_distributed, write_region
from ngff_gpu.levels.fallback import run_with_fallback
from ngff_gpu.levels.plan import LevelPlan
from ngff_gpu.levels.progress import make_progress
from ngff_gpu.levels.schedule import plan_with_read_cache
from ngff_gpu.levels.source import Grid, usable_grid
from ngff_gpu.model.metadata_json import metadata_to_json
from ngff_gpu.model.multiscales import Multiscales
from ngff_gpu.model.transforms_json import MatrixArrays

#: ``memory_limit`` when the caller gives none (:attr:`Seams.default_memory_limit`).
DEFAULT_MEMORY_LIMIT = 1 << 30


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
    """What :func:`~ngff_gpu.io.writer.write_multiscales` did.

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
class WriteJob:
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


def ome_attrs(job: WriteJob, version: str, omero: dict | None,
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


def run_write(session: StoreSession, report: WriteReport, jobs: list[WriteJob],
              image: WriteJob, fp: str, version: str, resume: bool,
              compressors: dict[str, Any], budget: int, backend: Backend, on_device: bool,
              device: str, progress: bool, image_attrs: dict[str, Any],
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
            runs: list[tuple[WriteJob, PlannedPass, int, int]] = []
            for job in jobs:
                dtype = np.dtype(job.ms.images[0].data.dtype)
                for seg in job.segments:
                    runs += [(job, *r) for r in plan_segment(job, seg, dtype, budget, per_brick,
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
            groups.append((job.group, ome_attrs(job, version, None,
                                                {"image-label": image_label(version, colors)})))
        if labels:
            groups.append(("labels", labels_group_attrs(version, [j.group[7:] for j in jobs[1:]])))
        if matrix_arrays:
            write_matrices(session.root, matrix_arrays)
        session.finalize(groups, image_attrs, consolidate=consolidate)
    return report


def plan_segment(job: WriteJob, seg: Segment, dtype: np.dtype, budget: int,
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
