"""The activations' erf / erfc as they were before issue 12 (fdlibm s_erf.c, branch-free:
four rationals and two exps, five divisions per element), kept for the before / after
comparison of ``bench_activations.py`` only. Not used by mcsim.
"""
from __future__ import annotations

import math

import numpy as np

from mcsim.kernels.fdlibm import bits_f64, f64_bits
from mcsim.kernels.jit import inline
from mcsim.kernels.vmath import copysign, exp

_HI32 = np.int64(-0x100000000)
_SQRT1_2 = 1.0 / math.sqrt(2.0)


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


@inline
def gelu(x):
    """x Phi(x) with the erfc above (the activation's definition before issue 12)."""
    return x * (0.5 * erfc(-x * _SQRT1_2))
