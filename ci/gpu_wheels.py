"""Build ``.whl/``: the wheels the lent GPU machine lacks, slimmed to fit one device call.

Run here (a machine with the package index), never on the device: ``bash ci/gpu_wheels.sh``.

The device (``nvidia-h200``, /work/.library/device/KINDS.md) runs Python 3.12 on x86-64
with CuPy 14 (CUDA 13), PyTorch, NumPy 2.5, SciPy, rich, tifffile, pytest, hypothesis... and
no network. What it lacks travels as wheels in ``.whl/`` (``carry: [".whl"]``), and the
working tree plus every carried path must fit in 64 MiB. So each wheel is

* downloaded once (``pip download --no-deps``, cp312 manylinux x86_64) into a cache;
* slimmed: files the GPU run never loads are left out (other Pythons' extension
  modules, test data, cuCIM's ``clara`` image I/O, nvCOMP's headers and CLI), and the
  debug sections and static symbol tables of shared libraries are stripped
  (``strip --strip-unneeded``, as distributions package them; code is untouched);
* repacked (deflate level 9) with a RECORD that lists what is really in it.

Then the set is checked: every runtime requirement of every carried wheel and of
``ngff-gpu`` itself (markers evaluated for CPython 3.12 on Linux x86-64) must be carried
(at a version that satisfies it) or be on the device (:data:`DEVICE_HAS`), or be one of
:data:`NOT_CARRIED` with the reason; and ``.whl`` plus the working tree must fit
:data:`LIMIT`. ``.whl/manifest.json`` records the wheels, the commit and the kernels'
SHA-256 (docs/design.md section 7), which ``ci/gpu_run.sh`` reports (the device copy has
no ``.git``).

Usage: ``python ci/gpu_wheels.py [--check-only]``
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from fnmatch import fnmatch
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".whl"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ngff_gpu" / "wheels"
LIMIT = 64 << 20  # the device tool's limit on the working tree plus carried paths
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_12_x86_64",
             "manylinux2010_x86_64", "manylinux1_x86_64"]

#: group -> {requirement: glob patterns of files to leave out of the wheel (paths inside it)}.
WHEELS: dict[str, dict[str, tuple[str, ...]]] = {
    # ngff-gpu's own runtime dependencies (the versions CI runs with)
    "ngff-gpu": {
        "zarr==3.1.6": (),
        "numcodecs==0.16.6": ("numcodecs/tests/*",),
        "donfig==0.8.1.post1": (),
        "google-crc32c==1.9.0": (),
        "dask==2026.7.1": ("dask/*/tests/*", "dask/tests/*"),
        "partd==1.4.2": (),
        "locket==1.0.0": (),
        "array-api-compat==1.16.0": (),
        "zarrs==0.2.3": (),
        "typing-extensions==4.16.0": (),  # zarr-metadata needs >=4.16; the device's may be older
    },
    # validation of every written store (tests and benchmarks)
    "validate": {
        "ome-zarr-models==1.7": (),
        "pydantic==2.12.5": (),
        "pydantic-core==2.41.5": (),
        "pydantic-zarr==0.9.2": (),
        "annotated-types==0.8.0": (),
        "typing-inspection==0.4.5": (),
    },
    # ngff-zarr 0.50, the peer of the end-to-end benchmark (its default ITKWASM_GAUSSIAN)
    "ngff-zarr": {
        "ngff-zarr==0.50.0": (),
        "itkwasm==1.0b201": (),
        "itkwasm-downsample==2.0.2": (),
        # its WebAssembly modules load on first call: keep those ITKWASM_GAUSSIAN runs
        "itkwasm-downsample-wasi==2.0.2": ("*/wasm_modules/resample*",
                                           "*/downsample-label-image*",
                                           "*/downsample-bin-shrink*"),
        "wasmtime==50.0.1": (),
        "zarrista==0.1.0": (),
        "zarr-metadata==0.6.0": (),
        "platformdirs==4.14.9": (),
        "importlib-resources==7.1.0": (),
        "rich-argparse==1.8.0": (),
    },
    # cuCIM (the per-level peer): only cucim.skimage is used; clara (image I/O) is
    # imported by cucim/__init__.py inside try/except ImportError
    "cucim": {
        "cucim-cu13==26.10.0": ("cucim/clara/*", "cucim_cu13.libs/*", "*/tests/*", "*.npy"),
    },
    # nvCOMP (the GPU codec probe): the Python binding for CPython 3.12 and the library
    "nvcomp": {
        "nvidia-nvcomp-cu13==6.0.0.12": ("nvidia/nvcomp/nvcomp_impl.cpython-3[!1]*",
                                         "nvidia/nvcomp/nvcomp_impl.cpython-31[!2]*",
                                         "nvidia/nvcomp/nvcomp_impl.cpython-312t*"),
        "nvidia-libnvcomp-cu13==6.0.0.12": ("nvidia/libnvcomp/bin/*",
                                            "nvidia/libnvcomp/include/*",
                                            "nvidia/libnvcomp/lib64/cmake/*",
                                            "nvidia/libnvcomp/lib64/*.a"),
    },
}

#: Distributions on the device image (KINDS.md, "Python packages already there", read on
#: a device on 2026-11-17), by canonical name.
DEVICE_HAS = frozenset(canonicalize_name(n) for n in """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn
einops equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec
gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio
iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13
nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir
onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker
prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout
pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers
setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch
torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton
typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray
xxhash yarl zipp
""".split())

#: Requirements neither carried nor on the device, each with why the GPU run does without.
NOT_CARRIED = {
    "imagecodecs": "ngff-gpu's TIFF codecs (LZW, JPEG...): the GPU run reads no TIFF; 26 MB",
    "nvidia-nvimgcodec-cu13": "used by cuCIM's clara image I/O only, which is left out; 25 MB",
}


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kw)


def download(req: str) -> Path:
    """The wheel of ``req`` (pinned ``name==version``) in the cache, downloaded once."""
    name, version = req.split("==")
    stem = canonicalize_name(name).replace("-", "_")
    CACHE.mkdir(parents=True, exist_ok=True)

    def cached() -> list[Path]:
        return [p for p in CACHE.glob("*.whl")
                if canonicalize_name(p.name.split("-")[0]) == canonicalize_name(stem)
                and p.name.split("-")[1] == version]

    found = cached()
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
               "--dest", str(CACHE)]
        for plat in PLATFORMS:
            cmd += ["--platform", plat]
        _run(cmd + [req])
        found = cached()
    if len(found) != 1:
        raise SystemExit(f"expected one wheel for {req} in {CACHE}, found {found}")
    return found[0]


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _strip(name: str, data: bytes) -> bytes:
    """``data`` of a shared library without debug sections and static symbols."""
    strip = shutil.which("strip")
    if strip is None:
        return data
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(data)
        try:
            _run([strip, "--strip-unneeded", str(path)], capture_output=True)
        except subprocess.CalledProcessError:
            return data  # not an ELF file strip understands: keep it as it is
        return path.read_bytes()


def slim(src: Path, drop: tuple[str, ...], dest: Path) -> dict:
    """Repack ``src`` into ``dest`` without the files matching ``drop``, libraries stripped."""
    removed, stripped = [], 0
    kept: list[tuple[str, bytes]] = []
    record_name = None
    with zipfile.ZipFile(src) as zin:
        for info in zin.infolist():
            name = info.filename
            if name.endswith(".dist-info/RECORD"):
                record_name = name
                continue
            if info.is_dir():
                continue
            if any(fnmatch(name, pat) for pat in drop):
                removed.append(name)
                continue
            data = zin.read(info)
            if re.search(r"\.so(\.\d+)*$", name) and data[:4] == b"\x7fELF":
                small = _strip(name, data)
                stripped += len(data) - len(small)
                data = small
            kept.append((name, data))
    if record_name is None:
        raise SystemExit(f"{src.name} has no RECORD")
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    for name, data in kept:
        writer.writerow([name, _record_hash(data), len(data)])
    writer.writerow([record_name, "", ""])
    kept.append((record_name, rows.getvalue().encode()))
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        for name, data in kept:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o755 << 16 if re.search(r"\.so(\.\d+)*$", name) else 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, data, compresslevel=9)
    return {"wheel": dest.name, "bytes": dest.stat().st_size, "downloaded_bytes": src.stat().st_size,
            "files_removed": len(removed), "bytes_stripped": stripped}


def metadata(wheel: Path) -> tuple[str, Version, list[Requirement]]:
    """Name, version and runtime requirements of a wheel (``Requires-Dist``)."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    name = re.search(r"^Name: (.+)$", text, re.M).group(1).strip()
    version = Version(re.search(r"^Version: (.+)$", text, re.M).group(1).strip())
    reqs = [Requirement(m.strip()) for m in re.findall(r"^Requires-Dist: (.+)$", text, re.M)]
    return name, version, reqs


