"""Gaussian expectations of activations and their derivatives with respect to the covariance.

For z ~ N(0, K), K a (k, k) covariance over the inputs a = 0..k-1 and s_a = sigma(z_a):

    two_point(act, K)             M2[a, b]       = <s_a s_b>_K                      (k, k)
    four_point(act, K)            M4[a, b, c, d] = <s_a s_b s_c s_d>_K              (k,)*4
    derivative_two_point(act, K)  D[a, b]        = <sigma'(z_a) sigma'(z_b)>_K      (k, k)
    two_point_jacobian(act, K)    J[a, b, c, d]  = d <s_a s_b> / dK_cd              (k,)*4
                                  H[a, b, c, d, e, f] = d^2 <s_a s_b> / dK_cd dK_ef (k,)*6

Derivatives treat the k^2 entries of K as independent (the convention of Price's theorem):
d<f>/dK_cd = (1/2) <d_c d_d f> for every ordered pair (c, d), so for a symmetric increment
dK the first-order change is sum_{c,d} J[., ., c, d] dK_cd, summed over *all* ordered pairs.
<s_a s_b> depends only on the 2 x 2 block of K on {a, b}, so J and H vanish unless all of
c, d, e, f are in {a, b}.

How each quantity is computed:

* closed forms where they exist (and are then used): linear (Wick), the ReLU family
  sigma = A z + B relu(z) (arc-cosine kernel of order 1, Cho & Saul 2009), step functions
  sigma = lo + (hi - lo) theta(z) (arc-cosine order 0), erf (arcsine kernel, Williams 1997),
  sin (exp(-(K_aa + K_bb)/2) sinh K_ab);
* otherwise the piecewise Gauss-Legendre rule of ``quadrature`` with the breakpoints at the
  activation's kinks (0 for smooth ones); the quadruple moments always use it (over the
  distinct inputs of each entry, at most 4 dimensions);
* derivatives: analytic derivatives of the closed forms (ReLU family, steps), Price's
  theorem with derivatives of sigma up to order 4 for the smooth activations (the
  registry's sigma, sigma', sigma'' and the third and fourth derivatives below), and for
  anything else Gaussian integration by parts with the inverse of the 2 x 2 block
  (multivariate Hermite polynomials), which needs no derivative of sigma at all.

Everything here is for a fixed K; the layer-to-layer recursions live in ``recursions``.
"""
from __future__ import annotations

from collections import defaultdict
from itertools import combinations_with_replacement, permutations

import numpy as np
from scipy import special

from .quadrature import expect

__all__ = ["breakpoints", "two_point", "four_point", "derivative_two_point",
           "two_point_jacobian", "derivative_method", "higher_derivatives", "relu_family",
           "step_family", "kappa0", "kappa1", "is_discontinuous"]

_TWO_OVER_SQRT_PI = 2.0 / np.sqrt(np.pi)


# ------------------------------------------------------------------------------------------
# activation properties
# ------------------------------------------------------------------------------------------
def breakpoints(act) -> tuple:
    """Where the quadrature splits each variable: the kinks, or 0 for smooth activations."""
    return tuple(act.kinks) if act.kinks else (0.0,)


_PROBE = np.array([-3.7, -2.0, -1.0, -0.31, 0.27, 1.0, 2.0, 4.1])


def relu_family(act):
    """(A, B) when sigma(z) = A z + B relu(z) exactly (linear, ReLU, leaky ReLU), else None."""
    if not getattr(act, "scale_invariant", False) or any(c != 0.0 for c in act.kinks):
        return None
    p, m = float(act.value(1.0)), -float(act.value(-1.0))
    ref = np.where(_PROBE > 0, p * _PROBE, m * _PROBE)
    if not np.allclose(act.value(_PROBE), ref, rtol=1e-14, atol=1e-14):
        return None
    return m, p - m


def step_family(act):
    """(lo, hi) when sigma = lo + (hi - lo) theta(z) with the jump at 0 (perceptron), else None."""
    if tuple(act.kinks) != (0.0,):
        return None
    lo, hi = float(act.value(-1.0)), float(act.value(1.0))
    ref = np.where(_PROBE > 0, hi, lo)
    if lo == hi or not np.allclose(act.value(_PROBE), ref, rtol=0, atol=1e-15):
        return None
    return lo, hi


