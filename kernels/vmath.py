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
- ``erf`` / ``erfc`` own polynomial fits (an odd polynomial below 0.84375, else
               t exp(-x^2 + P(t)) with t = c / (c + |x|), for erfc written
               t exp(-x^2 + C0 + 2u) (1 + D(u)): one division and one exp, for erfc the
               exponent carried exactly; ``scripts/fit_erf.py`` computes the
               coefficients; bounds derived and measured, see the section);
- ``normal_cdf`` Phi(x) = erfc(-x / sqrt 2) / 2 for GELU, erfc's kernel without its selects;
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
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

from .jit import inline
from .fdlibm import LN2_HI, LN2_LO, bits_f64, f64_bits, log_kernel, sincos_quadrants

__all__ = ["exp", "log1p_unit", "tanh", "erf", "erfc", "normal_cdf", "sin", "cos", "sin_reduced",
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


@intrinsic
def _fma(typingctx, a, b, c):
    # a * b + c with one rounding (llvm.fma: an FMA instruction on every target with FMA,
    # which the bitwise promise assumes anyway; see kernels/reduce.py)
    if all(isinstance(t, types.Float) and t.bitwidth == 64 for t in (a, b, c)):

        def codegen(context, builder, sig, args):
            dbl = args[0].type
            fn = builder.module.declare_intrinsic("llvm.fma", [dbl],
                                                  ir.FunctionType(dbl, [dbl, dbl, dbl]))
            return builder.call(fn, args)

        return types.float64(types.float64, types.float64, types.float64), codegen
    return None


def _strict_binary(op):
    # An intrinsic for a `op` b (IRBuilder method `op`: fadd, fsub, fmul), one rounding,
    # never regrouped with neighbouring operations (see _strict_sub_mul)
    def strict(typingctx, a, b):
        if all(isinstance(t, types.Float) and t.bitwidth == 64 for t in (a, b)):

            def codegen(context, builder, sig, args):
                return getattr(builder, op)(args[0], args[1], flags=("nsz",))

            return types.float64(types.float64, types.float64), codegen
        return None
    strict.__name__ = strict.__qualname__ = f"_strict_{op}"     # (one name per intrinsic)
    return intrinsic(strict)


_strict_add = _strict_binary("fadd")
_strict_sub = _strict_binary("fsub")
#: a scaling by a power of two that must round once, at the end, where the result may be
#: subnormal (not merged with neighbouring multiplies)
_strict_mul = _strict_binary("fmul")


def _estrin(c, u):
    """sum_i c[i] u^i for a constant tuple c, by Estrin's scheme (Numba only): pairs
    c[2j] + c[2j+1] u, then pairs of those with u^2, u^4, ... (depth log2(len(c)))."""
    raise NotImplementedError


def _estrin_source(n):
    # the straight-line source of _estrin for a tuple of n coefficients
    names = [f"p{j}" for j in range((n + 1) // 2)]
    lines = ["def impl(c, u):"]
    for j, name in enumerate(names):
        i = 2 * j
        lines.append(f"    {name} = c[{i}] + c[{i + 1}] * u" if i + 1 < n else f"    {name} = c[{i}]")
    lines.append("    w = u * u")
    while len(names) > 1:
        for j in range(0, len(names) - 1, 2):
            lines.append(f"    {names[j]} = {names[j]} + {names[j + 1]} * w")
        names = names[::2]
        if len(names) > 1:
            lines.append("    w = w * w")
    lines.append(f"    return {names[0]}")
    return "\n".join(lines)


@overload(_estrin, inline="always")
def _estrin_impl(c, u):
    if isinstance(c, types.UniTuple) and isinstance(c.dtype, types.Float):
        scope = {}
        exec(_estrin_source(c.count), scope)
        return scope["impl"]
    return None


def _horner3(c, u):
    """sum_i c[i] u^i for a constant tuple c as three Horner chains in u^3 (coefficients
    c[j], c[j+3], ... for j = 0, 1, 2), combined as h0 + u (h1 + u h2) (Numba only)."""
    raise NotImplementedError


def _horner3_source(n):
    # the straight-line source of _horner3 for a tuple of n >= 3 coefficients
    lines = ["def impl(c, u):", "    u3 = (u * u) * u"]
    for j in range(3):
        idx = list(range(j, n, 3))
        expr = f"c[{idx[-1]}]"
        for i in reversed(idx[:-1]):
            expr = f"(c[{i}] + u3 * {expr})"
        lines.append(f"    h{j} = {expr}")
    lines.append("    return h0 + u * (h1 + u * h2)")
    return "\n".join(lines)


@overload(_horner3, inline="always")
def _horner3_impl(c, u):
    if isinstance(c, types.UniTuple) and isinstance(c.dtype, types.Float) and c.count >= 3:
        scope = {}
        exec(_horner3_source(c.count), scope)
        return scope["impl"]
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
def _exp_scaled(r, kf):
    # e^r 2^k for |r| <= ~ln2/2 + 1e-9, k = kf in [-2044, 1024] (fdlibm's rational for e^r)
    t = r * r
    c = r - t * (_EXP_P1 + t * (_EXP_P2 + t * (_EXP_P3 + t * (_EXP_P4 + t * _EXP_P5))))
    y = 1.0 + (r + r * c / (2.0 - c))
    # times 2^k in two steps: 2^(k >> 1) by adding to the exponent bits (exact, y stays
    # normal), then one multiply by the normal 2^(k - (k >> 1)), which overflows to inf or
    # underflows gradually with one rounding like libm. (Two float multiplies would be
    # regrouped under `reassoc` into y * (2^k1 2^k2), which overflows.)
    k = np.int64(np.int32(kf))
    k1 = k >> _I1
    return bits_f64(f64_bits(y) + (k1 << _I52)) * _pow2(k - k1)


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
    y = _exp_scaled(r, kf)
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
# Branch-free (every lane evaluates every part, selects pick), with a = |x|:
#
#   erf,  a < 0.84375:  erf(a) = a + a S(a^2), S a polynomial of degree 10;
#   erf,  a >= 0.84375: 1 - t exp(-a^2 + P(t)), t = 2 / (2 + a), P a polynomial in
#                       u = t - t_mid (P = log(erfc(a) e^(a^2) / t));
#   erfc, every a:      t exp(-a^2 + C0_HI + 2u) (1 + D(u)), t = 3 / (3 + a), u = t - t_mid,
#                       D = exp(P(t) - C0_HI - 2u) - 1 in [0, 0.32].
#
# One division and one exp per element. (fdlibm's s_erf.c, used before, evaluates four
# rationals and two exps: five divisions, about twice the time; docs/performance.md.) All
# fits are weighted minimax (scripts/fit_erf.py: Lawson's iteration in 40-digit mpmath, then
# monomials rounded to double); errors measured with the rounded coefficients:
#
#   _ERF_S:  11 terms, relative error of 1 + S <= 1.9e-17;
#   _ERF_P:  a in [0.84375, 6] (erf only needs erfc to ~2e-17 absolute; erf(a) = 1 beyond
#            5.93), weighted by erfc(a) (the relative error may grow where erfc is small):
#            13 terms, |error| * erfc(a) <= 1.1e-17;
#   _ERFC_D: a in [0, 27.3] (erfc rounds to 0 beyond), 22 terms, relative error of 1 + D
#            <= 3.9e-17. (Round two had P itself in the exponent, 25 terms: the exponent and
#            the exp then waited for the whole polynomial; now only the exact 2u waits for
#            the division, and the slope 2 also makes 1 + D flat, so D needs fewer terms.)
#
# The roundings of the evaluation (Estrin's scheme or _horner3, see _EXP_C10) stay a few 1e-17 (for D,
# sum |d_i| |u|^i = 0.32). For erfc the exponent -a^2 is carried exactly: a^2 = zh^2 +
# (a - zh)(a + zh) with zh = a cut to 21 significant bits (zh^2 exact), and C0_HI - zh^2 -
# k ln2_hi is exact too for a >= 0.5 (multiples of 2^-42 below 2^10); r is then rounded
# twice, adding 2u and subtracting the small rest (below 0.5 the exponent is O(1) and its
# roundings are ~1e-16 absolute). The two roundings of t are corrected (see _erfc_tail_scaled).
# Error budget of erfc, relative, in units of 2^-53: D (truncation, coefficients,
# evaluation) ~0.5, r's two roundings ~0.5, e^r (1.1e-17 truncation) and its assembly ~0.7,
# the products t e and te (1 + D) 1: ~3 ulp, the measured maximum against mpmath (gelu adds
# the product and the halving: 4 ulp).
# erf: the small region within 1 ulp; beyond, 1 - erfc within 0.5 ulp plus erfc's absolute
# error (<= 0.2 ulp of erf; its exp is _exp_poly10, relative error 1.1e-17): measured 1 ulp
# (tests/test_activations.py, for the AVX2 and the AVX-512 builds, which give the same bits).
_ERF_S = (0.12837916709551256, -0.37612638903183376, 0.11283791670934191,
          -0.026866170640580778, 0.005223977574577207, -0.000854832369749099,
          0.0001205519697150572, -1.492206325021772e-05, 1.6400936998646405e-06,
          -1.5709903450773422e-07, 1.071382246422562e-08)
_ERF_P = (-0.7031007466958726, 1.3358368228906394, 0.21510314570170735, -0.35890195243981754,
          -0.18988181125527062, 0.26322676951177604, 0.16071093272142406,
          -0.28639341913647043, -0.1117548496235194, 0.35870429030864004,
          -0.006837788753140805, -0.4169533227808398, 0.30251709943868427)
# erfc's exponent -a^2 + C0_HI + 2u (C0_HI a multiple of 2^-42, 2u exact; see _erfc_tail_scaled) and
# the factor 1 + D(u): D = exp(P(t) - C0_HI - 2u) - 1, in [0, 0.32], 22 terms
_ERFC_C0_HI = -0.9436869663513789
_ERFC_D = (8.376026378467514e-14, -0.2701199275455904, 0.903213462173881, -0.13011398311040479,
           -0.03664262913291716, -0.25967209453785134, -0.04150968213069281, 0.1274477011269743,
           0.09672748213208078, -0.06177343568407251, -0.08524535529536834, 0.03285751407695017,
           0.06617939565681642, -0.02573896451337414, -0.049013108825107635,
           0.02727610695617327, 0.03338818069429389, -0.029403892543256847,
           -0.018378397081878592, 0.02529027796706167, 0.005939408725653111,
           -0.012143931177525047)
_ERF_P_MID = 0.4766483516483517
_ERFC_P_MID = 0.5495049504950495
# kappa(t) = d log G / d log t ~ K0 + K1 u + K2 u^2 (least squares, max error 0.05)
_ERFC_K0 = 1.9583071782339505
_ERFC_K1 = 2.5930555258471872
_ERFC_K2 = 1.510628251605429
# quadratic estimate of erf's P (least squares; max error 0.0017)
_ERF_E0 = -0.7030597229530399
_ERF_E1 = 1.3250497521684859
_ERF_E2 = 0.20702848948587896
_ERF_SMALL = 0.84375
_ERF_T = 3.0          # t = _ERF_T / (_ERF_T + a) (erfc)
_ERF_T2 = 2.0         # t = _ERF_T2 / (_ERF_T2 + a) (erf's tail)
_ERF_ONE = 6.0        # erf(a) rounds to 1 beyond 5.93
_ERFC_ZERO = 27.3     # erfc(a) < 2^-1075 (rounds to 0) beyond
_ERFC_ONE = 2.0 ** -54  # erfc(a) rounds to 1 below


# e^r = 1 + r + r^2 E(r) for |r| <= ln2/2 + 0.006 without a division (erf's tail and erfc):
# E of 10 terms, minimax weighted by r^2 / e^r (scripts/fit_erf.py), relative error 1.1e-17
# (round three's erfc had 11 terms, 9e-19: no measurable gain in erfc's error; round two the
# 12-term Taylor polynomial; rounding: r^2 E(r) < 0.07 is added to r first, then 1).
# Polynomials are evaluated by Estrin's scheme or, for erfc's 22-term D, as three Horner
# chains in u^3 (_horner3): a vector loop over these functions is bound both by the latency of
# its longest chain of dependent operations (Horner's 24 chained FMAs made erfc 40 % slower
# than Estrin's 5 levels) and by the number of operations and registers (Estrin's powers and
# its many live partial sums; _horner3 has 8 chained FMAs for D, one power and 3 live sums:
# gelu 5-8 % faster than Estrin in round four).
_EXP_C10 = (0.5000000000000012, 0.16666666666666366, 0.04166666666651052, 0.008333333333517998,
            0.0013888888949457334, 0.0001984126947046331, 2.4801486511107176e-05,
            2.7557605335686943e-06, 2.7632760175716484e-07, 2.4998212805972656e-08)
_SHIFT = 6755399441055744.0    # 1.5 * 2^52: x + _SHIFT rounds x to an integer in the low bits
_SHIFT_64 = _SHIFT + 64.0      # its low bits hold k + 64 (erfc: 2^(k + 64) stays normal)
_TWO_M64 = 2.0 ** -64
_TWO_M65 = 2.0 ** -65
_SQRT1_2 = 1.0 / math.sqrt(2.0)  # GELU's argument -x / sqrt 2, as activations.py rounds it


@inline
def _exp_poly10(r):
    return 1.0 + (r + (r * r) * _estrin(_EXP_C10, r))


@inline
def _erf_small(z):
    # S(z) with erf(a) = a + a S(a^2) for a < 0.84375 (_horner3: 4 % faster erf than Estrin)
    return _horner3(_ERF_S, z)


@inline
def _erf_tail_poly(u):
    # P(t), t = u + _ERF_P_MID, for erf: a in [0.84375, 6]
    return _estrin(_ERF_P, u)


@inline
def _erfc_tail_factor(u):
    # D(u) with erfc(a) = t exp(-a^2 + C0_HI + 2u) (1 + D(u)), t = u + _ERFC_P_MID
    return _horner3(_ERFC_D, u)


@inline
def _erfc_for_erf(a):
    # erfc(a) for 0.84375 <= a <= 6 (other lanes: clamped, harmless) to ~2e-17 absolute: all
    # erf needs, so exp's argument -a^2 + P may be rounded (relative error 4e-15 of erfc at
    # most, absolute 1e-30); no clamp or NaN test in the exp either (the argument is in
    # [-37, -0.6])
    a = a if a < _ERF_ONE else _ERF_ONE
    a = a if a > _ERF_SMALL else _ERF_SMALL
    t = _ERF_T2 / (_ERF_T2 + a)
    u = t - _ERF_P_MID
    b = -(a * a)
    # k = round((b + P) / ln2) from a quadratic estimate of P (within 0.0017), as in
    # _erfc_tail_scaled, rounded by the shifter: km = x / ln2 + 1.5 * 2^52 holds k in its low bits
    km = _fma(b + (_ERF_E0 + u * (_ERF_E1 + u * _ERF_E2)), _INV_LN2, _SHIFT)
    kf = _strict_sub(km, _SHIFT)
    r = _strict_sub_mul(_strict_add(_strict_sub_mul(b, kf, LN2_HI), _erf_tail_poly(u)), kf, LN2_LO)
    # times 2^k by adding k to the exponent bits (-54 <= k <= 0: the result stays normal);
    # the low 12 bits of km's bits are k's, the shift drops the rest
    return t * bits_f64(f64_bits(_exp_poly10(r)) + (f64_bits(km) << _I52))


@inline
def _erfc_tail_scaled(a):
    # erfc(a) 2^64 for a >= 0, to full relative precision (0 beyond 27.3; the factor 2^64
    # keeps the value normal down to there, so 2^k is an add to the exponent bits, and the
    # callers' one multiply by 2^-64 (or 2^-65) rounds once, gradually, into subnormals);
    # NaN lanes give garbage, callers restore NaN
    a = a if a < _ERFC_ZERO else _ERFC_ZERO         # also keeps inf - inf out
    # t = 3 / (3 + a) is rounded twice (3 + a = d + d_lo, then the division); G(t) =
    # t exp(P(t)) = erfc(a) e^(a^2) taken at the rounded t would be off by up to 2.6 ulp
    # (kappa = d log G / d log t reaches 3.4). So: the true t is t (1 + eta) with
    # eta = (rem - t d_lo) / 3, rem = 3 - t d exactly (an FMA), d_lo exactly (TwoSum), and
    # the result is corrected by the factor 1 + eta kappa(t), kappa from a quadratic (within
    # 5 %: the correction is ~1e-16, so its error is below 1e-17), computed as 3 eta times
    # kappa / 3. The correction runs in parallel with the polynomial, off the critical path.
    d = _strict_add(_ERF_T, a)
    dd = _strict_sub(d, _ERF_T)
    d_lo = _strict_add(_strict_sub(_ERF_T, _strict_sub(d, dd)), _strict_sub(a, dd))
    t = _ERF_T / d
    u = t - _ERFC_P_MID
    eta3 = _fma(-t, d_lo, _fma(-t, d, _ERF_T))
    kappa3 = _ERFC_K0 / 3.0 + u * (_ERFC_K1 / 3.0 + u * (_ERFC_K2 / 3.0))
    dp = _erfc_tail_factor(u)
    # exponent -a^2 + C0_HI + 2u = (bc - k ln2_hi) + 2u - (a^2 - zh^2 + k ln2_lo), bc =
    # C0_HI - zh^2; zh = a with 21 mantissa bits (zh^2 exact), so for a >= 0.5 bc and
    # bc - k ln2_hi are exact (multiples of 2^-42 below 2^10); the small last term (<= 1.5e-3)
    # is rounded off the critical path (a^2 - zh^2 by one FMA), r in two roundings. Everything
    # but 2u is known before the division: k = round((bc + 2u) / ln2) by the shifter, one
    # FMA, whose shifter 1.5 * 2^52 + 64 leaves k + 64 in km's low bits (-1014 <= k + 64 <= 65).
    zh = bits_f64(f64_bits(a) & _HI32)
    zz = zh * zh
    bc = _strict_sub(_ERFC_C0_HI, zz)
    u2 = u + u
    km = _fma(bc + u2, _INV_LN2, _SHIFT_64)
    kf = _strict_sub(km, _SHIFT_64)
    r = _strict_sub(_strict_add(_strict_sub_mul(bc, kf, LN2_HI), u2),
                    _fma(kf, LN2_LO, _fma(a, a, -zz)))
    # e^r 2^(k + 64): k + 64 added to the exponent bits (the shift by 52 drops km's other
    # bits, as in _erfc_for_erf; e^r 2^(k + 64) >= 2^-1014, normal)
    te = t * bits_f64(f64_bits(_exp_poly10(r)) + (f64_bits(km) << _I52))
    # te (1 + D + eta kappa): D in [0, 0.32] and the correction of t (~1e-16) summed first
    return _fma(te, _fma(eta3, kappa3, dp), te)


@inline
def erf(x):
    """erf(x), branch-free (see above); odd bitwise, +-1 exactly for |x| >= 5.93."""
    a = abs(x)
    a0 = a if a < _ERF_SMALL else _ERF_SMALL        # unused lanes: no overflow in S
    small = a + a * _erf_small(a0 * a0)
    big = 1.0 - _erfc_for_erf(a)
    # NaN fails the comparison and takes the small branch, which keeps it NaN
    v = big if a >= _ERF_SMALL else small
    return copysign(v, x)


@inline
def erfc(x):
    """erfc(x), branch-free (see above); full relative precision in the upper tail."""
    a = abs(x)
    e = _strict_mul(_erfc_tail_scaled(a), _TWO_M64)
    # erfc rounds to 1 for |x| < 2^-54 (the polynomial's rounding would leave 1 - 2^-52 there)
    e = e if a >= _ERFC_ONE else 1.0
    v = e if x >= 0.0 else 2.0 - e
    return x if x != x else v


@inline
def normal_cdf(x):
    """Phi(x) = erfc(-x / sqrt 2) / 2 (GELU's factor) for finite and infinite x, with erfc's
    relative precision in the lower tail; Phi(NaN) is some value in [0, 1] (callers that
    multiply by x, as GELU, get NaN)."""
    y = -x * _SQRT1_2
    a = abs(y)
    # erfc(a) / 2 in one rounding (gradual underflow: x Phi(x) stays within a subnormal ulp)
    h = _strict_mul(_erfc_tail_scaled(a), _TWO_M65)
    h = h if a >= _ERFC_ONE else 0.5
    # 1 - erfc(a) / 2 for x >= 0: exactly half of erfc's 2 - erfc(a)
    return h if y >= 0.0 else 1.0 - h


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
