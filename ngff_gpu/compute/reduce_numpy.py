"""The NumPy reductions: the reference numerics every backend must reproduce.

Each function computes an output region of one :class:`~ngff_gpu.compute.step.LevelStep`
from a brick ``x`` that holds the input region starting at ``origin`` of an
input array of global shape ``in_shape``. Indices are clamped against the
global shape (edge replicate), never against the brick, so any brick that
covers :meth:`LevelStep.input_window` gives the same bits.

The order of every floating-point operation is part of the contract (the CUDA
kernels in ``kernels/`` follow it with ``--fmad=false``):

- GAUSSIAN: axes in increasing order; along an axis ``acc = w0*x0``, then
  ``acc = acc + wd*xd`` tap by tap, in the compute dtype; intermediates stay in
  the compute dtype; integers then ``rint`` and clip.
- MEAN: offsets of the block in C order; floats ``acc = x0``, ``acc = acc + xk``,
  then ``acc / K``; integers sum exactly and return ``floor(S/K + 1/2)``.
- MIN / MAX: any NaN in the block gives NaN.
- MODE: most frequent value, ties to the smallest.
"""

from __future__ import annotations

import itertools

import numpy as np

from ngff_gpu.compute.methods import Methods, check_dtype, compute_dtype
from ngff_gpu.compute.step import LevelStep, Region


def _axis_slice(ndim: int, axis: int, sl: slice) -> tuple[slice, ...]:
    return tuple(sl if a == axis else slice(None) for a in range(ndim))


def int_clip_bounds(dtype: np.dtype, ct: np.dtype) -> tuple[float, float]:
    """Clip bounds of integer ``dtype`` representable in float ``ct`` (never overflowing)."""
    info = np.iinfo(dtype)
    lo = ct.type(info.min)
    hi = ct.type(info.max)
    if int(hi) > info.max:  # 2**63 or 2**64 rounded up: step below
        hi = np.nextafter(hi, ct.type(0))
    return lo, hi


