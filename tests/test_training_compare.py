"""`mcsim compare` for trained ensembles, and `/training` as xarray / pandas.

The measurements come from real runs (the training kernel, checked against a NumPy trainer
in test_training_kernel.py); the prediction is the closed-form kernel regression (checked
against an explicit Gaussian recursion in test_training.py). Tolerances are 5 of the
estimators' own standard errors."""
from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

import mcsim
from mcsim.analysis.compare import read_measurements
from mcsim.analysis.training_compare import (COMPARED, DEFAULT, compare_training, training_entries,
                                             training_width_sweep)
from mcsim.config import config_from_dict
from mcsim.theory.training import predict_training
from tests.conftest import run_cli
from tests.test_training import raw_config

WIDTHS = (16, 32, 64)


@pytest.fixture(scope="module")
def sweep_files(tmp_path_factory):
    """tanh at criticality, one hidden layer of width n (n_(L-1) = n), 16384 networks each."""
    folder = tmp_path_factory.mktemp("train-sweep")
    paths = []
    for n in WIDTHS:
        path = folder / f"w{n}.h5"
        mcsim.simulate(config_from_dict(raw_config(n=n, depth=2, networks=16384, block_size=512, bins=16)),
                       output=path, progress="off")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def sweep(sweep_files):
    return [read_measurements(p)[0] for p in sweep_files]


def test_width_sweep_extrapolates_to_the_kernel_prediction(sweep):
    """X_inf of every step, statistic and entry agrees with the infinite-width prediction
    within 5 sigma; the training loss's 1/n coefficient is resolved (a real finite-width
    effect); and a prediction that is slightly wrong (eta 0.132 for 0.12) is caught."""
    fit = training_width_sweep(sweep, order=1)
    rows = fit.rows
    assert set(rows["statistic"]) == set(DEFAULT)
    # steps x entries: means 2 each, covariance 3, the two losses 1; deviation_mean is exactly 0
    # at step 0 (no standard error) and not fitted there
    assert len(rows) == 3 * (2 + 3 + 1 + 1) + 2 * 2
    assert np.all(np.abs(rows["X_inf_dev"]) < 5), rows[np.abs(rows["X_inf_dev"]) >= 5]
    loss = fit.select("train_loss", step=20)[0]
    assert abs(loss["a"]) > 5 * loss["a_err"], loss
    # a is the limit of n (X - X_inf): at every width n (X - prediction) is within 5 sigma of
    # a + b/n with the fitted a and the width's own error (a linear fit: b = 0)
    n, x, s = fit.points[(20, "train_loss", "")]
    assert np.all(np.abs(n * (x - loss["prediction"]) - loss["a"]) < 5 * np.hypot(n * s, loss["a_err"]))
    # the fit is the weighted least-squares one (normal equations written out here)
    w = 1 / s ** 2
    A = np.stack([np.ones_like(n), 1 / n], axis=1)
    coef = np.linalg.solve(A.T @ (A * w[:, None]), A.T @ (w * x))
    np.testing.assert_allclose([loss["X_inf"], loss["a"]], coef, rtol=1e-10)
    # a wrong prediction is detected
    cfg = sweep[0].config
    wrong = predict_training(dataclasses.replace(
        cfg, training=dataclasses.replace(cfg.training, learning_rate=0.132)))
    bad = training_width_sweep(sweep, order=1, prediction=wrong).rows
    assert np.max(np.abs(bad["X_inf_dev"][bad["statistic"] == "train_loss"])) > 5


def test_single_run_resolves_the_finite_width_deviation(sweep):
    """At n = 16 the training loss after 20 steps is far (> 5 sigma) above kernel regression,
    and the columns are the measurement, its error and the prediction itself."""
    m = sweep[0]
    table = compare_training(m)
    pred = predict_training(m.config)
    r = table.select("train_loss", step=20)[0]
    assert r["measured"] == m.training["train_loss"].mean[-1]
    assert r["prediction"] == pred.train_loss[-1]
    assert r["deviation"] > 5
    r = table.select("output_covariance", step=1)
    assert list(r["entry"]) == ["C(x_1,x_1)", "C(x_1,x_2)", "C(x_2,x_2)"]
    assert r["prediction"][1] == pred.output_covariance[1, 0, 1]
    d = table.select("deviation_mean", step=0)
    assert np.all(d["measured"] == 0) and np.all(d["deviation"] == 0)     # exact: z(0) = z_lin(0)
    text = table.text()
    assert "train_loss: 3 entries" in text and "beyond 3 sigma" in text
    df = table.to_pandas()
    assert list(df.columns) == [name for name, _ in table.rows.dtype.descr] and len(df) == len(table.rows)


