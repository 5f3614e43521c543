"""NTK quantities with explicit weights ("dense"): the reference, for any weight law.

Forward: exactly as ``kernels.dense`` (same random numbers, same Ghat), keeping z, sigma(z)
and sigma'(z) of layers 1..L-1. Backward: plain backpropagation of the 2k gradient columns
(``kernels.ntk_common``) through the weights, which are regenerated row by row from their
random-number positions (scratch memory stays O(k n); the cost is one extra generation of
the weights of layers 2..l-1 per recorded layer l).

Random numbers: the forward pass uses the positions of ``kernels.dense``; after them every
layer l = 2..L owns a fixed run of counters for its probes: 1 counter for the two probe
biases (Gaussian), then one weight row of the configured law for each of the two probes
(``ceil(n_{l-1}/2)`` counters each for normals and uniforms, ``ceil(n_{l-1}/128)`` for signs).
"""

from __future__ import annotations

import numba
import numpy as np

from .activations import activate, activate_derivative
from .common import (MAX_CHUNKS, check_sampler_shapes, chunk_range, input_metric,
                     metric_from_activations)
from .dense import RADEMACHER, UNIFORM
from .jit import inline, kernel, parallel_kernel
from .reduce import dot
from .ntk_common import (add_contribution, check_ntk_shapes, column_gram, learning_rate_metric,
                         mark_unrecorded, output_layer_term, probe_gradients,
                         probe_preactivations, write_ntk)
from .rng import fill_normals, fill_signs, fill_uniforms

__all__ = ["sample_dense_ntk", "dense_positions"]


@inline
def _row_counters(weight_code, n_in):
    return (n_in + 127) // 128 if weight_code == RADEMACHER else (n_in + 1) // 2


@inline
def _row_scale(weight_code, C_W, n_in):
    return np.sqrt(3.0 * C_W / n_in) if weight_code == UNIFORM else np.sqrt(C_W / n_in)


@inline
def _weight_row(key, block, network, position, weight_code, wr):
    # one row of unscaled weights, exactly as kernels.dense draws it
    if weight_code == RADEMACHER:
        fill_signs(key, block, network, position, wr)
    elif weight_code == UNIFORM:
        fill_uniforms(key, block, network, position, wr)
        for j in range(wr.shape[0]):
            wr[j] = 2.0 * wr[j] - 1.0
    else:
        fill_normals(key, block, network, position, wr)


@kernel
def dense_positions(n0, widths, weight_code):
    """(L + 1,) int64 counter positions: ``pos[l-1]`` the first counter of layer l's forward
    numbers (biases, then rows; l = 1..L-1), ``pos[L-1]`` the first counter after the forward
    pass (where the probes of layer 2 start; those of layer l follow those of l - 1), ``pos[L]``
    the end of all numbers."""
    L = widths.shape[0]
    pos = np.zeros(L + 1, dtype=np.int64)
    p = 0
    n_in = n0
    for l in range(L - 1):
        pos[l] = p
        n = widths[l]
        p += (n + 1) // 2 + n * _row_counters(weight_code, n_in)
        n_in = n
    pos[L - 1] = p
    for l in range(2, L + 1):
        p += 1 + 2 * _row_counters(weight_code, widths[l - 2])
    pos[L] = p
    return pos


