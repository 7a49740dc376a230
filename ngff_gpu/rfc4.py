"""ngff-zarr's ``ngff_zarr.rfc4`` orientation names at the same path in ngff_gpu.

Code that imports the RFC-4 names from that module (``from ngff_zarr.rfc4 import
AnatomicalOrientation``) runs after ``ngff_zarr`` becomes ``ngff_gpu``. The names are
those of :mod:`ngff_gpu.model.axes` (also exported by the package); ngff-zarr's ITK
conversions in that module are not served.
"""

from ngff_gpu.model.axes import (
    LPS,
    RAS,
    AnatomicalOrientation,
    AnatomicalOrientationValues,
    orientation_from_name,
)

__all__ = [
    "LPS",
    "RAS",
    "AnatomicalOrientation",
    "AnatomicalOrientationValues",
    "orientation_from_name",
]
