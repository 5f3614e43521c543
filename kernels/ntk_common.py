"""Pieces shared by the NTK sampler kernels (``kernels.ntk_markov``, ``kernels.ntk_dense``).

The NTK of layer l (layer l taken as the output), with learning rates ``lambda_b^(l')`` for the
biases and ``lambda_W^(l') / n_{l'-1}`` for the weights of layer l':

    Hhat^(l)_{u1 u2; a b} = sum_{l'=1..l} sum_j g^(l')_{j,(u1,a)} g^(l')_{j,(u2,b)} Lhat^(l')_ab

with ``g^(l')_{j,(u,a)} = d z^(l)_{u;a} / d z^(l')_{j;a}`` (backpropagated gradients, one
column per output unit u and input a) and the "learning-rate metric"

    Lhat^(l')_ab = lambda_b^(l') + lambda_W^(l') / n_{l'-1} sum_j sigma^(l'-1)_{j;a} sigma^(l'-1)_{j;b}

(sigma^(0) = x). At l' = l the gradient is the identity, so that term is d_{u1u2} Lhat^(l).

Two *probe* units u = 0, 1 of layer l are drawn for every recorded layer: their bias and weight
row explicitly (rows of a layer are independent given the previous layer, so they have the
joint law of two units of layer l, also for a layer of width 1). Their gradients at layer l-1
are ``g_{j,(u,a)} = sigma'(z^(l-1)_{j;a}) W_{u,j}``; the samplers then backpropagate the
2k columns through layers l-1 .. 2.

Gradient columns are stored as rows of a (2k, n) array: row ``c = u k + a``.

Per-network NTK quantities written for layer l (after the packed Ghat, ``m = k (k+1)/2``):

    offset m        ntk_11 (m,)    Hhat_{11;ab}, pairs a <= b (lexicographic)
    offset 2m       ntk_22 (m,)    Hhat_{22;ab}, pairs a <= b
    offset 3m       ntk_12 (k^2,)  Hhat_{12;ab}, entry a k + b
    offset 3m + k^2 ntk_zz (k^2,)  z_{1;a} z_{2;b}, entry a k + b

(units numbered 1, 2 here as in the statistics' definitions; 0, 1 in the code).
"""

from __future__ import annotations

import numpy as np

from .jit import inline
from .reduce import dot, sub_dot_seq

__all__ = ["ntk_width", "learning_rate_metric", "column_gram", "add_contribution",
           "output_layer_term", "probe_gradients", "probe_preactivations", "mark_unrecorded",
           "write_ntk", "psd_solve", "check_ntk_shapes"]


@inline
def ntk_width(k):
    """Length of the per-layer vector: gram, ntk_11, ntk_22 (m each), ntk_12, ntk_zz (k^2)."""
    m = k * (k + 1) // 2
    return 3 * m + 2 * k * k


@inline
def learning_rate_metric(G, C_W, C_b, lam_W, lam_b, Lh):
    """Lhat = lambda_b + lambda_W / n sum_j s_a s_b from Ghat = C_b + C_W / n sum_j s_a s_b
    of the same layer (C_W > 0): Lhat = lambda_b + (lambda_W / C_W) (Ghat - C_b), (k, k)."""
    k = G.shape[0]
    r = lam_W / C_W
    for a in range(k):
        for b in range(k):
            Lh[a, b] = lam_b + r * (G[a, b] - C_b)


@inline
def column_gram(g, n, D):
    """D (c, c) = g[:, :n] g[:, :n]^T for gradient columns g (c, >= n), every sum in the
    fixed order of ``kernels.reduce`` (the same bits on AVX2 and AVX-512)."""
    nc = D.shape[0]
    for c1 in range(nc):
        for c2 in range(c1, nc):
            acc = dot(g[c1, :n], g[c2, :n])
            D[c1, c2] = acc
            D[c2, c1] = acc


