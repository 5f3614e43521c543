"""Explicit-weight NumPy Monte Carlo of the dNTK-preactivation correlations (independent
reference for mcsim.theory.dntk; nothing here uses its recursions).

Per network: draw every weight and bias, run forward, backpropagate by hand from units 1, 2
of layer l (g^(m)_{u;ja} = dz^(l)_{u;a}/dz^(m)_{j;a}) and form the NTK

    Hhat_{uv;ab} = sum_{m<=l} sum_j g^(m)_{u;ja} g^(m)_{v;jb}
                   (lambda_b^(m) + lambda_W^(m)/n_{m-1} sum_j' s^(m-1)_{j';a} s^(m-1)_{j';b}).

The dNTK is the directional derivative of that whole computation along the parameter
direction v_mu = lambda_mu dz^(l)_{i0;a0}/dtheta_mu:

    dHhat_{i0 u v; a0 a b} = D_v Hhat_{uv;ab},
    v(b^(m)_j) = lambda_b^(m) g^(m)_{i0;j a0},
    v(W^(m)_{jj'}) = lambda_W^(m)/n_{m-1} g^(m)_{i0;j a0} s^(m-1)_{j';a0},

computed exactly by forward-mode differentiation (tangents) through the forward pass, the
hand-written backward pass and the NTK sum: forward over backward, with sigma'' for the
tangent of sigma' (the registry's pointwise sigma'': zero almost everywhere for ReLU).

``sample(...)`` returns per layer l >= 2 the per-network dH[N, i0, a0, u, v, a, b]
(i0, u, v in {0, 1} for units 1, 2) and z[N, u, a]; ``estimates(...)`` the P, Q tensors of
mcsim.theory.dntk with standard errors from the spread of the per-network terms.
"""
from __future__ import annotations

import numpy as np


def _per(v, L):
    return np.broadcast_to(np.asarray(v, dtype=float), (L,))


