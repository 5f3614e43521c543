"""Vectorisable elementary functions for the activation kernels: exp, log1p, tanh, erf, erfc,
sin, cos.

libm's functions are opaque scalar calls that keep a loop ``dst[i] = f(src[i])`` scalar
(10-14 ns per element). These are fdlibm / Cephes algorithms written as straight-line code
(range reduction with bit-cast exponents, polynomials or rationals, branches that LLVM turns
into selects), so that LLVM vectorises the loops. Same recipe as the generator's log and
sin / cos (``rng``); the bit casts and the shared log / sin / cos kernels live in
``fdlibm.py``.

All functions take and return float64, are valid for every input (finite, +-inf, NaN) and
agree with numpy / scipy to a few ulp (measured in ``tests/test_activations.py``):

- ``exp``      fdlibm ``e_exp.c``: x = k ln2 + r, |r| <= ln2/2, rational for exp(r), times
               2^k by an exponent-bit add and one bit-cast power of two (correct overflow to
               inf and gradual underflow to subnormals, no branch);
- ``log1p_unit`` log(1 + x) for 0 <= x <= 1 only (softplus), fdlibm's ``e_log.c`` kernel on an
               exactly reduced argument;
- ``tanh``     Cephes ``tanh.c``: rational for |x| < 0.625, else 1 - 2 / (exp(2|x|) + 1);
               exactly odd (sign by bit-copy), exactly +-1 for |x| >= 19.1;
- ``erf`` / ``erfc`` fdlibm ``s_erf.c`` (rationals on four intervals, tails with two exps);
- ``sin`` / ``cos`` Cody-Waite reduction by pi/2 in four parts (fdlibm ``e_rem_pio2.c``'s
               medium case), fdlibm ``k_sin.c`` / ``k_cos.c`` kernels. For finite
               |x| > TRIG_MAX (~2^20 pi/2, beyond what the reduction handles) they call libm:
               that branch, even never taken, keeps a loop scalar, so the array kernels check
               ``trig_reducible`` on the whole array first and then run a loop of
               ``sin_reduced`` / ``cos_reduced`` (the same code without the libm branch).

fdlibm's special-case branches are replaced by clamps and selects; unused lanes are clamped
so that they raise no floating-point flags (numpy would warn). The Cody-Waite reductions go
through ``_strict_sub_mul``, which the kernels' ``reassoc`` cannot regroup. The scalar activation
functions in ``kernels/activations.py`` call these, and so do the numpy ufuncs compiled from
them (``mcsim.activations``, built without fast-math: the code is accurate either way).
"""

from __future__ import annotations

import math

import numpy as np
from numba.core import types
from numba.extending import intrinsic

from .jit import inline
from .fdlibm import LN2_HI, LN2_LO, bits_f64, f64_bits, log_kernel, sincos_quadrants

__all__ = ["exp", "log1p_unit", "tanh", "erf", "erfc", "sin", "cos", "sin_reduced",
           "cos_reduced", "trig_reducible", "TRIG_MAX", "copysign"]

_SIGN = np.int64(-0x8000000000000000)
_ABS = np.int64(0x7FFFFFFFFFFFFFFF)
_HI32 = np.int64(-0x100000000)        # 0xFFFFFFFF00000000: clears the low 32 bits
_I52 = np.int64(52)
_I1023 = np.int64(1023)
_I1 = np.int64(1)


@intrinsic
def _strict_sub_mul(typingctx, a, b, c):
    # a - b * c as two roundings in exactly this order, whatever the caller's fast-math
    # flags: under `reassoc` LLVM regroups a Cody-Waite reduction (x - k c1) - k c2 into
    # x - k (c1 + c2) and loses the low part. Numba adds the kernel's flags only to float
    # instructions that have none, so these two get `nsz` alone (no reassoc, no contract).
    if all(isinstance(t, types.Float) and t.bitwidth == 64 for t in (a, b, c)):

        def codegen(context, builder, sig, args):
            prod = builder.fmul(args[1], args[2], flags=("nsz",))
            return builder.fsub(args[0], prod, flags=("nsz",))

        return types.float64(types.float64, types.float64, types.float64), codegen
    return None


@inline
def copysign(mag, sgn):
    """|mag| with the sign bit of sgn (bitwise: exact under any fast-math flags)."""
    return bits_f64((f64_bits(mag) & _ABS) | (f64_bits(sgn) & _SIGN))


# --- exp -------------------------------------------------------------------------------------
_INV_LN2 = 1.44269504088896338700e+00
_EXP_P1 = 1.66666666666666019037e-01
_EXP_P2 = -2.77777777770155933842e-03
_EXP_P3 = 6.61375632143793436117e-05
_EXP_P4 = -1.65339022054652515390e-06
_EXP_P5 = 4.13813679705723846039e-08
_EXP_MAX = 710.0      # exp(710) overflows: clamped inputs still give inf
_EXP_MIN = -746.0     # exp(-746) < 2^-1075 rounds to 0


