"""The registry of statistics: what mcsim estimates per layer, from which moments, and how.

A `Statistic` names the quantities and moment orders it needs, its shape, description and
units (written to HDF5), its estimator (packed, from a `Moments` view of a moment state), how
to unpack the estimate to its full tensor, its exact value at layer 1 (deterministic), the
entries that are distinct by symmetry (for `mcsim info` and `mcsim compare`), a short label
for those entries, and its prediction (a function of `mcsim.theory`'s per-layer prediction),
if there is one. Everything downstream (config validation, the accumulator layout, the
jackknife, `Result`, the HDF5 writer and reader, `mcsim info`, `mcsim compare`, the plots) is
driven by this table.

Estimators for a stochastic layer l with fan-in n = n_{l-1}, from N networks' Ghat
(theory notes, section 3):

    metric      G_ab                       = mean of Ghat_ab                        (unbiased)
    vertex      V_(a1a2)(a3a4)             = n * unbiased sample covariance          (unbiased)
                                             of Ghat_a1a2 and Ghat_a3a4
    six_point   n^2 * k-statistic k_3      = n^2 N/((N-1)(N-2)) * third central sum  (unbiased)
    kurtosis    3 Var(Ghat_aa) / E[Ghat_aa]^2                                    (ratio: bias O(1/N))
    z_four_point  kappa_4(z_{i;a1}, .., z_{i;a4}), one unit i                       (unbiased)
                = (V_(a1a2)(a3a4) + V_(a1a3)(a2a4) + V_(a1a4)(a2a3)) / n + mean of unit_cumulant
    z_kurtosis  E[z^4]/E[z^2]^2 - 3 = (3 Var(Ghat_aa) + mean of unit_cumulant_aaaa) / G_aa^2

For Gaussian weights and biases z given Ghat is Gaussian, so E[z^4] = 3 E[Ghat_aa^2] and
`kurtosis` is the excess kurtosis of z, exactly in terms of the metric's moments. For other
laws (mcsim.laws) z given layer l-1 has the extra fourth cumulant ``unit_cumulant`` (same
unit only): `kurtosis` is then 3 Cov(z_{i;a}^2, z_{j;a}^2) / G_aa^2 for two units i != j
(the cross-unit part, like V), and `z_kurtosis` / `z_four_point` are the statistics of one
unit's z (Rao-Blackwellised: the conditional expectation of z^4 given layer l-1).

Adding a statistic: one ``register_statistic(Statistic(...))`` with its estimator, and its
tests (see docs/architecture.md).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import ntk_estimators as _ntk
from .indexing import pair_index, pairs as pairs_table, quads, unpack_quads, unpack_six_point, unpack_vertex

__all__ = ["Statistic", "STATISTICS", "register_statistic", "get_statistic", "Moments",
           "requestable", "computed", "required_quantities", "entry_label", "distinct_pairs", "describe"]


class Moments:
    """Read-only view of one `MomentState` by quantity name, for estimators.

    All arrays have a leading layer axis S (the recorded stochastic layers)."""

    def __init__(self, state):
        self.state = state
        self.layout = state.layout
        self.count = state.count

    def mean(self, q: str) -> np.ndarray:
        """(S, len_q) sample mean of quantity q."""
        return self.state.mean[:, self.layout.slice(q)]

    def m2(self, q1: str, q2: str | None = None) -> np.ndarray:
        """(S, len_q1, len_q2) central cross sums sum (x - mean)(y - mean)^T."""
        s1 = self.layout.slice(q1)
        s2 = self.layout.slice(q2 or q1)
        return self.state.m2[:, s1, s2]

    def m3(self, q: str) -> np.ndarray:
        """(S, T_q) third central sums over the lexicographic triples of quantity q."""
        idx = self.layout.triples_of(q)
        if idx.size == self.state.m3.shape[-1]:
            return self.state.m3            # all third moments belong to q: no copy, same bits
        return self.state.m3[:, idx]


@dataclass(frozen=True)
class Statistic:
    """One per-layer statistic.

    needs: {quantity: moment order} (1 mean, 2 covariance, 3 third cumulant).
    shape: ``shape(k) -> tuple``, the full array shape.
    estimate: ``estimate(moments: Moments, fan_in (S,) float) -> (S, ...)`` packed estimate.
    unpack: ``unpack(packed (..., P), k) -> (..., *shape)``.
    first_layer: ``first_layer(gram1 (k, k), cfg) -> (*shape)``, the exact value at layer 1.
    distinct: ``distinct(k) -> [index tuple, ...]``, one entry per symmetry class.
    label: ``label(index tuple) -> str``, e.g. ``V[(11)(12)]`` (inputs numbered from 1).
    prediction: ``prediction(layer_prediction) -> (prediction, leading, correction)`` full
        arrays (correction: the coefficient X1 of X = leading + X1/n_{l-1}, or None when it is
        not predicted), or None when mcsim predicts nothing for the statistic;
        ``prediction_note`` says to which order.
    always: computed and stored whether or not ``output.statistics`` lists it.
    plot_scale: ``plot_scale(kernel (k, k), index) -> float``, what plots divide an entry by
        (e.g. K_aa K_bb for the vertex), or None; ``plot_scale_label`` names it.
    prediction_labels: (what ``prediction`` is, what ``leading`` is) in figure legends
        (matplotlib mathtext), e.g. K + G1/n and K for the metric.
    """
    name: str
    needs: dict
    shape: Callable
    description: str
    units: str
    estimate: Callable
    unpack: Callable
    first_layer: Callable
    distinct: Callable
    label: Callable
    prediction: Callable | None = None
    prediction_note: str = ""
    always: bool = False
    plot_scale: Callable | None = None
    plot_scale_label: str = ""
    prediction_labels: tuple = ("prediction", "leading order")


STATISTICS: dict[str, Statistic] = {}


def register_statistic(stat: Statistic) -> Statistic:
    if stat.name in STATISTICS and STATISTICS[stat.name] is not stat:
        raise ValueError(f"statistic {stat.name!r} is registered already")
    STATISTICS[stat.name] = stat
    return stat


def get_statistic(name: str) -> Statistic:
    try:
        return STATISTICS[name]
    except KeyError:
        raise KeyError(f"unknown statistic {name!r}; registered: {', '.join(STATISTICS)}") from None


def requestable() -> tuple[str, ...]:
    """Names accepted in ``output.statistics``, in canonical (registry) order."""
    return tuple(STATISTICS)


def computed(requested) -> tuple[str, ...]:
    """The statistics a run computes: the requested ones plus those marked ``always``, in
    registry order."""
    return tuple(n for n, s in STATISTICS.items() if s.always or n in requested)


def required_quantities(names) -> dict[str, int]:
    """{quantity: highest moment order} needed by the statistics ``names``."""
    out: dict[str, int] = {}
    for n in names:
        for q, order in get_statistic(n).needs.items():
            out[q] = max(out.get(q, 0), int(order))
    return out


# -- entry labels and symmetry classes ---------------------------------------------------
def distinct_pairs(k: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(k) for b in range(a, k)]


def _pair_label(p) -> str:
    return "(" + "".join(str(i + 1) for i in p) + ")"


def entry_label(name: str, idx: tuple) -> str:
    """Label of one entry of a statistic, inputs numbered from 1 (``G[12]``, ``V[(11)(12)]``)."""
    return get_statistic(name).label(tuple(idx))


# -- the four statistics of the stochastic metric -----------------------------------------
def _cov(mom: Moments, q1: str, q2: str | None = None) -> np.ndarray:
    N = mom.count
    m2 = mom.m2(q1, q2)
    return m2 / (N - 1) if N > 1 else np.full_like(m2, np.nan)


def _metric(mom, fan_in):
    return mom.mean("gram").copy()


def _vertex(mom, fan_in):
    return fan_in[:, None, None] * _cov(mom, "gram")


def _diag_pairs(k: int) -> np.ndarray:
    return np.array([p for p, (a, b) in enumerate(pairs_table(k)) if a == b])


def _kurtosis(mom, fan_in):
    mean = mom.mean("gram")
    k = int(round((np.sqrt(8 * mean.shape[-1] + 1) - 1) / 2))
    diag = _diag_pairs(k)
    cov = _cov(mom, "gram")
    return 3 * cov[:, diag, diag] / mean[:, diag] ** 2


def _six_point(mom, fan_in):
    N = mom.count
    m3 = mom.m3("gram")
    k3 = N * m3 / ((N - 1) * (N - 2)) if N > 2 else np.full_like(m3, np.nan)
    return fan_in[:, None] ** 2 * k3


def _unpack_matrix(packed, k):
    from .indexing import unpack_matrix
    return unpack_matrix(packed, k)


def _identity(packed, k):
    return packed


def _zeros(shape):
    return lambda gram1, cfg: np.zeros(shape(gram1.shape[0]))


def _vertex_entries(k):
    return [p + q for p, q in itertools.combinations_with_replacement(distinct_pairs(k), 2)]


def _six_entries(k):
    return [p + q + r for p, q, r in itertools.combinations_with_replacement(distinct_pairs(k), 3)]


register_statistic(Statistic(
    name="metric", needs={"gram": 2}, shape=lambda k: (k, k),
    description="G_ab = E[Ghat_ab] = E[z_{i;a} z_{i;b}]",
    units="preactivation variance (units of z^2)",
    estimate=_metric, unpack=_unpack_matrix,
    first_layer=lambda gram1, cfg: gram1.copy(),
    distinct=distinct_pairs, label=lambda i: "G[%d%d]" % (i[0] + 1, i[1] + 1),
    prediction=lambda p: (p.metric, p.kernel, p.correction),
    prediction_note="prediction K + G1/n; O(1/n^2) remainder", always=True,
    prediction_labels=("$K + G^{\\{1\\}}/n$", "$K$ (infinite width)")))

register_statistic(Statistic(
    name="vertex", needs={"gram": 2}, shape=lambda k: (k,) * 4,
    description="V_(a1a2)(a3a4) = n_{l-1} Cov(Ghat_a1a2, Ghat_a3a4)",
    units="z^4 times fan-in",
    estimate=_vertex, unpack=unpack_vertex, first_layer=_zeros(lambda k: (k,) * 4),
    distinct=_vertex_entries, label=lambda i: "V[%s%s]" % (_pair_label(i[:2]), _pair_label(i[2:])),
    prediction=lambda p: (p.vertex_nlo, p.vertex, p.vertex_correction),
    prediction_note="leading order V plus the 1/n correction V1/n; O(1/n^2) remainder",
    plot_scale=lambda K, i: float(np.sqrt(K[i[0], i[0]] * K[i[1], i[1]] * K[i[2], i[2]] * K[i[3], i[3]])),
    plot_scale_label="sqrt(K_a1a1 K_a2a2 K_a3a3 K_a4a4)",
    prediction_labels=("$V + V^{\\{1\\}}/n$", "$V$, leading order")))

register_statistic(Statistic(
    name="six_point", needs={"gram": 3}, shape=lambda k: (k,) * 6,
    description="n_{l-1}^2 kappa_3(Ghat_a1a2, Ghat_a3a4, Ghat_a5a6)",
    units="z^6 times fan-in^2",
    estimate=_six_point, unpack=unpack_six_point, first_layer=_zeros(lambda k: (k,) * 6),
    distinct=_six_entries,
    label=lambda i: "S6[%s%s%s]" % (_pair_label(i[:2]), _pair_label(i[2:4]), _pair_label(i[4:])),
    prediction=lambda p: (_six_point_prediction(p),) * 2 + (None,),
    prediction_note="leading order; O(1/n) deviations expected",
    prediction_labels=("$S_6$, leading order", "$S_6$, leading order")))

register_statistic(Statistic(
    name="kurtosis", needs={"gram": 2}, shape=lambda k: (k,),
    description="3 Var(Ghat_aa) / G_aa^2: the excess kurtosis of z_{i;a} for Gaussian weights and "
                "biases; for every law 3 Cov(z_{i;a}^2, z_{j;a}^2) / G_aa^2 with units i != j "
                "(cross-unit, like V; for non-Gaussian laws the kurtosis of z is z_kurtosis)",
    units="dimensionless",
    estimate=_kurtosis, unpack=_identity, first_layer=_zeros(lambda k: (k,)),
    distinct=lambda k: [(a,) for a in range(k)], label=lambda i: "kurt[%d]" % (i[0] + 1),
    prediction=lambda p: (p.kurtosis_nlo, p.kurtosis, p.kurtosis_correction),
    prediction_note="leading order 3 V/(n K^2) plus its 1/n^2 terms from V1 and G1; "
                    "O(1/n^3) remainder", always=True,
    prediction_labels=("$3V/(nG^2)$ to $1/n^2$", "$3V/(nK^2)$, leading order")))


def _six_point_prediction(p):
    """The layer prediction's six-point vertex; NaN where it was not computed."""
    if getattr(p, "six_point", None) is None:
        return np.full((p.kernel.shape[0],) * 6, np.nan)
    return p.six_point


