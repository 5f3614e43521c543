"""dNTK quantities with explicit weights ("dense"): exact per-network second derivatives.

Forward pass from explicit weights, then, per recorded layer l, the NTK and the dNTK of two
probe units of layer l by forward-mode differentiation of the NTK's backward pass
(``kernels.dntk_common``: the equations, the quantities written and their layout). Every
product is with the explicit weights; the weights of layers 1..L-1 are kept in memory
(sum_l n_l n_{l-1} floats per thread) instead of being regenerated row by row as in
``kernels.ntk_dense``.

Random numbers: exactly those of ``kernels.ntk_dense`` (``dense_positions``): the same
networks and probes, so the metric and the NTK agree with that kernel to round-off.
"""

from __future__ import annotations

import numba
import numpy as np

from .activations import activate, activate_derivative, activate_second
from .common import MAX_CHUNKS, check_sampler_shapes, chunk_range, metric_from_activations
from .jit import kernel, parallel_kernel
from .reduce import dot, scaled_dot
from .dntk_common import (dntk_layer, dntk_width, explicit_revealer, layer_scratch,
                          write_dntk)
from .ntk_common import (check_ntk_shapes, mark_unrecorded, ntk_width, probe_preactivations,
                         write_ntk)
from .ntk_dense import _row_counters, _row_scale, _weight_row, dense_positions
from .rng import fill_normals

__all__ = ["sample_dense_dntk", "dntk_explicit", "dntk_width", "dntk_offsets", "forward"]


@kernel
def dntk_offsets(widths, n0):
    """(L,) int64 offsets of the weight matrices W^(l) (n_l x n_{l-1}, l = 1..L-1) in the flat
    weight array; entry L-1 is its total length."""
    L = widths.shape[0]
    off = np.zeros(L, dtype=np.int64)
    n_in = n0
    for l in range(L - 1):
        off[l + 1] = off[l] + widths[l] * n_in
        n_in = widths[l]
    return off


@kernel
def forward(x, nl, widths, Wf, woff, bf, lam_W, lam_b, act_code, act_param,
             zs, ss, ds, d2s, Ls):
    # Layers 1..nl from explicit (scaled) weights Wf and biases bf (bias of layer l at
    # bf[l-1, :n_l]): z, sigma, sigma', sigma'' in zs.. (rows l-1, (k, n_l) flattened), and the
    # learning-rate metrics Lhat^(1..nl+1) in Ls[0..nl].
    # (every sum over units in the fixed order of kernels.reduce: the same bits on any target)
    k, n0 = x.shape
    for a in range(k):
        for b in range(k):
            Ls[0, a, b] = lam_b[0] + scaled_dot(lam_W[0] / n0, x[a], x[b])
    n_in = n0
    for l in range(nl):
        n = widths[l]
        h = x if l == 0 else ss[l - 1, : k * n_in].reshape((k, n_in))
        W = Wf[woff[l]: woff[l] + n * n_in].reshape((n, n_in))
        z = zs[l, : k * n].reshape((k, n))
        for a in range(k):
            for i in range(n):
                z[a, i] = bf[l, i] + dot(W[i], h[a, :n_in])
        sv = ss[l, : k * n].reshape((k, n))
        for a in range(k):
            activate(act_code, act_param, z[a, :n], sv[a, :n])
            activate_derivative(act_code, act_param, z[a, :n], ds[l, a * n: (a + 1) * n])
            activate_second(act_code, act_param, z[a, :n], d2s[l, a * n: (a + 1) * n])
        for a in range(k):
            for b in range(k):
                Ls[l + 1, a, b] = lam_b[l + 1] + scaled_dot(lam_W[l + 1] / n, sv[a], sv[b])
        n_in = n


