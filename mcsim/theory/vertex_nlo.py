"""The four-point vertex at next-to-leading order, and the driver of the higher orders
(docs/higher-vertices.md, section 3).

With m = n_{l-1} the fan-in of layer l, the measured vertex (n_{l-1} Cov(Ghat^(l))) is

    V^(l) = V0^(l) + V1^(l) / n_{l-1} + O(1/n^2),

V0 the leading order of ``recursions`` and V1 normalised with the fan-in like G^{1}.
V1^(1) = V1^(2) = 0 (layer 2 is an exact average of n_1 independent neurons) and, with
r = n_l / n_{l-1}, pair indices as in ``six_point`` and everything at K^(l),

    V1^(l+1) = r C_W^2 [ dC_XY,p G1_p + (1/2) d2C_XY,pq V0_pq ]
             + r^2 C_W^2 [ J_X.p V1_pq J_Y.q
                           + (1/2) J_X.p H_Y.qr S_pqr + J_X.p H_Y.qr G1_q V0_pr   (+ X <-> Y)
                           + (1/2) H_X.pq V0_pr V0_qs H_Y.rs
                           + (1/2) J_X.p Q_Y.qrs V0_pq V0_rs                    (+ X <-> Y) ]

with G1 = G^{1}(l), V0 = V0^(l), V1 = V1^(l), S = S^(l) (the six-point vertex at leading
order). The excess kurtosis of z_{i;a}, 3 Var(Ghat_aa) / G_aa^2, follows to order 1/n^2:

    kurt_a = 3 V0_aaaa / (m K_aa^2) + 3 (V1_aaaa - 2 V0_aaaa G1_aa / K_aa) / (m^2 K_aa^2).

Cost per layer: the Gaussian tensors of ``six_point.layer_tensors`` (quadrature over at
most 4 inputs at a time; the six-point function and the derivatives of the four-point
function of all k inputs are the expensive part) plus contractions of O(k^12) operations.
Above ``MAX_INPUTS`` distinct inputs the higher orders are not computed (a note says so; the
vertex stays at leading order and the six-point prediction is NaN); ``predict(...,
max_inputs=4)`` lifts the cap (measured ~30 s per layer at k = 4, ~1.5 s at k = 3).
"""
from __future__ import annotations

import numpy as np

from .six_point import layer_tensors, six_point_step

__all__ = ["MAX_INPUTS", "vertex_correction_step", "higher_orders"]

#: most distinct inputs for which the six-point vertex and V1 are computed
MAX_INPUTS = 3


def vertex_correction_step(t, V0, V1, G1, S, ratio: float, C_W: float) -> np.ndarray:
    """V1^(l+1) (P, P) from the tensors ``t`` at K^(l) (``six_point.LayerTensors`` with
    derivatives), V0, V1 (P, P), G1 (P,), S (P, P, P) of layer l."""
    first = t.dC @ G1 + 0.5 * np.einsum("xypq,pq->xy", t.d2C, V0)
    JV = t.J @ V0                                            # (J V0)_X.r
    second = t.J @ V1 @ t.J.T
    half = (0.5 * np.einsum("xp,yqr,pqr->xy", t.J, t.H, S, optimize=True)
            + np.einsum("xr,yqr,q->xy", JV, t.H, G1)
            + 0.5 * np.einsum("xq,yqrs,rs->xy", JV, t.Q, V0, optimize=True))
    second = second + half + half.T
    HV = np.einsum("xpq,pr->xrq", t.H, V0)                  # H_X.pq V0_pr -> (x, r, q)
    second = second + 0.5 * np.einsum("xrq,qs,yrs->xy", HV, V0, t.H, optimize=True)
    out = C_W ** 2 * (ratio * first + ratio ** 2 * second)
    return 0.5 * (out + out.T)



def higher_orders(act, kernels, vertices, corrections, fan_in, C_W, *, q=None,
                  max_inputs: int | None = None):
    """V1^(l) (k,)*4 and S^(l) (k,)*6 for l = 1..L on distinct inputs.

    kernels, vertices, corrections: per layer K^(l) (k, k), V0^(l) (k,)*4, G^{1}(l) (k, k);
    fan_in: (n_0, ..., n_{L-1}); C_W: per layer. Returns (V1 list, S list, note): with more
    than ``max_inputs`` (default ``MAX_INPUTS``) inputs both lists hold None (the vertex then
    stays at leading order, the six-point prediction is NaN) and ``note`` says why (else "")."""
    L = len(kernels)
    k = kernels[0].shape[0]
    P = k * k
    max_inputs = MAX_INPUTS if max_inputs is None else int(max_inputs)
    if k > max_inputs:
        note = (f"six-point vertex and 1/n vertex correction not computed for {k} distinct "
                f"inputs (at most {max_inputs}: four-dimensional Gaussian integrals of many "
                f"polynomial weights, ~30 s per layer at k = 4); the vertex is predicted at "
                f"leading order only")
        return [None] * L, [None] * L, note
    V1s = [np.zeros((k,) * 4)]
    Ss = [np.zeros((k,) * 6)]
    V1 = np.zeros((P, P))
    S = np.zeros((P, P, P))
    for l in range(1, L):                       # layer l+1 (1-based) from layer l
        ratio = fan_in[l] / fan_in[l - 1]
        K = kernels[l - 1]
        V0 = vertices[l - 1].reshape(P, P)
        G1 = corrections[l - 1].reshape(P)
        deriv = bool(np.any(V0) or np.any(S) or np.any(G1))
        t = layer_tensors(act, K, derivatives=deriv, q=q)
        S_new = six_point_step(t, V0, S, ratio, C_W[l])
        V1 = (vertex_correction_step(t, V0, V1, G1, S, ratio, C_W[l]) if deriv
              else np.zeros((P, P)))
        S = S_new
        V1s.append(V1.reshape((k,) * 4))
        Ss.append(S.reshape((k,) * 6))
    return V1s, Ss, ""
