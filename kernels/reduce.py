"""Sums in a fixed order, the same on every x86-64 node (AVX2 or AVX-512) and every build.

Under the ``reassoc`` flag LLVM vectorises a reduction ``acc += x[i] * y[i]`` with as many
partial sums as the target's vector width times its interleave count, so AVX2 and AVX-512
builds (or two CPU names with other cost models) round differently in the last bits. The
functions here are compiled with ``jit.ordered`` (the kernels' fast-math flags without
``reassoc``): LLVM keeps the order written below whatever it vectorises, and LLVM's per-
instruction flags keep that order when it inlines them into a ``reassoc`` kernel.

Order of ``dot(x, y)`` over n = len(x) terms (``total`` and ``dot3`` alike): LANES = 8
partial sums, s_j = sum over i = j mod 8, i < 8 floor(n / 8), each in increasing i (each
term fused into its sum: fma(x_i, y_i, s_j) where the target has FMA, as every x86-64-v3
node has); then ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)); then the remaining
terms in increasing i. ``dot_seq(acc, x, y)`` is the plain sequential acc - sum x_i y_i
(small loops: Cholesky, k x k products).

``dot`` runs its 8 partial sums as one 8-lane vector (``kernels/lanes.py``: one zmm register
on AVX-512, two ymm on AVX2) when both arrays are C-contiguous float64: each lane does the
scalar sum's operations, so the bits are the same as the scalar code's (which other layouts
get), only ~4-8x fewer instructions.

The bitwise promise covers targets with FMA (Haswell and later, x86-64-v3 and up): a build
without FMA rounds every product separately.
"""

from __future__ import annotations

from numba.extending import overload

from .jit import ORDERED_FASTMATH, ordered
from .lanes import dot_lanes, is_c_f64

__all__ = ["LANES", "dot", "scaled_dot", "dot3", "total", "sub_dot_seq", "dot_seq"]

#: number of partial sums of ``dot``, ``dot3`` and ``total`` (fixed: not the vector width)
LANES = 8


def _dot_partials(x, y, full):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(_dot_partials, jit_options=dict(fastmath=set(ORDERED_FASTMATH), nogil=True,
                                          error_model="numpy"))
def _dot_partials_overload(x, y, full):
    # (s_0, ..., s_7) of dot over the first `full` (a multiple of 8) terms: one 8-lane vector
    # loop (kernels/lanes.py) for C-contiguous float64, else the same sums as 8 scalars; the
    # same operations either way, so the same bits.
    if is_c_f64(x) and is_c_f64(y):
        return lambda x, y, full: dot_lanes(x, y, full)

    def scalar(x, y, full):
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        for i in range(0, full, LANES):
            s0 += x[i] * y[i]
            s1 += x[i + 1] * y[i + 1]
            s2 += x[i + 2] * y[i + 2]
            s3 += x[i + 3] * y[i + 3]
            s4 += x[i + 4] * y[i + 4]
            s5 += x[i + 5] * y[i + 5]
            s6 += x[i + 6] * y[i + 6]
            s7 += x[i + 7] * y[i + 7]
        return s0, s1, s2, s3, s4, s5, s6, s7

    return scalar


@ordered
def dot(x, y):
    """sum_i x[i] y[i] over len(x) terms (y at least as long), in the order above."""
    n = x.shape[0]
    full = n - n % LANES
    s = _dot_partials(x, y, full)
    acc = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
    for i in range(full, n):
        acc += x[i] * y[i]
    return acc


@ordered
def scaled_dot(c, x, y):
    """c * dot(x, y) as written: outside a ``reassoc`` context, so that LLVM cannot fold the
    product with how c was formed (C_W / n times a dot product must not become C_W times the
    dot product over n, which overflows for C_W near the largest double)."""
    return c * dot(x, y)


@ordered
def dot3(x, y, z):
    """sum_i (x[i] y[i]) z[i] over len(x) terms, in the order above."""
    n = x.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    full = n - n % LANES
    for i in range(0, full, LANES):
        s0 += x[i] * y[i] * z[i]
        s1 += x[i + 1] * y[i + 1] * z[i + 1]
        s2 += x[i + 2] * y[i + 2] * z[i + 2]
        s3 += x[i + 3] * y[i + 3] * z[i + 3]
        s4 += x[i + 4] * y[i + 4] * z[i + 4]
        s5 += x[i + 5] * y[i + 5] * z[i + 5]
        s6 += x[i + 6] * y[i + 6] * z[i + 6]
        s7 += x[i + 7] * y[i + 7] * z[i + 7]
    acc = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for i in range(full, n):
        acc += x[i] * y[i] * z[i]
    return acc


@ordered
def total(x):
    """sum_i x[i] over len(x) terms, in the order above."""
    n = x.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    full = n - n % LANES
    for i in range(0, full, LANES):
        s0 += x[i]
        s1 += x[i + 1]
        s2 += x[i + 2]
        s3 += x[i + 3]
        s4 += x[i + 4]
        s5 += x[i + 5]
        s6 += x[i + 6]
        s7 += x[i + 7]
    acc = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for i in range(full, n):
        acc += x[i]
    return acc


@ordered
def sub_dot_seq(acc, x, y, n):
    """acc - x[0] y[0] - x[1] y[1] - ... - x[n-1] y[n-1], strictly in that order."""
    for i in range(n):
        acc -= x[i] * y[i]
    return acc


@ordered
def dot_seq(x, y, n):
    """x[0] y[0] + ... + x[n-1] y[n-1] from 0.0, strictly in that order."""
    acc = 0.0
    for i in range(n):
        acc += x[i] * y[i]
    return acc
