"""Compiled CPU kernels (numba): the NumPy path's operations, in its order, at memory speed.

Imported only by :mod:`ngff_gpu.compute.reduce_cpu` (through its loader, so a machine
where numba cannot load falls back to NumPy). Every kernel works on a *canonical* brick
built by the driver: a C-contiguous 4-D array ``(B, Z, Y, X*C)`` where ``B`` and ``C``
merge the axes of factor 1 before and after the (at most three) slots ``Z``, ``Y``, ``X``,
each of which may have any factor. ``geo`` holds, per slot ``Z, Y, X``, the factor, the
offset of the first tap from ``f*i``, the global index of the brick's first sample, the
global length of the axis (for the edge clamp) and the global index of the first output.

Numerics (docs/design.md section 2.4), in the same sequence of IEEE operations as
:mod:`ngff_gpu.compute.reduce_numpy`:

- compiled without ``fastmath``: LLVM neither contracts ``a*b + c`` into an FMA nor
  reassociates, and nothing sets flush-to-zero (``tests/test_cpu_kernels.py`` checks the
  assembly and the bits on subnormal data);
- GAUSSIAN: passes along ``Z``, then ``Y``, then ``X``; per output ``acc = w0*x0``, then
  ``acc = acc + wd*xd`` tap by tap in the compute dtype; integers ``rint`` then clip;
- MEAN on floats: block offsets in C order, ``acc = x0``, ``acc = acc + xk``, ``acc / K``;
  on integers an exact sum and ``(S + K//2) // K`` (64-bit: quotient and remainder);
- MIN/MAX: NaN-propagating; MODE: largest count, ties to the smallest value.

NEAREST is a strided copy, which NumPy already does at memory speed: the driver runs it
on the same thread pool without a kernel.

All kernels release the GIL (``nogil``) so the driver runs them on a thread pool, and are
cached on disk (``cache=True``) so a process compiles each specialization once per machine.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.core.errors import NumbaError
from numba.extending import overload

#: What a kernel that cannot be compiled on this machine raises; the driver then falls
#: back to the NumPy path (docs/design.md section 3.3).
COMPILE_ERRORS: tuple[type[BaseException], ...] = (NumbaError,)

_JIT = {"nogil": True, "cache": True, "fastmath": False,
        "error_model": "numpy", "boundscheck": False}

#: Above this block size MODE sorts each block instead of counting pairs (K^2).
MODE_COUNT_MAX = 32


@nb.njit(**_JIT)
def _clamp(v, n):
    if v < 0:
        return 0
    if v > n - 1:
        return n - 1
    return v


# -- GAUSSIAN -----------------------------------------------------------------------------
#
# Every pass is a sum of weighted *streams*: contiguous rows (Z, Y) or the phases of a
# row (X, below), all of one length. Taps are applied four at a time (one sweep over the
# row per four taps, the accumulator kept in registers), each element still receiving
# ``acc = w0*s0``, then ``acc = acc + wd*sd`` in tap order.


def as_compute(v, w):
    """``v`` converted to the compute dtype, the type of the weight ``w``.

    Explicit because numba promotes ``float32 * int16`` to float64, where NumPy's
    ``x.astype(float32) * w`` stays in float32.
    """
    return type(w)(v)


@overload(as_compute, jit_options={"cache": True})
def _as_compute(v, w):
    if w == nb.types.float32:
        return lambda v, w: np.float32(v)
    return lambda v, w: np.float64(v)


@nb.njit(**_JIT)
def _acc4(dst, s0, s1, s2, s3, w0, w1, w2, w3, init):
    n = dst.size
    if init:
        for m in range(n):
            a = w0 * as_compute(s0[m], w0)
            a = a + w1 * as_compute(s1[m], w0)
            a = a + w2 * as_compute(s2[m], w0)
            dst[m] = a + w3 * as_compute(s3[m], w0)
    else:
        for m in range(n):
            a = dst[m] + w0 * as_compute(s0[m], w0)
            a = a + w1 * as_compute(s1[m], w0)
            a = a + w2 * as_compute(s2[m], w0)
            dst[m] = a + w3 * as_compute(s3[m], w0)


@nb.njit(**_JIT)
def _acc1(dst, s0, w0, init):
    n = dst.size
    if init:
        for m in range(n):
            dst[m] = w0 * as_compute(s0[m], w0)
    else:
        for m in range(n):
            dst[m] = dst[m] + w0 * as_compute(s0[m], w0)


@nb.njit(**_JIT)
def _z_row(x, b, zrows, rl, wz, fz, dst):
    """Row ``rl`` (local) of the Z pass over the planes ``zrows`` into ``dst``."""
    if fz == 1:
        src = x[b, zrows[0], rl]
        for m in range(dst.size):
            dst[m] = src[m]
        return
    t = wz.size
    d = 0
    while d + 4 <= t:
        _acc4(dst, x[b, zrows[d], rl], x[b, zrows[d + 1], rl], x[b, zrows[d + 2], rl],
              x[b, zrows[d + 3], rl], wz[d], wz[d + 1], wz[d + 2], wz[d + 3], d == 0)
        d += 4
    while d < t:
        _acc1(dst, x[b, zrows[d], rl], wz[d], d == 0)
        d += 1


@nb.njit(**_JIT)
def _y_row(ring, slots, wy, dst):
    """The Y pass of one output row from the Z-pass rows ``ring[slots[d]]``."""
    t = wy.size
    d = 0
    while d + 4 <= t:
        _acc4(dst, ring[slots[d]], ring[slots[d + 1]], ring[slots[d + 2]], ring[slots[d + 3]],
              wy[d], wy[d + 1], wy[d + 2], wy[d + 3], d == 0)
        d += 4
    while d < t:
        _acc1(dst, ring[slots[d]], wy[d], d == 0)
        d += 1


@nb.njit(**_JIT)
def _phases(row, C, fx, jmin, lox, nx, ph, t):
    """Split the samples the X taps read (global ``jmin + m``, clamped to the edges) into
    ``fx`` phases: ``ph[p, k*C + c]`` is sample ``jmin + fx*k + p``, channel ``c``."""
    for p in range(min(fx, t)):
        # output kx reads entry kx + q of phase p for the taps d = p + fx*q
        nk_p = ph.shape[1] // C - ((t - 1) // fx - (t - 1 - p) // fx)
        j0 = jmin + p
        k0 = min(nk_p, max(0, -(j0 // fx)))  # first entry right of the left edge
        k1 = max(k0, min(nk_p, (nx - 1 - j0) // fx + 1))  # first entry past the right edge
        dst = ph[p]
        for k in range(k0):
            for c in range(C):
                dst[k * C + c] = row[(0 - lox) * C + c]
        if C == 1 and fx == 2:
            src = row[j0 + 2 * k0 - lox:]
            for k in range(k1 - k0):
                dst[k0 + k] = src[2 * k]
        else:
            for k in range(k0, k1):
                j = j0 + fx * k - lox
                for c in range(C):
                    dst[k * C + c] = row[j * C + c]
        for k in range(k1, nk_p):
            for c in range(C):
                dst[k * C + c] = row[(nx - 1 - lox) * C + c]


@nb.njit(**_JIT)
def _finish(res, o, lo, hi, rnd):
    """Store a row of results: integers ``rint`` (half to even), clip, cast."""
    if rnd:
        for m in range(o.size):
            v = np.rint(res[m])
            if v < lo:
                v = lo
            elif v > hi:
                v = hi
            o[m] = v
    else:
        for m in range(o.size):
            o[m] = res[m]


@nb.njit(**_JIT)
def _x_row(row, C, fx, firstx, lox, nx, ax, wx, ph, acc, o, lo, hi, rnd):
    """The X pass (``fx > 1``) of one row (the brick's X*C samples, in the input or the
    compute dtype) into ``o``, finished."""
    t = wx.size
    _phases(row, C, fx, fx * ax + firstx, lox, nx, ph, t)
    d = 0
    while d + 4 <= t:
        _acc4(acc, ph[d % fx, d // fx * C:], ph[(d + 1) % fx, (d + 1) // fx * C:],
              ph[(d + 2) % fx, (d + 2) // fx * C:], ph[(d + 3) % fx, (d + 3) // fx * C:],
              wx[d], wx[d + 1], wx[d + 2], wx[d + 3], d == 0)
        d += 4
    while d < t:
        _acc1(acc, ph[d % fx, d // fx * C:], wx[d], d == 0)
        d += 1
    _finish(acc, o, lo, hi, rnd)


@nb.njit(**_JIT)
def gaussian(x, out, C, geo, wz, wy, wx, lo, hi, rnd):
    """GAUSSIAN of the canonical brick ``x`` into ``out`` (docs/design.md section 2.3)."""
    B, _, _, XCi = x.shape
    _, Zo, Yo, XCo = out.shape
    fz, firstz, loz, nz, az = geo[0, 0], geo[0, 1], geo[0, 2], geo[0, 3], geo[0, 4]
    fy, firsty, loy, ny, ay = geo[1, 0], geo[1, 1], geo[1, 2], geo[1, 3], geo[1, 4]
    fx, firstx, lox, nx, ax = geo[2, 0], geo[2, 1], geo[2, 2], geo[2, 3], geo[2, 4]
    ty = wy.size
    nko = XCo // C
    # Z-pass rows, kept while the Y taps of the next outputs read them (slot r % ty)
    ring = np.empty((ty, XCi), dtype=wz.dtype)
    ring_row = np.empty(ty, dtype=np.int64)
    slots = np.empty(ty, dtype=np.int64)
    t2 = np.empty(XCi, dtype=wz.dtype)
    ph = np.empty((fx, (nko + (wx.size - 1) // fx) * C), dtype=wz.dtype)
    acc = np.empty(XCo, dtype=wz.dtype)
    zrows = np.empty(wz.size, dtype=np.int64)
    xo = (ax - lox) * C  # where a factor-1 X slot's outputs start in a row
    for b in range(B):
        for kz in range(Zo):
            if fz == 1:
                zrows[0] = az + kz - loz
            else:
                for d in range(wz.size):
                    zrows[d] = _clamp(fz * (az + kz) + firstz + d, nz) - loz
            ring_row[:] = -1
            for ky in range(Yo):
                o = out[b, kz, ky]
                if fy == 1:
                    _z_row(x, b, zrows, ay + ky - loy, wz, fz, ring[0])
                    if fx == 1:
                        _finish(ring[0, xo:xo + XCo], o, lo, hi, rnd)
                    else:
                        _x_row(ring[0], C, fx, firstx, lox, nx, ax, wx, ph, acc, o,
                               lo, hi, rnd)
                    continue
                for d in range(ty):
                    r = _clamp(fy * (ay + ky) + firsty + d, ny)
                    slot = r % ty
                    if ring_row[slot] != r:
                        _z_row(x, b, zrows, r - loy, wz, fz, ring[slot])
                        ring_row[slot] = r
                    slots[d] = slot
                _y_row(ring, slots, wy, t2)
                if fx == 1:
                    _finish(t2[xo:xo + XCo], o, lo, hi, rnd)
                else:
                    _x_row(t2, C, fx, firstx, lox, nx, ax, wx, ph, acc, o, lo, hi, rnd)


def key(v, mask):
    """Integers: the unsigned bits with the sign bit flipped when ``mask`` has it (an
    order-preserving map of signed onto unsigned); floats: ``v`` itself."""
    return v ^ mask


@overload(key, jit_options={"cache": True})
def _key(v, mask):
    if isinstance(v, nb.types.Float):
        return lambda v, mask: v
    return lambda v, mask: v ^ mask


# -- block methods ------------------------------------------------------------------------
#
# The block of output (kz, ky, kx) is x[fz*kz + dz, fy*ky + dy, fx*kx + dx] (the brick
# starts at the first block). Rows of the output are built from the block's input rows
# (dz, dy) in C order, each adding its dx offsets in order.


@nb.njit(**_JIT)
def mean_float(x, out, C, geo, acc):
    """MEAN of floats: ``acc = x0``, ``acc = acc + xk`` over the block in C order, ``/ K``."""
    B = x.shape[0]
    _, Zo, Yo, XCo = out.shape
    fz, fy, fx = geo[0, 0], geo[1, 0], geo[2, 0]
    kdiv = acc[:1].copy()
    kdiv[0] = fz * fy * fx  # K in the compute dtype (exact)
    kd = kdiv[0]
    nk = XCo // C
    for b in range(B):
        for kz in range(Zo):
            for ky in range(Yo):
                first = True
                for dz in range(fz):
                    for dy in range(fy):
                        src = x[b, fz * kz + dz, fy * ky + dy]
                        if C == 1 and fx == 2:
                            if first:
                                for k in range(nk):
                                    a = src[2 * k]
                                    acc[k] = a + src[2 * k + 1]
                            else:
                                for k in range(nk):
                                    a = acc[k] + src[2 * k]
                                    acc[k] = a + src[2 * k + 1]
                        else:
                            for dx in range(fx):
                                s = src[dx * C:]
                                if first and dx == 0:
                                    for k in range(nk):
                                        for c in range(C):
                                            acc[k * C + c] = s[fx * k * C + c]
                                else:
                                    for k in range(nk):
                                        for c in range(C):
                                            acc[k * C + c] = acc[k * C + c] + s[fx * k * C + c]
                        first = False
                o = out[b, kz, ky]
                for m in range(XCo):
                    o[m] = acc[m] / kd


@nb.njit(**_JIT)
def mean_int(x, out, C, geo, acc, mask, offset):
    """MEAN of integers up to 32 bits: exact sum in ``acc``'s dtype, ``(S + K//2) // K``.

    ``x`` and ``out`` are unsigned views; signed values are summed as their keys
    ``v + offset`` (``key``: the sign bit flipped, ``offset = 2**(bits-1)``), so
    ``S = sum(keys) - K*offset``.
    """
    B = x.shape[0]
    _, Zo, Yo, XCo = out.shape
    fz, fy, fx = geo[0, 0], geo[1, 0], geo[2, 0]
    count = fz * fy * fx
    half = count // 2 - count * offset
    shift = -1
    if count & (count - 1) == 0:
        shift = 0
        while (1 << shift) < count:
            shift += 1
    nk = XCo // C
    for b in range(B):
        for kz in range(Zo):
            for ky in range(Yo):
                acc[:] = half
                for dz in range(fz):
                    for dy in range(fy):
                        src = x[b, fz * kz + dz, fy * ky + dy]
                        if C == 1 and fx == 2:
                            for k in range(nk):
                                acc[k] += key(src[2 * k], mask)
                                acc[k] += key(src[2 * k + 1], mask)
                        else:
                            for dx in range(fx):
                                s = src[dx * C:]
                                for k in range(nk):
                                    for c in range(C):
                                        acc[k * C + c] += key(s[fx * k * C + c], mask)
                o = out[b, kz, ky]
                if shift >= 0:
                    for m in range(XCo):
                        o[m] = acc[m] >> shift
                else:
                    for m in range(XCo):
                        o[m] = acc[m] // count


@nb.njit(**_JIT)
def mean_int64(x, out, C, geo, qs, ex, kq):
    """MEAN of 64-bit integers: ``x = K*q + r``, ``sum(q) + (2*sum(r) + K) // (2K)``.

    ``qs`` and ``ex`` are scratch rows of the input dtype, ``kq`` holds ``K`` in it.
    """
    B = x.shape[0]
    _, Zo, Yo, XCo = out.shape
    fz, fy, fx = geo[0, 0], geo[1, 0], geo[2, 0]
    count = fz * fy * fx
    kt = kq[0]
    rs = np.empty(XCo, dtype=np.int64)
    nk = XCo // C
    for b in range(B):
        for kz in range(Zo):
            for ky in range(Yo):
                qs[:] = 0
                rs[:] = 0
                for dz in range(fz):
                    for dy in range(fy):
                        src = x[b, fz * kz + dz, fy * ky + dy]
                        for dx in range(fx):
                            s = src[dx * C:]
                            for k in range(nk):
                                for c in range(C):
                                    v = s[fx * k * C + c]
                                    q = v // kt
                                    qs[k * C + c] += q
                                    rs[k * C + c] += np.int64(v - q * kt)
                o = out[b, kz, ky]
                for m in range(XCo):
                    ex[m] = (2 * rs[m] + count) // (2 * count)
                    o[m] = qs[m] + ex[m]


@nb.njit(**_JIT)
def _pick(a, v, is_min):
    """``minimum``/``maximum`` as NumPy's: a NaN on either side gives NaN."""
    take = (v < a) if is_min else (v > a)
    return v if take | (v != v) else a


