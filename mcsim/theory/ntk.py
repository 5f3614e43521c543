"""Neural tangent kernel predictions: mean at leading order and 1/n, fluctuations A, B, D, F
at leading order, per-layer contributions and the learning-rate equivalence principle
(Roberts, Yaida & Hanin, chapters 8-9; derivation and conventions in docs/ntk-theory.md).

Conventions (as in the issue that defines the NTK statistics): learning rates lambda_b^(l)
for the biases of layer l and lambda_W^(l) / n_{l-1} for its weights;

    Hhat^(l)_{i1 i2; a b} = sum_{mu in layers 1..l} lambda_mu dz^(l)_{i1;a}/dtheta_mu
                                                             dz^(l)_{i2;b}/dtheta_mu.

For layer l with fan-in n = n_{l-1} and two distinct units 1, 2 of layer l:

    ntk            E[Hhat_{11;ab}]                  = H[a,b] + H1[a,b] / n + O(1/n^2)
    A[a,b,c,d]     n Cov(Hhat_{11;ab}, Hhat_{22;cd})       (leading order)
    B[a,c,b,d]     n E[Hhat_{12;ab} Hhat_{12;cd}]
    D[a,b,c,d]     n Cov(Hhat_{11;ab}, z_{2;c} z_{2;d})
    F[a,c,b,d]     n E[Hhat_{12;ab} z_{1;c} z_{2;d}]

The 1/n correction is normalised with the fan-in n_{l-1} of its layer, like the metric's
G^{1} in ``recursions``. Layer 1 is deterministic: H1 = A = B = D = F = 0. At layer 2 the
leading-order A, B, D, F and H are exact at any width (H1 = 0).

Public functions:

    predict_ntk(activation, inputs, widths, C_W, C_b, lambda_b=1.0, lambda_W=1.0, q=None)
        -> NTKPrediction
    predict_ntk_config(cfg, lambda_b=None, lambda_W=None) -> NTKPrediction
    ntk_contributions(activation, inputs, depth, C_W, C_b, lambda_b, lambda_W)
        -> NTKContributions
    equivalence_learning_rates(activation, depth, C_W=None, C_b=None, input_norm=1.0,
                               lambda_b_total=1.0, lambda_W_total=1.0) -> (lambda_b, lambda_W)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from . import gaussian as _g
from . import ntk_gaussian as _ng
from .recursions import _distinct

__all__ = ["NTKLayerPrediction", "NTKPrediction", "NTKContributions", "predict_ntk",
           "predict_ntk_config", "ntk_contributions", "equivalence_learning_rates",
           "config_learning_rates"]


# ------------------------------------------------------------------------------------------
# result types
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NTKLayerPrediction:
    """NTK predictions for one layer l (k inputs; index conventions in the module doc).

    Attributes:
        layer: l (1-based). width: n_l. fan_in: n_{l-1} (n_0 = input dimension for l = 1).
        kernel: K^(l) (k, k), the infinite-width metric (for reference).
        ntk_leading: H^(l) (k, k), the infinite-width mean NTK.
        ntk_correction: H1^(l) (k, k), the 1/n correction: E[Hhat] = H + H1 / fan_in.
        A, B, D, F: (k, k, k, k) leading order, as defined in the module docstring.
    """
    layer: int
    width: int
    fan_in: int
    kernel: np.ndarray
    ntk_leading: np.ndarray
    ntk_correction: np.ndarray
    A: np.ndarray
    B: np.ndarray
    D: np.ndarray
    F: np.ndarray

    @property
    def ntk(self) -> np.ndarray:
        """H + H1 / n_{l-1}: the mean NTK to order 1/n, (k, k)."""
        return self.ntk_leading + self.ntk_correction / self.fan_in

    @property
    def ntk_variance(self) -> np.ndarray:
        """Leading-order Var(Hhat_{11;ab}) * n_{l-1} = A[a,b,a,b] + B[a,a,b,b] + B[a,b,b,a],
        (k, k)."""
        k = self.A.shape[0]
        a, b = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        return self.A[a, b, a, b] + self.B[a, a, b, b] + self.B[a, b, b, a]


@dataclass(frozen=True, eq=False)
class NTKPrediction:
    """Per-layer NTK predictions for one network (``layers[l - 1]`` is layer l)."""
    activations: tuple          # canonical specs, one per layer
    inputs: np.ndarray          # (k, n_0)
    widths: tuple               # (n_1, ..., n_L)
    C_W: tuple
    C_b: tuple
    lambda_b: tuple
    lambda_W: tuple
    layers: list = field(default_factory=list)

    def layer(self, l: int) -> NTKLayerPrediction:
        if not 1 <= l <= len(self.layers):
            raise KeyError(f"layer {l} out of range 1..{len(self.layers)}")
        return self.layers[l - 1]

    @property
    def depth(self) -> int:
        return len(self.layers)


@dataclass(frozen=True, eq=False)
class NTKContributions:
    """Contributions of each layer's parameters to the output layer's mean NTK H^(L).

    bias[l-1], weight[l-1] (k, k): the parts of H^(L) from the biases and from the weights of
    layer l, so that ``total = bias.sum(0) + weight.sum(0)`` = H^(L) (leading order).
    """
    bias: np.ndarray            # (L, k, k)
    weight: np.ndarray          # (L, k, k)

    @property
    def per_layer(self) -> np.ndarray:
        """bias + weight, (L, k, k)."""
        return self.bias + self.weight

    @property
    def total(self) -> np.ndarray:
        """H^(L), (k, k)."""
        return self.per_layer.sum(axis=0)


# ------------------------------------------------------------------------------------------
# argument handling
# ------------------------------------------------------------------------------------------
def _per_layer(name, value, L, *, nonnegative=False):
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.size == 1:
        arr = np.full(L, float(arr[0]))
    if arr.shape != (L,):
        raise ConfigError(f"network.{name}: need one value or one per layer ({L}), "
                          f"got {arr.size}")
    if not np.all(np.isfinite(arr)) or (nonnegative and np.any(arr < 0)):
        raise ConfigError(f"network.{name}: learning rates must be finite and >= 0, got "
                          f"{arr.tolist()}")
    return arr


def _activations(activation, L):
    from ..activations import get_activation
    if isinstance(activation, (list, tuple)):
        if len(activation) != L:
            raise ConfigError(f"network.activation: need one activation or one per layer "
                              f"({L}), got {len(activation)}")
        acts = [get_activation(a) for a in activation]
    else:
        acts = [get_activation(activation)] * L
    for a in acts:
        _ng.check_ntk_activation(a)
    return acts


def _spec(act) -> dict:
    return act.spec() if callable(getattr(act, "spec", None)) else {"name": act.name}


def _finite(name, *arrays):
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError(
            f"{name} diverges (two distinct inputs with correlation +-1 and a "
            "kinked activation); perturb the inputs")


# ------------------------------------------------------------------------------------------
# the recursion
# ------------------------------------------------------------------------------------------
def _step(act, K, V, G1, Th, H1, A, B, D, F, cw, cb, lw, lb, r, q):
    """Layer l -> l+1 (docs/ntk-theory.md). r = n_l / n_{l-1}; cw, cb, lw, lb of layer l+1.
    Returns (K, V, G1, Th, H1, A, B, D, F) of layer l+1 (G1, H1 normalised with n_l)."""
    M2 = _g.two_point(act, K, q=q)
    Dp = _g.derivative_two_point(act, K, q=q)
    X4, Y4, Z4 = _ng.mixed_four_point(act, K, q=q)
    ein = np.einsum
    Kn = cb + cw * M2
    Thn = lb + lw * M2 + cw * Th * Dp
    Vn = cw ** 2 * (X4 - ein("ab,cd->abcd", M2, M2))
    Ew = lw * M2 + cw * Th * Dp                                   # <omega_ab>
    Ewss = lw * X4 + cw * ein("ab,abcd->abcd", Th, Y4)            # <omega_ab s_c s_d>
    Eww = (lw ** 2 * X4 + lw * cw * (ein("cd,cdab->abcd", Th, Y4) + ein("ab,abcd->abcd", Th, Y4))
           + cw ** 2 * ein("ab,cd,abcd->abcd", Th, Th, Z4))      # <omega_ab omega_cd>
    Dn = cw * (Ewss - ein("ab,cd->abcd", Ew, M2))
    An = Eww - ein("ab,cd->abcd", Ew, Ew)
    Bn = cw ** 2 * ein("ab,cd,abcd->acbd", Th, Th, Z4)
    Fn = cw ** 2 * ein("ab,abcd->acbd", Th, Y4)
    G1n = np.zeros_like(K)
    H1n = np.zeros_like(K)
    if any(np.any(t) for t in (V, G1, H1, A, B, D, F)):
        J, Hs = _g.two_point_jacobian(act, K, second=True, q=q)
        dact = _ng.derivative_activation(act)
        Jp, Hp = _g.two_point_jacobian(dact, K, second=True, q=q)
        Yd = _ng.gradient_sigma_dsigma(act, K, q=q)
        _finite("d<sigma sigma>/dK or d<sigma' sigma'>/dK", J, Hs, Jp, Hp, Yd)
        P = lw * J + cw * Th[:, :, None, None] * Jp              # d<omega_ab>/dK_ef
        Q = cw * Dp                                               # d<omega_ab>/dHbar_ab
        Vn += r * cw ** 2 * ein("abef,efgh,cdgh->abcd", J, V, J)
        Dn += r * cw * (ein("abef,efgh,cdgh->abcd", P, V, J)
                        + ein("ab,abgh,cdgh->abcd", Q, D, J))
        An += r * (ein("abef,efgh,cdgh->abcd", P, V, P)
                   + ein("ab,cdgh,abgh->abcd", Q, P, D)
                   + ein("cd,abef,cdef->abcd", Q, P, D)
                   + ein("ab,cd,abcd->abcd", Q, Q, A))
        Bn += r * cw ** 2 * ein("ac,bd,acbd->acbd", Dp, Dp, B)
        Fn += r * cw ** 2 * ein("cae,dbh,aebh->acbd", Yd, Yd, F)
        dM2 = ein("abcd,cd->ab", J, G1) + 0.5 * ein("abcdef,cdef->ab", Hs, V)
        dDp = ein("abcd,cd->ab", Jp, G1) + 0.5 * ein("abcdef,cdef->ab", Hp, V)
        G1n = r * cw * dM2
        H1n = r * (lw * dM2 + cw * (Th * dDp + Dp * H1 + ein("abef,abef->ab", Jp, D)
                                    + 2.0 * ein("abcd,acbd->ab", Jp, F)))
    sym = lambda T: 0.5 * (T + T.transpose(2, 3, 0, 1))          # noqa: E731
    return (Kn, sym(Vn), 0.5 * (G1n + G1n.T), 0.5 * (Thn + Thn.T), 0.5 * (H1n + H1n.T),
            sym(An), Bn, Dn, Fn)


def predict_ntk(activation, inputs, widths, C_W, C_b, lambda_b=1.0, lambda_W=1.0, *,
                q=None) -> NTKPrediction:
    """Mean NTK (leading and 1/n) and its fluctuations A, B, D, F for every layer.

    Args:
        activation: registry spec (``"relu"``, ``{"name": "leaky_relu", "slope": 0.1}``), an
            Activation, or a list of L of them (entry l-1 is applied to z^(l); the last one
            does not enter).
        inputs: (k, n_0) array, one input per row.
        widths: (n_1, ..., n_L).
        C_W, C_b, lambda_b, lambda_W: one value or one per layer (entry l-1 for layer l);
            learning rates must be finite and >= 0.
        q: quadrature order override (``quadrature.DEFAULT_ORDER``).

    Raises ConfigError for an activation that jumps (perceptron: sigma' is a delta), bad
    per-layer lengths or learning rates; ValueError when derivatives diverge (distinct
    inputs with correlation +-1 and a kinked activation).
    """
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    widths = tuple(int(n) for n in widths)
    L = len(widths)
    if L < 1:
        raise ConfigError("network.widths: need at least one layer")
    acts = _activations(activation, L)
    cw, cb = _per_layer("C_W", C_W, L), _per_layer("C_b", C_b, L)
    lb = _per_layer("lambda_b", lambda_b, L, nonnegative=True)
    lw = _per_layer("lambda_W", lambda_W, L, nonnegative=True)
    n0 = x.shape[1]
    fan_in = (n0,) + widths[:-1]
    G0 = x @ x.T / n0
    uniq, back = _distinct(G0 + 1.0)            # + 1: exact copies only (also zero inputs)
    G0 = G0[np.ix_(uniq, uniq)]
    k = len(uniq)
    z2, z4 = np.zeros((k, k)), np.zeros((k,) * 4)
    state = (cb[0] + cw[0] * G0, z4, z2, lb[0] + lw[0] * G0, z2, z4, z4, z4, z4)
    states = [state]
    for t in range(1, L):                       # layer t+1 from layer t (1-based)
        r = fan_in[t] / fan_in[t - 1]
        try:
            state = _step(acts[t - 1], *state, cw[t], cb[t], lw[t], lb[t], r, q)
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ValueError(f"layer {t + 1}: {exc}") from None
        states.append(state)
    layers = []
    ix2 = np.ix_(back, back)
    ix4 = np.ix_(back, back, back, back)
    for l, (K, V, G1, Th, H1, A, B, D, F) in enumerate(states, start=1):
        layers.append(NTKLayerPrediction(
            layer=l, width=widths[l - 1], fan_in=fan_in[l - 1], kernel=K[ix2],
            ntk_leading=Th[ix2], ntk_correction=H1[ix2], A=A[ix4], B=B[ix4], D=D[ix4],
            F=F[ix4]))
    return NTKPrediction(activations=tuple(_spec(a) for a in acts), inputs=x, widths=widths,
                         C_W=tuple(cw), C_b=tuple(cb), lambda_b=tuple(lb), lambda_W=tuple(lw),
                         layers=layers)


def config_learning_rates(cfg):
    """(lambda_b, lambda_W) of a Config: ``[network] lambda_b``, ``lambda_W`` when present
    (scalar or per layer), else 1.0 each."""
    net = cfg.network
    lb = getattr(net, "lambda_b", None)
    lw = getattr(net, "lambda_W", None)
    return (1.0 if lb is None else lb), (1.0 if lw is None else lw)


def predict_ntk_config(cfg, lambda_b=None, lambda_W=None, **kw) -> NTKPrediction:
    """``predict_ntk`` for a loaded ``mcsim.config.Config`` (learning rates from the config
    unless given, default 1.0)."""
    net = cfg.network
    lb, lw = config_learning_rates(cfg)
    return predict_ntk(net.activation, cfg.inputs, net.widths, net.C_W, net.C_b,
                       lb if lambda_b is None else lambda_b,
                       lw if lambda_W is None else lambda_W, **kw)


# ------------------------------------------------------------------------------------------
# per-layer contributions and the learning-rate equivalence principle (book chapter 9)
# ------------------------------------------------------------------------------------------
def ntk_contributions(activation, inputs, depth, C_W, C_b, lambda_b=1.0, lambda_W=1.0, *,
                      q=None) -> NTKContributions:
    """Each layer's share of the output mean NTK H^(L) at leading order.

    Unrolling H^(l+1) = lambda_b^(l+1) + lambda_W^(l+1) <s s>_{K^(l)} + C_W^(l+1)
    <s' s'>_{K^(l)} * H^(l) (elementwise) gives H^(L) = sum_l [lambda_b^(l) + lambda_W^(l)
    m^(l)] * P^(l) with m^(1) = x.x / n_0, m^(l) = <s s>_{K^(l-1)} and
    P^(l) = prod_{l' = l+1..L} C_W^(l') <s' s'>_{K^(l'-1)}. ``depth`` = L; arguments as in
    ``predict_ntk`` (widths do not enter at leading order).
    """
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    L = int(depth)
    if L < 1:
        raise ConfigError("network.widths: need at least one layer")
    acts = _activations(activation, L)
    cw, cb = _per_layer("C_W", C_W, L), _per_layer("C_b", C_b, L)
    lb = _per_layer("lambda_b", lambda_b, L, nonnegative=True)
    lw = _per_layer("lambda_W", lambda_W, L, nonnegative=True)
    G0 = x @ x.T / x.shape[1]
    K = cb[0] + cw[0] * G0
    m = [G0]
    chi = []                                   # C_W^(l+1) <s' s'>_{K^(l)}, l = 1..L-1
    for t in range(1, L):
        M2 = _g.two_point(acts[t - 1], K, q=q)
        m.append(M2)
        chi.append(cw[t] * _g.derivative_two_point(acts[t - 1], K, q=q))
        K = cb[t] + cw[t] * M2
    P = [np.ones_like(G0)]
    for c in reversed(chi):                     # P^(L) = 1, P^(l) = chi_{l} * P^(l+1)
        P.append(c * P[-1])
    P = P[::-1]
    bias = np.stack([lb[l] * P[l] for l in range(L)])
    weight = np.stack([lw[l] * m[l] * P[l] for l in range(L)])
    return NTKContributions(bias=bias, weight=weight)


def equivalence_learning_rates(activation, depth, C_W=None, C_b=None, input_norm=1.0,
                               lambda_b_total=1.0, lambda_W_total=1.0, *, q=None):
    """Per-layer learning rates that make every layer contribute equally to H^(L).

    For one reference input with x.x / n_0 = ``input_norm``, returns arrays (L,)

        lambda_b^(l) = lambda_b_total / (L P^(l)),   lambda_W^(l) = lambda_W_total / (L m^(l) P^(l))

    (m, P as in ``ntk_contributions``), so that each layer's biases contribute
    lambda_b_total / L and its weights lambda_W_total / L, and H^(L) = lambda_b_total +
    lambda_W_total at every depth. ``C_W``, ``C_b`` default to the critical initialisation
    of the activation's universality class (``criticality.find_criticality``); ConfigError
    when it has none and they are not given. Asymptotically this is the book's
    prescription: ReLU family 1/L for both; K*=0 class (tanh, p_perp = 1) lambda_b^(l)
    ~ 1/l and lambda_W^(l) ~ const (see docs/ntk-theory.md).
    """
    from ..activations import get_activation
    from .criticality import find_criticality
    act = get_activation(activation)
    _ng.check_ntk_activation(act)
    L = int(depth)
    if L < 1:
        raise ConfigError("depth must be >= 1")
    if C_W is None or C_b is None:
        crit = find_criticality(act).critical
        if crit is None:
            raise ConfigError(f"network.activation: {act.name!r} has no critical "
                              "initialisation; give C_W and C_b")
        C_W = crit.C_W if C_W is None else C_W
        C_b = crit.C_b if C_b is None else C_b
    if not (np.isfinite(input_norm) and input_norm > 0):
        raise ConfigError(f"input_norm must be a finite number > 0, got {input_norm!r}")
    x = np.array([[np.sqrt(input_norm)]])
    c = ntk_contributions(act, x, L, C_W, C_b, 1.0, 1.0, q=q)
    P = c.bias[:, 0, 0]                          # lambda_b = 1: P^(l)
    mP = c.weight[:, 0, 0]                       # lambda_W = 1: m^(l) P^(l)
    if np.any(P <= 0) or np.any(mP <= 0) or not np.all(np.isfinite(P * mP)):
        raise ConfigError(f"network.activation: {act.name!r} at C_W={C_W}, C_b={C_b}: a "
                          "layer's NTK factor vanishes or diverges, no equal contributions")
    return lambda_b_total / (L * P), lambda_W_total / (L * mP)
