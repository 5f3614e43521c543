"""Measurements against the 1/n expansion: tables, width fits, plots.

* ``read_measurements(path)``: the measurement-like groups of a file, one ``Measurement``
  each: the root of a measurement file, or every ``/tasks/<i>`` of a collected sweep
  (``kind = "sweep"``). ``measurement_from_group`` reads one such group and is the only
  reader, so anything laid out like a measurement compares the same way.
* ``compare(measurement)`` -> ``ComparisonTable``: per layer and distinct entry the
  measurement with its standard error, the prediction (every statistic with a
  ``prediction`` in the statistics registry: K + G^{1}/n_{l-1} for the metric,
  V + V1/n_{l-1} for the vertex, the leading six-point vertex, the kurtosis to order 1/n^2,
  ...) and the deviation in standard errors. ``table.rows`` is a numpy structured array.
* ``width_sweep(measurements)`` -> ``WidthSweep``: for runs that differ only in width, a
  weighted least-squares fit X(n) = X_inf + a/n (+ b/n^2 with >= 4 widths when it lowers
  chi^2 by more than 2, Akaike's criterion) per layer and entry, with n = n_{l-1} the
  fan-in of the layer; X_inf is held against the leading prediction and a against the
  predicted 1/n coefficient where there is one (G^{1} for the metric, V1 for the vertex).
* ``plot_layers`` / ``plot_width_sweep``: PNG and PDF figures.

Entry labels come from the registry (metric ``G[ab]``, vertex ``V[(a1a2)(a3a4)]``,
kurtosis ``kurt[a]``), inputs numbered from 1 as in ``mcsim info`` (array indices in the
files start at 0).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..storage.reader import (check_header, check_run_attrs, open_file, read_config, read_layers,
                              read_training_result)
from ..stats.statistics import STATISTICS as _REGISTRY, entry_label, get_statistic
from ..laws import GAUSSIAN, parse_law
from ..theory.full import predict
from ..theory.recursions import Prediction
from ..theory.weight_laws import apply_laws

__all__ = ["Measurement", "measurement_from_group", "measurement_from_result",
           "read_measurements", "prediction_for", "ComparisonTable", "compare", "WidthFit",
           "fit_width", "WidthSweep", "width_sweep", "predicted_statistics", "entry_label"]


def predicted_statistics() -> tuple[str, ...]:
    """The registered statistics that have a prediction, in registry order."""
    return tuple(n for n, s in _REGISTRY.items()
                 if s.prediction is not None)


_NAME = f"U{max(len(n) for n in _REGISTRY) + 8}"   # never truncates a registered name
_ROW = [("layer", "i8"), ("fan_in", "i8"), ("statistic", _NAME), ("entry", "U32"),
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
    lambda_b: tuple = ()        # NTK learning rates, one per layer (default 1.0)
    lambda_W: tuple = ()
    weights: object = GAUSSIAN      # mcsim.laws.Law of the weights and of the biases
    biases: object = GAUSSIAN
    config: object = None           # the run's mcsim.config.Config
    training: object = None         # [training] runs: TrainingResult (analysis.training_compare)

    @property
    def k(self) -> int:
        return self.inputs.shape[0]


def measurement_from_group(group, label: str, params: dict | None = None) -> Measurement:
    """Read one measurement-like h5py group (a file root or a sweep's /tasks/<i>): every
    registered statistic it holds."""
    attrs = check_run_attrs(check_header(group, label), label)
    config = read_config(attrs, label)          # the one reader: validated, opens no paths
    cfg = config.to_dict()
    net = cfg["network"]
    inputs = np.asarray(config.inputs, dtype=float)
    layers, fan_in = {}, {}
    training = read_training_result(group["training"]) if "training" in group else None
    for l, (lattrs, data) in read_layers(group["layers"], config.k, label).items():
        layers[l] = {stat: (np.asarray(mean, dtype=float),
                            np.asarray(err, dtype=float) if err is not None else np.zeros_like(mean, dtype=float))
                     for stat, (mean, err) in data.items() if stat in _REGISTRY}
        fan_in[l] = int(lattrs.get("fan_in", net["input_dim"] if l == 1 else net["widths"][l - 2]))
    return Measurement(label=label, activation=dict(net["activation"]), inputs=inputs,
                       widths=tuple(int(n) for n in net["widths"]), C_W=tuple(net["C_W"]),
                       C_b=tuple(net["C_b"]), networks=int(attrs.get("networks", 0)),
                       layers=layers, fan_in=fan_in, params=dict(params or {}),
                       lambda_b=tuple(net.get("lambda_b", ())), lambda_W=tuple(net.get("lambda_W", ())),
                       weights=parse_law(cfg["ensemble"].get("weights", "gaussian")),
                       biases=parse_law(cfg["ensemble"].get("biases", "gaussian")),
                       config=config, training=training)


def measurement_from_result(result, label: str | None = None) -> Measurement:
    """A ``mcsim.Result`` (from ``simulate`` or ``open_result``) as a Measurement."""
    net = result.config.network
    layers, fan_in = {}, {}
    for l in result.layers:
        e = result.layer(l)
        layers[l] = {s: (np.asarray(est.mean), np.asarray(est.stderr))
                     for s, est in e.stats.items() if s in _REGISTRY}
        fan_in[l] = int(e.fan_in)
    ens = result.config.ensemble
    return Measurement(label or str(result.path or "result"), dict(net.activation),
                       np.asarray(result.config.inputs, dtype=float), tuple(net.widths),
                       tuple(net.C_W), tuple(net.C_b), int(result.networks), layers, fan_in,
                       lambda_b=tuple(getattr(net, "lambda_b", ())),
                       lambda_W=tuple(getattr(net, "lambda_W", ())),
                       weights=ens.weight_law, biases=ens.bias_law, config=result.config,
                       training=getattr(result, "training", None) or None)


def read_measurements(path) -> list[Measurement]:
    """All measurement-like groups of an mcsim file (measurement: 1; sweep: one per task)."""
    path = Path(path)
    with open_file(path) as (f, attrs):
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
    ntk = any(stat.startswith("ntk") for layer in m.layers.values() for stat in layer)
    dntk = any(stat.startswith("dntk") for layer in m.layers.values() for stat in layer)
    lb, lw = m.lambda_b or 1.0, m.lambda_W or 1.0
    key = (json.dumps(m.activation, sort_keys=True), m.inputs.tobytes(), m.inputs.shape,
           m.widths, m.C_W, m.C_b, ntk, dntk, (lb, lw) if ntk or dntk else None, m.weights,
           m.biases)
    if key not in _CACHE:
        # the NTK fluctuations (A, B, D, F) and the dNTK (P, Q) only for a measurement that
        # holds such statistics
        _CACHE[key] = apply_laws(
            predict(m.activation, m.inputs, m.widths, m.C_W, m.C_b, ntk=False, lambda_b=lb,
                    lambda_W=lw, ntk_moments=ntk, dntk_moments=dntk), m.weights, m.biases)
    return _CACHE[key]


def _predicted(p, stat):
    """(prediction, leading, correction or None) arrays for one layer's statistic."""
    return get_statistic(stat).prediction(p)


@dataclass(eq=False)
class ComparisonTable:
    """Measurement against prediction, one row per layer, statistic and distinct entry.

    ``rows`` fields: layer, fan_in, statistic, entry, measured, stderr, prediction
    (K + G1/n for the metric, V + V1/n for the vertex; see the registry's
    ``prediction_note``), leading (K for the metric, V for the vertex),
    deviation = (measured - prediction) / stderr (nan where stderr = 0: layer 1 is exact).
    """
    label: str
    networks: int
    rows: np.ndarray
    notes: tuple = ()           # what the prediction left out (``Prediction.notes``)

    def select(self, statistic=None, layer=None) -> np.ndarray:
        r = self.rows
        if statistic is not None:
            r = r[r["statistic"] == statistic]
        if layer is not None:
            r = r[r["layer"] == layer]
        return r

    def to_pandas(self):
        """The rows as a ``pandas.DataFrame`` (one row per layer, statistic and entry)."""
        from ..stats.frames import records_to_pandas
        return records_to_pandas(self.rows, label=self.label, networks=self.networks)

    def text(self) -> str:
        lines = [f"{self.label}: {self.networks:,} networks",
                 f"{'layer':>5} {'n_l-1':>6}  {'entry':<15} {'measured':>13} {'+-':>9} "
                 f"{'prediction':>13} {'dev/sigma':>9}"]
        for r in self.rows:
            dev = "" if not np.isfinite(r["deviation"]) else "%+9.2f" % r["deviation"]
            measured = "undefined" if np.isnan(r["measured"]) else "%13.6g" % r["measured"]
            err = "undefined" if np.isnan(r["stderr"]) else "%9.2g" % r["stderr"]
            lines.append(f"{r['layer']:5d} {r['fan_in']:6d}  {r['entry']:<15} {measured:>13} "
                         f"{err:>9} {r['prediction']:13.6g} {dev:>9}")
        for stat in dict.fromkeys(self.rows["statistic"]):
            r = self.rows[(self.rows["statistic"] == stat) & (self.rows["stderr"] > 0)
                          & np.isfinite(self.rows["prediction"])]
            dev = r["deviation"]
            if not dev.size:
                continue
            note = get_statistic(stat).prediction_note
            lines.append(f"{stat}: {dev.size} entries, chi^2/entry = {np.mean(dev ** 2):.3g}, "
                         f"max |dev| = {np.max(np.abs(dev)):.2f} sigma, "
                         f"{int(np.sum(np.abs(dev) > 3))} beyond 3 sigma ({note})")
        lines.extend(f"note: {n}" for n in self.notes)
        undefined = self.rows[np.isnan(self.rows["measured"]) | np.isnan(self.rows["stderr"])]
        if undefined.size:
            from ..stats.finite import undefined_reason
            for stat in dict.fromkeys(undefined["statistic"]):
                u = undefined[undefined["statistic"] == stat]
                lines.append(f"{stat}: {u.size} entries undefined ("
                             f"{undefined_reason(stat, self.networks, 2**62, 2, stderr=False)}; "
                             "`mcsim info` says why per entry)")
        bad = self.rows[np.isinf(self.rows["deviation"])]
        if bad.size:
            lines.append(f"WARNING: {bad.size} exact (zero-error) entries differ from the prediction")
        return "\n".join(lines)

    __str__ = text


def compare(measurement, prediction: Prediction | None = None, statistics=None,
            layers=None) -> ComparisonTable:
    """Compare a Measurement (or Result) with its prediction; see ``ComparisonTable``.
    statistics: names (default: every measured statistic that has a prediction)."""
    m = measurement if isinstance(measurement, Measurement) else measurement_from_result(measurement)
    p = prediction or prediction_for(m)
    statistics = predicted_statistics() if statistics is None else tuple(statistics)
    rows = []
    for l in sorted(m.layers):
        if layers and l not in layers:
            continue
        pl = p.layer(l)
        for stat in statistics:
            if stat not in m.layers[l] or get_statistic(stat).prediction is None:
                continue
            mean, err = m.layers[l][stat]
            pred, lead, _ = _predicted(pl, stat)
            for idx in get_statistic(stat).distinct(m.k):
                x, s, y = float(mean[idx]), float(err[idx]), float(pred[idx])
                if not np.isfinite(y):                  # not predicted (see the notes)
                    continue
                if np.isnan(x) or np.isnan(s):          # undefined: shown, never dropped
                    dev = np.nan
                elif s > 0:
                    dev = (x - y) / s
                else:                                   # exact (layer 1): equal or not
                    dev = 0.0 if np.isclose(x, y, rtol=1e-9, atol=1e-12) else np.copysign(np.inf, x - y)
                rows.append((l, m.fan_in[l], stat, entry_label(stat, idx), x, s, y,
                             float(lead[idx]), dev))
    return ComparisonTable(m.label, m.networks, np.array(rows, dtype=_ROW),
                           tuple(getattr(p, "notes", ())))


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


_SWEEP_ROW = [("layer", "i8"), ("statistic", _NAME), ("entry", "U32"), ("order", "i8"),
              ("X_inf", "f8"), ("X_inf_err", "f8"), ("leading", "f8"), ("X_inf_dev", "f8"),
              ("a", "f8"), ("a_err", "f8"), ("a_predicted", "f8"), ("a_dev", "f8"),
              ("b", "f8"), ("b_err", "f8"), ("chi2", "f8"), ("dof", "i8")]


@dataclass(eq=False)
class WidthSweep:
    """Width fits for a set of runs that differ only in width.

    ``rows``: one per layer, statistic and entry: the fit order, X_inf +- err against the
    leading prediction (``X_inf_dev`` in errors), a +- err against the predicted 1/n
    coefficient (``a_predicted``: G^{1} for the metric; nan where none is predicted), b,
    chi2, dof. ``points[(layer, statistic, entry)] = (n, X, stderr, leading)`` per width, and
    ``fits`` the WidthFit objects under the same keys.
    """
    measurements: list
    rows: np.ndarray
    points: dict
    fits: dict

    def to_pandas(self):
        """The fit rows as a ``pandas.DataFrame`` (one row per layer, statistic and entry)."""
        from ..stats.frames import records_to_pandas
        return records_to_pandas(self.rows, runs=[m.label for m in self.measurements])

    def text(self) -> str:
        ns = sorted({int(n) for v in self.points.values() for n in v[0]})
        lines = [f"width sweep over {len(self.measurements)} runs, n_(l-1) in {ns}: "
                 "fit X(n) = X_inf + a/n (+ b/n^2)"]
        lines.append(f"{'layer':>5}  {'entry':<15} {'X_inf':>12} {'+-':>8} {'leading':>12} "
                     f"{'dev':>6} {'a':>11} {'+-':>8} {'X1 pred':>10} {'dev':>6} {'chi2/dof':>9}")
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
            lines.append("vertex: deviation from V + V1/n, and n^2 times it (bounded if the "
                         "remainder is O(1/n^2))")
            row_of = {(r["layer"], r["statistic"], r["entry"]): r for r in self.rows}
            for key in vkeys:
                n, x, s, lead = self.points[key]
                v1 = row_of[key]["a_predicted"]
                d = x - lead - (np.nan_to_num(v1) / n)
                cells = ", ".join(f"n={int(a)}: {dd:+.3g} +- {e:.2g} (n^2*dev {a * a * dd:+.3g})"
                                  for a, dd, e in zip(n, d, s))
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
            if get_statistic(stat).prediction is None:
                continue
            for idx in get_statistic(stat).distinct(ms[0].k):
                n = np.array([m.fan_in[l] for m in ms], dtype=float)
                x = np.array([m.layers[l][stat][0][idx] for m in ms])
                s = np.array([m.layers[l][stat][1][idx] for m in ms])
                lead = np.array([_predicted(p.layer(l), stat)[1][idx] for p in preds])
                corr = _predicted(preds[0].layer(l), stat)[2]
                if np.any(s <= 0) or not np.all(np.isfinite(x)) or len(set(n)) < 2:
                    continue
                label = entry_label(stat, idx)
                srt = np.argsort(n)
                n, x, s, lead = n[srt], x[srt], s[srt], lead[srt]
                fit = fit_width(n, x, s, order=order if order is None else min(order, len(n) - 1))
                err = fit.errors
                # X1 is normalised by the fan-in of the same run, so a = X1 (fixed width ratios)
                a_pred = float(corr[idx]) if corr is not None else np.nan
                b, b_err = (fit.coef[2], err[2]) if fit.order == 2 else (np.nan, np.nan)
                rows.append((l, stat, label, fit.order, fit.coef[0], err[0], lead[0],
                             (fit.coef[0] - lead[0]) / err[0], fit.coef[1], err[1], a_pred,
                             (fit.coef[1] - a_pred) / err[1], b, b_err, fit.chi2, fit.dof))
                points[(l, stat, label)] = (n, x, s, lead)
                fits[(l, stat, label)] = fit
    return WidthSweep(ms, np.array(rows, dtype=_SWEEP_ROW), points, fits)
