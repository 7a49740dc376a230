"""Test support: the CUDA kernels built as host C++ and a host stand-in for CuPy.

``build.py`` compiles ``kernels/*.cu`` with g++ (``shim.h``, ``launch.h``);
``standin.py`` runs them through :class:`ngff_gpu.compute.backends.cupy_backend.CupyBackend`;
``abi.py`` describes parameter lists; ``contract.py`` says what "the same result" means.
"""
