"""Non-Gaussian weight and bias laws: the statistics of z itself (z_kurtosis, z_four_point).

Independent sources:
- a direct explicit-weight NumPy simulation of one unit's z (NumPy's own generators, the
  last layer's weights and bias drawn too), with jackknife errors over groups of networks;
- an exact recursion for ReLU with one input and any symmetric laws (derived below, not from
  mcsim's estimator);
- the exact Gaussian result for ReLU with zero bias, 3 prod_l (1 + 5/n_l) - 3;
- closed forms of E[sin z_a sin z_b] over the exact law of z^(1) (characteristic functions)
  for the weight-cumulant term of the 1/n metric correction.
Random tests: fixed seeds, 5 standard errors (both estimates' errors combined).
"""
from __future__ import annotations

import numpy as np
import pytest

from mcsim.config import ConfigError, config_from_dict
from mcsim.laws import parse_law
from mcsim.run.driver import simulate
from tests.conftest import run_cli, write_config

Z_MAX = 5.0
STUDENT = {"name": "student_t", "nu": 10}     # nu > 8: finite eighth moment, honest error bars


def _config(widths, inputs, act, C_W, C_b, weights="gaussian", biases="gaussian", networks=2 ** 17,
            seed=1, stats=("metric", "vertex", "z_kurtosis", "z_four_point"), sampler="dense"):
    return config_from_dict({
        "network": {"input_dim": len(inputs[0]), "widths": list(widths), "activation": act,
                    "C_W": C_W, "C_b": C_b},
        "inputs": {"values": [list(map(float, x)) for x in inputs]},
        "ensemble": {"networks": networks, "seed": seed, "sampler": sampler, "weights": weights,
                     "biases": biases, "block_size": 1024, "jackknife_bins": 32},
        "output": {"statistics": list(stats)}})


# -- the direct simulation -------------------------------------------------------------
def _draw(rng, law, shape):
    """Unit-variance draws of a law (mcsim.laws) with NumPy's generator."""
    law = parse_law(law)
    if law.name == "gaussian":
        return rng.standard_normal(shape)
    if law.name == "uniform":
        return rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), shape)
    if law.name == "rademacher":
        return rng.choice([-1.0, 1.0], shape)
    return rng.standard_t(law.nu, shape) * np.sqrt((law.nu - 2) / law.nu)