def is_discontinuous(act) -> bool:
    """True when sigma jumps at a kink (then sigma' has a delta and chi_perp, NTK diverge)."""
    return any(abs(float(act.value(c + 1e-9)) - float(act.value(c - 1e-9))) > 1e-6
               for c in act.kinks)


def _named(act, name, reference) -> bool:
    return act.name == name and np.allclose(act.value(_PROBE), reference(_PROBE), rtol=1e-13,
                                            atol=1e-15)


def _is_erf(act):
    return _named(act, "erf", special.erf)


def _is_sin(act):
    return _named(act, "sin", np.sin)


def kappa0(rho):
    """<theta(x) theta(y)> for unit-variance Gaussians with correlation rho (arc-cosine, order 0)."""
    rho = np.clip(rho, -1.0, 1.0)
    return (np.pi - np.arccos(rho)) / (2 * np.pi)


def kappa1(rho):
    """<relu(x) relu(y)> for unit-variance Gaussians with correlation rho (arc-cosine, order 1)."""
    rho = np.clip(rho, -1.0, 1.0)
    return (np.sqrt(1 - rho * rho) + (np.pi - np.arccos(rho)) * rho) / (2 * np.pi)


# ------------------------------------------------------------------------------------------
# higher derivatives of the smooth activations (Price's theorem at fourth order)
# ------------------------------------------------------------------------------------------
def _sig(x):
    s = special.expit(x)
    return s, special.expit(-x)                 # (s, 1 - s) both to full precision


def _sigmoid_d34(x):
    s, t = _sig(x)
    p = s * t
    return p * (1 - 6 * p), p * (t - s) * (1 - 12 * p)


def _third_fourth(name):
    """sigma''' and sigma'''' for the smooth registry activations (x -> (d3, d4))."""
    def tanh(x):
        t = np.tanh(x)
        s = 1 - t * t
        return -2 * s + 6 * t * t * s, 8 * t * s * (2 - 3 * t * t)

    def softplus(x):
        s, t = _sig(x)
        p = s * t
        return p * (t - s), p * (1 - 6 * p)

    def erf(x):
        e = _TWO_OVER_SQRT_PI * np.exp(-x * x)
        return e * (4 * x * x - 2), e * (12 * x - 8 * x ** 3)

    def gelu(x):
        ph = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
        return ph * (x ** 3 - 4 * x), ph * (-x ** 4 + 7 * x * x - 4)

    def swish(x):                                # (x s)^(n) = n s^(n-1) + x s^(n)
        s, t = _sig(x)
        p = s * t
        s2 = p * (t - s)
        s3, s4 = _sigmoid_d34(x)
        return 3 * s2 + x * s3, 4 * s3 + x * s4

    table = {"linear": lambda x: (0 * x, 0 * x), "tanh": tanh, "sigmoid": _sigmoid_d34,
             "softplus": softplus, "sin": lambda x: (-np.cos(x), np.sin(x)), "erf": erf,
             "gelu": gelu, "swish": swish}
    return table.get(name)


def higher_derivatives(act, x, order: int = 4) -> list:
    """[sigma, sigma', ..., sigma^(order)] at x (order <= 4); ValueError when not available."""
    x = np.asarray(x, dtype=float)
    out = [act.value(x), act.derivative(x)]
    if order >= 2:
        second = getattr(act, "second_derivative", None)
        if second is None:
            raise ValueError(f"no second derivative for activation {act.name!r}")
        out.append(second(x))
    if order >= 3:
        f = _third_fourth(act.name) if not act.kinks else None
        if f is None:
            raise ValueError(f"no third/fourth derivatives known for activation {act.name!r}")
        out.extend(f(x))
    return [np.asarray(v, dtype=float) for v in out[:order + 1]]


def derivative_method(act) -> str:
    """How two_point_jacobian differentiates: "closed", "price" or "parts" (integration by parts)."""
    if relu_family(act) is not None or step_family(act) is not None:
        return "closed"
    if not act.kinks and _third_fourth(act.name) is not None:
        return "price"
    return "parts"


# ------------------------------------------------------------------------------------------
# two- and four-point functions
# ------------------------------------------------------------------------------------------
def _as_cov(K):
    K = np.asarray(K, dtype=float)
    if K.ndim == 0:
        K = K.reshape(1, 1)
    return 0.5 * (K + K.T)


