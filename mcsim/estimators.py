"""Estimators of the per-layer statistics, with delete-one-bin jackknife standard errors.

For a stochastic layer l with fan-in n = n_{l-1}, from N networks' stochastic metrics Ghat
(theory notes, section 3):

    metric      G_ab                       = mean of Ghat_ab                        (unbiased)
    vertex      V_(a1a2)(a3a4)             = n * unbiased sample covariance          (unbiased)
                                             of Ghat_a1a2 and Ghat_a3a4
    six_point   n^2 * k-statistic k_3      = n^2 N/((N-1)(N-2)) * third central sum  (unbiased)
    kurtosis    excess kurtosis of z_{i;a} = 3 Var(Ghat_aa) / E[Ghat_aa]^2          (ratio: bias O(1/N))

(z given Ghat is Gaussian, so E[z^4] = 3 E[Ghat_aa^2] and the excess kurtosis is exact in
terms of the metric's moments.) Every standard error is the delete-one jackknife over the
non-empty bins: var = (B-1)/B sum_i (theta_{-i} - mean theta_{-i})^2, which reduces to the
usual standard error of the mean for the metric and is consistent for the nonlinear ones.
"""
from __future__ import annotations

import numpy as np

from .accumulator import BinnedMoments, MomentState
from .indexing import pairs as pairs_table, unpack_matrix, unpack_six_point, unpack_vertex


def _packed_statistics(state: MomentState, fan_in: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Packed estimates for S layers. fan_in: (S,) n_{l-1}. Returns arrays over pairs/triples."""
    N = state.count
    diag = np.array([p for p, (a, b) in enumerate(pairs_table(k)) if a == b])
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = state.m2 / (N - 1) if N > 1 else np.full_like(state.m2, np.nan)
        out = {
            "metric": state.mean.copy(),
            "vertex": fan_in[:, None, None] * cov,
            "kurtosis": 3 * cov[:, diag, diag] / state.mean[:, diag] ** 2,
        }
        if state.m3.shape[-1]:
            k3 = N * state.m3 / ((N - 1) * (N - 2)) if N > 2 else np.full_like(state.m3, np.nan)
            out["six_point"] = fan_in[:, None] ** 2 * k3
    return out


def layer_statistics(acc: BinnedMoments, fan_in, k: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Estimates and jackknife standard errors, unpacked to full tensors.

    Returns {name: (mean, stderr)} with shapes metric (S, k, k), vertex (S, k, k, k, k),
    six_point (S, k, k, k, k, k, k) (when accumulated), kurtosis (S, k)."""
    fan_in = np.asarray(fan_in, dtype=np.float64)
    full = _packed_statistics(acc.total(), fan_in, k)
    loo = [_packed_statistics(s, fan_in, k) for s in acc.leave_one_out()]
    B = len(loo)
    result = {}
    for name, value in full.items():
        if B >= 2:
            thetas = np.stack([d[name] for d in loo])
            err = np.sqrt((B - 1) / B * ((thetas - thetas.mean(axis=0)) ** 2).sum(axis=0))
        else:
            err = np.full_like(value, np.nan)
        result[name] = (_unpack(name, value, k), _unpack(name, err, k))
    return result


def _unpack(name: str, packed: np.ndarray, k: int) -> np.ndarray:
    if name == "metric":
        return unpack_matrix(packed, k)
    if name == "vertex":
        return unpack_vertex(packed, k)
    if name == "six_point":
        return unpack_six_point(packed, k)
    return packed


def deterministic_layer(gram: np.ndarray, with_six_point: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Layer 1: Ghat^(1) is fixed, so G = Ghat^(1), V = 0 and the six-point vertex is 0,
    all exactly (standard error 0)."""
    k = gram.shape[0]
    zero = np.zeros
    out = {
        "metric": (gram.copy(), zero((k, k))),
        "vertex": (zero((k,) * 4), zero((k,) * 4)),
        "kurtosis": (zero(k), zero(k)),
    }
    if with_six_point:
        out["six_point"] = (zero((k,) * 6), zero((k,) * 6))
    return out
