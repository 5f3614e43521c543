"""markov and dense agree in distribution, through the full estimator pipeline: the metric,
four-point and six-point vertices and kurtosis of the two samplers (independent seeds) differ
by less than 5 combined jackknife standard errors, for relu / tanh / linear, k = 1 and 3,
unequal widths and per-layer C_W, C_b."""
from __future__ import annotations

import numpy as np
import pytest

import mcsim
from mcsim.config import config_from_dict

INPUTS = np.random.default_rng(7).standard_normal((3, 4)).tolist()
CASES = {
    "relu-k3": dict(widths=[6, 4, 8, 5], C_W=[2.0, 1.5, 2.5, 1.0], C_b=[0.1, 0.0, 0.3, 0.2], act="relu", k=3),
    "relu-k1": dict(widths=[4, 7, 5], C_W=2.0, C_b=0.0, act="relu", k=1),
    "tanh-k3": dict(widths=[5, 8, 4, 3], C_W=[1.5, 1.0, 2.0, 1.0], C_b=[0.2, 0.1, 0.0, 0.0], act="tanh", k=3),
    "tanh-k1": dict(widths=[4, 6, 2], C_W=[2.0, 1.0, 1.5], C_b=[0.0, 0.5, 0.1], act="tanh", k=1),
    "linear-k3": dict(widths=[7, 4, 6], C_W=[1.0, 1.2, 0.8], C_b=[0.0, 0.1, 0.2], act="linear", k=3),
}


def run(case, sampler, seed):
    c = CASES[case]
    cfg = config_from_dict({
        "network": {"input_dim": 4, "widths": c["widths"], "activation": c["act"],
                    "C_W": c["C_W"], "C_b": c["C_b"]},
        "inputs": {"values": INPUTS[:c["k"]]},
        "ensemble": {"networks": 16384, "seed": seed, "sampler": sampler, "block_size": 256,
                     "jackknife_bins": 32},
        "output": {"statistics": ["metric", "vertex", "six_point"]}})
    return mcsim.simulate(cfg, progress="off")


@pytest.mark.parametrize("case", list(CASES))
def test_estimates_agree_within_five_sigma(case):
    a, b = run(case, "markov", 101), run(case, "dense", 202)
    for l in a.layers[1:]:
        for name in ("metric", "vertex", "six_point", "kurtosis"):
            x, y = getattr(a.layer(l), name), getattr(b.layer(l), name)
            err = np.sqrt(x.stderr ** 2 + y.stderr ** 2)
            assert np.all(err > 0), (name, l)
            z = np.abs(x.mean - y.mean) / err
            assert z.max() < 5, (case, l, name, z.max())