_ACT = {"relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh}


def direct_z(inputs, widths, act, C_W, C_b, weights, biases, networks, seed, chunk=100_000):
    """(networks, k): the preactivations of unit 0 of the last layer, explicit weights."""
    rng = np.random.default_rng(seed)
    x = np.asarray(inputs, dtype=float)              # (k, n0)
    out = []
    for start in range(0, networks, chunk):
        N = min(chunk, networks - start)
        h = np.broadcast_to(x, (N,) + x.shape)      # (N, k, n_in)
        for l, n in enumerate(widths):
            n = 1 if l == len(widths) - 1 else n      # one unit of the last layer is enough
            n_in = h.shape[-1]
            W = _draw(rng, weights, (N, n, n_in)) * np.sqrt(C_W / n_in)
            b = _draw(rng, biases, (N, n)) * np.sqrt(C_b)
            z = b[:, None, :] + np.einsum("nij,naj->nai", W, h)
            h = _ACT[act](z)
        out.append(z[:, :, 0])
    return np.concatenate(out)


def _jackknife(fn, z, groups=50):
    """fn(z) and its delete-one-group jackknife standard error."""
    parts = np.array_split(np.arange(len(z)), groups)
    full = fn(z)
    loo = np.array([fn(np.delete(z, p, axis=0)) for p in parts])
    err = np.sqrt((groups - 1) / groups * np.sum((loo - loo.mean(axis=0)) ** 2, axis=0))
    return full, err


def _kurtosis(z):
    return np.mean(z ** 4, axis=0) / np.mean(z ** 2, axis=0) ** 2 - 3.0


def _four_point(z):
    """Fourth joint cumulants of the columns of z (mean zero), sorted quadruples."""
    import itertools
    k = z.shape[1]
    G = z.T @ z / len(z)
    vals = []
    for a, b, c, d in itertools.combinations_with_replacement(range(k), 4):
        m4 = np.mean(z[:, a] * z[:, b] * z[:, c] * z[:, d])
        vals.append(m4 - G[a, b] * G[c, d] - G[a, c] * G[b, d] - G[a, d] * G[b, c])
    return np.array(vals)


def _agree(x, sx, y, sy):
    dev = (np.asarray(x) - np.asarray(y)) / np.sqrt(np.asarray(sx) ** 2 + np.asarray(sy) ** 2)
    print(f"deviations (sigma): {np.round(np.atleast_1d(dev), 2)}")   # shown with pytest -s
    assert np.all(np.abs(dev) < Z_MAX), f"deviations {dev} sigma: {x} +- {sx} vs {y} +- {sy}"
    return dev


# -- the issue's configuration -------------------------------------------------------------
ISSUE = dict(widths=(4, 4, 4, 1), inputs=[[1.0]], act="relu", C_W=2.0, C_b=0.0)


def exact_relu_kurtosis(inputs, widths, C_W, C_b, weights, biases, cross=False):
    """Excess kurtosis of z^(l), l = 1..L, for ReLU, one input and any symmetric laws, exact.

    A_l = E[z^4], B_l = E[Ghat^2], g_l = E[z^2] of one unit of layer l. Given layer l-1 the
    units of layer l are independent and symmetric, so E[s^2] = g/2, E[s^4] = A/2 and
    E[s_i^2 s_j^2] = B/4 for i != j (s = relu(z)), and
        g_l = C_b + C_W g_{l-1} / 2
        B_l = C_b^2 + C_b C_W g_{l-1} + (C_W/n)^2 (n A_{l-1}/2 + n (n-1) B_{l-1}/4)
        A_l = 3 B_l + kappa4_W (C_W/n)^2 n A_{l-1}/2 + kappa4_b C_b^2      (n = n_{l-1})
    Layer 1: B_1 = g_1^2 with g_1 = C_b + C_W x.x/n_0, A_1 = 3 B_1 + kappa4_W (C_W/n_0)^2
    sum_j x_j^4 + kappa4_b C_b^2. ``cross``: also return 3 B_l / g_l^2 - 3, the cross-unit
    kurtosis 3 Var(Ghat) / G^2.
    """
    x = np.asarray(inputs, dtype=float)[0]
    kw, kb = parse_law(weights).kappa4, parse_law(biases).kappa4
    n0 = x.size
    g = C_b + C_W * x @ x / n0
    B = g ** 2
    A = 3 * B + kw * (C_W / n0) ** 2 * np.sum(x ** 4) + kb * C_b ** 2
    out, crossed = [A / g ** 2 - 3], [3 * B / g ** 2 - 3]
    for n in widths[:-1]:
        B_new = C_b ** 2 + C_b * C_W * g + (C_W / n) ** 2 * (n * A / 2 + n * (n - 1) * B / 4)
        A = 3 * B_new + kw * (C_W / n) ** 2 * n * A / 2 + kb * C_b ** 2
        B, g = B_new, C_b + C_W * g / 2
        out.append(A / g ** 2 - 3)
        crossed.append(3 * B / g ** 2 - 3)
    return (np.array(out), np.array(crossed)) if cross else np.array(out)


@pytest.mark.parametrize("weights", ["gaussian", "uniform", "rademacher", STUDENT])
def test_issue_table_against_direct_simulation(weights):
    """ReLU, C_W = 2, C_b = 0, widths [4, 4, 4, 1], input e_1: z_kurtosis of the last layer
    against E[z^4]/E[z^2]^2 - 3 of a direct simulation."""
    res = simulate(_config(**ISSUE, weights=weights, seed=5), progress="none")
    est = res.layer(4)["z_kurtosis"]
    z = direct_z(ISSUE["inputs"], ISSUE["widths"], "relu", 2.0, 0.0, weights, "gaussian",
                 networks=400_000, seed=7)
    ref, err = _jackknife(_kurtosis, z)
    _agree(est.mean, est.stderr, ref, err)
    assert abs(ref[0] - exact_relu_kurtosis(**_exact_args(ISSUE, weights))[-1]) < Z_MAX * err[0]


def _exact_args(case, weights, biases="gaussian"):
    return dict(inputs=case["inputs"], widths=case["widths"], C_W=case["C_W"], C_b=case["C_b"],
                weights=weights, biases=biases)


@pytest.mark.parametrize("weights,biases", [("rademacher", "uniform"), ("uniform", "rademacher"),
                                            (STUDENT, STUDENT), ("gaussian", "rademacher")])
def test_relu_exact_recursion_every_layer(weights, biases):
    """ReLU, one input, C_b > 0, weight and bias laws: z_kurtosis of every layer against the
    exact recursion (layer 1 exactly, the others within 5 standard errors)."""
    case = dict(widths=(3, 4, 3, 2), inputs=[[1.0, -0.5]], act="relu", C_W=1.7, C_b=0.4)
    res = simulate(_config(**case, weights=weights, biases=biases, seed=11), progress="none")
    exact = exact_relu_kurtosis(**_exact_args(case, weights, biases))
    assert res.layer(1)["z_kurtosis"].mean[0] == pytest.approx(exact[0], rel=1e-12, abs=1e-12)
    for l in (2, 3, 4):
        est = res.layer(l)["z_kurtosis"]
        _agree(est.mean[0], est.stderr[0], exact[l - 1], 0.0)


@pytest.mark.parametrize("weights,biases", [("rademacher", "uniform"), (STUDENT, "rademacher"),
                                            ("uniform", STUDENT)])
def test_four_point_tensor_against_direct_simulation(weights, biases):
    """tanh, two inputs, non-Gaussian weights and biases: every entry of z_four_point and
    z_kurtosis of the last layer against a direct simulation."""
    case = dict(widths=(3, 3, 2), inputs=[[1.0, 0.3], [-0.4, 0.9]], act="tanh", C_W=1.5, C_b=0.3)
    res = simulate(_config(**case, weights=weights, biases=biases, seed=3), progress="none")
    z = direct_z(case["inputs"], case["widths"], "tanh", case["C_W"], case["C_b"], weights, biases,
                 networks=300_000, seed=13)
    four = res.layer(3)["z_four_point"]
    from mcsim.stats.indexing import quads
    idx = tuple(quads(2).T)
    ref, err = _jackknife(_four_point, z)
    _agree(four.mean[idx], four.stderr[idx], ref, err)
    kurt = res.layer(3)["z_kurtosis"]
    ref, err = _jackknife(_kurtosis, z)
    _agree(kurt.mean, kurt.stderr, ref, err)


@pytest.mark.parametrize("sampler", ["markov", "dense"])
def test_gaussian_exact_and_unchanged(sampler):
    """Gaussian laws: ReLU, zero bias: the excess kurtosis is 3 prod_l (1 + 5/n_l) - 3 exactly;
    z_kurtosis equals kurtosis bitwise (the unit cumulant is 0), and z statistics are not
    added to a Gaussian run's statistics."""
    widths = (4, 5, 3, 2)
    cfg = _config(widths, [[1.0, 0.5, -0.2]], "relu", 2.0, 0.0, networks=2 ** 17, sampler=sampler,
                  stats=("metric", "vertex", "z_kurtosis"))
    res = simulate(cfg, progress="none")
    for l in range(2, 5):
        e = res.layer(l)
        np.testing.assert_array_equal(e["z_kurtosis"].mean, e["kurtosis"].mean)
        np.testing.assert_array_equal(e["z_kurtosis"].stderr, e["kurtosis"].stderr)
        exact = 3 * np.prod([1 + 5 / n for n in widths[:l - 1]]) - 3
        _agree(e["z_kurtosis"].mean[0], e["z_kurtosis"].stderr[0], exact, 0.0)
    plain = _config(widths, [[1.0, 0.5, -0.2]], "relu", 2.0, 0.0, stats=("metric", "vertex"))
    assert "z_kurtosis" not in plain.output.statistics
    assert "biases" not in plain.to_dict()["ensemble"]
    laws = _config(widths, [[1.0, 0.5, -0.2]], "relu", 2.0, 0.0, weights=STUDENT,
                   stats=("metric", "vertex"))
    assert "z_kurtosis" in laws.output.statistics
    assert config_from_dict(laws.to_dict()).to_dict() == laws.to_dict()


# -- theory ------------------------------------------------------------------------------
@pytest.mark.parametrize("weights,biases", [("rademacher", "gaussian"), ("uniform", "rademacher"),
                                            (STUDENT, "gaussian")])
def test_theory_z_kurtosis_is_the_exact_one_to_order_1_over_n(weights, biases):
    """ReLU at criticality (C_b = 0) and with C_b > 0 in the last layer only: the predicted
    z_kurtosis agrees with the exact recursion up to O(1/n^2) (checked at n = 10^5: the
    weight-law term itself is 6 kappa4_W / n per layer)."""
    from mcsim.theory.weight_laws import predict_laws
    n, L = 100_000, 5
    x = np.ones((1, n))
    C_b = [0.0] * (L - 1) + [0.3]
    pred = predict_laws("relu", x, [n] * L, 2.0, C_b, weights=parse_law(weights),
                        biases=parse_law(biases), ntk=False)
    # exact recursion with the bias only in the last layer: run it on the Gaussian-bias
    # network and add the last layer's bias (independent of the rest) by hand
    kw, kb = parse_law(weights).kappa4, parse_law(biases).kappa4
    ex = exact_relu_kurtosis(x, [n] * L, 2.0, 0.0, weights, "gaussian")
    g = 2.0                                       # E[z^2] of every layer without bias
    A, Gb = (ex[-1] + 3) * g ** 2, 0.3            # E[z^4] without the last bias; C_b^(L)
    exact_last = (A + 6 * Gb * g + (3 + kb) * Gb ** 2) / (g + Gb) ** 2 - 3
    got = np.array([pred.layer(l).z_kurtosis[0] for l in range(1, L + 1)])
    np.testing.assert_allclose(got[:-1] * n, ex[:-1] * n, atol=0.05)
    assert abs(got[-1] - exact_last) * n < 0.05
    stand_in = np.array([pred.layer(l).kurtosis[0] for l in range(2, L)])   # without U
    assert np.all(np.abs(stand_in - ex[1:-1]) * n > 0.9 * 6 * abs(kw))


@pytest.mark.parametrize("weights", ["rademacher", "uniform"])
def test_theory_metric_correction_weight_term(weights):
    """sin, two inputs: the weight law of layer 1 shifts G^(2) at order 1/n_0. Exact:
    E[sin z_a sin z_b] = (E cos(z_a - z_b) - E cos(z_a + z_b)) / 2 with characteristic
    functions of the exact law of z^(1); against K + G1/n_1 from the theory."""
    from mcsim.theory.weight_laws import predict_laws
    rng = np.random.default_rng(0)
    n0, n1, C_W, C_b = 300, 50, 1.6, 0.2
    x = rng.standard_normal((2, n0))
    sw = np.sqrt(C_W / n0)

    def phi(t):                                  # E exp(i t w) of one unit-variance weight
        if weights == "rademacher":
            return np.cos(t)
        return np.sin(np.sqrt(3) * t) / (np.sqrt(3) * t)

    G2 = np.empty((2, 2))
    for a in range(2):
        for b in range(2):
            minus = np.prod(phi(sw * (x[a] - x[b]))) if a != b else 1.0
            plus = np.exp(-2 * C_b) * np.prod(phi(sw * (x[a] + x[b])))
            G2[a, b] = C_b + C_W * 0.5 * (minus - plus)
    pred = predict_laws("sin", x, [n1, n1, 1], C_W, C_b, weights=parse_law(weights), ntk=False)
    gauss = predict_laws("sin", x, [n1, n1, 1], C_W, C_b, ntk=False)
    p = pred.layer(2)
    shift = p.correction / n1                      # the weight-law term (Gaussian G1(2) = 0)
    np.testing.assert_array_equal(gauss.layer(2).correction, 0.0)
    assert np.max(np.abs(shift)) > 20 * np.max(np.abs(G2 - p.metric))
    np.testing.assert_allclose(G2 - p.kernel, shift, rtol=0.05, atol=0)


# -- storage, compare and bad input -------------------------------------------------------------
def test_compare_and_prediction_file(tmp_path):
    path = write_config(tmp_path, """
        [network]
        input_dim = 2
        widths = [6, 6, 1]
        activation = "relu"
        C_W = 2.0
        [inputs]
        values = [[1.0, 0.5]]
        [ensemble]
        networks = 4096
        sampler = "dense"
        weights = "rademacher"
        biases = {name = "student_t", nu = 9}
    """)
    out = tmp_path / "run.h5"
    assert run_cli("run", path, "-o", out).returncode == 0
    proc = run_cli("compare", out)
    assert proc.returncode == 0 and "zkurt[1]" in proc.stdout and "z_kurtosis:" in proc.stdout
    import h5py
    with h5py.File(out) as f:
        d = f["layers/3/z_kurtosis"]
        assert "weight and bias laws" in d.attrs["description"]
        assert "cross-unit" in f["layers/3/kurtosis"].attrs["description"]
    pfile = tmp_path / "pred.h5"
    proc = run_cli("theory", path, "-o", pfile)
    assert proc.returncode == 0 and "kappa4_W = -2" in proc.stdout
    with h5py.File(pfile) as f:
        assert f["layers/3/z_kurtosis"].shape == (1,)
        assert f["layers/3/z_four_point"].shape == (1, 1, 1, 1)


@pytest.mark.parametrize("ensemble,key", [
    ('weights = {name = "student_t", nu = 4}\nsampler = "dense"', "ensemble.weights"),
    ('biases = {name = "student_t", nu = 3.5}\nsampler = "dense"', "ensemble.biases"),
    ('weights = "uniform"\nsampler = "markov"', "ensemble.weights"),
    ('biases = "rademacher"\nsampler = "markov"', "ensemble.biases"),
    ('weights = "cauchy"\nsampler = "dense"', "ensemble.weights"),
    ('biases = "laplace"\nsampler = "dense"', "ensemble.biases"),
    ('weights = {name = "student_t"}\nsampler = "dense"', "ensemble.weights"),
])
def test_bad_laws_exit_2_and_write_nothing(tmp_path, ensemble, key):
    path = write_config(tmp_path, "[network]\ninput_dim = 2\nwidths = [4, 1]\n"
                                  "[ensemble]\nnetworks = 10\n" + ensemble + "\n")
    out = tmp_path / "out.h5"
    for cmd in (("run", path, "-o", out), ("theory", path, "-o", out)):
        proc = run_cli(*cmd)
        assert proc.returncode == 2, proc.stderr
        assert key in proc.stderr and proc.stderr.count("error") == 1
        assert not out.exists() and sorted(tmp_path.iterdir()) == [path]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        from mcsim.config import load_config
        load_config(path)
