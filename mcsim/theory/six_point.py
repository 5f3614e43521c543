"""The six-point vertex at leading order (docs/higher-vertices.md, section 2).

Conventions as in ``recursions``: layers l = 1..L, fan-in m = n_{l-1} of layer l, inputs
a = 0..k-1. The statistic ``six_point`` of ``mcsim.stats`` is

    S^(l)_{(a1a2)(a3a4)(a5a6)} = m^2 kappa_3(Ghat^(l)_{a1a2}, Ghat^(l)_{a3a4}, Ghat^(l)_{a5a6}),

shape (k,)*6; its leading order obeys S^(1) = 0 and, with r = n_l / n_{l-1} and every
Gaussian expectation in K^(l),

    S^(l+1)_{XYZ} = C_W^3 { T_XYZ
                    + r [ (J V) _X.q dC_YZ,q + (J V)_Y.q dC_XZ,q + (J V)_Z.q dC_XY,q ]
                    + r^2 [ J_X.p J_Y.q J_Z.r S_pqr
                            + (J V)_X.r (J V)_Y.s H_Z.rs + (two more: H on X, on Y) ] }

Here X, Y, Z, p, q, r, s run over *ordered* pairs of inputs (index p = c k + e for (c, e),
the convention of independent entries of K), V = V^(l) (leading order), S = S^(l), and

    Phi_X = s_a1 s_a2 for X = (a1, a2),          s_a = sigma(z_a)
    T_XYZ = kappa_3(Phi_X, Phi_Y, Phi_Z)          (connected six-point function of Phi)
    C_XY  = <Phi_X Phi_Y> - <Phi_X><Phi_Y>
    J_X.p = d<Phi_X>/dK_p,  H_X.pq = d^2<Phi_X>/dK_p dK_q,  dC_XY,p = dC_XY/dK_p.

``LayerTensors`` holds these Gaussian tensors at one K (also the second derivatives of C
and the third derivatives of <Phi> used by ``vertex_nlo``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import gaussian as _g
from .gaussian_higher import moment_tensors

__all__ = ["LayerTensors", "layer_tensors", "six_point_step", "connected_six"]


@dataclass(frozen=True, eq=False)
class LayerTensors:
    """Gaussian tensors at one K, over ordered pairs (P = k^2; pair (c, e) -> c k + e).

    m2 (P,), C (P, P), T (P, P, P), J (P, P), H (P, P, P), and for the 1/n vertex
    dC (P, P, P), d2C (P, P, P, P), Q (P, P, P, P) = d^3<Phi_X>/dK_p dK_q dK_r (None when
    not computed)."""
    k: int
    m2: np.ndarray
    C: np.ndarray
    T: np.ndarray
    J: np.ndarray | None = None
    H: np.ndarray | None = None
    dC: np.ndarray | None = None
    d2C: np.ndarray | None = None
    Q: np.ndarray | None = None


def connected_six(M6, M4, m2):
    """kappa_3 of Phi from <Phi Phi Phi> (P, P, P), <Phi Phi> (P, P) and <Phi> (P,)."""
    return (M6 - np.einsum("xy,z->xyz", M4, m2) - np.einsum("xz,y->xyz", M4, m2)
            - np.einsum("yz,x->xyz", M4, m2) + 2 * np.einsum("x,y,z->xyz", m2, m2, m2))


def layer_tensors(act, K, *, derivatives: bool = True, q=None) -> LayerTensors:
    """The tensors of ``LayerTensors`` at K (k, k) for activation ``act``; without
    ``derivatives`` only m2, C and T (what layer 2 needs: V^(1) = S^(1) = 0)."""
    K = np.asarray(K, dtype=float)
    k = K.shape[0]
    P = k * k
    m2 = _g.two_point(act, K, q=q).reshape(P)
    reqs = [(4, 0), (6, 0)] + ([(2, 3), (4, 1), (4, 2)] if derivatives else [])
    mt = moment_tensors(act, K, reqs, q=q)
    if act.name == "linear":
        mt[(4, 0)] = _g.four_point(act, K)                       # Wick, exact
    M4 = mt[(4, 0)].reshape(P, P)
    M6 = mt[(6, 0)].reshape(P, P, P)
    C = M4 - np.outer(m2, m2)
    T = connected_six(M6, M4, m2)
    if not derivatives:
        return LayerTensors(k, m2, C, T)
    J, H = _g.two_point_jacobian(act, K, second=True, q=q)
    J, H = J.reshape(P, P), H.reshape(P, P, P)
    Q = mt[(2, 3)].reshape(P, P, P, P)
    dM4 = mt[(4, 1)].reshape(P, P, P)
    d2M4 = mt[(4, 2)].reshape(P, P, P, P)
    for name, t in (("J", J), ("H", H), ("Q", Q), ("dM4", dM4), ("d2M4", d2M4)):
        if not np.all(np.isfinite(t)):
            raise ValueError(f"derivatives {name} of the Gaussian moments diverge (two distinct "
                             f"inputs with correlation +-1 and a kinked activation {act.name!r})")
    dC = dM4 - np.einsum("yp,z->yzp", J, m2) - np.einsum("y,zp->yzp", m2, J)
    d2C = (d2M4 - np.einsum("ypq,z->yzpq", H, m2) - np.einsum("y,zpq->yzpq", m2, H)
           - np.einsum("yp,zq->yzpq", J, J) - np.einsum("yq,zp->yzpq", J, J))
    return LayerTensors(k, m2, C, T, J, H, dC, d2C, Q)


def _sym3(S):
    """Average over the 6 permutations of the three pair slots of S (P, P, P)."""
    return (S + S.transpose(0, 2, 1) + S.transpose(1, 0, 2) + S.transpose(1, 2, 0)
            + S.transpose(2, 0, 1) + S.transpose(2, 1, 0)) / 6.0


def six_point_step(t: LayerTensors, V, S, ratio: float, C_W: float) -> np.ndarray:
    """S^(l+1) (P, P, P) from the tensors at K^(l), V = V^(l) (P, P), S = S^(l) (P, P, P),
    ratio = n_l / n_{l-1} and C_W of layer l+1 (see the module docstring)."""
    out = t.T.copy()
    if np.any(V) or np.any(S):
        JV = t.J @ V                                            # (J V)_X.q
        A = np.einsum("xq,yzq->xyz", JV, t.dC)
        out += ratio * (A + A.transpose(1, 0, 2) + A.transpose(1, 2, 0))
        B = np.einsum("xr,ys,zrs->xyz", JV, JV, t.H)
        out += ratio ** 2 * (np.einsum("xp,yq,zr,pqr->xyz", t.J, t.J, t.J, S, optimize=True)
                             + B + B.transpose(0, 2, 1) + B.transpose(2, 1, 0))
    return C_W ** 3 * _sym3(out)
