"""Predictions as HDF5 files (kind = "prediction") and as text.

A prediction file has the header of a measurement (docs/hdf5-schema.md: format, version,
kind, config_toml/config_json, software versions, /config, /inputs) and per layer
``/layers/<l>`` the datasets

    metric             (k, k)        K + G^{1}/n_{l-1}
    metric_leading     (k, k)        K
    metric_correction  (k, k)        G^{1} (normalised with n_{l-1})
    vertex             (k, k, k, k)  V + V1/n_{l-1} (V, leading order, without V1)
    vertex_leading     (k, k, k, k)  V, leading order
    vertex_correction  (k, k, k, k)  V1 (normalised with n_{l-1})
    six_point          (k,)*6        S, the six-point vertex at leading order
    kurtosis           (k,)          3 V_aaaa / (n_{l-1} K_aa^2) + its 1/n^2 terms
    kurtosis_leading   (k,)          3 V_aaaa / (n_{l-1} K_aa^2)
    kurtosis_correction (k,)         X1 with kurtosis = kurtosis_leading + X1 / n_{l-1}
    ntk                (k, k)        H + H1/n_{l-1}, the mean NTK to order 1/n (with the NTK
                                     statistics; else H, at infinite width, when computed)
    ntk_leading, ntk_correction      H and H1 (with the NTK statistics)
    ntk_A, ntk_B, ntk_D, ntk_F (k,)*4  the NTK fluctuations at leading order (with the NTK
                                     statistics; learning rates from the config)
    dntk_P, dntk_Q     (k,)*4        the dNTK-preactivation correlations P, Q at leading order
                                     (with the dNTK statistics; theory.dntk)

(``vertex_correction``, ``six_point`` and the kurtosis parts only when the higher orders
were computed: at most ``vertex_nlo.MAX_INPUTS`` distinct inputs; the root attribute
``theory_notes`` says what was left out.)
    z_kurtosis         (k,)          with non-Gaussian weight or bias laws: the kurtosis of z,
    z_four_point       (k, k, k, k)  and its same-unit four-point function (theory.weight_laws)

without ``_stderr`` datasets, so ``mcsim.open_result`` reads it like a measurement.
"""
from __future__ import annotations

import numpy as np

from ..stats.statistics import get_statistic
from .recursions import Prediction

__all__ = ["write_prediction", "format_prediction"]


def _layer_stats(p) -> dict:
    stats = {"metric": p.metric, "metric_leading": p.kernel, "metric_correction": p.correction,
             "vertex": p.vertex_nlo, "vertex_leading": p.vertex, "kurtosis": p.kurtosis_nlo}
    if p.vertex_correction is not None:
        stats.update(vertex_correction=p.vertex_correction, kurtosis_leading=p.kurtosis,
                     kurtosis_correction=p.kurtosis_correction)
    if p.six_point is not None:
        stats["six_point"] = p.six_point
    m = p.ntk_moments
    if m is not None:
        stats.update(ntk=m.ntk, ntk_leading=m.ntk_leading, ntk_correction=m.ntk_correction,
                     ntk_A=m.A, ntk_B=m.B, ntk_D=m.D, ntk_F=m.F)
    elif p.ntk is not None and np.all(np.isfinite(p.ntk)):
        stats["ntk"] = p.ntk
    d = getattr(p, "dntk_moments", None)
    if d is not None:
        stats.update(dntk_P=d.P, dntk_Q=d.Q)
    if p.unit_cumulant is not None:             # non-Gaussian laws (weight_laws.apply_laws)
        stats["z_kurtosis"] = p.z_kurtosis
        stats["z_four_point"] = p.z_four_point
    return stats


def describe_prediction(name: str) -> tuple[str, str]:
    """(description, units) of a prediction's dataset: the registry's description of the
    statistic, said to be a prediction and to which order (``prediction_note``)."""
    from ..stats.statistics import describe
    desc, units = describe(name, prediction=True)
    return desc, units


def write_prediction(path, prediction: Prediction, cfg, training=None) -> None:
    """Write ``prediction`` (for the configuration ``cfg``) to ``path`` atomically; with
    ``training`` (a ``theory.training.TrainingPrediction``) also the group /training."""
    from ..storage.hdf5 import atomic_write, write_header, write_layers

    def fill(f):
        extra = {"networks": 0, "complete": True,
                 "theory": "1/n expansion: K, G1, V, V1, six-point S (leading)"}
        if prediction.notes:
            extra["theory_notes"] = "; ".join(prediction.notes)
        write_header(f, cfg, "prediction", extra)
        write_layers(f, {p.layer: _layer_stats(p) for p in prediction.layers}, cfg,
                     with_stderr=False, describe_as=describe_prediction)
        if training is not None:
            from .training import write_training_prediction
            write_training_prediction(f, cfg, training)
    atomic_write(path, fill)


