"""The threaded moment kernel as first written (issue 12, item 5), kept for the comparison of
``bench_moments.py`` only: pass 2 takes a row view of D for every product (``dot(Dt[p],
Dt[q])``), i.e. two reference-count updates (atomic) on D's one memory block per product, shared
by all threads; ``kernels/moments.py`` passes row indices instead. Not used by mcsim.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from mcsim.kernels.jit import parallel_kernel
from mcsim.kernels.reduce import dot, total

#: products per parallel work item (as in kernels/moments.py)
PIECE = 64


@parallel_kernel
def block_moments(samples, layers, columns, triples, order, mean_out, m2_out, m3_out):
    """``kernels.moments.block_moments`` as first threaded (same arguments, same bits)."""
    n_blocks, N = samples.shape[0], samples.shape[1]
    m = columns.shape[0]
    Sr = layers.shape[0]
    T = triples.shape[0] if order >= 3 else 0
    n_tasks = n_blocks * Sr
    # deviations transposed to (m, N) per task, so that every sum below is contiguous
    D = np.empty((n_tasks, m, N))
    for task in prange(n_tasks):
        i = task // Sr
        r = task - i * Sr
        s = layers[r]
        for p in range(m):
            c = columns[p]
            mu = total(samples[i, :, s, c]) / N
            mean_out[i, r, p] = mu
            for j in range(N):
                D[task, p, j] = samples[i, j, s, c] - mu
    n_pairs = m * (m + 1) // 2
    pairs = np.empty((n_pairs, 2), dtype=np.int64)
    k = 0
    for p in range(m):
        for q in range(p, m):
            pairs[k, 0] = p
            pairs[k, 1] = q
            k += 1
    n_items = n_pairs + T
    n_pieces = (n_items + PIECE - 1) // PIECE
    for job in prange(n_tasks * n_pieces):
        task = job // n_pieces
        first = (job - task * n_pieces) * PIECE
        i = task // Sr
        r = task - i * Sr
        Dt = D[task]
        # d_p d_q, rounded, is kept while consecutive triples share (p, q) (they run over u
        # for the sorted table): dot(d_p d_q, d_u) adds fl(d_p d_q) d_u into the same partial
        # sums in the same order as dot3(d_p, d_q, d_u), so the bits are dot3's at one
        # multiplication per term instead of two
        prod = np.empty(N)
        last_p = -1
        last_q = -1
        for item in range(first, min(first + PIECE, n_items)):
            if item < n_pairs:
                p = pairs[item, 0]
                q = pairs[item, 1]
                acc = dot(Dt[p], Dt[q])
                m2_out[i, r, p, q] = acc
                m2_out[i, r, q, p] = acc
            else:
                t = item - n_pairs
                p = triples[t, 0]
                q = triples[t, 1]
                if p != last_p or q != last_q:
                    for j in range(N):
                        prod[j] = Dt[p, j] * Dt[q, j]
                    last_p = p
                    last_q = q
                m3_out[i, r, t] = dot(prod, Dt[triples[t, 2]])