def _scales(K):
    d = np.sqrt(np.maximum(np.diag(K), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(np.outer(d, d) > 0, K / np.outer(d, d), 0.0)
    rho = np.clip(rho, -1.0, 1.0)
    rho[np.diag_indices_from(rho)] = np.where(d > 0, 1.0, 0.0)     # exact: arccos is steep at 1
    return d, rho


def _two_point_closed(act, K):
    """<s_a s_b>_K in closed form, or None."""
    fam = relu_family(act)
    if fam is not None:
        A, B = fam
        d, rho = _scales(K)
        return (A * A + A * B) * K + B * B * np.outer(d, d) * kappa1(rho)
    st = step_family(act)
    if st is not None:
        lo, hi = st
        _, rho = _scales(K)
        return lo * lo + lo * (hi - lo) + (hi - lo) ** 2 * kappa0(rho)
    if _is_erf(act):
        g = 1 + 2 * np.diag(K)
        return (2 / np.pi) * np.arcsin(np.clip(2 * K / np.sqrt(np.outer(g, g)), -1, 1))
    if _is_sin(act):
        m = 0.5 * (np.diag(K)[:, None] + np.diag(K)[None, :])
        return 0.5 * (np.exp(K - m) - np.exp(-K - m))
    return None


def _derivative_two_point_closed(act, K):
    fam = relu_family(act)
    if fam is not None:
        A, B = fam
        _, rho = _scales(K)
        return A * A + A * B + B * B * kappa0(rho)
    if _is_erf(act):
        g = 1 + 2 * np.diag(K)
        det = np.outer(g, g) - 4 * K * K
        return (4 / np.pi) / np.sqrt(np.maximum(det, 0.0))
    if _is_sin(act):
        m = 0.5 * (np.diag(K)[:, None] + np.diag(K)[None, :])
        return 0.5 * (np.exp(K - m) + np.exp(-K - m))
    return None


def _moments(fn, K, order, bps, q):
    """Symmetric tensor T[i1..i_order] = <prod_t fn(z)[:, i_t]> by quadrature over the
    distinct inputs of each entry (grouped so each sub-block of K is integrated once)."""
    k = K.shape[0]
    out = np.empty((k,) * order)
    groups = defaultdict(list)
    for m in combinations_with_replacement(range(k), order):
        groups[tuple(sorted(set(m)))].append(m)
    for S, ms in groups.items():
        pos = {a: i for i, a in enumerate(S)}
        cols = [[pos[a] for a in m] for m in ms]

        def f(z, cols=cols):
            s = fn(z)
            return np.stack([np.prod(s[:, c], axis=1) for c in cols], axis=1)

        vals = expect(f, K[np.ix_(S, S)], bps, q)
        for m, v in zip(ms, vals):
            for perm in set(permutations(m)):
                out[perm] = v
    return out


def two_point(act, K, *, closed: bool = True, q=None) -> np.ndarray:
    """M2[a, b] = <sigma(z_a) sigma(z_b)>_K, shape (k, k); closed form when known."""
    K = _as_cov(K)
    if closed:
        M = _two_point_closed(act, K)
        if M is not None:
            return M
    return _moments(act.value, K, 2, breakpoints(act), q)


def four_point(act, K, *, q=None) -> np.ndarray:
    """M4[a, b, c, d] = <s_a s_b s_c s_d>_K, shape (k,)*4 (Wick for linear, else quadrature)."""
    K = _as_cov(K)
    if act.name == "linear" and relu_family(act) == (1.0, 0.0):
        return (np.einsum("ab,cd->abcd", K, K) + np.einsum("ac,bd->abcd", K, K)
                + np.einsum("ad,bc->abcd", K, K))
    return _moments(act.value, K, 4, breakpoints(act), q)


def derivative_two_point(act, K, *, closed: bool = True, q=None) -> np.ndarray:
    """D[a, b] = <sigma'(z_a) sigma'(z_b)>_K (k, k); +inf where sigma jumps (delta in sigma')."""
    K = _as_cov(K)
    if is_discontinuous(act):
        return np.full(K.shape, np.inf)
    if closed:
        D = _derivative_two_point_closed(act, K)
        if D is not None:
            return D
    return _moments(act.derivative, K, 2, breakpoints(act), q)


# ------------------------------------------------------------------------------------------
# derivatives with respect to K
# ------------------------------------------------------------------------------------------
def _local_from_params(gp, hp):
    """Convert derivatives w.r.t. p = (K_aa, K_bb, K_ab) (K_ab = K_ba moved together) into
    independent-entry tensors J (2, 2), H (2, 2, 2, 2) over the local indices (0=a, 1=b)."""
    idx = np.array([[0, 2], [2, 1]])
    fac = np.array([[1.0, 0.5], [0.5, 1.0]])
    J = fac * gp[idx]
    H = fac[:, :, None, None] * fac[None, None, :, :] * hp[idx[:, :, None, None], idx[None, None, :, :]]
    return J, H


def _chart(Kaa, Kbb, Kab, m, kap, dkap, ddkap):
    """Gradient and Hessian in p = (K_aa, K_bb, K_ab) of Phi = (s_a s_b)^m kappa(rho),
    s = sqrt(K_aa), sqrt(K_bb), rho = K_ab / (s_a s_b), m in {0, 1}."""
    sa, sb = np.sqrt(Kaa), np.sqrt(Kbb)
    rho = Kab / (sa * sb)
    P = (sa * sb) ** m
    g = np.array([m * sb * kap if m else 0.0, m * sa * kap if m else 0.0, P * dkap])
    h = np.array([[0.0, m * kap if m else 0.0, m * sb * dkap if m else 0.0],
                  [0.0, 0.0, m * sa * dkap if m else 0.0],
                  [0.0, 0.0, P * ddkap]])
    h = np.triu(h) + np.triu(h, 1).T
    dy = np.array([[0.5 / sa, 0.0, 0.0],
                   [0.0, 0.5 / sb, 0.0],
                   [-0.5 * rho / Kaa, -0.5 * rho / Kbb, 1.0 / (sa * sb)]])
    d2y = np.zeros((3, 3, 3))
    d2y[0, 0, 0] = -0.25 / sa ** 3
    d2y[1, 1, 1] = -0.25 / sb ** 3
    d2y[2] = [[0.75 * rho / Kaa ** 2, 0.25 * rho / (Kaa * Kbb), -0.5 / (Kaa * sa * sb)],
              [0.25 * rho / (Kaa * Kbb), 0.75 * rho / Kbb ** 2, -0.5 / (Kbb * sa * sb)],
              [-0.5 / (Kaa * sa * sb), -0.5 / (Kbb * sa * sb), 0.0]]
    return g @ dy, dy.T @ h @ dy + np.einsum("k,kpq->pq", g, d2y)


def _pair_closed(act, K2):
    """(J, H) local tensors for a pair of distinct inputs from the closed forms."""
    Kaa, Kbb, Kab = K2[0, 0], K2[1, 1], K2[0, 1]
    rho = np.clip(Kab / np.sqrt(Kaa * Kbb), -1.0, 1.0)
    with np.errstate(divide="ignore"):
        inv = 1.0 / np.sqrt(1 - rho * rho)
    fam = relu_family(act)
    if fam is not None:
        A, B = fam
        gp, hp = _chart(Kaa, Kbb, Kab, 1, kappa1(rho), kappa0(rho), inv / (2 * np.pi))
        gp, hp = B * B * gp, B * B * hp
        gp[2] += A * A + A * B
    else:
        lo, hi = step_family(act)
        gp, hp = _chart(Kaa, Kbb, Kab, 0, kappa0(rho), inv / (2 * np.pi),
                        rho * inv ** 3 / (2 * np.pi))
        gp, hp = (hi - lo) ** 2 * gp, (hi - lo) ** 2 * hp
    return _local_from_params(gp, hp)


def _single_closed(act, Kaa):
    fam = relu_family(act)
    if fam is not None:
        A, B = fam
        return A * A + A * B + 0.5 * B * B, 0.0
    return 0.0, 0.0                                  # steps: <sigma^2> does not depend on K


def _pair_price(act, K2, q):
    def f(z):
        da, db = higher_derivatives(act, z[:, 0]), higher_derivatives(act, z[:, 1])
        return np.stack([da[i] * db[n - i] for n in (2, 4) for i in range(n + 1)], axis=1)

    v = expect(f, K2, breakpoints(act), q)
    M = {(i, 2 - i): v[i] for i in range(3)}
    M.update({(i, 4 - i): v[3 + i] for i in range(5)})
    J = np.empty((2, 2))
    H = np.empty((2, 2, 2, 2))
    for c, d in np.ndindex(2, 2):
        na = (c == 0) + (d == 0)
        J[c, d] = 0.5 * M[(na, 2 - na)]
    for idx in np.ndindex(2, 2, 2, 2):
        na = sum(i == 0 for i in idx)
        H[idx] = 0.25 * M[(na, 4 - na)]
    return J, H


def _single_price(act, Kaa, q):
    def f(z):
        s, d1, d2, d3, d4 = higher_derivatives(act, z[:, 0])
        return np.stack([s * d2 + d1 * d1, 0.25 * (2 * s * d4 + 8 * d1 * d3 + 6 * d2 * d2)], axis=1)

    J, H = expect(f, [[Kaa]], breakpoints(act), q)
    return J, H


def _pair_parts(act, K2, q):
    P = np.linalg.inv(K2)

    def f(z):
        s = act.value(z)
        fz = s[:, 0] * s[:, 1]
        y = z @ P
        h2 = y[:, :, None] * y[:, None, :] - P
        yy = y[:, :, None] * y[:, None, :]
        h4 = (np.einsum("nc,nd,ne,nf->ncdef", y, y, y, y)
              - np.einsum("cd,nef->ncdef", P, yy) - np.einsum("ce,ndf->ncdef", P, yy)
              - np.einsum("cf,nde->ncdef", P, yy) - np.einsum("de,ncf->ncdef", P, yy)
              - np.einsum("df,nce->ncdef", P, yy) - np.einsum("ef,ncd->ncdef", P, yy)
              + (np.einsum("cd,ef->cdef", P, P) + np.einsum("ce,df->cdef", P, P)
                 + np.einsum("cf,de->cdef", P, P))[None])
        return np.concatenate([(0.5 * fz[:, None, None] * h2).reshape(len(fz), -1),
                               (0.25 * fz[:, None, None, None, None] * h4).reshape(len(fz), -1)],
                              axis=1)

    v = expect(f, K2, breakpoints(act), q)
    return v[:4].reshape(2, 2), v[4:].reshape(2, 2, 2, 2)


def _single_parts(act, Kaa, q):
    def f(z):
        s2 = act.value(z[:, 0]) ** 2
        u2 = z[:, 0] ** 2 / Kaa
        return np.stack([s2 * (u2 - 1) / (2 * Kaa), s2 * (u2 * u2 - 6 * u2 + 3) / (4 * Kaa ** 2)],
                        axis=1)

    J, H = expect(f, [[Kaa]], breakpoints(act), q)
    return J, H


def two_point_jacobian(act, K, *, second: bool = True, method: str | None = None, q=None):
    """First (and second) derivatives of M2 = <s s>_K with respect to K (independent entries).

    Returns ``J`` (k, k, k, k) with ``J[a, b, c, d] = d M2[a, b] / dK_cd`` and, when
    ``second``, ``H`` (k,)*6 with ``H[a, b, c, d, e, f] = d^2 M2[a, b] / dK_cd dK_ef``
    (else None). ``method`` overrides ``derivative_method(act)`` ("closed", "price",
    "parts"). For distinct inputs with a singular 2 x 2 block (correlation +-1) the
    derivatives of kinked activations diverge and come back non-finite.
    """
    K = _as_cov(K)
    k = K.shape[0]
    method = method or derivative_method(act)
    single = {"closed": lambda a: _single_closed(act, K[a, a]),
              "price": lambda a: _single_price(act, K[a, a], q),
              "parts": lambda a: _single_parts(act, K[a, a], q)}[method]
    pair = {"closed": lambda K2: _pair_closed(act, K2),
            "price": lambda K2: _pair_price(act, K2, q),
            "parts": lambda K2: _pair_parts(act, K2, q)}[method]
    J = np.zeros((k,) * 4)
    H = np.zeros((k,) * 6) if second else None
    for a in range(k):
        j1, h1 = single(a)
        J[a, a, a, a] = j1
        if second:
            H[a, a, a, a, a, a] = h1
        for b in range(a + 1, k):
            ix = [a, b]
            jl, hl = pair(K[np.ix_(ix, ix)])
            for c, d in np.ndindex(2, 2):
                J[a, b, ix[c], ix[d]] = J[b, a, ix[c], ix[d]] = jl[c, d]
            if second:
                for idx in np.ndindex(2, 2, 2, 2):
                    g = tuple(ix[i] for i in idx)
                    H[(a, b) + g] = H[(b, a) + g] = hl[idx]
    return J, H
