"""What non-Gaussian weight and bias laws (``mcsim.laws``) change in the 1/n expansion.

Given layer l-1, the preactivations of one unit, z_{i;a} = b_i + sum_j W_ij s_{j;a}
(s = sigma(z^(l-1)), or x for l = 1), have covariance Ghat^(l) for every law, and the joint
fourth cumulant (same unit only; units are independent given layer l-1)

    kappa4_W (C_W/n_{l-1})^2 sum_j s_a1 s_a2 s_a3 s_a4 + kappa4_b C_b^2          ("unit cumulant")

with kappa4_W, kappa4_b the laws' standardised fourth cumulants. Its expectation at leading
order is

    U^(l)_{a1a2a3a4} = kappa4_W C_W^2 <s_a1 s_a2 s_a3 s_a4>_{K^(l-1)} / n_{l-1} + kappa4_b C_b^2

(layer 1: exact, with the inputs' sum_j x_a1 x_a2 x_a3 x_a4). It enters the statistics of one
unit's z only: the same-unit connected four-point function of z is

    z_four_point^(l) = (V_(a1a2)(a3a4) + V_(a1a3)(a2a4) + V_(a1a4)(a2a3)) / n_{l-1} + U^(l)

and the excess kurtosis of z_{i;a} is z_four_point_aaaa / K_aa^2. The cross-unit statistics
(G, V = n Cov(Ghat)) do not see U at leading order, so the weight-law term stays O(1/n) at
every depth while V grows with depth (the book's universality argument).

The 1/n metric correction does see the weight cumulant: E[f(z)] over a law with fourth
cumulant kappa/n is <f>_G + (1/24) kappa <d^4 f> + O(1/n^2), so

    G1^(l+1) += (n_l / n_{l-1}) C_W [ J : dG1^(l) + (1/6) H :: kappa1^(l) ]

(J, H: first and second derivatives of <s s>_K in K as in ``recursions``; kappa1^(l) =
kappa4_W C_W^2 <s s s s>_{K^(l-1)}, the coefficient of 1/n_{l-1} in U^(l); dG1 the extra
correction of the layer before, which propagates linearly).

Biases: a non-Gaussian bias makes z^(l) non-Gaussian at order 1 (it is one random number per
unit, not a sum), so the Gaussian recursions for the layers after one with a non-Gaussian
bias and C_b > 0 do not hold; their predictions are NaN (not predicted). The layer's own
term kappa4_b C_b^2 is exact.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..laws import GAUSSIAN, parse_law, unit_cumulant
from . import gaussian as _g
from .recursions import Prediction, _distinct, predict

__all__ = ["apply_laws", "predict_laws", "describe_laws"]


def predict_laws(activation, inputs, widths, C_W, C_b, weights=GAUSSIAN, biases=GAUSSIAN,
                 **kw) -> Prediction:
    """``recursions.predict`` plus the weight- and bias-law terms (``apply_laws``)."""
    return apply_laws(predict(activation, inputs, widths, C_W, C_b, **kw), weights, biases,
                      q=kw.get("q"))


def apply_laws(pred: Prediction, weights=GAUSSIAN, biases=GAUSSIAN, q=None) -> Prediction:
    """A copy of ``pred`` whose layers carry the unit cumulant U^(l) (``unit_cumulant``) and
    whose metric correction G1 includes the weight-cumulant term. Gaussian weights and biases:
    ``pred`` itself, unchanged."""
    from ..activations import get_activation
    weights, biases = parse_law(weights), parse_law(biases)
    if weights.gaussian and biases.gaussian:
        return pred
    act = get_activation(pred.activation)
    x = pred.inputs
    L = pred.depth
    kw, kb = weights.kappa4, biases.kappa4
    uniq, back = _distinct(pred.layer(1).kernel)
    ix = np.ix_(uniq, uniq)
    layers = []
    dG1 = np.zeros((len(uniq),) * 2)      # extra G1 (distinct inputs) of the current layer
    kappa1 = None                          # 1/n coefficient of the weight part of U, distinct inputs
    broken = None                          # first layer whose input is non-Gaussian at O(1)
    for l in range(1, L + 1):
        p = pred.layer(l)
        cw, cb = pred.C_W[l - 1], pred.C_b[l - 1]
        if l == 1:
            U = unit_cumulant(x, cw, cb, weights, biases)
            kappa1_new = (kw * cw ** 2 * np.einsum("aj,bj,cj,dj->abcd", x, x, x, x) / x.shape[1])
            kappa1_new = kappa1_new[np.ix_(uniq, uniq, uniq, uniq)]
        else:
            prev = pred.layer(l - 1)
            Kp = prev.kernel[ix]
            M4 = _g.four_point(act, Kp, q=q)
            kappa1_new = kw * cw ** 2 * M4
            U = (kappa1_new / p.fan_in + kb * cb ** 2)[np.ix_(back, back, back, back)]
            # extra metric correction of layer l from layer l-1's weight cumulant
            if weights.kappa4 != 0.0 or np.any(dG1):
                J, H = _g.two_point_jacobian(act, Kp, second=True, q=q)
                ratio = p.fan_in / prev.fan_in
                new = ratio * cw * (np.einsum("abcd,cd->ab", J, dG1)
                                    + np.einsum("abcdef,cdef->ab", H, kappa1) / 6.0)
                dG1 = 0.5 * (new + new.T)
        kappa1 = kappa1_new
        correction = p.correction + dG1[np.ix_(back, back)]
        lp = dataclasses.replace(p, correction=correction, unit_cumulant=U)
        if broken is not None and l > broken:
            nan = lambda a: np.full_like(a, np.nan)
            lp = dataclasses.replace(lp, kernel=nan(lp.kernel), vertex=nan(lp.vertex),
                                     correction=nan(lp.correction), unit_cumulant=nan(U),
                                     ntk=None if lp.ntk is None else nan(lp.ntk),
                                     vertex_correction=None if lp.vertex_correction is None
                                     else nan(lp.vertex_correction),
                                     six_point=None if lp.six_point is None else nan(lp.six_point),
                                     ntk_moments=None, dntk_moments=None)
        if broken is None and kb != 0.0 and cb > 0.0:
            broken = l
        layers.append(lp)
    notes = pred.notes
    if broken is not None and broken < len(layers):
        notes = notes + (f"layers {broken + 1}..{len(layers)} are not predicted: a non-Gaussian "
                         f"bias law with C_b > 0 makes z non-Gaussian at O(1) from layer {broken}, "
                         "outside the 1/n expansion",)
    return dataclasses.replace(pred, layers=layers, weights=weights, biases=biases, notes=notes)


def describe_laws(pred: Prediction) -> str:
    """One line on the laws of a prediction (empty for Gaussian ones)."""
    w, b = pred.weights or GAUSSIAN, pred.biases or GAUSSIAN
    if w.gaussian and b.gaussian:
        return ""
    text = (f"laws        weights={w} (kappa4_W = {w.kappa4:.6g}), biases={b} (kappa4_b = "
            f"{b.kappa4:.6g}): z_kurtosis = (3 V + kappa4_W C_W^2 <s^4>)/(n K^2) + kappa4_b C_b^2/K^2")
    lost = [p.layer for p in pred.layers if not np.all(np.isfinite(p.kernel))]
    if lost:
        text += (f"\n            layers {lost[0]}..{lost[-1]}: not predicted (NaN): a non-Gaussian bias "
                 f"with C_b > 0 makes z non-Gaussian at order 1, outside the 1/n expansion")
    return text
