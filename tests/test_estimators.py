"""Estimators on synthetic data with known cumulants: unbiased, and calibrated error bars.

Synthetic pair-vectors g = mu + A e with e_i independent Gamma(shape_i, 1) variables have
exactly known mean, covariance and third cumulant:
    E g = mu + A shape,  Cov g = A diag(shape) A^T,  kappa3_pqr = sum_i A_pi A_qi A_ri 2 shape_i.
They are fed through the real block kernel, bins and jackknife (fan_in = 1).
"""
from __future__ import annotations

import numpy as np
import pytest

from mcsim.stats.accumulator import BinnedMoments, MomentState
from mcsim.stats.quantities import Layout
from mcsim.stats.estimators import layer_statistics
from mcsim.stats.indexing import triples, unpack_matrix, unpack_six_point, unpack_vertex
from mcsim.kernels.moments import block_moments

K = 2                      # inputs -> m = 3 pair entries
M = 3
MU = np.array([1.0, 0.3, 0.8])
A = np.array([[0.5, 0.1, 0.0], [0.2, 0.3, 0.1], [0.0, 0.2, 0.6]])
SHAPE = np.array([2.0, 3.0, 1.5])
LAYOUT = Layout(("gram",), (M,), (3,))        # the pair-vector of Ghat, to third order
COLS = np.arange(M)
NAMES = ("metric", "vertex", "six_point", "kurtosis")


def truth():
    mean = MU + A @ SHAPE
    cov = A @ np.diag(SHAPE) @ A.T
    k3 = np.einsum("pi,qi,ri,i->pqr", A, A, A, 2 * SHAPE)
    t = triples(M)
    six = k3[t[:, 0], t[:, 1], t[:, 2]]
    diag = [0, 2]
    kurt = 3 * cov[diag, diag] / mean[diag] ** 2
    return {"metric": unpack_matrix(mean, K), "vertex": unpack_vertex(cov, K),
            "six_point": unpack_six_point(six, K), "kurtosis": kurt}


def sample_stats(seed, n_blocks=40, block_size=100, bins=20):
    rng = np.random.default_rng(seed)
    e = rng.gamma(SHAPE, size=(n_blocks, block_size, 1, M))
    g = MU + e @ A.T
    T = triples(M)
    mean, m2, m3 = np.empty((n_blocks, 1, M)), np.empty((n_blocks, 1, M, M)), np.empty((n_blocks, 1, len(T)))
    block_moments(g, np.array([0]), COLS, T, 3, mean, m2, m3)
    acc = BinnedMoments(bins, 1, LAYOUT, block_size)
    acc.add_blocks(0, mean, m2, m3)
    stats = layer_statistics(acc, [1.0], K, NAMES)
    return {name: (v[0][0], v[1][0]) for name, v in stats.items()}, g


def test_single_run_within_five_sigma():
    stats, _ = sample_stats(seed=11, n_blocks=200, block_size=200, bins=50)
    for name, true in truth().items():
        mean, err = stats[name]
        assert np.all(err > 0), name
        z = (mean - true) / err
        assert np.max(np.abs(z)) < 5, (name, z.max())


def test_matches_direct_numpy_estimators():
    stats, g = sample_stats(seed=5)
    flat = g.reshape(-1, M)
    np.testing.assert_allclose(stats["metric"][0], unpack_matrix(flat.mean(0), K), rtol=1e-12)
    np.testing.assert_allclose(stats["vertex"][0], unpack_vertex(np.cov(flat.T), K), rtol=1e-10)
    N = len(flat)
    d = flat - flat.mean(0)
    t = triples(M)
    k3 = N / ((N - 1) * (N - 2)) * np.einsum("np,nq,nr->pqr", d, d, d)[t[:, 0], t[:, 1], t[:, 2]]
    np.testing.assert_allclose(stats["six_point"][0], unpack_six_point(k3, K), rtol=1e-9)


