"""HCS plates: ngff-zarr 0.50's names, what the metadata says while wells are added,
resume after a failure or a kill, and readers (ours, ngff-zarr's, ome-zarr-py's).

Every plate written here is validated with ome-zarr-models (``from_hcs_zarr(validate=True)``
validates the plate, each well and each field image).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask.array as da
import ngff_zarr
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngff_gpu as nz
from ngff_gpu.errors import ArgumentError, InvalidStoreError, StoreExistsError

REPO = Path(__file__).resolve().parents[1]

# ome-zarr-models warns that a 0.5 plate document has no "version" of its own: from 0.5
# the version is ome.version (the spec; ngff-zarr writes it so too).
pytestmark = pytest.mark.filterwarnings("ignore:'version' field not specified")


def plate_layout(rows="AB", cols=("1", "2"), version="0.5", **kw) -> nz.Plate:
    wells = [nz.PlateWell(f"{r}/{c}", i, j) for i, r in enumerate(rows) for j, c in enumerate(cols)]
    return nz.Plate(columns=[nz.PlateColumn(c) for c in cols], rows=[nz.PlateRow(r) for r in rows],
                    wells=wells, version=version, **kw)


def field(rng, shape=(2, 40, 36), dims=("c", "y", "x"), dtype=np.uint16, **kw) -> nz.Multiscales:
    data = rng.integers(0, 1000, shape).astype(dtype)
    return nz.to_multiscales(nz.to_ngff_image(data, dims=list(dims)), [2], **kw)


def pixels(ms) -> np.ndarray:
    return np.asarray(ms.images[0].data)


def attrs_of(group_dir: Path) -> dict:
    if (group_dir / "zarr.json").exists():
        return json.loads((group_dir / "zarr.json").read_text())["attributes"]
    return json.loads((group_dir / ".zattrs").read_text())


def well_paths(group_dir: Path) -> list[str]:
    a = attrs_of(group_dir)
    doc = a["ome"]["well"] if "ome" in a else a["well"]
    return [im["path"] for im in doc["images"]]


# -- write and read back --------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_plate_writer_parallel_round_trip(tmp_path, rng, version):
    """Fields of four wells written by four threads (two per well) read back equal by
    us, ngff-zarr and ome-zarr-py, and the plate validates."""
    plate = plate_layout(version=version, name="screen", field_count=2,
                         acquisitions=[nz.PlateAcquisition(id=0, name="t0")])
    fields = {(w.path, f): field(rng) for w in plate.wells for f in range(2)}
    out = tmp_path / "plate.ome.zarr"
    with nz.HCSPlateWriter(str(out), plate) as writer:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda item: writer.write_well_image(
                item[1], *item[0][0].split("/"), field_index=item[0][1]), fields.items()))
    read = nz.from_hcs_zarr(str(out), validate=True)
    assert read.name == "screen" and read.field_count == 2 and read.metadata.version == version
    assert [w.path for w in read.wells] == ["A/1", "A/2", "B/1", "B/2"]
    assert read.acquisitions == plate.acquisitions
    for (path, f), ms in fields.items():
        well = read.get_well(*path.split("/"))
        assert [im.path for im in well.images] == ["0", "1"]
        assert all(im.acquisition == 0 for im in well.images)
        got = well.get_image(f)
        np.testing.assert_array_equal(pixels(got), pixels(ms))
        np.testing.assert_array_equal(np.asarray(got.images[1].data), np.asarray(ms.images[1].data))
        assert nz.validate_store(str(out / path / str(f))) == version
    # ngff-zarr reads the plate and its fields
    theirs = ngff_zarr.from_hcs_zarr(str(out))
    assert len(theirs.wells) == 4
    np.testing.assert_array_equal(
        np.asarray(theirs.get_well("B", "2").get_image(1).images[0].data),
        pixels(fields[("B/2", 1)]))
    # ome-zarr-py stitches the first field of every well into one plate image
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    node = next(iter(Reader(parse_url(str(out)))()))
    assert node.data[0].shape == (2, 80, 72)
    np.testing.assert_array_equal(np.asarray(node.data[0][:, 40:, :36]),
                                  pixels(fields[("B/1", 0)]))
    # a field opens by its path, as ngff-zarr allows; the plate root names what to open
    np.testing.assert_array_equal(pixels(nz.from_ngff_zarr(f"{out}/A/2/1")), pixels(fields[("A/2", 1)]))
    with pytest.raises(ArgumentError, match="HCS plate with 4 wells"):
        nz.from_ngff_zarr(str(out))
    with pytest.raises(InvalidStoreError, match="not found"):
        nz.from_ngff_zarr(f"{out}/Z/99/0")
    assert not [p for p in out.rglob("*") if ".ngff-gpu" in p.name]  # no lock or temporary left


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_plates(tmp_path_factory, data):
    """Plates of random rows, columns, wells, fields and field shapes validate and read
    back the pixels written; the plate lists exactly the wells that got a field."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    version = data.draw(st.sampled_from(["0.4", "0.5"]))
    n_rows, n_cols = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    rows = "ABC"[:n_rows]
    cols = [str(c) for c in range(1, n_cols + 1)]
    plate = plate_layout(rows, cols, version)
    chosen = data.draw(st.lists(st.sampled_from(plate.wells), min_size=1, unique_by=lambda w: w.path))
    out = tmp_path_factory.mktemp("plate") / "p.ome.zarr"
    written = {}
    with nz.HCSPlateWriter(str(out), plate) as writer:
        for well in chosen:
            for f in range(data.draw(st.integers(1, 3))):
                ndim = data.draw(st.sampled_from([2, 3]))
                shape = tuple(data.draw(st.integers(4, 24)) for _ in range(ndim))
                dims = ("z", "y", "x")[-ndim:]
                ms = field(rng, shape, dims, data.draw(st.sampled_from([np.uint8, np.float32])))
                writer.write_well_image(ms, *well.path.split("/"), field_index=f)
                written[(well.path, f)] = ms
    read = nz.from_hcs_zarr(str(out), validate=True)
    assert [w.path for w in read.wells] == [w.path for w in plate.wells if w in chosen]
    for (path, f), ms in written.items():
        np.testing.assert_array_equal(pixels(read.get_well(*path.split("/")).get_image(f)), pixels(ms))
    ngff_zarr.from_hcs_zarr(str(out)).get_well(*chosen[0].path.split("/")).get_image(0)


