"""Conditional-Gaussian ("markov") sampler of the stochastic metric Ghat.

Given layer l, the rows z^(l)_{i;.} are independent N(0, Ghat^(l)) (theory notes, section 2),
so a network is sampled layer by layer without weights:

    C C^T = Ghat^(l)             (Cholesky, robust to semidefinite Ghat)
    z^(l) = eps C^T              eps: n_l x k standard normals
    Ghat^(l+1)_{ab} = C_b^(l+1) + C_W^(l+1) / n_l * sum_i sigma(z_{i;a}) sigma(z_{i;b})

Random numbers: network ``j`` of block ``first_block + i`` uses the Philox stream
``(key, first_block + i, j)``. Layer l (1-based) draws its ``k n_l`` normals at counter
position ``P_l = sum_{l' < l} ceil(k n_{l'} / 2)``, laid out input-major: normal
``b n_l + i`` is ``eps_{i;b}``. Each network's numbers depend only on ``(key, block,
network)``, never on threads or on how networks are grouped into chunks.

The layer helpers ``psd_cholesky``, ``input_metric`` and ``metric_from_activations`` live in
``kernels.common`` (shared with ``kernels.dense``).

ReLU with k = 1 or 2 (the common cases) takes a fused path: one pass over eps computes z, the
activation and the Gram sums (``_relu_gram1`` / ``_relu_gram2``) without writing z back,
instead of four passes (z transform, activation, one ``reduce.dot`` per pair). It does the
same operations in the same order as the general path (the same products, the same select,
``reduce.dot``'s 8 partial sums and their combination), so both give the same bits
(``tests/test_lanes.py``, on this machine's target and on a Haswell build). The 8 partial
sums run as one 8-lane vector loop (``kernels/lanes.py``); the scalar tail and the
combination are written out below. Timings: docs/performance.md.
"""

from __future__ import annotations

import numba
import numpy as np

from .activations import RELU, activate, relu
from .common import (MAX_CHUNKS, check_sampler_shapes, chunk_range, correlate_rows,
                     input_metric, metric_from_activations, psd_cholesky)
from .jit import kernel, ordered, parallel_kernel
from .lanes import relu_gram1_lanes, relu_gram2_lanes
from .rng import NORMALS_SCRATCH, fill_normals_with

__all__ = ["sample_markov"]

# The fused ReLU paths. `ordered` (no reassoc), like kernels/reduce.py: the 8 partial sums
# s_j (i = j mod 8) and ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) then the tail are
# reduce.dot's order exactly. The loop over the first 8 floor(n / 8) units is one vector
# loop in LLVM IR (kernels/lanes.py: Numba's own vectorisers cannot vectorise these sums
# without reassoc); lane j there is the scalar partial sum s_j, operation for operation.
@ordered
def _scaled(c, x):
    # c * x outside a reassoc context, as reduce.scaled_dot does it
    return c * x


@ordered
def _relu_gram1(x, n, c00):
    """sum_i relu(c00 x_i)^2 over x[:n], in reduce.dot's order."""
    full = n - n % 8
    s = relu_gram1_lanes(x, full, c00)
    acc = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
    for i in range(full, n):
        a = relu(x[i] * c00, 0.0)
        acc += a * a
    return acc


@ordered
def _z1(x, y, c10, c11):
    # z_1 of the general path: y c11, then + c10 x unless c10 == 0 (as written there)
    t = y * c11
    if c10 != 0.0:
        t = t + c10 * x
    return t


@ordered
def _relu_gram2(x, y, n, c00, c10, c11, res):
    """res[0..2] = the sums of s0 s0, s0 s1, s1 s1 over i < n, s0 = relu(c00 x_i),
    s1 = relu(c11 y_i + c10 x_i), each in reduce.dot's order."""
    full = n - n % 8
    t = relu_gram2_lanes(x, y, full, c00, c10, c11)     # p_j (s0 s0), q_j (s0 s1), r_j (s1 s1)
    sp = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))
    sq = ((t[8] + t[9]) + (t[10] + t[11])) + ((t[12] + t[13]) + (t[14] + t[15]))
    sr = ((t[16] + t[17]) + (t[18] + t[19])) + ((t[20] + t[21]) + (t[22] + t[23]))
    for i in range(full, n):
        a = relu(x[i] * c00, 0.0)
        b = relu(_z1(x[i], y[i], c10, c11), 0.0)
        sp += a * a
        sq += a * b
        sr += b * b
    res[0] = sp
    res[1] = sq
    res[2] = sr


