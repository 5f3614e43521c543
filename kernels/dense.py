"""Explicit-weights ("dense") sampler of the stochastic metric Ghat: the reference.

Per network, for l = 1..L-1: draw b^(l) ~ N(0, C_b^(l)) (always Gaussian) and the weights
W^(l) (n_l x n_{l-1}) with mean 0 and variance C_W^(l) / n_{l-1}:

- ``weight_code`` 0 (``GAUSSIAN``):   sqrt(C_W / n) * N(0, 1)
- ``weight_code`` 1 (``UNIFORM``):    sqrt(3 C_W / n) * U(-1, 1)
- ``weight_code`` 2 (``RADEMACHER``): sqrt(C_W / n) * (+-1)

then z^(l) = b^(l) + W^(l) sigma(z^(l-1)) (with sigma(z^(0)) := x), and Ghat^(l+1) from
sigma(z^(l)) exactly as in the markov sampler (Rao-Blackwellised: the last layer's
weights are never drawn). Output has the same layout as ``sample_markov``.

Random numbers: network ``j`` of block ``first_block + i`` uses the Philox stream
``(key, first_block + i, j)``. Layer l takes, from its start position, first
``ceil(n_l / 2)`` counters of bias normals, then one fixed-size run of counters per weight
row i (``ceil(n_{l-1} / 2)`` for normals and uniforms, ``ceil(n_{l-1} / 128)`` for signs),
row after row. Weights are generated one row at a time, so scratch memory is O(k n).
"""

from __future__ import annotations

import numba
import numpy as np

from .activations import activate
from .jit import kernel, parallel_kernel
from .common import MAX_CHUNKS, check_sampler_shapes, chunk_range, metric_from_activations
from .reduce import dot
from .rng import fill_normals, fill_signs, fill_uniforms

__all__ = ["sample_dense", "GAUSSIAN", "UNIFORM", "RADEMACHER", "WEIGHT_CODES"]

GAUSSIAN = 0
UNIFORM = 1
RADEMACHER = 2
#: name -> weight_code
WEIGHT_CODES = {"gaussian": GAUSSIAN, "uniform": UNIFORM, "rademacher": RADEMACHER}


@kernel
def _dense_network(key, block, network, inputs, widths, C_W, C_b, act_code, act_param,
                   weight_code, G, h, z, w, out):
    # One network: out (L-1, m); scratch G (k, k), h and z (k, max width) hold sigma(z) of
    # the previous layer and z of the current one, w (max fan-in,) one weight row.
    k, n0 = inputs.shape
    for a in range(k):
        for j in range(n0):
            h[a, j] = inputs[a, j]
    position = 0
    n_in = n0
    for l in range(widths.shape[0] - 1):   # 0-based: computes z of layer l + 1
        n = widths[l]
        # biases
        bias = z[0, :n]
        fill_normals(key, block, network, position, bias)
        position += (n + 1) // 2
        sb = np.sqrt(C_b[l])
        for i in range(n):
            bias[i] *= sb
        for a in range(1, k):               # every input sees the same biases
            for i in range(n):
                z[a, i] = bias[i]
        # weights, one row (unit i) at a time
        if weight_code == RADEMACHER:
            row_ctr = (n_in + 127) // 128
            scale = np.sqrt(C_W[l] / n_in)
        elif weight_code == UNIFORM:
            row_ctr = (n_in + 1) // 2
            scale = np.sqrt(3.0 * C_W[l] / n_in)
        else:
            row_ctr = (n_in + 1) // 2
            scale = np.sqrt(C_W[l] / n_in)
        wr = w[:n_in]
        for i in range(n):
            if weight_code == RADEMACHER:
                fill_signs(key, block, network, position, wr)
            elif weight_code == UNIFORM:
                fill_uniforms(key, block, network, position, wr)
                for j in range(n_in):
                    wr[j] = 2.0 * wr[j] - 1.0
            else:
                fill_normals(key, block, network, position, wr)
            position += row_ctr
            for a in range(k):              # fixed-order sum (kernels/reduce.py)
                z[a, i] += scale * dot(wr, h[a, :n_in])
        for a in range(k):
            # row slices z[a, :n] keep the C layout (z[:, :n][a] would be 'A')
            activate(act_code, act_param, z[a, :n], h[a, :n])
        metric_from_activations(h, n, C_W[l + 1], C_b[l + 1], G, out[l])
        n_in = n


@parallel_kernel
def sample_dense(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                 act_code, act_param, weight_code, out):
    """Sample Ghat^(2..L) of ``n_blocks * block_size`` networks with explicit weights.

    Arguments as ``sample_markov`` plus ``weight_code`` (0 gaussian, 1 uniform,
    2 rademacher); ``out`` (n_blocks, block_size, L-1, m) gets
    ``out[i, j, s, p]`` = pair p of Ghat^(s+2) of network j of block first_block + i.
    Parallel over networks; bitwise independent of the number of threads.
    """
    check_sampler_shapes(n_blocks, block_size, inputs, widths, C_W, C_b, out)
    if weight_code < 0 or weight_code > 2:
        raise ValueError("weight_code must be 0 (gaussian), 1 (uniform) or 2 (rademacher)")
    k, n0 = inputs.shape
    L = widths.shape[0]
    total = n_blocks * block_size
    if L < 2 or total == 0:
        return
    nmax = n0
    for l in range(L - 1):
        nmax = max(nmax, widths[l])
    n_chunks = min(total, MAX_CHUNKS)
    for c in numba.prange(n_chunks):
        G = np.empty((k, k))
        h = np.empty((k, nmax))
        z = np.empty((k, nmax))
        w = np.empty(nmax)
        lo, hi = chunk_range(c, n_chunks, total)
        for t in range(lo, hi):
            i = t // block_size
            j = t - i * block_size
            _dense_network(key, first_block + i, j, inputs, widths, C_W, C_b, act_code,
                           act_param, weight_code, G, h, z, w, out[i, j])
