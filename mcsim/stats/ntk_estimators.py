"""Estimators of the five NTK statistics from the per-network NTK quantities.

Per layer l, with n = n_{l-1} and units 1, 2 two distinct units of layer l (quantities
``ntk_11``, ``ntk_22``, ``ntk_12``, ``ntk_zz``, and ``gram`` = Ghat^(l)):

    ntk[a,b]       = E[Hhat_{11;ab}]                      mean of (H11 + H22)/2
    ntk_A[a,b,c,d] = n Cov(Hhat_{11;ab}, Hhat_{22;cd})    n * unbiased cross covariance,
                                                          symmetrised over 1 <-> 2
    ntk_B[a,c,b,d] = n E[Hhat_{12;ab} Hhat_{12;cd}]       n * (1/N) sum of products,
                                                          symmetrised over 1 <-> 2
    ntk_D[a,b,c,d] = n Cov(Hhat_{11;ab}, z_{2;c} z_{2;d}) = n Cov(Hhat_{11;ab}, Ghat_cd),
                                                          averaged over H11 and H22
    ntk_F[a,c,b,d] = n E[Hhat_{12;ab} z_{1;c} z_{2;d}]    n * (1/N) sum of products,
                                                          symmetrised over 1 <-> 2

All are unbiased. Why D may use Ghat: given the layers below l, unit 2's row is independent
of unit 1's NTK, and E[z_{2;c} z_{2;d} | below] = Ghat^(l)_cd, so
E[H11 z2 z2] = E[H11 Ghat] and E[z2 z2] = E[Ghat] exactly (a Rao-Blackwellisation). The
symmetrisations use that units 1 and 2 are exchangeable: (H11, H22) <-> (H22, H11) and
Hhat_{12;ab} <-> Hhat_{12;ba}, z_{1;c} z_{2;d} <-> z_{1;d} z_{2;c}.

Packed forms (leading layer axis S): ntk (S, m) pairs; ntk_A, ntk_D (S, m, m) over pairs
(ab), (cd); ntk_B, ntk_F (S, k^2, k^2) over (a k + b), (c k + d), unpacked to [a, c, b, d].
"""
from __future__ import annotations

import itertools

import numpy as np

from .indexing import unpack_matrix, unpack_vertex

__all__ = ["ntk_mean", "ntk_A", "ntk_B", "ntk_D", "ntk_F", "unpack_pairs2", "unpack_cross",
           "first_layer_ntk", "orbits", "PAIR_SYMMETRIES", "A_SYMMETRIES", "CROSS_SYMMETRIES_B",
           "CROSS_SYMMETRIES_F"]


def _cov(mom, q1, q2):
    N = mom.count
    m2 = mom.m2(q1, q2)
    return m2 / (N - 1) if N > 1 else np.full_like(m2, np.nan)


def _product_mean(mom, q1, q2):
    """(S, len1, len2) unbiased E[x y^T] = M2 / N + mean_x mean_y^T."""
    N = mom.count
    m2 = mom.m2(q1, q2)
    if N < 1:
        return np.full_like(m2, np.nan)
    return m2 / N + mom.mean(q1)[:, :, None] * mom.mean(q2)[:, None, :]


def _swap_units(t, k):
    """T[(ab), (cd)] -> T[(ba), (dc)] for (S, k^2, k^2) arrays indexed a k + b."""
    S = t.shape[0]
    return t.reshape(S, k, k, k, k).transpose(0, 2, 1, 4, 3).reshape(S, k * k, k * k)


def _k_of_square(length):
    return int(round(np.sqrt(length)))


def ntk_mean(mom, fan_in):
    return 0.5 * (mom.mean("ntk_11") + mom.mean("ntk_22"))


def ntk_A(mom, fan_in):
    c = _cov(mom, "ntk_11", "ntk_22")
    return fan_in[:, None, None] * 0.5 * (c + c.transpose(0, 2, 1))


def ntk_B(mom, fan_in):
    t = _product_mean(mom, "ntk_12", "ntk_12")
    k = _k_of_square(t.shape[-1])
    return fan_in[:, None, None] * 0.5 * (t + _swap_units(t, k))


def ntk_D(mom, fan_in):
    c = 0.5 * (_cov(mom, "ntk_11", "gram") + _cov(mom, "ntk_22", "gram"))
    return fan_in[:, None, None] * c


def ntk_F(mom, fan_in):
    t = _product_mean(mom, "ntk_12", "ntk_zz")
    k = _k_of_square(t.shape[-1])
    return fan_in[:, None, None] * 0.5 * (t + _swap_units(t, k))


def unpack_pairs2(packed, k):
    """(..., m, m) -> (..., k, k, k, k): X[a, b, c, d] = packed[p(a, b), p(c, d)]."""
    return unpack_vertex(packed, k)


def unpack_cross(packed, k):
    """(..., k^2, k^2) over (a k + b), (c k + d) -> (..., k, k, k, k) indexed [a, c, b, d]."""
    packed = np.asarray(packed)
    k = int(k)
    full = packed.reshape(packed.shape[:-2] + (k, k, k, k))      # [a, b, c, d]
    return np.swapaxes(full, -3, -2)                              # [a, c, b, d]


def first_layer_ntk(gram1, cfg):
    """Hhat^(1)_{ab} = lambda_b^(1) + lambda_W^(1) / n_0 x_a . x_b (deterministic)."""
    x = np.asarray(cfg.inputs)
    net = cfg.network
    return net.lambda_b[0] + net.lambda_W[0] / net.input_dim * (x @ x.T)


def unpack_mean(packed, k):
    return unpack_matrix(packed, k)


# symmetries of the full (k,)*4 arrays, as permutations of the four index positions
#: D: a <-> b and c <-> d
PAIR_SYMMETRIES = ((1, 0, 2, 3), (0, 1, 3, 2))
#: A: also (ab) <-> (cd) (units 1 and 2 are exchangeable)
A_SYMMETRIES = PAIR_SYMMETRIES + ((2, 3, 0, 1),)
#: B[a,c,b,d] = n E[H12_ab H12_cd]: (ab) <-> (cd) and the unit swap (a,b,c,d) -> (b,a,d,c)
CROSS_SYMMETRIES_B = ((1, 0, 3, 2), (2, 3, 0, 1))
#: F[a,c,b,d] = n E[H12_ab z1c z2d]: the unit swap only
CROSS_SYMMETRIES_F = ((2, 3, 0, 1),)


def orbits(k, perms):
    """One index tuple (the smallest) per orbit of (k,)*4 under the permutations ``perms``
    of index positions."""
    seen, out = set(), []
    for idx in itertools.product(range(k), repeat=4):
        if idx in seen:
            continue
        orbit, todo = {idx}, [idx]
        while todo:
            t = todo.pop()
            for p in perms:
                u = tuple(t[i] for i in p)
                if u not in orbit:
                    orbit.add(u)
                    todo.append(u)
        seen |= orbit
        out.append(min(orbit))
    return sorted(out)
