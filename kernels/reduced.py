"""Reduced samplers: the law of Ghat^(l+1) given Ghat^(l) in closed form, O(L) or O(L k^2)
random numbers per network instead of O(n L k) (theory notes, section 2: given layer l the
rows z^(l)_{i;.} are independent N(0, Ghat^(l))).

One input (k = 1), g = Ghat^(l) > 0, z_i = sqrt(g) eps_i with eps_i iid N(0, 1), i = 1..n:

    ReLU        sum_i sigma(z_i)^2 = g X_B            B ~ Binomial(n, 1/2) (units with eps > 0)
    leaky ReLU  sum_i sigma(z_i)^2 = g (X_B + a^2 X'_{n-B})    (a: the slope)
    linear      sum_i sigma(z_i)^2 = g X_n
    perceptron  sum_i sigma(z_i)^2 = B

where X_d, X'_d are independent chi-squared variables with d degrees of freedom (given the
signs, the |eps_i| are iid half-normal, and a sum of d squared half-normals is chi^2_d).
Ghat^(l+1) = C_b + C_W / n * (that sum). With g = 0 (no variance left) every z is 0 and the
sum is 0, as in the markov sampler.

Linear activation, any k: with C C^T = Ghat^(l) (``psd_cholesky``) and eps (n, k) iid
normals, sum_i z_i z_i^T = C (eps^T eps) C^T and eps^T eps ~ Wishart_k(n, I). For n >= k the
Bartlett decomposition gives eps^T eps = A A^T in law, A (k, k) lower triangular with
A_jj = sqrt(chi^2_{n-j}) (j = 0..k-1) and A_ij ~ N(0, 1) for i > j; for n < k, A = eps^T
(k, n) is drawn directly. Ghat^(l+1)_{ab} = C_b + C_W / n * (T T^T)_{ab} with T = C A.

Exact samplers of the pieces (no approximation beyond floating-point rounding):

- Binomial(n, 1/2): n <= 128: the number of set bits among the first n bits of one Philox
  counter; n > 128: Hormann's BTRS (transformed rejection with squeeze, W. Hormann, "The
  generation of binomial random variates", J. Stat. Comput. Simul. 46, 1993), with the
  Stirling tail log(k!) - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2] from a table
  (k < 16) or its series to 1/(k+1)^5 (truncation < 2e-12).
- chi^2_d = 2 Gamma(d / 2): d = 0: 0; d = 1: eps^2; d >= 2: Marsaglia & Tsang (2000),
  "A simple method for generating gamma variables" (exact rejection, shape >= 1).

Random numbers: network j of block b draws from the Philox stream (key, b, j), counters
0, 1, 2, ... in the order the draws happen, layer by layer: a uniform draw takes u_a of a
new counter and keeps u_b for the next uniform draw; a normal draw likewise takes the two
Box-Muller normals of a new counter (separate buffers); a bit count takes a whole new
counter. The number of counters a network uses varies (rejection), but it depends only on
(key, block, network): results are independent of threads and of how blocks are grouped.
A layer takes a few counters on average (a handful even in rare rejection runs), far below
the 2**32 counters of a stream.

Stream state ``st`` (5,) float64: [next counter, uniform buffered (0/1), buffered uniform,
normal buffered (0/1), buffered normal].
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .activations import LEAKY_RELU, LINEAR, PERCEPTRON, RELU
from .common import (MAX_CHUNKS, check_sampler_shapes, chunk_range, input_metric,
                     psd_cholesky)
from .jit import inline, kernel, parallel_kernel
from .reduce import dot_seq
from .rng import normals_at, uniforms_at, words_at

__all__ = ["sample_chi2_v1", "sample_wishart", "CHI2_ACTIVATIONS", "draw_binomial_half",
           "draw_chi2", "POPCOUNT_MAX_N"]

#: activation codes the one-input sampler handles
CHI2_ACTIVATIONS = (RELU, LEAKY_RELU, LINEAR, PERCEPTRON)

#: widths up to which Binomial(n, 1/2) is a bit count of one counter (128 bits)
POPCOUNT_MAX_N = 128

# log(k!) - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2], k = 0..15 (exact up to rounding)
_STIRLING_TAIL = np.array([math.lgamma(k + 1.0) - ((k + 0.5) * math.log(k + 1.0) - (k + 1.0)
                                                   + 0.5 * math.log(2.0 * math.pi))
                           for k in range(16)])


# --- the stream ---------------------------------------------------------------------------
@inline
def _stream_reset(st):
    st[0] = 0.0
    st[1] = 0.0
    st[3] = 0.0


@inline
def _from_pairs(draw_pair, slot, key, block, network, st):
    # one value of a stream drawn in pairs: st[slot] != 0 when st[slot + 1] holds the second
    # value of the last pair (returned next); otherwise a fresh pair at counter st[0]
    if st[slot] != 0.0:
        st[slot] = 0.0
        return st[slot + 1]
    a, b = draw_pair(key, block, network, np.uint64(st[0]))
    st[0] += 1.0
    st[slot] = 1.0
    st[slot + 1] = b
    return a


@inline
def _uniform(key, block, network, st):
    return _from_pairs(uniforms_at, 1, key, block, network, st)


@inline
def _normal(key, block, network, st):
    return _from_pairs(normals_at, 3, key, block, network, st)


@inline
def _popcount32(x):
    # x: uint64 holding at most 32 bits (SWAR bit count)
    x = x - ((x >> np.uint64(1)) & np.uint64(0x55555555))
    x = (x & np.uint64(0x33333333)) + ((x >> np.uint64(2)) & np.uint64(0x33333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F)
    return np.int64(((x * np.uint64(0x01010101)) & np.uint64(0xFFFFFFFF)) >> np.uint64(24))


@inline
def _low_bits(x, count):
    # the lowest `count` (0..32) bits of the 32-bit word x
    if count >= 32:
        return x
    if count <= 0:
        return np.uint64(0)
    return x & ((np.uint64(1) << np.uint64(count)) - np.uint64(1))


@inline
def _stirling_tail(k):
    if k < 16.0:
        return _STIRLING_TAIL[np.int64(k)]
    k1 = k + 1.0
    k1sq = k1 * k1
    return (1.0 / 12.0 - (1.0 / 360.0 - 1.0 / 1260.0 / k1sq) / k1sq) / k1


# _binomial_half and _chi2 are functions of their own, not inlined: the samplers call them in
# up to seven places, and as many inlined copies of the rejection loops made the sampler's
# compilation take minutes and gigabytes (same operations, same bits either way)
@kernel
def _binomial_half(n, key, block, network, st):
    """Binomial(n, 1/2), n >= 0 (int64)."""
    if n <= 0:
        return np.int64(0)
    if n <= POPCOUNT_MAX_N:
        x0, x1, x2, x3 = words_at(key, block, network, np.uint64(st[0]))
        st[0] += 1.0
        return (_popcount32(_low_bits(x0, n)) + _popcount32(_low_bits(x1, n - 32))
                + _popcount32(_low_bits(x2, n - 64)) + _popcount32(_low_bits(x3, n - 96)))
    # BTRS with p = 1/2 (r = p / (1 - p) = 1)
    count = np.float64(n)
    stddev = np.sqrt(count * 0.25)
    b = 1.15 + 2.53 * stddev
    a = -0.0873 + 0.0248 * b + 0.005
    c = count * 0.5 + 0.5
    v_r = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * stddev
    m = np.floor((count + 1.0) * 0.5)
    while True:
        u = _uniform(key, block, network, st) - 0.5
        v = _uniform(key, block, network, st)
        us = 0.5 - abs(u)
        if us <= 0.0:            # u = -1/2 exactly: outside the hat's support
            continue
        k = np.floor((2.0 * a / us + b) * u + c)
        if k < 0.0 or k > count:
            continue
        if us >= 0.07 and v <= v_r:
            return np.int64(k)
        if v <= 0.0:             # v = 0: accepted by any finite bound
            return np.int64(k)
        lv = np.log(v * alpha / (a / (us * us) + b))
        bound = ((m + 0.5) * np.log((m + 1.0) / (count - m + 1.0))
                 + (count + 1.0) * np.log((count - m + 1.0) / (count - k + 1.0))
                 + (k + 0.5) * np.log((count - k + 1.0) / (k + 1.0))
                 + _stirling_tail(m) + _stirling_tail(count - m)
                 - _stirling_tail(k) - _stirling_tail(count - k))
        if lv <= bound:
            return np.int64(k)


@inline
def _gamma_ge1(shape, key, block, network, st):
    """Gamma(shape, 1) for shape >= 1 (Marsaglia & Tsang 2000)."""
    d = shape - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    while True:
        x = _normal(key, block, network, st)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = _uniform(key, block, network, st)
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2:
            return d * v
        if u > 0.0 and np.log(u) < 0.5 * x2 + d * (1.0 - v + np.log(v)):
            return d * v
        if u == 0.0:
            return d * v


@kernel
def _chi2(dof, key, block, network, st):
    """chi^2 with dof >= 0 (int64) degrees of freedom."""
    if dof <= 0:
        return 0.0
    if dof == 1:
        x = _normal(key, block, network, st)
        return x * x
    return 2.0 * _gamma_ge1(0.5 * np.float64(dof), key, block, network, st)


# --- one input ------------------------------------------------------------------------------
@inline
def _chi2_network(key, block, network, g1, widths, C_W, C_b, act_code, act_param, st, out):
    # out (L-1, 1)
    _stream_reset(st)
    g = g1
    for l in range(widths.shape[0] - 1):   # 0-based: from Ghat of layer l + 1 to layer l + 2
        n = widths[l]
        s = 0.0
        if g > 0.0:
            if act_code == RELU:
                s = g * _chi2(_binomial_half(n, key, block, network, st), key, block, network, st)
            elif act_code == LEAKY_RELU:
                pos = _binomial_half(n, key, block, network, st)
                xp = _chi2(pos, key, block, network, st)
                xn = _chi2(n - pos, key, block, network, st)
                s = g * (xp + act_param * act_param * xn)
            elif act_code == LINEAR:
                s = g * _chi2(n, key, block, network, st)
            else:                          # PERCEPTRON
                s = np.float64(_binomial_half(n, key, block, network, st))
        g = C_b[l + 1] + C_W[l + 1] / n * s
        out[l, 0] = g


@parallel_kernel
def sample_chi2_v1(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                act_code, act_param, out):
    """Sampler ``chi2_v1`` (the ``chi2`` of earlier versions, kept to resume and extend their
    files bitwise; new runs use ``chi2_batch.sample_chi2``): one input, ReLU / leaky ReLU /
    linear / perceptron, Ghat^(2..L) with O(L) random numbers per network, network by
    network. Arguments and ``out`` (n_blocks, block_size, L-1, 1) as
    ``markov.sample_markov``; raises ValueError for k != 1 or another activation."""
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
    n_chunks = min(total, MAX_CHUNKS)
    for c in numba.prange(n_chunks):
        st = np.zeros(5)
        lo, hi = chunk_range(c, n_chunks, total)
        for t in range(lo, hi):
            i = t // block_size
            j = t - i * block_size
            _chi2_network(key, np.uint64(first_block + i), j, g1, widths, C_W, C_b, act_code,
                          act_param, st, out[i, j])


# --- linear, any k --------------------------------------------------------------------------
@inline
def _wishart_network(key, block, network, G1, widths, C_W, C_b, G, C, A, T, st, out):
    # out (L-1, m); scratch G, C, A, T (k, k)
    _stream_reset(st)
    k = G1.shape[0]
    for a in range(k):
        for b in range(k):
            G[a, b] = G1[a, b]
    for l in range(widths.shape[0] - 1):
        n = widths[l]
        psd_cholesky(G, C)
        r = min(n, k)
        if n >= k:                         # Bartlett, column by column
            for j in range(k):
                for i in range(j):
                    A[i, j] = 0.0
                A[j, j] = np.sqrt(_chi2(n - j, key, block, network, st))
                for i in range(j + 1, k):
                    A[i, j] = _normal(key, block, network, st)
        else:                              # A = eps^T, unit by unit
            for i in range(n):
                for a in range(k):
                    A[a, i] = _normal(key, block, network, st)
        for a in range(k):                 # T = C A (k, r); C is lower triangular
            for j in range(r):
                T[a, j] = dot_seq(C[a], A[:, j], a + 1)
        scale = C_W[l + 1] / n
        p = 0
        for a in range(k):
            for b in range(a, k):
                g = C_b[l + 1] + scale * dot_seq(T[a], T[b], r)
                G[a, b] = g
                G[b, a] = g
                out[l, p] = g
                p += 1


@parallel_kernel
def sample_wishart(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                   act_code, act_param, out):
    """Linear activation, any k: Ghat^(2..L) with O(L k^2) random numbers per network
    (Bartlett). Arguments and ``out`` as ``markov.sample_markov``; raises ValueError for
    another activation."""
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
    n_chunks = min(total, MAX_CHUNKS)
    for c in numba.prange(n_chunks):
        G = np.empty((k, k))
        C = np.empty((k, k))
        A = np.empty((k, k))
        T = np.empty((k, k))
        st = np.zeros(5)
        lo, hi = chunk_range(c, n_chunks, total)
        for t in range(lo, hi):
            i = t // block_size
            j = t - i * block_size
            _wishart_network(key, np.uint64(first_block + i), j, G1, widths, C_W, C_b,
                             G, C, A, T, st, out[i, j])


# --- the pieces, for tests ------------------------------------------------------------------
@kernel
def draw_binomial_half(key, block, n, out):
    """out[j] = Binomial(n, 1/2) drawn first in stream (key, block, j)."""
    st = np.zeros(5)
    for j in range(out.shape[0]):
        _stream_reset(st)
        out[j] = _binomial_half(np.int64(n), key, np.uint64(block), j, st)


@kernel
def draw_chi2(key, block, dof, out):
    """out[j] = chi^2_dof drawn first in stream (key, block, j)."""
    st = np.zeros(5)
    for j in range(out.shape[0]):
        _stream_reset(st)
        out[j] = _chi2(np.int64(dof), key, np.uint64(block), j, st)
