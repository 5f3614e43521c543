"""Running to a target error: the check the driver makes at its checkpoints.

With ``[ensemble] target = { statistic = "vertex", layer = 10, relative_stderr = 0.01 }``
(`mcsim.config.target`) the driver evaluates, every ``output.checkpoint_interval`` seconds
(where it checkpoints), the jackknife standard error of the chosen entries and stops when
it is small enough; ``ensemble.networks`` is the cap. The stored file is then complete with
fewer networks than requested, and records ``target``, ``target_reached`` and
``target_achieved`` (the worst relative or absolute standard error at the stop). The check
needs every jackknife bin filled (at least ``jackknife_bins`` blocks).

What stopping on the error does to the estimate. The number of networks N now depends on
the data, through the estimated error. Wald's identity, E[N (xbar_N - mu)] = 0, gives the
bias of the estimate at the stop as about -Cov(N, xbar_N) / E[N]:

* the estimated error fluctuates with the data; its fluctuations are correlated with those
  of the estimate only through the skewness gamma of the per-network values, which gives a
  bias of at most about gamma / sqrt(N) standard errors, whatever the number of bins;
* with ``relative_stderr`` the stop also depends on |estimate| itself (an estimate that
  fluctuated up looks relatively more precise); this gives a bias of at most about 2 r
  standard errors for a target r (0.02 standard errors for a 1% target).

(Simulated with this rule and 64 bins: lognormal values of skewness 11 run to a 2% target
stopped near N = 8,000 with a bias of -0.05 +- 0.03 standard errors and 66% coverage of one
standard error; exponential values to 1%, near N = 10,000: -0.015 +- 0.026.)

Both are small against the standard error when N is large (N >= 1e5 networks and |gamma| up
to 10 give < 0.03 standard errors) and shrink as the target tightens, so the stopped estimate
is used as it is; error bars keep their coverage (Chow & Robbins 1965). Checks happen only
every checkpoint interval, on whole rounds of blocks, which makes the dependence weaker still.
A run that must be exactly unbiased fixes ``networks`` (e.g. from ``mcsim plan``) instead.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("mcsim")

__all__ = ["TargetStatus", "evaluate_target", "target_check", "target_attrs", "networks_needed"]


@dataclass(frozen=True)
class TargetStatus:
    target: object              # mcsim.config.target.Target
    reached: bool
    achieved: float             # worst (relative) standard error of the chosen entries
    entry: str                  # label of the worst entry
    networks: int

    def describe(self) -> str:
        kind = "relative standard error" if self.target.relative else "standard error"
        return (f"{self.target.statistic} at layer {self.target.layer}: {kind} {self.achieved:.3g} "
                f"(worst entry {self.entry}; target {self.target.value:g}) after {self.networks:,} networks")


def _entries(stat, k: int, target):
    entries = stat.distinct(k)
    if target.entry:
        return [e for e in entries if stat.label(e) == target.entry]
    if target.relative:
        return [e for e in entries if len(set(e)) == 1] or entries
    return entries


def _status(target, k: int, mean, err, networks: int) -> TargetStatus:
    from ..stats.statistics import get_statistic
    stat = get_statistic(target.statistic)
    worst, label = -1.0, ""
    for idx in _entries(stat, k, target):
        m, s = float(mean[idx]), float(err[idx])
        with np.errstate(all="ignore"):
            value = s / abs(m) if target.relative else s
        if not np.isfinite(value):
            value = float("inf")
        if value > worst:
            worst, label = value, stat.label(idx)
    return TargetStatus(target, bool(worst <= target.value), worst, label, networks)


def evaluate_target(cfg, acc, target=None, estimates=None) -> TargetStatus | None:
    """The target's state for the accumulator ``acc`` of a run of ``cfg`` (None: no target).
    Not reached (achieved = inf) until every jackknife bin holds a block. ``estimates``: the
    run's ``compute_estimates`` output, when at hand (saves the jackknife)."""
    from ..stats.estimators import layer_statistics
    target = target or cfg.ensemble.target
    if target is None:
        return None
    if acc.blocks < acc.bins or acc.networks < 3:
        return TargetStatus(target, False, float("inf"), "", acc.networks)
    if estimates is not None and target.statistic in estimates.get(target.layer, {}):
        mean, err = estimates[target.layer][target.statistic]
    else:
        layers = cfg.stochastic_layers
        fan_in = [cfg.network.fan_in(l) for l in layers]
        with np.errstate(all="ignore"):
            mean, err = layer_statistics(acc, fan_in, cfg.k, [target.statistic])[target.statistic]
        i = layers.index(target.layer)
        mean, err = mean[i], err[i]
    return _status(target, cfg.k, mean, err, acc.networks)


def networks_needed(status: TargetStatus) -> float:
    """Networks at which the target would be met, from the error now (errors fall like
    1/sqrt(N)); inf while no error is known."""
    if not np.isfinite(status.achieved) or status.networks == 0:
        return float("inf")
    return status.networks * (status.achieved / status.target.value) ** 2


def target_check(cfg, progress=None):
    """The driver's hook: None without a target, else ``reached(acc) -> bool``, which also
    puts the current error on the progress line and logs when the target is met."""
    if cfg.ensemble.target is None:
        return None
    last = {}

    def reached(acc) -> bool:
        status = evaluate_target(cfg, acc)
        last["status"] = status
        if progress is not None and np.isfinite(status.achieved):
            need = networks_needed(status)
            progress.note = (f"{status.entry} {'rel. ' if status.target.relative else ''}err "
                             f"{status.achieved:.3g} -> {status.target.value:g}"
                             + (f", ~{need:,.0f} networks needed" if not status.reached else ""))
        if status.reached:
            log.info("target reached: %s", status.describe())
        return status.reached

    reached.last = last
    return reached


def target_attrs(cfg, acc, estimates=None) -> dict:
    """Root attributes recording the target and the state it was left in."""
    status = evaluate_target(cfg, acc, estimates=estimates)
    if status is None:
        return {}
    return {"target": json.dumps(status.target.to_dict()), "target_reached": status.reached,
            "target_achieved": status.achieved, "target_entry": status.entry}