def finish(acc: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast a float result to ``dtype``: integers ``rint`` (half to even) and clip."""
    if dtype.kind in "iu":
        lo, hi = int_clip_bounds(dtype, acc.dtype)
        acc = np.rint(acc, out=acc)
        np.clip(acc, lo, hi, out=acc)
    return acc.astype(dtype, copy=False)


def _gaussian_axis(x, axis, step, origin, n, a, b, ct):
    """Fused blur + linear sample along one axis for outputs ``a..b-1``.

    Written straight into one output array; the brick is cast to the compute
    dtype once (exact), then ``acc = w0*x0``, ``acc = acc + wd*xd`` per tap.
    """
    f = step.factors[axis]
    w = step.axis_weights[axis]
    weights = np.asarray(w.weights, dtype=np.float64).astype(ct)
    if x.dtype != ct:
        x = x.astype(ct)
    shape = list(x.shape)
    shape[axis] = b - a
    out = np.empty(shape, dtype=ct)
    # Outputs whose taps never clamp form one strided interior; the few at the
    # edges use explicit (clamped) index lists.
    i_lo = max(a, -(-(0 - w.first) // f))
    i_hi = min(b, (n - 1 - w.last) // f + 1)
    i_hi = max(i_hi, i_lo)
    tmp = None
    for seg_a, seg_b in ((a, min(i_lo, b)), (i_lo, i_hi), (max(i_hi, a), b)):
        if seg_b <= seg_a:
            continue
        interior = seg_a >= i_lo and seg_b <= i_hi
        dst = out[_axis_slice(x.ndim, axis, slice(seg_a - a, seg_b - a))]
        if tmp is None or tmp.shape != dst.shape:
            tmp = np.empty(dst.shape, dtype=ct)
        for d, wd in enumerate(weights):
            if interior:
                start = f * seg_a + w.first + d - origin
                stop = start + f * (seg_b - seg_a - 1) + 1
                src = x[_axis_slice(x.ndim, axis, slice(start, stop, f))]
            else:
                idx = np.clip(f * np.arange(seg_a, seg_b) + w.first + d, 0, n - 1) - origin
                src = np.take(x, idx, axis=axis)
            if d == 0:
                np.multiply(src, wd, out=dst)
            else:
                np.multiply(src, wd, out=tmp)
                np.add(dst, tmp, out=dst)
    return out


#: Output slabs along axis 0 are sized so one slab's input stays in cache.
SLAB_BYTES = 1 << 21


def _gaussian(x, step, origin, in_shape, out_region, ct):
    """GAUSSIAN in the compute dtype: one fused pass per downsampled axis, in order."""
    out = x
    for axis in step.axes:
        out = _gaussian_axis(out, axis, step, origin[axis], in_shape[axis],
                             out_region[axis][0], out_region[axis][1], ct)
    # Axes with factor 1: keep only the output region.
    sl = tuple(
        slice(a - o, b - o) if f == 1 else slice(None)
        for (a, b), o, f in zip(out_region, origin, step.factors)
    )
    out = out[sl]
    return out.astype(ct) if out is x or out.dtype != ct else out


def _gaussian_slabs(x, step, origin, in_shape, out_region, dtype):
    """GAUSSIAN computed slab by slab along axis 0 (cache-sized working sets).

    Every output value is computed by the same operations in the same order
    whatever the slab, so slabbing changes no bit.
    """
    ct = compute_dtype(dtype)
    a0, b0 = out_region[0]
    plane = int(np.prod(x.shape[1:])) * np.dtype(ct).itemsize
    size = max(1, SLAB_BYTES // max(1, plane * step.factors[0]))
    if x.ndim < 2 or size >= b0 - a0:
        return finish(_gaussian(x.astype(ct, copy=False), step, origin, in_shape, out_region, ct),
                      dtype)
    result = np.empty(tuple(b - a for a, b in out_region), dtype=dtype)
    for s in range(a0, b0, size):
        e = min(s + size, b0)
        sub = ((s, e),) + tuple(out_region[1:])
        lo, hi = step.input_window(sub, in_shape)[0]
        # the cast (exact) happens per slab: the brick is never held twice in memory
        xs = x[lo - origin[0]:hi - origin[0]].astype(ct, copy=False)
        part = _gaussian(xs, step, (lo,) + tuple(origin[1:]), in_shape, sub, ct)
        result[s - a0:e - a0] = finish(part, dtype)
    return result


def _block_views(x, step, origin, out_region):
    """Yield the strided views of every block offset (C order), each of the output shape."""
    per_axis = []
    for axis, ((a, b), f) in enumerate(zip(out_region, step.factors)):
        start = f * a - origin[axis]
        per_axis.append([slice(start + o, start + f * (b - a - 1) + o + 1, f) for o in range(f)])
    for combo in itertools.product(*per_axis):
        yield x[combo]


def _slabs(x, step, out_region):
    """``out_region`` cut along axis 0 into slabs whose input is about
    :data:`SLAB_BYTES` (so one slab's working set stays in cache)."""
    if not out_region:
        return [out_region]
    a0, b0 = out_region[0]
    plane = int(np.prod(x.shape[1:])) * x.dtype.itemsize * step.factors[0]
    size = max(1, SLAB_BYTES // max(1, plane))
    return [((s, min(s + size, b0)),) + tuple(out_region[1:]) for s in range(a0, b0, size)]


def _int_block_sum(x, step, origin, out_region, acc_t):
    """Exact sum of every output's block, in ``acc_t``: axis by axis from the last
    (contiguous) one, each adding its ``f`` strided views. Integer sums do not
    depend on the order, so this is the sum over the block in any order."""
    total = x[tuple(slice(f * a - o, f * b - o)
                    for (a, b), f, o in zip(out_region, step.factors, origin))]
    summed = False
    for axis in reversed(range(x.ndim)):
        f = step.factors[axis]
        if f == 1:
            continue
        views = [total[_axis_slice(x.ndim, axis, slice(k, None, f))] for k in range(f)]
        acc = views[0].astype(acc_t)
        for view in views[1:]:
            np.add(acc, view, out=acc, dtype=acc_t, casting="unsafe")
        total, summed = acc, True
    return total if summed else total.astype(acc_t)


def _mean(x, step, origin, out_region, dtype):
    count = int(np.prod(step.factors))
    if dtype.kind == "f":
        ct = compute_dtype(dtype)
        acc = None
        for view in _block_views(x, step, origin, out_region):
            acc = view.astype(ct, copy=True) if acc is None else np.add(acc, view, out=acc, dtype=ct)
        acc /= ct.type(count)
        return acc.astype(dtype, copy=False)
    if dtype.itemsize <= 4:
        # Exact integer sum (int32 suffices for <= 16-bit values and K < 2**15), then
        # floor(S/K + 1/2) == (S + K//2) // K, a shift when K is a power of two.
        acc_t = np.int32 if dtype.itemsize <= 2 and count < 2**15 else np.int64
        result = np.empty(tuple(b - a for a, b in out_region), dtype=dtype)
        a0 = out_region[0][0] if out_region else 0
        for sub in _slabs(x, step, out_region):
            total = _int_block_sum(x, step, origin, sub, acc_t)
            total += count // 2
            if count & (count - 1) == 0:
                np.right_shift(total, count.bit_length() - 1, out=total)
            else:
                np.floor_divide(total, count, out=total)
            result[(slice(sub[0][0] - a0, sub[0][1] - a0),) if sub else ()] = total
        return result
    # 64-bit integers: x = K*q + r with 0 <= r < K, so sum(x)/K = Q + R/K exactly.
    acc_t = np.uint64 if dtype.kind == "u" else np.int64
    q_sum = r_sum = None
    for view in _block_views(x, step, origin, out_region):
        q = np.floor_divide(view, acc_t(count)).astype(acc_t)
        r = np.remainder(view, acc_t(count)).astype(np.int64)
        q_sum = q if q_sum is None else np.add(q_sum, q, out=q_sum)
        r_sum = r if r_sum is None else np.add(r_sum, r, out=r_sum)
    return (q_sum + ((2 * r_sum + count) // (2 * count)).astype(acc_t)).astype(dtype)


def _min_max(x, step, origin, out_region, dtype, is_min):
    op = np.minimum if is_min else np.maximum  # both propagate NaN
    acc = None
    for view in _block_views(x, step, origin, out_region):
        acc = view.copy() if acc is None else op(acc, view, out=acc)
    return acc.astype(dtype, copy=False)


def _mode(x, step, origin, out_region, dtype):
    values = np.stack(list(_block_views(x, step, origin, out_region)), axis=-1)
    values.sort(axis=-1)
    k = values.shape[-1]
    pos = np.arange(k)
    new_run = np.ones(values.shape, dtype=bool)
    new_run[..., 1:] = values[..., 1:] != values[..., :-1]
    run_start = np.maximum.accumulate(np.where(new_run, pos, 0), axis=-1)
    run_len = pos - run_start + 1  # length so far: maximal at each run's last element
    best = np.argmax(run_len, axis=-1)  # first maximum: the smallest of the tied values
    return np.take_along_axis(values, best[..., None], axis=-1)[..., 0].astype(dtype, copy=False)


def _nearest(x, step, origin, out_region, dtype):
    sl = []
    for axis, ((a, b), f) in enumerate(zip(out_region, step.factors)):
        start = f * a + (f - 1) // 2 - origin[axis]
        sl.append(slice(start, start + f * (b - a - 1) + 1, f))
    return x[tuple(sl)].copy()


def reduce_region(
    x: np.ndarray,
    step: LevelStep,
    origin: tuple[int, ...],
    in_shape: tuple[int, ...],
    out_region: Region,
) -> np.ndarray:
    """Compute ``out_region`` of one level step from brick ``x``.

    Parameters
    ----------
    x : numpy.ndarray
        Input brick; it must cover ``step.input_window(out_region, in_shape)``.
    step : LevelStep
        Relative factors and method.
    origin : tuple of int
        Global index of ``x[0, ..., 0]`` in the input level.
    in_shape : tuple of int
        Global shape of the input level (for edge clamping).
    out_region : tuple of (start, stop)
        Output region, in output-level indices.

    Returns
    -------
    numpy.ndarray
        The output region, in ``x``'s dtype.
    """
    dtype = check_dtype(x.dtype, step.method)
    window = step.input_window(out_region, in_shape)
    for axis, ((lo, hi), o, s) in enumerate(zip(window, origin, x.shape)):
        if lo < o or hi > o + s:
            raise ValueError(
                f"brick [{o}, {o + s}) on axis {axis} does not cover the window [{lo}, {hi})"
            )
    method = step.method
    if method is Methods.GAUSSIAN:
        return _gaussian_slabs(x, step, origin, in_shape, out_region, dtype)
    keep = tuple(
        (a, b) if f > 1 else (a, b) for (a, b), f in zip(out_region, step.factors)
    )
    if method is Methods.MEAN:
        return _mean(x, step, origin, keep, dtype)
    if method is Methods.NEAREST:
        return _nearest(x, step, origin, keep, dtype)
    if method is Methods.MODE:
        return _mode(x, step, origin, keep, dtype)
    return _min_max(x, step, origin, keep, dtype, method is Methods.MIN)


def reduce_full(x: np.ndarray, step: LevelStep) -> np.ndarray:
    """Compute a whole level from a whole input array."""
    out_shape = step.out_shape(x.shape)
    return reduce_region(x, step, (0,) * x.ndim, x.shape, tuple((0, s) for s in out_shape))