def device_environment() -> dict[str, str]:
    """Marker values of the device's interpreter (CPython 3.12 on Linux x86-64)."""
    env = dict(default_environment())
    env.update(python_version="3.12", python_full_version="3.12.3", implementation_name="cpython",
               platform_python_implementation="CPython", sys_platform="linux",
               platform_system="Linux", platform_machine="x86_64", os_name="posix", extra="")
    return env


def check_closure(wheels: list[Path]) -> list[str]:
    """Problems with the set: requirements nobody provides, or carried at a bad version."""
    env = device_environment()
    carried = {}
    needs: list[tuple[str, Requirement]] = []
    for w in wheels:
        name, version, reqs = metadata(w)
        carried[canonicalize_name(name)] = version
        needs += [(name, r) for r in reqs]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needs += [("ngff-gpu", Requirement(r)) for r in project["dependencies"]]
    problems = []
    for who, req in needs:
        if req.marker is not None and not req.marker.evaluate(env):
            continue  # an extra, or another platform
        key = canonicalize_name(req.name)
        if key in carried:
            if req.specifier and not req.specifier.contains(carried[key], prereleases=True):
                problems.append(f"{who} needs {req}, carried {key} {carried[key]}")
        elif key not in DEVICE_HAS and key not in NOT_CARRIED:
            problems.append(f"{who} needs {req}: neither carried nor on the device")
    return problems


