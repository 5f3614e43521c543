"""The activations' erf / erfc / gelu of issue 12's round two (own fits: one division and one
exp per element, 18- and 25-term polynomials, a Taylor exp), kept for the comparison of
``bench_activations.py`` only: fdlibm (``activations_before.py``) / round two (this file) /
round three (``activations_round3.py``) / round four (``kernels/vmath.py``). A copy of
vmath.py's erf section as it was; not used by mcsim.
"""
from __future__ import annotations

import math

import numpy as np

from mcsim.kernels.fdlibm import LN2_HI, LN2_LO, bits_f64, f64_bits
from mcsim.kernels.jit import inline
from mcsim.kernels.vmath import (_I1, _I52, _HI32, _INV_LN2, _estrin, _fma, _pow2, _strict_add,
                                 _strict_sub, _strict_sub_mul, copysign)

_SQRT1_2 = 1.0 / math.sqrt(2.0)


# --- erf / erfc ------------------------------------------------------------------------------
# Branch-free (every lane evaluates every part, selects pick), with a = |x|:
#
#   erf,  a < 0.84375:  erf(a) = a + a S(a^2), S a polynomial of degree 11;
#   erfc, every a:      erfc(a) = t exp(-a^2 + P(t)), t = 3 / (3 + a), P a polynomial in
#                       u = t - t_mid (erf beyond 0.84375 is 1 - erfc, with a cheaper P).
#
# One division and one exp per element. (fdlibm's s_erf.c, used before, evaluates four
# rationals and two exps: five divisions, about twice the time; docs/performance.md.) S and P
# are Chebyshev interpolants, computed in 50-digit arithmetic (mpmath) and rewritten as
# monomials, of erf(a)/a - 1 on z = a^2 in [0, 0.84375^2] (first omitted Chebyshev
# coefficient 1e-17 relative to 1 + S) and of log(erfc(a) e^(a^2) / t) on two ranges:
#
#   _ERF_P:  a in [0.84375, 6] (erf only needs erfc to ~2e-17 absolute; erf(a) = 1 beyond
#            5.93), 18 terms, |error| * erfc(a) <= 1.3e-17 with the coefficients rounded;
#   erfc:    a in [0, 27.3] (erfc rounds to 0 beyond), 25 terms, P = C0 + u Q(u) with C0
#            split as C0_HI (a multiple of 2^-42) + C0_LO; |error| <= 8e-17 with the
#            coefficients rounded.
#
# sum |c_i| |u|^i is 1.4 and 1.9, so the roundings of the evaluation (Estrin's scheme, see
# _EXP_C) stay a few 1e-17. For erfc the exponent -a^2 is carried exactly: a^2 = zh^2 +
# (a - zh)(a + zh) with zh = a cut to 21 significant bits (zh^2 exact), and zh^2 - k ln2_hi
# + C0_HI is exact too for a >= 0.5 (multiples of 2^-42 below 4), so the large part is
# rounded once, in k ln2_lo (below 0.5 the exponent is O(1) and its roundings are ~1e-16
# absolute). The two roundings of t are corrected (see _erfc_tail). Error budget of erfc,
# relative, in units of 2^-53: P (truncation, coefficients, evaluation) ~1, the reduced
# exponent's last roundings ~0.5, e^r (Taylor, < 5e-18 truncation) and its assembly ~0.7, the
# final product 0.5: ~3 ulp, the measured maximum against mpmath (gelu adds the product and
# the halving: 4 ulp).
# erf: the small region within 1 ulp; beyond, 1 - erfc within 0.5 ulp plus erfc's absolute
# error (<= 0.2 ulp of erf): measured 1 ulp (tests/test_activations.py, for the AVX2 and the
# AVX-512 builds, which give the same bits).
_ERF_S = (0.1283791670955126, -0.3761263890318375, 0.11283791670954747, -0.02686617064503173,
          0.005223977624088953, -0.0008548326914788754, 0.000120553274432313,
          -1.4925464145762318e-05, 1.6457924042769818e-06, -1.6303196466129588e-07,
          1.420619410239985e-08, -8.881232333500952e-10)
_ERF_P = (-0.9308285576783153, 1.7427344048962192, 0.8689766994390669, 0.09479678287601208,
          -0.42849228226680663, -0.3580193728732537, 0.15455045444627877, 0.4314783254050672,
          0.06692830013672735, -0.42307357804344625, -0.2591693315924274, 0.353105446040154,
          0.41761420069085053, -0.23008839964903885, -0.5190332617309322, 0.06890703537156954,
          0.46432627037296437, 0.06778984824074821)
# _ERFC_P = C0 + u Q(u); C0 = C0_HI + C0_LO with C0_HI a multiple of 2^-42 (see _erfc_tail)
_ERFC_C0_HI = -0.9436869663513789
_ERFC_C0_LO = 8.375965702144973e-14
_ERFC_Q = (1.7298800724544294, 0.8667310745451944, 0.10729222524951731, -0.4151144852795864,
           -0.3643913677196885, 0.1322999472590263, 0.42669083111668854, 0.09446394650779742,
           -0.40285231917890707, -0.28640904906431425, 0.3150431519397276, 0.4375796890626563,
           -0.17483722154199646, -0.5321928005656476, -0.0023802706274063585,
           0.5526579195351254, 0.18923341563746784, -0.4875199953056144, -0.33115889770261026,
           0.3447752708681049, 0.33889132768058317, -0.17013988709694453, -0.172686973404887,
           0.04149198536282056)