@kernel
def _markov_network(key, block, network, G1, widths, C_W, C_b, act_code, act_param,
                    G, C, z, sums, out, scratch):
    # One network: out (L-1, m); scratch G, C (k, k), z (k * max width,), sums (3,) and the
    # generator's scratch (rng.NORMALS_SCRATCH,) float32.
    k = G1.shape[0]
    for a in range(k):
        for b in range(k):
            G[a, b] = G1[a, b]
    position = 0
    for l in range(widths.shape[0] - 1):   # 0-based: samples z of layer l + 1
        n = widths[l]
        psd_cholesky(G, C)
        eps = z[: k * n]
        fill_normals_with(key, block, network, position, eps, scratch)
        position += (k * n + 1) // 2       # counters used; streams of layers never overlap
        zz = eps.reshape((k, n))
        if act_code == RELU and k <= 2:            # fused path (module docstring)
            scale = C_W[l + 1] / n
            cb = C_b[l + 1]
            if k == 1:
                g = cb + _scaled(scale, _relu_gram1(zz[0], n, C[0, 0]))
                G[0, 0] = g
                out[l, 0] = g
            else:
                _relu_gram2(zz[0], zz[1], n, C[0, 0], C[1, 0], C[1, 1], sums)
                p = 0
                for a in range(2):
                    for b in range(a, 2):
                        g = cb + _scaled(scale, sums[p])
                        G[a, b] = g
                        G[b, a] = g
                        out[l, p] = g
                        p += 1
            continue
        correlate_rows(C, zz, k, n)            # z = C eps (kernels.common)
        activate(act_code, act_param, eps, eps)
        metric_from_activations(zz, n, C_W[l + 1], C_b[l + 1], G, out[l])


@parallel_kernel
def sample_markov(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                  act_code, act_param, out):
    """Sample Ghat^(2..L) of ``n_blocks * block_size`` networks with the markov sampler.

    Args:
        key: uint64 Philox key (``rng.seed_key(seed)``).
        first_block: index of the first block (blocks ``first_block .. + n_blocks - 1``).
        n_blocks, block_size: numbers of blocks and of networks per block.
        inputs: (k, n_0) float64.
        widths: (L,) int64, n_1..n_L.
        C_W, C_b: (L,) float64, entry l-1 for layer l.
        act_code, act_param: activation code and parameter (``kernels.activations``).
        out: (n_blocks, block_size, L-1, m) float64, filled with
            ``out[i, j, s, p]`` = pair p of Ghat^(s+2) of network j of block first_block + i.

    Parallel over networks (fixed chunks, one set of scratch buffers per chunk); the result
    is bitwise independent of the number of threads. Memory besides ``out``: O(threads k n).
    """
    check_sampler_shapes(n_blocks, block_size, inputs, widths, C_W, C_b, out)
    k = inputs.shape[0]
    L = widths.shape[0]
    total = n_blocks * block_size
    if L < 2 or total == 0:
        return
    G1 = np.empty((k, k))
    input_metric(inputs, C_W[0], C_b[0], G1)
    nmax = 1
    for l in range(L - 1):
        nmax = max(nmax, widths[l])
    n_chunks = min(total, MAX_CHUNKS)
    for c in numba.prange(n_chunks):
        G = np.empty((k, k))
        C = np.empty((k, k))
        z = np.empty(k * nmax)
        sums = np.empty(3)
        scratch = np.empty(NORMALS_SCRATCH, dtype=np.float32)
        lo, hi = chunk_range(c, n_chunks, total)
        for t in range(lo, hi):
            i = t // block_size
            j = t - i * block_size
            _markov_network(key, first_block + i, j, G1, widths, C_W, C_b, act_code,
                            act_param, G, C, z, sums, out[i, j], scratch)
