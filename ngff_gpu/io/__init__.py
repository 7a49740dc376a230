"""Stage 5, io: stores and files.

Writing OME-Zarr (``to_ngff_zarr``), reading it back (``from_ngff_zarr``), validation,
labels, omero, codecs, and the input readers of the CLI (``inputs/``, one module per
format).  Everything that touches Zarr or a file lives here.
"""
