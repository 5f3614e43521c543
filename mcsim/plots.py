"""Figures for `mcsim compare --plot`: kernel and V/K^2 against layer, width sweeps on a
1/n axis (matplotlib, PNG and PDF)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .compare import Measurement, WidthSweep, measurement_from_result, prediction_for
from .report import distinct_entries


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


def plot_layers(measurement, outdir, stem="layers", prediction=None, max_entries=3) -> list[str]:
    """Kernel and V/K^2 against layer: measurement with error bars, prediction as curves.
    Writes ``<stem>.png`` and ``<stem>.pdf`` in outdir; returns their paths."""
    plt = _plt()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
    m = measurement if isinstance(measurement, Measurement) else measurement_from_result(measurement)
    p = prediction or prediction_for(m)
    ls = sorted(m.layers)
    allp = np.arange(1, p.depth + 1)
    pairs = distinct_entries("metric", m.k)
    pairs = ([q for q in pairs if q[0] == q[1]] + [q for q in pairs if q[0] != q[1]])[:max_entries]
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8), constrained_layout=True)
    handles = [[], []]
    for i, (a, b) in enumerate(pairs):
        c = f"C{i}"
        K = np.array([p.layer(l).kernel[a, b] for l in allp])
        G = np.array([p.layer(l).metric[a, b] for l in allp])
        y = np.array([m.layers[l]["metric"][0][a, b] for l in ls])
        e = np.array([m.layers[l]["metric"][1][a, b] for l in ls])
        axes[0].plot(allp, K, ":", color=c, lw=1.0)
        axes[0].plot(allp, G, "-", color=c, lw=1.2)
        axes[0].errorbar(ls, y, e, fmt="o", ms=3, color=c, capsize=2)
        handles[0].append(Line2D([], [], color=c, marker="o", ms=3, label=f"$G_{{{a + 1}{b + 1}}}$"))
        vl = [l for l in ls if "vertex" in m.layers[l]]
        if vl:
            norm_p = np.array([p.layer(l).kernel[a, a] * p.layer(l).kernel[b, b] for l in allp])
            V = np.array([p.layer(l).vertex[a, b, a, b] for l in allp]) / norm_p
            norm = np.array([p.layer(l).kernel[a, a] * p.layer(l).kernel[b, b] for l in vl])
            vy = np.array([m.layers[l]["vertex"][0][a, b, a, b] for l in vl]) / norm
            ve = np.array([m.layers[l]["vertex"][1][a, b, a, b] for l in vl]) / norm
            axes[1].plot(allp, V, "-", color=c, lw=1.2)
            axes[1].errorbar(vl, vy, ve, fmt="o", ms=3, color=c, capsize=2)
            handles[1].append(Line2D([], [], color=c, marker="o", ms=3,
                                     label=f"$V_{{({a + 1}{b + 1})({a + 1}{b + 1})}}$"))
    grey = dict(color="0.3")
    handles[0] += [Line2D([], [], ls="", marker="o", ms=3, label="measured", **grey),
                   Line2D([], [], ls="-", label="$K + G^{\\{1\\}}/n_{\\ell-1}$", **grey),
                   Line2D([], [], ls=":", label="$K$ (infinite width)", **grey)]
    handles[1] += [Line2D([], [], ls="", marker="o", ms=3, label="measured", **grey),
                   Line2D([], [], ls="-", label="leading order", **grey)]
    for ax in axes:
        ax.set_xlabel("layer $\\ell$")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("metric $G^{(\\ell)}_{ab}$")
    axes[1].set_ylabel("$V^{(\\ell)}_{(ab)(ab)} \\,/\\, K_{aa} K_{bb}$")
    axes[0].legend(handles=handles[0], frameon=False, ncol=2)
    axes[1].legend(handles=handles[1], frameon=False)
    fig.suptitle(_title(m), fontsize=8)
    paths = _save(fig, outdir, stem)
    plt.close(fig)
    return paths


def plot_width_sweep(sweep: WidthSweep, outdir, stem="width_sweep", layer=None,
                     entries=None) -> list[str]:
    """Each fitted statistic against 1/n with the fitted line, the leading prediction at
    1/n = 0 and, for the metric, the predicted slope G^{1}. One panel per entry."""
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
        if key[1] == "metric":
            ax.plot(inv, lead[0] + r["a_predicted"] * inv, "--", color="C3", lw=1,
                    label="$K + G^{1}/n$")
        ax.set_xlabel("$1/n_{\\ell-1}$")
        d = "".join(c for c in key[2] if c.isdigit())
        sym = f"G^{{({key[0]})}}_{{{d}}}" if key[1] == "metric" else \
            f"V^{{({key[0]})}}_{{({d[:2]})({d[2:]})}}"
        ax.set_ylabel(f"${sym}$")
        ax.set_xlim(left=-0.02 / n.min())
        ax.legend(frameon=False)
    fig.suptitle(_title(sweep.measurements[0]).rsplit(", widths", 1)[0] +
                 f", layer {layer}", fontsize=8)
    paths = _save(fig, outdir, stem)
    plt.close(fig)
    return paths
