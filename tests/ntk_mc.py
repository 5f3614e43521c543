"""Explicit-weight NumPy Monte Carlo of the neural tangent kernel (independent reference).

Draws every weight and bias, runs the network forward, and backpropagates by hand from two
units of layer l to every parameter of layers 1..l:

    g^(l)_{u; j a} = d z^(l)_{u;a} / d z^(l)_{j;a} = delta_{uj},
    g^(m-1)_{u; j' a} = sum_j g^(m)_{u; j a} W^(m)_{j j'} sigma'(z^(m-1)_{j';a}),
    Hhat^(l)_{u1 u2; a b} = sum_{m <= l} (lambda_b^(m) + lambda_W^(m) / n_{m-1}
                            sum_j' s^(m-1)_{j';a} s^(m-1)_{j';b}) sum_j g^(m)_{u1;ja} g^(m)_{u2;jb}

with s^(0) = x. Nothing here uses the recursions of mcsim.theory.

``sample(...)`` returns per layer l >= 2 the per-network arrays H11, H22, H12 (N, k, k) and
z1, z2 (N, k) of units 1, 2 of layer l; ``estimates(...)`` turns them into the NTK mean and
A, B, D, F (index conventions of mcsim.theory.ntk) with standard errors from the spread of
the per-network terms.
"""
from __future__ import annotations

import numpy as np


def sample(sigma, dsigma, x, widths, C_W, C_b, lambda_b, lambda_W, networks, rng,
           batch=4096):
    x = np.atleast_2d(np.asarray(x, dtype=float))
    k, n0 = x.shape
    L = len(widths)
    per = lambda v: np.broadcast_to(np.asarray(v, dtype=float), (L,))     # noqa: E731
    cw, cb, lb, lw = per(C_W), per(C_b), per(lambda_b), per(lambda_W)
    fan = (n0,) + tuple(widths[:-1])
    out = {l: {key: [] for key in ("H11", "H22", "H12", "z1", "z2")} for l in range(2, L + 1)}
    done = 0
    while done < networks:
        B = min(batch, networks - done)
        done += B
        Ws, zs, ss = [], [], [np.broadcast_to(x.T, (B, n0, k))]     # s^(0) = x, (B, n0, k)
        for m in range(L):
            W = rng.standard_normal((B, widths[m], fan[m])) * np.sqrt(cw[m] / fan[m])
            b = rng.standard_normal((B, widths[m], 1)) * np.sqrt(cb[m])
            z = b + W @ ss[-1]
            Ws.append(W)
            zs.append(z)
            ss.append(sigma(z))
        # Gram of the inputs of each layer: S^(m-1)_{ab} = sum_j s_{j;a} s_{j;b}, (B, k, k)
        grams = [np.einsum("Bja,Bjb->Bab", s, s) for s in ss[:-1]]
        for l in range(2, L + 1):
            # g[:, a * 2 + u, j] = d z^(l)_{u;a} / d z^(m)_{j;a}, (B, 2k, n_m)
            g = np.zeros((B, k, 2, widths[l - 1]))
            g[:, :, 0, 0] = 1.0
            g[:, :, 1, 1] = 1.0
            g = g.reshape(B, 2 * k, widths[l - 1])
            H = np.zeros((B, k, 2, k, 2))
            for m in range(l, 0, -1):                   # parameters of layer m
                gg = (g @ g.transpose(0, 2, 1)).reshape(B, k, 2, k, 2)
                H += gg * (lb[m - 1] + lw[m - 1] / fan[m - 1] * grams[m - 1])[:, :, None, :, None]
                if m > 1:                               # to d z^(l) / d z^(m-1)
                    g = (g @ Ws[m - 1]) * np.repeat(dsigma(zs[m - 2]).transpose(0, 2, 1), 2,
                                                    axis=1)
            H = H.transpose(0, 2, 4, 1, 3)              # (B, u, v, a, b)
            o = out[l]
            o["H11"].append(H[:, 0, 0])
            o["H22"].append(H[:, 1, 1])
            o["H12"].append(H[:, 0, 1])
            o["z1"].append(zs[l - 1][:, 0, :])
            o["z2"].append(zs[l - 1][:, 1, :])
    return {l: {key: np.concatenate(v) for key, v in o.items()} for l, o in out.items()}


def _mean_se(values):
    N = values.shape[0]
    return values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(N)


def estimates(samples, n):
    """{name: (estimate, stderr)} for ntk (k, k) and A, B, D, F (k, k, k, k); n = fan-in."""
    H11, H22, H12, z1, z2 = (samples[key] for key in ("H11", "H22", "H12", "z1", "z2"))
    H21 = H12.transpose(0, 2, 1)
    ein = np.einsum
    m = 0.5 * (H11 + H22).mean(axis=0)
    zz = 0.5 * (ein("Na,Nb->ab", z1, z1) + ein("Na,Nb->ab", z2, z2)) / len(z1)
    d11, d22 = H11 - m, H22 - m
    e1, e2 = ein("Nc,Nd->Ncd", z1, z1) - zz, ein("Nc,Nd->Ncd", z2, z2) - zz
    terms = {
        "ntk": 0.5 * (H11 + H22),
        "A": 0.5 * n * (ein("Nab,Ncd->Nabcd", d11, d22) + ein("Nab,Ncd->Nabcd", d22, d11)),
        "B": 0.5 * n * (ein("Nab,Ncd->Nacbd", H12, H12) + ein("Nab,Ncd->Nacbd", H21, H21)),
        "D": 0.5 * n * (ein("Nab,Ncd->Nabcd", d11, e2) + ein("Nab,Ncd->Nabcd", d22, e1)),
        "F": 0.5 * n * (ein("Nab,Nc,Nd->Nacbd", H12, z1, z2) + ein("Nab,Nc,Nd->Nacbd", H21, z2, z1)),
    }
    return {name: _mean_se(v) for name, v in terms.items()}
