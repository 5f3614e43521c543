"""dNTK quantities with explicit weights ("dense"): exact per-network second derivatives.

The dNTK of layer l (layer l taken as the output; learning rates as for the NTK,
``kernels.ntk_common``), for output columns c = (u, a) of the two probe units u = 0, 1:

    dHhat_{c0 c1 c2} = sum_mu lambda_mu dz_{c0}/dtheta_mu dHhat_{c1 c2}/dtheta_mu

is the directional derivative of the NTK Hhat_{c1 c2} along the parameter direction
v = Lambda grad z_{c0} (one direction per column c0 = (u0, a0)). It is computed exactly by
forward-mode differentiation (a dot: the derivative along v) of the NTK's backward pass,
with ``g^(l')_c = dz_c / dz^(l')`` (rows c of a (2k, n_l') array), ``r^(l')_c = W^(l'+1)T
g^(l'+1)_c`` (so g = sigma' r; r = w_u, the probe row, at l' = l-1), s = sigma(z), and
Lhat^(l') the learning-rate metric:

    forward tangent   zdot^(1)_{c0,a}    = g^(1)_{c0} Lhat^(1)_{a0 a}
                      zdot^(l'+1)_{c0,a} = g^(l'+1)_{c0} Lhat^(l'+1)_{a0 a}
                                           + W^(l'+1) (sigma'_a zdot^(l')_{c0,a})
    backward tangent  gdot^(l-1)_{c0,c}  = sigma''_a zdot_{c0,a} w_u
                                           + sigma'_a d_{u u0} (lambda_W^(l)/n_{l-1}) s_{a0}
                      gdot^(l'-1)_{c0,c} = sigma''_a zdot^(l'-1)_{c0,a} r^(l'-1)_c
                                           + sigma'_a [(lambda_W^(l')/n_{l'-1})
                                                       (g^(l')_{c0} . g^(l')_c) s^(l'-1)_{a0}
                                                       + W^(l')T gdot^(l')_{c0,c}]
    NTK               Hhat_{c1c2} = d_{u1u2} Lhat^(l)_{a1a2} + sum_{l'<l} (g_{c1}.g_{c2}) Lhat^(l')_{a1a2}
    its derivative    dHhat_{c0c1c2} = T_{c0}(c1, c2) + T_{c0}(c2, c1),
                      T_{c0}(c1, c2) = d_{u1u2} (lambda_W^(l)/n_{l-1}) sdot^(l-1)_{c0,a1} . s^(l-1)_{a2}
                          + sum_{l'<l} [(gdot^(l')_{c0,c1} . g^(l')_{c2}) Lhat^(l')_{a1a2}
                                        + (g^(l')_{c1} . g^(l')_{c2}) (lambda_W^(l')/n_{l'-1})
                                          sdot^(l'-1)_{c0,a1} . s^(l'-1)_{a2}]

with sdot = sigma' zdot (sdot^(0) = 0: the inputs do not move). sigma'' is the activation's
second derivative almost everywhere (its delta functions at kinks, e.g. ReLU's, contribute
with probability 0). Work per network and recorded layer l: 2k (forward tangent, k columns
each) + 4k^2 (backward tangent) products of each weight matrix with a vector, against 2k for
the NTK alone; the weights of layers 1..L-1 are kept explicitly (sum_l n_l n_{l-1} floats per
thread).

Per-network quantities written for layer l, after the NTK ones (``ntk_common.ntk_width``),
units numbered 1, 2 as in the statistics (probes 0, 1 here), m = k (k+1)/2:

    +0               dntk_112 (k^3)  dHhat_{1 1 2; a0 a1 a2}, entry (a0 k + a1) k + a2
    +k^3             dntk_221 (k^3)  dHhat_{2 2 1; a0 a1 a2}, the same with the units swapped
    +2k^3            dntk_122 (k m)  dHhat_{1 2 2; a0 a1 a2}, entry a0 m + p(a1 <= a2)
    +2k^3 + k m      dntk_211 (k m)  dHhat_{2 1 1; a0 a1 a2}
    +2k^3 + 2k m     dntk_z   (2k)   z_{1;a} (k entries), then z_{2;a}

Random numbers: exactly those of ``kernels.ntk_dense`` (``dense_positions``): the same
networks and probes, so the metric and the NTK agree with that kernel to round-off.
"""

from __future__ import annotations

import numba
import numpy as np

