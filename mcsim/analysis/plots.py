"""Figures for `mcsim compare --plot` (matplotlib, PNG and PDF), driven by the statistics
registry:

* ``plot_layers``: every predicted statistic against layer, the measurement with error bars
  against the prediction and its leading order (told apart by line style and legend), and
  under it a residual panel: the deviation in standard errors against layer.
* ``plot_width_sweep``: entries against 1/n with the fitted line, the leading prediction at
  1/n = 0 and the predicted slope.
* ``plot_training_sweep``: a trained ensemble's statistics at one recorded step against 1/n
  with the fitted line and the infinite-width (kernel) prediction at 1/n = 0.
* ``plot_kurtosis_depth``: the book's classic figure, the kurtosis against depth for several
  widths, measured against the leading prediction, and n times it, which collapses the widths
  onto one line at leading order.
* ``run_name`` / ``figure_stem``: readable file names (``layers-tanh2-16``,
  ``width-sweep-layer6``, ``kurtosis-depth``).

Error bars are one standard error. Where they are smaller than the markers the figure says
so in its caption, so that a missing bar is never mistaken for a missing error.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..stats.statistics import get_statistic
from .compare import (Measurement, WidthSweep, measurement_from_result, predicted_statistics,
                      prediction_for)

__all__ = ["plot_layers", "plot_width_sweep", "plot_kurtosis_depth", "plot_training_sweep", "run_name",
           "figure_stem", "layer_entries"]

MARKER_SIZE = 3.5          # points


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 9, "axes.labelsize": 9, "legend.fontsize": 7,
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


# -- names ----------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(text)).strip("-") or "run"


def run_name(m: Measurement) -> str:
    """A short name for one run in file names: its swept parameters (``width16-seed2``) for a
    sweep task, else its file name without ``.h5`` (``tanh2-16``)."""
    if m.params:
        return _slug("-".join(f"{k.split('.')[-1]}{v}" for k, v in m.params.items()))
    label = m.label.split(":/", 1)[0]
    return _slug(Path(label).name.removesuffix(".h5"))


def figure_stem(kind: str, *parts, taken: set | None = None) -> str:
    """``kind-part1-part2`` (made unique against ``taken``, which it updates)."""
    stem = "-".join([kind, *(_slug(p) for p in parts if p not in (None, ""))])
    if taken is not None:
        base, i = stem, 2
        while stem in taken:
            stem, i = f"{base}-{i}", i + 1
        taken.add(stem)
    return stem


# -- entries --------------------------------------------------------------------------------
def layer_entries(stat, k: int, max_entries: int = 4, entries=None) -> list[tuple]:
    """The entries to draw: ``entries`` (labels or index tuples) if given, else up to
    ``max_entries`` alternating between diagonal (``G[11]``, ``V[(11)(11)]``) and
    off-diagonal ones (``G[12]``, ``V[(11)(12)]``), so several inputs show their
    correlations too."""
    distinct = [tuple(e) for e in stat.distinct(k)]
    if entries is not None:
        chosen = []
        for e in entries:
            if isinstance(e, str):
                chosen += [d for d in distinct if stat.label(d) == e]
            elif tuple(e) in distinct:
                chosen.append(tuple(e))
        return chosen
    diag = [e for e in distinct if len(set(e)) <= 1]
    off = [e for e in distinct if len(set(e)) > 1]
    out = []
    for i in range(max(len(diag), len(off))):
        out += [x for x in (diag[i] if i < len(diag) else None, off[i] if i < len(off) else None) if x]
    return out[:max_entries]


# -- error bars vs markers ----------------------------------------------------------------------
def _hidden_error_bars(ax, errors) -> bool:
    """Whether some error bar (half-length ``errors`` in data units) is shorter than the
    marker radius at the axes' final scale."""
    errors = np.asarray([e for e in errors if np.isfinite(e) and e > 0])
    if not errors.size:
        return False
    fig = ax.figure
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    if ax.get_yscale() != "linear" or hi <= lo:
        return False
    pixels_per_unit = ax.get_window_extent().height / (hi - lo)
    marker_radius = MARKER_SIZE / 2 * fig.dpi / 72
    return bool(np.any(errors * pixels_per_unit < marker_radius))


def _caption(fig, hidden: bool, extra: str = "") -> None:
    text = "Error bars: one standard error (delete-one-bin jackknife)"
    if hidden:
        text += "; where no bar is visible it is smaller than the marker"
    fig.text(0.5, -0.01, text + (". " + extra if extra else "."), ha="center", va="top", fontsize=7)


