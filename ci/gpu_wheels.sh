#!/usr/bin/env bash
# Download, here, the wheels the GPU machine lacks (the versions CI tests with; NVRTC for
# CUDA 12 and 13, gpu_run.sh picks the one matching CuPy's CUDA) (it has no network; its python3 is 3.12 with
# CuPy, numpy, scipy, rich, tifffile, imageio, psutil, fsspec, pytest, hypothesis), into .whl/
# (git-ignored). Then run there with that folder carried:
#   device run: carry [".whl"], command "bash ci/gpu_run.sh"
# Usage: bash ci/gpu_wheels.sh [PYTHON_VERSION]   (default 3.12)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pyver="${1:-3.12}"
mkdir -p .whl
python3 -m pip download --quiet --dest .whl --only-binary=:all: \
    --python-version "$pyver" --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 \
    "zarr==3.1.6" "numcodecs==0.16.6" "dask[array]==2026.8.0" "array-api-compat==1.16.0" \
    "zarrs==0.2.3" "ome-zarr-models==1.7" donfig crc32c \
    "cuda-bindings>=12.9,<13" "nvidia-cuda-nvrtc-cu12>=12.9,<13" \
    "cuda-bindings>=13,<14" "nvidia-cuda-nvrtc>=13,<14"
du -sh .whl
ls .whl | wc -l
