"""The dNTK algebra shared by the dNTK sampler kernels (``kernels.dntk_dense``,
``kernels.dntk_markov``): exact per-network second derivatives.

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
with probability 0). Work per network and recorded layer l: 2k (backward pass), 2k^2
(forward tangent) and 4k^2 (backward tangent) products of each weight matrix W^(l'),
1 < l' < l, with a vector.

**Weights without weight matrices (markov).** Given the forward pass, the weights and bias of
layer l' are Gaussian; write [W | b] = U D with U (n x (n'+1)) standard normal, D =
diag(sqrt(C_W/n'), .., sqrt(C_b)). The forward pass fixes U x_a = z_a, x_a = D [s_a; 1]. Every
later product is U x (a right vector x) or U^T y (a left vector y), each drawn given all
earlier ones (``Revealer``): with orthonormal bases Qr of the right vectors and Ql of the left
vectors revealed so far, U Qr (rows of ``A``) and Ql^T U (rows of ``B``) are known, and for a
new right vector x with x_perp = x - Qr Qr^T x:

    U x = A^T (Qr x) + |x_perp| [Ql^T (B e) + (1 - Ql Ql^T) xi],   e = x_perp / |x_perp|,
                                                                    xi ~ N(0, 1_n) fresh

(the block of U between the complements of Ql and Qr has never been touched; symmetrically
for a left vector), after which e joins Qr and U e joins A. This is the conditional law
exactly (a sequential Gaussian conditioning), with no n x n matrix: O(n (r + s)) per product
for r <= k + 2k^2 right and s <= 2k + 4k^2 left vectors per layer.

Per-network quantities written for layer l, after the NTK ones (``ntk_common.ntk_width``),
units numbered 1, 2 as in the statistics (probes 0, 1 here), m = k (k+1)/2:

    +0               dntk_112 (k^3)  dHhat_{1 1 2; a0 a1 a2}, entry (a0 k + a1) k + a2
    +k^3             dntk_221 (k^3)  dHhat_{2 2 1; a0 a1 a2}, the same with the units swapped
    +2k^3            dntk_122 (k m)  dHhat_{1 2 2; a0 a1 a2}, entry a0 m + p(a1 <= a2)
    +2k^3 + k m      dntk_211 (k m)  dHhat_{2 1 1; a0 a1 a2}
    +2k^3 + 2k m     dntk_z   (2k)   z_{1;a} (k entries), then z_{2;a}
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .jit import exact, inline, kernel
from .ntk_common import add_contribution, column_gram, output_layer_term
from .reduce import dot, dot3, dot_seq, sub_dot_seq
from .rng import fill_normals

__all__ = ["dntk_width", "dntk_layer", "write_dntk", "Revealer", "explicit_revealer",
           "markov_layer_numbers", "reveal_known", "times", "times_transpose", "weight_matrix",
           "layer_scratch"]

#: A right or left vector with a component below this fraction of its norm off the vectors
#: revealed so far counts as inside their span (its product is then determined).
SPAN_RTOL = 1e-9
#: The same for the forward pass's vectors x_a (consistent with ``common.PIVOT_RTOL`` = 1e-12
#: on the metric, a squared scale): 1e-6 of the norm.
FORWARD_RTOL = 1e-6

#: Sequential Gaussian conditioning state of the weights of every layer (markov); for the
#: explicit path a dummy with markov = False. Arrays indexed by layer l' - 1:
#: Qr (L, R, N1) right basis, A (L, R, nmax) = U Qr, Ql (L, S, nmax) left basis,
#: B (L, S, N1) = Ql^T U, cnt (L, 2) int64 (r, s), sw (L,) sqrt(C_W / n_{l'-1}),
#: base (L,) int64 first random-number counter of layer l' (dntk_layer's products),
#: c (max(R, S),), fresh, xin, xout (nmax + 1,) scratch.
Revealer = namedtuple("Revealer", ["markov", "Qr", "A", "Ql", "B", "cnt", "sw", "base", "c",
                                   "fresh", "xin", "xout"])


@kernel
def explicit_revealer(L):
    """The dummy ``Revealer`` of the explicit-weights path (base all 0)."""
    e3 = np.empty((1, 1, 1))
    return Revealer(False, e3, e3.copy(), e3.copy(), e3.copy(), np.zeros((L, 2), dtype=np.int64),
                    np.zeros(L), np.zeros(L, dtype=np.int64), np.empty(1), np.empty(1), np.empty(1),
                    np.empty(1))


@inline
def markov_layer_numbers(k, n, nb):
    """Random-number counters ``dntk_layer`` uses for the weights of one layer (markov):
    n_{l'} = n, n_{l'-1} = nb; 2k left vectors (backward), 2k^2 right (forward tangent),
    4k^2 left (backward tangent), each a fixed run."""
    nc = 2 * k
    return nc * ((nb + 2) // 2) + nc * k * ((n + 1) // 2) + nc * nc * ((nb + 2) // 2)


@inline
def _norm(x, dim):
    """|x[:dim]|, the sum of squares in the fixed order of ``kernels.reduce``."""
    return np.sqrt(dot(x[:dim], x[:dim]))


@exact
def _divide(x, dim, d):
    """x[:dim] /= d in IEEE arithmetic: under ``arcp`` a vector body and its scalar remainder
    may divide differently (``jit.exact``), so the bits would depend on the vector width."""
    for j in range(dim):
        x[j] = x[j] / d


@inline
def _project_off(P, count, x, dim, c):
    """x[:dim] -= P[:count]^T P x for orthonormal rows P, twice (Gram-Schmidt with one
    re-orthogonalisation); c[:count] <- the coefficients P x. Returns |x| afterwards.
    Every sum in the fixed order of ``kernels.reduce`` (the same bits on every target)."""
    for i in range(count):
        c[i] = 0.0
    for it in range(2):
        for i in range(count):
            d = dot(P[i, :dim], x[:dim])
            c[i] += d
            for j in range(dim):
                x[j] -= d * P[i, j]
    return _norm(x, dim)


@inline
def layer_scratch(L, k, nmax):
    """The per-thread scratch of ``dntk_layer`` and the forward pass: zs, ss, ds, d2s
    (L-1, k nmax), Ls (L, k, k), gs, rs (L-1, 2k, nmax), zt (L-1, 2k k, nmax), st (2k k, nmax),
    gt, gn (4k^2, nmax), Dl (L, 2k, 2k), H (2k, 2k), T (2k, 2k, 2k), Wp (2, nmax), bp (2,),
    zp (2, k)."""
    nc = 2 * k
    return (np.empty((L - 1, k * nmax)), np.empty((L - 1, k * nmax)), np.empty((L - 1, k * nmax)),
            np.empty((L - 1, k * nmax)), np.empty((L, k, k)), np.empty((L - 1, nc, nmax)),
            np.empty((L - 1, nc, nmax)), np.empty((L - 1, nc * k, nmax)), np.empty((nc * k, nmax)),
            np.empty((nc * nc, nmax)), np.empty((nc * nc, nmax)), np.empty((L, nc, nc)),
            np.empty((nc, nc)), np.empty((nc, nc, nc)), np.empty((2, nmax)), np.empty(2),
            np.empty((2, k)))


@kernel
def reveal_known(rv, lp, x, z, N1, n):
    """Forward pass of layer lp: U x = z is known (x (N1,) overwritten). Adds x's new
    direction to the right basis (nothing when x is in the span of the earlier ones)."""
    i0 = lp - 1
    r = rv.cnt[i0, 0]
    Qr, A, c = rv.Qr[i0], rv.A[i0], rv.c
    xn = _norm(x, N1)
    nrm = _project_off(Qr, r, x, N1, c)
    if nrm <= FORWARD_RTOL * xn or nrm == 0.0:
        return
    for j in range(N1):
        Qr[r, j] = x[j]
    _divide(Qr[r], N1, nrm)
    for j in range(n):                          # sums over the r revealed vectors, in order
        A[r, j] = sub_dot_seq(z[j], c, A[:, j], r)
    _divide(A[r], n, nrm)
    rv.cnt[i0, 0] = r + 1


@kernel
def _reveal(P, KP, Q, KQ, np_, nq, x, dim_x, dim_out, out, key, block, network, position,
            c, fresh):
    # out[:dim_out] = U x for a vector x (dim_x,) on the side of basis P (np_ rows, KP its
    # known products, rows of length dim_out), the other side's basis Q (nq rows) with known
    # products KQ (rows of length dim_x). Returns True when x adds a direction (appended as
    # P[np_], KP[np_]). x is overwritten.
    xn = _norm(x, dim_x)
    nrm = _project_off(P, np_, x, dim_x, c)
    for j in range(dim_out):                    # sums over the revealed vectors, in order
        out[j] = dot_seq(c, KP[:, j], np_)
    if nrm <= SPAN_RTOL * xn or nrm == 0.0:
        return False
    _divide(x, dim_x, nrm)
    f = fresh[:dim_out]
    fill_normals(key, block, network, position, f)
    _project_off(Q, nq, f, dim_out, c)          # the fresh part, off the other side's basis
    for t in range(nq):                         # the known part along it
        v = dot(KQ[t, :dim_x], x[:dim_x])
        for j in range(dim_out):
            f[j] += v * Q[t, j]
    for j in range(dim_out):
        out[j] += nrm * f[j]
        KP[np_, j] = f[j]
    for j in range(dim_x):
        P[np_, j] = x[j]
    return True


@inline
def times(rv, lp, W, v, n, nb, out, position, key, block, network):
    """out[:n] = W^(lp) v[:nb] (W (n, nb) explicit, or drawn given the revealed products)."""
    if not rv.markov:
        for i in range(n):
            out[i] = dot(W[i, :nb], v[:nb])     # fixed order (kernels/reduce.py)
        return
    i0 = lp - 1
    x = rv.xin
    sw = rv.sw[i0]
    for j in range(nb):
        x[j] = sw * v[j]
    x[nb] = 0.0
    r, s = rv.cnt[i0, 0], rv.cnt[i0, 1]
    if _reveal(rv.Qr[i0], rv.A[i0], rv.Ql[i0], rv.B[i0], r, s, x, nb + 1, n, out, key, block,
               network, position, rv.c, rv.fresh):
        rv.cnt[i0, 0] = r + 1


@inline
def times_transpose(rv, lp, W, y, n, nb, out, position, key, block, network):
    """out[:nb] = W^(lp)T y[:n] (W (n, nb) explicit, or drawn given the revealed products)."""
    if not rv.markov:
        for j in range(nb):
            out[j] = 0.0
        for i in range(n):
            yi = y[i]
            for j in range(nb):
                out[j] += yi * W[i, j]
        return
    i0 = lp - 1
    x = rv.xin
    for i in range(n):
        x[i] = y[i]
    r, s = rv.cnt[i0, 0], rv.cnt[i0, 1]
    if _reveal(rv.Ql[i0], rv.B[i0], rv.Qr[i0], rv.A[i0], s, r, x, n, nb + 1, rv.xout, key,
               block, network, position, rv.c, rv.fresh):
        rv.cnt[i0, 1] = s + 1
    sw = rv.sw[i0]
    for j in range(nb):
        out[j] = sw * rv.xout[j]


@inline
def weight_matrix(rv, Wf, woff, lp, n, nb):
    """W^(lp) (n, nb) from the flat explicit weights (a dummy on the markov path)."""
    if rv.markov:
        return np.empty((1, 1))
    return Wf[woff[lp - 1]: woff[lp - 1] + n * nb].reshape((n, nb))


@inline
def dntk_width(k):
    """Length of the dNTK part of the per-layer vector (module docstring)."""
    m = k * (k + 1) // 2
    return 2 * k * k * k + 2 * k * m + 2 * k



@kernel
def dntk_layer(lo, k, widths, Wf, woff, Wp, lam_W, zs, ss, ds, d2s, Ls,
               gs, rs, zt, st, gt, gn, Dl, H, T, rv, key, block, network):
    """NTK H (2k, 2k) and dNTK T (2k, 2k, 2k) [c0, c1, c2] of output layer lo (>= 2) with
    probe rows Wp (2, n_{lo-1}) above the forward pass in zs, ss, ds, d2s ((L-1, k nmax):
    z, sigma, sigma', sigma'' of layers 1.., row l-1, (k, n_l) flattened) and Ls (Lhat^(1..lo)).

    Products with the weights W^(l') (2 <= l' < lo): with ``rv.markov`` False explicit (Wf,
    flat, W^(l') at woff[l'-1]); with it True drawn from their law given everything revealed
    so far (``Revealer``; Wf, woff unused). Scratch: gs, rs (lo-1, 2k, nmax); zt
    (lo-1, 2k k, nmax); st (2k k, nmax); gt, gn (4k^2, nmax); Dl (lo, 2k, 2k).
    """
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
        W = weight_matrix(rv, Wf, woff, lp, n, nb)
        for c in range(nc):
            a = c % k
            times_transpose(rv, lp, W, gs[lp - 1, c], n, nb, rs[lp - 2, c],
                            rv.base[lp - 1] + c * ((nb + 2) // 2), key, block, network)
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
        W = weight_matrix(rv, Wf, woff, lp + 1, n, nb)
        for r in range(nc * k):
            a = r % k
            for j in range(nb):
                st[r, j] = ds[lp - 1, a * nb + j] * zt[lp - 1, r, j]
        first = rv.base[lp] + nc * ((nb + 2) // 2)      # (markov: W^(lp+1), layer lp+1)
        for r in range(nc * k):
            c0, a = r // k, r % k
            f = Ls[lp, c0 % k, a]
            times(rv, lp + 1, W, st[r], n, nb, zt[lp, r], first + r * ((n + 1) // 2), key,
                  block, network)
            for i in range(n):
                zt[lp, r, i] += gs[lp, c0, i] * f
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
                acc = dot3(ds[top, a1 * n_top: (a1 + 1) * n_top], zt[top, c0 * k + a1, :n_top],
                           ss[top, a2 * n_top: (a2 + 1) * n_top])
                for u in range(2):
                    T[c0, u * k + a1, u * k + a2] += lw * acc
    for lp in range(lo - 1, 0, -1):             # gt holds gdot^(lp)
        n = widths[lp - 1]
        for c0 in range(nc):
            for c1 in range(nc):
                a1 = c1 % k
                for c2 in range(nc):
                    acc = dot(gt[c0 * nc + c1, :n], gs[lp - 1, c2, :n])
                    T[c0, c1, c2] += acc * Ls[lp - 1, a1, c2 % k]
        if lp == 1:
            break
        nb = widths[lp - 2]
        lwb = lam_W[lp - 1] / nb
        for c0 in range(nc):                    # the weights of layer lp
            for a1 in range(k):
                for a2 in range(k):
                    acc = dot3(ds[lp - 2, a1 * nb: (a1 + 1) * nb], zt[lp - 2, c0 * k + a1, :nb],
                               ss[lp - 2, a2 * nb: (a2 + 1) * nb])
                    for c1 in range(a1, nc, k):
                        for c2 in range(a2, nc, k):
                            T[c0, c1, c2] += Dl[lp - 1, c1, c2] * lwb * acc
        W = weight_matrix(rv, Wf, woff, lp, n, nb)
        first = rv.base[lp - 1] + nc * ((nb + 2) // 2) + nc * k * ((n + 1) // 2)
        for row in range(nc * nc):
            times_transpose(rv, lp, W, gt[row], n, nb, gn[row], first + row * ((nb + 2) // 2),
                            key, block, network)
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
def write_dntk(T, zp, k, out):
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
