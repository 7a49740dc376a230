"""ngff-zarr's ``ngff_zarr.hcs`` names at the same path in ngff_gpu.

Code that imports the HCS plate names from that module (``from ngff_zarr.hcs import
HCSPlateWriter, to_hcs_zarr``) runs after ``ngff_zarr`` becomes ``ngff_gpu``. The
names are those of :mod:`ngff_gpu.io.hcs`, :mod:`ngff_gpu.io.hcs_read` and the plate
model (also exported by the package); ngff-zarr's store internals in that module
(zarrista groups, its zip and remote stores) are not served.
"""

from ngff_gpu.io.hcs import HCSPlateWriter, to_hcs_zarr, write_hcs_well_image
from ngff_gpu.io.hcs_read import HCSPlate, HCSWell, LRUCache, from_hcs_zarr
from ngff_gpu.io.reader import from_ome_zarr
from ngff_gpu.io.write_api import to_ome_zarr
from ngff_gpu.model.multiscales import NgffMultiscales
from ngff_gpu.model.plate import (
    Plate,
    PlateAcquisition,
    PlateColumn,
    PlateRow,
    PlateWell,
    Well,
    WellImage,
)

__all__ = [
    "HCSPlate",
    "HCSPlateWriter",
    "HCSWell",
    "LRUCache",
    "NgffMultiscales",
    "Plate",
    "PlateAcquisition",
    "PlateColumn",
    "PlateRow",
    "PlateWell",
    "Well",
    "WellImage",
    "from_hcs_zarr",
    "from_ome_zarr",
    "to_hcs_zarr",
    "to_ome_zarr",
    "write_hcs_well_image",
]