_ERF_P_MID = 0.556910569105691
_ERFC_P_MID = 0.5495049504950495
# kappa(t) = d log G / d log t ~ K0 + K1 u + K2 u^2 (least squares, max error 0.05)
_ERFC_K0 = 1.9583071782339505
_ERFC_K1 = 2.5930555258471872
_ERFC_K2 = 1.510628251605429
# quadratic estimates of P (least squares; max error 0.0006 for erf's, 0.005 for erfc's)
_ERF_E0 = -0.9307377670945984
_ERF_E1 = 1.7452220762728115
_ERF_E2 = 0.8508088890556252
_ERFC_E0 = -0.9423220709468338
_ERFC_E1 = 1.7375534389535303
_ERFC_E2 = 0.7983749709419427
_ERF_SMALL = 0.84375
_ERF_T = 3.0          # t = _ERF_T / (_ERF_T + a)
_ERF_ONE = 6.0        # erf(a) rounds to 1 beyond 5.93
_ERFC_ZERO = 27.3     # erfc(a) < 2^-1075 (rounds to 0) beyond
_ERFC_ONE = 2.0 ** -54  # erfc(a) rounds to 1 below


# e^r for |r| <= ln2/2 + 2^-30 without a division, for the erf paths: 1 + r + r^2 E(r) with
# E the Taylor polynomial 1/2! + r/3! + ... + r^11/13! (truncation below r^14/14! e^r < 5e-18,
# 0.02 ulp; rounding: r^2 E(r) < 0.07 is added to r first, then 1). Polynomials are evaluated
# by Estrin's scheme: a vector loop over these functions is bound by the latency of its longest
# chain of dependent operations, not by their number (Horner's 24 chained FMAs made erfc 40 %
# slower than Estrin's 5 levels).
_EXP_C = (0.5, 0.16666666666666666, 0.041666666666666664, 0.008333333333333333,
          0.001388888888888889, 0.0001984126984126984, 2.48015873015873e-05,
          2.7557319223985893e-06, 2.755731922398589e-07, 2.505210838544172e-08,
          2.08767569878681e-09, 1.6059043836821613e-10)


@inline
def _exp_poly(r):
    return 1.0 + (r + (r * r) * _estrin(_EXP_C, r))


@inline
def _exp_poly_scaled(r, kf):
    # e^r 2^k as _exp_scaled, with _exp_poly for e^r
    k = np.int64(np.int32(kf))
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
def _erfc_tail_poly(u):
    # Q(u) with P(t) = C0 + u Q(u), t = u + _ERFC_P_MID, for erfc: a in [0, 27.3]
    return _estrin(_ERFC_Q, u)


@inline
def _erfc_for_erf(a):
    # erfc(a) for 0.84375 <= a <= 6 (other lanes: clamped, harmless) to ~2e-17 absolute: all
    # erf needs, so exp's argument -a^2 + P may be rounded (relative error 4e-15 of erfc at
    # most, absolute 1e-30); no clamp or NaN test in the exp either (the argument is in
    # [-37, -0.6])
    a = a if a < _ERF_ONE else _ERF_ONE
    a = a if a > _ERF_SMALL else _ERF_SMALL
    t = _ERF_T / (_ERF_T + a)
    u = t - _ERF_P_MID
    b = -(a * a)
    # k from a quadratic estimate of P (within 0.0006), as in _erfc_tail
    kf = np.floor((b + (_ERF_E0 + u * (_ERF_E1 + u * _ERF_E2))) * _INV_LN2 + 0.5)
    r = _strict_sub_mul(_strict_add(_strict_sub_mul(b, kf, LN2_HI), _erf_tail_poly(u)), kf, LN2_LO)
    return t * _exp_poly_scaled(r, kf)


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
    zh = bits_f64(f64_bits(a) & _HI32)             # a with 21 mantissa bits: zh^2 exact
    # exponent -a^2 + P(t) = (-zh^2 + C0_HI) + s
    s = (_ERFC_C0_LO + u * _erfc_tail_poly(u)) - (a - zh) * (a + zh)
    b = -(zh * zh)
    # k from a quadratic estimate of P (within 0.005: |r| <= ln2/2 + 0.005, in _exp_poly's
    # range), so that k, k ln2_hi and k ln2_lo need not wait for the long polynomial
    kf = np.floor((b + (_ERFC_E0 + u * (_ERFC_E1 + u * _ERFC_E2))) * _INV_LN2 + 0.5)
    # r = (((b - k ln2_hi) + C0_HI) + s) - k ln2_lo in this order, the first two steps exact
    r = _strict_add(_strict_add(_strict_sub_mul(b, kf, LN2_HI), _ERFC_C0_HI), s)
    r = _strict_sub_mul(r, kf, LN2_LO)
    te = t * _exp_poly_scaled(r, kf)
    return _fma(te, eta * kappa, te)


@inline
def erf(x):
    """erf(x), branch-free (see above); odd bitwise, +-1 exactly for |x| >= 5.93."""
    a = abs(x)
    a0 = a if a < _ERF_SMALL else _ERF_SMALL        # unused lanes: no overflow in S
    small = a + a * _erf_small(a0 * a0)
    big = 1.0 - _erfc_for_erf(a)
    v = small if a < _ERF_SMALL else big
    return x if x != x else copysign(v, x)


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
    """x Phi(x) with the erfc above (kernels/activations.py's gelu of round two)."""
    return x * (0.5 * erfc(-x * _SQRT1_2))