@inline
def add_contribution(D, Lhat, H):
    """H[c1, c2] += D[c1, c2] * Lhat[a1, a2] with c = u k + a (one layer's parameters)."""
    k = Lhat.shape[0]
    nc = D.shape[0]
    for c1 in range(nc):
        a1 = c1 % k
        for c2 in range(nc):
            H[c1, c2] += D[c1, c2] * Lhat[a1, c2 % k]


@inline
def output_layer_term(Lhat, H):
    """H[(u1,a),(u2,b)] = d_{u1u2} Lhat_ab: the parameters of the output layer itself."""
    k = Lhat.shape[0]
    nc = H.shape[0]
    for c1 in range(nc):
        for c2 in range(nc):
            H[c1, c2] = Lhat[c1 % k, c2 % k] if c1 // k == c2 // k else 0.0


@inline
def probe_gradients(w, dsig, n, u, g):
    """g[u k + a, j] = sigma'(z_{j;a}) w[j] for j < n: the probe row's gradient one layer down.
    dsig (k, >= n) holds sigma' of the layer below."""
    k = dsig.shape[0]
    for a in range(k):
        for j in range(n):
            g[u * k + a, j] = dsig[a, j] * w[j]


@inline
def probe_preactivations(w, S, n, bias, scale, u, zp):
    """zp[u, a] = bias + scale * sum_{j < n} w[j] S[a, j]: the preactivations of probe unit u
    from its weight row w (scaled by ``scale``) and the activations S (k, >= n) below."""
    k = S.shape[0]
    for a in range(k):
        zp[u, a] = bias + scale * dot(w[:n], S[a, :n])      # fixed order (kernels/reduce.py)


@inline
def mark_unrecorded(row, m):
    """NaN in every entry after the packed Ghat (the first m): a layer not recorded."""
    for q in range(m, row.shape[0]):
        row[q] = np.nan


@inline
def write_ntk(H, zp, k, out):
    """The NTK quantities (module docstring) from H (2k, 2k) and the probes' zp (2, k)."""
    m = k * (k + 1) // 2
    p = m
    for a in range(k):
        for b in range(a, k):
            out[p] = H[a, b]
            out[p + m] = H[k + a, k + b]
            p += 1
    p = 3 * m
    for a in range(k):
        for b in range(k):
            out[p] = H[a, k + b]
            out[p + k * k] = zp[0, a] * zp[1, b]
            p += 1


@inline
def psd_solve(C, M, X):
    """X (k, c) with G X = M for G = C C^T semidefinite (C from ``common.psd_cholesky``).

    Forward and back substitution that set the unknowns of zero pivots to 0: for M in the
    range of G (always the case here, up to round-off) this is a solution, i.e. a generalised
    inverse G^- M, which is all the conditional (Matheron) update needs. The sums over the k
    inputs run strictly in index order (``reduce.sub_dot_seq``), on every target."""
    k = C.shape[0]
    nc = M.shape[1]
    for c in range(nc):
        for a in range(k):                      # C y = M[:, c]
            if C[a, a] > 0.0:
                X[a, c] = sub_dot_seq(M[a, c], C[a], X[:, c], a) / C[a, a]
            else:
                X[a, c] = 0.0
        for a in range(k - 1, -1, -1):          # C^T x = y
            if C[a, a] > 0.0:
                X[a, c] = sub_dot_seq(X[a, c], C[a + 1:, a], X[a + 1:, c], k - a - 1) / C[a, a]
            else:
                X[a, c] = 0.0


@inline
def check_ntk_shapes(n_blocks, block_size, inputs, widths, lam_W, lam_b, ntk_layers, out):
    k = inputs.shape[0]
    L = widths.shape[0]
    if lam_W.shape[0] != L or lam_b.shape[0] != L:
        raise ValueError("lambda_W and lambda_b need one entry per layer")
    if ntk_layers.shape[0] != L - 1:
        raise ValueError("ntk_layers needs one flag per stochastic layer (L - 1)")
    if (out.shape[0] != n_blocks or out.shape[1] != block_size or out.shape[2] != L - 1
            or out.shape[3] != ntk_width(k)):
        raise ValueError("out must have shape (n_blocks, block_size, L - 1, 3 m + 2 k^2)")
