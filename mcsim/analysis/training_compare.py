"""Trained ensembles against the infinite-width prediction (book ch. 10-11).

* ``compare_training(measurement)`` -> ``TrainingComparison``: per recorded step, statistic
  and entry of ``/training`` the measurement with its standard error, the infinite-width
  prediction (``mcsim.theory.training.predict_training``: kernel regression with the output
  layer's K and mean NTK) and the deviation in standard errors. At finite width the trained
  ensemble differs from it at O(1/n), so a large ensemble resolves the deviation: that is the
  finite-width effect, and a width sweep measures it.
* ``training_width_sweep(measurements)`` -> ``TrainingWidthSweep``: for runs that differ only
  in width (and share the ``[training]`` section), a weighted least-squares fit
  X(n) = X_inf + a/n (+ b/n^2, chosen as in ``compare.fit_width``) per step, statistic and
  entry, with n = n_{L-1} the fan-in of the output layer; X_inf is held against the
  infinite-width prediction and a, the 1/n coefficient, is reported with its standard error.

Compared statistics (``COMPARED``) and what each is held against at infinite width:
``output_mean``, ``linearised_mean`` -> E z(t); ``deviation_mean`` (network minus its own
linearisation) -> 0; ``output_covariance``, ``linearised_covariance`` -> Cov z(t);
``train_loss``, ``linearised_train_loss``, ``test_loss``, ``linearised_test_loss`` -> the
mean losses. ``DEFAULT`` leaves out the linearised twins.

Entry labels: ``z(x_1)`` (one output unit) or ``z_2(x_1)`` (unit 2) for the means,
``C(x_1,x_2)`` for the covariance (distinct a <= b), empty for the losses; inputs numbered
from 1 as everywhere (the array indices in the files start at 0).

``rows`` of both are numpy structured arrays; ``to_pandas()`` gives DataFrames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .compare import Measurement, _same_network, fit_width, measurement_from_result

__all__ = ["COMPARED", "DEFAULT", "training_prediction_for", "TrainingComparison", "compare_training",
           "TrainingWidthSweep", "training_width_sweep", "training_entries"]

#: compared statistic -> the TrainingPrediction attribute it is held against (None: 0)
COMPARED = {
    "output_mean": "output_mean", "linearised_mean": "output_mean", "deviation_mean": None,
    "output_covariance": "output_covariance", "linearised_covariance": "output_covariance",
    "train_loss": "train_loss", "linearised_train_loss": "train_loss",
    "test_loss": "test_loss", "linearised_test_loss": "test_loss",
}
DEFAULT = ("output_mean", "output_covariance", "train_loss", "test_loss", "deviation_mean")

_ROW = [("step", "i8"), ("statistic", "U24"), ("entry", "U24"), ("measured", "f8"), ("stderr", "f8"),
        ("prediction", "f8"), ("deviation", "f8")]
_SWEEP_ROW = [("step", "i8"), ("statistic", "U24"), ("entry", "U24"), ("order", "i8"), ("X_inf", "f8"),
              ("X_inf_err", "f8"), ("prediction", "f8"), ("X_inf_dev", "f8"), ("a", "f8"), ("a_err", "f8"),
              ("b", "f8"), ("b_err", "f8"), ("chi2", "f8"), ("dof", "i8")]


def training_entries(name: str, shape: tuple) -> list[tuple[tuple, str]]:
    """(index within one recorded step, label) of a /training statistic whose per-step shape
    is ``shape``: (k, n_L) means, (k, k) covariances (a <= b), () losses."""
    if name.endswith("_covariance"):
        k = shape[0]
        return [((a, b), f"C(x_{a + 1},x_{b + 1})") for a in range(k) for b in range(a, k)]
    if len(shape) == 2:
        k, n_out = shape
        return [((a, i), f"z(x_{a + 1})" if n_out == 1 else f"z_{i + 1}(x_{a + 1})")
                for a in range(k) for i in range(n_out)]
    return [((), "")]


def _measurement(m) -> Measurement:
    m = m if isinstance(m, Measurement) else measurement_from_result(m)
    if not m.training or m.config is None or getattr(m.config, "training", None) is None:
        raise ValueError(f"{m.label}: no /training group (the run has no [training] section) or no "
                         "trained network in it")
    return m


def training_prediction_for(m):
    """The infinite-width prediction (``TrainingPrediction``) for a measurement's
    [training] section; ValueError where there is none (e.g. eta above the stability limit)."""
    from ..theory.training import predict_training
    return predict_training(_measurement(m).config)


def _predicted(pred, name: str, like: np.ndarray) -> np.ndarray | None:
    attr = COMPARED[name]
    if attr is None:
        return np.zeros_like(like)
    value = getattr(pred, attr)
    return None if value is None else np.asarray(value, dtype=float)


def _statistics(m: Measurement, statistics) -> list[str]:
    names = DEFAULT if statistics is None else tuple(statistics)
    bad = [n for n in names if n not in COMPARED]
    if bad:
        raise ValueError(f"not a compared training statistic: {bad[0]!r}; allowed: {', '.join(COMPARED)}")
    return [n for n in names if n in m.training]


def _diverged_note(m: Measurement) -> str | None:
    tr = m.training
    if not tr.diverged:
        return None
    total = tr.networks + tr.diverged
    return (f"{m.label}: {tr.diverged:,} of {total:,} networks ({tr.diverged / total:.2%}) diverged and are "
            "not averaged; the statistics are those of the stable networks")


# ------------------------------------------------------------------------------------------
# one run
# ------------------------------------------------------------------------------------------
@dataclass(eq=False)
class TrainingComparison:
    """A trained ensemble against the infinite-width prediction, one row per recorded step,
    statistic and entry: step, statistic, entry, measured, stderr, prediction,
    deviation = (measured - prediction) / stderr; 0 where the two agree to rounding (relative
    1e-9, absolute 1e-12: a standard error below rounding says nothing), +-inf where they differ
    and stderr = 0."""
    label: str
    networks: int
    diverged: int
    rows: np.ndarray
    notes: tuple = ()

    def select(self, statistic=None, step=None) -> np.ndarray:
        r = self.rows
        if statistic is not None:
            r = r[r["statistic"] == statistic]
        if step is not None:
            r = r[r["step"] == step]
        return r

    def to_pandas(self):
        """The rows as a ``pandas.DataFrame``."""
        from ..stats.frames import records_to_pandas
        return records_to_pandas(self.rows, label=self.label, networks=self.networks, diverged=self.diverged)

    def text(self) -> str:
        total = self.networks + self.diverged
        lines = [f"{self.label}: training, {self.networks:,} networks averaged"
                 + (f", {self.diverged:,} diverged ({self.diverged / total:.2%})" if self.diverged else "")
                 + "; against the infinite-width prediction (kernel regression with K and the mean NTK)",
                 f"{'step':>6}  {'statistic':<22} {'entry':<13} {'measured':>13} {'+-':>9} "
                 f"{'prediction':>13} {'dev/sigma':>9}"]
        for r in self.rows:
            dev = "" if np.isnan(r["deviation"]) else "%+9.2f" % r["deviation"]
            lines.append(f"{r['step']:6d}  {r['statistic']:<22} {r['entry']:<13} {r['measured']:13.6g} "
                         f"{r['stderr']:9.2g} {r['prediction']:13.6g} {dev:>9}")
        for stat in dict.fromkeys(self.rows["statistic"]):
            r = self.rows[(self.rows["statistic"] == stat) & np.isfinite(self.rows["deviation"])]
            if r.size:
                dev = r["deviation"]
                lines.append(f"{stat}: {dev.size} entries, chi^2/entry = {np.mean(dev ** 2):.3g}, "
                             f"max |dev| = {np.max(np.abs(dev)):.2f} sigma, "
                             f"{int(np.sum(np.abs(dev) > 3))} beyond 3 sigma")
        lines.append("(the prediction is the infinite-width limit: a finite width deviates at O(1/n); "
                     "a width sweep, `mcsim compare A.h5 B.h5 ...`, fits X_inf + a/n)")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    __str__ = text


def compare_training(measurement, prediction=None, statistics=None) -> TrainingComparison:
    """Compare the /training statistics of a Measurement (or Result) with the infinite-width
    prediction (default: ``training_prediction_for``); see ``TrainingComparison``.
    statistics: names from ``COMPARED`` (default ``DEFAULT``; those the run holds)."""
    m = _measurement(measurement)
    pred = prediction if prediction is not None else training_prediction_for(m)
    tr = m.training
    steps = np.asarray(tr.steps)
    rows = []
    for name in _statistics(m, statistics):
        est = tr[name]
        y = _predicted(pred, name, est.mean)
        if y is None:
            continue
        for r, t in enumerate(steps.tolist()):
            for idx, label in training_entries(name, est.mean.shape[1:]):
                x, s, p = float(est.mean[(r, *idx)]), float(est.stderr[(r, *idx)]), float(y[(r, *idx)])
                if np.isnan(x) or np.isnan(s):
                    dev = np.nan
                elif np.isclose(x, p, rtol=1e-9, atol=1e-12):
                    dev = 0.0       # equal to rounding (e.g. deviation_mean of a linear network)
                elif s > 0:
                    dev = (x - p) / s
                else:
                    dev = np.copysign(np.inf, x - p)
                rows.append((t, name, label, x, s, p, dev))
    notes = tuple(n for n in (_diverged_note(m),) if n)
    return TrainingComparison(m.label, int(tr.networks), int(tr.diverged), np.array(rows, dtype=_ROW), notes)


# ------------------------------------------------------------------------------------------
# width sweeps
# ------------------------------------------------------------------------------------------
@dataclass(eq=False)
class TrainingWidthSweep:
    """Width fits of the /training statistics, one row per step, statistic and entry: the fit
    order, X_inf +- err against the infinite-width prediction (``X_inf_dev`` in errors), the
    1/n coefficient a +- err, b (nan for a linear fit), chi2, dof, with n = n_{L-1}.
    ``points[(step, statistic, entry)] = (n, X, stderr)`` per width; ``fits`` the WidthFit
    objects under the same keys; ``prediction`` the TrainingPrediction."""
    measurements: list
    rows: np.ndarray
    points: dict
    fits: dict
    prediction: object
    notes: tuple = ()

    def select(self, statistic=None, step=None) -> np.ndarray:
        r = self.rows
        if statistic is not None:
            r = r[r["statistic"] == statistic]
        if step is not None:
            r = r[r["step"] == step]
        return r

    def to_pandas(self):
        """The fit rows as a ``pandas.DataFrame``."""
        from ..stats.frames import records_to_pandas
        return records_to_pandas(self.rows, runs=[m.label for m in self.measurements])

    def text(self) -> str:
        ns = sorted({int(n) for v in self.points.values() for n in v[0]})
        lines = [f"training: width sweep over {len(self.measurements)} runs, n_(L-1) in {ns}: fit "
                 "X(n) = X_inf + a/n (+ b/n^2), X_inf against the infinite-width prediction",
                 f"{'step':>6}  {'statistic':<22} {'entry':<13} {'X_inf':>12} {'+-':>8} {'prediction':>12} "
                 f"{'dev':>6} {'a':>11} {'+-':>8} {'chi2/dof':>9}"]
        for r in self.rows:
            lines.append(f"{r['step']:6d}  {r['statistic']:<22} {r['entry']:<13} {r['X_inf']:12.6g} "
                         f"{r['X_inf_err']:8.2g} {r['prediction']:12.6g} {r['X_inf_dev']:+6.2f} {r['a']:11.4g} "
                         f"{r['a_err']:8.2g} {r['chi2']:5.1f}/{r['dof']:<3d}"
                         + ("  (+b/n^2)" if r["order"] == 2 else ""))
        for stat in dict.fromkeys(self.rows["statistic"]):
            dev = self.rows[self.rows["statistic"] == stat]["X_inf_dev"]
            dev = dev[np.isfinite(dev)]
            if dev.size:
                lines.append(f"{stat}: X_inf against the prediction over {dev.size} entries: chi^2/entry = "
                             f"{np.mean(dev ** 2):.3g}, max |dev| = {np.max(np.abs(dev)):.2f} sigma")
        if len(self.rows):
            last = int(self.rows["step"].max())
            lines.append(f"n (X - prediction) per width at step {last} (tends to a as n grows):")
            for key, (n, x, s) in self.points.items():
                if key[0] != last:
                    continue
                p = self._prediction_of(key)
                cells = ", ".join(f"n={int(a)}: {a * (v - p):+.4g} +- {a * e:.2g}" for a, v, e in zip(n, x, s))
                lines.append(f"  {key[1]} {key[2]}: {cells}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def _prediction_of(self, key) -> float:
        r = self.rows[(self.rows["step"] == key[0]) & (self.rows["statistic"] == key[1])
                      & (self.rows["entry"] == key[2])]
        return float(r["prediction"][0])

    __str__ = text


def _same_training(ms) -> None:
    ref = ms[0].config.training
    for m in ms[1:]:
        tc = m.config.training
        if (tc.to_dict() != ref.to_dict() or tuple(tc.lambda_b) != tuple(ref.lambda_b)
                or tuple(tc.lambda_W) != tuple(ref.lambda_W)):
            raise ValueError(f"runs differ in their [training] section: {ms[0].label} vs {m.label}")


def training_width_sweep(measurements, statistics=None, order: int | None = None,
                         prediction=None) -> TrainingWidthSweep:
    """Fit every step, statistic and entry of /training against 1/n_{L-1} across runs that
    differ only in width; see ``TrainingWidthSweep``. ``order`` as in ``compare.width_sweep``;
    ``prediction``: a TrainingPrediction to hold X_inf against (default: the runs' own)."""
    ms = [_measurement(m) for m in measurements]
    if len(ms) < 2:
        raise ValueError("a width sweep needs at least two runs")
    _same_network(ms)
    _same_training(ms)
    if len(ms[0].widths) < 2:
        raise ValueError("a width sweep of a trained ensemble needs a hidden layer (depth >= 2)")
    pred = prediction if prediction is not None else training_prediction_for(ms[0])
    n_all = np.array([m.widths[-2] for m in ms], dtype=float)
    if len(set(n_all.tolist())) < 2:
        raise ValueError("a width sweep needs at least two different widths")
    srt = np.argsort(n_all, kind="stable")
    ms, n_all = [ms[i] for i in srt], n_all[srt]
    names = [s for s in _statistics(ms[0], statistics) if all(s in m.training for m in ms)]
    steps = np.asarray(ms[0].training.steps)
    rows, points, fits = [], {}, {}
    for name in names:
        means = np.stack([np.asarray(m.training[name].mean, dtype=float) for m in ms])
        errs = np.stack([np.asarray(m.training[name].stderr, dtype=float) for m in ms])
        y = _predicted(pred, name, means[0])
        if y is None:
            continue
        for r, t in enumerate(steps.tolist()):
            for idx, label in training_entries(name, means.shape[2:]):
                x, s = means[(slice(None), r, *idx)], errs[(slice(None), r, *idx)]
                if np.any(~(s > 0)) or not np.all(np.isfinite(x)):
                    continue
                fit = fit_width(n_all, x, s, order=order if order is None else min(order, len(n_all) - 1))
                err = fit.errors
                p = float(y[(r, *idx)])
                b, b_err = (fit.coef[2], err[2]) if fit.order == 2 else (np.nan, np.nan)
                rows.append((t, name, label, fit.order, fit.coef[0], err[0], p, (fit.coef[0] - p) / err[0],
                             fit.coef[1], err[1], b, b_err, fit.chi2, fit.dof))
                points[(t, name, label)] = (n_all, x, s)
                fits[(t, name, label)] = fit
    notes = tuple(n for n in (_diverged_note(m) for m in ms) if n)
    return TrainingWidthSweep(ms, np.array(rows, dtype=_SWEEP_ROW), points, fits, pred, notes)
