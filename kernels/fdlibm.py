"""fdlibm-style scalar kernels shared by the generator (``rng``) and the activations
(``vmath``): bit casts between float64 and int64, the log kernel and the sin / cos kernels.

libm's log / sin / cos are opaque scalar calls that stop LLVM from vectorising a loop. These
are the fdlibm (Sun, 1993) algorithms without their special-case branches, valid on the
ranges their callers use; FMA contraction only makes them more accurate. Their errors are
measured in tests/test_rng.py and tests/test_activations.py.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from .jit import inline

__all__ = ["f64_bits", "bits_f64", "log_kernel", "sincos_quadrants", "LN2_HI", "LN2_LO"]


@intrinsic
def f64_bits(typingctx, x):
    # Reinterpret a float64 as int64 (no conversion); vectorises to nothing.
    if isinstance(x, types.Float) and x.bitwidth == 64:

        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], ir.IntType(64))

        return types.int64(types.float64), codegen
    return None


@intrinsic
def bits_f64(typingctx, x):
    # Reinterpret an int64 as float64.
    if isinstance(x, types.Integer) and x.bitwidth == 64:

        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], ir.DoubleType())

        return types.float64(x), codegen
    return None


LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01


@inline
def log_kernel(f, dk):
    # dk ln 2 + log(1 + f) for |f| <= sqrt(2) - 1 (fdlibm e_log.c).
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    return s * (hfsq + t1 + t2) + dk * LN2_LO - hfsq + f + dk * LN2_HI


_SIN1 = -1.66666666666666324348e-01
_SIN2 = 8.33333333332248946124e-03
_SIN3 = -1.98412698298579493134e-04
_SIN4 = 2.75573137070700676789e-06
_SIN5 = -2.50507602534068634195e-08
_SIN6 = 1.58969099521155010221e-10
_COS1 = 4.16666666666666019037e-02
_COS2 = -1.38888888888741095749e-03
_COS3 = 2.48015872894767294178e-05
_COS4 = -2.75573143513906633035e-07
_COS5 = 2.08757232129817482790e-09
_COS6 = -1.13596475577881948265e-11
_HALF_PI = 0.5 * np.pi


@inline
def sincos_quadrants(x, q):
    # (sin, cos)(x + q pi/2) for |x| <= ~pi/4: the fdlibm kernels k_sin.c / k_cos.c on x,
    # then a rotation by q quarter turns with selects (no branches in a vector loop):
    # (sin, cos) -> (c, -s) -> (-s, -c) -> (-c, s).
    z = x * x
    w = z * z
    rs = _SIN2 + z * (_SIN3 + z * _SIN4) + z * w * (_SIN5 + z * _SIN6)
    s = x + z * x * (_SIN1 + z * rs)
    rc = z * (_COS1 + z * (_COS2 + z * _COS3)) + w * w * (_COS4 + z * (_COS5 + z * _COS6))
    hz = 0.5 * z
    v = 1.0 - hz
    c = v + (((1.0 - v) - hz) + z * rc)
    odd = (q & 1) != 0
    sin_out = c if odd else s
    cos_out = s if odd else c
    if (q & 2) != 0:
        sin_out = -sin_out
    if ((q + 1) & 2) != 0:
        cos_out = -cos_out
    return sin_out, cos_out