from .activations import activate, activate_derivative, activate_second
from .common import MAX_CHUNKS, check_sampler_shapes, chunk_range, metric_from_activations
from .jit import inline, kernel, parallel_kernel
from .ntk_common import (add_contribution, check_ntk_shapes, column_gram, mark_unrecorded,
                         ntk_width, output_layer_term, probe_preactivations, write_ntk)
from .ntk_dense import _row_counters, _row_scale, _weight_row, dense_positions
from .rng import fill_normals

__all__ = ["sample_dense_dntk", "dntk_explicit", "dntk_width", "dntk_offsets"]


@inline
def dntk_width(k):
    """Length of the dNTK part of the per-layer vector (module docstring)."""
    m = k * (k + 1) // 2
    return 2 * k * k * k + 2 * k * m + 2 * k


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
def _forward(x, nl, widths, Wf, woff, bf, lam_W, lam_b, act_code, act_param,
             zs, ss, ds, d2s, Ls):
    # Layers 1..nl from explicit (scaled) weights Wf and biases bf (bias of layer l at
    # bf[l-1, :n_l]): z, sigma, sigma', sigma'' in zs.. (rows l-1, (k, n_l) flattened), and the
    # learning-rate metrics Lhat^(1..nl+1) in Ls[0..nl].
    k, n0 = x.shape
    for a in range(k):
        for b in range(k):
            acc = 0.0
            for j in range(n0):
                acc += x[a, j] * x[b, j]
            Ls[0, a, b] = lam_b[0] + lam_W[0] / n0 * acc
    n_in = n0
    for l in range(nl):
        n = widths[l]
        h = x if l == 0 else ss[l - 1, : k * n_in].reshape((k, n_in))
        W = Wf[woff[l]: woff[l] + n * n_in].reshape((n, n_in))
        z = zs[l, : k * n].reshape((k, n))
        for a in range(k):
            for i in range(n):
                acc = 0.0
                for j in range(n_in):
                    acc += W[i, j] * h[a, j]
                z[a, i] = bf[l, i] + acc
        sv = ss[l, : k * n].reshape((k, n))
        for a in range(k):
            activate(act_code, act_param, z[a, :n], sv[a, :n])
            activate_derivative(act_code, act_param, z[a, :n], ds[l, a * n: (a + 1) * n])
            activate_second(act_code, act_param, z[a, :n], d2s[l, a * n: (a + 1) * n])
        for a in range(k):
            for b in range(k):
                acc = 0.0
                for j in range(n):
                    acc += sv[a, j] * sv[b, j]
                Ls[l + 1, a, b] = lam_b[l + 1] + lam_W[l + 1] / n * acc
        n_in = n


