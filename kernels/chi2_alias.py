"""The one-input reduced sampler, version 3 (``chi2``): the batches of version 2
(``chi2_batch``, kept as ``chi2_v2``) with fewer random numbers and cheaper binomials.

Per network (lane) and layer, as version 2: a Binomial(n, 1/2) count B of positive units,
then chi-squared variables with B, n - B or n degrees of freedom (module docstring of
``chi2_batch``). What version 3 changes:

- Binomial(n, 1/2) for 128 < n <= 65536 by an exact alias table
  (``mcsim.samplers.binomial_table``: integer weights floor(C(n, k) 2^64 / 2^n), the rest of
  the mass a fallback entry). A draw is one 64-bit word: the network's table draws take a
  fresh counter's x0:x1, then the same counter's x2:x3 (kept per lane), and so on; layers
  without a table (bit count n <= 128, BTRS n > 65536, as version 2) take counters of their
  own and leave the kept word alone. A lane that lands on the fallback entry (probability
  about 1e-17) draws k by BTRS at its next counters and accepts it with probability
  ``accept[k - lo]`` (1 outside the table's window), each accepted proposal followed by the
  counter of that uniform: the law is Binomial(n, 1/2) exactly (proof in
  ``binomial_table``).
- Chi-squared draws in pairs: the network's chi-squared draws q = 0, 1, 2, ... (ReLU and
  linear: one per layer; leaky ReLU: two) take their first Marsaglia-Tsang proposal, for
  even q, from a fresh pair of counters p, p + 1: the Box-Muller normals (x, y) of p and the
  uniforms (u, u') of p + 1, (x, u) for draw q and (y, u') kept for draw q + 1. The two
  normals of Box-Muller are independent, so the proposals are. Rejected proposals are
  retried as in version 2 (2 fresh counters each).
- The first proposals are accepted without logs where a proven bound says that version 2's
  test accepts them (``_mt_sure``: u < 1 - 1.5 d t^4, t = c x, widened for rounding; all but
  about x^4 / (54 d) of the proposals); the other lanes take version 2's test itself. The
  decisions, and so the numbers, are those of the test alone (since 2026-12-03; the golden
  pins did not change).
- The step from Ghat^(l) to Ghat^(l+1) spells out its roundings: g' = fma(C_W / n, g s, C_b)
  with g s rounded (perceptron: fma(C_W / n, s, C_b)) and the leaky-ReLU sum
  s = fma(a^2, s_neg, s_pos). Left to LLVM, whether it contracts a product into a sum (or
  reassociates the product) depended on the surrounding code: version 2's leaky-ReLU
  numbers moved in the last bit when unrelated code was added to its kernel.

Counters are consumed in the order of the draws and depend only on (key, block, network).
Speed (ReLU, n = 1024, one thread): docs/performance.md.
"""
from __future__ import annotations

import numba
import numpy as np

from .activations import LEAKY_RELU, LINEAR, PERCEPTRON, RELU
from .chi2_batch import LANES, binomial_pass, btrs_constants, btrs_proposal, chi2_retries, \
    lane_scratch, lane_uniforms, lane_words, mt_constants, mt_test, set_lanes
from .common import MAX_CHUNKS, check_sampler_shapes, chunk_range, input_metric
from .jit import inline, kernel, parallel_kernel
from .lanes import fma
from .rng import box_muller

__all__ = ["sample_chi2", "draw_binomial_half_alias", "draw_chi2_pairs", "chi2_draw", "LAYOUT_COLUMNS"]

#: columns of a layout row: column offset, log2 of the number of columns (-1: no table),
#: 64 - bits, accept offset, window lo, window length
LAYOUT_COLUMNS = 6


