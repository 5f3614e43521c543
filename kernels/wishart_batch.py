"""The linear-activation reduced sampler for any number of inputs k (``wishart``, version 2):
the networks of a chunk in batches of ``chi2_batch.LANES`` lanes, layer by layer, every
step one vectorised pass over the lanes (the batch machinery of ``chi2_batch``: per-lane
Philox streams, first proposals for all lanes, then padded retry rounds for the rejected).

The law is that of ``reduced`` (module docstring there): with C C^T = Ghat^(l) and A the
Bartlett factor of a Wishart_k(n, I) matrix,

    Ghat^(l+1) = C_b + C_W / n * (C A)(C A)^T,

A (k, k) lower triangular with A_jj = sqrt(chi^2_{n-j}) (j = 0..k-1) and A_ij ~ N(0, 1)
for i > j when n >= k; for n < k, A = eps^T (k, n) of iid normals (the Wishart is singular).
Exact: chi-squared by Marsaglia-Tsang (``chi2_batch``), normals by Box-Muller, the only
departure from the law beyond rounding the normals' cut-off at |x| = 8.57 (``chi2_batch``).

C is the factor of ``common.psd_cholesky``, lane by lane: pivots <= PIVOT_RTOL * max(diag)
give a zero column (semidefinite Ghat: repeated inputs, k > n), and a row of Ghat equal to an
earlier row copies that row of C, so identical inputs keep bitwise identical entries.

Random numbers: network j of block b draws from the Philox stream (key, b, j), counters
0, 1, 2, ... in the order of the draws, layer by layer: per layer (n >= k) the chi-squared
variables of the diagonal, d = n, n - 1, ..., n - k + 1 (each proposal two counters, as
``chi2_batch``), then the k (k - 1) / 2 normals below the diagonal, column by column (column
j: rows j + 1..k-1), two per counter (the two Box-Muller normals of one counter, in that
order; an odd count leaves the second normal of the last counter unused); for n < k the
k n normals of eps^T, unit by unit (unit i: inputs 0..k-1), two per counter likewise.
Draws happen also where Ghat = 0. The counters a network uses depend only on (key, block,
network): batch, chunking and threads change no number.

Bits: every lane loop runs over all ``LANES`` lanes (batches are full: lanes past the
chunk's end repeat its last network, dropped), elementwise, no reduction across lanes; the
sums over inputs are written as one lane loop per term, in a fixed order (no reassociation
can apply); the divisions by and the square roots of pivots are ``exact`` (IEEE, no
fast-math): AVX2 and AVX-512 builds agree.
"""
from __future__ import annotations

import numba
import numpy as np

from .activations import LINEAR
from .chi2_batch import LANES, chi2_pass as _chi2_pass, lane_scratch as _scratch, \
    lane_uniforms as _uniforms, set_lanes as _set_lanes
from .common import MAX_CHUNKS, PIVOT_RTOL, check_sampler_shapes, chunk_range, input_metric
from .jit import exact, inline, kernel, parallel_kernel
from .rng import box_muller as _box_muller

__all__ = ["sample_wishart", "draw_bartlett_batch", "divide_by_pivots", "pivots", "roots"]


@exact
def _divide_by_pivots(acc, p, out):
    # out[i] = acc[i] / p[i] for a pivot p[i] > 0, else 0 (zero column of a semidefinite
    # factor): one lane loop in IEEE arithmetic (no reciprocal rewriting)
    for i in range(out.shape[0]):
        out[i] = acc[i] / p[i] if p[i] > 0.0 else 0.0


@exact
def _pivots(acc, tol, out):
    # out[i] = sqrt(acc[i]) above the tolerance tol[i], else 0: the factor's diagonal
    for i in range(out.shape[0]):
        out[i] = np.sqrt(acc[i]) if acc[i] > tol[i] else 0.0


@exact
def _roots(x, out):
    for i in range(out.shape[0]):
        out[i] = np.sqrt(x[i])