@kernel
def dntk_explicit(x, widths, Wf, bf, Wp, bp, lam_W, lam_b, act_code, act_param, H, dH, zp):
    """NTK and dNTK of two units of output layer lo = len(widths) + 1 of ONE network with
    the given weights (for tests and single-network studies).

    x (k, n0) inputs; widths (lo-1,) int64 hidden widths n_1..n_{lo-1}; Wf the flat scaled
    weights W^(1..lo-1) (row-major, at ``dntk_offsets``); bf (lo-1, >= max width) biases;
    Wp (2, n_{lo-1}), bp (2,) the two output units' weight rows and biases; lam_W, lam_b
    (lo,) learning rates. Out: H (2k, 2k) Hhat_{c1 c2}; dH (2k, 2k, 2k) dHhat_{c0 c1 c2}
    (c = u k + a); zp (2, k) the two units' preactivations.
    """
    k, n0 = x.shape
    lo = widths.shape[0] + 1
    full = np.append(widths, np.int64(2))
    woff = dntk_offsets(full, n0)
    nmax = 1
    for l in range(lo - 1):
        nmax = max(nmax, widths[l])
    nc = 2 * k
    zs = np.empty((lo - 1, k * nmax))
    ss = np.empty((lo - 1, k * nmax))
    ds = np.empty((lo - 1, k * nmax))
    d2s = np.empty((lo - 1, k * nmax))
    Ls = np.empty((lo, k, k))
    xc = x.copy()
    forward(xc, lo - 1, widths, Wf, woff, bf, lam_W, lam_b, act_code, act_param, zs, ss, ds,
             d2s, Ls)
    n_top = widths[lo - 2]
    S = ss[lo - 2, : k * n_top].reshape((k, n_top))
    for u in range(2):
        probe_preactivations(Wp[u], S, n_top, bp[u], 1.0, u, zp)
    dntk_layer(lo, k, widths, Wf, woff, Wp, lam_W, zs, ss, ds, d2s, Ls,
               np.empty((lo - 1, nc, nmax)), np.empty((lo - 1, nc, nmax)),
               np.empty((lo - 1, nc * k, nmax)), np.empty((nc * k, nmax)),
               np.empty((nc * nc, nmax)), np.empty((nc * nc, nmax)), np.empty((lo, nc, nc)),
               H, dH, explicit_revealer(lo), np.uint64(0), np.uint64(0), 0)


@kernel
def _dense_dntk_network(key, block, network, x, widths, C_W, C_b, lam_W, lam_b, act_code,
                        act_param, weight_code, ntk_layers, pos, woff, Wf, bf, zs, ss, ds, d2s,
                        Ls, gs, rs, zt, st, gt, gn, Dl, H, T, Wp, bp, zp, G, rv, out):
    # One network: out (L-1, ntk_width + dntk_width).
    k, n0 = x.shape
    m = k * (k + 1) // 2
    L = widths.shape[0]
    nw = ntk_width(k)
    n_in = n0
    for l in range(L - 1):                      # draw layers 1..L-1 (positions of ntk_dense)
        n = widths[l]
        position = pos[l]
        bias = bf[l, :n]
        fill_normals(key, block, network, position, bias)
        position += (n + 1) // 2
        sb = np.sqrt(C_b[l])
        for i in range(n):
            bias[i] *= sb
        row_ctr = _row_counters(weight_code, n_in)
        scale = _row_scale(weight_code, C_W[l], n_in)
        for i in range(n):
            wr = Wf[woff[l] + i * n_in: woff[l] + (i + 1) * n_in]
            _weight_row(key, block, network, position, weight_code, wr)
            position += row_ctr
            for j in range(n_in):
                wr[j] *= scale
        n_in = n
    forward(x, L - 1, widths, Wf, woff, bf, lam_W, lam_b, act_code, act_param, zs, ss, ds,
             d2s, Ls)
    for l in range(L - 1):
        n = widths[l]
        metric_from_activations(ss[l, : k * n].reshape((k, n)), n, C_W[l + 1], C_b[l + 1], G,
                                out[l, :m])
    p = pos[L - 1]
    for s in range(L - 1):
        lo = s + 2
        row = out[s]
        n_top = widths[lo - 2]
        start = p
        p += 1 + 2 * _row_counters(weight_code, n_top)
        if ntk_layers[s] == 0:
            mark_unrecorded(row, m)
            continue
        fill_normals(key, block, network, start, bp)
        sb = np.sqrt(C_b[lo - 1])
        row_ctr = _row_counters(weight_code, n_top)
        scale = _row_scale(weight_code, C_W[lo - 1], n_top)
        S = ss[lo - 2, : k * n_top].reshape((k, n_top))
        for u in range(2):
            wr = Wp[u, :n_top]
            _weight_row(key, block, network, start + 1 + u * row_ctr, weight_code, wr)
            for j in range(n_top):
                wr[j] *= scale
            probe_preactivations(wr, S, n_top, sb * bp[u], 1.0, u, zp)
        dntk_layer(lo, k, widths, Wf, woff, Wp[:, :n_top], lam_W, zs, ss, ds, d2s, Ls,
                   gs, rs, zt, st, gt, gn, Dl, H, T, rv, key, block, network)
        write_ntk(H, zp, k, row)
        write_dntk(T, zp, k, row[nw:])


