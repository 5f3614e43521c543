"""The full prediction for a network: the core recursions plus what the statistics ask for.

    predict(activation, inputs, widths, C_W, C_b, *, ntk_moments=False, dntk_moments=False,
            **kw) -> recursions.Prediction
    predict_config(cfg, **kw) -> recursions.Prediction

``predict`` runs ``recursions.predict`` (kernel, vertex, 1/n corrections, six-point vertex,
infinite-width NTK; keyword arguments as there) and, when asked, attaches per layer
``LayerPrediction.ntk_moments`` (``ntk.predict_ntk``: NTK mean to 1/n, A, B, D, F) and
``LayerPrediction.dntk_moments`` (``dntk.predict_dntk``: the dNTK's P and Q).
``predict_config`` does it for a loaded configuration, with its learning rates, the NTK and
dNTK parts when its statistics include one (``ntk*``, ``dntk*``), and its weight and bias laws
(``weight_laws.apply_laws``).

This module composes the others, so none of them imports another one back (the core
recursion knows nothing about the NTK or the laws).
"""
from __future__ import annotations

from dataclasses import replace

from .dntk import predict_dntk
from .ntk import predict_ntk
from .recursions import Prediction
from .recursions import predict as _core_predict
from .weight_laws import apply_laws

__all__ = ["predict", "predict_config"]


def predict(activation, inputs, widths, C_W, C_b, *, ntk_moments: bool = False,
            dntk_moments: bool = False, **kw) -> Prediction:
    """``recursions.predict`` plus the NTK fluctuations (``ntk_moments``) and the dNTK's P, Q
    (``dntk_moments``) per layer; see the module doc."""
    pred = _core_predict(activation, inputs, widths, C_W, C_b, **kw)
    if not (ntk_moments or dntk_moments):
        return pred
    args = (activation, pred.inputs, pred.widths, pred.C_W, pred.C_b,
            kw.get("lambda_b", 1.0), kw.get("lambda_W", 1.0))
    layers = pred.layers
    if ntk_moments:
        N = predict_ntk(*args, q=kw.get("q"))
        layers = [replace(p, ntk_moments=N.layer(p.layer)) for p in layers]
    if dntk_moments:
        D = predict_dntk(*args, q=kw.get("q"))
        layers = [replace(p, dntk_moments=D.layer(p.layer)) for p in layers]
    return replace(pred, layers=layers)


def predict_config(cfg, **kw) -> Prediction:
    """``predict`` for a loaded ``mcsim.config.Config``: its learning rates, the NTK
    fluctuations when the config computes an NTK statistic and the dNTK's P, Q when it computes
    a dNTK statistic (unless ``kw`` says otherwise), and its weight and bias laws
    (``weight_laws.apply_laws``)."""
    net, ens = cfg.network, cfg.ensemble
    stats = tuple(cfg.output.statistics)
    kw.setdefault("lambda_b", getattr(net, "lambda_b", None) or 1.0)
    kw.setdefault("lambda_W", getattr(net, "lambda_W", None) or 1.0)
    kw.setdefault("ntk_moments", any(s.startswith("ntk") for s in stats))
    kw.setdefault("dntk_moments", any(s.startswith("dntk") for s in stats))
    pred = predict(net.activation, cfg.inputs, net.widths, net.C_W, net.C_b, **kw)
    return apply_laws(pred, ens.weight_law, ens.bias_law, q=kw.get("q"))
