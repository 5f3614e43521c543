"""The linear-activation reduced sampler, version 3 (``wishart``): version 2's batches
(``wishart_batch``, kept as ``wishart_v2``) with half the random numbers per layer.

The law is version 2's (module docstring of ``wishart_batch``): with C C^T = Ghat^(l) and A
the Bartlett factor of a Wishart_k(n, I) matrix (n >= k: A_jj = sqrt(chi^2_{n-j}),
A_ij ~ N(0, 1) below the diagonal; n < k: A = eps^T (k, n) of iid normals),

    Ghat^(l+1) = C_b + C_W / n * (C A)(C A)^T.

What version 3 changes:

- The diagonal's chi-squared variables are drawn as chi2 version 3 draws them
  (``chi2_alias``): the network's chi-squared draws q = 0, 1, 2, ... (k per Bartlett layer:
  d = n, n - 1, ..., n - k + 1), the first proposal of an even q from a fresh pair of
  counters (Box-Muller normals (x, y), uniforms (u, u')), (y, u') kept for draw q + 1;
  accepted without logs where the proven bound says so (``chi2_alias._mt_sure``), else by
  version 2's test; rejected proposals retried at 2 fresh counters each, as version 2.
- The normals (below the diagonal, or eps^T) are the network's normal draws r = 0, 1, 2, ...
  in the order of version 2 (layer by layer; column by column, or unit by unit): an even r
  takes a fresh counter's Box-Muller pair (x, y) and keeps y for draw r + 1, also across
  layers (version 2 left the second normal of a layer's last counter unused).
- The factor C, the product (C A)(C A)^T and the step to Ghat^(l+1) spell out their
  multiply-adds (``lanes.fma``; see ``chi2_alias`` on why); the places in ``out`` are
  unsigned indices (no wraparound checks in the stores). For k <= 4 the factor and the step
  of Bartlett layers run fused, one loop over the lanes each (``wishart_fused``), with the
  bits of the passes here (``_cholesky_lanes``, ``_next_metric``; tested against them).

Per layer at k = 2, n >= 2: 2.5 counters instead of 5; at k = 4: 7 instead of 11 (before
retries, which are rare at large n). Counters are consumed in the order of the draws and
depend only on (key, block, network): batch, chunking and threads change no number.
Speed: docs/performance.md.
"""
from __future__ import annotations

import numba
import numpy as np

from .activations import LINEAR
from .chi2_alias import chi2_draw as _chi2
from .chi2_batch import LANES, lane_scratch as _scratch, lane_uniforms as _uniforms, \
    set_lanes as _set_lanes
from .common import MAX_CHUNKS, PIVOT_RTOL, check_sampler_shapes, chunk_range, input_metric
from .jit import inline, kernel, parallel_kernel
from .lanes import fma
from .rng import box_muller as _box_muller
from .wishart_fused import fused_factor, fused_step
from .wishart_batch import divide_by_pivots as _divide_by_pivots, pivots as _pivots, \
    roots as _roots

__all__ = ["sample_wishart", "draw_bartlett_pairs", "factor_and_step"]


# --- the factor C of every lane ------------------------------------------------------------
@inline
def _cholesky_lanes(G, C, acc, tol, same):
    """C[:, :, i] lower triangular with C C^T = G[:, :, i] for every lane i, as
    ``common.psd_cholesky`` (pivots <= PIVOT_RTOL * max(diag) give a zero column; a row of G
    equal to an earlier row copies the first such row of C); G, C (k, k, LANES); scratch
    acc, tol (LANES,), same (LANES,) int64."""
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
                    acc[i] = fma(-C[j, c, i], C[t, c, i], acc[i])
            _divide_by_pivots(acc, C[t, t], C[j, t])
        for i in range(lanes):
            acc[i] = G[j, j, i]
        for c in range(j):
            for i in range(lanes):
                acc[i] = fma(-C[j, c, i], C[j, c, i], acc[i])
        _pivots(acc, tol, C[j, j])
        for c in range(j + 1, k):
            for i in range(lanes):
                C[j, c, i] = 0.0
        for r in range(j - 1, -1, -1):  # (downwards: the first equal row wins)
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
def _normals(At, rows, cols, k0, k1, ctr, c1, c2, c3, spare_n, has_spare):
    # At[cols[e], rows[e], i] (transposed, see _bartlett) for e = 0..len(rows)-1: the lane's
    # next normal draws, from spare_n where the last fresh counter left one (has_spare), else
    # from a fresh counter (its second normal kept in spare_n); returns the new has_spare
    # (the same for every lane: it depends on the count of normals drawn only)
    lanes = ctr.shape[0]
    for e in range(rows.shape[0]):
        ra, ca = rows[e], cols[e]
        if has_spare:
            for i in range(lanes):
                At[ca, ra, i] = spare_n[i]
        else:
            for i in range(lanes):
                ua, ub = _uniforms(k0, k1, ctr[i], c1[i], c2[i], c3[i])
                x, y = _box_muller(ua, ub)
                At[ca, ra, i] = x
                spare_n[i] = y
                ctr[i] += np.uint64(1)
        has_spare = not has_spare
    return has_spare