# -- the five NTK statistics (estimators: stats/ntk_estimators.py) ------------------------
def _ntk_label(letter):
    return lambda i: "%s[%s%s]" % (letter, _pair_label(i[:2]), _pair_label(i[2:]))


_NTK_NOTE = "leading order in 1/n (book ch. 8); the measurement differs by O(1/n)"
_NTK_MEAN_NOTE = "to order 1/n: H + H1/n_{l-1} (H1: the 1/n correction of the mean NTK)"


def _ntk_prediction(part):
    """The prediction hook of an NTK statistic: from ``LayerPrediction.ntk_moments`` (an
    ``NTKLayerPrediction``); NaN (not predicted) where those were not computed."""
    def hook(p):
        m = getattr(p, "ntk_moments", None)
        if m is None:
            k = p.kernel.shape[0]
            nan = np.full((k, k) if part == "ntk" else (k,) * 4, np.nan)
            return nan, nan, None
        if part == "ntk":
            return m.ntk, m.ntk_leading, m.ntk_correction
        value = getattr(m, part)
        return value, value, None
    return hook
_ntk_zeros = _zeros(lambda k: (k,) * 4)

register_statistic(Statistic(
    name="ntk", needs={"ntk_11": 1, "ntk_22": 1}, shape=lambda k: (k, k),
    description="mean NTK E[Hhat_{11;ab}] (learning rates lambda_b, lambda_W / n_{l'-1})",
    units="z^2 per unit learning rate",
    estimate=_ntk.ntk_mean, unpack=_ntk.unpack_mean, first_layer=_ntk.first_layer_ntk,
    distinct=distinct_pairs, label=lambda i: "ntk[%d%d]" % (i[0] + 1, i[1] + 1),
    prediction=_ntk_prediction("ntk"), prediction_note=_NTK_MEAN_NOTE))