def test_one_layer_network_equals_the_prediction_at_any_width():
    """A network without hidden layers is linear in its parameters: the kernel prediction is
    exact, so every entry of every recorded step is within 5 sigma (the linearised twins too)."""
    raw = raw_config(n=4, depth=1, networks=2048, activation="linear", eta=0.2, steps=30,
                     targets={"values": [[0.5, -1.0], [0.3, 0.2], [-0.6, 0.4]]},
                     test_targets={"values": [[0.1, 0.0], [-0.5, 1.0]]})
    raw["network"]["widths"] = [2]
    table = compare_training(mcsim.simulate(config_from_dict(raw), progress="off"), statistics=list(COMPARED))
    assert set(table.rows["statistic"]) == set(COMPARED)
    assert len(table.select("output_mean", step=30)) == 4
    assert list(table.select("output_mean", step=30)["entry"]) == ["z_1(x_1)", "z_2(x_1)", "z_1(x_2)", "z_2(x_2)"]
    assert np.all(np.abs(table.rows["deviation"]) < 5), table.rows[np.abs(table.rows["deviation"]) >= 5]
    # and the same wrong-prediction check: a 5 % larger eta is many sigma off
    cfg = config_from_dict(raw)
    wrong = predict_training(dataclasses.replace(cfg, training=dataclasses.replace(cfg.training,
                                                                                     learning_rate=0.21)))
    dev = compare_training(mcsim.simulate(cfg, progress="off"), prediction=wrong).rows["deviation"]
    assert np.max(np.abs(dev[np.isfinite(dev)])) > 5


def test_entries_and_refusals(sweep):
    assert training_entries("output_covariance", (3, 3))[-1] == ((2, 2), "C(x_3,x_3)")
    assert training_entries("train_loss", ()) == [((), "")]
    with pytest.raises(ValueError, match="at least two runs"):
        training_width_sweep(sweep[:1])
    with pytest.raises(ValueError, match="not a compared training statistic"):
        compare_training(sweep[0], statistics=["metric"])
    other = dataclasses.replace(sweep[1], config=sweep[1].config.replace(networks=4096))
    other.config = dataclasses.replace(other.config, training=dataclasses.replace(
        other.config.training, learning_rate=0.1))
    with pytest.raises(ValueError, match=r"\[training\]"):
        training_width_sweep([sweep[0], other])
    plain = mcsim.simulate(mcsim.config_from_dict({
        "network": {"input_dim": 1, "widths": [4, 1], "activation": "tanh"},
        "inputs": {"values": [[1.0]]}, "ensemble": {"networks": 64, "block_size": 8}}), progress="off")
    with pytest.raises(ValueError, match="no /training group"):
        compare_training(plain)


