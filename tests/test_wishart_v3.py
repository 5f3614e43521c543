"""wishart version 3 (``kernels/wishart_pairs.py``): its fused linear algebra
(``kernels/wishart_fused.py``, k <= 4) against the passes it replaces, bitwise, and both
against NumPy.

The law of the sampler and its keying are tested with the other reduced samplers
(``test_reduced_samplers.py``: Wishart moments of the factors, agreement with markov, the
exact kurtosis ratio, the numbers' independence of batch and threads, resume of version-2
files); the golden pin ``wishart_k3_linear`` fixes its numbers.
"""
from __future__ import annotations

import numpy as np
import pytest


def _metrics(k, rng):
    """(k, k, 256) symmetric positive semidefinite metrics of every kind the factor meets:
    full rank, rank deficient, repeated rows (identical inputs), a zero metric, a pivot at
    the tolerance's scale, and a metric with C_b added (all rows alike)."""
    lanes = 256
    G = np.empty((lanes, k, k))
    for i in range(lanes):
        kind = i % 6
        X = rng.standard_normal((k, k + 2)) * rng.uniform(0.1, 10.0)
        if kind == 1:
            X = rng.standard_normal((k, max(1, k - 2))) @ rng.standard_normal((max(1, k - 2), k + 2))
        elif kind == 2:
            X[k - 1] = X[0]
            if k > 2:
                X[1] = X[0]
        elif kind == 3:
            X[:] = 0.0
        elif kind == 4:
            X[k - 1] = X[0] + 1e-9 * rng.standard_normal(k + 2)
        G[i] = X @ X.T
        if kind == 5:
            G[i] += 0.3
    return np.ascontiguousarray(np.transpose(G, (1, 2, 0)))


def _bartlett(k, rng):
    A = np.triu(rng.standard_normal((k, k, 256)).transpose(2, 0, 1)).transpose(1, 2, 0)
    for j in range(k):
        A[j, j] = np.sqrt(rng.chisquare(50 - j, 256))
    return np.ascontiguousarray(A)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_fused_steps_equal_the_passes_bitwise_and_numpy(k):
    from mcsim.kernels import wishart_pairs
    rng = np.random.default_rng(40 + k)
    G, At = _metrics(k, rng), _bartlett(k, rng)
    cb, scale = 0.15, 1.3 / 50
    out = {}
    for fused in (True, False):
        C, G_next = np.full_like(G, np.nan), np.full_like(G, np.nan)
        wishart_pairs.factor_and_step(G, At, cb, scale, fused, C, G_next)
        out[fused] = C, G_next
    assert np.array_equal(out[True][0], out[False][0])
    assert np.array_equal(out[True][1], out[False][1])
    C, G_next = out[True]
    Cl, Gl, Al = (np.transpose(x, (2, 0, 1)) for x in (C, G, At))
    # C: lower triangular, nonnegative diagonal, C C^T = G (to rounding of the metric's size)
    assert np.all(np.triu(Cl, 1) == 0.0) and np.all(np.diagonal(Cl, axis1=1, axis2=2) >= 0.0)
    size = np.abs(Gl).max(axis=(1, 2))[:, None, None]
    assert np.all(np.abs(Cl @ np.transpose(Cl, (0, 2, 1)) - Gl) <= 1e-12 * size + 1e-300)
    # identical rows of G give identical rows of C, bitwise (kind 2: rows 0 and k-1)
    assert np.array_equal(Cl[2::6, 0], Cl[2::6, k - 1])
    # G_next = cb + scale (C A)(C A)^T, A = At^T
    M = Cl @ np.transpose(Al, (0, 2, 1))
    want = cb + scale * M @ np.transpose(M, (0, 2, 1))
    assert np.allclose(np.transpose(G_next, (2, 0, 1)), want, rtol=1e-13, atol=1e-13 * cb)
    assert np.array_equal(G_next, np.transpose(G_next, (1, 0, 2)))


def test_fused_steps_refuse_what_they_do_not_cover():
    from mcsim.kernels import wishart_pairs
    G = np.ones((5, 5, 256))
    with pytest.raises(ValueError, match="no fused steps"):
        wishart_pairs.factor_and_step(G, G.copy(), 0.0, 1.0, True, G.copy(), G.copy())
