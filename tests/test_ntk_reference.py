"""The NTK statistics of both samplers against an independent explicit-weight NumPy Monte Carlo
(tests/ntk_reference.py: full NTK matrices by the forward chain rule, plain estimators, batch
errors), and markov against dense; a wrong learning rate is detected (power check).

Every distinct entry of ntk, ntk_A, ntk_B, ntk_D, ntk_F of every stochastic layer must agree
within 5 combined standard errors; layer 1 is exact.
"""
from __future__ import annotations

import numpy as np
import pytest

import mcsim
from mcsim.config import config_from_dict
from mcsim.stats.statistics import get_statistic
from tests import ntk_reference

NTK = ("ntk", "ntk_A", "ntk_B", "ntk_D", "ntk_F")
NETWORKS = 24576

CASES = {
    # k = 2, unequal widths, per-layer C_W, C_b and learning rates
    "tanh-k2": dict(input_dim=3, widths=[4, 5, 3], act="tanh", C_W=[1.5, 1.2, 1.0],
                    C_b=[0.1, 0.2, 0.0], lam_b=[0.5, 1.0, 2.0], lam_W=[1.0, 0.7, 1.3],
                    inputs=[[1.0, 0.5, -0.2], [0.3, -1.0, 0.4]]),
    # k = 1, depth 4, a zero bias learning rate
    "relu-k1": dict(input_dim=2, widths=[5, 3, 6, 2], act="relu", C_W=2.0, C_b=0.05,
                    lam_b=[1.0, 0.0, 0.5, 1.0], lam_W=[2.0, 1.0, 1.0, 0.5],
                    inputs=[[0.8, -0.6]]),
    # k = 2 with layers of width 1 (the second probe unit is drawn) and C_b = 0 above a
    # width-1 layer: Ghat^(3) has rank 1 (the semidefinite branch of the conditional update)
    "tanh-k2-width1": dict(input_dim=2, widths=[3, 1, 4, 1], act="tanh", C_W=[1.0, 1.5, 2.0, 1.0],
                           C_b=[0.1, 0.2, 0.0, 0.1], lam_b=1.0, lam_W=1.0,
                           inputs=[[1.0, 0.2], [-0.4, 0.9]]),
    # more inputs than units (k = 3 > n = 2): every Ghat is singular
    "linear-k3-narrow": dict(input_dim=2, widths=[2, 2, 3], act="linear", C_W=[1.0, 1.5, 0.8],
                             C_b=0.0, lam_b=[1.0, 0.5, 1.0], lam_W=1.0,
                             inputs=[[1.0, 0.2], [-0.4, 0.9], [0.5, 0.5]]),
}


def config(case, sampler, seed, networks=NETWORKS):
    c = CASES[case]
    return config_from_dict({
        "network": {"input_dim": c["input_dim"], "widths": c["widths"], "activation": c["act"],
                    "C_W": c["C_W"], "C_b": c["C_b"], "lambda_b": c["lam_b"], "lambda_W": c["lam_W"]},
        "inputs": {"values": c["inputs"]},
        "ensemble": {"networks": networks, "seed": seed, "sampler": sampler, "block_size": 512,
                     "jackknife_bins": 16},
        "output": {"statistics": ["metric", *NTK]}})


def per_layer(value, L):
    return list(value) if isinstance(value, list) else [value] * L


def reference(case, seed, **override):
    c = {**CASES[case], **override}
    L = len(c["widths"])
    samples = ntk_reference.sample(c["inputs"], c["widths"], per_layer(c["C_W"], L), per_layer(c["C_b"], L),
                                   per_layer(c["lam_W"], L), per_layer(c["lam_b"], L), c["act"],
                                   NETWORKS, seed)
    return ntk_reference.estimate(samples, c["widths"], c["input_dim"])


_RUNS: dict = {}


def measured(case, sampler, seed):
    key = (case, sampler, seed)
    if key not in _RUNS:
        _RUNS[key] = mcsim.simulate(config(case, sampler, seed), progress="off")
    return _RUNS[key]


def max_sigma(res, ref):
    """Largest |difference| / combined standard error over the distinct entries of the NTK
    statistics of the stochastic layers; (value, where)."""
    worst, where = 0.0, None
    for l in res.layers[1:]:
        le = res.layer(l)
        k = res.config.k
        for name in NTK:
            mine = le[name]
            other_mean, other_err = ref[l][name] if isinstance(ref[l][name], tuple) else \
                (ref[l][name].mean, ref[l][name].stderr)
            for idx in get_statistic(name).distinct(k):
                err = np.hypot(mine.stderr[idx], other_err[idx])
                assert err > 0, (l, name, idx)
                z = abs(mine.mean[idx] - other_mean[idx]) / err
                if z > worst:
                    worst, where = z, (l, name, idx)
    return worst, where


@pytest.mark.parametrize("case,sampler", [("tanh-k2", "markov"), ("tanh-k2", "dense"),
                                          ("relu-k1", "markov"), ("relu-k1", "dense"),
                                          ("tanh-k2-width1", "markov"),
                                          ("linear-k3-narrow", "markov")])
def test_agrees_with_numpy_reference(case, sampler):
    res = measured(case, sampler, 11)
    z, where = max_sigma(res, reference(case, 2024))
    assert z < 5, (case, sampler, z, where)
    # layer 1 is deterministic: the mean NTK is exact, its fluctuations vanish
    c = CASES[case]
    x = np.asarray(c["inputs"])
    lam_b, lam_W = per_layer(c["lam_b"], 1)[0], per_layer(c["lam_W"], 1)[0]
    le = res.layer(1)
    np.testing.assert_allclose(le.ntk.mean, lam_b + lam_W / c["input_dim"] * x @ x.T, rtol=1e-14)
    for name in NTK:
        assert not le[name].stderr.any()
        if name != "ntk":
            assert not le[name].mean.any()


@pytest.mark.parametrize("case", ["tanh-k2", "tanh-k2-width1"])
def test_markov_and_dense_agree(case):
    a, b = measured(case, "markov", 11), measured(case, "dense", 12)
    ref = {l: {name: b.layer(l)[name] for name in NTK} for l in b.layers}
    z, where = max_sigma(a, ref)
    assert z < 5, (case, z, where)


def test_wrong_learning_rate_is_detected():
    """Power: the reference with lambda_W^(1) = 1.2 instead of 1.0 is told apart."""
    res = measured("tanh-k2", "markov", 11)
    z, where = max_sigma(res, reference("tanh-k2", 2024, lam_W=[1.2, 0.7, 1.3]))
    assert z > 5, (z, where)
