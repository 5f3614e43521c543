"""NTK quantities with the conditional-Gaussian ("markov") sampler: no weight matrix anywhere.

Forward: exactly as ``kernels.markov`` (same random numbers, same Ghat), keeping z, sigma(z)
and sigma'(z) of layers 1..L-1 and the Cholesky factors of Ghat^(1..L).

Backward (theory notes, section 4): given all preactivations, the layers' parameters are
independent, and the rows (b_i, W_i) of layer l' are Gaussian given (sigma^(l'-1), z^(l')).
Matheron's rule gives a sample of that conditional from a prior sample (b~, W~):

    W_i = W~_i + (C_W/n') S G^- (z_i - b~_i 1 - S^T W~_i)          S = sigma^(l'-1) (n' x k)
                                                                    G = Ghat^(l') (k x k)

The backward pass only needs Y = W^T Delta for the 2k gradient columns Delta (n_l' x 2k):

    Y = P + (C_W/n') S G^- (Z^T Delta - 1 q^T - S^T P)
    P = W~^T Delta ~ sqrt(C_W/n') E R^T,   q = Delta^T b~ ~ sqrt(C_b) R e,   R R^T = Delta^T Delta

with E (n' x 2k) and e (2k) standard normals: O(n k^2) work and 2k n' normals per layer, no
n x n matrix. Backpropagating through this conditional sample is exact in distribution.
The probes (``kernels.ntk_common``) are drawn with explicit Gaussian rows.

Random numbers: the forward pass uses the positions of ``kernels.markov``; after them, at
``base = sum_{l=1}^{L-1} ceil(k n_l / 2)``, every layer l = 2..L owns a fixed run of counters
(used or not, so a layer's numbers do not depend on which layers are recorded):

    1 counter          the two probe biases (normals 0, 1)
    ceil(n_{l-1}/2)    probe row 0, then the same for probe row 1
    per backward step l' = l-1 .. 2:  k n_{l'-1} counters for E (normal c n' + j = E_{j,c}),
                                      then k counters for e
"""

from __future__ import annotations

import numba
import numpy as np

from .activations import activate, activate_derivative
from .common import (MAX_CHUNKS, check_sampler_shapes, chunk_range, correlate_rows,
                     input_metric, metric_from_activations, psd_cholesky)
from .jit import kernel, parallel_kernel
from .ntk_common import (add_contribution, check_ntk_shapes, column_gram, learning_rate_metric,
                         mark_unrecorded, output_layer_term, probe_gradients,
                         probe_preactivations, psd_solve, write_ntk)
from .reduce import dot, dot_seq
from .rng import fill_normals

__all__ = ["sample_markov_ntk", "markov_ntk_positions"]