@kernel
def _binomial_alias(n, fresh, k0, k1, ctr, c1, c2, c3, threshold, value, accept, row, out, word,
                    spare_word):
    # out[i] = Binomial(n, 1/2) of every lane by the alias table of layout row `row`, from
    # the 64-bit word x0:x1 of a fresh counter (fresh: its x2:x3 kept in spare_word for the
    # next table draw) or from spare_word. Two loops: the Philox rounds vectorise only
    # without the table's gathers in their loop.
    col0, m, shift, acc0, lo, window = row[0], row[1], row[2], row[3], row[4], row[5]
    low = np.uint64(64 - shift - m)                 # bits of the in-column part
    mask = (np.uint64(1) << low) - np.uint64(1)
    if fresh:
        for i in range(ctr.shape[0]):
            x0, x1, x2, x3 = lane_words(k0, k1, ctr[i], c1[i], c2[i], c3[i])
            word[i] = (x0 << np.uint64(32)) | x1
            spare_word[i] = (x2 << np.uint64(32)) | x3
            ctr[i] += np.uint64(1)
    else:
        for i in range(ctr.shape[0]):
            word[i] = spare_word[i]
    fallback = False
    ucol0 = np.uint64(col0)
    for i in range(ctr.shape[0]):
        # the side (0 kept, 1 alias) is added to the index, not branched on: a branch on it
        # is mispredicted for a good part of the lanes (LLVM keeps this loop scalar: it
        # avoids gathers on Zen), and a select between the two rows became such a branch;
        # unsigned indices carry no wraparound check
        w = word[i] >> np.uint64(shift)
        col = ucol0 + (w >> low)
        k = value[col, np.uint64((w & mask) >= threshold[col])]
        out[i] = k
        fallback |= k < 0.0
    if not fallback:
        return
    # the fallback entry (rare): BTRS proposals, each accepted one with a uniform of its own
    count, a, b, c, v_r, alpha, mode, bound_m = btrs_constants(n)
    for i in range(ctr.shape[0]):
        while out[i] < 0.0:
            ua, ub = lane_uniforms(k0, k1, ctr[i], c1[i], c2[i], c3[i])
            ok, k = btrs_proposal(ua, ub, count, a, b, c, v_r, alpha, mode, bound_m)
            ctr[i] += np.uint64(1)
            if ok:
                u, _ = lane_uniforms(k0, k1, ctr[i], c1[i], c2[i], c3[i])
                ctr[i] += np.uint64(1)
                j = np.int64(k) - lo
                if j < 0 or j >= window or u < accept[acc0 + j]:
                    out[i] = k


@kernel
def _binomial_without_table(n, k0, k1, ctr, c1, c2, c3, out, ok, scr):
    # version 2's passes (bit count or BTRS), compiled once: inlined into each activation's
    # branch of the sampler, their retry loops made its compilation 2.5x longer
    binomial_pass(n, k0, k1, ctr, c1, c2, c3, out, ok, scr)


@kernel
def _chi2_retries(dof, k0, k1, ctr, c1, c2, c3, out, ok, scr):
    # version 2's retry rounds, compiled once (as _binomial_without_table)
    chi2_retries(dof, k0, k1, ctr, c1, c2, c3, out, ok, scr)


@inline
def _binomial(n, row, k0, k1, ctr, c1, c2, c3, out, ok, scr, tables, spare_word, has_spare):
    # out[i] = Binomial(n, 1/2) of every lane: by the alias table where the layer has one
    # (row[1] >= 0), else by bit count or BTRS. Table draws take a counter's two 64-bit words
    # in turn: has_spare (the state of the lanes' batch) says whether spare_word holds the
    # unused one; returns the new state.
    threshold, value, accept = tables
    if row[1] >= 0:
        _binomial_alias(n, not has_spare, k0, k1, ctr, c1, c2, c3, threshold, value, accept, row,
                        out, scr[1], spare_word)
        return not has_spare
    _binomial_without_table(n, k0, k1, ctr, c1, c2, c3, out, ok, scr)
    return has_spare


# --- chi-squared, two draws per pair of counters ---------------------------------------------
#: relative slack of the sure-acceptance bound (_mt_sure): far above the rounding errors of
#: version 2's computed test (a few units of 2^-53 times the terms' sizes)
_SLACK = 2.0 ** -40


@inline
def _mt_sure(x, u, d, c):
    # (value 2 d v^3 of the proposal, accepted for sure): a sufficient condition for
    # Marsaglia-Tsang's test as version 2 computes it (mt_test), without its two logs.
    # With t = c x (v = (1 + t)^3), the test's right side is x^2 / 2 + d (1 - v + log v)
    # = 3 d (log(1 + t) - t + t^2 / 2 - t^3 / 3) >= -1.5 d t^4 for t >= -1/2 (the bracket's
    # derivative is -s^3 / (1 + s)), and 1 + y <= e^y: u < 1 - 1.5 d t^4 accepts.
    # The bound is widened by _SLACK relative to every term (rounding of c, of v, of the
    # logs and sums of mt_test), so that "sure" implies mt_test's computed acceptance;
    # with version 2's squeeze u < 1 - 0.0331 x^4 (for t < -1/2). Otherwise the lane
    # takes mt_test itself (_chi2_settle). Rejection is rare at large d (about x^4 / (54 d)).
    v = fma(c, x, 1.0)                      # (as mt_test compiles: contracted)
    v3 = v * v * v
    x2 = x * x
    t = v - 1.0
    t2 = t * t
    bound = 1.5 * d * (t2 * t2) * (1.0 + _SLACK) + _SLACK * (1.0 + x2 + d * (4.0 + 2.0 * v3))
    sure = (v > 0.0) & ((u < 1.0 - 0.0331 * x2 * x2) | (u <= 0.0)
                        | ((t >= -0.5) & (u < 1.0 - bound)))
    return sure, 2.0 * (d * v3)