@inline
def _pow2(k):
    # 2^k as float64 for -1022 <= k <= 1023 (bit-cast of the biased exponent)
    return bits_f64((k + _I1023) << _I52)


@inline
def exp(x):
    """e^x (fdlibm e_exp.c without branches); exact inf / 0 / NaN behaviour."""
    # clamp: NaN fails both comparisons and becomes _EXP_MAX (finite, no poison in the
    # float -> int conversion); restored at the end
    xc = x if x < _EXP_MAX else _EXP_MAX
    xc = xc if xc > _EXP_MIN else _EXP_MIN
    kf = np.floor(xc * _INV_LN2 + 0.5)
    # k * ln2_hi is exact (ln2_hi has 32 significant bits, |k| <= 1077)
    r = _strict_sub_mul(_strict_sub_mul(xc, kf, LN2_HI), kf, LN2_LO)
    t = r * r
    c = r - t * (_EXP_P1 + t * (_EXP_P2 + t * (_EXP_P3 + t * (_EXP_P4 + t * _EXP_P5))))
    y = 1.0 + (r + r * c / (2.0 - c))
    # times 2^k in two steps, for k in [-1077, 1024]: 2^(k >> 1) by adding to the exponent
    # bits (exact, y stays normal), then one multiply by the normal 2^(k - (k >> 1)), which
    # overflows to inf or underflows gradually with one rounding like libm. (Two float
    # multiplies would be regrouped under `reassoc` into y * (2^k1 2^k2), which overflows.)
    k = np.int64(np.int32(kf))
    k1 = k >> _I1
    y = bits_f64(f64_bits(y) + (k1 << _I52)) * _pow2(k - k1)
    return x if x != x else y


# --- log1p on [0, 1] -------------------------------------------------------------------------
_SQRT2_M1 = 0.41421356237309503


@inline
def log1p_unit(x):
    """log(1 + x) for 0 <= x <= 1 (and NaN -> NaN), within ~1 ulp.

    fdlibm's log kernel log(1 + f) for |f| <= sqrt(2) - 1 on an exact f: f = x itself for
    x <= sqrt(2) - 1, else log(1 + x) = ln 2 + log(1 + f) with f = (x - 1) / 2 (exact for
    x >= 1/2 by Sterbenz; half an ulp of f otherwise, harmless). No 1 + x is ever rounded.
    """
    big = x > _SQRT2_M1
    f = (x - 1.0) * 0.5 if big else x
    dk = 1.0 if big else 0.0
    return log_kernel(f, dk)


# --- tanh ------------------------------------------------------------------------------------
_TANH_P0 = -9.64399179425052238628e-1
_TANH_P1 = -9.92877231001918586564e1
_TANH_P2 = -1.61468768441708447952e3
_TANH_Q0 = 1.12811678491632931402e2
_TANH_Q1 = 2.23548839060100448583e3
_TANH_Q2 = 4.84406305325125486048e3


@inline
def tanh(x):
    """tanh(x) (Cephes tanh.c, branch-free); odd bitwise, +-1 exactly for |x| >= 19.1."""
    a = abs(x)
    a0 = a if a < 0.625 else 0.625                 # unused lanes: no overflow in z^3
    z = a0 * a0
    p = z * (_TANH_P2 + z * (_TANH_P1 + z * _TANH_P0))
    q = _TANH_Q2 + z * (_TANH_Q1 + z * (_TANH_Q0 + z))
    small = a0 + a0 * (p / q)
    # a >= 0.625: 2 / (e + 1) <= 0.45, so the subtraction loses nothing. a is capped at 20
    # (tanh = 1 exactly from 19.1) so that exp raises no overflow flag; NaN stays NaN.
    ac = 20.0 if a > 20.0 else a
    big = 1.0 - 2.0 / (exp(2.0 * ac) + 1.0)
    return copysign(small if a < 0.625 else big, x)


