"""Kernel parameter lists as Itanium type codes, from mangled names and from launch arguments.

One notation for both sides of a launch: ``h a t s j i y x f d`` for the
builtin types (``unsigned char`` ... ``double``), ``b`` for ``bool``, ``P``
for a pointer and ``K`` for ``const``; so ``const float*`` is ``PKf``. NVRTC's
lowered names are demangled into it (:func:`param_codes`), the host library
reports its compiled signatures in it, and the host stand-in of CuPy
marshals every launch argument into it the way CuPy does.
"""

from __future__ import annotations

import numpy as np

#: NumPy dtype -> Itanium builtin code (the C++ types the kernels use).
DTYPE_CODES: dict[np.dtype, str] = {
    np.dtype(np.uint8): "h", np.dtype(np.int8): "a", np.dtype(np.uint16): "t",
    np.dtype(np.int16): "s", np.dtype(np.uint32): "j", np.dtype(np.int32): "i",
    np.dtype(np.uint64): "y", np.dtype(np.int64): "x", np.dtype(np.float32): "f",
    np.dtype(np.float64): "d", np.dtype(np.bool_): "b",
}

#: Byte size of each builtin code on the 64-bit ABIs (host and device agree).
CODE_SIZES: dict[str, int] = {"h": 1, "a": 1, "b": 1, "t": 2, "s": 2, "j": 4, "i": 4, "f": 4,
                              "y": 8, "x": 8, "d": 8}

_BUILTINS = set(CODE_SIZES)


def _base36(text: str) -> int:
    return int(text, 36) if text else -1


def param_codes(mangled: str) -> list[str]:
    """Parameter types of a mangled function template instantiation.

    Handles what the kernels use: ``_Z<len><name>I<builtins>Ev<params>`` with
    builtin, pointer, const, template-parameter (``T_``, ``T0_``...) and
    substitution (``S_``, ``S0_``...) types; template parameters are resolved
    to their arguments.

    Raises
    ------
    ValueError
        On anything outside that subset.
    """
    s = mangled
    if not s.startswith("_Z"):
        raise ValueError(f"not a mangled name: {mangled!r}")
    i = 2
    j = i
    while s[j].isdigit():
        j += 1
    i = j + int(s[i:j])
    targs: list[str] = []
    subs: list[str] = ["<template-name>"]
    if s[i] == "I":
        i += 1
        while s[i] != "E":
            if s[i] not in _BUILTINS:
                raise ValueError(f"unsupported template argument at {i} in {mangled!r}")
            targs.append(s[i])
            i += 1
        i += 1
        if s[i] != "v":
            raise ValueError(f"template function without a void return in {mangled!r}")
        i += 1

    def parse(k: int) -> tuple[str, int]:
        c = s[k]
        if c in _BUILTINS:
            return c, k + 1
        if c in "PK":
            inner, k2 = parse(k + 1)
            subs.append(c + inner)
            return c + inner, k2
        if c in "TS":
            end = s.index("_", k)
            n = _base36(s[k + 1:end]) + 1 if c == "S" else (
                int(s[k + 1:end]) + 1 if end > k + 1 else 0)
            if c == "T":
                t = targs[n]
                subs.append(t)
            else:
                t = subs[n]
            return t, end + 1
        raise ValueError(f"unsupported type code {c!r} at {k} in {mangled!r}")

    params = []
    while i < len(s):
        t, i = parse(i)
        params.append(t)
    return params


def same_param(param: str, arg: str) -> bool:
    """True when an argument of code ``arg`` fills a parameter of code ``param``.

    Pointers carry no ``const`` at the call site (CuPy passes device addresses),
    so ``Pf`` fills ``PKf``; scalars must match exactly (kind and size).
    """
    if param.startswith("P"):
        return arg.startswith("P") and param[1:].lstrip("K") == arg[1:].lstrip("K")
    return param == arg
