"""Central moments of the sampled per-network vectors: per-block two-pass sums and exact merges.

A *moment state* of one group of ``N`` samples x (vectors of length m, one state per
stochastic layer) is ``(N, mean, M2, M3)`` with central sums

    mean_p   = (1/N) sum x_p
    M2_pq    = sum (x_p - mean_p)(x_q - mean_q)                 full symmetric (m, m)
    M3_t     = sum d_p d_q d_r,   t <-> (p, q, r), p <= q <= r  over ``triples`` (T, 3)

``triples`` holds column indices 0..m-1 (any sorted subset of the columns' triples: the
third moments of some of the entries only). Arrays of one state covering S layers:
mean (S, m), M2 (S, m, m), M3 (S, T). With ``order == 2`` the M3 arrays are never read or
written (they may have T = 0).

Merging two states (Chan et al. 1979 for M2, Pebay 2008 for M3), delta = mean_b - mean_a,
n = na + nb:

    mean = mean_a + delta nb / n
    M2   = M2_a + M2_b + delta_p delta_q na nb / n
    M3   = M3_a + M3_b + delta_p delta_q delta_r na nb (na - nb) / n^2
           + (1/n) [delta_p (na M2b_qr - nb M2a_qr) + delta_q (na M2b_pr - nb M2a_pr)
                    + delta_r (na M2b_pq - nb M2a_pq)]

All summation orders are fixed (the sums over a block's networks in the order of
``kernels.reduce``, independent of the vector width), so results are bitwise reproducible
on every x86-64 node with FMA.
"""

from __future__ import annotations

import numpy as np
from numba import prange, types
from numba.extending import overload

from .jit import inline, kernel, parallel_kernel
from .reduce import dot, total

__all__ = ["block_moments", "merge_moments", "merge_blocks_into_bins"]


#: products (pairs, then triples) per parallel work item of ``block_moments``: enough work per
#: item (~PIECE N multiply-adds) to hide the scheduling, small enough to balance 2-64 threads
PIECE = 64


@parallel_kernel
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

    Each block's count is ``block_size``. Threaded in two passes: (1) one task per (block,
    layer) computes the means and the deviations D (tasks, m, N); (2) the m(m+1)/2 + T
    products of every task are cut into pieces of ``PIECE`` and spread over the threads (for
    k = 8 with six-point statistics a task has 8,436 triples: this is the pass that matters).
    Every output entry is one call of ``kernels.reduce`` (``total``, ``dot``: fixed order,
    not reassociated, compiled apart from this kernel; M3 with the bits of ``dot3``) on data
    that do not depend on the schedule, so the result is bitwise the same for any number of
    threads and for compiled and cached code (tests/test_moments.py,
    tests/test_cache_reproducibility.py).
    """
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


def _count_at(count, s):
    """Count of layer s: ``count`` is a scalar, a 1-element array, or one entry per layer."""
    raise NotImplementedError  # Numba-only (see the overload below)


@overload(_count_at)
def _count_at_impl(count, s):
    if isinstance(count, types.Array):
        def impl(count, s):
            if count.shape[0] > 1:
                return np.float64(count[s])
            return np.float64(count[0])
        return impl
    if isinstance(count, (types.Float, types.Integer)):
        return lambda count, s: np.float64(count)
    return None


@inline
def _merge_one(na, mean_a, m2_a, m3_a, nb, mean_b, m2_b, m3_b, triples, order, delta):
    # One layer: mean (m,), m2 (m, m), m3 (T,); delta is scratch (m,).
    m = mean_a.shape[0]
    if nb == 0.0:
        return
    if na == 0.0:
        for p in range(m):
            mean_a[p] = mean_b[p]
            for q in range(m):
                m2_a[p, q] = m2_b[p, q]
        if order >= 3:
            for t in range(triples.shape[0]):
                m3_a[t] = m3_b[t]
        return
    n = na + nb
    for p in range(m):
        delta[p] = mean_b[p] - mean_a[p]
    # M3 first: it needs the old M2_a
    if order >= 3:
        c3 = na * nb * (na - nb) / (n * n)
        for t in range(triples.shape[0]):
            p = triples[t, 0]
            q = triples[t, 1]
            r = triples[t, 2]
            dp = delta[p]
            dq = delta[q]
            dr = delta[r]
            corr = (dp * (na * m2_b[q, r] - nb * m2_a[q, r])
                    + dq * (na * m2_b[p, r] - nb * m2_a[p, r])
                    + dr * (na * m2_b[p, q] - nb * m2_a[p, q])) / n
            m3_a[t] += m3_b[t] + dp * dq * dr * c3 + corr
    c2 = na * nb / n
    for p in range(m):
        for q in range(m):
            m2_a[p, q] += m2_b[p, q] + delta[p] * delta[q] * c2
    w = nb / n
    for p in range(m):
        mean_a[p] += delta[p] * w


@kernel
def merge_moments(count_a, mean_a, m2_a, m3_a, count_b, mean_b, m2_b, m3_b, triples, order):
    """Merge state b into state a, in place (mean_a, m2_a, m3_a; the counts are NOT updated).

    Args:
        count_a, count_b: number of samples of each state, float64 (an int works too): a
            scalar, a 1-element array, or an (S,) array with one count per layer.
        mean_a, mean_b: (S, m); m2_a, m2_b: (S, m, m); m3_a, m3_b: (S, T).
        triples: (T, 3) int64; order: 2 (m3 untouched) or 3.

    Afterwards the caller sets ``count_a += count_b`` (scalars cannot be updated in place).
    A state with count 0 is empty: merging into it copies b, merging it changes nothing.
    """
    S, m = mean_a.shape
    delta = np.empty(m)
    for s in range(S):
        _merge_one(_count_at(count_a, s), mean_a[s], m2_a[s], m3_a[s],
                   _count_at(count_b, s), mean_b[s], m2_b[s], m3_b[s], triples, order, delta)


@kernel
def merge_blocks_into_bins(bin_count, bin_mean, bin_m2, bin_m3, block_mean, block_m2,
                           block_m3, block_size, first_block, n_bins, triples, order):
    """Merge consecutive blocks into jackknife bins, in increasing block order.

    Block ``i`` of the inputs is global block ``first_block + i``; it goes into bin
    ``(first_block + i) % n_bins``.

    Args:
        bin_count: (n_bins,) float64, updated (+= block_size per merged block).
        bin_mean (n_bins, S, m), bin_m2 (n_bins, S, m, m), bin_m3 (n_bins, S, T): updated.
        block_mean (nb, S, m), block_m2 (nb, S, m, m), block_m3 (nb, S, T): from
            ``block_moments``; every block has ``block_size`` samples.
        triples (T, 3) int64; order 2 or 3.

    Serial and deterministic: each bin's state depends only on which blocks it received.
    """
    S, m = block_mean.shape[1], block_mean.shape[2]
    delta = np.empty(m)
    nb = np.float64(block_size)
    for i in range(block_mean.shape[0]):
        b = (first_block + i) % n_bins
        na = bin_count[b]
        for s in range(S):
            _merge_one(na, bin_mean[b, s], bin_m2[b, s], bin_m3[b, s], nb, block_mean[i, s],
                       block_m2[i, s], block_m3[i, s], triples, order, delta)
        bin_count[b] = na + nb
