"""Open image files as lazy arrays with their dims, spacing, units and orientation.

One module per format, a common module and a dispatcher that recognises formats
by content:

==================  ==========================================================
module              reads
==================  ==========================================================
``common``          :class:`InputImage`, unit names, dims helpers
``sniff``           which format a file or directory holds (magic bytes)
``tiff``            TIFF, OME-TIFF, ImageJ TIFF (tifffile's Zarr store)
``raster``          PNG, JPEG, BMP, GIF (imageio)
``stack``           several files, glob patterns, directories of 2-D slices
``npy``             ``.npy`` (memory-mapped)
``zarr_input``      Zarr arrays, OME-Zarr images, ``.ozx`` (zipped OME-Zarr)
``nifti``           NIfTI-1/2, Analyze (nibabel)
``nrrd``            NRRD (pynrrd header, memory-mapped raw data)
``metaimage``       MetaImage ``.mha``/``.mhd`` (own header parser, memory map)
``dicom``           DICOM files, multi-frame files, series (pydicom)
``hdf5``            HDF5 datasets, Imaris ``.ims`` (h5py)
``hdf5_chunks``     the HDF5 region reader (chunks decoded on every core)
``bdv``             BigDataViewer XML + HDF5 or N5
``n5``              N5 datasets (zarr-n5)
``mrc``             MRC/MRCS (mrcfile, memory-mapped)
``czi``             Zeiss CZI (pylibCZIrw)
``detect``          :func:`open_input`, the dispatcher
==================  ==========================================================

Axes are put in OME-NGFF order (``t, c, z, y, x``) with a lazy transpose.
"""

from ngff_gpu.io.inputs.common import InputImage, safe_name, udunits
from ngff_gpu.io.inputs.detect import list_series, open_input
from ngff_gpu.io.inputs.tiff import series_listing

__all__ = ["InputImage", "list_series", "open_input", "safe_name", "series_listing", "udunits"]
