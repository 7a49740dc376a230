"""Stage 4, levels: from an image to its pyramid levels.

The level plan (shapes, factors, sample positions), lazy per-level dask graphs,
``to_multiscales``, ``downsample``/``pyramid`` for arrays, and the out-of-core engine
(passes, bricks, bounded pipeline, progress).  Knows nothing of Zarr.
"""
