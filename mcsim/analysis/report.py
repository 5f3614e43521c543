"""Plain-text tables of results (`mcsim info`), driven by the statistics registry."""
from __future__ import annotations

import numpy as np

from ..stats.finite import undefined_reason
from ..stats.results import Result
from ..stats.statistics import STATISTICS, get_statistic

__all__ = ["format_result", "distinct_entries"]


def _fmt(mean, err, why=lambda stderr: "") -> str:
    """An entry as text; NaN (an undefined estimate or error bar) as "undefined (why)"."""
    if np.isnan(mean):
        return f" undefined ({why(False)})"
    if np.isnan(err):
        return f"{mean: .6g} +- undefined ({why(True)})"
    if err == 0:
        return f"{mean: .6g}"
    return f"{mean: .6g} +- {err:.2g}"


def distinct_entries(name: str, k: int):
    """Index tuples of the distinct entries of a statistic, one per symmetry class (from its
    registry entry; e.g. metric: a <= b; vertex: pairs (a1<=a2) <= (a3<=a4))."""
    return get_statistic(name).distinct(k)


def format_result(result: Result, layers=None, show_all: bool = False, limit: int = 12) -> str:
    from ..stats.frames import entry_indices, entry_label_of
    from ..stats.statistics import describe
    cfg, attrs = result.config, result.attrs
    net = cfg.network
    prediction = attrs.get("kind") == "prediction"
    act = ", ".join(f"{k}={v}" for k, v in net.activation.items() if k != "name")
    lines = [f"file        {result.path}"]
    if prediction:
        lines.append(f"kind        prediction ({attrs.get('theory', '1/n expansion')}); "
                     "no sampling, no standard errors")
    else:
        lines.append(f"networks    {result.networks:,} of {int(attrs.get('networks_requested', result.networks)):,}"
                     + ("" if attrs.get("complete", True) else "  (PARTIAL: run again to resume)")
                     + ("  (stopped at its target error)" if attrs.get("target_reached") and
                        result.networks < int(attrs.get("networks_requested", 0)) else ""))
    lines += [
        f"network     n_0={net.input_dim}, widths={list(net.widths)}, activation={net.activation['name']}"
        + (f"({act})" if act else ""),
        f"            C_W={_compact(net.C_W)}, C_b={_compact(net.C_b)}"]
    if not prediction:
        lines.append(f"ensemble    sampler={cfg.ensemble.sampler}, weights={cfg.ensemble.weight_law}, "
                     + (f"biases={cfg.ensemble.bias_law}, " if cfg.ensemble.biases != "gaussian" else "")
                     +
                     f"seed={cfg.ensemble.seed}, block_size={cfg.ensemble.block_size}, "
                     f"jackknife bins={cfg.ensemble.jackknife_bins}, generator={cfg.ensemble.generator}")
        if cfg.ensemble.target is not None:
            t = cfg.ensemble.target
            achieved = attrs.get("target_achieved")
            lines.append(f"target      {t.describe()}" + (f"; achieved {float(achieved):.3g}"
                                                          if achieved is not None else ""))
    lines.append(f"inputs      k={cfg.k}")
    if "runtime_seconds" in attrs and not prediction:
        lines.append(f"runtime     {float(attrs['runtime_seconds']):.1f} s, "
                     f"{float(attrs.get('networks_per_second', 0)):,.0f} networks/s")
        shares = attrs.get("session_rank_blocks")
        if shares is not None and len(shares) > 1:
            lines.append(f"ranks       {len(shares)}, blocks per rank {[int(b) for b in shares]} "
                         f"(last session), busy {100 * float(attrs['session_rank_efficiency']):.0f}% "
                         "of their wall time")
    for l in result.layers:
        if layers and l not in layers:
            continue
        le = result.layer(l)
        lines.append("")
        note = "" if le.stochastic else "  (deterministic: exact)"
        lines.append(f"layer {l}  (n_l={le.width}, fan-in n_{{l-1}}={le.fan_in}){note}")
        names = [n for n in STATISTICS if n in le.stats] + sorted(n for n in le.stats if n not in STATISTICS)
        diag = np.diagonal(le.stats["metric"].mean) if "metric" in le.stats else None
        for name in names:                              # registry order, then the others
            est = le.stats[name]

            def why(stderr, name=name):
                return undefined_reason(name, result.networks, int(attrs.get("blocks", 0) or 0),
                                        cfg.ensemble.jackknife_bins, stderr=stderr, metric_diag=diag)
            desc = describe(name, prediction=prediction)[0]
            lines.append(f"  {name}: {desc}" if desc else f"  {name}")
            entries = entry_indices(name, est.mean.shape)
            shown = entries if show_all else entries[:limit]
            for idx in shown:
                lines.append(f"    {entry_label_of(name, idx)}".ljust(26) + _fmt(est.mean[idx], est.stderr[idx], why))
            if len(shown) < len(entries):
                lines.append(f"    ... {len(entries) - len(shown)} more {name} entries (--all)")
    if result.training:                                 # [training] runs and their predictions
        from ..training.accumulate import format_training
        lines += format_training(result.training)
    return "\n".join(lines)


def _compact(values) -> str:
    return f"{values[0]:g}" if len(set(values)) == 1 else "[" + ", ".join(f"{v:g}" for v in values) + "]"