# -- measurement against prediction, per layer ---------------------------------------------
def plot_layers(measurement, outdir, stem="layers", prediction=None, max_entries=4,
                entries=None) -> list[str]:
    """Every measured statistic that has a prediction, against layer (one column each).

    Top row: the measurement (markers, one standard error bars), the prediction (solid line)
    and, where it differs, its leading order (dashed; for the metric K + G1/n against K),
    entries normalised as the registry says (e.g. V / sqrt(K K K K)). Bottom row: the
    residual (measured - prediction) / stderr (filled markers) and, where it differs,
    against the leading order (open markers), with the +-2 band shaded. ``entries``: labels
    (e.g. ``["G[12]", "V[(12)(12)]"]``) to draw instead of the default choice
    (``layer_entries``). Writes ``<stem>.png`` and ``<stem>.pdf``; returns their paths."""
    plt = _plt()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
    m = measurement if isinstance(measurement, Measurement) else measurement_from_result(measurement)
    p = prediction or prediction_for(m)
    names = [n for n in predicted_statistics() if any(n in m.layers[l] for l in m.layers)]
    allp = np.arange(1, p.depth + 1)
    fig, axes = plt.subplots(2, len(names), figsize=(3.7 * len(names), 4.6), squeeze=False,
                             gridspec_kw={"height_ratios": [2.2, 1]}, sharex="col",
                             constrained_layout=True)
    grey = dict(color="0.3")
    hidden = False
    for col, name in enumerate(names):
        ax, rax = axes[0, col], axes[1, col]
        stat = get_statistic(name)
        pred_label, lead_label = stat.prediction_labels
        ls = [l for l in sorted(m.layers) if name in m.layers[l]]
        handles, errors, any_lead = [], [], False
        for i, idx in enumerate(layer_entries(stat, m.k, max_entries, entries)):
            c = f"C{i}"

            def norm(l):
                return stat.plot_scale(p.layer(l).kernel, idx) if stat.plot_scale else 1.0
            parts = [stat.prediction(p.layer(l)) for l in allp]
            pred = np.array([q[0][idx] / norm(l) for q, l in zip(parts, allp)])
            lead = np.array([q[1][idx] / norm(l) for q, l in zip(parts, allp)])
            y = np.array([m.layers[l][name][0][idx] / norm(l) for l in ls])
            e = np.array([m.layers[l][name][1][idx] / norm(l) for l in ls])
            ax.plot(allp, pred, "-", color=c, lw=1.2)
            differs = not np.allclose(pred, lead, rtol=1e-12, atol=0)
            if differs:
                any_lead = True
                ax.plot(allp, lead, "--", color=c, lw=0.9, alpha=0.8)
            ax.errorbar(ls, y, e, fmt="o", ms=MARKER_SIZE, color=c, capsize=2, elinewidth=1)
            errors += list(e)
            # residuals in standard errors (layer 1 is exact: no residual)
            sl = [j for j, l in enumerate(ls) if m.layers[l][name][1][idx] > 0]
            lsr = np.array([ls[j] for j in sl])
            ps = {l: k for k, l in enumerate(allp)}
            err = np.array([m.layers[ls[j]][name][1][idx] for j in sl])
            raw = np.array([m.layers[ls[j]][name][0][idx] for j in sl])
            if len(sl):
                dev = (raw - np.array([parts[ps[l]][0][idx] for l in lsr])) / err
                rax.plot(lsr, dev, "o-", color=c, ms=MARKER_SIZE, lw=0.7)
                if differs:
                    devl = (raw - np.array([parts[ps[l]][1][idx] for l in lsr])) / err
                    rax.plot(lsr, devl, "o--", color=c, ms=MARKER_SIZE, lw=0.6, mfc="none")
            handles.append(Line2D([], [], color=c, marker="o", ms=MARKER_SIZE, ls="", label=stat.label(idx)))
        handles += [Line2D([], [], ls="", marker="o", ms=MARKER_SIZE, label="measured $\\pm$ 1 s.e.", **grey),
                    Line2D([], [], ls="-", label=pred_label, **grey)]
        if any_lead:
            handles.append(Line2D([], [], ls="--", label=lead_label, **grey))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name + (f"\n/ {stat.plot_scale_label}" if stat.plot_scale else ""),
                      fontsize=8 if stat.plot_scale else None)
        ax.set_title(stat.prediction_note, fontsize=7)
        ax.legend(handles=handles, frameon=False, ncol=2)
        hidden = _hidden_error_bars(ax, errors) or hidden
        rax.axhspan(-2, 2, color="0.92", zorder=0)
        rax.axhline(0, color="0.5", lw=0.7)
        rax.set_xlabel("layer $\\ell$")
        rax.set_ylabel("(meas. $-$ pred.) / s.e.")
        rh = [Line2D([], [], ls="-", marker="o", ms=MARKER_SIZE, label="vs " + pred_label, **grey)]
        if any_lead:
            rh.append(Line2D([], [], ls="--", marker="o", ms=MARKER_SIZE, mfc="none",
                             label="vs " + lead_label, **grey))
        rax.legend(handles=rh, frameon=False, fontsize=6.5)
    fig.suptitle(_title(m), fontsize=8)
    _caption(fig, hidden, "Lower panels: deviation in standard errors, shaded band $\\pm 2$")
    paths = _save(fig, outdir, stem)
    plt.close(fig)
    return paths