@nb.njit(**_JIT)
def min_max(x, out, C, geo, is_min, mask):
    """MIN or MAX over each block (NaN-propagating); integers as unsigned keys (``key``)."""
    B = x.shape[0]
    _, Zo, Yo, XCo = out.shape
    fz, fy, fx = geo[0, 0], geo[1, 0], geo[2, 0]
    nk = XCo // C
    for b in range(B):
        for kz in range(Zo):
            for ky in range(Yo):
                o = out[b, kz, ky]
                first = True
                for dz in range(fz):
                    for dy in range(fy):
                        src = x[b, fz * kz + dz, fy * ky + dy]
                        if C == 1 and fx == 2:
                            if first:
                                for k in range(nk):
                                    o[k] = _pick(key(src[2 * k], mask), key(src[2 * k + 1], mask),
                                                 is_min)
                            else:
                                for k in range(nk):
                                    a = _pick(o[k], key(src[2 * k], mask), is_min)
                                    o[k] = _pick(a, key(src[2 * k + 1], mask), is_min)
                            first = False
                            continue
                        for dx in range(fx):
                            s = src[dx * C:]
                            for k in range(nk):
                                for c in range(C):
                                    m = k * C + c
                                    v = key(s[fx * k * C + c], mask)
                                    o[m] = v if first else _pick(o[m], v, is_min)
                            first = False
                for m in range(XCo):
                    o[m] = key(o[m], mask)