# -- what the metadata says while wells are added ------------------------------------------


def test_metadata_lists_only_what_is_complete(tmp_path, rng):
    """While the writer is open the root has no plate document (readers refuse it) and
    each well lists only its complete fields; the plate document comes at the end."""
    plate = plate_layout(version="0.5")
    out = tmp_path / "plate.ome.zarr"
    seen = []

    def check(path: str) -> None:
        root = attrs_of(out)
        assert "ome" not in root and root["ngff_gpu_in_progress"] == "plate"
        with pytest.raises(InvalidStoreError, match="unfinished plate"):
            nz.from_hcs_zarr(str(out))
        assert ngff_zarr.from_hcs_zarr(str(out)).wells == []  # ngff-zarr sees no wells
        well = path.rsplit("/", 1)[0]
        listed = well_paths(out / well)
        assert listed[-1] == path.rsplit("/", 1)[1]
        for name in listed:  # every listed field is a complete image
            assert nz.validate_store(str(out / well / name)) == "0.5"
        seen.append(path)

    with nz.HCSPlateWriter(str(out), plate, on_field=check) as writer:
        writer.write_well_image(field(rng), "A", "1", field_index=0)
        writer.write_well_image(field(rng), "A", "1", field_index=1)
        writer.write_well_image(field(rng), "B", "2", field_index=0)
    assert seen == ["A/1/0", "A/1/1", "B/2/0"]
    root = attrs_of(out)
    assert set(root) == {"ome"}
    # declared wells A/2 and B/1 got no field: the plate does not list them
    assert [w["path"] for w in root["ome"]["plate"]["wells"]] == ["A/1", "B/2"]
    nz.from_hcs_zarr(str(out), validate=True)


def test_failed_writer_leaves_no_plate_and_keeps_old_one(tmp_path, rng):
    plate = plate_layout(version="0.4")
    out = tmp_path / "plate.ome.zarr"
    with nz.HCSPlateWriter(str(out), plate) as writer:
        writer.write_well_image(field(rng), "A", "1")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(RuntimeError, match="boom"):
        with nz.HCSPlateWriter(str(out), plate) as writer:  # replaces the plate atomically
            writer.write_well_image(field(rng), "B", "2")
            raise RuntimeError("boom")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not list(tmp_path.glob(".plate.ome.zarr*"))
    with pytest.raises(ArgumentError, match="no field image was written"):
        with nz.HCSPlateWriter(str(tmp_path / "empty.ome.zarr"), plate):
            pass
    with pytest.raises(InvalidStoreError, match="unfinished plate"):
        nz.from_hcs_zarr(str(tmp_path / "empty.ome.zarr"))


