"""dNTK quantities with the conditional-Gaussian ("markov") sampler: no weight matrix anywhere.

Forward: exactly as ``kernels.markov`` (same random numbers, same Ghat), keeping z, sigma(z),
sigma'(z) and sigma''(z) of layers 1..L-1. Per recorded layer l: the two probe units of layer
l drawn with explicit Gaussian rows (as ``kernels.ntk_markov``), then the NTK and the dNTK by
``kernels.dntk_common.dntk_layer``, whose products with the weights of layers 2..l-1 are
drawn one after the other from their law given the forward pass and every product drawn
before (``dntk_common.Revealer``: sequential Gaussian conditioning, O(n k^2) memory per layer,
never an n x n matrix). Backpropagating and differentiating through that sample is exact in
distribution; each recorded layer starts again from the forward pass (its own sample of the
weights, as in ``kernels.ntk_markov``).

Random numbers: the forward pass uses the positions of ``kernels.markov``; after them, at
``base = sum_{l=1}^{L-1} ceil(k n_l / 2)``, every layer l = 2..L owns a fixed run of counters
(used or not, so a layer's numbers do not depend on which layers are recorded):

    1 counter          the two probe biases (normals 0, 1)
    ceil(n_{l-1}/2)    probe row 0, then the same for probe row 1
    per layer l' = l-1 .. 2: ``dntk_common.markov_layer_numbers(k, n_l', n_{l'-1})`` counters
"""

from __future__ import annotations

import numba
import numpy as np

from .activations import activate, activate_derivative, activate_second
from .common import (MAX_CHUNKS, check_sampler_shapes, chunk_range, correlate_rows,
                     input_metric, metric_from_activations, psd_cholesky)
from .dntk_common import (Revealer, dntk_layer, dntk_width, layer_scratch, markov_layer_numbers,
                          reveal_known, write_dntk)
from .jit import kernel, parallel_kernel
from .ntk_common import (check_ntk_shapes, mark_unrecorded, ntk_width, probe_preactivations,
                         write_ntk)
from .reduce import scaled_dot
from .rng import fill_normals

__all__ = ["sample_markov_dntk"]


@kernel
def _start_from_forward(rv, lo, k, widths, C_W, C_b, zs, ss, xa):
    # the weights of layers 2..lo-1 given only the forward pass: U x_a = z_a with
    # x_a = [sqrt(C_W/n') s_a; sqrt(C_b)] (dntk_common docstring)
    for lp in range(2, lo):
        i0 = lp - 1
        n, nb = widths[lp - 1], widths[lp - 2]
        rv.cnt[i0, 0] = 0
        rv.cnt[i0, 1] = 0
        sw = np.sqrt(C_W[lp - 1] / nb)
        rv.sw[i0] = sw
        for a in range(k):
            for j in range(nb):
                xa[j] = sw * ss[lp - 2, a * nb + j]
            xa[nb] = np.sqrt(C_b[lp - 1])
            reveal_known(rv, lp, xa, zs[lp - 1, a * n: (a + 1) * n], nb + 1, n)


