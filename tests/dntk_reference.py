"""An independent dNTK reference in plain NumPy: explicit weights, complex-step derivatives.

Nothing of mcsim is used. For a batch of networks with explicit parameters (weights and biases
of layers 1..l-1 and two output units of layer l), per network:

1. the gradient of every output z_c (c = u k + a: unit u = 0, 1, input a) with respect to
   every parameter, by plain backpropagation (one array per parameter tensor);
2. the NTK as the literal sum over parameters, Hhat_{c1c2} = sum_mu lambda_mu dz_c1/dmu dz_c2/dmu
   (lambda_b^(l') for biases, lambda_W^(l') / n_{l'-1} for weights);
3. the dNTK dHhat_{c0c1c2} = sum_mu lambda_mu dz_c0/dmu dHhat_c1c2/dmu, i.e. the derivative of
   the NTK along the direction v = Lambda grad z_c0, by the complex step:
   Im Hhat(theta + i h v) / h with h = 1e-20 (no subtraction, exact to round-off for analytic
   activations; ReLU is differentiated almost everywhere by its real part's sign).

``sample`` draws Gaussian networks and returns the per-network arrays a Monte Carlo of the
dNTK statistics needs (units 1, 2 are the two output units).
"""
from __future__ import annotations

import numpy as np

ACTIVATIONS = {
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: z * (z.real > 0), lambda z: (z.real > 0).astype(float)),
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
}

H_STEP = 1e-20


def _forward(x, params, f):
    """z^(1..l), sigma^(0..l-1) for params [(W (N, n, n'), b (N, n)), ...], x (k, n0).
    Returns zs (N, n, k) per layer and ss (inputs of each layer, (N, n', k))."""
    N = params[0][0].shape[0]
    s = np.broadcast_to(x.T, (N,) + x.T.shape).astype(params[0][0].dtype)
    zs, ss = [], []
    for W, b in params:
        ss.append(s)
        z = b[:, :, None] + W @ s
        zs.append(z)
        s = f(z)
    return zs, ss


def _gradients(x, params, f, df):
    """grads[c] = [(dz_c/dW (N, n, n'), dz_c/db (N, n)) per layer] for c = u k + a, u over
    every output unit."""
    k = x.shape[0]
    zs, ss = _forward(x, params, f)
    L = len(params)
    out = []
    for c in range(params[-1][1].shape[1] * k):
        u, a = divmod(c, k)
        grads = [None] * L
        g = np.zeros(params[-1][1].shape, dtype=params[-1][1].dtype)
        g[:, u] = 1.0                                   # dz_c / dz^(l), output layer
        for m in range(L - 1, -1, -1):
            s = ss[m][:, :, a]                          # (N, n')
            grads[m] = (g[:, :, None] * s[:, None, :], g.copy())
            if m:
                W = params[m][0]
                g = df(zs[m - 1][:, :, a]) * np.einsum("Nij,Ni->Nj", W, g)
        out.append(grads)
    return out, zs


def ntk(x, params, lam_W, lam_b, f, df):
    """(N, C, C) Hhat_{c1c2} (C = k times the output width): the literal sum over parameters
    of products of gradients."""
    grads, _ = _gradients(x, params, f, df)
    C = len(grads)
    N = params[0][0].shape[0]
    H = np.zeros((N, C, C), dtype=params[0][0].dtype)
    for m, (W, _) in enumerate(params):
        lw = lam_W[m] / W.shape[2]
        for c1 in range(C):
            for c2 in range(C):
                dW1, db1 = grads[c1][m]
                dW2, db2 = grads[c2][m]
                H[:, c1, c2] += lam_b[m] * np.sum(db1 * db2, axis=1) \
                    + lw * np.sum(dW1 * dW2, axis=(1, 2))
    return H


def dntk(x, params, lam_W, lam_b, act):
    """(H (N, 2k, 2k), dH (N, 2k, 2k, 2k) [c0, c1, c2], z (N, 2, k)) of the networks
    ``params`` = [(W^(m) (N, n_m, n_{m-1}), b^(m) (N, n_m)) for m = 1..l], the last entry the
    two output units (n_l = 2); x (k, n0)."""
    f, df = ACTIVATIONS[act]
    x = np.asarray(x, dtype=float)
    grads, zs = _gradients(x, params, f, df)
    H = ntk(x, params, lam_W, lam_b, f, df)
    C = len(grads)
    N = params[0][0].shape[0]
    dH = np.empty((N, C, C, C))
    for c0 in range(C):
        shifted = []
        for m, (W, b) in enumerate(params):
            dW, db = grads[c0][m]
            shifted.append((W + 1j * H_STEP * lam_W[m] / W.shape[2] * dW,
                            b + 1j * H_STEP * lam_b[m] * db))
        dH[:, c0] = ntk(x, shifted, lam_W, lam_b, f, df).imag / H_STEP
    return H, dH, zs[-1]


def draw(rng, N, n0, widths, C_W, C_b):
    """Gaussian parameters of N networks: layers 1..l-1 of ``widths`` and two output units."""
    params, n_in = [], n0
    for m, n in enumerate(list(widths) + [2]):
        params.append((rng.standard_normal((N, n, n_in)) * np.sqrt(C_W[m] / n_in),
                       rng.standard_normal((N, n)) * np.sqrt(C_b[m])))
        n_in = n
    return params


def statistics(x, n0, widths, C_W, C_b, lam_W, lam_b, act, networks, seed, batch=2000):
    """Plain Monte Carlo of the pinned definitions at output layer l = len(widths) + 1, one
    role only (units 1 = output unit 0, 2 = output unit 1; no symmetrisation):

        P[a0,a1,a2,a3] = n E[dHhat_{1 1 2; a0 a1 a2} z_{2;a3}]
        Q[a0,a1,a2,a3] = n E[dHhat_{1 2 2; a0 a1 a2} z_{1;a3}]
        same[a0,a1,a2,a3] = n E[dHhat_{1 1 1; a0 a1 a2} z_{1;a3}]   (= P + P' + Q by the
                                                                   tensor structure)

    with n = n_{l-1}. Returns {name: (mean, stderr)} for "dntk_P", "dntk_Q", "same"."""
    x = np.asarray(x, dtype=float)
    k = x.shape[0]
    rng = np.random.default_rng(seed)
    n = widths[-1]
    Ps, Qs, Ss = [], [], []
    for start in range(0, networks, batch):
        B = min(batch, networks - start)
        params = draw(rng, B, n0, widths, C_W, C_b)
        _, dH, z = dntk(x, params, lam_W, lam_b, act)        # z (B, 2, k)
        d112 = dH[:, :k, :k, k:]                                # [c0=(1,a0), c1=(1,a1), c2=(2,a2)]
        d122 = dH[:, :k, k:, k:]
        Ps.append(n * np.einsum("Nabc,Nd->Nabcd", d112, z[:, 1]))
        Qs.append(n * np.einsum("Nabc,Nd->Nabcd", d122, z[:, 0]))
        Ss.append(n * np.einsum("Nabc,Nd->Nabcd", dH[:, :k, :k, :k], z[:, 0]))
    out = {}
    for name, v in (("dntk_P", np.concatenate(Ps)), ("dntk_Q", np.concatenate(Qs)),
                    ("same", np.concatenate(Ss))):
        out[name] = (v.mean(0), v.std(0, ddof=1) / np.sqrt(len(v)))
    return out
