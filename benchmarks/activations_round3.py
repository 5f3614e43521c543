"""The activations' erf / erfc / gelu of issue 12's round three (erfc as t exp(-a^2 + C0 + 2u)
(1 + D(u)), D of 22 terms by Estrin's scheme, an 11-term exp, 2^k by two steps), kept for the
comparison of ``bench_activations.py`` only: fdlibm (``activations_before.py``) / round two
(``activations_round2.py``) / round three (this file) / round four (``kernels/vmath.py``). A
copy of vmath.py's erf section as it was; not used by mcsim.
"""
from __future__ import annotations

import math

import numpy as np

from mcsim.kernels.fdlibm import LN2_HI, LN2_LO, bits_f64, f64_bits
from mcsim.kernels.jit import inline
from mcsim.kernels.vmath import (_HI32, _I1, _I52, _INV_LN2, _estrin, _fma, _pow2, _strict_add,
                                 _strict_sub, _strict_sub_mul, copysign)

_SQRT1_2 = 1.0 / math.sqrt(2.0)


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
# The roundings of the evaluation (Estrin's scheme, see _EXP_C) stay a few 1e-17 (for D,
# sum |d_i| |u|^i = 0.32). For erfc the exponent -a^2 is carried exactly: a^2 = zh^2 +
# (a - zh)(a + zh) with zh = a cut to 21 significant bits (zh^2 exact), and C0_HI - zh^2 -
# k ln2_hi is exact too for a >= 0.5 (multiples of 2^-42 below 2^10); r is then rounded
# twice, adding 2u and subtracting the small rest (below 0.5 the exponent is O(1) and its
# roundings are ~1e-16 absolute). The two roundings of t are corrected (see _erfc_tail).
# Error budget of erfc, relative, in units of 2^-53: D (truncation, coefficients,
# evaluation) ~0.5, r's two roundings ~0.5, e^r (< 1e-18 truncation) and its assembly ~0.7,
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
# erfc's exponent -a^2 + C0_HI + 2u (C0_HI a multiple of 2^-42, 2u exact; see _erfc_tail) and
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


# e^r for |r| <= ln2/2 + 0.006 without a division, for erfc: 1 + r + r^2 E(r) with E of 11
# terms, minimax weighted by r^2 / e^r (scripts/fit_erf.py; relative error 9e-19; round two
# used the 12-term Taylor polynomial, 5e-18; rounding: r^2 E(r) < 0.07 is added to r first,
# then 1). Polynomials are evaluated
# by Estrin's scheme: a vector loop over these functions is bound by the latency of its longest
# chain of dependent operations, not by their number (Horner's 24 chained FMAs made erfc 40 %
# slower than Estrin's 5 levels).
_EXP_C = (0.5, 0.16666666666666685, 0.04166666666666599, 0.00833333333331466,
          0.001388888888914876, 0.00019841269902305095, 2.4801586886257635e-05,
          2.755722891958338e-06, 2.755760037076836e-07, 2.5114112976775953e-08,
          2.0824893304531395e-09)
# e^r as _exp_poly with 10 terms for erf's tail, which needs erfc only to ~1e-16 relative:
# minimax weighted by r^2 / e^r (scripts/fit_erf.py), relative error 1.1e-17 on
# |r| <= ln2/2 + 0.006 (4 Estrin levels, as the 11 terms of _EXP_C, one FMA fewer)
_EXP_C10 = (0.5000000000000012, 0.16666666666666366, 0.04166666666651052, 0.008333333333517998,
            0.0013888888949457334, 0.0001984126947046331, 2.4801486511107176e-05,
            2.7557605335686943e-06, 2.7632760175716484e-07, 2.4998212805972656e-08)
_SHIFT = 6755399441055744.0    # 1.5 * 2^52: x + _SHIFT rounds x to an integer in the low bits
_SHIFT_BITS = np.int64(0x4338000000000000)   # its bits


@inline
def _exp_poly10(r):
    return 1.0 + (r + (r * r) * _estrin(_EXP_C10, r))


@inline
def _exp_poly(r):
    return 1.0 + (r + (r * r) * _estrin(_EXP_C, r))


@inline
def _exp_poly_scaled(r, km):
    # e^r 2^k as _exp_scaled, with _exp_poly for e^r; k is held by the shifter km = k +
    # 1.5 * 2^52 (its bits minus the shifter's are k, exactly)
    k = f64_bits(km) - _SHIFT_BITS
    k1 = k >> _I1
    return bits_f64(f64_bits(_exp_poly(r)) + (k1 << _I52)) * _pow2(k - k1)


