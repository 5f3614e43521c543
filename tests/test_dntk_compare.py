"""The dNTK statistics against their prediction end to end (issue 19): `mcsim run` (dense and
markov), `mcsim theory -o`, `mcsim compare` of one run and of a two-width sweep, through the
installed command line.

The independent source is the Monte Carlo itself: the measurement never uses the recursions.
Layer 2 is exact at any width (layer 1 is deterministic), so there every entry of P and Q must
agree with the prediction within 5 standard errors; layer 3 differs from the leading order by
O(1/n), allowed as 5 sigma + 0.15 max|X| (the bound tests/test_dntk_theory.py uses for the
O(1/n) remainder at these widths). The recursions themselves are checked against an
explicit-weight Monte Carlo in tests/test_dntk_theory.py; this file checks the wiring (the
registry's prediction hook, the configured learning rates reaching the theory, the prediction
file, the compare tables)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from mcsim.stats.statistics import get_statistic
from tests.conftest import run_cli, write_config

DNTK = ("dntk_P", "dntk_Q")
K = 2


def _body(width, sampler, networks=12288):
    # ReLU at criticality, k = 2, three layers, per-layer learning rates (not all 1: a
    # prediction that ignored them would fail at layer 2)
    return f"""
    [network]
    input_dim = 2
    widths = [{width}, {width}, 3]
    activation = "relu"
    C_W = 2.0
    C_b = 0.0
    lambda_b = [0.5, 1.5, 1.0]
    lambda_W = [1.3, 0.7, 1.1]

    [inputs]
    values = [[1.0, 0.2], [0.3, -0.8]]

    [ensemble]
    networks = {networks}
    seed = 5
    sampler = "{sampler}"
    block_size = 512
    jackknife_bins = 16

    [output]
    statistics = ["metric", "dntk_P", "dntk_Q"]
    """


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs (width 8 dense, width 16 markov) and the prediction file of each."""
    d = tmp_path_factory.mktemp("dntk-compare")
    out = {}
    for width, sampler in ((8, "dense"), (16, "markov")):
        cfg = write_config(d, _body(width, sampler), f"w{width}.toml")
        res, pred = d / f"w{width}.h5", d / f"w{width}-pred.h5"
        r = run_cli("run", cfg, "-o", res)
        assert r.returncode == 0, r.stderr
        r = run_cli("theory", cfg, "-o", pred)
        assert r.returncode == 0, r.stderr
        out[width] = (res, pred, r.stdout)
    return out


def _read(path, l, name):
    with h5py.File(path, "r") as f:
        g = f[f"layers/{l}"]
        return g[name][()], (g[name + "_stderr"][()] if name + "_stderr" in g else None)


@pytest.mark.parametrize("width", [8, 16])
def test_measurement_against_the_prediction_file(runs, width):
    res, pred, text = runs[width]
    assert "P" in text and "Q" in text            # `mcsim theory` printed the dNTK table
    for name in DNTK:
        for l, slack in ((2, 0.0), (3, 0.15)):
            mean, err = _read(res, l, name)
            value, none = _read(pred, l, name)
            assert none is None and value.shape == (K,) * 4
            allow = 5 * err + slack * np.max(np.abs(value))
            idx = tuple(np.array(get_statistic(name).distinct(K)).T)
            assert np.all(err[idx] > 0), (l, name)
            bad = np.abs(mean - value)[idx] > allow[idx]
            assert not bad.any(), (width, l, name, (mean - value)[idx] / err[idx])


def test_compare_single_run_shows_dntk_rows(runs):
    res, _, _ = runs[8]
    r = run_cli("compare", res, "--layer", "2", "--stat", "dntk_P", "--stat", "dntk_Q")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()
            if line.split()[:1] == ["2"] and line.split()[2][:2] in ("P[", "Q[")]
    n_distinct = sum(len(get_statistic(s).distinct(K)) for s in DNTK)
    assert len(rows) == n_distinct, r.stdout
    dev = np.array([float(row[-1]) for row in rows])      # dev/sigma, layer 2: exact
    assert np.all(np.isfinite(dev)) and np.all(np.abs(dev) < 5), r.stdout
    assert "dntk_P:" in r.stdout and "dntk_Q:" in r.stdout


def test_compare_width_sweep_extrapolates_dntk(runs):
    r = run_cli("compare", runs[8][0], runs[16][0], "--stat", "dntk_P", "--stat", "dntk_Q")
    assert r.returncode == 0, r.stderr
    text = r.stdout[r.stdout.index("width sweep"):]
    rows = [line.split() for line in text.splitlines()
            if line.split()[:1] == ["2"] and line.split()[1][:2] in ("P[", "Q[")]
    n_distinct = sum(len(get_statistic(s).distinct(K)) for s in DNTK)
    assert len(rows) == n_distinct, text
    # columns: layer entry X_inf +- leading dev ...: the leading prediction is finite and the
    # extrapolation agrees with it at layer 2 (exact, so the 1/n coefficient is 0 within errors)
    assert all(np.isfinite(float(row[4])) for row in rows), text
    dev = np.array([float(row[5]) for row in rows])
    assert np.all(np.abs(dev) < 5), text