def tree_bytes() -> int:
    """Bytes of what the device tool sends besides carried paths: tracked files and
    untracked files git does not ignore."""
    out = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
               cwd=ROOT, capture_output=True).stdout
    return sum((ROOT / p).stat().st_size for p in out.split("\0") if p and (ROOT / p).is_file())


def provenance() -> dict:
    """Commit, whether the tree differs from it, and the kernels' SHA-256 (design.md 7)."""
    def git(*args: str) -> str:
        return _run(["git", *args], cwd=ROOT, capture_output=True).stdout
    files = sorted(git("ls-files", "kernels").split("\n"), key=lambda s: s.encode())
    h = hashlib.sha256()
    for f in (f for f in files if f):
        h.update((ROOT / f).read_bytes())
    return {"commit": git("rev-parse", "HEAD").strip(),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no").strip()),
            "kernels_sha256": h.hexdigest()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check-only", action="store_true",
                        help="check the wheels already in .whl/ (closure and size)")
    parser.add_argument("--without", action="append", default=[], choices=sorted(WHEELS),
                        help="leave a group out (the GPU run then records that step as skipped); "
                             "'ngff-zarr' frees about 33 MiB")
    args = parser.parse_args(argv)
    rows = []
    if not args.check_only:
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir()
        chosen = {req: drop for group, reqs in WHEELS.items() if group not in args.without
                  for req, drop in reqs.items()}
        for req, drop in chosen.items():
            src = download(req)
            rows.append(slim(src, drop, OUT / src.name) | {"requirement": req})
            print(f"{rows[-1]['bytes'] / 2**20:7.2f} MiB (from {rows[-1]['downloaded_bytes'] / 2**20:6.2f})"
                  f"  {src.name}")
    wheels = sorted(OUT.glob("*.whl"))
    problems = check_closure(wheels)
    whl = sum(w.stat().st_size for w in wheels)
    tree = tree_bytes()
    total = whl + tree + (64 << 10)  # the manifest
    print(f"\n.whl: {len(wheels)} wheels, {whl / 2**20:.2f} MiB; working tree {tree / 2**20:.2f} MiB;"
          f" together {total / 2**20:.2f} MiB of {LIMIT / 2**20:.0f} MiB")
    for p in problems:
        print("closure:", p)
    if not args.check_only:
        manifest = {"wheels": rows, "not_carried": NOT_CARRIED, "groups_left_out": args.without,
                    "whl_bytes": whl, "tree_bytes": tree, "limit_bytes": LIMIT, **provenance()}
        (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if problems or total > LIMIT:
        print("error: the wheel set is incomplete or too large", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