def sample(act, x, widths, C_W, C_b, lambda_b, lambda_W, networks, rng, batch=2048,
           layers=None):
    """Per-network dHhat and z of units 1, 2 (module doc). ``layers``: output layers to
    record (default 2..L). Returns {l: {"dH": (N, 2, k, 2, 2, k, k), "z": (N, 2, k)}}."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    k, n0 = x.shape
    L = len(widths)
    cw, cb, lb, lw = (_per(v, L) for v in (C_W, C_b, lambda_b, lambda_W))
    fan = (n0,) + tuple(widths[:-1])
    layers = tuple(range(2, L + 1)) if layers is None else tuple(layers)
    sig, d1, d2 = act.value, act.derivative, act.second_derivative
    out = {l: {"dH": [], "z": []} for l in layers}
    done = 0
    while done < networks:
        B = min(batch, networks - done)
        done += B
        Ws, zs, ss = [], [], [np.broadcast_to(x.T, (B, n0, k))]
        for m in range(L):
            W = rng.standard_normal((B, widths[m], fan[m])) * np.sqrt(cw[m] / fan[m])
            b = rng.standard_normal((B, widths[m], 1)) * np.sqrt(cb[m])
            z = b + W @ ss[-1]
            Ws.append(W)
            zs.append(z)
            ss.append(sig(z))
        for l in layers:
            dH = _dntk(Ws, zs, ss, l, k, fan, lb, lw, d1, d2)
            out[l]["dH"].append(dH)
            out[l]["z"].append(zs[l - 1][:, :2, :].copy())
    return {l: {key: np.concatenate(v) for key, v in o.items()} for l, o in out.items()}


def _backward(Ws, zs, l, k, d1):
    """g[m] = d z^(l)_{u;a} / d z^(m)_{j;a} for m = 1..l as (B, u, a, n_m) (u = units 1, 2)."""
    B = zs[0].shape[0]
    g = np.zeros((B, 2, k, zs[l - 1].shape[1]))
    g[:, 0, :, 0] = 1.0
    g[:, 1, :, 1] = 1.0
    gs = {l: g}
    for m in range(l, 1, -1):                  # from layer m to layer m-1
        # g^(m-1)_{u;j'a} = sum_j g^(m)_{u;ja} W^(m)_{jj'} sigma'(z^(m-1)_{j';a})
        g = (g @ Ws[m - 1][:, None]) * d1(zs[m - 2]).transpose(0, 2, 1)[:, None]
        gs[m - 1] = g
    return gs


def _dntk(Ws, zs, ss, l, k, fan, lb, lw, d1, d2):
    """dH[B, i0, a0, u, v, a, b] = D_v Hhat^(l)_{uv;ab} along v = lambda * grad z_{i0;a0}."""
    gs = _backward(Ws, zs, l, k, d1)
    B = zs[0].shape[0]
    T = lambda a: np.swapaxes(a, -1, -2)                         # noqa: E731
    # tangents of the parameters, one direction per (i0, a0), leading axes (B, i0, a0):
    # dW^(m) (B, 2, k, n_m, n_{m-1}), db^(m) (B, 2, k, n_m)
    dW = {m: (lw[m - 1] / fan[m - 1]) * gs[m][..., :, None] * T(ss[m - 1])[:, None, :, None, :]
          for m in range(1, l + 1)}
    db = {m: lb[m - 1] * gs[m] for m in range(1, l + 1)}
    # tangent forward pass: dz^(m), ds^(m) (B, 2, k, n_m, k)
    dz, ds = {}, {0: np.zeros((B, 2, k) + ss[0].shape[1:])}
    for m in range(1, l + 1):
        dz[m] = (db[m][..., None] + dW[m] @ ss[m - 1][:, None, None]
                 + Ws[m - 1][:, None, None] @ ds[m - 1])
        ds[m] = d1(zs[m - 1])[:, None, None] * dz[m]
    # tangent backward pass: dg^(m) (B, 2, k, u, a, n_m)
    dgs = {l: np.zeros((B, 2, k) + gs[l].shape[1:])}
    for m in range(l, 1, -1):
        g, dg, W = gs[m], dgs[m], Ws[m - 1]
        p = T(d1(zs[m - 2]))                                     # (B, a, n_{m-1})
        dp = T(d2(zs[m - 2]))[:, None, None] * T(dz[m - 1])       # (B, 2, k, a, n_{m-1})
        gW = g @ W[:, None]                                      # (B, u, a, n_{m-1})
        dgs[m - 1] = ((dg @ W[:, None, None, None] + g[:, None, None] @ dW[m][:, :, :, None])
                      * p[:, None, None, None] + gW[:, None, None] * dp[:, :, :, None])
    # tangent of Hhat_{uv;ab} = sum_m (g g^T)_{ua,vb} c^(m)_{ab}
    dH = np.zeros((B, 2, k, 2, k, 2, k))
    for m in range(1, l + 1):
        g, dg, s = gs[m], dgs[m], ss[m - 1]
        n = g.shape[-1]
        c = lb[m - 1] + lw[m - 1] / fan[m - 1] * (T(s) @ s)      # (B, a, b)
        dc = lw[m - 1] / fan[m - 1] * (T(ds[m - 1]) @ s[:, None, None]
                                       + T(s)[:, None, None] @ ds[m - 1])
        g2 = g.reshape(B, 2 * k, n)
        dg2 = dg.reshape(B, 2, k, 2 * k, n)
        gg = (g2 @ T(g2)).reshape(B, 2, k, 2, k)                 # (B, u, a, v, b)
        dgg = dg2 @ T(g2)[:, None, None]
        dgg = (dgg + T(dgg)).reshape(B, 2, k, 2, k, 2, k)        # (B, i0, a0, u, a, v, b)
        dH += (dgg * c[:, None, None, None, :, None, :]
               + gg[:, None, None] * dc[:, :, :, None, :, None, :])
    return dH.transpose(0, 1, 2, 3, 5, 4, 6)                     # (B, i0, a0, u, v, a, b)


def _mean_se(values):
    N = values.shape[0]
    return values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(N)


def estimates(samples, n):
    """{name: (estimate (k,k,k,k), stderr)} with n = n_{l-1}:

    P:  n E[dH_{112} z_2] (averaged with the unit-swapped n E[dH_{221} z_1]),
    Q:  n E[dH_{122} z_1] (with n E[dH_{211} z_2]),
    Px: n E[dH_{121} z_2] (= P' = P with a1, a2 exchanged, by the decomposition),
    D3: n E[dH_{111} z_1] (= P + P' + Q),
    zero: n E[dH_{112} z_1] (= 0).
    """
    dH, z = samples["dH"], samples["z"]
    ein = np.einsum

    def term(i0, u, v, w):
        return n * ein("Nabc,Nd->Nabcd", dH[:, i0, :, u, v], z[:, w])

    terms = {"P": 0.5 * (term(0, 0, 1, 1) + term(1, 1, 0, 0)),
             "Q": 0.5 * (term(0, 1, 1, 0) + term(1, 0, 0, 1)),
             "Px": 0.5 * (term(0, 1, 0, 1) + term(1, 0, 1, 0)),
             "D3": 0.5 * (term(0, 0, 0, 0) + term(1, 1, 1, 1)),
             "zero": 0.5 * (term(0, 0, 1, 0) + term(1, 1, 0, 1))}
    return {name: _mean_se(v) for name, v in terms.items()}
