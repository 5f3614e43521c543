"""Estimates with delete-one-bin jackknife standard errors, for any registered statistic.

Every statistic's estimator (`mcsim.stats.statistics`) maps a moment state to a packed
estimate. Here each is evaluated on the merge of all jackknife bins and on each
leave-one-bin-out merge; the standard error is

    var = (B-1)/B sum_i (theta_{-i} - mean theta_{-i})^2

over the B non-empty bins, which reduces to the usual standard error of the mean for the
metric and is consistent for the nonlinear estimators. Both are then unpacked to full
tensors. Layer 1 is deterministic: its statistics are exact, with standard error 0.
"""
from __future__ import annotations

import numpy as np

from ..errors import NumericalOverflow
from .accumulator import BinnedMoments
from .finite import ADVICE
from .statistics import Moments, computed, get_statistic

__all__ = ["layer_statistics", "first_layer_statistics", "compute_estimates", "layer_one_gram"]


def layer_statistics(acc: BinnedMoments, fan_in, k: int, names, layers=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Estimates and jackknife standard errors of the statistics ``names`` for the
    accumulator's S layers, unpacked: {name: (mean (S, *shape), stderr (S, *shape))}.
    layers: the network layer of each of the S (for messages). Raises NumericalOverflow
    when an estimate overflows float64."""
    layers = list(layers) if layers is not None else list(range(2, 2 + len(fan_in)))
    fan_in = np.asarray(fan_in, dtype=np.float64)
    stats = [get_statistic(n) for n in names]
    total, loo_states = acc.total(), acc.leave_one_out()
    result = {}
    for s in stats:
        # floating-point overflow raises (never a silent inf, or a 0 from x / inf); 0/0 of an
        # undefined estimate gives NaN (`stats.finite.undefined_reason` says why)
        try:
            with np.errstate(divide="ignore", invalid="ignore", over="raise"):
                value = s.estimate(Moments(total), fan_in)
                thetas = [s.estimate(Moments(state), fan_in) for state in loo_states]
                B = len(thetas)
                if B >= 2:
                    thetas = np.stack(thetas)
                    err = np.sqrt((B - 1) / B * ((thetas - thetas.mean(axis=0)) ** 2).sum(axis=0))
                else:
                    err = np.full_like(value, np.nan)
        except FloatingPointError:
            raise NumericalOverflow(
                f"the {s.name} estimate overflows float64 at layer {_overflow_layer(s, total, fan_in, layers)}; "
                f"no result with non-finite values is written. To fix it, {ADVICE}") from None
        bad = ~np.isfinite(value) & ~np.isnan(value) | np.isposinf(err)
        if bad.any():
            raise NumericalOverflow(
                f"the {s.name} estimate is infinite at layer {layers[int(np.argwhere(bad)[0][0])]}; no "
                f"result with non-finite values is written. To fix it, {ADVICE}")
        result[s.name] = (s.unpack(value, k), s.unpack(err, k))
    return result


def _overflow_layer(stat, total, fan_in, layers):
    """The first recorded layer whose estimate overflows (layers: the network layer of each)."""
    from .accumulator import MomentState
    for i in range(len(fan_in)):
        state = MomentState(total.count, total.mean[i:i + 1], total.m2[i:i + 1], total.m3[i:i + 1],
                            total.layout)
        try:
            with np.errstate(divide="ignore", invalid="ignore", over="raise"):
                stat.estimate(Moments(state), fan_in[i:i + 1])
        except FloatingPointError:
            return layers[i]
    return "?"


def layer_one_gram(cfg) -> np.ndarray:
    """Ghat^(1) = C_b^(1) + C_W^(1)/n_0 x x^T, (k, k): deterministic."""
    x = np.asarray(cfg.inputs)
    return cfg.network.C_b[0] + cfg.network.C_W[0] / cfg.network.input_dim * (x @ x.T)


def first_layer_statistics(cfg, names) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Layer 1: Ghat^(1) is fixed, so every statistic is exact (standard error 0)."""
    gram = layer_one_gram(cfg)
    out = {}
    for n in names:
        value = np.asarray(get_statistic(n).first_layer(gram, cfg), dtype=np.float64)
        out[n] = (value, np.zeros_like(value))
    return out


def compute_estimates(cfg, acc: BinnedMoments) -> dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """{l: {statistic: (mean, stderr)}} for every recorded layer of ``cfg``."""
    names = computed(cfg.output.statistics)
    out = {}
    if 1 in cfg.layers:
        out[1] = first_layer_statistics(cfg, names)
    layers = cfg.stochastic_layers
    if layers and acc.networks > 0:
        stats = layer_statistics(acc, [cfg.network.fan_in(l) for l in layers], cfg.k, names, layers)
        for i, l in enumerate(layers):
            out[l] = {name: (mean[i], err[i]) for name, (mean, err) in stats.items()}
    return out
