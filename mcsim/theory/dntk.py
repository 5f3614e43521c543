"""The differential of the NTK (dNTK) and its correlation with the preactivations at leading
order (Roberts, Yaida & Hanin, chapter 11; derivation and conventions in docs/dntk-theory.md).

Conventions (as in the issue that defines the dNTK statistics): learning rates lambda_b^(l)
for the biases of layer l and lambda_W^(l) / n_{l-1} for its weights; layer l taken as the
output,

    dHhat_{i0 i1 i2; a0 a1 a2}
        = sum_mu lambda_mu dz_{i0;a0}/dtheta_mu dHhat_{i1 i2; a1 a2}/dtheta_mu

(symmetric under (i1 a1) <-> (i2 a2)). With n = n_{l-1} and two distinct units 1, 2:

    P[a0,a1,a2,a3] = n E[dHhat_{1 1 2; a0 a1 a2} z_{2;a3}]       (``dntk_P``)
    Q[a0,a1,a2,a3] = n E[dHhat_{1 2 2; a0 a1 a2} z_{1;a3}]       (``dntk_Q``)

so that E[dHhat_{i0i1i2} z_{i3}] = (1/n)[d_{i0i1} d_{i2i3} P + d_{i0i2} d_{i1i3} P'
+ d_{i0i3} d_{i1i2} Q], P'[a0,a1,a2,a3] = P[a0,a2,a1,a3]. Q is symmetric in (a1, a2).
Layer 1: dHhat = 0, P = Q = 0. Layer 2: the leading order is exact at any width.

The book orders the indices of each tensor by the pairs of units that share a Kronecker delta
(as for its B and F): P_book = P, Q_book[a0,a3,a1,a2] = Q[a0,a1,a2,a3] (``to_book``,
``from_book``).

sigma'' enters through d sigma'(z)/dtheta. For kinked activations (ReLU family) it is the
pointwise second derivative, zero almost everywhere, as in any exact per-network derivative
(explicit formulas, autodiff); the derivatives <d_e f> of Stein's lemma are distributional
(computed by Gaussian integration by parts), as for the NTK's F.

Public functions:

    predict_dntk(activation, inputs, widths, C_W, C_b, lambda_b=1.0, lambda_W=1.0, q=None)
        -> DNTKPrediction  (``layers[l-1].P``, ``.Q`` (k,k,k,k))
    to_book(P, Q) -> (P_book, Q_book);  from_book(P_book, Q_book) -> (P, Q)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from . import gaussian as _g
from . import ntk as _ntk
from . import ntk_gaussian as _ng
from .quadrature import expect, iter_grid
from .recursions import _distinct

__all__ = ["DNTKLayerPrediction", "DNTKPrediction", "predict_dntk", "to_book", "from_book",
           "format_dntk", "DNTK_STATISTICS"]

#: the registry names of the two statistics (dataset names ``/layers/<l>/dntk_P``, ``dntk_Q``)
DNTK_STATISTICS = ("dntk_P", "dntk_Q")


@dataclass(frozen=True, eq=False)
class DNTKLayerPrediction:
    """dNTK-preactivation correlations of layer l at leading order (module doc).

    P, Q: (k, k, k, k), the leading order of n_{l-1} E[dHhat z] (finite as n -> infinity).
    """
    layer: int
    width: int
    fan_in: int
    P: np.ndarray
    Q: np.ndarray

    @property
    def P_exchanged(self) -> np.ndarray:
        """P' [a0,a1,a2,a3] = P[a0,a2,a1,a3]: the coefficient of d_{i0i2} d_{i1i3}."""
        return self.P.transpose(0, 2, 1, 3)

    def correlation(self, i0: int, i1: int, i2: int, i3: int) -> np.ndarray:
        """n_{l-1} E[dHhat_{i0i1i2;a0a1a2} z_{i3;a3}] for unit labels i0..i3, (k,k,k,k)."""
        d = lambda u, v: float(u == v)                           # noqa: E731
        return (d(i0, i1) * d(i2, i3) * self.P + d(i0, i2) * d(i1, i3) * self.P_exchanged
                + d(i0, i3) * d(i1, i2) * self.Q)


@dataclass(frozen=True, eq=False)
class DNTKPrediction:
    """Per-layer dNTK predictions (``layers[l - 1]`` is layer l)."""
    inputs: np.ndarray
    widths: tuple
    layers: list = field(default_factory=list)

    def layer(self, l: int) -> DNTKLayerPrediction:
        if not 1 <= l <= len(self.layers):
            raise KeyError(f"layer {l} out of range 1..{len(self.layers)}")
        return self.layers[l - 1]