# --- the factor C of every lane ------------------------------------------------------------
@inline
def _cholesky_lanes(G, C, acc, tol, same):
    """C[:, :, i] lower triangular with C C^T = G[:, :, i] for every lane i, as
    ``common.psd_cholesky``; G, C (k, k, LANES); scratch acc, tol (LANES,), same (LANES,)
    int64."""
    k = G.shape[0]
    lanes = G.shape[2]
    for i in range(lanes):
        tol[i] = G[0, 0, i]
    for a in range(1, k):
        for i in range(lanes):
            tol[i] = max(tol[i], G[a, a, i])
    for i in range(lanes):
        tol[i] = PIVOT_RTOL * tol[i]
    for j in range(k):
        for t in range(j):              # C[j, t] = (G[j, t] - sum_{c<t} C[j, c] C[t, c]) / C[t, t]
            for i in range(lanes):
                acc[i] = G[j, t, i]
            for c in range(t):
                for i in range(lanes):
                    acc[i] = acc[i] - C[j, c, i] * C[t, c, i]
            _divide_by_pivots(acc, C[t, t], C[j, t])
        for i in range(lanes):
            acc[i] = G[j, j, i]
        for c in range(j):
            for i in range(lanes):
                acc[i] = acc[i] - C[j, c, i] * C[j, c, i]
        _pivots(acc, tol, C[j, j])
        for c in range(j + 1, k):
            for i in range(lanes):
                C[j, c, i] = 0.0
        # a row of G equal to an earlier row: that row of C (the first such row wins)
        for r in range(j - 1, -1, -1):
            for i in range(lanes):
                same[i] = 1
            for c in range(k):
                for i in range(lanes):
                    same[i] = same[i] & (1 if G[r, c, i] == G[j, c, i] else 0)
            hits = 0
            for i in range(lanes):      # an integer count: no rounding, any order
                hits += same[i]
            if hits > 0:
                for c in range(k):
                    for i in range(lanes):
                        C[j, c, i] = C[r, c, i] if same[i] != 0 else C[j, c, i]


