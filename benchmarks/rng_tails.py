"""Exact moments of the philox32 normals: every one of the 2**31 radius and angle inputs.

    python benchmarks/rng_tails.py        (about a minute on one core)

philox32 makes ``z = r cos(2 pi v')`` (and ``r sin``) from two independent Philox words, with
``v = (float32(x >> 1) + 1/2) 2**-31`` and ``r = sqrt(-2 log v)`` in float32. For ideal
(uniform) words the moments of ``z`` are therefore exact finite sums over the 2**31 values of
``x >> 1``: ``E[z^p] = E[r^p] E[cos^p]``, each an average over all inputs of the very
kernels philox32 runs (``rng._box_muller_f32`` for r, ``f32math.sincos_2pi_f32``; left out:
the last float32 rounding of the product r cos, <= 2**-24 relative and of either sign). For
p = 2, 4, 6: the deviation from the exact normal moments (1, 3, 15), split into the part of
the 32-bit discretisation alone (the same sums in float64 with libm) and the float32
arithmetic, next to the standard error of the sample moment over 10**12 normals. (Summed in
blocks of 2**16 with a compensated sum across blocks: rounding of the sums ~1e-13.)
"""
from __future__ import annotations

import math

import numpy as np

from mcsim.kernels import f32math, rng
from mcsim.kernels.jit import kernel

N = 1 << 31            # values of x >> 1
BLOCK = 1 << 16        # numbers per call: uniforms of one block, then their normals


@kernel
def _radius_inputs(j0, buf):
    # buf (2 m,) float32 pairs (v_j, 0) for x >> 1 = j = j0 .. j0 + m - 1: the radius uniform
    # exactly as rng._v31 makes it, and angle 0, so that the kernel's z_0 = r * 1 = r exactly
    for i in range(buf.shape[0] // 2):
        buf[2 * i] = (np.float32(np.int32(j0 + i)) + np.float32(0.5)) * np.float32(1.0 / 2147483648.0)
        buf[2 * i + 1] = np.float32(0.0)


@kernel
def _block_sums(j0, radius, out):
    # out[0..2] += sums of r^2, r^4, r^6 (r = radius[2 i], float32 from the kernel);
    # out[3..5] of cos^2,4,6 and out[6..8] of sin^2,4,6 of the float32 sincos at v_j;
    # out[9..11] of (-2 log v_j)^1,2,3 in float64 libm (the 32-bit grid, ideal arithmetic)
    s = np.zeros(12)
    for i in range(radius.shape[0] // 2):
        v = (np.float32(np.int32(j0 + i)) + np.float32(0.5)) * np.float32(1.0 / 2147483648.0)
        r = np.float64(radius[2 * i])
        r2 = r * r
        sn32, cs32 = f32math.sincos_2pi_f32(v)
        c2 = np.float64(cs32) ** 2
        s2 = np.float64(sn32) ** 2
        e2 = -2.0 * np.log(np.float64(v))
        s[0] += r2
        s[1] += r2 * r2
        s[2] += r2 * r2 * r2
        s[3] += c2
        s[4] += c2 * c2
        s[5] += c2 * c2 * c2
        s[6] += s2
        s[7] += s2 * s2
        s[8] += s2 * s2 * s2
        s[9] += e2
        s[10] += e2 * e2
        s[11] += e2 * e2 * e2
    for q in range(12):
        out[q] += s[q]


def exact_sums() -> np.ndarray:
    """Averages over all 2**31 inputs: E r^2,4,6; E cos^2,4,6; E sin^2,4,6; ideal E r^2,4,6."""
    radius = np.empty(2 * BLOCK, dtype=np.float32)
    acc = np.zeros(12)
    total, comp = np.zeros(12), np.zeros(12)     # Kahan over the block sums
    for j0 in range(0, N, BLOCK):
        _radius_inputs(j0, radius)
        rng._box_muller_f32(radius)
        acc[:] = 0.0
        _block_sums(j0, radius, acc)
        y = acc - comp
        t = total + y
        comp = (t - total) - y
        total = t
    return total / N


def main() -> int:
    m = exact_sums()
    er = {2: m[0], 4: m[1], 6: m[2]}
    ec = {2: m[3], 4: m[4], 6: m[5]}
    es = {2: m[6], 4: m[7], 6: m[8]}
    ideal = {2: m[9], 4: m[10], 6: m[11]}
    exact_r = {2: 2.0, 4: 8.0, 6: 48.0}
    exact_c = {2: 0.5, 4: 3.0 / 8.0, 6: 5.0 / 16.0}
    exact_z = {2: 1.0, 4: 3.0, 6: 15.0}
    var_z = {2: 3.0 - 1.0, 4: 105.0 - 9.0, 6: 10395.0 - 225.0}
    r_max = math.sqrt(64.0 * math.log(2.0))
    print(f"largest |z|: {r_max:.4f}; P(|Z| > that) for an exact normal: "
          f"{math.erfc(r_max / math.sqrt(2.0)):.3g}")
    print(f"{'p':>2s} {'E z^p - exact (cos)':>20s} {'(sin)':>12s} {'32-bit grid alone':>18s} "
          f"{'float32 arithmetic':>19s} {'stderr, 1e12 normals':>21s}")
    for p in (2, 4, 6):
        dz_c = er[p] * ec[p] - exact_z[p]
        dz_s = er[p] * es[p] - exact_z[p]
        grid = (ideal[p] - exact_r[p]) * exact_c[p]
        arith = dz_c - grid
        print(f"{p:2d} {dz_c:20.3e} {dz_s:12.3e} {grid:18.3e} {arith:19.3e} "
              f"{math.sqrt(var_z[p] / 1e12):21.3e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
