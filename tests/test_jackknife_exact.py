"""Jackknife bins against a direct NumPy jackknife of the raw samples (a known answer).

Blocks of synthetic per-network vectors go through the real block kernel and `BinnedMoments`;
the reference recomputes everything from the raw samples: bin b holds the blocks with
block % B == b (docs/architecture.md), the delete-one-bin estimates are the plain NumPy
estimators on all samples outside bin i, and

    stderr^2 = (B'-1)/B' sum_i (theta_-i - mean_i theta_-i)^2   over the B' non-empty bins.

Agreement is to rounding (1e-9 relative): the factor (B'-1)/B', empty bins, the bin rule
and the leave-one-out merges are each checked exactly, not statistically.
"""
from __future__ import annotations

import numpy as np
import pytest

from mcsim.kernels.moments import block_moments
from mcsim.stats.accumulator import BinnedMoments
from mcsim.stats.estimators import layer_statistics
from mcsim.stats.indexing import triples, unpack_matrix, unpack_six_point, unpack_vertex
from mcsim.stats.quantities import Layout

K, M = 2, 3
LAYOUT = Layout(("gram",), (M,), (3,))
FAN_IN = 7.0


def _blocks(seed, n_blocks, block_size):
    rng = np.random.default_rng(seed)
    g = rng.gamma(2.0, size=(n_blocks, block_size, 1, M)) @ np.array(
        [[1.0, 0.2, 0.0], [0.3, 0.5, 0.1], [0.0, 0.4, 0.8]])
    return g


def _accumulate(g, bins, first_block):
    n_blocks = g.shape[0]
    T = triples(M)
    mean, m2, m3 = np.empty((n_blocks, 1, M)), np.empty((n_blocks, 1, M, M)), np.empty((n_blocks, 1, len(T)))
    block_moments(g, np.array([0]), np.arange(M), T, 3, mean, m2, m3)
    acc = BinnedMoments(bins, 1, LAYOUT, g.shape[1], first_block=first_block)
    half = n_blocks // 2                      # in two calls, as the driver's rounds do
    acc.add_blocks(first_block, mean[:half], m2[:half], m3[:half])
    acc.add_blocks(first_block + half, mean[half:], m2[half:], m3[half:])
    return acc


def _numpy_estimates(x):
    """Packed metric, vertex, six-point of samples x (N, M), plain NumPy."""
    N = len(x)
    d = x - x.mean(0)
    t = triples(M)
    k3 = N / ((N - 1) * (N - 2)) * np.einsum("np,nq,nr->pqr", d, d, d)[t[:, 0], t[:, 1], t[:, 2]]
    return {"metric": x.mean(0), "vertex": FAN_IN * np.cov(x.T), "six_point": FAN_IN ** 2 * k3}


UNPACK = {"metric": unpack_matrix, "vertex": unpack_vertex, "six_point": unpack_six_point}


@pytest.mark.parametrize("n_blocks,bins,first_block", [(24, 8, 0), (13, 8, 3), (5, 8, 2)],
                         ids=["equal-bins", "unequal-bins", "empty-bins"])
def test_jackknife_equals_direct_numpy_jackknife(n_blocks, bins, first_block):
    g = _blocks(n_blocks, n_blocks, 16)
    acc = _accumulate(g, bins, first_block)
    # the bin rule: global block b goes to bin b % bins
    bin_of_block = (first_block + np.arange(n_blocks)) % bins
    for b in range(bins):
        members = g[bin_of_block == b, :, 0].reshape(-1, M)
        assert acc.count[b] == len(members)
        if len(members):
            np.testing.assert_allclose(acc.mean[b, 0], members.mean(0), rtol=1e-13)
    stats = layer_statistics(acc, [FAN_IN], K, ("metric", "vertex", "six_point"))
    flat = g[:, :, 0].reshape(-1, M)
    full = _numpy_estimates(flat)
    used = [b for b in range(bins) if np.any(bin_of_block == b)]
    loo = [_numpy_estimates(g[bin_of_block != b, :, 0].reshape(-1, M)) for b in used]
    B = len(used)
    for name, unpack in UNPACK.items():
        theta = np.array([d[name] for d in loo])
        err = np.sqrt((B - 1) / B * ((theta - theta.mean(0)) ** 2).sum(0))
        mean, stderr = stats[name]
        np.testing.assert_allclose(mean[0], unpack(full[name], K), rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(stderr[0], unpack(err, K), rtol=1e-9, err_msg=name)


def test_jackknife_of_the_mean_is_the_standard_error_of_bin_means():
    """Equal bins: the delete-one-bin error of the metric is exactly
    sqrt(sum_i (bar_i - bar)^2 / (B (B - 1))), the textbook standard error of B bin means."""
    bins = 6
    g = _blocks(1, 18, 10)
    acc = _accumulate(g, bins, 0)
    bar = np.array([g[np.arange(18) % bins == b, :, 0].reshape(-1, M).mean(0) for b in range(bins)])
    want = np.sqrt(((bar - bar.mean(0)) ** 2).sum(0) / (bins * (bins - 1)))
    _, stderr = layer_statistics(acc, [1.0], K, ("metric",))["metric"]
    np.testing.assert_allclose(stderr[0], unpack_matrix(want, K), rtol=1e-10)