def to_book(P, Q):
    """(P, Q) of mcsim -> the book's (P, Q): Q_book[a0,a3,a1,a2] = Q[a0,a1,a2,a3]."""
    return np.asarray(P).copy(), np.einsum("abcd->adbc", np.asarray(Q))


def from_book(P_book, Q_book):
    """The book's (P, Q) -> mcsim's: Q[a0,a1,a2,a3] = Q_book[a0,a3,a1,a2]."""
    return np.asarray(P_book).copy(), np.einsum("adbc->abcd", np.asarray(Q_book))


# ------------------------------------------------------------------------------------------
# Gaussian expectations (z ~ N(0, K), K over the k distinct inputs)
# ------------------------------------------------------------------------------------------
def _four_point(act, K, q):
    """Y4[a,b,c,d] = <s'_a s'_b s_c s_d>, U4[a,b,c,d] = <s'_a s''_b s'_c s_d>, (k,)*4 each,
    and E2[a,b] = <s''_a s_b> (k, k): one rule over all k inputs, split at the kinks."""
    k = K.shape[0]
    Y4, U4 = np.zeros((k * k, k * k)), np.zeros((k * k, k * k))
    E2 = np.zeros((k, k))
    for z, w in iter_grid(K, _g.breakpoints(act), q):
        s, d1, d2 = act.value(z), act.derivative(z), act.second_derivative(z)
        pair = lambda u, v: (u[:, :, None] * v[:, None, :]).reshape(len(w), k * k)  # noqa
        D1D1, SS, D1D2, D1S = pair(d1, d1), pair(s, s), pair(d1, d2), pair(d1, s)
        Y4 += (w[:, None] * D1D1).T @ SS
        U4 += (w[:, None] * D1D2).T @ D1S
        E2 += (w[:, None] * d2).T @ s
    return Y4.reshape((k,) * 4), U4.reshape((k,) * 4), E2


def _pair_gradient(f, g, act, K, q):
    """T[a, b, e] = <d_e (f(z_a) g(z_b))>_K, (k, k, k), by Gaussian integration by parts
    (<z_h F> = sum_e K_he <d_e F> on the block of {a, b}): distributional derivatives, so
    kinked f, g work. ValueError when a block of distinct inputs is singular."""
    k = K.shape[0]
    T = np.zeros((k, k, k))
    for a in range(k):
        for b in range(k):
            S = [a] if a == b else sorted({a, b})
            ia, ib = S.index(a), S.index(b)

            def F(z, ia=ia, ib=ib):
                return (f(z[:, ia]) * g(z[:, ib]))[:, None] * z

            KS = K[np.ix_(S, S)]
            if np.linalg.cond(KS) > 1e12:
                raise ValueError(
                    f"inputs {a + 1} and {b + 1}: their kernel block is singular (correlation "
                    "+-1); dNTK predictions need distinct, non-collinear inputs")
            grad = np.linalg.solve(KS, expect(F, KS, _g.breakpoints(act), q))
            for i, e in enumerate(S):
                T[a, b, e] = grad[i]
    return T


# ------------------------------------------------------------------------------------------
# the recursion
# ------------------------------------------------------------------------------------------
def _step(act, K, Th, B, F, P, Q, cw, lw, r, q):
    """Layer l -> l+1 (docs/dntk-theory.md): K, Th (= H), B, F, P, Q of layer l (distinct
    inputs); cw, lw of layer l+1; r = n_l / n_{l-1}. Returns (P, Q) of layer l+1."""
    ein = np.einsum
    Y4, U4, E2 = _four_point(act, K, q)
    Dp = _g.derivative_two_point(act, K, q=q)
    Yd = _ng.gradient_sigma_dsigma(act, K, q=q)            # Yd[c,a,e] = <d_e(s_c s'_a)>
    Zd = _pair_gradient(act.derivative, act.second_derivative, act, K, q)  # <d_e(s'_a s''_b)>
    # single-unit terms (the only ones at layer 2)
    diag = cw ** 2 * (ein("ab,bc,abcd->abcd", Th, Th, U4)
                      + ein("ac,bc,acbd->abcd", Th, Th, U4))
    Pn = lw * cw * ein("bc,bcad->abcd", Th, Y4) + diag
    Qn = lw * cw * (ein("ab,abcd->abcd", Th, Y4) + ein("ac,acbd->abcd", Th, Y4)) + diag
    if any(np.any(t) for t in (B, F, P, Q)):
        # two-unit terms: E[Hhat_12 f(z_1) g(z_2)] = (1/n') sum_eh <d_e f><d_h g> F[a,e,b,h],
        # E[Hhat_12 Hhat_12 f g] -> B <f><g>, E[dHhat_{112} f(z_1) g(z_2)] -> <f> <d_h g> P
        Pn += r * lw * cw * ein("abe,dch,bech->abcd", Yd, Yd, F)
        Pn += r * cw ** 2 * (ein("ab,abe,dch,bech->abcd", Th, Zd, Yd, F)
                             + ein("ab,cd,abcc->abcd", Dp, E2, B)
                             + ein("ab,dch,abch->abcd", Dp, Yd, P))
        Qn += r * lw * cw * (ein("dae,cbh,aebh->abcd", Yd, Yd, F)
                             + ein("dae,bch,aech->abcd", Yd, Yd, F))
        Qn += r * cw ** 2 * (ein("bc,dae,cbh,aebh->abcd", Th, Yd, Zd, F)
                             + ein("bc,dae,bch,aech->abcd", Th, Yd, Zd, F)
                             + ein("bc,dae,abce->abcd", Dp, Yd, Q))
    return Pn, 0.5 * (Qn + Qn.transpose(0, 2, 1, 3))


