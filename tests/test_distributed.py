"""Bricks as tasks on a dask.distributed cluster: same store as one process, one
writer per chunk/shard."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import zarr

import ngff_gpu as nz
from ngff_gpu.io.write_passes import Seams
from ngff_gpu.io.writer import write_multiscales
from ngff_gpu.levels.bricks import count_bricks, iter_bricks

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


def _volume(shape=(45, 70, 83), seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape, dtype=np.float32)
    smooth = 20000 + 9000 * np.sin(x / 5) * np.cos(y / 3) + 40 * z
    return (smooth + rng.integers(0, 500, shape)).astype("uint16")


def _files(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _arrays(path: Path) -> dict[str, np.ndarray]:
    g = zarr.open_group(path, mode="r")
    return {n: a[...] for n, a in g.members(max_depth=None) if isinstance(a, zarr.Array)}


def _assert_same_store(got: Path, want: Path, sharded: bool):
    fg, fw = _files(got), _files(want)
    assert sorted(fg) == sorted(fw)
    for key in fw:
        # A shard may differ only in the order of its inner chunks (zarr encodes them
        # concurrently); its decoded data is compared below.
        if not (sharded and "/c/" in key):
            assert fg[key] == fw[key], key
    ag, aw = _arrays(got), _arrays(want)
    assert ag.keys() == aw.keys()
    for name in aw:
        assert ag[name].dtype == aw[name].dtype and np.array_equal(ag[name], aw[name]), name


def _write(store, ms, budget, **kwargs):
    """Write with ``budget`` bytes per brick; return the report and ``(levels, grids, passes)``
    of the image (one segment: every level derived from level 0)."""
    report = write_multiscales(store, ms, seams=Seams(brick_budget=budget), **kwargs)
    (seg,) = {id(pp.segment): pp.segment for pp in report.passes}.values()
    return report, (seg.levels, report.passes[0].grids, [pp.pass_ for pp in report.passes])


def _assert_one_writer_per_chunk(levels, grids, passes):
    owner: dict = {}
    n_tasks = 0
    for i, p in enumerate(passes):
        for brick in iter_bricks(levels, p):
            n_tasks += 1
            for k, region in brick.write.items():
                cells = itertools.product(*(range(a // g, -(-b // g))
                                            for (a, b), g in zip(region, grids[k])))
                for cell in cells:
                    key = (k, cell)
                    assert key not in owner, f"level {k} chunk/shard {cell}: bricks " \
                                             f"{owner[key]} and {(i, brick.index)}"
                    owner[key] = (i, brick.index)
    for k, lv in enumerate(levels):  # every chunk/shard of every level has its writer
        n = np.prod([-(-s // g) for s, g in zip(lv.shape, grids[k])])
        assert sum(1 for key in owner if key[0] == k) == n
    return n_tasks


@pytest.fixture(scope="module")
def process_cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=40) as cluster:
        yield cluster


CASES = [("0.5", None), ("0.5", 2), ("0.4", None)]


@pytest.mark.parametrize("version,cps", CASES)
def test_client_passed_matches_single_process(tmp_path, process_cluster, version, cps):
    ms = nz.to_multiscales(_volume(), scale_factors=[2, 4, 8], chunks=8)
    budget = 20_000  # several passes, many bricks (tasks)
    local = tmp_path / "local.ome.zarr"
    _write(local, ms, budget, version=version, chunks_per_shard=cps)
    with distributed.Client(process_cluster) as client:
        dist = tmp_path / "dist.ome.zarr"
        report, (levels, grids, passes) = _write(dist, ms, budget, version=version,
                                                 chunks_per_shard=cps, client=client)
        assert report.client is client
        # Work really ran on both worker processes.
        logs = client.run(lambda dask_worker: len(dask_worker.data) + dask_worker.state.executed_count)
        assert sum(1 for v in logs.values() if v > 0) == 2, logs
    assert len(passes) >= 2
    assert _assert_one_writer_per_chunk(levels, grids, passes) > 10
    assert nz.validate_store(dist) == version
    _assert_same_store(dist, local, sharded=cps is not None)
    assert "ngff_gpu_progress" not in zarr.open_group(dist, mode="r")


def test_active_client_is_used_when_not_passed(tmp_path, process_cluster):
    ms = nz.to_multiscales(_volume(seed=1), scale_factors=[2, 4], chunks=16)
    local = tmp_path / "local.ome.zarr"
    report, _ = _write(local, ms, 50_000)
    assert report.client is None
    with distributed.Client(process_cluster) as client:
        dist = tmp_path / "dist.ome.zarr"
        report, _ = _write(dist, ms, 50_000)
        assert report.client is client
    _assert_same_store(dist, local, sharded=False)
    # Without an active client the engine runs in-process again.
    report, _ = _write(tmp_path / "again.ome.zarr", ms, 50_000)
    assert report.client is None


def test_threaded_cluster_matches_single_process(tmp_path):
    ms = nz.to_multiscales(_volume(seed=2), scale_factors=[{"z": 1, "y": 2, "x": 2},
                                                          {"z": 2, "y": 4, "x": 4}], chunks=8,
                           method="mean")
    local = tmp_path / "local.ome.zarr"
    _write(local, ms, 10_000, chunks_per_shard=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=False,
                                  dashboard_address=":0", silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        dist = tmp_path / "dist.ome.zarr"
        _, (levels, grids, passes) = _write(dist, ms, 10_000, chunks_per_shard=2, client=client)
    assert sum(count_bricks(levels, p) for p in passes) > 10
    _assert_one_writer_per_chunk(levels, grids, passes)
    _assert_same_store(dist, local, sharded=True)


def test_tiff_input_is_read_by_worker_processes(tmp_path, process_cluster):
    """A TIFF input (our tile reader) travels to worker processes by path and reopens there."""
    import tifffile

    from ngff_gpu.io.inputs import open_input
    from ngff_gpu.io.inputs.common import RegionArray

    vol = _volume(seed=3)
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, vol, tile=(16, 16), compression="zlib", photometric="minisblack")
    opened = open_input(str(path), dims=["z", "y", "x"])
    assert isinstance(opened.data, RegionArray)
    ms = nz.to_multiscales(nz.to_ngff_image(opened.data, dims=["z", "y", "x"]),
                           scale_factors=[2, 4], chunks=16)
    local = tmp_path / "local.ome.zarr"
    _write(local, nz.to_multiscales(vol, scale_factors=[2, 4], chunks=16), 50_000)
    with distributed.Client(process_cluster) as client:
        dist = tmp_path / "dist.ome.zarr"
        report, _ = _write(dist, ms, 50_000, client=client)
        assert report.client is client
        # a task writes whole cells of its own: the cluster never runs hand-over bricks
        assert not any(pp.handover for pp in report.passes)
    _assert_same_store(dist, local, sharded=False)
    # the same TIFF in one process takes hand-over bricks, to the same store
    here = tmp_path / "here.ome.zarr"
    report, _ = _write(here, ms, 50_000)
    assert any(pp.handover for pp in report.passes)
    _assert_same_store(here, local, sharded=False)
