"""Vectorisable float32 ``log`` and ``(sin, cos)(2 pi u)`` for the ``philox32`` normals (``rng``).

Float32 arithmetic runs 8 lanes per AVX2 register (4 for float64), so a loop that holds
only float32 and int32 values is vectorised twice as wide; a single float64 value in the
loop makes LLVM pick 4 lanes again (its vector width follows the widest type). The
polynomials are Cephes' ``logf`` / ``sinf`` / ``cosf`` (S. Moshier) without their special
cases, valid on the ranges ``rng`` uses (positive normal ``x``; ``u`` in ``[0, 1]``); their
errors (a few float32 ulp) are measured in tests/test_rng.py.

Every constant is a ``np.float32`` / ``np.int32`` global: a Python float literal is float64
in Numba and would promote the whole expression (and the loop) to float64.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from .jit import inline

__all__ = ["f32_bits", "bits_f32", "logf", "sincos_2pi_f32"]


@intrinsic
def f32_bits(typingctx, x):
    # Reinterpret a float32 as int32 (no conversion).
    if isinstance(x, types.Float) and x.bitwidth == 32:

        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], ir.IntType(32))

        return types.int32(types.float32), codegen
    return None


@intrinsic
def bits_f32(typingctx, x):
    # Reinterpret the low 32 bits of an integer as float32 (Numba widens int32 sums to int64).
    if isinstance(x, types.Integer):

        def codegen(context, builder, sig, args):
            v = args[0]
            if v.type.width != 32:
                v = builder.trunc(v, ir.IntType(32))
            return builder.bitcast(v, ir.FloatType())

        return types.float32(x), codegen
    return None


_F = np.float32
_ONE = _F(1.0)
_HALF = _F(0.5)
_FOUR = _F(4.0)
_HALF_PI = _F(0.5 * np.pi)
# logf: x = 2**e m, m in [sqrt(1/2), sqrt(2)), f = m - 1, log x = e ln 2 + f - f**2/2 + f**3 P(f)
_SQRT_HALF_BITS = np.int32(0x3F3504F3)
_SHIFT = np.int32(0x3F800000 - 0x3F3504F3)
_MANT = np.int32(0x007FFFFF)
_I23 = np.int32(23)
_I127 = np.int32(127)
_LN2_HI = _F(0.693359375)          # 0.693359375 + (-2.12194440e-4) = ln 2
_LN2_LO = _F(-2.12194440e-4)
_P0, _P1, _P2 = _F(7.0376836292e-2), _F(-1.1514610310e-1), _F(1.1676998740e-1)
_P3, _P4, _P5 = _F(-1.2420140846e-1), _F(1.4249322787e-1), _F(-1.6668057665e-1)
_P6, _P7, _P8 = _F(2.0000714765e-1), _F(-2.4999993993e-1), _F(3.3333331174e-1)
# sinf / cosf on [-pi/4, pi/4]
_S1, _S2, _S3 = _F(-1.9515295891e-4), _F(8.3321608736e-3), _F(-1.6666654611e-1)
_C1, _C2, _C3 = _F(2.443315711809948e-5), _F(-1.388731625493765e-3), _F(4.166664568298827e-2)
_Q1 = np.int32(1)
_Q2 = np.int32(2)


@inline
def logf(x):
    """Natural log of a positive normal float32 ``x`` (float32 result)."""
    ix = f32_bits(x) + _SHIFT
    e = np.float32(np.int32((ix >> _I23) - _I127))
    f = bits_f32((ix & _MANT) + _SQRT_HALF_BITS) - _ONE
    z = f * f
    p = ((((((((_P0 * f + _P1) * f + _P2) * f + _P3) * f + _P4) * f + _P5) * f + _P6) * f + _P7) * f
         + _P8)
    y = f * z * p + e * _LN2_LO - _HALF * z
    return f + y + e * _LN2_HI


@inline
def sincos_2pi_f32(u):
    """``(sin, cos)(2 pi u)`` for float32 ``u`` in ``[0, 1]``: exact reduction to a quadrant
    (``4u = q + t``, ``t`` in ``[-1/2, 1/2]``, exact in float32), the Cephes kernels at
    ``x = t pi/2``, then a rotation by ``q`` quarter turns with selects (no branches)."""
    y = _FOUR * u
    qf = np.floor(y + _HALF)
    x = (y - qf) * _HALF_PI
    q = np.int32(qf)
    z = x * x
    s = x + x * z * ((_S1 * z + _S2) * z + _S3)
    c = _ONE - _HALF * z + z * z * ((_C1 * z + _C2) * z + _C3)
    odd = (q & _Q1) != 0
    sin_out = c if odd else s
    cos_out = s if odd else c
    if (q & _Q2) != 0:
        sin_out = -sin_out
    if ((q + _Q1) & _Q2) != 0:
        cos_out = -cos_out
    return sin_out, cos_out