@kernel
def _chi2_fresh(dof, k0, k1, ctr, c1, c2, c3, spare_x, spare_u, out, ok, keep_x, keep_u):
    # The first proposal of draw q (q even) of every lane: counters p, p + 1 give the
    # Box-Muller normals (x, y) and the uniforms (u, u'); (x, u) is this proposal (kept in
    # keep_x, keep_u for _chi2_settle), (y, u') is kept for draw q + 1 (_chi2_spare).
    # dof >= 2: Marsaglia-Tsang as version 2 (ok: accepted for sure, _mt_sure); dof 1: x^2;
    # dof 0: 0. Every lane takes its 2 counters, whatever its dof.
    for i in range(ctr.shape[0]):
        di = np.int64(dof[i])
        d, c = mt_constants(di)
        pos = ctr[i]
        ua, ub = lane_uniforms(k0, k1, pos, c1[i], c2[i], c3[i])
        x, y = box_muller(ua, ub)
        u, u2 = lane_uniforms(k0, k1, pos + np.uint64(1), c1[i], c2[i], c3[i])
        spare_x[i] = y
        spare_u[i] = u2
        keep_x[i] = x
        keep_u[i] = u
        sure, g = _mt_sure(x, u, d, c)
        big = di >= 2
        out[i] = g if big else (x * x if di == 1 else 0.0)
        ok[i] = sure | (di < 2)
        ctr[i] = pos + np.uint64(2)


@kernel
def _chi2_spare(dof, spare_x, spare_u, out, ok):
    # The first proposal of draw q + 1 (q even) of every lane: the pair (y, u') that draw
    # q's counters left (no counter). Normal y and uniform u' are independent of each other
    # and of everything draw q used (Box-Muller's two normals are independent).
    for i in range(dof.shape[0]):
        di = np.int64(dof[i])
        d, c = mt_constants(di)
        x = spare_x[i]
        sure, g = _mt_sure(x, spare_u[i], d, c)
        big = di >= 2
        out[i] = g if big else (x * x if di == 1 else 0.0)
        ok[i] = sure | (di < 2)


@kernel
def _chi2_settle(dof, xs, us, ok):
    # The lanes whose first proposal (xs[i], us[i]) _mt_sure left open: version 2's test
    # itself, logs included (rare: their fraction is about x^4 / (54 d))
    for i in range(dof.shape[0]):
        if not ok[i]:
            d, c = mt_constants(np.int64(dof[i]))
            ok[i] = mt_test(xs[i], us[i], d, c)[0]


@inline
def _count_rejected(ok):
    rejected = 0                            # (a vectorised count: mostly none, at large dof)
    for i in range(ok.shape[0]):
        rejected += 0 if ok[i] else 1
    return rejected


@inline
def _chi2(q, dof, k0, k1, ctr, c1, c2, c3, out, ok, scr, spare):
    # out[i] = chi^2 with dof[i] degrees of freedom, the network's draw number q (0, 1, ...
    # in the order of its chi-squared draws): first proposal from a fresh pair of counters
    # (q even) or from the pair's spare (q odd), accepted for sure or by version 2's test
    # (_chi2_settle), then version 2's retry rounds, each retry at 2 fresh counters
    spare_x, spare_u, keep_x, keep_u = spare
    if q % 2 == 0:
        _chi2_fresh(dof, k0, k1, ctr, c1, c2, c3, spare_x, spare_u, out, ok, keep_x, keep_u)
        xs, us = keep_x, keep_u
    else:
        _chi2_spare(dof, spare_x, spare_u, out, ok)
        xs, us = spare_x, spare_u
    if _count_rejected(ok) > 0:             # (only lanes left open can end up rejected)
        _chi2_settle(dof, xs, us, ok)
        if _count_rejected(ok) > 0:
            _chi2_retries(dof, k0, k1, ctr, c1, c2, c3, out, ok, scr)