@parallel_kernel
def sample_dense_dntk(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                      act_code, act_param, weight_code, lam_W, lam_b, ntk_layers, out):
    """Ghat^(2..L), the NTK and the dNTK quantities of ``n_blocks * block_size`` networks.

    Arguments as ``kernels.ntk_dense.sample_dense_ntk``; ``out`` (n_blocks, block_size, L-1,
    ntk_width(k) + dntk_width(k)): the packed Ghat, the NTK quantities, the dNTK quantities
    (module docstring); NaN after Ghat for layers whose flag is 0. Parallel over networks;
    bitwise independent of the number of threads. Memory besides ``out``: per thread the
    weights (sum_l n_l n_{l-1}) and O(L k^2 n).
    """
    k, n0 = inputs.shape
    L = widths.shape[0]
    m = k * (k + 1) // 2
    check_sampler_shapes(n_blocks, block_size, inputs, widths, C_W, C_b, out[:, :, :, :m])
    check_ntk_shapes(n_blocks, block_size, inputs, widths, lam_W, lam_b, ntk_layers,
                     out[:, :, :, :ntk_width(k)])
    if out.shape[3] != ntk_width(k) + dntk_width(k):
        raise ValueError("out must have shape (n_blocks, block_size, L - 1, ntk_width + dntk_width)")
    if weight_code < 0 or weight_code > 2:
        raise ValueError("weight_code must be 0 (gaussian), 1 (uniform) or 2 (rademacher)")
    total = n_blocks * block_size
    if L < 2 or total == 0:
        return
    x = inputs.copy()
    pos = dense_positions(n0, widths, weight_code)
    woff = dntk_offsets(widths, n0)
    nmax = 1
    for l in range(L - 1):
        nmax = max(nmax, widths[l])
    n_chunks = min(total, MAX_CHUNKS)
    for c in numba.prange(n_chunks):
        Wf = np.empty(max(woff[L - 1], 1))
        bf = np.empty((L - 1, nmax))
        zs, ss, ds, d2s, Ls, gs, rs, zt, st, gt, gn, Dl, H, T, Wp, bp, zp = layer_scratch(L, k, nmax)
        G = np.empty((k, k))
        rv = explicit_revealer(L)
        lo, hi = chunk_range(c, n_chunks, total)
        for t in range(lo, hi):
            i = t // block_size
            j = t - i * block_size
            _dense_dntk_network(key, first_block + i, j, x, widths, C_W, C_b, lam_W, lam_b,
                                act_code, act_param, weight_code, ntk_layers, pos, woff, Wf, bf,
                                zs, ss, ds, d2s, Ls, gs, rs, zt, st, gt, gn, Dl, H, T, Wp, bp,
                                zp, G, rv, out[i, j])