# -- resume -------------------------------------------------------------------------------------


class Boom(Exception):
    pass


def failing_field(rng, fail_block: int) -> tuple[nz.Multiscales, nz.Multiscales]:
    """A field whose source raises in one chunk (the write fails after others are
    written), and the same field with good data."""
    data = rng.integers(0, 1000, (64, 64)).astype(np.uint16)
    good = nz.to_multiscales(nz.to_ngff_image(data, dims=["y", "x"]), [2], chunks=16)

    def maybe_fail(block, block_info=None):
        if block_info[0]["chunk-location"] == (fail_block, 0):
            raise Boom("source failed")
        return block

    bad_data = da.from_array(data, chunks=16).map_blocks(maybe_fail, dtype=data.dtype)
    bad = nz.to_multiscales(nz.to_ngff_image(bad_data, dims=["y", "x"]), [2], chunks=16)
    return bad, good


def chunk_stats(store: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(store)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in store.rglob("*") if p.is_file() and "zarr.json" not in p.name}


def test_resume_after_failure_keeps_finished_fields(tmp_path, rng):
    plate = plate_layout(version="0.5")
    out = tmp_path / "plate.ome.zarr"
    goods = [field(rng) for _ in range(2)]
    bad, good = failing_field(rng, fail_block=3)
    with pytest.raises(Boom):
        with nz.HCSPlateWriter(str(out), plate) as writer:
            writer.write_well_image(goods[0], "A", "1")
            writer.write_well_image(goods[1], "A", "2")
            writer.write_well_image(bad, "B", "1", memory_limit="16MiB")
    assert "ome" not in attrs_of(out)  # not a plate
    assert well_paths(out / "A" / "2") == ["0"]
    assert "ome" not in attrs_of(out / "B" / "1")  # the failed field is not listed
    finished = {k: v for k, v in chunk_stats(out).items() if k.startswith(("A/1/0", "A/2/0"))}
    assert finished
    with nz.HCSPlateWriter(str(out), plate, resume=True) as writer:
        writer.write_well_image(goods[0], "A", "1")
        writer.write_well_image(goods[1], "A", "2")
        writer.write_well_image(good, "B", "1", memory_limit="16MiB")
    after = chunk_stats(out)
    assert {k: after[k] for k in finished} == finished  # finished fields were not rewritten
    read = nz.from_hcs_zarr(str(out), validate=True)
    np.testing.assert_array_equal(pixels(read.get_well("B", "1").get_image(0)), pixels(good))
    np.testing.assert_array_equal(np.asarray(read.get_well("B", "1").get_image(0).images[1].data),
                                  np.asarray(good.images[1].data))
    assert [w.path for w in read.wells] == ["A/1", "A/2", "B/1"]


KILLED_WRITER = """
import sys, numpy as np, ngff_gpu as nz
rows, cols = "AB", ["1", "2"]
plate = nz.Plate(columns=[nz.PlateColumn(c) for c in cols], rows=[nz.PlateRow(r) for r in rows],
                 wells=[nz.PlateWell(f"{r}/{c}", i, j) for i, r in enumerate(rows)
                        for j, c in enumerate(cols)], version="0.5")
rng = np.random.default_rng(7)
done = []

def after(path):
    done.append(path)
    if len(done) == 2:
        print("two fields", flush=True)
        sys.stdin.read()  # wait here until killed

with nz.HCSPlateWriter(sys.argv[1], plate, on_field=after) as w:
    for well in plate.wells:
        data = rng.integers(0, 1000, (2, 40, 36)).astype(np.uint16)
        w.write_well_image(nz.to_multiscales(nz.to_ngff_image(data, dims=["c", "y", "x"]), [2]),
                           *well.path.split("/"))
"""


