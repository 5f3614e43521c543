"""Pieces shared by the sampler kernels: the fixed-chunk parallel loop, shape checks, and the
layer math every sampler needs (the input metric, a semidefinite-robust Cholesky factor, the
stochastic metric from a layer's activations).

Chunking: the networks of one call are split into ``min(total, MAX_CHUNKS)`` fixed chunks
(``chunk_range``), each with its own scratch buffers, for the ``prange`` loop. The number is
fixed rather than derived from the thread count (``numba.get_num_threads()`` inside a kernel
makes it uncachable); chunking never changes results, because every network's random numbers
depend only on (key, block, network in block).
"""

from __future__ import annotations

import numpy as np

from .jit import inline
from .reduce import scaled_dot, sub_dot_seq

__all__ = ["MAX_CHUNKS", "chunk_range", "check_sampler_shapes", "psd_cholesky", "input_metric",
           "metric_from_activations", "PIVOT_RTOL"]

#: Pivots of the Cholesky factorisation below PIVOT_RTOL * max(diag) are treated as zero.
PIVOT_RTOL = 1e-12

#: Number of chunks (each with its own scratch buffers) the networks of a call are split
#: into for the parallel loop (see the module docstring).
MAX_CHUNKS = 256


@inline
def psd_cholesky(G, C):
    """Lower-triangular C with C C^T = G for a symmetric positive SEMIdefinite G (k, k).

    Row-oriented (Cholesky-Banachiewicz). Pivots ``d <= PIVOT_RTOL * max(diag G)`` (zero
    variance left, up to round-off: repeated inputs, k > n, dead units) get C[j, j] = 0 and
    the entries below them 0, which is the exact factor of the semidefinite limit.
    A row of G that equals an earlier row exactly (identical inputs) copies that row of C,
    so identical inputs give bitwise identical preactivations and Ghat entries.
    """
    k = G.shape[0]
    dmax = 0.0
    for a in range(k):
        dmax = max(dmax, G[a, a])
    tol = PIVOT_RTOL * dmax
    for j in range(k):
        dup = -1
        for i in range(j):
            same = True
            for c in range(k):
                if G[i, c] != G[j, c]:
                    same = False
                    break
            if same:
                dup = i
                break
        if dup >= 0:
            for c in range(k):
                C[j, c] = C[dup, c]
            continue
        for t in range(j):
            if C[t, t] > 0.0:
                C[j, t] = sub_dot_seq(G[j, t], C[j], C[t], t) / C[t, t]
            else:
                C[j, t] = 0.0
        d = sub_dot_seq(G[j, j], C[j], C[j], j)
        C[j, j] = np.sqrt(d) if d > tol else 0.0
        for c in range(j + 1, k):
            C[j, c] = 0.0


@inline
def input_metric(inputs, C_W1, C_b1, G):
    """Ghat^(1) (k, k) from inputs (k, n_0): C_b + C_W / n_0 * x_a . x_b (deterministic)."""
    k, n0 = inputs.shape
    for a in range(k):
        for b in range(a, k):
            G[a, b] = C_b1 + scaled_dot(C_W1 / n0, inputs[a], inputs[b])
            G[b, a] = G[a, b]


@inline
def correlate_rows(C, zz, k, n):
    """z_a = sum_{b <= a} C[a, b] eps_b in place on zz (k, >= n) holding eps, first n units.

    Descending a reads only rows b < a, which still hold eps; each statement is a
    vectorisable loop over units i (the markov kernels' z transform, in one order).
    """
    for a in range(k - 1, -1, -1):
        caa = C[a, a]
        for i in range(n):
            zz[a, i] *= caa
        for b in range(a):
            cab = C[a, b]
            if cab != 0.0:
                for i in range(n):
                    zz[a, i] += cab * zz[b, i]


@inline
def metric_from_activations(s, n, C_W, C_b, G, out):
    """Ghat = C_b + C_W / n * s_a . s_b from s = (k, >= n) rows of sigma(z), first n used.

    Writes the full symmetric G (k, k) and its upper triangle in pair order to out (m,).
    Every sum here and in ``input_metric`` / ``psd_cholesky`` runs in the fixed order of
    ``kernels.reduce``: the same bits on AVX2 and AVX-512 nodes.
    """
    k = s.shape[0]
    scale = C_W / n
    p = 0
    for a in range(k):
        for b in range(a, k):
            g = C_b + scaled_dot(scale, s[a, :n], s[b, :n])   # fixed order (kernels/reduce.py)
            G[a, b] = g
            G[b, a] = g
            out[p] = g
            p += 1


@inline
def chunk_range(c, n_chunks, total):
    return (c * total) // n_chunks, ((c + 1) * total) // n_chunks


@inline
def check_sampler_shapes(n_blocks, block_size, inputs, widths, C_W, C_b, out):
    k = inputs.shape[0]
    L = widths.shape[0]
    if C_W.shape[0] != L or C_b.shape[0] != L:
        raise ValueError("C_W and C_b need one entry per layer")
    if (out.shape[0] != n_blocks or out.shape[1] != block_size or out.shape[2] != L - 1
            or out.shape[3] != k * (k + 1) // 2):
        raise ValueError("out must have shape (n_blocks, block_size, L - 1, k (k + 1) / 2)")
