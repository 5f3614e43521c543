"""The dNTK statistics through the whole pipeline: both samplers against an independent
explicit-weight NumPy Monte Carlo of the pinned definitions (tests/dntk_reference.py, one role,
no symmetrisation), markov against dense on narrow layers (semidefinite metrics), the tensor
structure (same-unit dNTK = P + P' + Q), symmetries, HDF5, resume and merge bitwise, and the
configuration errors (the reduced samplers do not measure the dNTK)."""
from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

import mcsim
from mcsim.config import config_from_dict
from mcsim.errors import ConfigError
from mcsim.storage.merge import merge_files
from mcsim.stats.statistics import get_statistic
from tests import dntk_reference as ref
from tests.conftest import run_cli, write_config

DNTK = ("dntk_P", "dntk_Q")
# k = 2, hidden widths 6 and 5 (layer 2: exact test at any width), per-layer C_W, C_b, rates
NET = dict(input_dim=3, widths=[6, 5, 3], activation="tanh", C_W=[1.5, 1.2, 1.0],
           C_b=[0.1, 0.2, 0.3], lambda_b=[0.5, 1.0, 2.0], lambda_W=[1.0, 0.7, 1.3])
X = [[1.0, 0.5, -0.2], [0.3, -1.0, 0.4]]
NETWORKS = 16384
REF_NETWORKS = 32768


def raw_config(sampler="dense", statistics=("metric", *DNTK), networks=NETWORKS, **network):
    net = dict(NET)
    net.update(network)
    return {"network": net, "inputs": {"values": X},
            "ensemble": {"networks": networks, "seed": 11, "sampler": sampler, "block_size": 512,
                         "jackknife_bins": 16},
            "output": {"statistics": list(statistics)}}


_RUN: dict = {}


def measured(sampler="dense"):
    if sampler not in _RUN:
        _RUN[sampler] = mcsim.simulate(config_from_dict(raw_config(sampler)), progress="off")
    return _RUN[sampler]


def reference(layer, seed=2024, lam_W=None):
    n = layer - 1                                       # hidden layers below the output
    lw = list(lam_W or NET["lambda_W"])
    return ref.statistics(X, NET["input_dim"], NET["widths"][:n], NET["C_W"][:layer],
                          NET["C_b"][:layer], lw[:layer], NET["lambda_b"][:layer],
                          NET["activation"], REF_NETWORKS, seed + layer)


def worst_sigma(res, refs):
    worst, where = 0.0, None
    k = res.config.k
    for l, r in refs.items():
        for name in DNTK:
            est = res.layer(l)[name]
            mean, err = r[name]
            for idx in get_statistic(name).distinct(k):
                e = np.hypot(est.stderr[idx], err[idx])
                assert e > 0, (l, name, idx)
                z = abs(est.mean[idx] - mean[idx]) / e
                if z > worst:
                    worst, where = z, (l, name, idx)
    return worst, where


@pytest.mark.parametrize("sampler", ["dense", "markov"])
def test_agrees_with_numpy_monte_carlo_and_tensor_structure(sampler):
    res = measured(sampler)
    refs = {l: reference(l) for l in (2, 3)}
    z, where = worst_sigma(res, refs)
    assert z < 5, (z, where)
    # E[dHhat_{111} z_1] = (P + P' + Q) / n: the three structures of the pinned decomposition
    worst = 0.0
    for l in (2, 3):
        P, Q = (res.layer(l)[n] for n in DNTK)
        same = P.mean + P.mean.transpose(0, 2, 1, 3) + Q.mean
        err = np.sqrt(P.stderr ** 2 * 4 + Q.stderr ** 2)        # conservative (P, P' correlated)
        mean, rerr = refs[l]["same"]
        worst = max(worst, (np.abs(same - mean) / np.hypot(err, rerr)).max())
    assert worst < 5, worst
    # the signal is resolved (the comparison is not one of noise with noise)
    assert (np.abs(res.layer(3)["dntk_Q"].mean) / res.layer(3)["dntk_Q"].stderr).max() > 10
    # layer 1: dHhat = 0 exactly
    for name in DNTK:
        assert not res.layer(1)[name].mean.any() and not res.layer(1)[name].stderr.any()


def test_wrong_learning_rate_is_detected():
    """Power: the reference with lambda_W^(1) = 1.3 instead of 1.0 is told apart."""
    z, where = worst_sigma(measured(), {2: reference(2, lam_W=[1.3, 0.7, 1.3])})
    assert z > 5, (z, where)


# k = 3 inputs through layers of width 2 and 1 (every metric above them singular: the
# forward pass's vectors are linearly dependent), C_b = 0 under a width-1 layer
NARROW = dict(input_dim=2, widths=[3, 2, 1, 3], activation="tanh", C_W=[1.0, 1.5, 2.0, 1.2],
              C_b=[0.1, 0.0, 0.0, 0.2], lambda_b=[1.0, 0.5, 1.0, 2.0], lambda_W=[1.0, 1.2, 0.8, 1.0])