@inline
def _bartlett(n, k, q, k0, k1, ctr, c1, c2, c3, At, dof, s, ok, scr, spare, spare_n, has_spare,
              rows, cols):
    """At[j, c, i] = A[c, j] of lane i: the Bartlett factor (n >= k: At upper triangular
    holds A's columns as rows) or eps^T (n < k: At (n, k), row i the normals of unit i).
    q: the network's chi-squared draws so far; spare, spare_n, has_spare: the kept halves of
    the pairs (chi-squared, normals). Returns (r = min(n, k), the number of A's columns, the
    new q, the new has_spare)."""
    lanes = ctr.shape[0]
    if n >= k:
        for j in range(k):              # the diagonal: sqrt(chi^2_{n-j}), draws q, q + 1, ...
            for i in range(lanes):
                dof[i] = np.float64(n - j)
            _chi2(q, dof, k0, k1, ctr, c1, c2, c3, s, ok, scr, spare)
            q += 1
            _roots(s, At[j, j])
        m = 0
        for j in range(k):              # below the diagonal, column by column
            for a in range(j + 1, k):
                rows[m] = a
                cols[m] = j
                m += 1
        has_spare = _normals(At, rows[:m], cols[:m], k0, k1, ctr, c1, c2, c3, spare_n, has_spare)
        return k, q, has_spare
    m = 0
    for u in range(n):                  # eps^T: unit by unit, inputs 0..k-1
        for a in range(k):
            rows[m] = a
            cols[m] = u
            m += 1
    has_spare = _normals(At, rows[:m], cols[:m], k0, k1, ctr, c1, c2, c3, spare_n, has_spare)
    return n, q, has_spare


@inline
def _next_metric(C, At, r, lower, cb, scale, T, G, acc):
    """G = cb + scale * (C A)(C A)^T for every lane, each multiply-add rounded once, in a
    fixed order; T (k, k, LANES) scratch holding T[j, a] = (C A)[a, j], acc (LANES,)
    scratch. lower: A lower triangular (Bartlett: A[c, j] = 0 for c < j)."""
    k = C.shape[0]
    lanes = C.shape[2]
    for j in range(r):
        for a in range(k):
            for i in range(lanes):
                acc[i] = 0.0
            for c in range(j if lower else 0, a + 1):
                for i in range(lanes):
                    acc[i] = fma(C[a, c, i], At[j, c, i], acc[i])
            for i in range(lanes):
                T[j, a, i] = acc[i]
    for a in range(k):
        for b in range(a, k):
            for i in range(lanes):
                acc[i] = T[0, a, i] * T[0, b, i]
            for j in range(1, r):
                for i in range(lanes):
                    acc[i] = fma(T[j, a, i], T[j, b, i], acc[i])
            for i in range(lanes):
                g = fma(scale, acc[i], cb)
                G[a, b, i] = g
                G[b, a, i] = g


@inline
def _factor(G, C, acc, tol, same):
    # C from G: fused (one loop over the lanes, wishart_fused) where it applies, else passes
    if not fused_factor(G, C):
        _cholesky_lanes(G, C, acc, tol, same)


