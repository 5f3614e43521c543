"""The dNTK quantities and the estimators of the two dNTK statistics (book ch. 11).

With the learning rates of the NTK (lambda_b^(l') for biases, lambda_W^(l')/n_{l'-1} for
weights) and layer l taken as the output, the dNTK of units i0, i1, i2 and inputs a0, a1, a2 is

    dHhat_{i0 i1 i2; a0 a1 a2} = sum_mu lambda_mu dz_{i0;a0}/dtheta_mu dHhat_{i1 i2; a1 a2}/dtheta_mu

(symmetric in (i1 a1) <-> (i2 a2); 0 at layer 1). With n = n_{l-1} and units 1, 2 two distinct
units of layer l:

    dntk_P[a0,a1,a2,a3] = n E[dHhat_{1 1 2; a0 a1 a2} z_{2;a3}]
    dntk_Q[a0,a1,a2,a3] = n E[dHhat_{1 2 2; a0 a1 a2} z_{1;a3}]        (symmetric in a1 <-> a2)

so that E[dHhat_{i0i1i2} z_{i3}] = (1/n)[d_{i0i1} d_{i2i3} P + d_{i0i2} d_{i1i3} P' + d_{i0i3} d_{i1i2} Q]
(P' is P with a1, a2 exchanged).

Per-network quantities (the kernels ``kernels.dntk_dense`` and ``kernels.dntk_markov`` fill
them, two probe units of layer l drawn given the layers below):

    dntk_112 (k^3)   dHhat_{1 1 2; a0 a1 a2}, entry (a0 k + a1) k + a2
    dntk_221 (k^3)   dHhat_{2 2 1; a0 a1 a2} (units swapped)
    dntk_122 (k m)   dHhat_{1 2 2; a0 a1 a2}, entry a0 m + p(a1 <= a2)
    dntk_211 (k m)   dHhat_{2 1 1; a0 a1 a2}
    dntk_z   (2k)    z_{1;a}, then z_{2;a}

They are stored as factors (not as the k^4 products) to keep the accumulator's covariance
small: E[X Y] is then the unbiased M2/N + mean_X mean_Y of the cross moments. The estimators
average the two roles of the exchangeable units (1 <-> 2), which keeps them unbiased:

    dntk_P = (n/2) (E[dntk_112 z_2] + E[dntk_221 z_1]),  dntk_Q = (n/2) (E[dntk_122 z_1] + E[dntk_211 z_2])

Packed forms (leading layer axis S): (S, k^4), entry ((a0 k + a1) k + a2) k + a3.
"""
from __future__ import annotations

import itertools

import numpy as np

from .indexing import n_pairs, pair_index
from .ntk_estimators import _product_mean       # unbiased E[x y^T] from the cross moments
from .quantities import Quantity, register_quantity

__all__ = ["DNTK_QUANTITIES", "dntk_P", "dntk_Q", "unpack", "P_entries", "Q_entries",
           "first_layer_dntk"]

#: the dNTK quantities, in the dense kernel's buffer order (after gram and the NTK ones)
DNTK_QUANTITIES = ("dntk_112", "dntk_221", "dntk_122", "dntk_211", "dntk_z")

_SETTINGS = ("network.lambda_b", "network.lambda_W")


def _flat(packed, k):
    return np.asarray(packed)


for _name, _desc, _length in (
        ("dntk_112", "dNTK dHhat^(l)_{1 1 2; a0 a1 a2} of units 1, 2 of layer l, entry "
                     "(a0 k + a1) k + a2", lambda cfg: cfg.k ** 3),
        ("dntk_221", "dNTK dHhat^(l)_{2 2 1; a0 a1 a2} (units of dntk_112 swapped), entry "
                     "(a0 k + a1) k + a2", lambda cfg: cfg.k ** 3),
        ("dntk_122", "dNTK dHhat^(l)_{1 2 2; a0 a1 a2}, entry a0 m + p(a1 <= a2) (pairs "
                     "lexicographic, m = k (k+1)/2)", lambda cfg: cfg.k * n_pairs(cfg.k)),
        ("dntk_211", "dNTK dHhat^(l)_{2 1 1; a0 a1 a2}, entry a0 m + p(a1 <= a2)",
         lambda cfg: cfg.k * n_pairs(cfg.k)),
        ("dntk_z", "z^(l)_{1;a} (k entries), then z^(l)_{2;a}, of the units of the dNTK "
                   "quantities", lambda cfg: 2 * cfg.k)):
    register_quantity(Quantity(name=_name, description=_desc, length=_length, unpack=_flat,
                               settings=_SETTINGS, needs_derivative=True))


def _k_of_z(mom):
    return mom.mean("dntk_z").shape[-1] // 2


def dntk_P(mom, fan_in):
    k = _k_of_z(mom)
    S = fan_in.shape[0]
    a = _product_mean(mom, "dntk_112", "dntk_z")[:, :, k:]       # E[d112 z_2]
    b = _product_mean(mom, "dntk_221", "dntk_z")[:, :, :k]       # E[d221 z_1]
    return fan_in[:, None] * 0.5 * (a + b).reshape(S, k ** 4)


def _pairs_to_full(t, k):
    """(S, k m, k) over (a0, p(a1 a2)), a3 -> (S, k, k, k, k)."""
    P = pair_index(k)
    S = t.shape[0]
    t = t.reshape(S, k, n_pairs(k), k)
    return t[:, :, P, :]


def dntk_Q(mom, fan_in):
    k = _k_of_z(mom)
    S = fan_in.shape[0]
    a = _product_mean(mom, "dntk_122", "dntk_z")[:, :, :k]       # E[d122 z_1]
    b = _product_mean(mom, "dntk_211", "dntk_z")[:, :, k:]       # E[d211 z_2]
    return fan_in[:, None] * 0.5 * _pairs_to_full(a + b, k).reshape(S, k ** 4)


def unpack(packed, k):
    """(..., k^4) -> (..., k, k, k, k) indexed [a0, a1, a2, a3]."""
    packed = np.asarray(packed)
    k = int(k)
    return packed.reshape(packed.shape[:-1] + (k,) * 4)


def first_layer_dntk(gram1, cfg):
    """Layer 1 is linear in its parameters: dHhat^(1) = 0."""
    k = gram1.shape[0]
    return np.zeros((k,) * 4)


def P_entries(k):
    """Distinct entries of dntk_P: all of them (no exact symmetry among a0..a3)."""
    return [tuple(i) for i in itertools.product(range(k), repeat=4)]


def Q_entries(k):
    """Distinct entries of dntk_Q: a1 <= a2 (dHhat_{122} is symmetric in (2 a1) <-> (2 a2))."""
    return [i for i in itertools.product(range(k), repeat=4) if i[1] <= i[2]]


def prediction(part):
    """The registry's prediction hook of ``dntk_P`` (``part`` = "P") or ``dntk_Q`` ("Q"):
    ``hook(layer_prediction) -> (prediction, leading, None)``, both the leading-order tensor
    (k,k,k,k) of ``LayerPrediction.dntk_moments`` (``theory.dntk.DNTKLayerPrediction``; no 1/n
    coefficient is predicted), NaN (not predicted) where the dNTK was not computed."""
    def hook(p):
        m = getattr(p, "dntk_moments", None)
        if m is None:
            nan = np.full((p.kernel.shape[0],) * 4, np.nan)
            return nan, nan, None
        value = getattr(m, part)
        return value, value, None
    return hook