@kernel
def markov_ntk_positions(widths, k):
    """(L + 1,) int64: entry l (2..L) is the first counter of layer l's NTK numbers
    (entries 0 and 1 unused; entry L + 1 would be the end: returned as entry 0)."""
    L = widths.shape[0]
    pos = np.zeros(L + 1, dtype=np.int64)
    p = 0
    for l in range(L - 1):
        p += (k * widths[l] + 1) // 2
    for l in range(2, L + 1):
        pos[l] = p
        p += 1 + 2 * ((widths[l - 2] + 1) // 2)
        for lp in range(l - 1, 1, -1):
            p += k * widths[lp - 2] + k
    pos[0] = p
    return pos


@kernel
def _backward_step(key, block, network, position, g, D, n_out, Z, S, n_in, C, C_W, C_b,
                   dsig, E, e, R, M, X, y):
    # y (2k, >= n_in) <- sigma'_below * (W^T g) for one conditional sample of W (module doc).
    nc = g.shape[0]
    k = Z.shape[0]
    psd_cholesky(D, R)
    eps = E[: nc * n_in]
    fill_normals(key, block, network, position, eps)
    fill_normals(key, block, network, position + k * n_in, e)
    P = eps.reshape((nc, n_in))
    sw = np.sqrt(C_W / n_in)
    for c in range(nc - 1, -1, -1):            # P = sw E R^T in place (rows c' < c unchanged)
        rcc = sw * R[c, c]
        for j in range(n_in):
            P[c, j] *= rcc
        for c2 in range(c):
            rc = sw * R[c, c2]
            if rc != 0.0:
                for j in range(n_in):
                    P[c, j] += rc * P[c2, j]
    sb = np.sqrt(C_b)
    for c in range(nc - 1, -1, -1):            # q = sqrt(C_b) R e in place
        e[c] = sb * dot_seq(R[c], e, c + 1)
    for a in range(k):                          # M = Z^T g - 1 q^T - S^T P (fixed-order sums)
        for c in range(nc):
            acc = dot(Z[a, :n_out], g[c, :n_out])
            acc2 = dot(S[a, :n_in], P[c, :n_in])
            M[a, c] = acc - e[c] - acc2
    psd_solve(C, M, X)
    scale = C_W / n_in
    for c in range(nc):                         # y = sigma' * (P + scale S X)
        yc = y[c, :n_in]
        Pc = P[c]
        for j in range(n_in):
            yc[j] = Pc[j]
        for a in range(k):
            coef = scale * X[a, c]
            Sa = S[a]
            for j in range(n_in):
                yc[j] += coef * Sa[j]
        da = dsig[c % k]
        for j in range(n_in):
            yc[j] *= da[j]


@kernel
def _markov_ntk_network(key, block, network, G1, L1, widths, C_W, C_b, lam_W, lam_b,
                        act_code, act_param, ntk_layers, npos, Gs, Cs, Ls, zs, ss, ds, g, y,
                        w, E, e, D, R, M, X, H, zp, out):
    # One network: out (L-1, width). Scratch: Gs, Cs, Ls (L, k, k); zs, ss, ds (L-1, k nmax);
    # g, y (2k, nmax); w, E, e; small (2k, 2k) D, R, H; M, X (k, 2k); zp (2, k).
    k = G1.shape[0]
    m = k * (k + 1) // 2
    L = widths.shape[0]
    for a in range(k):
        for b in range(k):
            Gs[0, a, b] = G1[a, b]
            Ls[0, a, b] = L1[a, b]
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
        sv = ss[l, : k * n].reshape((k, n))
        metric_from_activations(sv, n, C_W[l + 1], C_b[l + 1], Gs[l + 1], out[l, :m])
        learning_rate_metric(Gs[l + 1], C_W[l + 1], C_b[l + 1], lam_W[l + 1], lam_b[l + 1],
                             Ls[l + 1])
    for s in range(L - 1):
        lo = s + 2                              # output layer, 1-based
        row = out[s]
        if ntk_layers[s] == 0:
            mark_unrecorded(row, m)
            continue
        n_in = widths[lo - 2]
        S = ss[lo - 2, : k * n_in].reshape((k, n_in))
        dsig = ds[lo - 2, : k * n_in].reshape((k, n_in))
        pos = npos[lo]
        fill_normals(key, block, network, pos, e[:2])
        pos += 1
        sw = np.sqrt(C_W[lo - 1] / n_in)
        sb = np.sqrt(C_b[lo - 1])
        for u in range(2):                      # the two probe units of layer lo
            wr = w[:n_in]
            fill_normals(key, block, network, pos, wr)
            pos += (n_in + 1) // 2
            for j in range(n_in):
                wr[j] *= sw
            probe_preactivations(wr, S, n_in, sb * e[u], 1.0, u, zp)
            probe_gradients(wr, dsig, n_in, u, g)
        output_layer_term(Ls[lo - 1], H)
        n_cur = n_in
        for lp in range(lo - 1, 0, -1):         # g holds dz^(lo)/dz^(lp), lp = lo-1 .. 1
            column_gram(g, n_cur, D)
            add_contribution(D, Ls[lp - 1], H)
            if lp == 1:
                break
            n_below = widths[lp - 2]
            Z = zs[lp - 1, : k * n_cur].reshape((k, n_cur))
            Sb = ss[lp - 2, : k * n_below].reshape((k, n_below))
            db = ds[lp - 2, : k * n_below].reshape((k, n_below))
            _backward_step(key, block, network, pos, g, D, n_cur, Z, Sb, n_below, Cs[lp - 1],
                           C_W[lp - 1], C_b[lp - 1], db, E, e, R, M, X, y)
            pos += k * n_below + k
            g, y = y, g
            n_cur = n_below
        write_ntk(H, zp, k, row)


@parallel_kernel
def sample_markov_ntk(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                      act_code, act_param, lam_W, lam_b, ntk_layers, out):
    """Ghat^(2..L) and the NTK quantities of ``n_blocks * block_size`` networks (markov).

    Arguments as ``kernels.markov.sample_markov``, plus ``lam_W``, ``lam_b`` (L,) float64
    learning rates (entry l-1 for layer l) and ``ntk_layers`` (L-1,) int64 (nonzero: compute
    the NTK quantities of layer s + 2; otherwise they are NaN). ``out`` has shape
    (n_blocks, block_size, L-1, 3 m + 2 k^2): the packed Ghat, then the NTK quantities
    (``kernels.ntk_common``). Parallel over networks; bitwise independent of the threads.
    Memory besides ``out``: O(threads L k n).
    """
    k = inputs.shape[0]
    L = widths.shape[0]
    m = k * (k + 1) // 2
    check_sampler_shapes(n_blocks, block_size, inputs, widths, C_W, C_b, out[:, :, :, :m])
    check_ntk_shapes(n_blocks, block_size, inputs, widths, lam_W, lam_b, ntk_layers, out)
    total = n_blocks * block_size
    if L < 2 or total == 0:
        return
    G1 = np.empty((k, k))
    L1 = np.empty((k, k))
    input_metric(inputs, C_W[0], C_b[0], G1)
    input_metric(inputs, lam_W[0], lam_b[0], L1)
    npos = markov_ntk_positions(widths, k)
    nmax = 1
    for l in range(L - 1):
        nmax = max(nmax, widths[l])
    nc = 2 * k
    n_chunks = min(total, MAX_CHUNKS)
    for c in numba.prange(n_chunks):
        Gs = np.empty((L, k, k))
        Cs = np.empty((L, k, k))
        Ls = np.empty((L, k, k))
        zs = np.empty((L - 1, k * nmax))
        ss = np.empty((L - 1, k * nmax))
        ds = np.empty((L - 1, k * nmax))
        g = np.empty((nc, nmax))
        y = np.empty((nc, nmax))
        w = np.empty(nmax)
        E = np.empty(nc * nmax)
        e = np.empty(nc)
        D = np.empty((nc, nc))
        R = np.empty((nc, nc))
        H = np.empty((nc, nc))
        M = np.empty((k, nc))
        X = np.empty((k, nc))
        zp = np.empty((2, k))
        lo, hi = chunk_range(c, n_chunks, total)
        for t in range(lo, hi):
            i = t // block_size
            j = t - i * block_size
            _markov_ntk_network(key, first_block + i, j, G1, L1, widths, C_W, C_b, lam_W,
                                lam_b, act_code, act_param, ntk_layers, npos, Gs, Cs, Ls, zs,
                                ss, ds, g, y, w, E, e, D, R, M, X, H, zp, out[i, j])