@inline
def _erf_small(z):
    # S(z) with erf(a) = a + a S(a^2) for a < 0.84375 (Estrin's scheme, see _EXP_C)
    return _estrin(_ERF_S, z)


@inline
def _erf_tail_poly(u):
    # P(t), t = u + _ERF_P_MID, for erf: a in [0.84375, 6]
    return _estrin(_ERF_P, u)


@inline
def _erfc_tail_factor(u):
    # D(u) with erfc(a) = t exp(-a^2 + C0_HI + 2u) (1 + D(u)), t = u + _ERFC_P_MID
    return _estrin(_ERFC_D, u)


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
    # _erfc_tail, rounded by the shifter: km = x / ln2 + 1.5 * 2^52 holds k in its low bits
    km = _fma(b + (_ERF_E0 + u * (_ERF_E1 + u * _ERF_E2)), _INV_LN2, _SHIFT)
    kf = _strict_sub(km, _SHIFT)
    r = _strict_sub_mul(_strict_add(_strict_sub_mul(b, kf, LN2_HI), _erf_tail_poly(u)), kf, LN2_LO)
    # times 2^k by adding k to the exponent bits (-54 <= k <= 0: the result stays normal);
    # the low 12 bits of km's bits are k's, the shift drops the rest
    return t * bits_f64(f64_bits(_exp_poly10(r)) + (f64_bits(km) << _I52))


@inline
def _erfc_tail(a):
    # erfc(a) for a >= 0, to full relative precision (0 beyond 27.3); NaN lanes give
    # garbage, callers restore NaN
    a = a if a < _ERFC_ZERO else _ERFC_ZERO         # also keeps inf - inf out
    # t = 3 / (3 + a) is rounded twice (3 + a = d + d_lo, then the division); G(t) =
    # t exp(P(t)) = erfc(a) e^(a^2) taken at the rounded t would be off by up to 2.6 ulp
    # (kappa = d log G / d log t reaches 3.4). So: the true t is t (1 + eta) with
    # eta = (rem - t d_lo) / 3, rem = 3 - t d exactly (an FMA), d_lo exactly (TwoSum), and
    # the result is corrected by the factor 1 + eta kappa(t), kappa from a quadratic (within
    # 5 %: the correction is ~1e-16, so its error is below 1e-17). The correction runs in
    # parallel with the polynomial, off the critical path.
    d = _strict_add(_ERF_T, a)
    dd = _strict_sub(d, _ERF_T)
    d_lo = _strict_add(_strict_sub(_ERF_T, _strict_sub(d, dd)), _strict_sub(a, dd))
    t = _ERF_T / d
    u = t - _ERFC_P_MID
    eta = (_fma(-t, d, _ERF_T) - t * d_lo) * (1.0 / _ERF_T)
    kappa = _ERFC_K0 + u * (_ERFC_K1 + u * _ERFC_K2)
    dp = _erfc_tail_factor(u)
    # exponent -a^2 + C0_HI + 2u = (bc - k ln2_hi) + 2u - (a^2 - zh^2 + k ln2_lo), bc =
    # C0_HI - zh^2; zh = a with 21 mantissa bits (zh^2 exact), so for a >= 0.5 bc and
    # bc - k ln2_hi are exact (multiples of 2^-42 below 2^10); the small last term (<= 1.5e-3)
    # is rounded off the critical path, r in two roundings. Everything but 2u is known before
    # the division: k = round(bc / ln2 + 2u / ln2) by the shifter needs one FMA after it.
    zh = bits_f64(f64_bits(a) & _HI32)
    bc = _strict_sub(_ERFC_C0_HI, zh * zh)
    u2 = u + u
    km = _strict_add(_fma(u, 2.0 * _INV_LN2, bc * _INV_LN2), _SHIFT)
    kf = _strict_sub(km, _SHIFT)
    r = _strict_sub(_strict_add(_strict_sub_mul(bc, kf, LN2_HI), u2),
                    _fma(kf, LN2_LO, (a - zh) * (a + zh)))
    te = t * _exp_poly_scaled(r, km)
    # te (1 + D + eta kappa): D in [0, 0.32] and the correction of t (~1e-16) summed first
    return _fma(te, _fma(eta, kappa, dp), te)


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
    e = _erfc_tail(a)
    # erfc rounds to 1 for |x| < 2^-54 (the polynomial's rounding would leave 1 - 2^-52 there)
    e = e if a >= _ERFC_ONE else 1.0
    v = e if x >= 0.0 else 2.0 - e
    return x if x != x else v


@inline
def gelu(x):
    """x Phi(x) = x erfc(-x / sqrt 2) / 2, as kernels/activations.py computed it."""
    return x * (0.5 * erfc(-x * _SQRT1_2))
