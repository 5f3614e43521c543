"""Higher Gaussian moments of an activation and their derivatives with respect to K.

For z ~ N(0, K), K a (k, k) covariance, s_a = sigma(z_a):

    moment_derivatives(act, K, m, d)[a_1..a_m, c_1, e_1, ..., c_d, e_d]
        = d^d <s_a1 ... s_am>_K / dK_{c1 e1} ... dK_{cd ed}         shape (k,)*(m + 2d)

with the entries of K treated as independent (the convention of ``gaussian``: for a
symmetric increment dK the first-order change sums over *all* ordered pairs). The
six-point function M6 (m = 6, d = 0), the derivatives of the four-point function (m = 4,
d = 1, 2) and the third derivative of the two-point function (m = 2, d = 3) feed the
six-point vertex and the 1/n correction of the four-point vertex (``six_point``,
``vertex_nlo``).

Method: Price's theorem turns each derivative in K_ce into (1/2) d_c d_e acting on the
integrand; Gaussian integration by parts moves the derivatives onto the density, so

    d^d <f>_K / dK_{c1e1} .. dK_{cded} = 2^-d <f(z) He_{c1 e1 .. cd ed}(z; K)>_K

with the multivariate Hermite polynomial He_{i1..ip}(z; K) = (-1)^p e^{z.P.z/2}
d_i1 .. d_ip e^{-z.P.z/2}, P = K^-1 on the inputs the integrand depends on, built by the
recursion He_{i,rest} = y_i He_rest - sum_j P_{i,rest_j} He_{rest without j}, y = P z.
This needs no derivative of sigma (works for kinks, ReLU included) but needs the block of
K on those inputs to be invertible: distinct inputs with correlation +-1 raise ValueError.
The polynomial weights cost accuracy when inputs are strongly correlated (the terms of He
grow like (1 - rho^2)^-d and cancel). Measured in two dimensions against the closed forms
(ReLU) and Price's theorem (tanh): second derivatives to ~1e-12 relative at correlation 0.99,
1e-10 (tanh) and 1e-8 (ReLU) at 0.999. In four dimensions the quadrature itself (~1e-7,
see ``quadrature``) sets the accuracy.

Every entry depends only on the distinct inputs among a_1..a_m (at most 4 here); the
derivative indices must lie among them, else the entry is zero. Entries are integrated
once per multiset of function indices and derivative indices and copied to every
permutation (the tensor is symmetric in the a's and in the c's and e's).
"""
from __future__ import annotations

from collections import defaultdict
from itertools import combinations_with_replacement, product

import numpy as np

from .gaussian import breakpoints
from .quadrature import iter_grid

__all__ = ["moment_derivatives", "moment_tensors", "hermite_polynomials"]

#: chunk size of the quadrature grids here (many polynomial columns per node)
MAX_NODES = 1 << 16


def hermite_polynomials(y: np.ndarray, P: np.ndarray, order: int) -> dict:
    """He_t(z; K) for every sorted index tuple t of length <= order (and the parity of order).

    y: (N, d) = z @ P; P: (d, d) the inverse covariance. Returns {t: (N,) array}."""
    d = P.shape[0]
    N = y.shape[0]
    he = {(): np.ones(N)}
    for p in range(1, order + 1):
        for t in combinations_with_replacement(range(d), p):
            i, rest = t[0], t[1:]
            v = y[:, i] * he[rest]
            for j in range(len(rest)):
                v = v - P[i, rest[j]] * he[rest[:j] + rest[j + 1:]]
            he[t] = v
    return he


def _code(t, k):
    c = 0
    for i in t:
        c = c * k + i
    return c


def moment_derivatives(act, K, m: int, d: int = 0, *, q=None) -> np.ndarray:
    """d^d <s_a1 .. s_am>_K / dK_{c1e1} .. dK_{cded}, shape (k,)*(m + 2d); see module docstring."""
    return moment_tensors(act, K, [(m, d)], q=q)[(m, d)]


def moment_tensors(act, K, requests, *, q=None) -> dict:
    """Several ``moment_derivatives`` at once, {(m, d): tensor}, sharing one quadrature grid
    (and the Hermite polynomials) per subset of inputs."""
    K = np.asarray(K, dtype=float)
    K = 0.5 * (K + K.T)
    k = K.shape[0]
    requests = [tuple(r) for r in requests]
    vals = {(m, d): np.zeros((k ** m, k ** (2 * d) if d else 1)) for m, d in requests}
    # per subset S of inputs: per request, the function multisets whose distinct inputs are S
    subsets = defaultdict(dict)
    for m, d in requests:
        for a in combinations_with_replacement(range(k), m):
            subsets[tuple(sorted(set(a)))].setdefault((m, d), []).append(a)
    bps = breakpoints(act)
    for S, reqs in subsets.items():
        dim = len(S)
        loc = {v: i for i, v in enumerate(S)}
        KS = K[np.ix_(S, S)]
        order = max(2 * d for m, d in reqs)
        if order:
            cond = np.linalg.cond(KS)
            if not np.isfinite(cond) or cond > 1e12:
                raise ValueError(
                    f"derivatives in K need an invertible block of K on inputs {list(S)} "
                    f"(condition number {cond:.3g}): two distinct inputs with correlation +-1")
            P = np.linalg.inv(KS)
        plan = {r: ([[loc[v] for v in a] for a in fs],
                    list(combinations_with_replacement(range(dim), 2 * r[1])))
                for r, fs in reqs.items()}
        acc = {r: np.zeros((len(fc), len(ders))) for r, (fc, ders) in plan.items()}
        for z, w in iter_grid(KS, bps, q, max_nodes=MAX_NODES):
            s = act.value(z)
            he = hermite_polynomials(z @ P, P, order) if order else {(): None}
            for r, (fc, ders) in plan.items():
                F = np.stack([np.prod(s[:, c], axis=1) for c in fc], axis=1) * w[:, None]
                if r[1]:
                    acc[r] += F.T @ np.stack([he[t] for t in ders], axis=1)
                else:
                    acc[r] += F.sum(axis=0)[:, None]
        for r, (fc, ders) in plan.items():
            fs = reqs[r]
            A = acc[r] * 0.5 ** r[1]
            for i, a in enumerate(fs):
                for j, t in enumerate(ders):
                    vals[r][_code(a, k), _code(tuple(S[x] for x in t), k)] = A[i, j]
    return {r: _expand(vals[r], k, r[0], 2 * r[1]) for r in requests}


def _expand(vals, k, m, p):
    """The full tensor (k,)*(m + p) from packed values [code of sorted a's, code of sorted
    derivative indices]."""
    idx = np.indices((k,) * (m + p)).reshape(m + p, -1).T
    fa = np.sort(idx[:, :m], axis=1)
    col = np.sort(idx[:, m:], axis=1) @ (k ** np.arange(p - 1, -1, -1)) if p else \
        np.zeros(len(idx), dtype=int)
    full = vals[fa @ (k ** np.arange(m - 1, -1, -1)), col]
    return full.reshape((k,) * (m + p))
