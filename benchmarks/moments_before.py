"""The moment kernel as it was before issue 12, item 5 (serial, one ``dot3`` per third
moment), kept for the before / after comparison of ``bench_moments.py`` only. Not used by
mcsim.
"""
from __future__ import annotations

import numpy as np

from mcsim.kernels.jit import kernel
from mcsim.kernels.reduce import dot, dot3, total


@kernel
def block_moments(samples, layers, columns, triples, order, mean_out, m2_out, m3_out):
    """Exact two-pass central moments of every block, for the selected layers and columns.

    Args:
        samples: (n_blocks, block_size, S, W) float64, e.g. a sampler's ``out``.
        layers: (Sr,) int64, stochastic layer indices s (axis 2 of ``samples``) to use.
        columns: (m,) int64, the entries of axis 3 of ``samples`` that make up the vector x
            (x_p = samples[..., columns[p]]).
        triples: (T, 3) int64 (``mcsim.indexing.triples(m)``); unused unless order == 3.
        order: 2 (mean and M2) or 3 (also M3).
        mean_out: (n_blocks, Sr, m) <- mean over the block's networks.
        m2_out: (n_blocks, Sr, m, m) <- M2 = sum d d^T (full symmetric).
        m3_out: (n_blocks, Sr, T) <- M3[t] = sum d_p d_q d_r (only written if order == 3).

    Each block's count is ``block_size``. Every output entry is computed in a fixed order
    (bitwise independent of thread counts and of compiled vs cached code).
    """
    n_blocks, N = samples.shape[0], samples.shape[1]
    m = columns.shape[0]
    Sr = layers.shape[0]
    T = triples.shape[0]
    for task in range(n_blocks * Sr):
        i = task // Sr
        r = task - i * Sr
        s = layers[r]
        # deviations transposed to (m, N) so that every sum below is a contiguous reduction
        D = np.empty((m, N))
        for p in range(m):
            c = columns[p]
            mu = total(samples[i, :, s, c]) / N
            mean_out[i, r, p] = mu
            for j in range(N):
                D[p, j] = samples[i, j, s, c] - mu
        for p in range(m):
            for q in range(p, m):
                acc = dot(D[p], D[q])
                m2_out[i, r, p, q] = acc
                m2_out[i, r, q, p] = acc
        if order >= 3:
            for t in range(T):
                p = triples[t, 0]
                q = triples[t, 1]
                u = triples[t, 2]
                m3_out[i, r, t] = dot3(D[p], D[q], D[u])