@pytest.mark.slow
def test_unbiased_and_calibrated_over_seeds():
    """Over R independent seeds: the average estimate is within 5 standard errors of the truth
    (unbiasedness; kurtosis is a ratio with O(1/N) bias, far below this resolution), and the truth lies
    within one reported standard error in a fraction consistent with 68.3% (binomial 5 sigma)."""
    R = 200
    true = truth()
    names = list(true)
    est = {n: [] for n in names}
    err = {n: [] for n in names}
    for seed in range(R):
        stats, _ = sample_stats(seed=1000 + seed, n_blocks=40, block_size=50, bins=20)
        for n in names:
            est[n].append(stats[n][0])
            err[n].append(stats[n][1])
    for n in names:
        e, s = np.array(est[n]), np.array(err[n])
        spread = e.std(axis=0, ddof=1) / np.sqrt(R)
        mask = spread > 0
        z_bias = (e.mean(axis=0) - true[n])[mask] / spread[mask]
        assert np.max(np.abs(z_bias)) < 5, (n, z_bias)
        covered = (np.abs(e - true[n]) <= s)[:, mask].mean(axis=0)
        # jackknife with B = 20 bins: a t-variable with 19 dof has P(|t| < 1) = 0.670
        p = 0.670
        tol = 5 * np.sqrt(p * (1 - p) / R)
        assert np.all(np.abs(covered - p) < tol), (n, covered)


def test_merge_equals_one_pass():
    rng = np.random.default_rng(3)
    g = rng.standard_normal((10, 64, 2, M)) ** 2
    T = triples(M)
    mean, m2, m3 = np.empty((10, 2, M)), np.empty((10, 2, M, M)), np.empty((10, 2, len(T)))
    block_moments(g, np.array([0, 1]), COLS, T, 3, mean, m2, m3)
    merged = MomentState.empty(2, LAYOUT)
    for i in range(10):
        merged.merge(MomentState(64.0, mean[i], m2[i], m3[i], LAYOUT))
    one = np.empty((1, 2, M)), np.empty((1, 2, M, M)), np.empty((1, 2, len(T)))
    block_moments(g.reshape(1, 640, 2, M), np.array([0, 1]), COLS, T, 3, *one)
    assert merged.count == 640
    np.testing.assert_allclose(merged.mean, one[0][0], rtol=1e-13)
    np.testing.assert_allclose(merged.m2, one[1][0], rtol=1e-12)
    np.testing.assert_allclose(merged.m3, one[2][0], rtol=1e-10, atol=1e-12)
    # binned: 4 bins, blocks in two batches == one batch
    a = BinnedMoments(4, 2, LAYOUT, 64)
    a.add_blocks(0, mean[:3], m2[:3], m3[:3])
    a.add_blocks(3, mean[3:], m2[3:], m3[3:])
    b = BinnedMoments(4, 2, LAYOUT, 64)
    b.add_blocks(0, mean, m2, m3)
    for x, y in zip(a.arrays().values(), b.arrays().values()):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="in order"):
        a.add_blocks(5, mean[:1], m2[:1], m3[:1])
    tot = a.total()
    np.testing.assert_allclose(tot.m2, one[1][0], rtol=1e-12)


def test_numerically_stable_with_large_offset():
    """A tiny fluctuation on a large mean (the 1/n signal at 10^9 samples) survives merging."""
    rng = np.random.default_rng(9)
    g = 1e6 + 1e-3 * rng.standard_normal((200, 100, 1, M))
    T = triples(M)
    mean, m2, m3 = np.empty((200, 1, M)), np.empty((200, 1, M, M)), np.empty((200, 1, len(T)))
    block_moments(g, np.array([0]), COLS, T, 3, mean, m2, m3)
    acc = BinnedMoments(8, 1, LAYOUT, 100)
    acc.add_blocks(0, mean, m2, m3)
    var = acc.total().m2[0].diagonal() / (acc.networks - 1)
    exact = g.reshape(-1, M).var(axis=0, ddof=1)
    np.testing.assert_allclose(var, exact, rtol=1e-6)
