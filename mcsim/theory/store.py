"""Predictions as HDF5 files (kind = "prediction") and as text.

A prediction file has the header of a measurement (docs/hdf5-schema.md: format, version,
kind, config_toml/config_json, software versions, /config, /inputs) and per layer
``/layers/<l>`` the datasets

    metric             (k, k)        K + G^{1}/n_{l-1}
    metric_leading     (k, k)        K
    metric_correction  (k, k)        G^{1} (normalised with n_{l-1})
    vertex             (k, k, k, k)  V, leading order
    kurtosis           (k,)          3 V_aaaa / (n_{l-1} K_aa^2)
    z_kurtosis         (k,)          with non-Gaussian weight or bias laws: the kurtosis of z,
    z_four_point       (k, k, k, k)  and its same-unit four-point function (theory.weight_laws)
    ntk                (k, k)        Theta, mean NTK at infinite width (when computed)

without ``_stderr`` datasets, so ``mcsim.open_result`` reads it like a measurement.
"""
from __future__ import annotations

import numpy as np

from ..stats.statistics import get_statistic
from .recursions import Prediction

__all__ = ["write_prediction", "format_prediction"]


def _layer_stats(p) -> dict:
    stats = {"metric": p.metric, "metric_leading": p.kernel, "metric_correction": p.correction,
             "vertex": p.vertex, "kurtosis": p.kurtosis}
    if p.ntk is not None and np.all(np.isfinite(p.ntk)):
        stats["ntk"] = p.ntk
    if p.unit_cumulant is not None:             # non-Gaussian laws (weight_laws.apply_laws)
        stats["z_kurtosis"] = p.z_kurtosis
        stats["z_four_point"] = p.z_four_point
    return stats


def describe_prediction(name: str) -> tuple[str, str]:
    """(description, units) of a prediction's dataset: the registry's description of the
    statistic, said to be a prediction and to which order (``prediction_note``)."""
    from ..stats.statistics import describe
    return describe(name, prediction=True)


def write_prediction(path, prediction: Prediction, cfg) -> None:
    """Write ``prediction`` (for the configuration ``cfg``) to ``path`` atomically."""
    from ..storage.hdf5 import atomic_write, write_header, write_layers

    def fill(f):
        write_header(f, cfg, "prediction", {"networks": 0, "complete": True,
                                            "theory": "1/n expansion: K, V leading, G1"})
        write_layers(f, {p.layer: _layer_stats(p) for p in prediction.layers}, cfg,
                     with_stderr=False, describe_as=describe_prediction)
    atomic_write(path, fill)


def format_prediction(prediction: Prediction, layers=None, show_all: bool = False,
                      limit: int = 10) -> str:
    """Per layer: K, G^{1}, K + G^{1}/n, distinct V entries (and Theta) as text; inputs are
    numbered from 1 as in ``mcsim info``."""
    P = prediction
    k = P.inputs.shape[0]
    act = P.activation["name"] + "".join(f", {a}={b}" for a, b in P.activation.items() if a != "name")
    cw = P.C_W[0] if len(set(P.C_W)) == 1 else list(P.C_W)
    cb = P.C_b[0] if len(set(P.C_b)) == 1 else list(P.C_b)
    lines = [f"network     activation={act}, n_0={P.inputs.shape[1]}, widths={list(P.widths)}, "
             f"C_W={cw}, C_b={cb}, k={k} inputs",
             "metric      G^(l) = K^(l) + G1^(l) / n_(l-1) + O(1/n^2);  vertex V^(l) at leading "
             "order, V = n_(l-1) Cov(Ghat)"]
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
            for q in shown:
                a1, a2, a3, a4 = q
                norm = np.sqrt(np.prod(np.diag(p.kernel)[list(q)]))
                lines.append(f"  V[({a1 + 1}{a2 + 1})({a3 + 1}{a4 + 1})]{'':<1} {p.vertex[q]:15.8g}"
                             f"   V/K^2 = {p.vertex[q] / norm:.8g}")
            if len(shown) < len(quads):
                lines.append(f"  ... {len(quads) - len(shown)} more vertex entries (--all)")
        if p.unit_cumulant is not None:
            d = np.arange(k)
            lines.append("  kurtosis of z   " + "  ".join(
                f"zkurt[{a + 1}] = {p.z_kurtosis[a]:.8g} (weight/bias-law term "
                f"{p.unit_cumulant[a, a, a, a] / p.kernel[a, a] ** 2:.6g}, vertex term "
                f"{p.kurtosis[a]:.6g})" for a in d[:limit]))
    return "\n".join(lines)