register_statistic(Statistic(
    name="ntk_A", needs={"ntk_11": 2, "ntk_22": 2}, shape=lambda k: (k,) * 4,
    description="A[a,b,c,d] = n_{l-1} Cov(Hhat_{11;ab}, Hhat_{22;cd}), units 1 != 2",
    units="NTK^2 times fan-in",
    estimate=_ntk.ntk_A, unpack=_ntk.unpack_pairs2, first_layer=_ntk_zeros,
    distinct=lambda k: _ntk.orbits(k, _ntk.A_SYMMETRIES), label=_ntk_label("A"),
    prediction=_ntk_prediction("A"), prediction_note=_NTK_NOTE))

register_statistic(Statistic(
    name="ntk_B", needs={"ntk_12": 2}, shape=lambda k: (k,) * 4,
    description="B[a,c,b,d] = n_{l-1} E[Hhat_{12;ab} Hhat_{12;cd}], units 1 != 2",
    units="NTK^2 times fan-in",
    estimate=_ntk.ntk_B, unpack=_ntk.unpack_cross, first_layer=_ntk_zeros,
    distinct=lambda k: _ntk.orbits(k, _ntk.CROSS_SYMMETRIES_B), label=_ntk_label("B"),
    prediction=_ntk_prediction("B"), prediction_note=_NTK_NOTE))