def test_cli_compare_prints_training(sweep_files, tmp_path):
    proc = run_cli("compare", sweep_files[0])
    assert proc.returncode == 0, proc.stderr
    assert "training, 16,384 networks averaged" in proc.stdout and "train_loss" in proc.stdout
    proc = run_cli("compare", *sweep_files, "--order", "1", "--plot", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "training: width sweep over 3 runs, n_(L-1) in [16, 32, 64]" in proc.stdout
    assert "n (X - prediction) per width at step 20" in proc.stdout
    for ext in ("png", "pdf"):
        assert (tmp_path / f"training-width-sweep.{ext}").stat().st_size > 1000


# -- xarray / pandas ------------------------------------------------------------------------
def test_training_as_xarray_and_pandas(sweep_files, tmp_path):
    res = mcsim.open_result(sweep_files[0])
    ds = res.to_xarray()
    assert list(ds.step.values) == [0, 1, 20] and list(ds.output_unit.values) == [1]
    with h5py.File(sweep_files[0], "r") as f:
        g = f["training"]
        for name in ("output_mean", "output_covariance", "deviation_mean", "train_loss", "test_loss",
                     "linearised_mean"):
            np.testing.assert_array_equal(ds[name].values, g[name][()])
            np.testing.assert_array_equal(ds[name + "_stderr"].values, g[name + "_stderr"][()])
            assert ds[name].attrs["description"] == g[name].attrs["description"]
        assert ds.output_mean.dims == ("step", "input_a", "output_unit")
        assert ds.output_covariance.dims == ("step", "input_a", "input_b")
        assert ds.train_loss.dims == ("step",)
        assert ds.output_covariance.sel(step=20, input_a=1, input_b=2).item() == g["output_covariance"][2, 0, 1]
        assert ds.attrs["training_diverged"] == g.attrs["diverged"]
        # the layer statistics are still there, unchanged
        np.testing.assert_array_equal(ds.metric.sel(layer=2).values, f["layers/2/metric"][()])
        df = res.training.to_pandas()
        assert list(df.columns) == ["step", "statistic", "entry", "input_a", "input_b", "output_unit", "mean",
                                    "stderr"]
        row = df[(df.step == 20) & (df.statistic == "output_covariance") & (df.input_a == 1) & (df.input_b == 2)]
        assert len(row) == 1 and row["mean"].item() == g["output_covariance"][2, 0, 1]
        assert row["stderr"].item() == g["output_covariance_stderr"][2, 0, 1]
        # distinct a <= b per step: 3 covariance rows per step, 4 with entries="all"
        assert (df.statistic == "output_covariance").sum() == 3 * 3
        assert (res.training.to_pandas(entries="all").statistic == "output_covariance").sum() == 3 * 4
        loss = df[df.statistic == "train_loss"]
        np.testing.assert_array_equal(loss["mean"].values, g["train_loss"][()])
        assert loss["input_a"].isna().all()
    # a prediction file: the same variables, no _stderr twins
    cfg = config_from_dict(raw_config(n=16, depth=2))
    path = tmp_path / "cfg.toml"
    path.write_text(cfg.to_toml())
    proc = run_cli("theory", path, "-o", tmp_path / "p.h5")
    assert proc.returncode == 0, proc.stderr
    pds = mcsim.open_result(tmp_path / "p.h5").to_xarray()
    np.testing.assert_allclose(pds.output_mean.values, predict_training(cfg).output_mean, rtol=1e-12)
    assert "output_mean_stderr" not in pds


def test_collected_sweep_keeps_training_and_compares(tmp_path, capsys):
    """A sweep over widths of a [training] config: `mcsim collect` copies each task's
    /training estimates (not its accumulator), and `mcsim compare sweep.h5` fits them."""
    from mcsim.cli import main
    from mcsim.config import load_config
    from tests.test_sweep import make_sweep
    base = config_from_dict(raw_config(n=8, depth=2, networks=1024, block_size=64, bins=8)).to_toml()
    path = make_sweep(tmp_path, 'base = "relu.toml"\n[vary]\n"network.width" = [8, 16]\n', base=base)
    d = tmp_path / "sw"
    assert main(["sweep", str(path), "-d", str(d)]) == 0
    for i in (0, 1):
        mcsim.simulate(load_config(d / f"tasks/{i}/config.toml"), output=d / f"tasks/{i}/result.h5", progress="off")
    out = tmp_path / "sweep.h5"
    assert main(["collect", str(d), "-o", str(out), "--strict"]) == 0
    with h5py.File(out, "r") as f, h5py.File(d / "tasks/1/result.h5", "r") as src:
        g = f["tasks/1/training"]
        assert "accumulator" not in g and g.attrs["diverged"] == src["training"].attrs["diverged"]
        for name in src["training"]:
            if name != "accumulator":
                np.testing.assert_array_equal(g[name][()], src["training"][name][()])
    ms = read_measurements(out)
    assert [m.widths[0] for m in ms] == [8, 16] and all(m.training for m in ms)
    np.testing.assert_array_equal(ms[1].training["train_loss"].mean,
                                  mcsim.open_result(d / "tasks/1/result.h5").training["train_loss"].mean)
    assert len(training_width_sweep(ms).rows) > 0
    capsys.readouterr()
    assert main(["compare", str(out)]) == 0
    assert "training: width sweep over 2 runs, n_(L-1) in [8, 16]" in capsys.readouterr().out
    ds = mcsim.open_sweep(out).to_xarray()
    assert ds.output_mean.dims == ("task", "step", "input_a", "output_unit")


def test_compare_without_a_prediction_says_why(tmp_path, capsys):
    """eta above the infinite-width stability limit (0.3955 here): the networks that stay
    stable are averaged, there is no kernel prediction, and compare says so (exit 0, the
    layer comparison stands)."""
    from mcsim.cli import main
    path = tmp_path / "big-eta.h5"
    res = mcsim.simulate(config_from_dict(raw_config(n=8, depth=2, networks=512, block_size=32, eta=0.42)),
                         output=path, progress="off")
    assert res.training.diverged > 0 and res.training.networks > 0
    capsys.readouterr()
    assert main(["compare", str(path)]) == 0
    out = capsys.readouterr().out
    assert "training: not compared" in out and "stability limit" in out and "metric:" in out
