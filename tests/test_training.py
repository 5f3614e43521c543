"""Trained ensembles end to end: exact cases, the 1/n approach to the infinite-width
prediction, resume / merge, the prediction's algebra, and bad input."""
from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

import mcsim
from mcsim.config import ConfigError, config_from_dict
from mcsim.storage.merge import merge_files
from mcsim.theory.training import predict_training
from mcsim.training import equivalence_rates
from tests.conftest import run_cli, write_config

S3 = float(np.sqrt(3.0))


def raw_config(n=8, depth=3, networks=256, activation="tanh", steps=20, eta=0.12, block_size=32,
               bins=8, **training):
    tr = {"inputs": {"values": [[S3, 0, 0], [0, S3, 0], [0, 0, S3]]},
          "targets": {"values": [[0.5], [0.3], [-0.6]]},
          "test_targets": {"values": [[0.1], [-0.5]]},
          "steps": steps, "learning_rate": eta, "record": [0, 1, steps]}
    tr.update(training)
    return {"network": {"input_dim": 3, "widths": [n] * (depth - 1) + [1], "activation": activation,
                        "C_W": 1.0, "C_b": 0.0},
            "inputs": {"values": [[1.0, 1.0, 0.0], [0.0, -1.0, 1.5]]},
            "ensemble": {"networks": networks, "seed": 5, "sampler": "dense", "block_size": block_size,
                         "jackknife_bins": bins},
            "output": {"statistics": ["metric"]},
            "training": tr}


def sim(raw, path=None):
    return mcsim.simulate(config_from_dict(raw), output=path, progress="off")


def test_single_layer_is_exactly_linear():
    """A one-layer network is linear in its parameters: it equals its linearisation, its NTK
    is constant, and the infinite-width prediction is exact at any width."""
    raw = raw_config(n=4, depth=1, networks=2048, activation="linear", eta=0.2, steps=30,
                     targets={"values": [[0.5, -1.0], [0.3, 0.2], [-0.6, 0.4]]},
                     test_targets={"values": [[0.1, 0.0], [-0.5, 1.0]]})
    raw["network"]["widths"] = [2]
    raw["network"]["C_b"] = 0.3
    res = sim(raw)
    tr = res.training
    assert tr.diverged == 0 and tr.networks == 2048
    assert np.abs(tr["deviation_mean"].mean).max() < 1e-12
    pred = predict_training(config_from_dict(raw))
    for name in ("output_mean", "output_covariance", "train_loss", "test_loss"):
        est, p = tr[name], getattr(pred, name)
        ok = est.stderr > 0
        assert np.all(np.abs(est.mean - p)[ok] < 5 * est.stderr[ok]), name
        assert np.allclose(est.mean[~ok], p[~ok], atol=1e-12), name
    # the linearised model is the network: the same numbers to rounding
    np.testing.assert_allclose(tr["linearised_mean"].mean, tr["output_mean"].mean, atol=1e-12)
    np.testing.assert_allclose(tr["linearised_train_loss"].mean, tr["train_loss"].mean, rtol=1e-10)


def test_prediction_matches_explicit_gaussian_recursion():
    """The closed form against stepping the joint Gaussian of (z_T, z_s) through the linear
    gradient-descent map v -> v - eta Theta[:, T] (v_T - y), mean and covariance exactly."""
    raw = raw_config(steps=7, record=[0, 1, 3, 7],
                     targets={"values": [[0.5, 1.0], [0.3, 0.0], [-0.6, 2.0]]},
                     test_targets={"values": [[0.1, 0.2], [-0.5, 0.0]]})
    raw["network"]["widths"] = [8, 8, 2]
    cfg = config_from_dict(raw)
    pred = predict_training(cfg)
    K, Th = pred.kernel, pred.ntk
    N, P = 3, 5
    Y, Ys = np.asarray(cfg.training.targets), np.asarray(cfg.training.test_targets)
    eta = cfg.training.learning_rate
    A = np.eye(P) - eta * np.hstack([Th[:, :N], np.zeros((P, P - N))])      # v -> A v + eta Th[:, T] y
    mean, cov = np.zeros((P, 2)), K.copy()
    for t in range(8):
        if t in (0, 1, 3, 7):
            r = [0, 1, 3, 7].index(t)
            np.testing.assert_allclose(pred.output_mean[r], mean[N:], atol=1e-12)
            np.testing.assert_allclose(pred.output_covariance[r], cov[N:, N:], atol=1e-12)
            train = 0.5 * (((mean[:N] - Y) ** 2).sum() + 2 * np.trace(cov[:N, :N]))
            test = 0.5 * (((mean[N:] - Ys) ** 2).sum() + 2 * np.trace(cov[N:, N:]))
            assert pred.train_loss[r] == pytest.approx(train, rel=1e-12)
            assert pred.test_loss[r] == pytest.approx(test, rel=1e-12)
        mean = A @ mean + eta * Th[:, :N] @ Y
        cov = A @ cov @ A.T
    # t -> infinity: the training points are interpolated
    Theta_inv = np.linalg.inv(Th[:N, :N])
    np.testing.assert_allclose(pred.limit_output_mean, Th[N:, :N] @ Theta_inv @ Y, atol=1e-12)
    assert pred.limit_train_loss == pytest.approx(0.0, abs=1e-20)


