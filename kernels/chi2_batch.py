"""The one-input reduced sampler (``chi2``, version 2): the networks of a chunk in batches of
``LANES`` lanes, layer by layer, each draw as vectorised passes over the lanes: the first
proposal of every lane, then rounds of one further proposal for the lanes still rejected
(compacted to the front of scratch arrays, padded to a multiple of ``PAD``).

The laws are those of ``reduced`` (module docstring there): per layer a Binomial(n, 1/2)
count B of positive units and chi-squared variables with B, n - B or n degrees of freedom.
Exact samplers, no approximation beyond floating-point rounding and the tail of the
normals:

- Binomial(n, 1/2), n <= 128: the number of set bits among the first n bits of one counter
  (always accepted); n > 128: Hormann's BTRS (transformed rejection with squeeze, as in
  ``reduced``), one counter per proposal, (U, V) = its two 53-bit uniforms; squeeze, then
  the exact log bound with the Stirling tail from a table (k < 16) or its series to
  1/(k+1)^5 (truncation < 2e-12). A proposal is accepted with probability 0.85 at
  n = 1024 (0.70 by the squeeze).
- chi^2_d: d = 0: 0 (no counter); d = 1: x^2, x the first Box-Muller normal of one counter;
  d >= 2: 2 Gamma(d / 2) by Marsaglia & Tsang, two counters per proposal: the first
  Box-Muller normal x of counter p and the first uniform u of counter p + 1; squeeze
  u < 1 - 0.0331 x^4, else the exact test log u < x^2 / 2 + d (1 - v + log v).

Box-Muller and every log use the project's vectorisable fdlibm log and sin / cos
(``rng.box_muller``, ``rng.vlog``: < 1 ulp), so the passes call no libm. The normals reach
|x| = 8.57 (53-bit uniforms, as ``fill_normals``' philox53); that cut-off is the only
departure from the exact law beyond rounding (it truncates the normal's law at a
probability of 1e-17).

Random numbers: network j of block b draws from the Philox stream (key, b, j), counters
0, 1, 2, ... consumed in the order of the draws, layer by layer: per layer the binomial
(perceptron, ReLU, leaky ReLU; one counter per proposal), then the chi-squared variables
(ReLU: d = B; leaky ReLU: d = B, then d = n - B; linear: d = n), each proposal taking the
counters above. Draws happen also where Ghat = 0 (the sum is then 0). The number of
counters a network uses varies (rejection), but depends only on (key, block, network):
the lanes a network shares a batch with, the chunking and the threads change no number.
Every proposal of every lane runs in the vector body of the same proposal loop (batches
are always full: lanes past the chunk's end repeat its last network and are dropped; retry
rounds are padded), in elementwise IEEE arithmetic without reductions; divisions by a
square root are compiled without fast-math (``exact``): AVX2 and AVX-512 builds agree.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from .activations import LEAKY_RELU, LINEAR, PERCEPTRON, RELU
from .common import MAX_CHUNKS, check_sampler_shapes, chunk_range, input_metric
from .jit import exact, inline, kernel, parallel_kernel
from .rng import MASK32 as _MASK32, TWO_M53 as _TWO_M53, box_muller as _box_muller, \
    philox_block as _philox, stream_words as _stream_words, u53 as _u53, vlog as _log

__all__ = ["sample_chi2", "draw_binomial_half_batch", "draw_chi2_batch", "LANES",
           "POPCOUNT_MAX_N", "chi2_pass", "lane_scratch", "set_lanes", "lane_uniforms",
           "binomial_pass", "btrs_constants", "btrs_proposal", "lane_words", "mt_constants",
           "mt_test", "chi2_retries"]

#: networks per batch (a multiple of every vector width: the loop body takes every lane)
LANES = 256

#: widths up to which Binomial(n, 1/2) is a bit count of one counter (128 bits)
POPCOUNT_MAX_N = 128

# log(k!) - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2], k = 0..15 (exact up to rounding)
_STIRLING_TAIL = np.array([math.lgamma(k + 1.0) - ((k + 0.5) * math.log(k + 1.0) - (k + 1.0)
                                                   + 0.5 * math.log(2.0 * math.pi))
                           for k in range(16)])


# --- per-lane stream access --------------------------------------------------------------
@inline
def _words(k0, k1, pos, c1, c2, c3):
    return _philox(pos & _MASK32, c1, c2, c3, k0, k1)


@inline
def _uniforms(k0, k1, pos, c1, c2, c3):
    # the two 53-bit uniforms of a counter (as rng.uniforms_at)
    x0, x1, x2, x3 = _philox(pos & _MASK32, c1, c2, c3, k0, k1)
    return _u53(x0, x1) * _TWO_M53, _u53(x2, x3) * _TWO_M53


@inline
def _popcount32(x):
    # x: uint64 holding at most 32 bits (SWAR bit count)
    x = x - ((x >> np.uint64(1)) & np.uint64(0x55555555))
    x = (x & np.uint64(0x33333333)) + ((x >> np.uint64(2)) & np.uint64(0x33333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F)
    return np.int64(((x * np.uint64(0x01010101)) & np.uint64(0xFFFFFFFF)) >> np.uint64(24))


@inline
def _low_mask(count):
    # mask of the lowest `count` bits of a 32-bit word, count any int64 (clamped to 0..32)
    c = min(max(count, 0), 32)
    return (np.uint64(1) << np.uint64(c)) - np.uint64(1)


# --- Binomial(n, 1/2) --------------------------------------------------------------------
@inline
def _stirling_tail(k):
    # k >= 0 integral float; the table below 16, else the series (select: no branch)
    k1 = k + 1.0
    k1sq = k1 * k1
    series = (1.0 / 12.0 - (1.0 / 360.0 - 1.0 / 1260.0 / k1sq) / k1sq) / k1
    table = _STIRLING_TAIL[np.int64(min(k, 15.0))]
    return table if k < 16.0 else series


@exact
def _btrs_constants(n):
    """(count, a, b, c, v_r, alpha, m, bound_m) of BTRS with p = 1/2 for n trials;
    bound_m: the part of the log bound that does not depend on k."""
    count = np.float64(n)
    stddev = np.sqrt(count * 0.25)
    b = 1.15 + 2.53 * stddev
    a = -0.0873 + 0.0248 * b + 0.005
    c = count * 0.5 + 0.5
    v_r = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * stddev
    m = np.floor((count + 1.0) * 0.5)
    bound_m = ((m + 0.5) * _log((m + 1.0) / (count - m + 1.0))
               + _stirling_tail(m) + _stirling_tail(count - m))
    return count, a, b, c, v_r, alpha, m, bound_m


@inline
def _btrs_proposal(ua, ub, count, a, b, c, v_r, alpha, m, bound_m):
    # One BTRS proposal from the uniforms (ua, ub) of one counter: (accepted, k). Written
    # without branches (every term computed, then selected) so that a loop over lanes
    # vectorises; the clamps only keep the unused terms finite.
    u = ua - 0.5
    us = 0.5 - abs(u)
    usc = us if us > 0.0 else 0.5
    k = np.floor((2.0 * a / usc + b) * u + c)
    inside = (us > 0.0) & (k >= 0.0) & (k <= count)   # us = 0: u = -1/2, outside the hat
    kc = min(max(k, 0.0), count)
    vc = ub if ub > 0.0 else 1.0
    lv = _log(vc * alpha / (a / (usc * usc) + b))
    bound = (bound_m + (count + 1.0) * _log((count - m + 1.0) / (count - kc + 1.0))
             + (kc + 0.5) * _log((count - kc + 1.0) / (kc + 1.0))
             - _stirling_tail(kc) - _stirling_tail(count - kc))
    # squeeze; v = 0 is accepted by any finite bound; else the exact bound
    accept = inside & (((us >= 0.07) & (ub <= v_r)) | (ub <= 0.0) | (lv <= bound))
    return accept, kc


@kernel
def _binomial_proposals(n, k0, k1, ctr, c1, c2, c3, out, ok):
    # one proposal per lane i < len(ctr) at its counter ctr[i] (advanced): out[i] = the
    # binomial if ok[i]. One loop body for every lane, vectorised. A function of its own,
    # not inlined: the sampler calls it in six places, and six inlined copies of its vector
    # loops made the sampler's compilation take many minutes and gigabytes.
    if n <= POPCOUNT_MAX_N:
        for i in range(ctr.shape[0]):
            x0, x1, x2, x3 = _words(k0, k1, ctr[i], c1[i], c2[i], c3[i])
            out[i] = np.float64(_popcount32(x0 & _low_mask(n)) + _popcount32(x1 & _low_mask(n - 32))
                                + _popcount32(x2 & _low_mask(n - 64))
                                + _popcount32(x3 & _low_mask(n - 96)))
            ok[i] = True
            ctr[i] += np.uint64(1)
        return
    count, a, b, c, v_r, alpha, m, bound_m = _btrs_constants(n)
    for i in range(ctr.shape[0]):
        ua, ub = _uniforms(k0, k1, ctr[i], c1[i], c2[i], c3[i])
        ok[i], out[i] = _btrs_proposal(ua, ub, count, a, b, c, v_r, alpha, m, bound_m)
        ctr[i] += np.uint64(1)


# --- chi-squared ------------------------------------------------------------------------
@exact
def _mt_constants(dof):
    # Marsaglia-Tsang d = shape - 1/3 and c = 1 / sqrt(9 d) for shape = dof / 2 (dof >= 2;
    # other dof get the constants of dof = 2, unused). IEEE division and sqrt (no rsqrt
    # estimate: the same bits on every vector width).
    d = 0.5 * np.float64(max(dof, 2)) - 1.0 / 3.0
    return d, 1.0 / np.sqrt(9.0 * d)


@inline
def _mt_proposal(k0, k1, pos, c1, c2, c3, d, c):
    # One Marsaglia-Tsang proposal from counters pos (normal x) and pos + 1 (uniform u):
    # (accepted, x, Gamma value d v^3). Branch-free as _btrs_proposal.
    ua, ub = _uniforms(k0, k1, pos, c1, c2, c3)
    x, _ = _box_muller(ua, ub)
    u, _ = _uniforms(k0, k1, pos + np.uint64(1), c1, c2, c3)
    accept, g = _mt_test(x, u, d, c)
    return accept, x, g


@inline
def _mt_test(x, u, d, c):
    # Marsaglia-Tsang's test of the proposal (normal x, uniform u) for shape d + 1/3:
    # (accepted, Gamma value d v^3). Squeeze u < 1 - 0.0331 x^4, else the exact log test.
    v = 1.0 + c * x
    v3 = v * v * v
    x2 = x * x
    lu = _log(u if u > 0.0 else 1.0)
    lv = _log(v3 if v > 0.0 else 1.0)
    accept = (v > 0.0) & ((u < 1.0 - 0.0331 * x2 * x2) | (u <= 0.0)
                          | (lu < 0.5 * x2 + d * (1.0 - v3 + lv)))
    return accept, d * v3


@kernel
def _chi2_proposals(dof, k0, k1, ctr, c1, c2, c3, out, ok):
    # one proposal per lane i < len(ctr) for chi^2 with dof[i] (float64, integral) degrees
    # of freedom at counter ctr[i] (advanced by the counters used: 0, 1 or 2): out[i] the
    # value if ok[i] (dof < 2: always). One loop body for every lane, vectorised.
    for i in range(ctr.shape[0]):
        di = np.int64(dof[i])
        d, c = _mt_constants(di)
        pos = ctr[i]
        accept, x, g = _mt_proposal(k0, k1, pos, c1[i], c2[i], c3[i], d, c)
        big = di >= 2
        out[i] = 2.0 * g if big else (x * x if di == 1 else 0.0)
        ok[i] = accept | (di < 2)
        ctr[i] = pos + np.uint64(2 if big else max(di, 0))


# --- rejected lanes: further proposals, vectorised over the compacted lanes ----------------
#: the compacted lanes of a retry round are padded (repeats of the last) to a multiple of
#: this, so that every proposal runs in the loop's vector body (no scalar remainder, whose
#: code need not be the same instructions)
PAD = 16


@inline
def _gather_rejected(ok, ctr, c1, c2, c3, param, scr):
    # The lanes whose proposal was rejected (ok False), in lane order, to the front of the
    # r* arrays of scr = (idx, rctr, rc1, rc2, rc3, rparam, rout, rok); returns how many.
    # Then rounds (_pad, proposals over the padded front, _settle) until none is left.
    idx, rctr, rc1, rc2, rc3, rparam, rout, rok = scr
    m = 0
    for i in range(ok.shape[0]):          # branch-free: write always, count the rejected
        idx[m] = i
        m += 0 if ok[i] else 1
    for j in range(m):
        i = idx[j]
        rctr[j] = ctr[i]
        rc1[j] = c1[i]
        rc2[j] = c2[i]
        rc3[j] = c3[i]
        rparam[j] = param[i]
    return m


@inline
def _pad(m, scr):
    # entries m..mp-1 repeat entry m - 1 (their results are dropped); returns mp
    idx, rctr, rc1, rc2, rc3, rparam, rout, rok = scr
    mp = (m + PAD - 1) // PAD * PAD
    for j in range(m, mp):
        rctr[j] = rctr[m - 1]
        rc1[j] = rc1[m - 1]
        rc2[j] = rc2[m - 1]
        rc3[j] = rc3[m - 1]
        rparam[j] = rparam[m - 1]
    return mp


@inline
def _settle(m, ctr, out, scr):
    # accepted entries back to their lanes; the rejected ones compacted in place; returns
    # how many are left
    idx, rctr, rc1, rc2, rc3, rparam, rout, rok = scr
    left = 0
    for j in range(m):
        i = idx[j]
        if rok[j]:
            out[i] = rout[j]
            ctr[i] = rctr[j]
        else:
            idx[left] = i
            rctr[left] = rctr[j]
            rc1[left] = rc1[j]
            rc2[left] = rc2[j]
            rc3[left] = rc3[j]
            rparam[left] = rparam[j]
            left += 1
    return left


@inline
def _binomial_pass(n, k0, k1, ctr, c1, c2, c3, out, ok, scr):
    # out[i] = Binomial(n, 1/2) of every lane (float64): first proposals for all lanes, then
    # rounds of further proposals for the lanes still rejected, each lane at its own counters
    _binomial_proposals(n, k0, k1, ctr, c1, c2, c3, out, ok)
    idx, rctr, rc1, rc2, rc3, rparam, rout, rok = scr
    m = _gather_rejected(ok, ctr, c1, c2, c3, out, scr)
    while m > 0:
        mp = _pad(m, scr)
        _binomial_proposals(n, k0, k1, rctr[:mp], rc1[:mp], rc2[:mp], rc3[:mp], rout, rok)
        m = _settle(m, ctr, out, scr)


@inline
def _chi2_pass(dof, k0, k1, ctr, c1, c2, c3, out, ok, scr):
    # out[i] = chi^2 with dof[i] degrees of freedom, as _binomial_pass
    _chi2_proposals(dof, k0, k1, ctr, c1, c2, c3, out, ok)
    _chi2_retries(dof, k0, k1, ctr, c1, c2, c3, out, ok, scr)


@inline
def _chi2_retries(dof, k0, k1, ctr, c1, c2, c3, out, ok, scr):
    # the lanes whose proposal was rejected (ok False): rounds of further proposals
    idx, rctr, rc1, rc2, rc3, rparam, rout, rok = scr
    m = _gather_rejected(ok, ctr, c1, c2, c3, dof, scr)
    while m > 0:
        mp = _pad(m, scr)
        _chi2_proposals(rparam, k0, k1, rctr[:mp], rc1[:mp], rc2[:mp], rc3[:mp], rout, rok)
        m = _settle(m, ctr, out, scr)


@inline
def _scratch():
    return (np.empty(LANES, dtype=np.int64), np.empty(LANES, dtype=np.uint64),
            np.empty(LANES, dtype=np.uint64), np.empty(LANES, dtype=np.uint64),
            np.empty(LANES, dtype=np.uint64), np.empty(LANES), np.empty(LANES),
            np.empty(LANES, dtype=np.bool_))


# --- the sampler -------------------------------------------------------------------------
@inline
def _set_lanes(key, first_block, block_size, t0, t_end, ctr, c1, c2, c3, where):
    # lane i: network t0 + i of the run's range (block first_block + t // block_size,
    # network t % block_size); lanes at or past t_end repeat the last network (dropped).
    # where (2, LANES) int64: the lane's (block in the call, network) = its place in out
    k0 = np.uint64(0)
    k1 = np.uint64(0)
    for i in range(ctr.shape[0]):
        t = min(t0 + i, t_end - 1)
        blk = t // block_size
        where[0, i] = blk
        where[1, i] = t - blk * block_size
        k0, k1, c1[i], c2[i], c3[i] = _stream_words(key, np.uint64(first_block + blk),
                                                    t - blk * block_size)
        ctr[i] = np.uint64(0)
    return k0, k1


@inline
def _layer_sum(act_code, act_param, n, k0, k1, ctr, c1, c2, c3, s, x, neg, ok, scr):
    # s[i] = the layer's sum of sigma(z)^2 / Ghat (perceptron: the sum itself); x scratch
    lanes = ctr.shape[0]
    if act_code == PERCEPTRON:
        _binomial_pass(n, k0, k1, ctr, c1, c2, c3, s, ok, scr)
    elif act_code == LINEAR:
        for i in range(lanes):
            x[i] = np.float64(n)
        _chi2_pass(x, k0, k1, ctr, c1, c2, c3, s, ok, scr)
    elif act_code == RELU:
        _binomial_pass(n, k0, k1, ctr, c1, c2, c3, x, ok, scr)
        _chi2_pass(x, k0, k1, ctr, c1, c2, c3, s, ok, scr)
    else:                                   # LEAKY_RELU: B positive, n - B negative units
        _binomial_pass(n, k0, k1, ctr, c1, c2, c3, x, ok, scr)
        _chi2_pass(x, k0, k1, ctr, c1, c2, c3, s, ok, scr)
        for i in range(lanes):
            x[i] = np.float64(n) - x[i]
        _chi2_pass(x, k0, k1, ctr, c1, c2, c3, neg, ok, scr)
        a2 = act_param * act_param
        for i in range(lanes):
            s[i] = s[i] + a2 * neg[i]


@parallel_kernel
def sample_chi2(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                act_code, act_param, out):
    """One input, ReLU / leaky ReLU / linear / perceptron: Ghat^(2..L) with O(L) random
    numbers per network, ``LANES`` networks at a time. Arguments and ``out``
    (n_blocks, block_size, L-1, 1) as ``markov.sample_markov``; raises ValueError for k != 1
    or another activation."""
    check_sampler_shapes(n_blocks, block_size, inputs, widths, C_W, C_b, out)
    if inputs.shape[0] != 1:
        raise ValueError("the chi2 sampler takes one input")
    if not (act_code == RELU or act_code == LEAKY_RELU or act_code == LINEAR
            or act_code == PERCEPTRON):
        raise ValueError("the chi2 sampler takes relu, leaky_relu, linear or perceptron")
    L = widths.shape[0]
    total = n_blocks * block_size
    if L < 2 or total == 0:
        return
    G1 = np.empty((1, 1))
    input_metric(inputs, C_W[0], C_b[0], G1)
    g1 = G1[0, 0]
    n_chunks = min((total + LANES - 1) // LANES, MAX_CHUNKS)
    for ch in numba.prange(n_chunks):
        ctr = np.empty(LANES, dtype=np.uint64)
        c1 = np.empty(LANES, dtype=np.uint64)
        c2 = np.empty(LANES, dtype=np.uint64)
        c3 = np.empty(LANES, dtype=np.uint64)
        g = np.empty(LANES)
        s = np.empty(LANES)
        x = np.empty(LANES)
        neg = np.empty(LANES)
        ok = np.empty(LANES, dtype=np.bool_)
        scr = _scratch()
        where = np.empty((2, LANES), dtype=np.int64)
        lo, hi = chunk_range(ch, n_chunks, total)
        for t0 in range(lo, hi, LANES):
            k0, k1 = _set_lanes(key, first_block, block_size, t0, hi, ctr, c1, c2, c3, where)
            for i in range(LANES):
                g[i] = g1
            for l in range(L - 1):
                n = widths[l]
                _layer_sum(act_code, act_param, n, k0, k1, ctr, c1, c2, c3, s, x, neg, ok, scr)
                cb = C_b[l + 1]
                scale = C_W[l + 1] / n
                for i in range(LANES):
                    sg = s[i] if act_code == PERCEPTRON else g[i] * s[i]
                    g[i] = cb + scale * (sg if g[i] > 0.0 else 0.0)
                for i in range(min(LANES, hi - t0)):
                    out[where[0, i], where[1, i], l, 0] = g[i]


# --- the pieces, for tests ---------------------------------------------------------------
@kernel
def draw_binomial_half_batch(key, block, n, out):
    """out[j] = Binomial(n, 1/2) drawn first in stream (key, block, j), by the batch
    passes (len(out) a multiple of LANES)."""
    if out.shape[0] % LANES != 0:
        raise ValueError("len(out) must be a multiple of LANES")
    ctr = np.empty(LANES, dtype=np.uint64)
    c1 = np.empty(LANES, dtype=np.uint64)
    c2 = np.empty(LANES, dtype=np.uint64)
    c3 = np.empty(LANES, dtype=np.uint64)
    ok = np.empty(LANES, dtype=np.bool_)
    scr = _scratch()
    where = np.empty((2, LANES), dtype=np.int64)
    for t0 in range(0, out.shape[0], LANES):
        k0, k1 = _set_lanes(key, block, out.shape[0], t0, out.shape[0], ctr, c1, c2, c3, where)
        _binomial_pass(np.int64(n), k0, k1, ctr, c1, c2, c3, out[t0:t0 + LANES], ok, scr)


@kernel
def draw_chi2_batch(key, block, dof, out):
    """out[j] = chi^2_dof drawn first in stream (key, block, j), by the batch passes
    (len(out) a multiple of LANES)."""
    if out.shape[0] % LANES != 0:
        raise ValueError("len(out) must be a multiple of LANES")
    ctr = np.empty(LANES, dtype=np.uint64)
    c1 = np.empty(LANES, dtype=np.uint64)
    c2 = np.empty(LANES, dtype=np.uint64)
    c3 = np.empty(LANES, dtype=np.uint64)
    ok = np.empty(LANES, dtype=np.bool_)
    scr = _scratch()
    d = np.full(LANES, np.float64(dof))
    where = np.empty((2, LANES), dtype=np.int64)
    for t0 in range(0, out.shape[0], LANES):
        k0, k1 = _set_lanes(key, block, out.shape[0], t0, out.shape[0], ctr, c1, c2, c3, where)
        _chi2_pass(d, k0, k1, ctr, c1, c2, c3, out[t0:t0 + LANES], ok, scr)


# --- the batch machinery, for the other batch samplers (``wishart_batch``) -----------------
#: ``chi2_pass(dof, k0, k1, ctr, c1, c2, c3, out, ok, scr)``: chi^2 of every lane
chi2_pass = _chi2_pass
#: ``lane_scratch()``: the scratch arrays of the retry rounds (``scr``)
lane_scratch = _scratch
#: ``set_lanes(key, first_block, block_size, t0, t_end, ctr, c1, c2, c3, where)``: the lanes'
#: streams; returns the key words (k0, k1)
set_lanes = _set_lanes
#: ``lane_uniforms(k0, k1, pos, c1, c2, c3)``: the two 53-bit uniforms of one counter
lane_uniforms = _uniforms
#: ``binomial_pass(n, k0, k1, ctr, c1, c2, c3, out, ok, scr)``: Binomial(n, 1/2) of every lane
#: (bit count or BTRS)
binomial_pass = _binomial_pass
#: ``btrs_constants(n)`` / ``btrs_proposal(ua, ub, *constants)``: one BTRS proposal
btrs_constants = _btrs_constants
btrs_proposal = _btrs_proposal
#: ``lane_words(k0, k1, pos, c1, c2, c3)``: the four 32-bit words of one counter
lane_words = _words
#: ``mt_constants(dof)`` / ``mt_test(x, u, d, c)``: Marsaglia-Tsang's constants and test
mt_constants = _mt_constants
mt_test = _mt_test
#: ``chi2_retries(dof, k0, k1, ctr, c1, c2, c3, out, ok, scr)``: further proposals for the
#: lanes with ok False (each at fresh counters, as ``chi2_pass``)
chi2_retries = _chi2_retries
