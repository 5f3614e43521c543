"""Measurements against the 1/n expansion: tables, width fits, plots.

* ``read_measurements(path)``: the measurement-like groups of a file, one ``Measurement``
  each: the root of a measurement file, or every ``/tasks/<i>`` of a collected sweep
  (``kind = "sweep"``). ``measurement_from_group`` reads one such group and is the only
  reader, so anything laid out like a measurement compares the same way.
* ``compare(measurement)`` -> ``ComparisonTable``: per layer and distinct entry the
  measurement with its standard error, the prediction (K + G^{1}/n_{l-1} for the metric,
  the leading V for the vertex, 3 V_aaaa / (n_{l-1} K_aa^2) for the kurtosis) and the
  deviation in standard errors. ``table.rows`` is a numpy structured array.
* ``width_sweep(measurements)`` -> ``WidthSweep``: for runs that differ only in width, a
  weighted least-squares fit X(n) = X_inf + a/n (+ b/n^2 with >= 4 widths when it lowers
  chi^2 by more than 2, Akaike's criterion) per layer and entry, with n = n_{l-1} the
  fan-in of the layer; X_inf is held against the leading prediction and, for the
  metric, a against G^{1}.
* ``plot_layers`` / ``plot_width_sweep``: PNG and PDF figures.

Entry labels: metric ``G[ab]``, vertex ``V[(a1a2)(a3a4)]``, kurtosis ``kurt[a]`` with the
inputs numbered from 1 as in ``mcsim info`` (array indices in the files start at 0).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .report import distinct_entries
from .theory.recursions import Prediction, predict

__all__ = ["Measurement", "measurement_from_group", "measurement_from_result",
           "read_measurements", "prediction_for", "ComparisonTable", "compare", "WidthFit",
           "fit_width", "WidthSweep", "width_sweep", "plot_layers", "plot_width_sweep",
           "STATISTICS"]

STATISTICS = ("metric", "vertex", "kurtosis")
_ROW = [("layer", "i8"), ("fan_in", "i8"), ("statistic", "U8"), ("entry", "U24"),
        ("measured", "f8"), ("stderr", "f8"), ("prediction", "f8"), ("leading", "f8"),
        ("deviation", "f8")]


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Measurement:
    """One measured ensemble: the network it describes and its per-layer estimates.

    ``layers[l][stat] = (mean, stderr)`` with the shapes of ``docs/hdf5-schema.md``;
    ``fan_in[l] = n_{l-1}``; ``params`` holds a sweep task's swept parameters.
    """
    label: str
    activation: dict
    inputs: np.ndarray
    widths: tuple
    C_W: tuple
    C_b: tuple
    networks: int
    layers: dict
    fan_in: dict
    params: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return self.inputs.shape[0]


def _attrs(obj) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in obj.attrs.items()}


def measurement_from_group(group, label: str, params: dict | None = None) -> Measurement:
    """Read one measurement-like h5py group (a file root or a sweep's /tasks/<i>)."""
    attrs = _attrs(group)
    cfg = json.loads(attrs["config_json"])
    net = cfg["network"]
    inputs = np.asarray(group["inputs"][()], dtype=float) if "inputs" in group else \
        np.asarray(cfg["inputs"]["values"], dtype=float)
    layers, fan_in = {}, {}
    for name in sorted(group["layers"], key=int):
        g = group["layers"][name]
        l = int(name)
        stats = {}
        for stat in ("metric", "vertex", "kurtosis", "six_point"):
            if stat in g:
                mean = np.asarray(g[stat][()], dtype=float)
                err = np.asarray(g[stat + "_stderr"][()], dtype=float) if stat + "_stderr" in g \
                    else np.zeros_like(mean)
                stats[stat] = (mean, err)
        layers[l] = stats
        fan_in[l] = int(g.attrs.get("fan_in", net["input_dim"] if l == 1 else net["widths"][l - 2]))
    return Measurement(label=label, activation=dict(net["activation"]), inputs=inputs,
                       widths=tuple(int(n) for n in net["widths"]), C_W=tuple(net["C_W"]),
                       C_b=tuple(net["C_b"]), networks=int(attrs.get("networks", 0)),
                       layers=layers, fan_in=fan_in, params=dict(params or {}))


def measurement_from_result(result, label: str | None = None) -> Measurement:
    """A ``mcsim.Result`` (from ``simulate`` or ``open_result``) as a Measurement."""
    net = result.config.network
    layers, fan_in = {}, {}
    for l in result.layers:
        e = result.layer(l)
        layers[l] = {s: (np.asarray(getattr(e, s).mean), np.asarray(getattr(e, s).stderr))
                     for s in ("metric", "vertex", "kurtosis") if getattr(e, s, None) is not None}
        fan_in[l] = int(e.fan_in)
    return Measurement(label or str(result.path or "result"), dict(net.activation),
                       np.asarray(result.config.inputs, dtype=float), tuple(net.widths),
                       tuple(net.C_W), tuple(net.C_b), int(result.networks), layers, fan_in)


def read_measurements(path) -> list[Measurement]:
    """All measurement-like groups of an mcsim file (measurement: 1; sweep: one per task)."""
    import h5py
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise OSError(f"{path}: cannot open as HDF5 ({exc})") from None
    with f:
        attrs = _attrs(f)
        if attrs.get("format") != "mcsim":
            raise ValueError(f"{path}: not an mcsim file")
        kind = attrs.get("kind")
        if kind == "measurement":
            return [measurement_from_group(f, str(path))]
        if kind == "sweep":
            swept = json.loads(attrs.get("swept", "[]"))
            out = []
            for name in sorted(f.get("tasks", {}), key=int):
                g = f["tasks"][name]
                params = {key: g.attrs[key] for key in swept if key in g.attrs}
                out.append(measurement_from_group(g, f"{path}:/tasks/{name}", params))
            return out
        raise ValueError(f"{path}: kind {kind!r} holds no measurements")


# ------------------------------------------------------------------------------------------
# single ensemble against the prediction
# ------------------------------------------------------------------------------------------
_CACHE: dict = {}


def prediction_for(m: Measurement) -> Prediction:
    """The 1/n prediction for a measurement's network (cached per network)."""
    key = (json.dumps(m.activation, sort_keys=True), m.inputs.tobytes(), m.inputs.shape,
           m.widths, m.C_W, m.C_b)
    if key not in _CACHE:
        _CACHE[key] = predict(m.activation, m.inputs, m.widths, m.C_W, m.C_b, ntk=False)
    return _CACHE[key]


def entry_label(stat: str, idx: tuple) -> str:
    """Text label of an entry, inputs numbered from 1 as in ``mcsim info``."""
    i = tuple(a + 1 for a in idx)
    if stat == "metric":
        return "G[%d%d]" % i
    if stat == "vertex":
        return "V[(%d%d)(%d%d)]" % i
    return "kurt[%d]" % i


def _predicted(p, stat):
    """(prediction, leading) arrays for one layer's statistic."""
    if stat == "metric":
        return p.metric, p.kernel
    if stat == "vertex":
        return p.vertex, p.vertex
    return p.kurtosis, p.kurtosis


@dataclass(eq=False)
class ComparisonTable:
    """Measurement against prediction, one row per layer, statistic and distinct entry.

    ``rows`` fields: layer, fan_in, statistic, entry, measured, stderr, prediction
    (K + G1/n for the metric, leading order otherwise), leading (K for the metric),
    deviation = (measured - prediction) / stderr (nan where stderr = 0: layer 1 is exact).
    """
    label: str
    networks: int
    rows: np.ndarray

    def select(self, statistic=None, layer=None) -> np.ndarray:
        r = self.rows
        if statistic is not None:
            r = r[r["statistic"] == statistic]
        if layer is not None:
            r = r[r["layer"] == layer]
        return r

    def text(self) -> str:
        lines = [f"{self.label}: {self.networks:,} networks",
                 f"{'layer':>5} {'n_l-1':>6}  {'entry':<15} {'measured':>13} {'+-':>9} "
                 f"{'prediction':>13} {'dev/sigma':>9}"]
        for r in self.rows:
            dev = "" if not np.isfinite(r["deviation"]) else "%+9.2f" % r["deviation"]
            lines.append(f"{r['layer']:5d} {r['fan_in']:6d}  {r['entry']:<15} {r['measured']:13.6g} "
                         f"{r['stderr']:9.2g} {r['prediction']:13.6g} {dev:>9}")
        for stat in dict.fromkeys(self.rows["statistic"]):
            r = self.rows[(self.rows["statistic"] == stat) & (self.rows["stderr"] > 0)]
            dev = r["deviation"]
            if not dev.size:
                continue
            note = {"metric": "prediction K + G1/n; O(1/n^2) remainder",
                    "vertex": "leading order; O(1/n) deviations expected",
                    "kurtosis": "leading order 3 V/(n K^2); O(1/n^2) deviations expected"}.get(stat, "")
            lines.append(f"{stat}: {dev.size} entries, chi^2/entry = {np.mean(dev ** 2):.3g}, "
                         f"max |dev| = {np.max(np.abs(dev)):.2f} sigma, "
                         f"{int(np.sum(np.abs(dev) > 3))} beyond 3 sigma ({note})")
        bad = self.rows[np.isinf(self.rows["deviation"])]
        if bad.size:
            lines.append(f"WARNING: {bad.size} exact (zero-error) entries differ from the prediction")
        return "\n".join(lines)

    __str__ = text


def compare(measurement, prediction: Prediction | None = None, statistics=STATISTICS,
            layers=None) -> ComparisonTable:
    """Compare a Measurement (or Result) with its prediction; see ``ComparisonTable``."""
    m = measurement if isinstance(measurement, Measurement) else measurement_from_result(measurement)
    p = prediction or prediction_for(m)
    rows = []
    for l in sorted(m.layers):
        if layers and l not in layers:
            continue
        pl = p.layer(l)
        for stat in statistics:
            if stat not in m.layers[l]:
                continue
            mean, err = m.layers[l][stat]
            pred, lead = _predicted(pl, stat)
            for idx in distinct_entries(stat, m.k):
                x, s, y = float(mean[idx]), float(err[idx]), float(pred[idx])
                if not np.isfinite(x):
                    continue
                if s > 0:
                    dev = (x - y) / s
                else:                                   # exact (layer 1): equal or not
                    dev = 0.0 if np.isclose(x, y, rtol=1e-9, atol=1e-12) else np.copysign(np.inf, x - y)
                rows.append((l, m.fan_in[l], stat, entry_label(stat, idx), x, s, y,
                             float(lead[idx]), dev))
    return ComparisonTable(m.label, m.networks, np.array(rows, dtype=_ROW))


# ------------------------------------------------------------------------------------------
# width sweeps
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WidthFit:
    """Weighted least-squares fit X(n) = X_inf + a/n (+ b/n^2)."""
    order: int                  # 1 or 2
    coef: np.ndarray            # (X_inf, a[, b])
    cov: np.ndarray             # covariance of coef
    chi2: float
    dof: int

    @property
    def errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def __call__(self, n):
        n = np.asarray(n, dtype=float)
        return sum(c * n ** (-i) for i, c in enumerate(self.coef))


def _lsq(n, y, s, order):
    A = np.stack([n ** (-i) for i in range(order + 1)], axis=1)
    w = 1.0 / s ** 2
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    coef = cov @ (A.T @ (w * y))
    chi2 = float(np.sum(w * (y - A @ coef) ** 2))
    return WidthFit(order, coef, cov, chi2, len(n) - order - 1)


def fit_width(n, y, s, order: int | None = None) -> WidthFit:
    """Fit X(n) = X_inf + a/n, or with + b/n^2 when ``order=2``; ``order=None`` chooses 2
    only with >= 4 widths and when the b term lowers chi^2 by more than 2 (Akaike's
    criterion for one extra parameter)."""
    n, y, s = (np.asarray(v, dtype=float) for v in (n, y, s))
    if np.any(s <= 0):
        raise ValueError("fit_width needs positive standard errors")
    if len(n) < 2 or len(set(n.tolist())) < 2:
        raise ValueError("fit_width needs at least two different widths")
    if order is not None:
        return _lsq(n, y, s, order)
    lin = _lsq(n, y, s, 1)
    if len(set(n.tolist())) >= 4:
        quad = _lsq(n, y, s, 2)
        if lin.chi2 - quad.chi2 > 2.0:
            return quad
    return lin


_SWEEP_ROW = [("layer", "i8"), ("statistic", "U8"), ("entry", "U24"), ("order", "i8"),
              ("X_inf", "f8"), ("X_inf_err", "f8"), ("leading", "f8"), ("X_inf_dev", "f8"),
              ("a", "f8"), ("a_err", "f8"), ("a_predicted", "f8"), ("a_dev", "f8"),
              ("b", "f8"), ("b_err", "f8"), ("chi2", "f8"), ("dof", "i8")]


@dataclass(eq=False)
class WidthSweep:
    """Width fits for a set of runs that differ only in width.

    ``rows``: one per layer, statistic and entry: the fit order, X_inf +- err against the
    leading prediction (``X_inf_dev`` in errors), a +- err against G^{1} for the metric
    (``a_predicted``; nan for the vertex, whose 1/n coefficient is not predicted), b, chi2,
    dof. ``points[(layer, statistic, entry)] = (n, X, stderr, leading)`` per width, and
    ``fits`` the WidthFit objects under the same keys.
    """
    measurements: list
    rows: np.ndarray
    points: dict
    fits: dict

    def text(self) -> str:
        ns = sorted({int(n) for v in self.points.values() for n in v[0]})
        lines = [f"width sweep over {len(self.measurements)} runs, n_(l-1) in {ns}: "
                 "fit X(n) = X_inf + a/n (+ b/n^2)"]
        lines.append(f"{'layer':>5}  {'entry':<15} {'X_inf':>12} {'+-':>8} {'leading':>12} "
                     f"{'dev':>6} {'a':>11} {'+-':>8} {'G1 pred':>10} {'dev':>6} {'chi2/dof':>9}")
        for r in self.rows:
            a_pred = "" if not np.isfinite(r["a_predicted"]) else "%10.5g" % r["a_predicted"]
            a_dev = "" if not np.isfinite(r["a_dev"]) else "%+6.2f" % r["a_dev"]
            lines.append(f"{r['layer']:5d}  {r['entry']:<15} {r['X_inf']:12.6g} {r['X_inf_err']:8.2g} "
                         f"{r['leading']:12.6g} {r['X_inf_dev']:+6.2f} {r['a']:11.4g} "
                         f"{r['a_err']:8.2g} {a_pred:>10} {a_dev:>6} "
                         f"{r['chi2']:5.1f}/{r['dof']:<3d}" + ("  (+b/n^2)" if r["order"] == 2 else ""))
        mkeys = [k for k in self.points if k[1] == "metric"]
        if mkeys:
            lines.append("metric: n (G - K) per width, which tends to the predicted G1 as n grows")
            row_of = {(r["layer"], r["statistic"], r["entry"]): r for r in self.rows}
            for key in mkeys:
                n, x, s, lead = self.points[key]
                cells = ", ".join(f"n={int(a)}: {a * (d - k0):+.4g} +- {a * e:.2g}"
                                  for a, d, e, k0 in zip(n, x, s, lead))
                lines.append(f"  layer {key[0]} {key[2]}: {cells}  (G1 = "
                             f"{row_of[key]['a_predicted']:+.4g})")
        vkeys = [k for k in self.points if k[1] == "vertex"]
        if vkeys:
            lines.append("vertex: deviation from leading order, and n times it (constant if it "
                         "shrinks like 1/n)")
            for key in vkeys:
                n, x, s, lead = self.points[key]
                cells = ", ".join(f"n={int(a)}: {d:+.3g} +- {e:.2g} (n*dev {a * d:+.3g})"
                                  for a, d, e in zip(n, x - lead, s))
                lines.append(f"  layer {key[0]} {key[2]}: {cells}")
        return "\n".join(lines)

    __str__ = text


def _same_network(ms):
    ref = ms[0]
    for m in ms[1:]:
        for attr in ("activation", "C_W", "C_b"):
            if getattr(m, attr) != getattr(ref, attr):
                raise ValueError(f"runs differ in {attr}: {ref.label} vs {m.label}")
        if m.inputs.shape != ref.inputs.shape or not np.array_equal(m.inputs, ref.inputs):
            raise ValueError(f"runs differ in their inputs: {ref.label} vs {m.label}")
        if len(m.widths) != len(ref.widths):
            raise ValueError(f"runs differ in depth: {ref.label} vs {m.label}")
        r0 = np.array(ref.widths[:-1], float) / ref.widths[0]
        r1 = np.array(m.widths[:-1], float) / m.widths[0]
        if not np.allclose(r0, r1):
            raise ValueError(f"runs differ in the shape of the hidden widths (not only in "
                             f"their scale): {ref.widths} vs {m.widths}")


def width_sweep(measurements, statistics=("metric", "vertex"), layers=None,
                order: int | None = None) -> WidthSweep:
    """Fit every distinct entry against 1/n_{l-1} across runs that differ only in width.

    ``order``: 1 (X_inf + a/n), 2 (+ b/n^2) or None (2 only when >= 4 widths and the chi^2
    drop supports it). Deep networks near criticality have large 1/n^2 terms (the expansion
    parameter is depth/width); a linear fit then biases X_inf and a (watch chi^2, or compare
    the "n (G - K)" columns of ``text()``, which tend to G1 as n grows)."""
    ms = [m if isinstance(m, Measurement) else measurement_from_result(m) for m in measurements]
    if len(ms) < 2:
        raise ValueError("a width sweep needs at least two runs")
    _same_network(ms)
    preds = [prediction_for(m) for m in ms]
    rows, points, fits = [], {}, {}
    common = sorted(set.intersection(*(set(m.layers) for m in ms)))
    for l in common:
        if l == 1 or (layers and l not in layers):
            continue
        for stat in statistics:
            if not all(stat in m.layers[l] for m in ms):
                continue
            for idx in distinct_entries(stat, ms[0].k):
                n = np.array([m.fan_in[l] for m in ms], dtype=float)
                x = np.array([m.layers[l][stat][0][idx] for m in ms])
                s = np.array([m.layers[l][stat][1][idx] for m in ms])
                lead = np.array([_predicted(p.layer(l), stat)[1][idx] for p in preds])
                if np.any(s <= 0) or not np.all(np.isfinite(x)) or len(set(n)) < 2:
                    continue
                label = entry_label(stat, idx)
                srt = np.argsort(n)
                n, x, s, lead = n[srt], x[srt], s[srt], lead[srt]
                fit = fit_width(n, x, s, order=order if order is None else min(order, len(n) - 1))
                err = fit.errors
                # G1 is normalised by the fan-in of the same run, so a = G1 (fixed width ratios)
                a_pred = float(preds[0].layer(l).correction[idx]) if stat == "metric" else np.nan
                b, b_err = (fit.coef[2], err[2]) if fit.order == 2 else (np.nan, np.nan)
                rows.append((l, stat, label, fit.order, fit.coef[0], err[0], lead[0],
                             (fit.coef[0] - lead[0]) / err[0], fit.coef[1], err[1], a_pred,
                             (fit.coef[1] - a_pred) / err[1], b, b_err, fit.chi2, fit.dof))
                points[(l, stat, label)] = (n, x, s, lead)
                fits[(l, stat, label)] = fit
    return WidthSweep(ms, np.array(rows, dtype=_SWEEP_ROW), points, fits)


# ------------------------------------------------------------------------------------------
# plots
# ------------------------------------------------------------------------------------------
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
