"""Layer-to-layer recursions of the 1/n expansion (theory notes section 5).

Conventions (as in the notes and ``docs/hdf5-schema.md``): layers l = 1..L, widths n_l,
n_0 the input dimension, inputs a = 0..k-1. For layer l:

* ``kernel`` K^(l) (k, k): the infinite-width metric,
  K^(1) = C_b^(1) + C_W^(1) x.x / n_0,  K^(l+1) = C_b + C_W <s_a s_b>_{K^(l)}.
* ``vertex`` V^(l) (k, k, k, k), index order (a1, a2, a3, a4) for V_{(a1a2)(a3a4)}: the
  leading order of n_{l-1} Cov(Ghat^(l)_{a1a2}, Ghat^(l)_{a3a4}); V^(1) = 0 and

      V^(l+1) = C_W^2 [<s s s s> - <s s><s s>] + (n_l / n_{l-1}) C_W^2 J V^(l) J^T

  with J[a, b, c, d] = d<s_a s_b>/dK_cd (independent entries, so the contraction runs over
  all ordered pairs; (1/2)<d_c d_d (s_a s_b)> by Price's theorem). This is the notes'
  formula with its (C_W^2/4) <dd(ss)> V <dd(ss)>.
* ``correction`` G^{1}(l) (k, k): the metric at order 1/n,

      G^(l) = E[Ghat^(l)] = K^(l) + G^{1}(l) / n_{l-1} + O(1/n^2),

  i.e. G^{1}(l) is normalised with the fan-in n_{l-1} of layer l, like V^(l). Expanding the
  exact E[Ghat^(l+1)] = C_b + C_W E[<s s>_{Ghat^(l)}] to second order in
  dG = Ghat^(l) - K^(l), with E[dG] = G^{1}(l)/n_{l-1} and E[dG dG] = V^(l)/n_{l-1} + O(1/n^2)
  (the third moment and the square of the mean are O(1/n^2)):

      G^{1}(l+1) = (n_l / n_{l-1}) C_W [ J : G^{1}(l) + (1/2) H :: V^(l) ]

  with H[a, b, c, d, e, f] = d^2<s_a s_b>/dK_cd dK_ef = (1/4)<d_c d_d d_e d_f (s_a s_b)>,
  so the second term is the book's (C_W/8) sum <d^4 (s s)> V. G^{1}(1) = G^{1}(2) = 0
  (layer 1 is deterministic and layer 2 sees the exactly Gaussian z^(1)).
* ``ntk`` Theta^(l) (k, k), the mean NTK at infinite width with learning rates lambda_b and
  lambda_W / n_{l-1}: Theta^(1) = lambda_b + lambda_W x.x / n_0,
  Theta^(l+1) = lambda_b + lambda_W <s_a s_b> + C_W <s'_a s'_b> Theta^(l) (elementwise).
  Infinite (undefined) for activations with jumps (perceptron).
* ``kurtosis`` (k,): excess kurtosis of one z_{i;a} at leading order, 3 V_aaaa / (n_{l-1} K_aa^2).
* ``vertex_correction`` V1^(l) (k,)*4 and ``six_point`` S^(l) (k,)*6 (``higher=True``): the
  1/n correction of the vertex, n_{l-1} Cov(Ghat) = V + V1/n_{l-1} + O(1/n^2), and the six-point vertex at
  leading order, n_{l-1}^2 kappa_3(Ghat, Ghat, Ghat); see ``vertex_nlo`` and ``six_point``.
  None (with ``Prediction.notes`` saying why) above ``vertex_nlo.MAX_INPUTS`` distinct inputs.
* ``unit_cumulant`` U^(l) (k, k, k, k) or None: the same-unit fourth cumulant that non-Gaussian
  weight and bias laws add (``weight_laws.apply_laws``; None: Gaussian laws, U = 0), and
  ``z_four_point`` / ``z_kurtosis``, the statistics of one unit's z that include it.

Inputs that coincide exactly (K^(1) rows with K_aa = K_bb = K_ab) give identical
preactivations in every layer; they are computed once and copied, so kinked activations
(whose derivatives diverge at correlation 1) work with repeated inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import gaussian as _g

__all__ = ["LayerPrediction", "Prediction", "predict", "first_layer_kernel"]


@dataclass(frozen=True, eq=False)
class LayerPrediction:
    """Predictions for one layer l (shapes: k inputs)."""
    layer: int                  # l
    width: int                  # n_l
    fan_in: int                 # n_{l-1}
    kernel: np.ndarray          # K^(l), (k, k)
    vertex: np.ndarray          # V^(l), (k, k, k, k), leading order
    correction: np.ndarray      # G^{1}(l), (k, k), divided by n_{l-1} in the metric
    ntk: np.ndarray | None = None   # Theta^(l), (k, k)
    vertex_correction: np.ndarray | None = None   # V1^(l), (k, k, k, k), divided by n_{l-1}
    six_point: np.ndarray | None = None           # S^(l), (k,)*6, leading order
    ntk_moments: object = None  # ntk.NTKLayerPrediction (H + H1/n, A, B, D, F) when asked for
    unit_cumulant: np.ndarray | None = None   # U^(l), (k, k, k, k); None for Gaussian laws
    dntk_moments: object = None  # dntk.DNTKLayerPrediction (P, Q of the dNTK) when asked for

    @property
    def metric(self) -> np.ndarray:
        """K^(l) + G^{1}(l) / n_{l-1}: the metric to order 1/n, (k, k)."""
        return self.kernel + self.correction / self.fan_in

    @property
    def kurtosis(self) -> np.ndarray:
        """Leading-order excess kurtosis of z_{i;a}: 3 V_aaaa / (n_{l-1} K_aa^2), (k,)."""
        d = np.arange(self.kernel.shape[0])
        return 3.0 * self.vertex[d, d, d, d] / (self.fan_in * np.diag(self.kernel) ** 2)

    @property
    def vertex_nlo(self) -> np.ndarray:
        """V + V1/n_{l-1}: the vertex to order 1/n (the leading order when V1 is not known)."""
        if self.vertex_correction is None:
            return self.vertex
        return self.vertex + self.vertex_correction / self.fan_in

    @property
    def kurtosis_correction(self) -> np.ndarray | None:
        """X1 with kurtosis = 3 V_aaaa/(n K_aa^2) + X1/n_{l-1} + O(1/n^3), (k,):
        X1 = 3 (V1_aaaa - 2 V_aaaa G1_aa / K_aa) / (n_{l-1} K_aa^2); None without V1."""
        if self.vertex_correction is None:
            return None
        d = np.arange(self.kernel.shape[0])
        K, G1 = np.diag(self.kernel), np.diag(self.correction)
        V0, V1 = self.vertex[d, d, d, d], self.vertex_correction[d, d, d, d]
        return 3.0 * (V1 - 2 * V0 * G1 / K) / (self.fan_in * K ** 2)

    @property
    def kurtosis_nlo(self) -> np.ndarray:
        """The excess kurtosis to order 1/n^2, (k,) (leading order when V1 is not known)."""
        X1 = self.kurtosis_correction
        return self.kurtosis if X1 is None else self.kurtosis + X1 / self.fan_in

    @property
    def z_four_point(self) -> np.ndarray:
        """Same-unit connected four-point function of z at leading order, (k, k, k, k):
        (V_(12)(34) + V_(13)(24) + V_(14)(23)) / n_{l-1} + U."""
        V = self.vertex
        out = (V + np.einsum("acbd->abcd", V) + np.einsum("adbc->abcd", V)) / self.fan_in
        return out if self.unit_cumulant is None else out + self.unit_cumulant

    @property
    def z_kurtosis(self) -> np.ndarray:
        """Excess kurtosis of z_{i;a} for the laws of the prediction, (k,):
        z_four_point_aaaa / K_aa^2."""
        d = np.arange(self.kernel.shape[0])
        return self.z_four_point[d, d, d, d] / np.diag(self.kernel) ** 2


@dataclass(frozen=True, eq=False)
class Prediction:
    """Per-layer predictions for one network configuration."""
    activation: dict
    inputs: np.ndarray          # (k, n_0)
    widths: tuple               # (n_1, ..., n_L)
    C_W: tuple
    C_b: tuple
    layers: list = field(default_factory=list)   # LayerPrediction for l = 1..L
    notes: tuple = ()           # what was not computed, and why
    weights: object = None      # mcsim.laws.Law of the weights and biases (None: Gaussian)
    biases: object = None

    def layer(self, l: int) -> LayerPrediction:
        if not 1 <= l <= len(self.layers):
            raise KeyError(f"layer {l} out of range 1..{len(self.layers)}")
        return self.layers[l - 1]

    @property
    def depth(self) -> int:
        return len(self.layers)


def _per_layer(name, value, L):
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.size == 1:
        arr = np.full(L, float(arr[0]))
    if arr.shape != (L,):
        raise ValueError(f"{name}: need one value or one per layer ({L}), got {arr.size}")
    return arr


def first_layer_kernel(inputs, C_W1: float, C_b1: float) -> np.ndarray:
    """K^(1) = C_b + C_W x.x / n_0 for inputs (k, n_0)."""
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    return C_b1 + C_W1 * (x @ x.T) / x.shape[1]


def _distinct(K1, rtol=1e-12):
    """Representatives of inputs that are not copies of one another, and the map back."""
    k = K1.shape[0]
    rep = list(range(k))
    for b in range(k):
        for a in range(b):
            if rep[a] == a:
                tol = rtol * max(abs(K1[a, a]), abs(K1[b, b]), 1e-300)
                if abs(K1[a, a] - K1[b, b]) <= tol and abs(K1[a, a] - K1[a, b]) <= tol:
                    rep[b] = a
                    break
    uniq = sorted(set(rep))
    return uniq, np.array([uniq.index(r) for r in rep])


def predict(activation, inputs, widths, C_W, C_b, *, ntk: bool = True, lambda_b=1.0,
            lambda_W=1.0, q=None, higher: bool = True,
            max_inputs: int | None = None) -> Prediction:
    """Kernel, four-point vertex, 1/n metric correction (and mean NTK) for every layer.

    This is the core recursion; ``full.predict`` adds the NTK fluctuations and the dNTK, and
    ``full.predict_config`` the weight and bias laws of a configuration.

    Args:
        activation: registry spec (``"relu"``, ``{"name": "leaky_relu", "slope": 0.1}``) or
            an ``Activation``.
        inputs: (k, n_0) array, one input per row.
        widths: (n_1, ..., n_L).
        C_W, C_b: one value for all layers or one per layer (entry l-1 for layer l).
        ntk: also compute Theta^(l); lambda_b, lambda_W: learning rates (scalar or per layer).
        q: quadrature order override (see ``quadrature.DEFAULT_ORDER``).
        higher: also the six-point vertex and the 1/n vertex correction (``vertex_nlo``),
            for at most ``max_inputs`` distinct inputs (default ``vertex_nlo.MAX_INPUTS``).
    """
    from ..activations import get_activation
    act = get_activation(activation)
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    widths = tuple(int(n) for n in widths)
    L = len(widths)
    if L < 1:
        raise ValueError("need at least one layer")
    cw, cb = _per_layer("C_W", C_W, L), _per_layer("C_b", C_b, L)
    lb, lw = _per_layer("lambda_b", lambda_b, L), _per_layer("lambda_W", lambda_W, L)
    fan_in = (x.shape[1],) + widths[:-1]

    K1 = first_layer_kernel(x, cw[0], cb[0])
    uniq, back = _distinct(K1)
    K = K1[np.ix_(uniq, uniq)]
    k = len(uniq)
    V = np.zeros((k,) * 4)
    G1 = np.zeros((k, k))
    xu = x[uniq]
    Theta = lb[0] + lw[0] * (xu @ xu.T) / x.shape[1] if ntk else None
    out = [(K, V, G1, Theta)]
    for l in range(1, L):                       # layer l+1 (1-based) from layer l
        C_W_, C_b_ = cw[l], cb[l]
        ratio = fan_in[l] / fan_in[l - 1]       # n_l / n_{l-1}
        M2 = _g.two_point(act, K, q=q)
        M4 = _g.four_point(act, K, q=q)
        V_new = C_W_ ** 2 * (M4 - np.einsum("ab,cd->abcd", M2, M2))
        G1_new = np.zeros((k, k))
        if np.any(V) or np.any(G1):
            J, H = _g.two_point_jacobian(act, K, second=bool(np.any(V)), q=q)
            terms = [J] + ([H] if H is not None else [])
            if not all(np.all(np.isfinite(t)) for t in terms):
                raise ValueError(
                    f"layer {l}: derivatives of <sigma sigma> diverge (two distinct inputs with "
                    f"correlation +-1 and a kinked activation {act.name!r}); perturb the inputs")
            V_new += ratio * C_W_ ** 2 * np.einsum("abcd,cdef,ghef->abgh", J, V, J)
            G1_new = ratio * C_W_ * np.einsum("abcd,cd->ab", J, G1)
            if H is not None:
                G1_new += ratio * C_W_ * 0.5 * np.einsum("abcdef,cdef->ab", H, V)
        if ntk:
            D = _g.derivative_two_point(act, K, q=q)
            Theta = lb[l] + lw[l] * M2 + C_W_ * D * Theta
        K = C_b_ + C_W_ * M2
        V = 0.5 * (V_new + V_new.transpose(2, 3, 0, 1))
        G1 = 0.5 * (G1_new + G1_new.T)
        out.append((K, V, G1, Theta))

    notes = ()
    V1s, Ss = [None] * L, [None] * L
    if higher:
        from .vertex_nlo import higher_orders
        V1s, Ss, note = higher_orders(act, [o[0] for o in out], [o[1] for o in out],
                                      [o[2] for o in out], fan_in, cw, q=q,
                                      max_inputs=max_inputs)
        notes = (note,) if note else ()
    layers = []
    b = back
    for l, (K, V, G1, Th) in enumerate(out, start=1):
        V1, S = V1s[l - 1], Ss[l - 1]
        layers.append(LayerPrediction(
            layer=l, width=widths[l - 1], fan_in=fan_in[l - 1], kernel=K[np.ix_(b, b)],
            vertex=V[np.ix_(b, b, b, b)], correction=G1[np.ix_(b, b)],
            ntk=None if Th is None else Th[np.ix_(b, b)],
            vertex_correction=None if V1 is None else V1[np.ix_(b, b, b, b)],
            six_point=None if S is None else S[np.ix_(b, b, b, b, b, b)]))
    return Prediction(activation=_spec(act), inputs=x, widths=widths, C_W=tuple(cw),
                      C_b=tuple(cb), layers=layers, notes=notes)


def _spec(act) -> dict:
    spec = getattr(act, "spec", None)
    return spec() if callable(spec) else {"name": act.name}
