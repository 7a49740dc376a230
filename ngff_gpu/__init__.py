"""ngff_gpu: OME-Zarr multiscale pyramids on the GPU, with a bit-identical NumPy fallback.

The way from array to store shows in the modules::

    namespace -> image (NgffImage) -> plan (levels) -> step/weights (methods)
    -> reduce_numpy / kernels (backends) -> bricks + engine -> writer (OME-Zarr)
"""

from .array_api import downsample, pyramid
from .errors import (
    BackendUnavailableError,
    DimsError,
    InputFormatError,
    InvalidStoreError,
    KernelCompileError,
    NgffGpuError,
    ScaleFactorError,
    StoreExistsError,
    UnsupportedDtypeError,
)
from .image import NgffImage, to_ngff_image
from .metadata import Axis, Dataset, Metadata, Scale, Translation
from .methods import Methods
from .multiscales import Multiscales, to_multiscales
from .reader import from_ngff_zarr
from .validate import validate_store
from .writer import to_ngff_zarr

__version__ = "0.1.0"

__all__ = [
    "Axis",
    "BackendUnavailableError",
    "Dataset",
    "DimsError",
    "InputFormatError",
    "InvalidStoreError",
    "KernelCompileError",
    "Metadata",
    "Methods",
    "Multiscales",
    "NgffGpuError",
    "NgffImage",
    "Scale",
    "ScaleFactorError",
    "StoreExistsError",
    "Translation",
    "UnsupportedDtypeError",
    "downsample",
    "from_ngff_zarr",
    "pyramid",
    "to_multiscales",
    "to_ngff_image",
    "to_ngff_zarr",
    "validate_store",
]
