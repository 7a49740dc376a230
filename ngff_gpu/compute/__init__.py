"""Stage 2, compute: what a level is made of.

Methods and their dtype rules, the per-axis weights, the level step (relative factors,
windows, halos), the NumPy reference reductions (the oracle), the compiled CPU kernels
(numba) with their driver and thread pool, the backends that run them (NumPy, CUDA) and the
one memoized CUDA kernel loader.  Depends only on the base layer
(``errors``, ``dims``, ``namespace``).
"""
