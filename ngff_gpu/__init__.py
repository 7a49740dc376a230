"""ngff_gpu: OME-Zarr multiscale pyramids on the GPU, with a bit-identical NumPy fallback.

The way from array to store shows in the subpackages, each a stage that imports only the
stages before it (``tests/test_layers.py`` enforces the rule; docs/design.md explains it)::

    errors, dims, namespace   base: typed errors, dim names, array namespaces
    compute/                  methods, weights, level step, NumPy reference, backends, kernels
    model/                    NgffImage, Metadata, Multiscales
    levels/                   plan, lazy levels, to_multiscales, downsample, bricks + engine
    io/                       writer, reader, validate, labels, omero, codecs, remote, inputs/
    cli/                      the ngff-gpu command
"""

from ngff_gpu.compute.methods import Methods
from ngff_gpu.errors import (
    ArgumentError,
    ArgumentTypeError,
    ArrayWriteError,
    BackendFallbackWarning,
    BackendUnavailableError,
    CpuKernelFallbackWarning,
    DimsError,
    DiskFullError,
    InputFormatError,
    InvalidStoreError,
    KernelCompileError,
    NgffGpuError,
    RemoteStoreError,
    ScaleFactorError,
    SchemaValidationError,
    StoreAccessDeniedError,
    StoreBackendMissingError,
    StoreExistsError,
    StoreLockedError,
    StoreNotFoundError,
    StoreThrottledError,
    StoreUnavailableError,
    StoreUnreachableError,
    StructuralValidationError,
    UnsupportedDtypeError,
)
from ngff_gpu.io.hcs import HCSPlateWriter, to_hcs_zarr, write_hcs_well_image
from ngff_gpu.io.hcs_read import HCSPlate, HCSWell, from_hcs_zarr
from ngff_gpu.io.omero import compute_omero_from_multiscales
from ngff_gpu.io.reader import from_ngff_zarr, from_ome_zarr
from ngff_gpu.io.scene import NgffScene
from ngff_gpu.io.upgrade import upgrade_ome_zarr
from ngff_gpu.io.validate import validate_store
from ngff_gpu.io.write_api import to_ngff_zarr, to_ome_zarr
from ngff_gpu.levels.array_api import downsample, pyramid
from ngff_gpu.levels.build import to_multiscales
from ngff_gpu.model.axes import (
    LPS,
    RAS,
    AnatomicalOrientation,
    AnatomicalOrientationValues,
    Axis,
    orientation_from_name,
)
from ngff_gpu.model.image import NgffImage, to_ngff_image
from ngff_gpu.model.metadata import (
    SUPPORTED_VERSIONS,
    CoordinateSystem,
    Dataset,
    Metadata,
    Metadata06,
    Metadata09,
    NgffVersion,
)
from ngff_gpu.model.multiscales import Multiscales, NgffMultiscales
from ngff_gpu.model.omero import MethodMetadata, Omero, OmeroChannel, OmeroWindow
from ngff_gpu.model.plate import (
    Plate,
    PlateAcquisition,
    PlateColumn,
    PlateRow,
    PlateWell,
    Well,
    WellImage,
)
from ngff_gpu.model.rules import SpecRule
from ngff_gpu.model.transforms import (
    Affine,
    Bijection,
    ByDimension,
    ByDimensionItem,
    Coordinates,
    CoordinateSystemIdentifier,
    Displacements,
    Identity,
    MapAxis,
    ProjectAxis,
    Rotation,
    Scale,
    TransformSequence,
    Translation,
)

__version__ = "0.1.0"

__all__ = [
    "Affine",
    "AnatomicalOrientation",
    "AnatomicalOrientationValues",
    "ArgumentError",
    "ArgumentTypeError",
    "ArrayWriteError",
    "Axis",
    "BackendFallbackWarning",
    "BackendUnavailableError",
    "Bijection",
    "ByDimension",
    "ByDimensionItem",
    "CoordinateSystem",
    "CoordinateSystemIdentifier",
    "Coordinates",
    "CpuKernelFallbackWarning",
    "Dataset",
    "DimsError",
    "DiskFullError",
    "Displacements",
    "HCSPlate",
    "HCSPlateWriter",
    "HCSWell",
    "Identity",
    "InputFormatError",
    "InvalidStoreError",
    "KernelCompileError",
    "LPS",
    "MapAxis",
    "Metadata",
    "Metadata06",
    "Metadata09",
    "MethodMetadata",
    "Methods",
    "Multiscales",
    "NgffGpuError",
    "NgffImage",
    "NgffMultiscales",
    "NgffScene",
    "NgffVersion",
    "Omero",
    "OmeroChannel",
    "OmeroWindow",
    "Plate",
    "PlateAcquisition",
    "PlateColumn",
    "PlateRow",
    "PlateWell",
    "ProjectAxis",
    "RAS",
    "RemoteStoreError",
    "Rotation",
    "SUPPORTED_VERSIONS",
    "Scale",
    "ScaleFactorError",
    "SchemaValidationError",
    "StoreAccessDeniedError",
    "StoreBackendMissingError",
    "StoreExistsError",
    "StoreLockedError",
    "StoreNotFoundError",
    "StructuralValidationError",
    "SpecRule",
    "StoreThrottledError",
    "StoreUnavailableError",
    "StoreUnreachableError",
    "TransformSequence",
    "Translation",
    "UnsupportedDtypeError",
    "Well",
    "WellImage",
    "compute_omero_from_multiscales",
    "downsample",
    "from_hcs_zarr",
    "from_ngff_zarr",
    "from_ome_zarr",
    "orientation_from_name",
    "pyramid",
    "to_hcs_zarr",
    "to_multiscales",
    "to_ngff_image",
    "to_ngff_zarr",
    "to_ome_zarr",
    "upgrade_ome_zarr",
    "validate_store",
    "write_hcs_well_image",
]