def format_prediction(prediction: Prediction, layers=None, show_all: bool = False,
                      limit: int = 10) -> str:
    """Per layer: K, G^{1}, K + G^{1}/n, distinct V, V1, V + V1/n and six-point entries (and
    Theta) as text; inputs are numbered from 1 as in ``mcsim info``."""
    P = prediction
    k = P.inputs.shape[0]
    act = P.activation["name"] + "".join(f", {a}={b}" for a, b in P.activation.items() if a != "name")
    cw = P.C_W[0] if len(set(P.C_W)) == 1 else list(P.C_W)
    cb = P.C_b[0] if len(set(P.C_b)) == 1 else list(P.C_b)
    lines = [f"network     activation={act}, n_0={P.inputs.shape[1]}, widths={list(P.widths)}, "
             f"C_W={cw}, C_b={cb}, k={k} inputs",
             "metric      G^(l) = K^(l) + G1^(l) / n_(l-1) + O(1/n^2);  vertex n_(l-1) Cov(Ghat) "
             "= V^(l) + V1^(l) / n_(l-1) + O(1/n^2);  six-point S6 = n_(l-1)^2 kappa_3(Ghat) at "
             "leading order"] + [f"note        {n}" for n in P.notes]
    from .weight_laws import describe_laws
    if describe_laws(P):
        lines.append(describe_laws(P))
    pairs = get_statistic("metric").distinct(k)
    quads = get_statistic("vertex").distinct(k)
    for p in P.layers:
        if layers and p.layer not in layers:
            continue
        lines.append(f"layer {p.layer}  (n_{p.layer - 1} = {p.fan_in}, n_{p.layer} = {p.width})")
        lines.append(f"  {'entry':<12} {'K':>15} {'G1':>15} {'K + G1/n':>15}" +
                     (f" {'Theta':>15}" if p.ntk is not None else ""))
        shown = pairs if show_all else pairs[:limit]
        for a, b in shown:
            row = (f"  G[{a + 1}{b + 1}]{'':<7} {p.kernel[a, b]:15.8g} {p.correction[a, b]:15.8g} "
                   f"{p.metric[a, b]:15.8g}")
            if p.ntk is not None:
                row += f" {p.ntk[a, b]:15.8g}"
            lines.append(row)
        if len(shown) < len(pairs):
            lines.append(f"  ... {len(pairs) - len(shown)} more metric entries (--all)")
        if p.layer > 1:
            shown = quads if show_all else quads[:limit]
            nlo = p.vertex_correction is not None
            lines.append(f"  {'entry':<12} {'V':>15}" + (f" {'V1':>15} {'V + V1/n':>15}" if nlo else "")
                         + "   V/K^2")
            for q in shown:
                a1, a2, a3, a4 = q
                norm = np.sqrt(np.prod(np.diag(p.kernel)[list(q)]))
                extra = (f" {p.vertex_correction[q]:15.8g} {p.vertex_nlo[q]:15.8g}" if nlo else "")
                lines.append(f"  V[({a1 + 1}{a2 + 1})({a3 + 1}{a4 + 1})]{'':<1} {p.vertex[q]:15.8g}"
                             f"{extra}   {p.vertex[q] / norm:.8g}")
            if len(shown) < len(quads):
                lines.append(f"  ... {len(quads) - len(shown)} more vertex entries (--all)")
            if p.six_point is not None:
                sixes = get_statistic("six_point").distinct(k)
                shown = sixes if show_all else sixes[:limit]
                for e in shown:
                    lines.append(f"  {get_statistic('six_point').label(e):<19} "
                                 f"{p.six_point[e]:15.8g}")
                if len(shown) < len(sixes):
                    lines.append(f"  ... {len(sixes) - len(shown)} more six-point entries (--all)")
        if p.unit_cumulant is not None:
            d = np.arange(k)
            lines.append("  kurtosis of z   " + "  ".join(
                f"zkurt[{a + 1}] = {p.z_kurtosis[a]:.8g} (weight/bias-law term "
                f"{p.unit_cumulant[a, a, a, a] / p.kernel[a, a] ** 2:.6g}, vertex term "
                f"{p.kurtosis[a]:.6g})" for a in d[:limit]))
    return "\n".join(lines)