register_statistic(Statistic(
    name="ntk_D", needs={"ntk_11": 2, "ntk_22": 2, "gram": 2}, shape=lambda k: (k,) * 4,
    description="D[a,b,c,d] = n_{l-1} Cov(Hhat_{11;ab}, z_{2;c} z_{2;d}), units 1 != 2 "
                "(estimated as n_{l-1} Cov(Hhat_{11;ab}, Ghat_cd), equal exactly)",
    units="NTK z^2 times fan-in",
    estimate=_ntk.ntk_D, unpack=_ntk.unpack_pairs2, first_layer=_ntk_zeros,
    distinct=lambda k: _ntk.orbits(k, _ntk.PAIR_SYMMETRIES), label=_ntk_label("D"),
    prediction=_ntk_prediction("D"), prediction_note=_NTK_NOTE))

register_statistic(Statistic(
    name="ntk_F", needs={"ntk_12": 2, "ntk_zz": 2}, shape=lambda k: (k,) * 4,
    description="F[a,c,b,d] = n_{l-1} E[Hhat_{12;ab} z_{1;c} z_{2;d}], units 1 != 2",
    units="NTK z^2 times fan-in",
    estimate=_ntk.ntk_F, unpack=_ntk.unpack_cross, first_layer=_ntk_zeros,
    distinct=lambda k: _ntk.orbits(k, _ntk.CROSS_SYMMETRIES_F), label=_ntk_label("F"),
    prediction=_ntk_prediction("F"), prediction_note=_NTK_NOTE))