def test_resume_after_kill(tmp_path):
    """A writer killed (SIGKILL) after two fields: the plate is not a plate; a resumed
    writer keeps the two fields and writes the rest, equal to an uninterrupted plate."""
    out = tmp_path / "plate.ome.zarr"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(out)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "two fields"  # the code's own signal
        proc.kill()
    finally:
        proc.wait(timeout=60)
    assert "ome" not in attrs_of(out)
    with pytest.raises(InvalidStoreError, match="unfinished plate"):
        nz.from_hcs_zarr(str(out))
    kept = {k: v for k, v in chunk_stats(out).items() if k.startswith(("A/1/", "A/2/"))}
    assert kept
    # the same fields, resumed; and again from scratch for comparison
    for store, resume in ((out, True), (tmp_path / "clean.ome.zarr", False)):
        subprocess.run([sys.executable, "-c", KILLED_WRITER.replace(
            "on_field=after", f"resume={resume}"), str(store)], check=True, env=env,
            stdin=subprocess.DEVNULL, timeout=120)
    after = chunk_stats(out)
    assert {k: after[k] for k in kept} == kept
    ours = nz.from_hcs_zarr(str(out), validate=True)
    clean = nz.from_hcs_zarr(str(tmp_path / "clean.ome.zarr"))
    for w in clean.wells:
        a, b = ours.get_well(*w.path.split("/")), clean.get_well(*w.path.split("/"))
        np.testing.assert_array_equal(pixels(a.get_image(0)), pixels(b.get_image(0)))
    assert attrs_of(out) == attrs_of(tmp_path / "clean.ome.zarr")


# -- ngff-zarr's behaviour -------------------------------------------------------------------


def test_to_hcs_zarr_and_write_hcs_well_image_as_ngff_zarr(tmp_path, rng):
    plate = plate_layout(rows="A", cols=("1",), version="0.4", name="P", field_count=1)
    out = tmp_path / "plate.ome.zarr"
    nz.to_hcs_zarr(nz.HCSPlate(None, plate), str(out))
    root = attrs_of(out)
    assert set(root) == {"plate"} and root["plate"]["version"] == "0.4"
    assert len(root["plate"]["wells"]) == 1  # the declared wells, at once (ngff-zarr's contract)
    ms = field(rng)
    nz.write_hcs_well_image(str(out), ms, plate, "A", "1", field_index=0)
    assert attrs_of(out / "A" / "1") == {"well": {"images": [{"path": "0", "acquisition": 0}],
                                                  "version": "0.4"}}
    assert "multiscales" in attrs_of(out / "A" / "1" / "0")
    with pytest.raises(ValueError, match="Row 'Z' not found in plate metadata"):
        nz.write_hcs_well_image(str(out), ms, plate, "Z", "1")
    with pytest.raises(ValueError, match="Column '9' not found in plate metadata"):
        nz.write_hcs_well_image(str(out), ms, plate, "A", "9")
    with pytest.raises(ValueError, match=r"version '0\.5' does not match the plate's version"):
        nz.write_hcs_well_image(str(out), ms, plate, "A", "1", version="0.5")
    with pytest.raises(ValueError, match="Unsupported OME-Zarr version: 0.3"):
        nz.HCSPlateWriter(str(tmp_path / "x.ome.zarr"), plate, version="0.3")
    with pytest.raises(ValueError, match="RFC-9.*requires.*0.5"):
        nz.HCSPlateWriter(str(tmp_path / "x.ozx"), plate)
    nz.from_hcs_zarr(str(out), validate=True)
    # overwrite=False keeps the wells; the default replaces the hierarchy
    nz.to_hcs_zarr(nz.HCSPlate(str(out), plate), str(out), overwrite=False)
    assert (out / "A" / "1" / "0").exists()
    nz.to_hcs_zarr(nz.HCSPlate(str(out), plate), str(out))
    assert not (out / "A" / "1").exists()


def test_concurrent_fields_of_one_well_and_append(tmp_path, rng):
    plate = plate_layout(rows="A", cols=("1",), version="0.5")
    out = tmp_path / "plate.ome.zarr"
    ms = field(rng, (16, 16), ("y", "x"))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda f: nz.write_hcs_well_image(str(out), ms, plate, "A", "1", field_index=f,
                                                        version="0.5"), range(8)))
    assert sorted(int(p) for p in well_paths(out / "A" / "1")) == list(range(8))
    # HCSPlateWriter(overwrite=False) adds to an existing plate and keeps what was there
    with nz.HCSPlateWriter(str(out), plate, overwrite=False) as writer:
        writer.write_well_image(ms, "A", "1", field_index=8)
    assert sorted(int(p) for p in well_paths(out / "A" / "1")) == list(range(9))
    assert set(attrs_of(out)) == {"ome"} and set(attrs_of(out / "A" / "1")) == {"ome"}
    nz.from_hcs_zarr(str(out), validate=True)