@kernel
def _dense_ntk_network(key, block, network, inputs, L1, widths, C_W, C_b, lam_W, lam_b,
                       act_code, act_param, weight_code, ntk_layers, pos, Ls, zs, ss, ds, g, y,
                       w, e, D, H, zp, G, out):
    # One network: out (L-1, width). Scratch: Ls (L, k, k); zs, ss, ds (L-1, k nmax);
    # g, y (2k, nmax); w (nmax,); e (2,); D, H (2k, 2k); zp (2, k); G (k, k).
    k, n0 = inputs.shape
    m = k * (k + 1) // 2
    L = widths.shape[0]
    for a in range(k):
        for b in range(k):
            Ls[0, a, b] = L1[a, b]
    n_in = n0
    for l in range(L - 1):                      # forward, as kernels.dense
        n = widths[l]
        position = pos[l]
        z = zs[l, : k * n].reshape((k, n))
        h = inputs if l == 0 else ss[l - 1, : k * n_in].reshape((k, n_in))
        bias = z[0, :n]
        fill_normals(key, block, network, position, bias)
        position += (n + 1) // 2
        sb = np.sqrt(C_b[l])
        for i in range(n):
            bias[i] *= sb
        for a in range(1, k):
            for i in range(n):
                z[a, i] = bias[i]
        row_ctr = _row_counters(weight_code, n_in)
        scale = _row_scale(weight_code, C_W[l], n_in)
        wr = w[:n_in]
        for i in range(n):
            _weight_row(key, block, network, position, weight_code, wr)
            position += row_ctr
            for a in range(k):                  # fixed-order sum, as kernels.dense
                z[a, i] += scale * dot(wr, h[a, :n_in])
        sv = ss[l, : k * n].reshape((k, n))
        dv = ds[l, : k * n].reshape((k, n))
        for a in range(k):
            activate(act_code, act_param, z[a, :n], sv[a, :n])
            activate_derivative(act_code, act_param, z[a, :n], dv[a, :n])
        metric_from_activations(sv, n, C_W[l + 1], C_b[l + 1], G, out[l, :m])
        learning_rate_metric(G, C_W[l + 1], C_b[l + 1], lam_W[l + 1], lam_b[l + 1], Ls[l + 1])
        n_in = n
    p = pos[L - 1]
    for s in range(L - 1):
        lo = s + 2                              # output layer, 1-based
        row = out[s]
        n_in = widths[lo - 2]
        start = p
        p += 1 + 2 * _row_counters(weight_code, n_in)
        if ntk_layers[s] == 0:
            mark_unrecorded(row, m)
            continue
        S = ss[lo - 2, : k * n_in].reshape((k, n_in))
        dsig = ds[lo - 2, : k * n_in].reshape((k, n_in))
        fill_normals(key, block, network, start, e)
        sb = np.sqrt(C_b[lo - 1])
        row_ctr = _row_counters(weight_code, n_in)
        scale = _row_scale(weight_code, C_W[lo - 1], n_in)
        for u in range(2):                      # the two probe units of layer lo
            wr = w[:n_in]
            _weight_row(key, block, network, start + 1 + u * row_ctr, weight_code, wr)
            probe_preactivations(wr, S, n_in, sb * e[u], scale, u, zp)
            for j in range(n_in):
                wr[j] *= scale
            probe_gradients(wr, dsig, n_in, u, g)
        output_layer_term(Ls[lo - 1], H)
        n_cur = n_in
        for lp in range(lo - 1, 0, -1):         # g holds dz^(lo)/dz^(lp), lp = lo-1 .. 1
            column_gram(g, n_cur, D)
            add_contribution(D, Ls[lp - 1], H)
            if lp == 1:
                break
            n_below = widths[lp - 2]            # backpropagate through W^(lp) (n_cur x n_below)
            rc = _row_counters(weight_code, n_below)
            sc = _row_scale(weight_code, C_W[lp - 1], n_below)
            first_row = pos[lp - 1] + (n_cur + 1) // 2
            wr = w[:n_below]
            nc = g.shape[0]
            for c in range(nc):
                for j in range(n_below):
                    y[c, j] = 0.0
            for i in range(n_cur):
                _weight_row(key, block, network, first_row + i * rc, weight_code, wr)
                for c in range(nc):
                    gc = sc * g[c, i]
                    for j in range(n_below):
                        y[c, j] += gc * wr[j]
            db = ds[lp - 2, : k * n_below].reshape((k, n_below))
            for c in range(nc):
                a_c = c % k
                for j in range(n_below):
                    y[c, j] *= db[a_c, j]
            g, y = y, g
            n_cur = n_below
        write_ntk(H, zp, k, row)


@parallel_kernel
def sample_dense_ntk(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                     act_code, act_param, weight_code, lam_W, lam_b, ntk_layers, out):
    """Ghat^(2..L) and the NTK quantities of ``n_blocks * block_size`` networks (dense).

    Arguments as ``kernels.dense.sample_dense``, plus ``lam_W``, ``lam_b`` (L,) learning
    rates and ``ntk_layers`` (L-1,) int64 flags, as ``kernels.ntk_markov.sample_markov_ntk``;
    ``out`` (n_blocks, block_size, L-1, 3 m + 2 k^2). Parallel over networks; bitwise
    independent of the number of threads.
    """
    k, n0 = inputs.shape
    L = widths.shape[0]
    m = k * (k + 1) // 2
    check_sampler_shapes(n_blocks, block_size, inputs, widths, C_W, C_b, out[:, :, :, :m])
    check_ntk_shapes(n_blocks, block_size, inputs, widths, lam_W, lam_b, ntk_layers, out)
    if weight_code < 0 or weight_code > 2:
        raise ValueError("weight_code must be 0 (gaussian), 1 (uniform) or 2 (rademacher)")
    total = n_blocks * block_size
    if L < 2 or total == 0:
        return
    L1 = np.empty((k, k))
    input_metric(inputs, lam_W[0], lam_b[0], L1)
    x = inputs.copy()                           # writable: unifies with the layers' arrays
    pos = dense_positions(n0, widths, weight_code)
    nmax = n0
    for l in range(L - 1):
        nmax = max(nmax, widths[l])
    nc = 2 * k
    n_chunks = min(total, MAX_CHUNKS)
    for c in numba.prange(n_chunks):
        Ls = np.empty((L, k, k))
        zs = np.empty((L - 1, k * nmax))
        ss = np.empty((L - 1, k * nmax))
        ds = np.empty((L - 1, k * nmax))
        g = np.empty((nc, nmax))
        y = np.empty((nc, nmax))
        w = np.empty(nmax)
        e = np.empty(2)
        D = np.empty((nc, nc))
        H = np.empty((nc, nc))
        zp = np.empty((2, k))
        G = np.empty((k, k))
        lo, hi = chunk_range(c, n_chunks, total)
        for t in range(lo, hi):
            i = t // block_size
            j = t - i * block_size
            _dense_ntk_network(key, first_block + i, j, x, L1, widths, C_W, C_b, lam_W,
                               lam_b, act_code, act_param, weight_code, ntk_layers, pos, Ls,
                               zs, ss, ds, g, y, w, e, D, H, zp, G, out[i, j])