# -- statistics of one unit's z for any weight and bias law (mcsim.laws) --------------------
def _k_of(gram_mean):
    return int(round((np.sqrt(8 * gram_mean.shape[-1] + 1) - 1) / 2))


def _z_four_point(mom, fan_in):
    cum = mom.mean("unit_cumulant")
    k = _k_of(mom.mean("gram"))
    P, Q = pair_index(k), quads(k)
    a1, a2, a3, a4 = Q.T
    cov = _cov(mom, "gram")
    return (cov[:, P[a1, a2], P[a3, a4]] + cov[:, P[a1, a3], P[a2, a4]]
            + cov[:, P[a1, a4], P[a2, a3]] + cum)


def _z_kurtosis(mom, fan_in):
    mean = mom.mean("gram")
    diag = _diag_pairs(_k_of(mean))
    cov = _cov(mom, "gram")
    return (3 * cov[:, diag, diag] + mom.mean("unit_cumulant_diag")) / mean[:, diag] ** 2


def _first_four_point(gram1, cfg):
    from ..laws import first_layer_cumulant
    return first_layer_cumulant(cfg)


def _first_z_kurtosis(gram1, cfg):
    d = np.arange(gram1.shape[0])
    return _first_four_point(gram1, cfg)[d, d, d, d] / np.diag(gram1) ** 2


def _quad_entries(k):
    return [tuple(int(i) for i in q) for q in itertools.combinations_with_replacement(range(k), 4)]


register_statistic(Statistic(
    name="z_four_point", needs={"gram": 2, "unit_cumulant": 2}, shape=lambda k: (k,) * 4,
    description="same-unit connected four-point function of z (fourth joint cumulant of "
                "z_{i;a1}..z_{i;a4}, one unit i) for the run's weight and bias laws: "
                "(V_(a1a2)(a3a4) + V_(a1a3)(a2a4) + V_(a1a4)(a2a3)) / n_{l-1} + E[unit_cumulant]",
    units="z^4",
    estimate=_z_four_point, unpack=unpack_quads,
    first_layer=_first_four_point,
    distinct=_quad_entries, label=lambda i: "Z4[%s]" % "".join(str(a + 1) for a in i),
    prediction=lambda p: (p.z_four_point, p.z_four_point, None),
    prediction_note="leading order (3 V terms + weight-law term)/n + bias-law term; O(1/n^2) "
                    "deviations expected",
    plot_scale=lambda K, i: float(np.sqrt(K[i[0], i[0]] * K[i[1], i[1]] * K[i[2], i[2]] * K[i[3], i[3]])),
    plot_scale_label="sqrt(K_a1a1 K_a2a2 K_a3a3 K_a4a4)"))

