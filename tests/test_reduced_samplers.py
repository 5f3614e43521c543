"""The exact reduced samplers (chi2: one input, relu / leaky_relu / linear / perceptron;
wishart: linear, any k) against independent sources:

- their pieces (Binomial(n, 1/2), chi-squared) against SciPy's distributions;
- every statistic against the markov sampler (independent seeds, 5 combined jackknife
  standard errors), widths from 4 up to above the bit-count limit of the binomial (128);
- E[z^4] / E[z^2]^2 against the exact 3 prod_l (1 + 5 / n_l) (ReLU, C_b = 0) and
  3 prod_l (1 + 2 / n_l) (linear);
- "auto" picks them exactly where they apply; explicit samplers are kept; a file started
  by another sampler resumes with its own sampler, bitwise.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import mcsim
from mcsim.config import config_from_dict
from mcsim.errors import ConfigError

INPUTS = np.random.default_rng(7).standard_normal((4, 4)).tolist()


def cfg_of(widths, act, k, sampler, seed=1, C_W=2.0, C_b=0.0, networks=16384, stats=None, **ens):
    return config_from_dict({
        "network": {"input_dim": 4, "widths": widths, "activation": act, "C_W": C_W, "C_b": C_b},
        "inputs": {"values": INPUTS[:k]},
        "ensemble": {"networks": networks, "seed": seed, "sampler": sampler, "block_size": 256,
                     "jackknife_bins": 32, **ens},
        "output": {"statistics": stats or ["metric", "vertex", "six_point"]}})


# --- the pieces ---------------------------------------------------------------------------
def _gof_pvalue(draws, pmf, support):
    counts = np.array([np.sum(draws == v) for v in support])
    expected = pmf(support) * draws.size
    keep = expected > 20
    rest_obs = draws.size - counts[keep].sum()
    rest_exp = draws.size - expected[keep].sum()
    obs = np.append(counts[keep], rest_obs)
    exp = np.append(expected[keep], rest_exp)
    if rest_exp < 5:
        obs, exp = obs[:-1], exp[:-1] * obs[:-1].sum() / exp[:-1].sum()
    return stats.chisquare(obs, exp).pvalue


def _draw(piece, version, key, block, param, out):
    from mcsim.kernels import chi2_batch, reduced
    if version == 1:
        getattr(reduced, piece)(key, block, param, out)
    else:                       # the batch passes: first proposals vectorised, then retries
        getattr(chi2_batch, piece + "_batch")(key, block, param, out)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("n", [1, 4, 33, 128, 129, 300, 5000, 1_000_000])
def test_binomial_half_against_scipy(n, version):
    from mcsim.kernels import rng
    draws = np.empty(100_096)   # a multiple of the batch's lanes (256)
    _draw("draw_binomial_half", version, rng.seed_key(n), 3, n, draws)
    assert np.all(draws == np.round(draws)) and draws.min() >= 0 and draws.max() <= n
    lo, hi = int(stats.binom.ppf(1e-7, n, 0.5)), int(stats.binom.isf(1e-7, n, 0.5))
    support = np.arange(lo, hi + 1)
    assert _gof_pvalue(draws, lambda v: stats.binom.pmf(v, n, 0.5), support) > 1e-4


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("dof", [0, 1, 2, 3, 7, 64, 10_000])
def test_chi2_against_scipy(dof, version):
    from mcsim.kernels import rng
    draws = np.empty(50_176)
    _draw("draw_chi2", version, rng.seed_key(100 + dof), 5, dof, draws)
    if dof == 0:
        assert np.all(draws == 0.0)
        return
    assert stats.kstest(draws, "chi2", args=(dof,)).pvalue > 1e-4


# --- against markov -----------------------------------------------------------------------
AGREE = {
    "relu-4": dict(widths=[4, 4, 4, 3], act="relu", k=1, C_b=0.0),
    "relu-mixed": dict(widths=[5, 200, 9, 2], act="relu", k=1, C_W=[2.0, 1.5, 2.5, 1.0], C_b=[0.1, 0.0, 0.3, 0.2]),
    "leaky-4": dict(widths=[4, 4, 4], act={"name": "leaky_relu", "slope": -0.3}, k=1, C_b=0.2),
    "leaky-wide": dict(widths=[150, 6, 3], act={"name": "leaky_relu", "slope": 0.2}, k=1, C_b=0.0),
    "perceptron": dict(widths=[4, 7, 3, 2], act="perceptron", k=1, C_W=1.0, C_b=0.0),
    "linear-k1": dict(widths=[4, 9, 2], act="linear", k=1, C_W=1.0, C_b=0.3),
    "linear-k3": dict(widths=[4, 2, 6, 3], act="linear", k=3, C_W=[1.0, 1.2, 0.8, 1.0], C_b=[0.0, 0.1, 0.2, 0.0]),
    "linear-k3-wide": dict(widths=[40, 4, 3], act="linear", k=3, C_W=1.0, C_b=0.0),
    "linear-k2": dict(widths=[4, 300, 5], act="linear", k=2, C_W=1.3, C_b=0.1),
    "linear-k4": dict(widths=[4, 6, 3, 4], act="linear", k=4, C_W=[1.0, 1.1, 0.9, 1.2], C_b=[0.0, 0.2, 0.0, 0.1]),
}
EXPECTED = {"relu-4": "chi2", "relu-mixed": "chi2", "leaky-4": "chi2", "leaky-wide": "chi2",
            "perceptron": "chi2", "linear-k1": "chi2", "linear-k3": "wishart",
            "linear-k3-wide": "wishart", "linear-k2": "wishart", "linear-k4": "wishart"}


def _run(case, sampler, seed):
    c = dict(AGREE[case])
    return mcsim.simulate(cfg_of(c.pop("widths"), c.pop("act"), c.pop("k"), sampler, seed, **c),
                          progress="off")


@pytest.mark.parametrize("case", list(AGREE))
def test_every_statistic_agrees_with_markov(case):
    c = AGREE[case]
    assert cfg_of(c["widths"], c["act"], c["k"], "auto").ensemble.sampler == EXPECTED[case]
    a, b = _run(case, "markov", 101), _run(case, "auto", 202)
    assert b.config.ensemble.sampler == EXPECTED[case]
    for l in a.layers[1:]:
        for name in ("metric", "vertex", "six_point", "kurtosis"):
            x, y = getattr(a.layer(l), name), getattr(b.layer(l), name)
            err = np.sqrt(x.stderr ** 2 + y.stderr ** 2)
            assert np.all(err > 0), (name, l)
            z = np.abs(x.mean - y.mean) / err
            assert z.max() < 5, (case, l, name, z.max())


@pytest.mark.parametrize("act, per_width, sampler", [("relu", 5.0, "chi2"), ("linear", 2.0, "chi2"),
                                                     ("linear", 2.0, "wishart")])
def test_fourth_moment_ratio_is_exact(act, per_width, sampler):
    """E[z^4] / E[z^2]^2 = 3 + kurtosis = 3 prod_{l' < l} (1 + c / n_l') with C_b = 0
    (c = 5 for ReLU, 2 for linear), exactly at any width (wishart: k = 1, named)."""
    widths = [4, 6, 3, 5, 2]
    cfg = cfg_of(widths, act, 1, "auto" if sampler == "chi2" else sampler, seed=9, C_W=1.7,
                 networks=1 << 18, stats=["metric", "vertex"])
    assert cfg.ensemble.sampler == sampler
    res = mcsim.simulate(cfg, progress="off")
    for l in res.layers[1:]:
        exact = 3 * np.prod([1 + per_width / n for n in widths[:l - 1]])
        est = res.layer(l).kurtosis
        z = abs(3 + est.mean[0] - exact) / est.stderr[0]
        assert z < 5, (act, l, 3 + est.mean[0], exact, z)


# --- choice, keying, resume ---------------------------------------------------------------
def test_auto_choice_and_explicit_samplers():
    assert cfg_of([4, 4], "tanh", 1, "auto").ensemble.sampler == "markov"
    assert cfg_of([4, 4], "relu", 2, "auto").ensemble.sampler == "markov"
    assert cfg_of([4, 4], "relu", 1, "auto", weights="uniform").ensemble.sampler == "dense"
    assert cfg_of([4, 4], "relu", 1, "markov").ensemble.sampler == "markov"
    assert cfg_of([4, 4], "relu", 1, "markov").ensemble.auto is False
    assert cfg_of([4, 4], "relu", 1, "auto").ensemble.auto is True
    with pytest.raises(ConfigError, match="ensemble.sampler"):
        cfg_of([4, 4], "relu", 2, "chi2")
    with pytest.raises(ConfigError, match="ensemble.sampler"):
        cfg_of([4, 4], "tanh", 2, "wishart")
    # the stored configuration names the backend that ran, never "auto"
    assert cfg_of([4, 4], "linear", 2, "auto").to_dict()["ensemble"]["sampler"] == "wishart"
    # default (no sampler key) is auto
    raw = cfg_of([4, 4], "relu", 1, "auto").to_dict()
    del raw["ensemble"]["sampler"]
    assert config_from_dict(raw).ensemble.sampler == "chi2"


@pytest.mark.parametrize("act, k", [("relu", 1), ("leaky_relu", 1), ("linear", 3)])
def test_numbers_depend_only_on_block_and_network(act, k):
    from mcsim.kernels.jit import set_threads
    from mcsim.samplers import make_sampler
    cfg = cfg_of([300, 5, 4], act, k, "auto")
    s = make_sampler(cfg, ("gram",))
    m = k * (k + 1) // 2
    whole = np.empty((4, 256, 2, m))
    s.sample(3, 4, whole)
    parts = np.empty((4, 256, 2, m))
    set_threads(1)
    try:
        s.sample(3, 1, parts[:1])
        s.sample(4, 3, parts[1:])
    finally:
        set_threads(None)
    assert np.array_equal(whole, parts)
    assert np.all(np.isfinite(whole)) and len(np.unique(whole[:, :, 0, 0])) > 500


def test_auto_resumes_a_file_with_its_own_sampler(tmp_path):
    path = tmp_path / "run.h5"
    part = cfg_of([4, 5, 3], "relu", 1, "markov", networks=1024)
    mcsim.simulate(part, output=path, progress="off")
    full_auto = cfg_of([4, 5, 3], "relu", 1, "auto", networks=2048)
    assert full_auto.ensemble.sampler == "chi2"
    resumed = mcsim.simulate(full_auto, output=path, progress="off")
    assert resumed.config.ensemble.sampler == "markov"
    ref = mcsim.simulate(cfg_of([4, 5, 3], "relu", 1, "markov", networks=2048), progress="off")
    for l in ref.layers:
        assert np.array_equal(ref.layer(l).vertex.mean, resumed.layer(l).vertex.mean)
    # an explicit other sampler is refused (the file is unchanged)
    with pytest.raises(mcsim.errors.ResumeError, match="sampler"):
        mcsim.simulate(cfg_of([4, 5, 3], "relu", 1, "chi2", networks=4096), output=path, progress="off")


# --- chi2 version 2 (batches of networks; now chi2_v2) and chi2_v1 -----------------------
@pytest.mark.parametrize("act, widths", [("relu", [300, 5, 40]), ("leaky_relu", [4, 1000, 7]),
                                         ("perceptron", [129, 3]), ("linear", [6, 2])])
def test_chi2_batch_network_numbers_independent_of_batch_and_threads(act, widths):
    """A network's numbers depend on (key, block, network) only: network 0 of blocks 3..9
    computed with 299 other networks per block (full batches, two threads) equals the same
    networks computed as blocks of one network (7 lanes of a batch, the rest dummy lanes),
    one block per call, and in other block groupings."""
    from mcsim.kernels import chi2_batch, rng
    from mcsim.kernels.activations import LEAKY_RELU, LINEAR, PERCEPTRON, RELU
    from mcsim.kernels.jit import set_threads
    code = {"relu": RELU, "leaky_relu": LEAKY_RELU, "perceptron": PERCEPTRON, "linear": LINEAR}[act]
    key = rng.seed_key(17)
    args = (np.array([[1.0, -0.5, 2.0]]), np.array(widths, dtype=np.int64),
            np.full(len(widths), 1.9), np.full(len(widths), 0.1), code, -0.3)
    L1 = len(widths) - 1
    wide = np.empty((7, 300, L1, 1))
    chi2_batch.sample_chi2(key, 3, 7, 300, *args, wide)
    grouped = np.empty((7, 300, L1, 1))
    set_threads(1)
    try:
        for lo, hi in ((0, 1), (1, 4), (4, 7)):
            chi2_batch.sample_chi2(key, 3 + lo, hi - lo, 300, *args, grouped[lo:hi])
        single = np.empty((7, 1, L1, 1))
        for b in range(7):
            chi2_batch.sample_chi2(key, 3 + b, 1, 1, *args, single[b:b + 1])
    finally:
        set_threads(None)
    assert np.array_equal(wide, grouped)
    assert np.array_equal(wide[:, :1], single)
    assert np.all(np.isfinite(wide)) and len(np.unique(wide[:, :, -1])) > (20 if act == "perceptron" else 1000)


def _as_written_by(path, kept, version):
    """Rewrite a file of the kept sampler ``kept`` (chi2_v1, chi2_v2, wishart_v2) as mcsim
    wrote it when that was chi2 (wishart): that name in the stored configuration and the
    root attributes, and ``sampler_version`` as then (version 1: none, before the attribute
    existed)."""
    import json
    import h5py
    name = kept.split("_v")[0]
    with h5py.File(path, "r+") as f:
        raw = json.loads(f.attrs["config_json"])
        assert raw["ensemble"]["sampler"] == kept and f.attrs["sampler_version"] == version
        raw["ensemble"]["sampler"] = name
        f.attrs["config_json"] = json.dumps(raw)
        f.attrs["sampler"] = name
        if version == 1:
            del f.attrs["sampler_version"]


@pytest.mark.parametrize("kept, version", [("chi2_v1", 1), ("chi2_v2", 2), ("wishart_v2", 2)])
def test_a_file_of_an_earlier_chi2_resumes_with_its_kernel_bitwise(kept, version, tmp_path):
    """(and of wishart version 2)"""
    path = tmp_path / "old.h5"
    name = kept.split("_v")[0]
    widths, act, k = ([300, 5, 3], "relu", 1) if name == "chi2" else ([30, 5, 3], "linear", 2)
    mcsim.simulate(cfg_of(widths, act, k, kept, networks=1024), output=path, progress="off")
    _as_written_by(path, kept, version)
    assert mcsim.open_result(path).config.ensemble.sampler == kept
    # sampler = "auto" extends it with the kept kernel, bitwise as one run of it ...
    resumed = mcsim.simulate(cfg_of(widths, act, k, "auto", networks=2048), output=path,
                             progress="off")
    assert resumed.config.ensemble.sampler == kept
    ref = mcsim.simulate(cfg_of(widths, act, k, kept, networks=2048), progress="off")
    new = mcsim.simulate(cfg_of(widths, act, k, "auto", networks=2048), progress="off")
    assert new.config.ensemble.sampler == name
    for l in ref.layers[1:]:
        assert np.array_equal(ref.layer(l).vertex.mean, resumed.layer(l).vertex.mean)
        assert not np.array_equal(new.layer(l).vertex.mean, resumed.layer(l).vertex.mean)
    import h5py
    with h5py.File(path, "r") as f:
        assert f.attrs["sampler"] == kept and f.attrs["sampler_version"] == version
    # ... and chi2 (today's version) named explicitly is refused: other numbers (file unchanged)
    with pytest.raises(mcsim.errors.ResumeError, match="sampler"):
        mcsim.simulate(cfg_of(widths, act, k, name, networks=4096), output=path, progress="off")


# --- wishart version 3 (pairs), version 2 (batches of networks) and wishart_v1 -------------
def _bartlett_draws(version, key, block, n, k, m):
    """(m, f, k, k): A A^T of the factors f of streams (key, block, 0..m-1): version 2 one
    factor per stream, version 3 two successive factors (the second from the first's kept
    halves of the chi-squared and normal pairs)."""
    from mcsim.kernels import wishart_batch, wishart_pairs
    if version == 2:
        W = np.empty((m, k, k))
        wishart_batch.draw_bartlett_batch(key, block, n, W)
        return W[:, None]
    W = np.empty((m, 2, k, k))
    wishart_pairs.draw_bartlett_pairs(key, block, n, W)
    return W


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("n, k", [(3, 3), (50, 2), (7, 4), (2, 3), (1000, 3)])
def test_bartlett_factor_against_scipy(n, k, version):
    """A A^T ~ Wishart_k(n, I) (singular for n < k): v^T A A^T v ~ |v|^2 chi^2_n for fixed v
    (Kolmogorov-Smirnov, three directions), and the entries' means and variances
    (E W = n I, Var W_ab = n (1 + [a = b])) within 5 standard errors; version 3: for both
    factors of a stream, and the two uncorrelated (every pair of entries, 5 standard
    errors of a correlation: 1 / sqrt(m))."""
    from mcsim.kernels import rng
    m = 40_192
    draws = _bartlett_draws(version, rng.seed_key(31 + n), 2, n, k, m)
    for f in range(draws.shape[1]):
        W = draws[:, f]
        assert np.array_equal(W, np.transpose(W, (0, 2, 1)))
        if n < k:
            assert np.all(np.linalg.matrix_rank(W[:200]) == n)
        for v in (np.eye(k)[0], np.eye(k)[k - 1], np.arange(1.0, k + 1)):
            q = np.einsum("a,mab,b->m", v, W, v) / (v @ v)
            assert stats.kstest(q, "chi2", args=(n,)).pvalue > 1e-4, (f, v)
        mean, var = np.full((k, k), 0.0) + n * np.eye(k), n * (1.0 + np.eye(k))
        z = np.abs(W.mean(0) - mean) / np.sqrt(var / m)
        assert z.max() < 5, (f, z)
        # var of an entry: its 4th moment about the mean has scale var^2 (3 var^2 for Gaussian-ish)
        zv = np.abs(W.var(0) - var) / np.sqrt(W.var(0) ** 2 * 10 / m)
        assert zv.max() < 5, (f, zv)
    if version == 3:
        iu = np.triu_indices(k)
        a, b = draws[:, 0][:, iu[0], iu[1]], draws[:, 1][:, iu[0], iu[1]]
        corr = np.corrcoef(a.T, b.T)[:len(iu[0]), len(iu[0]):]
        assert np.abs(corr).max() * np.sqrt(m) < 5, corr


@pytest.mark.parametrize("module", ["wishart_batch", "wishart_pairs"])
@pytest.mark.parametrize("widths, k", [([300, 5, 40], 2), ([6, 2, 4], 3), ([9, 3, 7, 5], 3)])
def test_wishart_batch_network_numbers_independent_of_batch_and_threads(widths, k, module):
    """As for chi2: network numbers depend on (key, block, network) only (full batches and
    two threads, one-network blocks, other block groupings); with n < k in one layer
    (version 3, odd k: the chi-squared and normal pairs span layers)."""
    import importlib
    from mcsim.kernels import rng
    kernels = importlib.import_module(f"mcsim.kernels.{module}")
    from mcsim.kernels.activations import LINEAR
    from mcsim.kernels.jit import set_threads
    key = rng.seed_key(23)
    args = (np.array(INPUTS[:k]), np.array(widths, dtype=np.int64),
            np.full(len(widths), 1.3), np.full(len(widths), 0.1), LINEAR, 0.0)
    L1, m = len(widths) - 1, k * (k + 1) // 2
    wide = np.empty((7, 300, L1, m))
    kernels.sample_wishart(key, 3, 7, 300, *args, wide)
    grouped = np.empty((7, 300, L1, m))
    set_threads(1)
    try:
        for lo, hi in ((0, 1), (1, 4), (4, 7)):
            kernels.sample_wishart(key, 3 + lo, hi - lo, 300, *args, grouped[lo:hi])
        single = np.empty((7, 1, L1, m))
        for b in range(7):
            kernels.sample_wishart(key, 3 + b, 1, 1, *args, single[b:b + 1])
    finally:
        set_threads(None)
    assert np.array_equal(wide, grouped)
    assert np.array_equal(wide[:, :1], single)
    assert np.all(np.isfinite(wide)) and len(np.unique(wide[:, :, -1, 1])) > 1000


@pytest.mark.parametrize("sampler", ["wishart", "wishart_v2"])
def test_wishart_keeps_repeated_inputs_bitwise_equal(sampler):
    """Identical inputs 0 and 2 (a singular Ghat): their Ghat entries stay bitwise equal
    (psd_cholesky's repeated-row rule, lane by lane), and differ from input 1's."""
    from mcsim.samplers import make_sampler
    cfg = config_from_dict({
        "network": {"input_dim": 4, "widths": [5, 2, 40], "activation": "linear", "C_W": 1.1, "C_b": 0.05},
        "inputs": {"values": [INPUTS[0], INPUTS[1], INPUTS[0]]},
        "ensemble": {"networks": 1024, "seed": 4, "sampler": sampler, "block_size": 256},
        "output": {"statistics": ["metric"]}})
    out = np.empty((2, 256, 2, 6))
    make_sampler(cfg, ("gram",)).sample(0, 2, out)
    # packed pairs (0,0) (0,1) (0,2) (1,1) (1,2) (2,2)
    assert np.array_equal(out[..., 0], out[..., 5]) and np.array_equal(out[..., 0], out[..., 2])
    assert np.array_equal(out[..., 1], out[..., 4]) and not np.array_equal(out[..., 0], out[..., 3])


def _as_written_before_version_2(path, sampler):
    """Rewrite a `sampler`_v1 file as mcsim wrote it before that sampler's version 2."""
    import json
    import h5py
    with h5py.File(path, "r+") as f:
        raw = json.loads(f.attrs["config_json"])
        assert raw["ensemble"]["sampler"] == sampler + "_v1" and f.attrs["sampler_version"] == 1
        raw["ensemble"]["sampler"] = sampler
        f.attrs["config_json"] = json.dumps(raw)
        f.attrs["sampler"] = sampler
        del f.attrs["sampler_version"]


def test_a_file_of_wishart_before_version_2_resumes_with_its_kernel_bitwise(tmp_path):
    import h5py
    path = tmp_path / "old.h5"
    widths = [30, 5, 3]
    mcsim.simulate(cfg_of(widths, "linear", 2, "wishart_v1", networks=1024), output=path, progress="off")
    _as_written_before_version_2(path, "wishart")
    assert mcsim.open_result(path).config.ensemble.sampler == "wishart_v1"
    resumed = mcsim.simulate(cfg_of(widths, "linear", 2, "auto", networks=2048), output=path,
                             progress="off")
    assert resumed.config.ensemble.sampler == "wishart_v1"
    ref = mcsim.simulate(cfg_of(widths, "linear", 2, "wishart_v1", networks=2048), progress="off")
    new = mcsim.simulate(cfg_of(widths, "linear", 2, "auto", networks=2048), progress="off")
    assert new.config.ensemble.sampler == "wishart"
    for l in ref.layers[1:]:
        assert np.array_equal(ref.layer(l).vertex.mean, resumed.layer(l).vertex.mean)
        assert not np.array_equal(new.layer(l).vertex.mean, resumed.layer(l).vertex.mean)
    with h5py.File(path, "r") as f:
        assert f.attrs["sampler"] == "wishart_v1" and f.attrs["sampler_version"] == 1
    with pytest.raises(mcsim.errors.ResumeError, match="sampler"):
        mcsim.simulate(cfg_of(widths, "linear", 2, "wishart", networks=4096), output=path, progress="off")
    # a new wishart file records version 3 and resumes as wishart
    path2 = tmp_path / "new.h5"
    mcsim.simulate(cfg_of(widths, "linear", 2, "auto", networks=1024), output=path2, progress="off")
    with h5py.File(path2, "r") as f:
        assert f.attrs["sampler"] == "wishart" and f.attrs["sampler_version"] == 3
    res = mcsim.simulate(cfg_of(widths, "linear", 2, "auto", networks=2048), output=path2, progress="off")
    assert res.config.ensemble.sampler == "wishart"
    assert np.array_equal(res.layer(3).vertex.mean, new.layer(3).vertex.mean)