@kernel
def _dntk_layer(lo, x, widths, Wf, woff, Wp, lam_W, zs, ss, ds, d2s, Ls,
                gs, rs, zt, st, gt, gn, Dl, H, T):
    # NTK H (2k, 2k) and dNTK T (2k, 2k, 2k) [c0, c1, c2] of output layer lo (>= 2) with
    # probe rows Wp (2, n_{lo-1}) above the forward pass in zs.. (module docstring).
    # Scratch: gs, rs (lo-1, 2k, nmax); zt (lo-1, 2k k, nmax); st (2k k, nmax);
    # gt, gn (4k^2, nmax); Dl (lo, 2k, 2k).
    k, n0 = x.shape
    nc = 2 * k
    top = lo - 2                                # array row of layer lo-1
    n_top = widths[top]
    # -- backward pass: g^(l') and r^(l') for l' = lo-1 .. 1 --------------------------------
    for c in range(nc):
        u, a = c // k, c % k
        for j in range(n_top):
            rs[top, c, j] = Wp[u, j]
            gs[top, c, j] = ds[top, a * n_top + j] * Wp[u, j]
    for lp in range(lo - 1, 1, -1):             # through W^(lp): layer lp -> lp - 1
        n, nb = widths[lp - 1], widths[lp - 2]
        W = Wf[woff[lp - 1]: woff[lp - 1] + n * nb].reshape((n, nb))
        for c in range(nc):
            a = c % k
            for j in range(nb):
                rs[lp - 2, c, j] = 0.0
            for i in range(n):
                gci = gs[lp - 1, c, i]
                for j in range(nb):
                    rs[lp - 2, c, j] += gci * W[i, j]
            for j in range(nb):
                gs[lp - 2, c, j] = ds[lp - 2, a * nb + j] * rs[lp - 2, c, j]
    output_layer_term(Ls[lo - 1], H)
    for lp in range(lo - 1, 0, -1):
        column_gram(gs[lp - 1], widths[lp - 1], Dl[lp - 1])
        add_contribution(Dl[lp - 1], Ls[lp - 1], H)
    # -- forward tangent zdot^(l')_{c0,a}, row c0 k + a, for l' = 1 .. lo-1 --------------------
    n = widths[0]
    for c0 in range(nc):
        a0 = c0 % k
        for a in range(k):
            f = Ls[0, a0, a]
            for j in range(n):
                zt[0, c0 * k + a, j] = gs[0, c0, j] * f
    for lp in range(1, lo - 1):                 # zdot^(lp) -> zdot^(lp+1) through W^(lp+1)
        nb, n = widths[lp - 1], widths[lp]
        W = Wf[woff[lp]: woff[lp] + n * nb].reshape((n, nb))
        for r in range(nc * k):
            a = r % k
            for j in range(nb):
                st[r, j] = ds[lp - 1, a * nb + j] * zt[lp - 1, r, j]
        for r in range(nc * k):
            c0, a = r // k, r % k
            f = Ls[lp, c0 % k, a]
            for i in range(n):
                acc = 0.0
                for j in range(nb):
                    acc += W[i, j] * st[r, j]
                zt[lp, r, i] = gs[lp, c0, i] * f + acc
    # -- backward tangent and the dNTK --------------------------------------------------------
    for c0 in range(nc):
        for c1 in range(nc):
            for c2 in range(nc):
                T[c0, c1, c2] = 0.0
    lw = lam_W[lo - 1] / n_top
    for c0 in range(nc):
        u0, a0 = c0 // k, c0 % k
        for c in range(nc):
            u, a = c // k, c % k
            row = c0 * nc + c
            for j in range(n_top):
                q = a * n_top + j
                v = d2s[top, q] * zt[top, c0 * k + a, j] * Wp[u, j]
                if u == u0:
                    v += ds[top, q] * lw * ss[top, a0 * n_top + j]
                gt[row, j] = v
        for a1 in range(k):                     # the output layer's weights (u1 = u2)
            for a2 in range(k):
                acc = 0.0
                for j in range(n_top):
                    acc += ds[top, a1 * n_top + j] * zt[top, c0 * k + a1, j] * ss[top, a2 * n_top + j]
                for u in range(2):
                    T[c0, u * k + a1, u * k + a2] += lw * acc
    for lp in range(lo - 1, 0, -1):             # gt holds gdot^(lp)
        n = widths[lp - 1]
        for c0 in range(nc):
            for c1 in range(nc):
                a1 = c1 % k
                for c2 in range(nc):
                    acc = 0.0
                    for j in range(n):
                        acc += gt[c0 * nc + c1, j] * gs[lp - 1, c2, j]
                    T[c0, c1, c2] += acc * Ls[lp - 1, a1, c2 % k]
        if lp == 1:
            break
        nb = widths[lp - 2]
        lwb = lam_W[lp - 1] / nb
        for c0 in range(nc):                    # the weights of layer lp
            for a1 in range(k):
                for a2 in range(k):
                    acc = 0.0
                    for j in range(nb):
                        acc += (ds[lp - 2, a1 * nb + j] * zt[lp - 2, c0 * k + a1, j]
                                * ss[lp - 2, a2 * nb + j])
                    for c1 in range(a1, nc, k):
                        for c2 in range(a2, nc, k):
                            T[c0, c1, c2] += Dl[lp - 1, c1, c2] * lwb * acc
        W = Wf[woff[lp - 1]: woff[lp - 1] + n * nb].reshape((n, nb))
        for row in range(nc * nc):
            for j in range(nb):
                gn[row, j] = 0.0
            for i in range(n):
                gi = gt[row, i]
                for j in range(nb):
                    gn[row, j] += gi * W[i, j]
        for c0 in range(nc):
            a0 = c0 % k
            for c in range(nc):
                a = c % k
                row = c0 * nc + c
                f = lwb * Dl[lp - 1, c0, c]
                for j in range(nb):
                    q = a * nb + j
                    gn[row, j] = (d2s[lp - 2, q] * zt[lp - 2, c0 * k + a, j] * rs[lp - 2, c, j]
                                  + ds[lp - 2, q] * (f * ss[lp - 2, a0 * nb + j] + gn[row, j]))
        gt, gn = gn, gt
    for c0 in range(nc):                        # symmetrise: dHhat = T(c1, c2) + T(c2, c1)
        for c1 in range(nc):
            for c2 in range(c1, nc):
                v = T[c0, c1, c2] + T[c0, c2, c1]
                T[c0, c1, c2] = v
                T[c0, c2, c1] = v