# -- width sweeps ---------------------------------------------------------------------------
#: the entries of the NTK figure of a width sweep: the mean and each fluctuation's first entry
NTK_SWEEP_ENTRIES = ("ntk[12]", "A[(11)(11)]", "B[(11)(11)]", "D[(11)(11)]", "F[(11)(11)]")


def plot_width_sweep(sweep: WidthSweep, outdir, stem="width_sweep", layer=None,
                     entries=None) -> list[str]:
    """Each fitted statistic against 1/n with the fitted line, the leading prediction at
    1/n = 0 and, where it is predicted, the slope X1 (G^{1} for the metric). One panel per
    entry (default: G[11], G[12], V[(11)(11)], V[(12)(12)] where present)."""
    plt = _plt()
    keys = list(sweep.points)
    layer = layer or max(k[0] for k in keys)
    keys = [k for k in keys if k[0] == layer and (entries is None or k[2] in entries)]
    if entries is None:          # diagonal entries and the first off-diagonal ones
        pref = ["G[11]", "G[12]", "V[(11)(11)]", "V[(12)(12)]"]
        keys = [k for k in keys if k[2] in pref] or keys[:4]
    fig, axes = plt.subplots(1, len(keys), figsize=(2.7 * len(keys), 2.7), constrained_layout=True,
                             squeeze=False)
    row_of = {(r["layer"], r["statistic"], r["entry"]): r for r in sweep.rows}
    hidden = False
    for ax, key in zip(axes[0], keys):
        n, x, s, lead = sweep.points[key]
        fit = sweep.fits[key]
        inv = np.linspace(0, 1.1 / n.min(), 100)
        ax.plot(inv, sum(c * inv ** i for i, c in enumerate(fit.coef)), "-", color="C0", lw=1.2,
                label="fit $X_\\infty + a/n$" + (" $+ b/n^2$" if fit.order == 2 else ""))
        ax.errorbar(1 / n, x, s, fmt="o", ms=MARKER_SIZE, color="C0", capsize=2,
                    label="measured $\\pm$ 1 s.e.")
        r = row_of[key]
        ax.plot([0], [lead[0]], "s", color="C3", ms=5, label="leading order")
        if np.isfinite(r["a_predicted"]):
            ax.plot(inv, lead[0] + r["a_predicted"] * inv, "--", color="C3", lw=1,
                    label="leading + $X_1/n$")
        ax.set_xlabel("$1/n_{\\ell-1}$")
        ax.set_ylabel(f"{key[2]}, layer {key[0]}")
        ax.set_xlim(left=-0.02 / n.min())
        ax.legend(frameon=False)
        hidden = _hidden_error_bars(ax, s) or hidden
    fig.suptitle(_title(sweep.measurements[0]).rsplit(", widths", 1)[0] +
                 f", layer {layer}", fontsize=8)
    _caption(fig, hidden)
    paths = _save(fig, outdir, stem)
    plt.close(fig)
    return paths