def test_tanh_deviation_shrinks_like_one_over_n():
    """Measured minus infinite-width prediction, times n, agrees at n = 16 and 32 within the
    standard errors (5 sigma), for the training loss (resolved at both widths: a real
    finite-width effect, not zero and not O(1)) and the mean output."""
    runs = {}
    for n in (16, 32):
        cfg = config_from_dict(raw_config(n=n, networks=4096, block_size=64, bins=16))
        runs[n] = (mcsim.simulate(cfg, progress="off").training, predict_training(cfg))
    for name, idx, resolved in (("train_loss", (-1,), True), ("output_mean", (-1, 0, 0), False)):
        nd, err = [], []
        for n, (tr, pred) in runs.items():
            d = tr[name].mean[idx] - getattr(pred, name)[idx]
            nd.append(n * d)
            err.append(n * tr[name].stderr[idx])
            if resolved:
                assert abs(d) > 5 * tr[name].stderr[idx], (name, n)
        assert abs(nd[0] - nd[1]) < 5 * np.hypot(*err), (name, nd, err)


def test_resume_extend_and_merge(tmp_path):
    raw = raw_config(networks=128)
    whole = sim(raw_config(networks=256), tmp_path / "whole.h5")
    sim(raw, tmp_path / "part.h5")
    extended = sim(raw_config(networks=256), tmp_path / "part.h5")          # resume / extend
    for name, est in whole.training.items():
        assert est.mean.tobytes() == extended.training[name].mean.tobytes(), name
        assert est.stderr.tobytes() == extended.training[name].stderr.tobytes(), name
    second = raw_config(networks=128)
    second["ensemble"]["first_block"] = 4
    sim(second, tmp_path / "b.h5")
    sim(raw, tmp_path / "a.h5")
    merged = merge_files([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "ab.h5")
    reread = mcsim.open_result(tmp_path / "ab.h5")
    for name, est in whole.training.items():
        for got in (merged.training[name], reread.training[name]):
            np.testing.assert_allclose(got.mean, est.mean, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(got.stderr, est.stderr, rtol=1e-10, atol=1e-14)
    with h5py.File(tmp_path / "whole.h5") as f:
        g = f["training"]
        assert g["output_mean"].shape == (3, 2, 1) and g["output_covariance"].shape == (3, 2, 2)
        assert list(g["steps"][()]) == [0, 1, 20]
        for name in ("linearised_mean", "deviation_mean", "train_loss"):
            assert name in g and name + "_stderr" in g
        assert g.attrs["diverged"] == 0
    # a file of another training configuration is refused on resume
    other = raw_config(networks=512, eta=0.1)
    with pytest.raises(mcsim.errors.ResumeError, match="training"):
        sim(other, tmp_path / "whole.h5")


def test_diverged_networks_are_counted_not_averaged():
    res = sim(raw_config(networks=256, eta=0.3))          # near the stability limit 0.317
    tr = res.training
    assert 0 < tr.diverged < 256 and tr.networks == 256 - tr.diverged
    for est in tr.values():
        assert np.all(np.isfinite(est.mean)) and np.all(np.isfinite(est.stderr))


def test_equivalence_rates():
    lb, lw = equivalence_rates("relu", 4, 2.0, 1.0)
    np.testing.assert_allclose(lb, 0.5)
    np.testing.assert_allclose(lw, 0.25)
    lb, lw = equivalence_rates("tanh", 4, 1.0, 1.0)     # p_perp = 1: lambda_b / l, lambda_W flat
    np.testing.assert_allclose(lb, 1.0 / np.arange(1, 5), rtol=1e-6)
    np.testing.assert_allclose(lw, 1.0, rtol=1e-6)
    cfg = config_from_dict(raw_config(lambdas="equivalence"))
    np.testing.assert_allclose(cfg.training.lambda_b, [1.0, 0.5, 1 / 3], rtol=1e-6)


BAD = [
    ({"targets": {"values": [[0.5], [0.3]]}}, "training.targets"),
    ({"targets": {"values": [[0.5, 1], [0.3, 1], [0.1, 1]]}}, "training.targets"),
    ({"test_targets": {"values": [[0.5]]}}, "training.test_targets"),
    ({"learning_rate": float("nan")}, "training.learning_rate"),
    ({"learning_rate": float("inf")}, "training.learning_rate"),
    ({"record": [0, 30]}, "training.record"),
    ({"record": [5, 1]}, "training.record"),
    ({"lambdas": "sometimes"}, "training.lambdas"),
    ({"inputs": {"values": [[1.0, 2.0]]}}, "training.inputs"),
]


@pytest.mark.parametrize("change,key", BAD)
def test_bad_input_names_the_key(change, key):
    raw = raw_config(**change)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(raw)


@pytest.mark.parametrize("lambdas", ["config", "equivalence"])
def test_activation_that_jumps_is_refused(lambdas):
    # sigma' of the perceptron is a delta function: gradients and the NTK are undefined
    raw = raw_config(lambdas=lambdas)
    raw["network"]["activation"] = "perceptron"
    with pytest.raises(ConfigError, match="training: network.activation = 'perceptron' jumps"):
        config_from_dict(raw)
    with pytest.raises(ValueError, match="no critical point"):
        equivalence_rates("perceptron", 3, 1.0, 1.0)


def test_cli_bad_input_exit_2_nothing_written(tmp_path):
    body = """
    [network]
    input_dim = 1
    widths = [4, 1]
    activation = "sigmoid"
    [ensemble]
    networks = 64
    block_size = 32
    [training]
    inputs = { values = [[0.0], [1.0]] }
    targets = { values = [[0.0], [1.0]] }
    steps = 5
    learning_rate = 0.1
    lambdas = "equivalence"
    """
    cfg = write_config(tmp_path, body)
    for cmd in (["run", cfg, "-o", tmp_path / "r.h5"], ["theory", cfg, "-o", tmp_path / "p.h5"]):
        proc = run_cli(*cmd)
        assert proc.returncode == 2, proc.stderr
        assert "training.lambdas" in proc.stderr
    assert not list(tmp_path.glob("*.h5"))
    # a learning rate above the infinite-width stability limit: theory refuses, writes nothing
    bad = write_config(tmp_path, body.replace('"sigmoid"', '"tanh"').replace('lambdas = "equivalence"', "")
                       .replace("0.1", "50.0"), "big.toml")
    proc = run_cli("theory", bad, "-o", tmp_path / "p.h5")
    assert proc.returncode == 2 and "stability limit" in proc.stderr
    assert not list(tmp_path.glob("*.h5"))


def test_cli_theory_writes_training_group(tmp_path):
    cfg = config_from_dict(raw_config())
    path = write_config(tmp_path, cfg.to_toml())
    proc = run_cli("theory", path, "-o", tmp_path / "p.h5")
    assert proc.returncode == 0, proc.stderr
    assert "infinite-width prediction" in proc.stdout
    res = mcsim.open_result(tmp_path / "p.h5")
    pred = predict_training(cfg)
    np.testing.assert_allclose(res.training["output_mean"].mean, pred.output_mean, rtol=1e-12)
    np.testing.assert_allclose(res.training["train_loss"].mean, pred.train_loss, rtol=1e-12)
    assert res.training["output_covariance"].shape == (3, 2, 2)
    # the stored configuration round-trips with its [training] section
    assert res.config.to_dict() == cfg.to_dict()


@pytest.mark.mpi
def test_mpi_ranks_give_bitwise_identical_training(tmp_path):
    from tests.test_mpi import MPIEXEC, mpirun
    if MPIEXEC is None:
        pytest.skip("no mpiexec")
    path = write_config(tmp_path, config_from_dict(raw_config(networks=256)).to_toml())
    proc = run_cli("run", path, "-o", tmp_path / "one.h5", "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = mpirun(2, "run", path, "-o", tmp_path / "two.h5", "--quiet")
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "one.h5") as a, h5py.File(tmp_path / "two.h5") as b:
        for name in a["training"]:
            if isinstance(a["training"][name], h5py.Dataset):
                assert a["training"][name][()].tobytes() == b["training"][name][()].tobytes(), name
        for name in ("count", "mean", "m2"):
            assert a["training/accumulator"][name][()].tobytes() == b["training/accumulator"][name][()].tobytes()