# --- erf / erfc ------------------------------------------------------------------------------
_ERX = 8.45062911510467529297e-01
_PP0 = 1.28379167095512558561e-01
_PP1 = -3.25042107247001499370e-01
_PP2 = -2.84817495755985104766e-02
_PP3 = -5.77027029648944159157e-03
_PP4 = -2.37630166566501626084e-05
_QQ1 = 3.97917223959155352819e-01
_QQ2 = 6.50222499887672944485e-02
_QQ3 = 5.08130628187576562776e-03
_QQ4 = 1.32494738004321644526e-04
_QQ5 = -3.96022827877536812320e-06
_PA0 = -2.36211856075265944077e-03
_PA1 = 4.14856118683748331666e-01
_PA2 = -3.72207876035701323847e-01
_PA3 = 3.18346619901161753674e-01
_PA4 = -1.10894694282396677476e-01
_PA5 = 3.54783043256182359371e-02
_PA6 = -2.16637559486879084300e-03
_QA1 = 1.06420880400844228286e-01
_QA2 = 5.40397917702171048937e-01
_QA3 = 7.18286544141962662868e-02
_QA4 = 1.26171219808761642112e-01
_QA5 = 1.36370839120290507362e-02
_QA6 = 1.19844998467991074170e-02
_RA0 = -9.86494403484714822705e-03
_RA1 = -6.93858572707181764372e-01
_RA2 = -1.05586262253232909814e+01
_RA3 = -6.23753324503260060396e+01
_RA4 = -1.62396669462573470355e+02
_RA5 = -1.84605092906711035994e+02
_RA6 = -8.12874355063065934246e+01
_RA7 = -9.81432934416914548592e+00
_SA1 = 1.96512716674392571292e+01
_SA2 = 1.37657754143519042600e+02
_SA3 = 4.34565877475229228821e+02
_SA4 = 6.45387271733267880336e+02
_SA5 = 4.29008140027567833386e+02
_SA6 = 1.08635005541779435134e+02
_SA7 = 6.57024977031928170135e+00
_SA8 = -6.04244152148580987438e-02
_RB0 = -9.86494292470009928597e-03
_RB1 = -7.99283237680523006574e-01
_RB2 = -1.77579549177547519889e+01
_RB3 = -1.60636384855821916062e+02
_RB4 = -6.37566443368389627722e+02
_RB5 = -1.02509513161107724954e+03
_RB6 = -4.83519191608651397019e+02
_SB1 = 3.03380607434824582924e+01
_SB2 = 3.25792512996573918826e+02
_SB3 = 1.53672958608443695994e+03
_SB4 = 3.19985821950859553908e+03
_SB5 = 2.55305040643316442583e+03
_SB6 = 4.74528541206955367215e+02
_SB7 = -2.24409524465858183362e+01
_ERF_SMALL = 0.84375
_ERF_MID = 1.25
_ERF_TAIL = 1.0 / 0.35
_ERF_CLAMP = 28.0     # erf = 1 and erfc = 0 (underflow) beyond


@inline
def _erf_parts(a):
    # For a = |x| >= 0 (or NaN): (y, r), fdlibm's quantities on a's interval:
    #   a < 0.84375:      y = P/Q with erf(a) = a + a y
    #   a < 1.25:         y = P/Q with erf(a) = erx + y, erfc(a) = (1 - erx) - y
    #   else (a <= 28):   r = erfc(a) a = exp(-z^2 - 0.5625) exp((z - a)(z + a) + R/S)
    # Numerator and denominator are selected per interval first, so there is one division.
    a = a if a < _ERF_CLAMP else _ERF_CLAMP         # also keeps inf - inf out of the tail
    z = a * a
    ps = _PP0 + z * (_PP1 + z * (_PP2 + z * (_PP3 + z * _PP4)))
    qs = 1.0 + z * (_QQ1 + z * (_QQ2 + z * (_QQ3 + z * (_QQ4 + z * _QQ5))))
    s = a - 1.0
    pm = _PA0 + s * (_PA1 + s * (_PA2 + s * (_PA3 + s * (_PA4 + s * (_PA5 + s * _PA6)))))
    qm = 1.0 + s * (_QA1 + s * (_QA2 + s * (_QA3 + s * (_QA4 + s * (_QA5 + s * _QA6)))))
    # the tail rationals are used for a >= 1.25 only; z >= 1 keeps the unused lanes free of
    # division by zero and overflow (floating-point flags show up as numpy warnings)
    t = 1.0 / (z if z > 1.0 else 1.0)
    near = a < _ERF_TAIL
    # [1.25, 1/0.35): ra / sa, beyond: rb / sb (degrees padded with zeros)
    r7 = _RA7 if near else 0.0
    r6 = _RA6 if near else _RB6
    r5 = _RA5 if near else _RB5
    r4 = _RA4 if near else _RB4
    r3 = _RA3 if near else _RB3
    r2 = _RA2 if near else _RB2
    r1 = _RA1 if near else _RB1
    r0 = _RA0 if near else _RB0
    s8 = _SA8 if near else 0.0
    s7 = _SA7 if near else _SB7
    s6 = _SA6 if near else _SB6
    s5 = _SA5 if near else _SB5
    s4 = _SA4 if near else _SB4
    s3 = _SA3 if near else _SB3
    s2 = _SA2 if near else _SB2
    s1 = _SA1 if near else _SB1
    pt = r0 + t * (r1 + t * (r2 + t * (r3 + t * (r4 + t * (r5 + t * (r6 + t * r7))))))
    qt = 1.0 + t * (s1 + t * (s2 + t * (s3 + t * (s4 + t * (s5 + t * (s6 + t * (s7
                                                                          + t * s8)))))))
    small = a < _ERF_SMALL
    mid = a < _ERF_MID
    num = ps if small else (pm if mid else pt)
    den = qs if small else (qm if mid else qt)
    y = num / den
    zh = bits_f64(f64_bits(a) & _HI32)           # a with 21 mantissa bits: zh^2 exact
    r = exp(-zh * zh - 0.5625) * exp((zh - a) * (zh + a) + y)
    return y, r


