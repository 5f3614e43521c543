"""An independent NTK Monte Carlo in plain NumPy: explicit Gaussian weights, full NTK matrices.

Nothing of mcsim is used. Per network, every layer's full NTK matrix Hhat^(l)_{ij;ab} (n_l x n_l
x k x k) is built by the forward recursion (chain rule, layer by layer):

    Hhat^(1)_{ij;ab}   = d_ij Lhat^(1)_ab
    Hhat^(l+1)_{ij;ab} = d_ij Lhat^(l+1)_ab
                         + sum_{j1 j2} W_{i j1} W_{j j2} s'_{j1;a} s'_{j2;b} Hhat^(l)_{j1 j2;ab}
    Lhat^(l)_ab        = lambda_b^(l) + lambda_W^(l) / n_{l-1} sum_j s^(l-1)_{j;a} s^(l-1)_{j;b}

(mcsim's kernels backpropagate instead), and units 0 and 1 of each layer l >= 2 are recorded. A
layer of width 1 is drawn with 2 units, of which only the first feeds the next layer (rows of
a layer are independent given the previous one). Estimates with batch-means standard errors.
"""
from __future__ import annotations

import numpy as np

ACTIVATIONS = {
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
}


def sample(inputs, widths, C_W, C_b, lam_W, lam_b, act, networks, seed, chunk=4096):
    """{l: dict(H11, H22, H12 (N, k, k), z1z2, z2z2 (N, k, k))} for l = 2..L."""
    x = np.asarray(inputs, dtype=float)
    k, n0 = x.shape
    L = len(widths)
    f, df = ACTIVATIONS[act]
    rng = np.random.default_rng(seed)
    out = {l: {q: [] for q in ("H11", "H22", "H12", "z1z2", "z2z2")} for l in range(2, L + 1)}
    for start in range(0, networks, chunk):
        N = min(chunk, networks - start)
        s = np.broadcast_to(x.T, (N, n0, k))               # sigma of layer 0: the inputs
        H = dz = None
        for l in range(1, L + 1):
            n_in, n = s.shape[1], widths[l - 1]
            nd = max(n, 2)
            W = rng.standard_normal((N, nd, n_in)) * np.sqrt(C_W[l - 1] / n_in)
            b = rng.standard_normal((N, nd)) * np.sqrt(C_b[l - 1])
            z = b[:, :, None] + np.einsum("Nij,Nja->Nia", W, s)
            Lh = lam_b[l - 1] + lam_W[l - 1] / n_in * np.einsum("Nja,Njb->Nab", s, s)
            Hn = np.einsum("ij,Nab->Nijab", np.eye(nd), Lh)
            if l > 1:
                M = H * dz[:, :, None, :, None] * dz[:, None, :, None, :]
                T = np.einsum("Nij,Njmab->Nimab", W, M)
                Hn = Hn + np.einsum("Nimab,Nkm->Nikab", T, W)
                rec = out[l]
                rec["H11"].append(Hn[:, 0, 0])
                rec["H22"].append(Hn[:, 1, 1])
                rec["H12"].append(Hn[:, 0, 1])
                rec["z1z2"].append(z[:, 0, :, None] * z[:, 1, None, :])
                rec["z2z2"].append(z[:, 1, :, None] * z[:, 1, None, :])
            z, H = z[:, :n], Hn[:, :n, :n]
            s, dz = f(z), df(z)
    return {l: {q: np.concatenate(v) for q, v in rec.items()} for l, rec in out.items()}


def _estimates(d, n):
    """The five statistics (full arrays, the issue's index conventions) from samples d."""
    H11, H22, H12, z1z2, z2z2 = d["H11"], d["H22"], d["H12"], d["z1z2"], d["z2z2"]

    def cov(x, y):
        xc, yc = x - x.mean(0), y - y.mean(0)
        return np.einsum("Nab,Ncd->abcd", xc, yc) / (len(x) - 1)

    def prod(x, y):
        return np.einsum("Nab,Ncd->abcd", x, y) / len(x)

    return {
        "ntk": H11.mean(0),
        "ntk_A": n * cov(H11, H22),
        "ntk_B": n * prod(H12, H12).transpose(0, 2, 1, 3),       # [a,b,c,d] -> [a,c,b,d]
        "ntk_D": n * cov(H11, z2z2),
        "ntk_F": n * prod(H12, z1z2).transpose(0, 2, 1, 3),
    }


def estimate(samples, widths, input_dim, batches=32):
    """{l: {stat: (mean, stderr)}}: estimates on all samples, standard errors from the
    spread of the estimates on ``batches`` equal batches."""
    res = {}
    for l, d in samples.items():
        n = input_dim if l == 1 else widths[l - 2]
        full = _estimates(d, n)
        N = len(d["H11"]) // batches * batches
        parts = [_estimates({q: v[i:N:batches] for q, v in d.items()}, n) for i in range(batches)]
        res[l] = {name: (full[name], np.std([p[name] for p in parts], axis=0, ddof=1) / np.sqrt(batches))
                  for name in full}
    return res