@inline
def _write_dntk(T, zp, k, out):
    """The dNTK quantities (module docstring) from dHhat T [c0, c1, c2] and the probes' zp."""
    m = k * (k + 1) // 2
    k3 = k * k * k
    for a0 in range(k):
        for a1 in range(k):
            for a2 in range(k):
                p = (a0 * k + a1) * k + a2
                out[p] = T[a0, a1, k + a2]                  # (1; 1, 2)
                out[k3 + p] = T[k + a0, k + a1, a2]         # (2; 2, 1)
        p = 0
        for a1 in range(k):
            for a2 in range(a1, k):
                out[2 * k3 + a0 * m + p] = T[a0, k + a1, k + a2]          # (1; 2, 2)
                out[2 * k3 + k * m + a0 * m + p] = T[k + a0, a1, a2]      # (2; 1, 1)
                p += 1
    base = 2 * k3 + 2 * k * m
    for u in range(2):
        for a in range(k):
            out[base + u * k + a] = zp[u, a]


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
    _forward(xc, lo - 1, widths, Wf, woff, bf, lam_W, lam_b, act_code, act_param, zs, ss, ds,
             d2s, Ls)
    n_top = widths[lo - 2]
    S = ss[lo - 2, : k * n_top].reshape((k, n_top))
    for u in range(2):
        probe_preactivations(Wp[u], S, n_top, bp[u], 1.0, u, zp)
    _dntk_layer(lo, xc, widths, Wf, woff, Wp, lam_W, zs, ss, ds, d2s, Ls,
                np.empty((lo - 1, nc, nmax)), np.empty((lo - 1, nc, nmax)),
                np.empty((lo - 1, nc * k, nmax)), np.empty((nc * k, nmax)),
                np.empty((nc * nc, nmax)), np.empty((nc * nc, nmax)), np.empty((lo, nc, nc)),
                H, dH)


@kernel
def _dense_dntk_network(key, block, network, x, widths, C_W, C_b, lam_W, lam_b, act_code,
                        act_param, weight_code, ntk_layers, pos, woff, Wf, bf, zs, ss, ds, d2s,
                        Ls, gs, rs, zt, st, gt, gn, Dl, H, T, Wp, bp, zp, G, out):
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
    _forward(x, L - 1, widths, Wf, woff, bf, lam_W, lam_b, act_code, act_param, zs, ss, ds,
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
        _dntk_layer(lo, x, widths, Wf, woff, Wp[:, :n_top], lam_W, zs, ss, ds, d2s, Ls,
                    gs, rs, zt, st, gt, gn, Dl, H, T)
        write_ntk(H, zp, k, row)
        _write_dntk(T, zp, k, row[nw:])


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
    nc = 2 * k
    n_chunks = min(total, MAX_CHUNKS)
    for c in numba.prange(n_chunks):
        Wf = np.empty(max(woff[L - 1], 1))
        bf = np.empty((L - 1, nmax))
        zs = np.empty((L - 1, k * nmax))
        ss = np.empty((L - 1, k * nmax))
        ds = np.empty((L - 1, k * nmax))
        d2s = np.empty((L - 1, k * nmax))
        Ls = np.empty((L, k, k))
        gs = np.empty((L - 1, nc, nmax))
        rs = np.empty((L - 1, nc, nmax))
        zt = np.empty((L - 1, nc * k, nmax))
        st = np.empty((nc * k, nmax))
        gt = np.empty((nc * nc, nmax))
        gn = np.empty((nc * nc, nmax))
        Dl = np.empty((L, nc, nc))
        H = np.empty((nc, nc))
        T = np.empty((nc, nc, nc))
        Wp = np.empty((2, nmax))
        bp = np.empty(2)
        zp = np.empty((2, k))
        G = np.empty((k, k))
        lo, hi = chunk_range(c, n_chunks, total)
        for t in range(lo, hi):
            i = t // block_size
            j = t - i * block_size
            _dense_dntk_network(key, first_block + i, j, x, widths, C_W, C_b, lam_W, lam_b,
                                act_code, act_param, weight_code, ntk_layers, pos, woff, Wf, bf,
                                zs, ss, ds, d2s, Ls, gs, rs, zt, st, gt, gn, Dl, H, T, Wp, bp,
                                zp, G, out[i, j])