@inline
def _step(C, At, r, lower, cb, scale, T, G, acc):
    # G from C and At: fused for Bartlett layers where it applies, else passes
    if not (lower and fused_step(C, At, cb, scale, G)):
        _next_metric(C, At, r, lower, cb, scale, T, G, acc)


@inline
def _pair_scratch():
    # the kept halves: the chi-squared pairs' (normal, uniform) and the first proposal's
    # (normal, uniform) (chi2_alias), the normals' second Box-Muller normal
    return ((np.empty(LANES), np.empty(LANES), np.empty(LANES), np.empty(LANES)),
            np.empty(LANES))


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
        # (allocated one by one: Numba's parfor analysis fails on tuples of arrays here)
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
        spare = (np.empty(LANES), np.empty(LANES), np.empty(LANES), np.empty(LANES))
        spare_n = np.empty(LANES)
        where = np.empty((2, LANES), dtype=np.uint64)     # (unsigned: no wraparound check)
        lo, hi = chunk_range(ch, n_chunks, total)
        for t0 in range(lo, hi, LANES):
            k0, k1 = _set_lanes(key, first_block, block_size, t0, hi, ctr, c1, c2, c3, where)
            for a in range(k):
                for b in range(k):
                    for i in range(LANES):
                        G[a, b, i] = G1[a, b]
            q = 0
            has_spare = False
            for l in range(L - 1):
                n = widths[l]
                _factor(G, C, s, tol, same)
                r, q, has_spare = _bartlett(n, k, q, k0, k1, ctr, c1, c2, c3, At, dof, s, ok, scr,
                                            spare, spare_n, has_spare, rows, cols)
                _step(C, At, r, n >= k, C_b[l + 1], C_W[l + 1] / n, T, G, s)
                p = 0
                for a in range(k):
                    for b in range(a, k):
                        for i in range(min(LANES, hi - t0)):
                            out[where[0, i], where[1, i], l, p] = G[a, b, i]
                        p += 1


# --- a piece, for tests ----------------------------------------------------------------------
@kernel
def draw_bartlett_pairs(key, block, n, out):
    """out[j, f] = A A^T (k, k) for the factors f = 0, 1 of Wishart_k(n, I) (``_bartlett``)
    drawn one after the other in stream (key, block, j) (the second from the first's kept
    halves where it left some); out (m, 2, k, k), m a multiple of LANES."""
    if out.shape[0] % LANES != 0:
        raise ValueError("len(out) must be a multiple of LANES")
    k = out.shape[2]
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
    spare, spare_n = _pair_scratch()
    where = np.empty((2, LANES), dtype=np.uint64)
    for t0 in range(0, out.shape[0], LANES):
        k0, k1 = _set_lanes(key, block, out.shape[0], t0, out.shape[0], ctr, c1, c2, c3, where)
        q = 0
        has_spare = False
        for f in range(2):
            r, q, has_spare = _bartlett(np.int64(n), k, q, k0, k1, ctr, c1, c2, c3, At, dof, s, ok,
                                        scr, spare, spare_n, has_spare, rows, cols)
            for i in range(LANES):
                for a in range(k):
                    for b in range(k):
                        acc = 0.0
                        for j in range(r):
                            acc += At[j, a, i] * At[j, b, i]
                        out[t0 + i, f, a, b] = acc


@kernel
def factor_and_step(G, At, cb, scale, fused, C, G_next):
    """For tests: C from G (the factor), then G_next = cb + scale (C A)(C A)^T for the
    Bartlett factor At (upper triangular, A's columns as rows), by the fused steps (fused
    True: ``wishart_fused``, k <= FUSED_MAX_K; ValueError where they do not apply) or by the
    passes; all arrays (k, k, LANES)."""
    k = G.shape[0]
    if fused:
        if not (fused_factor(G, C) and fused_step(C, At, cb, scale, G_next)):
            raise ValueError("no fused steps for these arrays")
        return
    acc = np.empty(LANES)
    tol = np.empty(LANES)
    same = np.empty(LANES, dtype=np.int64)
    _cholesky_lanes(G, C, acc, tol, same)
    _next_metric(C, At, k, True, cb, scale, np.empty((k, k, LANES)), G_next, acc)