@inline
def _layer_sum(act_code, act_param, n, l, row, k0, k1, ctr, c1, c2, c3, s, x, neg, ok, scr,
               tables, spare, spare_word, has_spare):
    # s[i] = the layer's sum of sigma(z)^2 / Ghat (perceptron: the count itself) for layer l
    # (0, 1, ...); x scratch. Chi-squared draw numbers: l (ReLU, linear), 2 l and 2 l + 1
    # (leaky ReLU). Returns the binomials' spare-word state (_binomial).
    lanes = ctr.shape[0]
    if act_code == PERCEPTRON:
        has_spare = _binomial(n, row, k0, k1, ctr, c1, c2, c3, s, ok, scr, tables, spare_word,
                              has_spare)
    elif act_code == LINEAR:
        for i in range(lanes):
            x[i] = np.float64(n)
        _chi2(l, x, k0, k1, ctr, c1, c2, c3, s, ok, scr, spare)
    elif act_code == RELU:
        has_spare = _binomial(n, row, k0, k1, ctr, c1, c2, c3, x, ok, scr, tables, spare_word,
                              has_spare)
        _chi2(l, x, k0, k1, ctr, c1, c2, c3, s, ok, scr, spare)
    else:                                   # LEAKY_RELU: B positive, n - B negative units
        has_spare = _binomial(n, row, k0, k1, ctr, c1, c2, c3, x, ok, scr, tables, spare_word,
                              has_spare)
        _chi2(2 * l, x, k0, k1, ctr, c1, c2, c3, s, ok, scr, spare)
        for i in range(lanes):
            x[i] = np.float64(n) - x[i]
        _chi2(2 * l + 1, x, k0, k1, ctr, c1, c2, c3, neg, ok, scr, spare)
        a2 = act_param * act_param
        for i in range(lanes):
            s[i] = fma(a2, neg[i], s[i])
    return has_spare


@inline
def _lanes():
    # a batch's per-lane arrays (the draw kernels below): stream counters (ctr, c1, c2, c3),
    # accepted flags, the retry rounds' scratch
    return (np.empty(LANES, dtype=np.uint64), np.empty(LANES, dtype=np.uint64),
            np.empty(LANES, dtype=np.uint64), np.empty(LANES, dtype=np.uint64),
            np.empty(LANES, dtype=np.bool_), lane_scratch())


@inline
def _spares():
    # the kept halves: ((normal, uniform) of the chi-squared pairs, the first proposal's
    # (normal, uniform)), the 64-bit words of the tables
    return ((np.empty(LANES), np.empty(LANES), np.empty(LANES), np.empty(LANES)),
            np.empty(LANES, dtype=np.uint64))