def test_ozx_plate_and_path_safety(tmp_path, rng):
    plate = plate_layout(version="0.5")
    out = tmp_path / "plate.ozx"
    ms = field(rng)
    with nz.HCSPlateWriter(str(out), plate) as writer:
        for w in plate.wells:
            writer.write_well_image(ms, *w.path.split("/"))
    assert not [p for p in tmp_path.iterdir() if p.name != "plate.ozx"]  # the stage is gone
    import zipfile

    assert zipfile.ZipFile(out).namelist()[0] == "zarr.json"
    for read in (nz.from_hcs_zarr(str(out)), ngff_zarr.from_hcs_zarr(str(out))):
        np.testing.assert_array_equal(np.asarray(read.get_well("B", "2").get_image(0).images[0].data),
                                      pixels(ms))
    np.testing.assert_array_equal(pixels(nz.from_ngff_zarr(f"{out}/A/1/0")), pixels(ms))
    # a field path that climbs out of the well is refused when read
    d = tmp_path / "p.ome.zarr"
    with nz.HCSPlateWriter(str(d), plate) as writer:
        writer.write_well_image(ms, "A", "1")
    doc = json.loads((d / "A" / "1" / "zarr.json").read_text())
    doc["attributes"]["ome"]["well"]["images"][0]["path"] = "../../../outside"
    (d / "A" / "1" / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="relative path below the well group"):
        nz.from_hcs_zarr(str(d)).get_well("A", "1").get_image(0)


def test_refusals(tmp_path, rng):
    image = tmp_path / "image.ome.zarr"
    nz.to_ngff_zarr(str(image), field(rng))
    plate = plate_layout()
    with pytest.raises(StoreExistsError, match="not a plate"):
        with nz.HCSPlateWriter(str(image), plate, overwrite=False):
            pass
    assert nz.validate_store(str(image)) == "0.5"
    with pytest.raises(ArgumentError, match="letters and digits"):
        nz.HCSPlateWriter(str(tmp_path / "p.ome.zarr"),
                          nz.Plate(columns=[nz.PlateColumn("1")], rows=[nz.PlateRow("../x")],
                                   wells=[], version="0.5"))
    with pytest.raises(TypeError, match="local directories"):
        nz.HCSPlateWriter(zarr.storage.MemoryStore(), plate)
    # a directory that is not a Zarr store is never written into, let alone deleted
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"x")
    for call in (lambda: nz.to_hcs_zarr(nz.HCSPlate(None, plate), str(foreign)),
                 lambda: nz.write_hcs_well_image(str(foreign), field(rng), plate, "A", "1",
                                                 version="0.5"),
                 lambda: nz.HCSPlateWriter(str(foreign), plate).__enter__()):
        with pytest.raises(StoreExistsError, match="not a Zarr store"):
            call()
    assert sorted(p.name for p in foreign.iterdir()) == ["cat.jpg"]


def test_parallel_writes_leave_zarrs_config_as_it_was(tmp_path):
    """Sessions in several threads (sharded and not) change zarr's global config only under
    one lock: before it, an overlap left ``codec_pipeline.path`` and
    ``threading.max_workers=1`` of one session in force for the whole process."""
    before = (zarr.config.get("codec_pipeline.path"), zarr.config.get("threading.max_workers"))
    plate = plate_layout(rows="A", cols=("1",), version="0.5")
    ms = nz.to_multiscales(nz.to_ngff_image(np.zeros((64, 64), np.uint8)), [2], chunks=16)
    with nz.HCSPlateWriter(str(tmp_path / "p.ome.zarr"), plate) as writer:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda f: writer.write_well_image(
                ms, "A", "1", field_index=f, chunks_per_shard=2 if f % 2 else None), range(16)))
    after = (zarr.config.get("codec_pipeline.path"), zarr.config.get("threading.max_workers"))
    assert after == before
    assert len(well_paths(tmp_path / "p.ome.zarr" / "A" / "1")) == 16
