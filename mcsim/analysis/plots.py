"""Figures for `mcsim compare --plot`: every predicted statistic against layer, width sweeps
on a 1/n axis (matplotlib, PNG and PDF); driven by the statistics registry."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..stats.statistics import get_statistic
from .compare import (Measurement, WidthSweep, measurement_from_result, predicted_statistics,
                      prediction_for)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 9, "axes.labelsize": 9, "legend.fontsize": 7.5,
                         "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.dpi": 150})
    return plt


def _save(fig, outdir, stem) -> list[str]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        p = outdir / f"{stem}.{ext}"
        fig.savefig(p, bbox_inches="tight", dpi=150 if ext == "png" else None)
        paths.append(str(p))
    return paths


def _title(m: Measurement) -> str:
    act = m.activation["name"] + "".join(f", {k}={v}" for k, v in m.activation.items() if k != "name")
    cw = m.C_W[0] if len(set(m.C_W)) == 1 else "per layer"
    cb = m.C_b[0] if len(set(m.C_b)) == 1 else "per layer"
    return f"{act}, $C_W$={cw}, $C_b$={cb}, widths {list(m.widths)}, {m.networks:,} networks"


def _entries(stat, k, max_entries):
    """Up to max_entries distinct entries, those on the diagonal (all indices equal per pair)
    first."""
    entries = stat.distinct(k)
    diag = [e for e in entries if len(set(e)) <= 1]
    return (diag + [e for e in entries if e not in diag])[:max_entries]


def plot_layers(measurement, outdir, stem="layers", prediction=None, max_entries=3) -> list[str]:
    """Every measured statistic that has a prediction, against layer: measurement with error
    bars, prediction (solid) and, where it differs, its leading order (dotted); one panel per
    statistic, entries normalised as the registry says (e.g. V / (K_aa K_bb)). Writes
    ``<stem>.png`` and ``<stem>.pdf`` in outdir; returns their paths."""
    plt = _plt()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
    m = measurement if isinstance(measurement, Measurement) else measurement_from_result(measurement)
    p = prediction or prediction_for(m)
    names = [n for n in predicted_statistics() if any(n in m.layers[l] for l in m.layers)]
    allp = np.arange(1, p.depth + 1)
    fig, axes = plt.subplots(1, len(names), figsize=(3.5 * len(names), 2.8), constrained_layout=True,
                             squeeze=False)
    grey = dict(color="0.3")
    for ax, name in zip(axes[0], names):
        stat = get_statistic(name)
        ls = [l for l in sorted(m.layers) if name in m.layers[l]]
        handles = []
        for i, idx in enumerate(_entries(stat, m.k, max_entries)):
            c = f"C{i}"

            def norm(l):
                return stat.plot_scale(p.layer(l).kernel, idx) if stat.plot_scale else 1.0
            parts = [stat.prediction(p.layer(l)) for l in allp]
            pred = np.array([q[0][idx] / norm(l) for q, l in zip(parts, allp)])
            lead = np.array([q[1][idx] / norm(l) for q, l in zip(parts, allp)])
            y = np.array([m.layers[l][name][0][idx] / norm(l) for l in ls])
            e = np.array([m.layers[l][name][1][idx] / norm(l) for l in ls])
            ax.plot(allp, pred, "-", color=c, lw=1.2)
            if not np.allclose(pred, lead):
                ax.plot(allp, lead, ":", color=c, lw=1.0)
            ax.errorbar(ls, y, e, fmt="o", ms=3, color=c, capsize=2)
            handles.append(Line2D([], [], color=c, marker="o", ms=3, label=stat.label(idx)))
        handles += [Line2D([], [], ls="", marker="o", ms=3, label="measured", **grey),
                    Line2D([], [], ls="-", label="prediction", **grey),
                    Line2D([], [], ls=":", label="leading order", **grey)]
        ax.set_xlabel("layer $\\ell$")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name + (f" / {stat.plot_scale_label}" if stat.plot_scale else ""))
        ax.set_title(stat.prediction_note, fontsize=7)
        ax.legend(handles=handles, frameon=False, ncol=2)
    fig.suptitle(_title(m), fontsize=8)
    paths = _save(fig, outdir, stem)
    plt.close(fig)
    return paths


def plot_width_sweep(sweep: WidthSweep, outdir, stem="width_sweep", layer=None,
                     entries=None) -> list[str]:
    """Each fitted statistic against 1/n with the fitted line, the leading prediction at
    1/n = 0 and, where it is predicted, the slope X1 (G^{1} for the metric). One panel per
    entry."""
    plt = _plt()
    keys = list(sweep.points)
    layer = layer or max(k[0] for k in keys)
    keys = [k for k in keys if k[0] == layer and (entries is None or k[2] in entries)]
    if entries is None:          # diagonal entries and the first off-diagonal ones
        pref = ["G[11]", "G[12]", "V[(11)(11)]", "V[(12)(12)]"]
        keys = [k for k in keys if k[2] in pref] or keys[:4]
    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys), 2.6), constrained_layout=True,
                             squeeze=False)
    row_of = {(r["layer"], r["statistic"], r["entry"]): r for r in sweep.rows}
    for ax, key in zip(axes[0], keys):
        n, x, s, lead = sweep.points[key]
        fit = sweep.fits[key]
        inv = np.linspace(0, 1.1 / n.min(), 100)
        ax.plot(inv, sum(c * inv ** i for i, c in enumerate(fit.coef)), "-", color="C0", lw=1.2,
                label="fit $X_\\infty + a/n$" + (" $+ b/n^2$" if fit.order == 2 else ""))
        ax.errorbar(1 / n, x, s, fmt="o", ms=3.5, color="C0", capsize=2, label="measured")
        r = row_of[key]
        ax.plot([0], [lead[0]], "s", color="C3", ms=5, label="leading order")
        if np.isfinite(r["a_predicted"]):
            ax.plot(inv, lead[0] + r["a_predicted"] * inv, "--", color="C3", lw=1,
                    label="leading + $X_1/n$")
        ax.set_xlabel("$1/n_{\\ell-1}$")
        ax.set_ylabel(f"{key[2]}, layer {key[0]}")
        ax.set_xlim(left=-0.02 / n.min())
        ax.legend(frameon=False)
    fig.suptitle(_title(sweep.measurements[0]).rsplit(", widths", 1)[0] +
                 f", layer {layer}", fontsize=8)
    paths = _save(fig, outdir, stem)
    plt.close(fig)
    return paths
