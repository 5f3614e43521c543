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
"""

from __future__ import annotations

import numba
import numpy as np

from .activations import activate
from .common import (MAX_CHUNKS, check_sampler_shapes, chunk_range, input_metric,
                     metric_from_activations, psd_cholesky)
from .jit import kernel, parallel_kernel
from .rng import fill_normals

__all__ = ["sample_markov"]

@kernel
def _markov_network(key, block, network, G1, widths, C_W, C_b, act_code, act_param,
                    G, C, z, out):
    # One network: out (L-1, m); scratch G, C (k, k) and z (k * max width,).
    k = G1.shape[0]
    for a in range(k):
        for b in range(k):
            G[a, b] = G1[a, b]
    position = 0
    for l in range(widths.shape[0] - 1):   # 0-based: samples z of layer l + 1
        n = widths[l]
        psd_cholesky(G, C)
        eps = z[: k * n]
        fill_normals(key, block, network, position, eps)
        position += (k * n + 1) // 2       # counters used; streams of layers never overlap
        zz = eps.reshape((k, n))
        # z_a = sum_{b <= a} C[a, b] eps_b, in place: descending a reads only rows b < a,
        # which still hold eps. Each statement is a vectorisable loop over units i.
        for a in range(k - 1, -1, -1):
            caa = C[a, a]
            for i in range(n):
                zz[a, i] *= caa
            for b in range(a):
                cab = C[a, b]
                if cab != 0.0:
                    for i in range(n):
                        zz[a, i] += cab * zz[b, i]
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
        lo, hi = chunk_range(c, n_chunks, total)
        for t in range(lo, hi):
            i = t // block_size
            j = t - i * block_size
            _markov_network(key, first_block + i, j, G1, widths, C_W, C_b, act_code,
                            act_param, G, C, z, out[i, j])
