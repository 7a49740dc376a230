"""Real files of the volume formats, written by each format's own writer (shared by the tests).

- Imaris ``.ims`` and BigDataViewer ``.h5`` + ``.xml``: h5py in the layouts those programs
  write (Imaris file format 5.5, attributes as arrays of one-byte strings; BigDataViewer's
  ``s00/resolutions``, ``t00000/s00/0/cells`` with unsigned 16-bit pixels stored as
  ``int16``, and its ``SpimData`` XML);
- N5: tensorstore's N5 driver;
- MRC: mrcfile;
- CZI: pylibCZIrw (libCZI's writer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _imaris_attr(obj, name: str, text: str) -> None:
    """An attribute as Imaris writes it: an array of one-byte strings."""
    obj.attrs.create(name, np.array(list(text), dtype="S1"))


def write_imaris(path: Path, data: np.ndarray, voxel: tuple[float, float, float],
                 origin: tuple[float, float, float], names: list[str],
                 colors: list[tuple[float, float, float]], step_s: float = 2.5,
                 chunks: tuple[int, int, int] = (8, 16, 16)) -> None:
    """``data`` (t, c, z, y, x) as an Imaris 5.5 file; ``voxel``/``origin`` are x, y, z."""
    import h5py

    nt, nc, nz, ny, nx = data.shape
    with h5py.File(path, "w") as f:
        _imaris_attr(f, "DataSetDirectoryName", "DataSet")
        _imaris_attr(f, "DataSetInfoDirectoryName", "DataSetInfo")
        _imaris_attr(f, "ImarisDataSet", "ImarisDataSet")
        _imaris_attr(f, "ImarisVersion", "5.5.0")
        f.attrs.create("NumberOfDataSets", np.array([1], dtype=np.uint32))
        info = f.create_group("DataSetInfo/Image")
        for key, n in zip("XYZ", (nx, ny, nz)):
            _imaris_attr(info, key, str(n))
        _imaris_attr(info, "Unit", "um")
        _imaris_attr(info, "Name", "specimen")
        for i in range(3):
            lo = origin[i]
            hi = lo + voxel[i] * (nx, ny, nz)[i]
            _imaris_attr(info, f"ExtMin{i}", f"{lo:.6f}")
            _imaris_attr(info, f"ExtMax{i}", f"{hi:.6f}")
        times = f.create_group("DataSetInfo/TimeInfo")
        _imaris_attr(times, "DatasetTimePoints", str(nt))
        _imaris_attr(times, "FileTimePoints", str(nt))
        for t in range(nt):
            seconds = 10 + t * step_s
            _imaris_attr(times, f"TimePoint{t + 1}",
                         f"2024-05-01 12:00:{int(seconds):02d}.{int(round(seconds % 1 * 1000)):03d}")
        for c in range(nc):
            ch = f.create_group(f"DataSetInfo/Channel {c}")
            _imaris_attr(ch, "Name", names[c])
            _imaris_attr(ch, "Color", " ".join(f"{v:.3f}" for v in colors[c]))
            _imaris_attr(ch, "ColorRange", "0 255")
        pad = [-(-n // k) * k for n, k in zip((nz, ny, nx), chunks)]  # whole chunks
        for t in range(nt):
            for c in range(nc):
                g = f.create_group(f"DataSet/ResolutionLevel 0/TimePoint {t}/Channel {c}")
                for key, n in zip("XYZ", (nx, ny, nz)):
                    _imaris_attr(g, f"ImageSize{key}", str(n))
                block = np.zeros(pad, dtype=data.dtype)
                block[:nz, :ny, :nx] = data[t, c]
                g.create_dataset("Data", data=block, chunks=chunks, compression="gzip",
                                 compression_opts=2)


def write_bdv(h5: Path, xml: Path | None, data: dict[tuple[int, int], np.ndarray],
              setups: list[dict], voxel: tuple[float, float, float], unit: str = "µm",
              channel_names: dict[int, str] | None = None, compression: str | None = "gzip") -> None:
    """BigDataViewer HDF5 (+ XML): ``data[(timepoint, setup)]`` is z, y, x uint16;
    ``setups`` are dicts of attributes (``channel``, ``tile``...) per setup id."""
    import h5py

    times = sorted({t for t, _ in data})
    with h5py.File(h5, "w") as f:
        for s in range(len(setups)):
            f.create_dataset(f"s{s:02d}/resolutions", data=np.array([[1.0, 1.0, 1.0]]))
            f.create_dataset(f"s{s:02d}/subdivisions", data=np.array([[16, 16, 8]], dtype=np.int32))
        for (t, s), block in data.items():
            stored = block.view(np.int16)  # BigDataViewer stores uint16 as int16
            f.create_dataset(f"t{t:05d}/s{s:02d}/0/cells", data=stored, chunks=(8, 16, 16),
                             compression=compression)
    if xml is None:
        return
    vs = []
    for s, attrs in enumerate(setups):
        z, y, x = data[(times[0], s)].shape
        inner = "".join(f"<{k}>{v}</{k}>" for k, v in attrs.items())
        vs.append(f"<ViewSetup><id>{s}</id><name>setup {s}</name><size>{x} {y} {z}</size>"
                  f"<voxelSize><unit>{unit}</unit><size>{voxel[0]} {voxel[1]} {voxel[2]}</size>"
                  f"</voxelSize><attributes>{inner}</attributes></ViewSetup>")
    chans = "".join(f"<Channel><id>{i}</id><name>{n}</name></Channel>"
                    for i, n in (channel_names or {}).items())
    regs = []
    for t in times:
        for s in range(len(setups)):
            regs.append(f'<ViewRegistration timepoint="{t}" setup="{s}"><ViewTransform '
                        f'type="affine"><Name>calibration</Name><affine>{voxel[0]} 0.0 0.0 '
                        f'{5.0 + 100 * s} 0.0 {voxel[1]} 0.0 -3.0 0.0 0.0 {voxel[2]} 1.5'
                        f'</affine></ViewTransform></ViewRegistration>')
    xml.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<SpimData version="0.2">'
        '<BasePath type="relative">.</BasePath><SequenceDescription>'
        f'<ImageLoader format="bdv.hdf5"><hdf5 type="relative">{h5.name}</hdf5></ImageLoader>'
        f'<ViewSetups>{"".join(vs)}<Attributes name="channel">{chans}</Attributes></ViewSetups>'
        f'<Timepoints type="range"><first>{times[0]}</first><last>{times[-1]}</last>'
        f'</Timepoints></SequenceDescription><ViewRegistrations>{"".join(regs)}'
        '</ViewRegistrations></SpimData>\n', encoding="utf-8")


def write_n5(container: Path, inner: str, data: np.ndarray, block: list[int],
             attrs: dict | None = None, compression: str = "gzip") -> None:
    """``data`` (C order, z, y, x) as an N5 dataset through tensorstore (N5 order x, y, z)."""
    import json

    import tensorstore as ts

    spec = {"driver": "n5", "kvstore": {"driver": "file", "path": str(container / inner)},
            "metadata": {"dimensions": list(reversed(data.shape)), "blockSize": block,
                         "dataType": str(data.dtype), "compression": {"type": compression}},
            "create": True, "delete_existing": True}
    store = ts.open(spec).result()
    store[...] = data.T
    root = container / "attributes.json"
    if not root.exists():
        root.write_text(json.dumps({"n5": "2.5.1"}))
    if attrs:
        node = container / inner / "attributes.json"
        meta = json.loads(node.read_text())
        meta.update(attrs)
        node.write_text(json.dumps(meta))


def write_czi(path: Path, scenes: list[tuple[tuple[int, int], np.ndarray]],
              names: list[str], colors: list[tuple[int, int, int]],
              scale_m: tuple[float, float, float]) -> None:
    """Scenes ``((x, y), data c, z, y, x)`` as a CZI file through pylibCZIrw."""
    from pylibCZIrw import czi as pyczi

    settings = {i: pyczi.ChannelDisplaySettingsDataClass(
        True, pyczi.TintingMode.Color, pyczi.Rgb8Color(*(np.uint8(v) for v in rgb)), 0.0, 1.0)
        for i, rgb in enumerate(colors)}
    with pyczi.create_czi(str(path), exist_ok=True) as w:
        for s, ((x, y), data) in enumerate(scenes):
            for c in range(data.shape[0]):
                for z in range(data.shape[1]):
                    w.write(np.ascontiguousarray(data[c, z]), plane={"C": c, "Z": z, "T": 0},
                            scene=s, location=(x, y))
        w.write_metadata(document_name="test", channel_names=dict(enumerate(names)),
                         scale_x=scale_m[0], scale_y=scale_m[1], scale_z=scale_m[2],
                         display_settings=settings)
