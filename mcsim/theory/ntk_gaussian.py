"""Gaussian expectations the NTK recursions need beyond ``gaussian`` (docs/ntk-theory.md).

For z ~ N(0, K), K a (k, k) covariance over inputs a = 0..k-1, s_a = sigma(z_a) and
s'_a = sigma'(z_a):

    mixed_four_point(act, K)  -> (X4, Y4, Z4), each (k, k, k, k):
                                 X4[a, b, c, d] = <s_a  s_b  s_c  s_d>
                                 Y4[a, b, c, d] = <s'_a s'_b s_c  s_d>
                                 Z4[a, b, c, d] = <s'_a s'_b s'_c s'_d>
    gradient_sigma_dsigma(act, K) -> Yd (k, k, k):
                                 Yd[c, a, e] = <d/dz_e [sigma(z_c) sigma'(z_a)]>
                                 (zero unless e in {a, c}; by Gaussian integration by parts
                                 <z_g f> = sum_e K_ge <d_e f>, so no sigma'' is needed and
                                 kinked activations (ReLU) work)
    derivative_activation(act)   sigma' as an activation-like object (value = sigma',
                                 derivative = sigma''), for <s' s'> and its derivatives in K
                                 with ``gaussian.two_point_jacobian`` (closed forms for the
                                 step function sigma' of the ReLU family, integration by parts
                                 otherwise).

Everything is computed with the piecewise Gauss-Legendre rule of ``quadrature`` split at the
activation's kinks (about 1e-13 relative in 1-3 dimensions, 1e-7 in 4).
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from ..errors import ConfigError
from . import gaussian as _g
from .quadrature import expect, iter_grid

__all__ = ["derivative_activation", "mixed_four_point", "gradient_sigma_dsigma",
           "check_ntk_activation"]


def check_ntk_activation(act) -> None:
    """Raise ConfigError when sigma' contains a delta function (sigma jumps: perceptron)."""
    if _g.is_discontinuous(act):
        raise ConfigError(
            f"network.activation: {act.name!r} jumps, so its derivative is a delta function "
            "and the neural tangent kernel is infinite; NTK predictions need a continuous "
            "activation")


@dataclass(frozen=True)
class _Derivative:
    """sigma' of ``base`` with the attributes ``gaussian`` reads from an Activation."""
    base: object

    @property
    def name(self) -> str:
        return self.base.name + "'"             # never matches a closed form by name

    @property
    def kinks(self) -> tuple:
        return tuple(self.base.kinks)

    scale_invariant = False
    param = 0.0

    def value(self, x):
        return self.base.derivative(x)

    def derivative(self, x):
        return self.base.second_derivative(x)

    def spec(self) -> dict:
        return {"name": self.name}

    __call__ = value


def derivative_activation(act):
    """sigma' of ``act`` as an activation-like object for ``gaussian`` (see module doc)."""
    return _Derivative(act)


def _breakpoints(act):
    return _g.breakpoints(act)


def mixed_four_point(act, K, *, q=None):
    """(X4, Y4, Z4), each (k,)*4; see the module docstring.

    One quadrature rule over all k inputs (``quadrature.iter_grid``, split at the kinks):
    with the pair products SS[:, (a, b)] = s_a s_b and DD[:, (a, b)] = s'_a s'_b at the
    nodes, X4 = SS^T w SS, Y4 = DD^T w SS, Z4 = DD^T w DD (matrices over pairs).
    """
    K = 0.5 * (np.asarray(K, dtype=float) + np.asarray(K, dtype=float).T)
    k = K.shape[0]
    X4, Y4, Z4 = (np.zeros((k * k, k * k)) for _ in range(3))
    for z, w in iter_grid(K, _breakpoints(act), q):
        s, ds = act.value(z), act.derivative(z)
        SS = (s[:, :, None] * s[:, None, :]).reshape(len(w), k * k)
        DD = (ds[:, :, None] * ds[:, None, :]).reshape(len(w), k * k)
        wSS, wDD = w[:, None] * SS, w[:, None] * DD
        X4 += wSS.T @ SS
        Y4 += wDD.T @ SS
        Z4 += wDD.T @ DD
    return tuple(T.reshape((k,) * 4) for T in (X4, Y4, Z4))


def gradient_sigma_dsigma(act, K, *, q=None):
    """Yd[c, a, e] = <d_e (sigma(z_c) sigma'(z_a))>_K, shape (k, k, k).

    By integration by parts, <z_g f> = sum_{e in S} K_ge <d_e f> over S = {a, c}, solved
    with the 2 x 2 (or 1 x 1) block of K. Raises ValueError when that block is singular
    (two distinct inputs with correlation +-1).
    """
    K = 0.5 * (np.asarray(K, dtype=float) + np.asarray(K, dtype=float).T)
    k = K.shape[0]
    Yd = np.zeros((k, k, k))
    for a in range(k):
        for c in range(k):
            S = [a] if a == c else sorted({a, c})
            ia, ic = S.index(a), S.index(c)

            def f(z, ia=ia, ic=ic):
                v = act.value(z[:, ic]) * act.derivative(z[:, ia])
                return v[:, None] * z

            KS = K[np.ix_(S, S)]
            zf = expect(f, KS, _breakpoints(act), q)              # <z_g f>, (|S|,)
            if np.linalg.cond(KS) > 1e12:
                raise ValueError(
                    f"inputs {a + 1} and {c + 1}: their kernel block is singular (correlation "
                    "+-1); NTK fluctuations need distinct, non-collinear inputs")
            grad = np.linalg.solve(KS, zf)
            for i, e in enumerate(S):
                Yd[c, a, e] = grad[i]
    return Yd