def predict_dntk(activation, inputs, widths, C_W, C_b, lambda_b=1.0, lambda_W=1.0, *,
                 q=None) -> DNTKPrediction:
    """Leading-order P and Q for every layer (arguments as ``ntk.predict_ntk``).

    The NTK quantities it needs (H, B, F of each layer) come from ``ntk.predict_ntk``.
    Raises ConfigError for an activation that jumps (perceptron) and bad per-layer values,
    ValueError when two distinct inputs are collinear with a kinked activation.
    """
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    widths = tuple(int(n) for n in widths)
    L = len(widths)
    if L < 1:
        raise ConfigError("network.widths: need at least one layer")
    acts = _ntk._activations(activation, L)
    cw = _ntk._per_layer("C_W", C_W, L)
    lw = _ntk._per_layer("lambda_W", lambda_W, L, nonnegative=True)
    uniq, back = _distinct(x @ x.T / x.shape[1] + 1.0)     # as predict_ntk: exact copies only
    N = _ntk.predict_ntk(acts, x[uniq], widths, C_W, C_b, lambda_b, lambda_W, q=q)
    k = len(uniq)
    fan_in = (x.shape[1],) + widths[:-1]
    P, Q = np.zeros((k,) * 4), np.zeros((k,) * 4)
    out = [(P, Q)]
    for t in range(1, L):                                  # layer t+1 from layer t (1-based)
        p = N.layer(t)
        try:
            P, Q = _step(acts[t - 1], p.kernel, p.ntk_leading, p.B, p.F, P, Q, cw[t], lw[t],
                         fan_in[t] / fan_in[t - 1], q)
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ValueError(f"layer {t + 1}: {exc}") from None
        if not (np.all(np.isfinite(P)) and np.all(np.isfinite(Q))):
            raise ValueError(f"layer {t + 1}: dNTK prediction diverges (collinear inputs with "
                             "a kinked activation?)")
        out.append((P, Q))
    ix = np.ix_(back, back, back, back)
    layers = [DNTKLayerPrediction(layer=l, width=widths[l - 1], fan_in=fan_in[l - 1],
                                  P=Pl[ix], Q=Ql[ix])
              for l, (Pl, Ql) in enumerate(out, start=1)]
    return DNTKPrediction(inputs=x, widths=widths, layers=layers)


def format_dntk(prediction, layers=None, show_all: bool = False, limit: int = 8) -> str:
    """Text for ``mcsim theory``: per layer the entries of P and Q (``LayerPrediction.
    dntk_moments`` of a ``recursions.Prediction``), inputs numbered from 1; at most ``limit``
    entries per layer (the single-input ones first) unless ``show_all``."""
    lines = ["dNTK-preactivation correlations at leading order, n_(l-1) times: "
             "P[a0a1a2a3] = n E[dH_{112;a0a1a2} z_{2;a3}], Q[a0a1a2a3] = n E[dH_{122;a0a1a2} "
             "z_{1;a3}]"]
    for p in prediction.layers:
        m = p.dntk_moments
        if m is None or (layers and p.layer not in layers):
            continue
        k = m.P.shape[0]
        entries = [(a,) * 4 for a in range(k)] + [i for i in np.ndindex(k, k, k, k)
                                                  if len(set(i)) > 1]
        shown = entries if show_all else entries[:limit]
        lines.append(f"layer {p.layer}  (n_{p.layer - 1} = {p.fan_in})")
        lines.append(f"  {'entry':<10} {'P':>14} {'Q':>14}")
        for i in shown:
            lines.append(f"  [{''.join(str(a + 1) for a in i)}]{'':<4} {m.P[i]:14.7g} "
                         f"{m.Q[i]:14.7g}")
        if len(shown) < len(entries):
            lines.append(f"  ... {len(entries) - len(shown)} more entries (--all)")
    return "\n".join(lines)