#: Ciura's gap sequence, extended by 2.25x (Shell sort of the blocks of MODE).
_GAPS = np.array([1, 4, 10, 23, 57, 132, 301, 701, 1577, 3548, 7983, 17961, 40412],
                 dtype=np.int64)


@nb.njit(**_JIT)
def _shell_sort(a):
    """Sort ``a`` in place (small, compiles fast: numba's quicksort takes seconds)."""
    n = a.size
    g = 0
    while g + 1 < _GAPS.size and _GAPS[g + 1] < n:
        g += 1
    while g >= 0:
        gap = _GAPS[g]
        for i in range(gap, n):
            v = a[i]
            j = i
            while j >= gap and a[j - gap] > v:
                a[j] = a[j - gap]
                j -= gap
            a[j] = v
        g -= 1


@nb.njit(**_JIT)
def mode(x, out, C, geo, vals, cnt, best, mask):
    """MODE: the value with the largest count in each block, ties to the smallest.

    ``x`` and ``out`` are unsigned views, compared as keys (``key``: signed order).
    ``vals`` is a ``(K, X*C)`` scratch of that dtype, ``cnt`` and ``best`` rows of it
    (counts up to :data:`MODE_COUNT_MAX` fit any integer dtype). Small blocks count
    equal pairs (vectorized along the row), large blocks sort each block.
    """
    B = x.shape[0]
    _, Zo, Yo, XCo = out.shape
    fz, fy, fx = geo[0, 0], geo[1, 0], geo[2, 0]
    K = fz * fy * fx
    nk = XCo // C
    col = np.empty(K, dtype=vals.dtype)
    for b in range(B):
        for kz in range(Zo):
            for ky in range(Yo):
                i = 0
                for dz in range(fz):
                    for dy in range(fy):
                        src = x[b, fz * kz + dz, fy * ky + dy]
                        for dx in range(fx):
                            s = src[dx * C:]
                            v = vals[i]
                            if C == 1:
                                for k in range(nk):
                                    v[k] = key(s[fx * k], mask)
                            else:
                                for k in range(nk):
                                    for c in range(C):
                                        v[k * C + c] = key(s[fx * k * C + c], mask)
                            i += 1
                o = out[b, kz, ky]
                if K <= MODE_COUNT_MAX:
                    o[:] = vals[0]
                    best[:] = 0
                    for i in range(K):
                        vi = vals[i]
                        cnt[:] = 0
                        for j in range(K):
                            vj = vals[j]
                            for m in range(XCo):
                                cnt[m] += vj[m] == vi[m]
                        for m in range(XCo):
                            c = cnt[m]
                            v = vi[m]
                            better = (c > best[m]) | ((c == best[m]) & (v < o[m]))
                            best[m] = c if better else best[m]
                            o[m] = v if better else o[m]
                    for m in range(XCo):
                        o[m] = key(o[m], mask)
                else:
                    for m in range(XCo):
                        for i in range(K):
                            col[i] = vals[i, m]
                        _shell_sort(col)
                        top = col[0]
                        top_n = 0
                        run = 0
                        for i in range(K):
                            run = run + 1 if i > 0 and col[i] == col[i - 1] else 1
                            if run > top_n:
                                top_n = run
                                top = col[i]
                        o[m] = key(top, mask)