@inline
def erf(x):
    """erf(x) (fdlibm s_erf.c, branch-free); odd bitwise, +-1 exactly for |x| >= 5.93."""
    a = abs(x)
    y, r = _erf_parts(a)
    if a < _ERF_SMALL:
        v = a + a * y
    elif a < _ERF_MID:
        v = _ERX + y
    else:
        v = 1.0 - r / (a if a > 1.0 else 1.0)      # (no 0-division in unused lanes)
    return x if x != x else copysign(v, x)


@inline
def erfc(x):
    """erfc(x) (fdlibm s_erf.c, branch-free); full relative precision in the upper tail."""
    a = abs(x)
    y, r = _erf_parts(a)
    # |x| < 0.84375: erf(x) = x + x y
    xy = x * y
    small = (1.0 - (x + xy)) if x < 0.25 else (0.5 - (xy + (x - 0.5)))
    mid = ((1.0 - _ERX) - y) if x >= 0.0 else (1.0 + (_ERX + y))
    ra = r / (a if a > 1.0 else 1.0)               # (no 0-division in unused lanes)
    tail = ra if x >= 0.0 else 2.0 - ra
    if a < _ERF_SMALL:
        v = small
    elif a < _ERF_MID:
        v = mid
    else:
        v = tail
    return x if x != x else v


# --- sin / cos -------------------------------------------------------------------------------
_TWO_OVER_PI = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e+00     # first 33 bits of pi/2
_PIO2_2 = 6.07710050630396597660e-11     # next 33 bits
_PIO2_3 = 2.02226624871116645580e-21     # next 33 bits
_PIO2_3T = 8.47842766036889956997e-32    # pi/2 - (_PIO2_1 + _PIO2_2 + _PIO2_3)
#: |x| up to which the 4-part reduction is used (k * _PIO2_i exact for |k| < 2^20)
TRIG_MAX = 1.6e6


@inline
def _sin_cos_reduced(x):
    # (sin x, cos x) for |x| <= TRIG_MAX: x = k pi/2 + r with |r| <= ~pi/4, then the fdlibm
    # kernels and a rotation by k quarter turns (selects, as in rng._sincos_2pi).
    xc = x if abs(x) <= TRIG_MAX else 0.0          # out-of-range lanes: a harmless value
    kf = np.floor(xc * _TWO_OVER_PI + 0.5)
    r = _strict_sub_mul(_strict_sub_mul(xc, kf, _PIO2_1), kf, _PIO2_2)
    r = _strict_sub_mul(_strict_sub_mul(r, kf, _PIO2_3), kf, _PIO2_3T)
    return sincos_quadrants(r, np.int64(np.int32(kf)))


@inline
def trig_reducible(x):
    """True where ``sin_reduced`` / ``cos_reduced`` are exact: |x| <= TRIG_MAX, inf, NaN."""
    a = abs(x)
    return not (a > TRIG_MAX and a < np.inf)


@inline
def sin_reduced(x):
    """sin(x) without libm, for ``trig_reducible(x)`` (NaN for inf and NaN, like numpy)."""
    s, _ = _sin_cos_reduced(x)
    return s if abs(x) <= TRIG_MAX else x - x


@inline
def cos_reduced(x):
    """cos(x) without libm, for ``trig_reducible(x)`` (NaN for inf and NaN, like numpy)."""
    _, c = _sin_cos_reduced(x)
    return c if abs(x) <= TRIG_MAX else x - x


@inline
def sin(x):
    """sin(x) for every x: ``sin_reduced`` where reducible, libm beyond TRIG_MAX."""
    return sin_reduced(x) if trig_reducible(x) else math.sin(x)


@inline
def cos(x):
    """cos(x) for every x: ``cos_reduced`` where reducible, libm beyond TRIG_MAX."""
    return cos_reduced(x) if trig_reducible(x) else math.cos(x)