# --- the factor A of every lane ------------------------------------------------------------
@inline
def _normals(A, rows, cols, k0, k1, ctr, c1, c2, c3, x, y):
    # A[cols[e], rows[e], i] (transposed, see _bartlett) for e = 0..len(rows)-1: normals of
    # lane i, two per counter (entries 2p and 2p + 1 from counter ctr[i] + p), ctr advanced
    # by the counters used; x, y (LANES,) scratch
    m = rows.shape[0]
    lanes = ctr.shape[0]
    for p in range((m + 1) // 2):
        q = np.uint64(p)
        for i in range(lanes):
            ua, ub = _uniforms(k0, k1, ctr[i] + q, c1[i], c2[i], c3[i])
            x[i], y[i] = _box_muller(ua, ub)
        e = 2 * p
        ra, ca = rows[e], cols[e]
        for i in range(lanes):
            A[ca, ra, i] = x[i]
        if e + 1 < m:
            rb, cb = rows[e + 1], cols[e + 1]
            for i in range(lanes):
                A[cb, rb, i] = y[i]
    used = np.uint64((m + 1) // 2)
    for i in range(lanes):
        ctr[i] += used


@inline
def _bartlett(n, k, k0, k1, ctr, c1, c2, c3, At, dof, s, ok, scr, rows, cols):
    """At[j, c, i] = A[c, j] of lane i: the Bartlett factor (n >= k: At upper triangular
    holds A's columns as rows) or eps^T (n < k: At (n, k), row i the normals of unit i).
    Returns r = min(n, k), the number of A's columns."""
    lanes = ctr.shape[0]
    if n >= k:
        for j in range(k):              # the diagonal: sqrt(chi^2_{n-j})
            for i in range(lanes):
                dof[i] = np.float64(n - j)
            _chi2_pass(dof, k0, k1, ctr, c1, c2, c3, s, ok, scr)
            _roots(s, At[j, j])
        m = 0
        for j in range(k):              # below the diagonal, column by column
            for a in range(j + 1, k):
                rows[m] = a
                cols[m] = j
                m += 1
        if m > 0:
            _normals(At, rows[:m], cols[:m], k0, k1, ctr, c1, c2, c3, dof, s)
        return k
    m = 0
    for u in range(n):                  # eps^T: unit by unit, inputs 0..k-1
        for a in range(k):
            rows[m] = a
            cols[m] = u
            m += 1
    _normals(At, rows[:m], cols[:m], k0, k1, ctr, c1, c2, c3, dof, s)
    return n


@inline
def _next_metric(C, At, r, lower, cb, scale, T, G, acc):
    """G = cb + scale * (C A)(C A)^T for every lane; T (k, k, LANES) scratch holding
    T[j, a] = (C A)[a, j], acc (LANES,) scratch. lower: A lower triangular (Bartlett:
    A[c, j] = 0 for c < j)."""
    k = C.shape[0]
    lanes = C.shape[2]
    for j in range(r):
        for a in range(k):
            for i in range(lanes):
                acc[i] = 0.0
            for c in range(j if lower else 0, a + 1):
                for i in range(lanes):
                    acc[i] = acc[i] + C[a, c, i] * At[j, c, i]
            for i in range(lanes):
                T[j, a, i] = acc[i]
    for a in range(k):
        for b in range(a, k):
            for i in range(lanes):
                acc[i] = T[0, a, i] * T[0, b, i]
            for j in range(1, r):
                for i in range(lanes):
                    acc[i] = acc[i] + T[j, a, i] * T[j, b, i]
            for i in range(lanes):
                G[a, b, i] = cb + scale * acc[i]
                G[b, a, i] = cb + scale * acc[i]


@parallel_kernel
def sample_wishart(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                   act_code, act_param, out):
    """Linear activation, any k: Ghat^(2..L) with O(L k^2) random numbers per network,
    ``LANES`` networks at a time. Arguments and ``out`` (n_blocks, block_size, L-1,
    k (k + 1) / 2) as ``markov.sample_markov``; raises ValueError for another activation."""
    check_sampler_shapes(n_blocks, block_size, inputs, widths, C_W, C_b, out)
    if act_code != LINEAR:
        raise ValueError("the wishart sampler takes the linear activation only")
    k = inputs.shape[0]
    L = widths.shape[0]
    total = n_blocks * block_size
    if L < 2 or total == 0:
        return
    G1 = np.empty((k, k))
    input_metric(inputs, C_W[0], C_b[0], G1)
    n_chunks = min((total + LANES - 1) // LANES, MAX_CHUNKS)
    for ch in numba.prange(n_chunks):
        ctr = np.empty(LANES, dtype=np.uint64)
        c1 = np.empty(LANES, dtype=np.uint64)
        c2 = np.empty(LANES, dtype=np.uint64)
        c3 = np.empty(LANES, dtype=np.uint64)
        G = np.empty((k, k, LANES))
        C = np.empty((k, k, LANES))
        At = np.zeros((k, k, LANES))
        T = np.empty((k, k, LANES))
        dof = np.empty(LANES)
        s = np.empty(LANES)
        tol = np.empty(LANES)
        same = np.empty(LANES, dtype=np.int64)
        ok = np.empty(LANES, dtype=np.bool_)
        rows = np.empty(k * k, dtype=np.int64)
        cols = np.empty(k * k, dtype=np.int64)
        scr = _scratch()
        where = np.empty((2, LANES), dtype=np.int64)
        lo, hi = chunk_range(ch, n_chunks, total)
        for t0 in range(lo, hi, LANES):
            k0, k1 = _set_lanes(key, first_block, block_size, t0, hi, ctr, c1, c2, c3, where)
            for a in range(k):
                for b in range(k):
                    for i in range(LANES):
                        G[a, b, i] = G1[a, b]
            for l in range(L - 1):
                n = widths[l]
                _cholesky_lanes(G, C, s, tol, same)
                r = _bartlett(n, k, k0, k1, ctr, c1, c2, c3, At, dof, s, ok, scr, rows, cols)
                _next_metric(C, At, r, n >= k, C_b[l + 1], C_W[l + 1] / n, T, G, s)
                p = 0
                for a in range(k):
                    for b in range(a, k):
                        for i in range(min(LANES, hi - t0)):
                            out[where[0, i], where[1, i], l, p] = G[a, b, i]
                        p += 1


# --- a piece, for tests ----------------------------------------------------------------------
@kernel
def draw_bartlett_batch(key, block, n, out):
    """out[j] = A A^T (k, k) for the factor A of Wishart_k(n, I) (``_bartlett``) drawn first
    in stream (key, block, j), by the batch passes; out (m, k, k), m a multiple of LANES."""
    if out.shape[0] % LANES != 0:
        raise ValueError("len(out) must be a multiple of LANES")
    k = out.shape[1]
    ctr = np.empty(LANES, dtype=np.uint64)
    c1 = np.empty(LANES, dtype=np.uint64)
    c2 = np.empty(LANES, dtype=np.uint64)
    c3 = np.empty(LANES, dtype=np.uint64)
    At = np.zeros((k, k, LANES))
    dof = np.empty(LANES)
    s = np.empty(LANES)
    ok = np.empty(LANES, dtype=np.bool_)
    rows = np.empty(k * k, dtype=np.int64)
    cols = np.empty(k * k, dtype=np.int64)
    scr = _scratch()
    where = np.empty((2, LANES), dtype=np.int64)
    for t0 in range(0, out.shape[0], LANES):
        k0, k1 = _set_lanes(key, block, out.shape[0], t0, out.shape[0], ctr, c1, c2, c3, where)
        r = _bartlett(np.int64(n), k, k0, k1, ctr, c1, c2, c3, At, dof, s, ok, scr, rows, cols)
        for i in range(LANES):
            for a in range(k):
                for b in range(k):
                    acc = 0.0
                    for j in range(r):
                        acc += At[j, a, i] * At[j, b, i]
                    out[t0 + i, a, b] = acc

#: the IEEE steps of the factors (version 3, ``wishart_pairs``, takes them from here):
#: ``divide_by_pivots(acc, p, out)``, ``pivots(acc, tol, out)``, ``roots(x, out)``
divide_by_pivots = _divide_by_pivots
pivots = _pivots
roots = _roots
