"""Samplers: markov and dense agree in distribution; exact facts; determinism.

Statistical checks are z-tests at 5 standard errors, with the standard errors estimated
from the samples themselves, and fixed seeds (so the outcome is deterministic).
"""

import numba
import numpy as np
import pytest

from mcsim.stats import indexing as ix
from mcsim.activations import get_activation
from mcsim.kernels import common, dense, markov, rng

Z_MAX = 5.0


def _run(sampler, seed, inputs, widths, C_W, C_b, act="relu", n_blocks=4, block_size=1000,
         first_block=0, weights="gaussian"):
    act = get_activation(act)
    k = inputs.shape[0]
    L = len(widths)
    out = np.empty((n_blocks, block_size, L - 1, k * (k + 1) // 2))
    args = (rng.seed_key(seed), first_block, n_blocks, block_size,
            np.ascontiguousarray(inputs, dtype=np.float64), np.asarray(widths, np.int64),
            np.asarray(C_W, np.float64), np.asarray(C_b, np.float64), act.code, act.param)
    if sampler == "markov":
        markov.sample_markov(*args, out)
    else:
        dense.sample_dense(*args, dense.WEIGHT_CODES[weights], out)
    return out


def _flat(out):
    return out.reshape(-1, *out.shape[2:])          # (N, L-1, m)


def _z_means(a, b):
    """z statistics of mean differences, per (layer, pair). a, b: (N, S, m)."""
    se2 = a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b)
    return (a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(se2)


def _cov_terms(a):
    d = a - a.mean(axis=0)
    p, q = np.triu_indices(a.shape[-1])
    return d[..., p] * d[..., q]                      # (N, S, m(m+1)/2)


def _z_covs(a, b):
    """z statistics of covariance differences (Cov(Ghat_p, Ghat_q), p <= q, per layer)."""
    return _z_means(_cov_terms(a), _cov_terms(b))


def _expected_linear_metric(inputs, C_W, C_b):
    """E[Ghat^(l)] of a linear network, l = 2..L: exact at any width.

    E[z_a z_b | Ghat^(l)] = Ghat^(l), so E[Ghat^(l+1)] = C_b^(l+1) + C_W^(l+1) E[Ghat^(l)].
    """
    k, n0 = inputs.shape
    G = C_b[0] + C_W[0] / n0 * inputs @ inputs.T
    out = []
    for l in range(1, len(C_W)):
        G = C_b[l] + C_W[l] * G
        out.append(ix.pack_matrix(G))
    return np.array(out)                             # (L-1, m)


INPUTS = np.random.default_rng(7).standard_normal((3, 5))

CASES = {
    "relu-k3": dict(inputs=INPUTS, widths=(6, 4, 8, 5), C_W=(2.0, 1.5, 2.5, 1.0),
                    C_b=(0.1, 0.0, 0.3, 0.2), act="relu"),
    "relu-k1": dict(inputs=INPUTS[:1], widths=(4, 7, 5), C_W=(2.0, 2.0, 1.0),
                    C_b=(0.0, 0.0, 0.0), act="relu"),
    "tanh-k3": dict(inputs=INPUTS, widths=(5, 8, 4, 3), C_W=(1.5, 1.0, 2.0, 1.0),
                    C_b=(0.2, 0.1, 0.0, 0.0), act="tanh"),
    "tanh-k1": dict(inputs=INPUTS[1:2], widths=(4, 6, 2), C_W=(2.0, 1.0, 1.5),
                    C_b=(0.0, 0.5, 0.1), act="tanh"),
    "linear-k3": dict(inputs=INPUTS, widths=(7, 4, 6), C_W=(1.0, 1.2, 0.8),
                      C_b=(0.0, 0.1, 0.2), act="linear"),
    "linear-k1": dict(inputs=INPUTS[2:], widths=(4, 5, 6, 4), C_W=(1.0, 1.2, 0.8, 2.0),
                      C_b=(0.3, 0.0, 0.0, 0.0), act="linear"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_markov_and_dense_agree_in_distribution(case):
    c = CASES[case]
    a = _flat(_run("markov", 11, **c))
    b = _flat(_run("dense", 12, **c))
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    zm = _z_means(a, b)
    zc = _z_covs(a, b)
    assert np.abs(zm).max() < Z_MAX, zm
    assert np.abs(zc).max() < Z_MAX, zc
    # the test has power: a 30 % change of one layer's C_W is seen
    c2 = dict(c, C_W=tuple(v * (1.3 if i == 1 else 1.0) for i, v in enumerate(c["C_W"])))
    b2 = _flat(_run("dense", 12, **c2))
    assert np.abs(_z_means(a, b2)).max() > Z_MAX
    # ... and so is a doubled first width in the covariances (the fluctuations scale as 1/n)
    c3 = dict(c, widths=(2 * c["widths"][0],) + tuple(c["widths"][1:]))
    b3 = _flat(_run("dense", 12, **c3))
    assert np.abs(_z_covs(a, b3)).max() > Z_MAX


@pytest.mark.parametrize("sampler,weights", [("markov", "gaussian"), ("dense", "gaussian"),
                                             ("dense", "uniform"), ("dense", "rademacher")])
def test_linear_network_metric_is_exact(sampler, weights):
    c = CASES["linear-k3"]
    out = _flat(_run(sampler, 3, weights=weights, **c))
    expected = _expected_linear_metric(c["inputs"], np.array(c["C_W"]), np.array(c["C_b"]))
    z = (out.mean(axis=0) - expected) / (out.std(axis=0, ddof=1) / np.sqrt(len(out)))
    assert np.abs(z).max() < Z_MAX, z


@pytest.mark.parametrize("sampler", ["markov", "dense"])
def test_relu_diagonal_metric_is_exact(sampler):
    # E[relu(z)^2 | Ghat] = Ghat_aa / 2 for z ~ N(0, Ghat_aa), so at any width
    # E[Ghat^(l+1)_aa] = C_b^(l+1) + C_W^(l+1) / 2 * E[Ghat^(l)_aa].
    c = CASES["relu-k3"]
    out = _flat(_run(sampler, 4, **c))
    x, C_W, C_b = c["inputs"], c["C_W"], c["C_b"]
    g = C_b[0] + C_W[0] * np.sum(x * x, axis=1) / x.shape[1]
    diag = ix.pair_index(x.shape[0]).diagonal()
    for s in range(out.shape[1]):
        g = C_b[s + 1] + C_W[s + 1] / 2 * g
        y = out[:, s, diag]
        z = (y.mean(axis=0) - g) / (y.std(axis=0, ddof=1) / np.sqrt(len(y)))
        assert np.abs(z).max() < Z_MAX, (s, z)


@pytest.mark.parametrize("weights,kappa", [("gaussian", 0.0), ("uniform", -1.2),
                                          ("rademacher", -2.0)])
@pytest.mark.parametrize("n0,C_b1", [(1, 0.0), (3, 0.3)])
def test_dense_weight_distributions_exact_variance(weights, kappa, n0, C_b1):
    # Linear net, k = 1: Ghat^(2) = C_b2 + C_W2 / n1 sum_i z_i^2 with iid
    # z = b + sum_j W_j x_j, so Var(Ghat^(2)) = C_W2^2 / n1 Var(z^2) and, with kappa the
    # excess kurtosis of the weight distribution,
    #     Var(z^2) = 2 K^2 + kappa (C_W1 / n0)^2 sum_j x_j^4,   K = C_b1 + C_W1 |x|^2 / n0.
    # Checks each distribution's variance and fourth moment (rademacher, n0 = 1, C_b = 0:
    # z^2 is constant, so Ghat^(2) is exact).
    x = np.array([[1.3, -0.4, 0.9][:n0]])
    C_W, C_b, n1 = (1.5, 2.0, 1.0), (C_b1, 0.2, 0.0), 4
    g = _flat(_run("dense", 5, x, (n1, 3, 2), C_W, C_b, act="linear", weights=weights))
    K = C_b1 + C_W[0] * np.sum(x**2) / n0
    var_z2 = 2 * K**2 + kappa * (C_W[0] / n0) ** 2 * np.sum(x**4)
    want_mean = C_b[1] + C_W[1] * K
    want_var = C_W[1] ** 2 / n1 * var_z2
    y = g[:, 0, 0]
    N = len(y)
    assert abs(y.mean() - want_mean) < Z_MAX * y.std() / np.sqrt(N) + 1e-12
    if want_var < 1e-12:
        np.testing.assert_allclose(y, want_mean, rtol=1e-12)
        return
    d = y - y.mean()
    se_var = np.sqrt((np.mean(d**4) - np.mean(d**2) ** 2) / N)
    assert abs(y.var(ddof=1) - want_var) < Z_MAX * se_var


def test_repeated_inputs_and_more_inputs_than_units():
    x = np.random.default_rng(3).standard_normal((3, 4))
    inputs = np.stack([x[0], x[1], x[0], x[2], x[0] + x[1]])   # k = 5, repeats, dependent
    k = inputs.shape[0]
    pi = ix.pair_index(k)
    for act in ("relu", "tanh", "linear"):
        for sampler in ("markov", "dense"):
            out = _run(sampler, 9, inputs, (2, 3, 1, 4), (2.0,) * 4, (0.0, 0.1, 0.0, 0.0),
                       act=act, n_blocks=2, block_size=300)
            assert np.all(np.isfinite(out)), (act, sampler)
            # inputs 0 and 2 are identical: bitwise identical rows of every Ghat
            for c in range(k):
                assert np.array_equal(out[..., pi[0, c]], out[..., pi[2, c]]), (act, sampler)
            G = ix.unpack_matrix(out, k)
            ev = np.linalg.eigvalsh(G)
            assert ev.min() >= -1e-10 * max(ev.max(), 1.0)


def test_dead_relu_network_gives_zero_metric():
    # width 1, no biases: once the unit is dead Ghat = 0 (all-zero Cholesky input)
    out = _run("markov", 1, INPUTS[:2], (1, 1, 1, 1), (2.0,) * 4, (0.0,) * 4, n_blocks=1,
               block_size=2000)
    assert np.all(np.isfinite(out))
    assert np.mean(np.all(out[:, :, -1] == 0.0, axis=-1)) > 0.3


def test_psd_cholesky():
    r = np.random.default_rng(0)
    A = r.standard_normal((4, 4))
    for G in (A @ A.T, A[:, :2] @ A[:, :2].T, np.zeros((4, 4))):
        C = np.empty((4, 4))
        common.psd_cholesky(G, C)
        assert np.array_equal(C, np.tril(C))
        np.testing.assert_allclose(C @ C.T, G, atol=1e-10)
        assert np.all(np.diag(C) >= 0)


def test_independent_of_threads_and_of_block_grouping():
    c = CASES["tanh-k3"]
    results = {}
    for sampler in ("markov", "dense"):
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            results[sampler, threads] = _run(sampler, 21, n_blocks=3, block_size=50,
                                             first_block=10, **c)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        assert np.array_equal(results[sampler, 1], results[sampler, 2])
        # each block's numbers depend only on (key, block, network)
        one = _run(sampler, 21, n_blocks=1, block_size=50, first_block=11, **c)
        assert np.array_equal(one[0], results[sampler, 1][1])
        other_key = _run(sampler, 22, n_blocks=1, block_size=50, first_block=11, **c)
        assert not np.any(other_key[0] == one[0])


def test_single_layer_and_shape_errors():
    out = _run("markov", 1, INPUTS, (4,), (1.0,), (0.0,), n_blocks=2, block_size=3)
    assert out.shape == (2, 3, 0, 6)
    with pytest.raises(ValueError):
        markov.sample_markov(rng.seed_key(0), 0, 2, 3, INPUTS, np.array([4, 4]),
                             np.ones(2), np.zeros(2), 1, 0.0, np.empty((2, 3, 1, 5)))
    with pytest.raises(ValueError):
        dense.sample_dense(rng.seed_key(0), 0, 2, 3, INPUTS, np.array([4, 4]),
                           np.ones(2), np.zeros(2), 1, 0.0, 7, np.empty((2, 3, 1, 6)))


def _fma(a, b, c):
    """a * b + c rounded once (exact rational arithmetic, then one rounding to float64)."""
    from fractions import Fraction
    return float(Fraction(a) * Fraction(b) + Fraction(c))


@pytest.mark.parametrize("generator", ["philox53", "philox32"])
def test_student_t_draws_bitwise_equal_to_ieee_reference(generator):
    # The dense kernel's Student-t row, every element: z / sqrt(chi / nu) with chi the sum of
    # nu squared normals, recomputed here from the stream's own normals (counter layout of
    # kernels/dense.py) with IEEE operations: chi term by term, each fused (a * a + chi
    # rounded once: the kernels' FMA contraction, every target has FMA), then chi / nu,
    # sqrt and the division each correctly rounded (NumPy). Rows of 1..19 cover vector
    # bodies and scalar remainders of every width: fast-math there rewrote x / sqrt(c / nu)
    # per loop part (x * sqrt(nu / c) in the vector body), so the bits depended on the
    # vector width (AVX2 vs AVX-512) and on the position in the row.
    key = rng.stream_key(6, generator)
    nu = 7
    for n in range(1, 20):
        run = (n + 1) // 2
        for network, position in ((0, 0), (3, 5), (11, 40)):
            out, t, u = np.empty(n), np.empty(n + 3), np.empty(n + 3)
            dense._draw(dense.STUDENT_T, nu, key, np.uint64(2), network, position, out, t, u)
            z = np.empty(n)
            rng.fill_normals(key, np.uint64(2), network, position, z)
            chi = [0.0] * n
            for r in range(nu):
                g = np.empty(n)
                rng.fill_normals(key, np.uint64(2), network, position + (r + 1) * run, g)
                chi = [_fma(g[j], g[j], chi[j]) for j in range(n)]
            chi = np.array(chi)
            want = z / np.sqrt(chi / np.float64(nu))
            assert np.array_equal(t[:n], chi), (n, network)
            assert np.array_equal(out, want), (n, network, np.nonzero(out != want)[0])