@parallel_kernel
def sample_chi2(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                act_code, act_param, threshold, value, accept, layout, out):
    """One input, ReLU / leaky ReLU / linear / perceptron: Ghat^(2..L) with O(L) random
    numbers per network, ``LANES`` networks at a time. Arguments and ``out``
    (n_blocks, block_size, L-1, 1) as ``markov.sample_markov``; ``threshold, value, accept,
    layout``: the alias tables (``mcsim.samplers.binomial_table.BinomialTables``, layout row
    l for widths[l]). Raises ValueError for k != 1, another activation or a layout of
    another length."""
    check_sampler_shapes(n_blocks, block_size, inputs, widths, C_W, C_b, out)
    if inputs.shape[0] != 1:
        raise ValueError("the chi2 sampler takes one input")
    if not (act_code == RELU or act_code == LEAKY_RELU or act_code == LINEAR
            or act_code == PERCEPTRON):
        raise ValueError("the chi2 sampler takes relu, leaky_relu, linear or perceptron")
    L = widths.shape[0]
    if layout.shape[0] != L or layout.shape[1] != LAYOUT_COLUMNS:
        raise ValueError("layout: one row of LAYOUT_COLUMNS per width")
    total = n_blocks * block_size
    if L < 2 or total == 0:
        return
    tables = (threshold, value, accept)
    G1 = np.empty((1, 1))
    input_metric(inputs, C_W[0], C_b[0], G1)
    g1 = G1[0, 0]
    n_chunks = min((total + LANES - 1) // LANES, MAX_CHUNKS)
    for ch in numba.prange(n_chunks):
        # (allocated one by one: Numba's parfor analysis fails on the tuples of _lanes here)
        ctr = np.empty(LANES, dtype=np.uint64)
        c1 = np.empty(LANES, dtype=np.uint64)
        c2 = np.empty(LANES, dtype=np.uint64)
        c3 = np.empty(LANES, dtype=np.uint64)
        g = np.empty(LANES)
        s = np.empty(LANES)
        x = np.empty(LANES)
        neg = np.empty(LANES)
        ok = np.empty(LANES, dtype=np.bool_)
        scr = lane_scratch()
        spare = (np.empty(LANES), np.empty(LANES), np.empty(LANES), np.empty(LANES))
        spare_word = np.empty(LANES, dtype=np.uint64)
        where = np.empty((2, LANES), dtype=np.uint64)     # (unsigned: no wraparound check)
        lo, hi = chunk_range(ch, n_chunks, total)
        for t0 in range(lo, hi, LANES):
            k0, k1 = set_lanes(key, first_block, block_size, t0, hi, ctr, c1, c2, c3, where)
            for i in range(LANES):
                g[i] = g1
            has_spare = False
            for l in range(L - 1):
                n = widths[l]
                has_spare = _layer_sum(act_code, act_param, n, l, layout[l], k0, k1, ctr, c1, c2,
                                       c3, s, x, neg, ok, scr, tables, spare, spare_word,
                                       has_spare)
                cb = C_b[l + 1]
                scale = C_W[l + 1] / n
                for i in range(LANES):
                    sg = s[i] if act_code == PERCEPTRON else g[i] * s[i]
                    g[i] = fma(scale, sg if g[i] > 0.0 else 0.0, cb)
                for i in range(min(LANES, hi - t0)):
                    out[where[0, i], where[1, i], l, 0] = g[i]


@kernel
def draw_binomial_half_alias(key, block, n, threshold, value, accept, layout, out):
    """out[j, q] = the Binomial(n, 1/2) draws q = 0, 1 of stream (key, block, j) as version 3
    draws them with the table of layout row 0 (the second from the first counter's spare
    word); out (m, 2), m a multiple of LANES."""
    if out.shape[0] % LANES != 0:
        raise ValueError("len(out) must be a multiple of LANES")
    ctr, c1, c2, c3, ok, scr = _lanes()
    where = np.empty((2, LANES), dtype=np.uint64)
    spare_word = _spares()[1]
    v = np.empty(LANES)
    for t0 in range(0, out.shape[0], LANES):
        k0, k1 = set_lanes(key, block, out.shape[0], t0, out.shape[0], ctr, c1, c2, c3, where)
        has_spare = False
        for q in range(2):
            has_spare = _binomial(np.int64(n), layout[0], k0, k1, ctr, c1, c2, c3, v, ok, scr,
                                  (threshold, value, accept), spare_word, has_spare)
            for i in range(LANES):
                out[t0 + i, q] = v[i]


@kernel
def draw_chi2_pairs(key, block, dof, out):
    """out[j, q] = the chi^2_dof draws q = 0, 1 of stream (key, block, j) as version 3 draws
    them (the second from the first's spare pair); out (m, 2), m a multiple of LANES."""
    if out.shape[0] % LANES != 0:
        raise ValueError("len(out) must be a multiple of LANES")
    ctr, c1, c2, c3, ok, scr = _lanes()
    where = np.empty((2, LANES), dtype=np.uint64)
    spare = _spares()[0]
    d = np.full(LANES, np.float64(dof))
    v = np.empty(LANES)
    for t0 in range(0, out.shape[0], LANES):
        k0, k1 = set_lanes(key, block, out.shape[0], t0, out.shape[0], ctr, c1, c2, c3, where)
        for q in range(2):
            _chi2(q, d, k0, k1, ctr, c1, c2, c3, v, ok, scr, spare)
            for i in range(LANES):
                out[t0 + i, q] = v[i]

#: ``chi2_draw(q, dof, k0, k1, ctr, c1, c2, c3, out, ok, scr, spare)``: the chi-squared draw
#: number q of every lane as version 3 draws it (``_chi2``; spare: four (LANES,) arrays kept
#: between the draws); the wishart sampler's version 3 (``wishart_pairs``) draws its
#: diagonal with it
chi2_draw = _chi2