@kernel
def _markov_dntk_network(key, block, network, G1, x, widths, C_W, C_b, lam_W, lam_b, act_code,
                         act_param, ntk_layers, Gs, Cs, zs, ss, ds, d2s, Ls, gs, rs, zt, st, gt,
                         gn, Dl, H, T, Wp, bp, zp, rv, xa, dummy, woff, out):
    # One network: out (L-1, ntk_width + dntk_width).
    k, n0 = x.shape
    m = k * (k + 1) // 2
    L = widths.shape[0]
    nw = ntk_width(k)
    for a in range(k):
        for b in range(k):
            Gs[0, a, b] = G1[a, b]
            Ls[0, a, b] = lam_b[0] + scaled_dot(lam_W[0] / n0, x[a], x[b])   # kernels/reduce.py
    position = 0
    for l in range(L - 1):                      # forward, as kernels.markov
        n = widths[l]
        psd_cholesky(Gs[l], Cs[l])
        C = Cs[l]
        eps = zs[l, : k * n]
        fill_normals(key, block, network, position, eps)
        position += (k * n + 1) // 2
        zz = eps.reshape((k, n))
        correlate_rows(C, zz, k, n)            # z = C eps (kernels.common)
        activate(act_code, act_param, eps, ss[l, : k * n])
        activate_derivative(act_code, act_param, eps, ds[l, : k * n])
        activate_second(act_code, act_param, eps, d2s[l, : k * n])
        sv = ss[l, : k * n].reshape((k, n))
        metric_from_activations(sv, n, C_W[l + 1], C_b[l + 1], Gs[l + 1], out[l, :m])
        for a in range(k):
            for b in range(k):
                Ls[l + 1, a, b] = lam_b[l + 1] + scaled_dot(lam_W[l + 1] / n, sv[a, :n], sv[b, :n])
    p = position
    for s in range(L - 1):
        lo = s + 2
        row = out[s]
        n_top = widths[lo - 2]
        start = p
        p += 1 + 2 * ((n_top + 1) // 2)
        for lp in range(lo - 1, 1, -1):
            rv.base[lp - 1] = p
            p += markov_layer_numbers(k, widths[lp - 1], widths[lp - 2])
        if ntk_layers[s] == 0:
            mark_unrecorded(row, m)
            continue
        fill_normals(key, block, network, start, bp)
        sw = np.sqrt(C_W[lo - 1] / n_top)
        sb = np.sqrt(C_b[lo - 1])
        S = ss[lo - 2, : k * n_top].reshape((k, n_top))
        for u in range(2):                      # the two probe units of layer lo
            wr = Wp[u, :n_top]
            fill_normals(key, block, network, start + 1 + u * ((n_top + 1) // 2), wr)
            for j in range(n_top):
                wr[j] *= sw
            probe_preactivations(wr, S, n_top, sb * bp[u], 1.0, u, zp)
        _start_from_forward(rv, lo, k, widths, C_W, C_b, zs, ss, xa)
        dntk_layer(lo, k, widths, dummy, woff, Wp[:, :n_top], lam_W, zs, ss, ds, d2s, Ls,
                   gs, rs, zt, st, gt, gn, Dl, H, T, rv, key, block, network)
        write_ntk(H, zp, k, row)
        write_dntk(T, zp, k, row[nw:])


@parallel_kernel
def sample_markov_dntk(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                       act_code, act_param, lam_W, lam_b, ntk_layers, out):
    """Ghat^(2..L), the NTK and the dNTK quantities of ``n_blocks * block_size`` networks
    (markov, Gaussian weights and biases).

    Arguments as ``kernels.ntk_markov.sample_markov_ntk``; ``out`` (n_blocks, block_size, L-1,
    ntk_width(k) + dntk_width(k)): the packed Ghat, the NTK quantities and the dNTK quantities
    (``kernels.dntk_common``); NaN after Ghat for layers whose flag is 0. Parallel over
    networks; bitwise independent of the number of threads. Memory besides ``out``: per
    thread O(L k^2 n) (no weight matrix).
    """
    k, n0 = inputs.shape
    L = widths.shape[0]
    m = k * (k + 1) // 2
    check_sampler_shapes(n_blocks, block_size, inputs, widths, C_W, C_b, out[:, :, :, :m])
    check_ntk_shapes(n_blocks, block_size, inputs, widths, lam_W, lam_b, ntk_layers,
                     out[:, :, :, :ntk_width(k)])
    if out.shape[3] != ntk_width(k) + dntk_width(k):
        raise ValueError("out must have shape (n_blocks, block_size, L - 1, ntk_width + dntk_width)")
    total = n_blocks * block_size
    if L < 2 or total == 0:
        return
    G1 = np.empty((k, k))
    input_metric(inputs, C_W[0], C_b[0], G1)
    x = inputs.copy()
    nmax = 1
    for l in range(L - 1):
        nmax = max(nmax, widths[l])
    nc = 2 * k
    R = k + nc * k                              # right vectors per layer: forward, tangent
    S = nc + nc * nc                            # left vectors: backward, backward tangent
    n_chunks = min(total, MAX_CHUNKS)
    for c in numba.prange(n_chunks):
        Gs = np.empty((L, k, k))
        Cs = np.empty((L, k, k))
        zs, ss, ds, d2s, Ls, gs, rs, zt, st, gt, gn, Dl, H, T, Wp, bp, zp = layer_scratch(L, k, nmax)
        rv = Revealer(True, np.empty((L, R, nmax + 1)), np.empty((L, R, nmax)),
                      np.empty((L, S, nmax)), np.empty((L, S, nmax + 1)),
                      np.zeros((L, 2), dtype=np.int64), np.zeros(L), np.zeros(L, dtype=np.int64),
                      np.empty(max(R, S)), np.empty(nmax + 1), np.empty(nmax + 1),
                      np.empty(nmax + 1))
        xa = np.empty(nmax + 1)
        dummy = np.empty(1)
        woff = np.zeros(L, dtype=np.int64)
        lo, hi = chunk_range(c, n_chunks, total)
        for t in range(lo, hi):
            i = t // block_size
            j = t - i * block_size
            _markov_dntk_network(key, first_block + i, j, G1, x, widths, C_W, C_b, lam_W, lam_b,
                                 act_code, act_param, ntk_layers, Gs, Cs, zs, ss, ds, d2s, Ls,
                                 gs, rs, zt, st, gt, gn, Dl, H, T, Wp, bp, zp, rv, xa, dummy,
                                 woff, out[i, j])