def plot_kurtosis_depth(measurements, outdir, stem="kurtosis-depth", entry: int = 0,
                        statistic: str = "kurtosis") -> list[str]:
    """The kurtosis of one preactivation against depth for several widths (the book's
    classic figure): measured with error bars, against its leading prediction
    3 V/(n K^2) (dashed, one per width); right, n_{l-1} times it, where the widths collapse
    onto one curve at leading order and their spread shows the 1/n^2 corrections.
    ``measurements``: runs of one network at several widths; ``entry``: the input a (0-based)
    of kurt[a+1]. Writes ``<stem>.png`` / ``.pdf``."""
    plt = _plt()
    ms = [m if isinstance(m, Measurement) else measurement_from_result(m) for m in measurements]
    ms = [m for m in ms if any(statistic in m.layers[l] for l in m.layers)]
    if not ms:
        raise ValueError(f"no run has {statistic!r}")
    ms.sort(key=lambda m: m.widths[0])
    stat = get_statistic(statistic)
    idx = (entry,)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(7.4, 3.0), constrained_layout=True)
    errors_a, errors_b = [], []
    cmap = plt.get_cmap("viridis")
    for i, m in enumerate(ms):
        c = cmap(0.1 + 0.8 * i / max(1, len(ms) - 1))
        p = prediction_for(m)
        ls = [l for l in sorted(m.layers) if statistic in m.layers[l] and l > 1]
        lp = np.arange(2, p.depth + 1)
        y = np.array([m.layers[l][statistic][0][idx] for l in ls])
        e = np.array([m.layers[l][statistic][1][idx] for l in ls])
        n = np.array([m.fan_in[l] for l in ls], dtype=float)
        pred = np.array([stat.prediction(p.layer(l))[0][idx] for l in lp])
        npred = np.array([p.layer(l).fan_in for l in lp], dtype=float)
        width = m.widths[0]
        ax.errorbar(ls, y, e, fmt="o", ms=MARKER_SIZE, color=c, capsize=2, label=f"n = {width}")
        ax.plot(lp, pred, "--", color=c, lw=1)
        bx.errorbar(ls, n * y, n * e, fmt="o", ms=MARKER_SIZE, color=c, capsize=2, label=f"n = {width}")
        bx.plot(lp, npred * pred, "--", color=c, lw=1)
        errors_a += list(e)
        errors_b += list(n * e)
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
    extra = [Line2D([], [], color="0.3", ls="--", label="leading order $3V/(nK^2)$")]
    for a in (ax, bx):
        a.set_xlabel("layer $\\ell$")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        handles, _ = a.get_legend_handles_labels()
        a.legend(handles=handles + extra, frameon=False)
    ax.set_ylabel(f"excess kurtosis {stat.label(idx)}")
    bx.set_ylabel(f"$n_{{\\ell-1}}$ $\\times$ {stat.label(idx)}")
    ax.set_title("kurtosis grows with depth, shrinks with width", fontsize=7)
    bx.set_title("times the width: one curve at leading order", fontsize=7)
    hidden = _hidden_error_bars(ax, errors_a) or _hidden_error_bars(bx, errors_b)
    fig.suptitle(_title(ms[0]).rsplit(", widths", 1)[0], fontsize=8)
    _caption(fig, hidden)
    paths = _save(fig, outdir, stem)
    plt.close(fig)
    return paths


def plot_training_sweep(sweep, outdir, stem="training-width-sweep", step=None, keys=None) -> list[str]:
    """A ``TrainingWidthSweep`` (``analysis.training_compare``) at one recorded step (default:
    the last): each statistic against 1/n_(L-1) with the fitted line and the infinite-width
    prediction at 1/n = 0. Panels (default): the training and test loss, the first entry of
    the mean output and of network minus linearisation, where fitted."""
    plt = _plt()
    step = int(max(k[0] for k in sweep.points)) if step is None else int(step)
    if keys is None:
        keys = []
        for stat in ("train_loss", "test_loss", "output_mean", "deviation_mean"):
            found = [k for k in sweep.points if k[0] == step and k[1] == stat]
            keys.extend(found[:1])
    if not keys:
        raise ValueError(f"no fitted /training entries at step {step}")
    fig, axes = plt.subplots(1, len(keys), figsize=(2.7 * len(keys), 2.7), constrained_layout=True,
                             squeeze=False)
    hidden = False
    for ax, key in zip(axes[0], keys):
        n, x, s = sweep.points[key]
        fit = sweep.fits[key]
        pred = sweep._prediction_of(key)
        inv = np.linspace(0, 1.1 / n.min(), 100)
        ax.plot(inv, sum(c * inv ** i for i, c in enumerate(fit.coef)), "-", color="C0", lw=1.2,
                label="fit $X_\\infty + a/n$" + (" $+ b/n^2$" if fit.order == 2 else ""))
        ax.errorbar(1 / n, x, s, fmt="o", ms=MARKER_SIZE, color="C0", capsize=2, label="measured $\\pm$ 1 s.e.")
        ax.plot([0], [pred], "s", color="C3", ms=5, label="infinite width (kernel)")
        ax.set_xlabel("$1/n_{L-1}$")
        ax.set_ylabel(f"{key[1]} {key[2]}".strip() + f", t = {step}")
        ax.set_xlim(left=-0.02 / n.min())
        ax.legend(frameon=False)
        hidden = _hidden_error_bars(ax, s) or hidden
    fig.suptitle(_title(sweep.measurements[0]).rsplit(", widths", 1)[0] + ", trained", fontsize=8)
    _caption(fig, hidden)
    paths = _save(fig, outdir, stem)
    plt.close(fig)
    return paths