def test_markov_agrees_with_dense_on_narrow_layers():
    def run(sampler, seed):
        raw = raw_config(sampler, **NARROW)
        raw["inputs"]["values"] = [[1.0, 0.2], [-0.4, 0.9], [0.5, 0.5]]
        raw["ensemble"]["seed"] = seed
        return mcsim.simulate(config_from_dict(raw), progress="off")
    a, b = run("markov", 3), run("dense", 4)
    z, where = worst_sigma(a, {l: {n: (b.layer(l)[n].mean, b.layer(l)[n].stderr) for n in DNTK}
                               for l in (2, 3, 4)})
    assert z < 5, (z, where)


def test_symmetries_of_the_estimates():
    res = measured()
    for l in res.layers:
        Q = res.layer(l)["dntk_Q"]
        np.testing.assert_array_equal(Q.mean, Q.mean.transpose(0, 2, 1, 3))
        np.testing.assert_array_equal(Q.stderr, Q.stderr.transpose(0, 2, 1, 3))


def file_arrays(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) and name.split("/")[0] in ("layers", "accumulator")
                     else None)
    return out


@pytest.mark.parametrize("sampler", ["dense", "markov"])
def test_hdf5_resume_and_merge_bitwise(tmp_path, sampler):
    cfg = config_from_dict(raw_config(sampler, networks=1024, statistics=("metric", "ntk", *DNTK)))
    cfg = dataclasses.replace(cfg, ensemble=dataclasses.replace(cfg.ensemble, block_size=64))
    whole = tmp_path / "whole.h5"
    res = mcsim.simulate(cfg, output=whole, progress="off")
    with h5py.File(whole, "r") as f:
        for name in DNTK:
            assert f[f"layers/3/{name}"].shape == (2,) * 4
            assert f[f"layers/3/{name}_stderr"].shape == (2,) * 4
            assert f[f"layers/3/{name}"].attrs["description"] and f[f"layers/3/{name}"].attrs["units"]
    back = mcsim.open_result(whole)
    np.testing.assert_array_equal(back.layer(3)["dntk_P"].mean, res.layer(3)["dntk_P"].mean)
    part = tmp_path / "part.h5"
    mcsim.simulate(cfg.replace(networks=512), output=part, progress="off")
    mcsim.simulate(cfg, output=part, progress="off")
    a, b = file_arrays(whole), file_arrays(part)
    assert a.keys() == b.keys() and "layers/3/dntk_Q_stderr" in a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    first = cfg.replace(networks=512)
    second = dataclasses.replace(first, ensemble=dataclasses.replace(first.ensemble, first_block=8))
    mcsim.simulate(first, output=tmp_path / "a.h5", progress="off")
    mcsim.simulate(second, output=tmp_path / "b.h5", progress="off")
    merged = merge_files([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "ab.h5")
    for l in res.layers:
        for name in DNTK:
            np.testing.assert_array_equal(merged.layer(l)[name].mean, res.layer(l)[name].mean)
            np.testing.assert_array_equal(merged.layer(l)[name].stderr, res.layer(l)[name].stderr)
    proc = run_cli("info", whole)
    assert proc.returncode == 0, proc.stderr
    assert "dntk_P" in proc.stdout and "Q[1121]" in proc.stdout


def test_auto_picks_markov_and_the_reduced_samplers_are_refused():
    assert config_from_dict(raw_config(sampler="auto")).ensemble.sampler == "markov"
    raw = raw_config(sampler="auto", statistics=["dntk_P"], activation="linear")
    assert config_from_dict(raw).ensemble.sampler == "markov"        # not wishart
    for sampler in ("chi2", "wishart"):
        raw = raw_config(sampler=sampler, activation="linear", statistics=["dntk_P"])
        raw["inputs"]["values"] = X[:1]                 # chi2: one input
        with pytest.raises(ConfigError, match=r"ensemble.sampler: .* cannot measure output.statistics "
                                              r"'dntk_P'; use sampler = 'markov' or 'dense' or 'auto'"):
            config_from_dict(raw)
    with pytest.raises(ConfigError, match="output.statistics: 'dntk_Q' is measured for Gaussian"):
        raw = raw_config(statistics=["dntk_Q"])
        raw["ensemble"]["weights"] = "uniform"
        config_from_dict(raw)


def test_cli_reduced_sampler_refused_exits_2_and_writes_nothing(tmp_path):
    cfg = write_config(tmp_path, """
        [network]
        input_dim = 2
        widths = [3, 3, 2]
        activation = "relu"
        [inputs]
        values = [[1.0, 0.5]]
        [ensemble]
        networks = 64
        block_size = 32
        sampler = "chi2"
        [output]
        statistics = ["metric", "dntk_Q"]
        """)
    out = tmp_path / "m.h5"
    proc = run_cli("run", cfg, "-o", out, "-q")
    assert proc.returncode == 2, proc.stderr
    assert "ensemble.sampler" in proc.stderr and "dntk_Q" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".m.h5*"))