register_statistic(Statistic(
    name="z_kurtosis", needs={"gram": 2, "unit_cumulant_diag": 2}, shape=lambda k: (k,),
    description="excess kurtosis of z_{i;a} itself for the run's weight and bias laws: "
                "E[z^4]/E[z^2]^2 - 3 = (3 Var(Ghat_aa) + E[unit_cumulant_aaaa]) / G_aa^2 "
                "(equals kurtosis for Gaussian weights and biases)",
    units="dimensionless",
    estimate=_z_kurtosis, unpack=_identity, first_layer=_first_z_kurtosis,
    distinct=lambda k: [(a,) for a in range(k)], label=lambda i: "zkurt[%d]" % (i[0] + 1),
    prediction=lambda p: (p.z_kurtosis, p.z_kurtosis, None),
    prediction_note="leading order (3 V + kappa4_W C_W^2 <s^4>) / (n K^2) + kappa4_b C_b^2 / K^2; "
                    "O(1/n^2) deviations expected",
    prediction_labels=("leading order", "leading order")))


# -- the two dNTK statistics (book ch. 11; estimators and quantities: stats/dntk_estimators.py)
from . import dntk_estimators as _dntk  # noqa: E402  (registers the dNTK quantities)

_DNTK_NOTE = "leading order (book ch. 11); O(1/n) deviations, exact at layer 2"

register_statistic(Statistic(
    name="dntk_P", needs={"dntk_112": 2, "dntk_221": 2, "dntk_z": 2}, shape=lambda k: (k,) * 4,
    description="P[a0,a1,a2,a3] = n_{l-1} E[dHhat_{1 1 2; a0 a1 a2} z_{2;a3}], units 1 != 2; "
                "dHhat_{i0i1i2} = sum_mu lambda_mu dz_{i0}/dtheta_mu dHhat_{i1i2}/dtheta_mu",
    units="NTK^2 times fan-in",
    estimate=_dntk.dntk_P, unpack=_dntk.unpack, first_layer=_dntk.first_layer_dntk,
    distinct=_dntk.P_entries, label=lambda i: "P[%s]" % "".join(str(a + 1) for a in i),
    prediction=_dntk.prediction("P"), prediction_note=_DNTK_NOTE,
    prediction_labels=("$P$, leading order", "$P$, leading order")))

register_statistic(Statistic(
    name="dntk_Q", needs={"dntk_122": 2, "dntk_211": 2, "dntk_z": 2}, shape=lambda k: (k,) * 4,
    description="Q[a0,a1,a2,a3] = n_{l-1} E[dHhat_{1 2 2; a0 a1 a2} z_{1;a3}], units 1 != 2 "
                "(symmetric in a1 <-> a2)",
    units="NTK^2 times fan-in",
    estimate=_dntk.dntk_Q, unpack=_dntk.unpack, first_layer=_dntk.first_layer_dntk,
    distinct=_dntk.Q_entries, label=lambda i: "Q[%s]" % "".join(str(a + 1) for a in i),
    prediction=_dntk.prediction("Q"), prediction_note=_DNTK_NOTE,
    prediction_labels=("$Q$, leading order", "$Q$, leading order")))


def describe(dataset: str, prediction: bool = False) -> tuple[str, str]:
    """(description, units) of a per-layer dataset: a statistic, or a prediction's
    ``<statistic>_leading`` / ``<statistic>_correction`` part. ``prediction``: the dataset
    of a prediction file, whose statistics say that they are predictions and to which order."""
    if prediction and dataset == "ntk":
        return ("1/n-expansion prediction of the mean NTK E[Hhat_{11;ab}] (learning rates of the "
                "config): H + H1/n_{l-1} where the file also holds ntk_correction, else H, its "
                "infinite-width value", STATISTICS["ntk"].units)
    if dataset in STATISTICS:
        s = STATISTICS[dataset]
        if prediction and s.prediction is not None:
            return f"1/n-expansion prediction of {s.description}; {s.prediction_note}", s.units
        return s.description, s.units
    for suffix, text, unit_suffix in (
            ("_leading", "leading-order (infinite-width) prediction of {base}: {desc}", ""),
            ("_correction", "1/n correction X1 of {base}: {base} = {base}_leading + X1 / n_{{l-1}} "
                            "+ O(1/n^2); {desc}", " times fan-in")):
        base = dataset[: -len(suffix)] if dataset.endswith(suffix) else None
        if base in STATISTICS:
            s = STATISTICS[base]
            return text.format(base=base, desc=s.description), s.units + unit_suffix
    return "", ""
