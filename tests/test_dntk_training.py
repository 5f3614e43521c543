"""Training cross-check of the dNTK statistics: the mean change of the NTK after one small
gradient-descent step.

One step of gradient descent on L = 1/2 sum_{i,a} (z_{i;a} - y_{i;a})^2 with the NTK's
learning rates (theta_mu -= eta lambda_mu dL/dtheta_mu) changes the NTK of the output layer by

    dH_{i1 i2; a1 a2} = -eta sum_{i0, a0} dHhat_{i0 i1 i2; a0 a1 a2} (z_{i0;a0} - y_{i0;a0}) + O(eta^2).

E[dHhat] = 0 (flipping the sign of the output layer flips dHhat), so with the pinned tensor
structure E[dHhat_{i0i1i2} z_{i3}] = (1/n)[d_{i0i1} d_{i2i3} P + d_{i0i2} d_{i1i3} P' + d_{i0i3} d_{i1i2} Q]
and n_L output units:

    E[dH_{i i; a1 a2}] / eta = -(1/n) sum_{a0} (P[a0,a1,a2,a0] + P[a0,a2,a1,a0] + n_L Q[a0,a1,a2,a0])
    E[dH_{i j; a1 a2}] = 0 for i != j.

The step and both NTKs are computed explicitly in NumPy (tests/dntk_reference.py's gradients
and literal NTK sums; no dNTK code), P and Q by an mcsim run of the same ensemble.
"""
from __future__ import annotations

import numpy as np

import mcsim
from mcsim.config import config_from_dict
from tests import dntk_reference as ref

X = np.array([[1.0, 0.5, -0.2], [0.3, -1.0, 0.4]])
WIDTHS = [8, 8, 3]
C_W, C_B = [1.5, 1.2, 1.0], [0.1, 0.2, 0.3]
LAM_W, LAM_B = [1.0, 0.7, 1.3], [0.5, 1.0, 2.0]
Y = np.array([[0.3, -0.2], [0.1, 0.4], [-0.3, 0.2]])        # targets (unit, input)
ETA = 1e-4


def numpy_step(networks, seed, batch=4000):
    """Per network: (dH_diag (N, k, k) averaged over the output units i, dH_off (N, k, k)
    averaged over i != j), both divided by eta."""
    f, df = ref.ACTIVATIONS["tanh"]
    rng = np.random.default_rng(seed)
    k = X.shape[0]
    nL = WIDTHS[-1]
    diag, off = [], []
    for start in range(0, networks, batch):
        B = min(batch, networks - start)
        params, n_in = [], X.shape[1]
        for m, n in enumerate(WIDTHS):
            params.append((rng.standard_normal((B, n, n_in)) * np.sqrt(C_W[m] / n_in),
                           rng.standard_normal((B, n)) * np.sqrt(C_B[m])))
            n_in = n
        grads, zs = ref._gradients(X, params, f, df)
        eps = zs[-1] - Y[None]                                  # (B, nL, k)
        new = []
        for m, (W, b) in enumerate(params):
            gW = sum(eps[:, c // k, c % k, None, None] * grads[c][m][0] for c in range(nL * k))
            gb = sum(eps[:, c // k, c % k, None] * grads[c][m][1] for c in range(nL * k))
            new.append((W - ETA * LAM_W[m] / W.shape[2] * gW, b - ETA * LAM_B[m] * gb))
        H0 = ref.ntk(X, params, LAM_W, LAM_B, f, df).reshape(B, nL, k, nL, k)
        H1 = ref.ntk(X, new, LAM_W, LAM_B, f, df).reshape(B, nL, k, nL, k)
        dH = (H1 - H0) / ETA
        diag.append(np.mean([dH[:, i, :, i, :] for i in range(nL)], axis=0))
        off.append(np.mean([dH[:, i, :, j, :] for i in range(nL) for j in range(nL) if i != j], axis=0))
    return np.concatenate(diag), np.concatenate(off)


def test_one_gradient_step_changes_the_ntk_as_the_dntk_statistics_say():
    cfg = config_from_dict({
        "network": {"input_dim": 3, "widths": WIDTHS, "activation": "tanh", "C_W": C_W, "C_b": C_B,
                    "lambda_W": LAM_W, "lambda_b": LAM_B},
        "inputs": {"values": X.tolist()},
        "ensemble": {"networks": 16384, "seed": 5, "sampler": "dense", "block_size": 512,
                     "jackknife_bins": 16},
        "output": {"statistics": ["metric", "dntk_P", "dntk_Q"], "layers": [3]}})
    res = mcsim.simulate(cfg, progress="off")
    P, Q = res.layer(3)["dntk_P"], res.layer(3)["dntk_Q"]
    n, nL = WIDTHS[-2], WIDTHS[-1]
    k = X.shape[0]
    pred = np.zeros((k, k))
    err = np.zeros((k, k))                      # worst case: errors of the terms fully correlated
    for a1 in range(k):
        for a2 in range(k):
            for a0 in range(k):
                pred[a1, a2] -= (P.mean[a0, a1, a2, a0] + P.mean[a0, a2, a1, a0]
                                 + nL * Q.mean[a0, a1, a2, a0]) / n
                err[a1, a2] += (P.stderr[a0, a1, a2, a0] + P.stderr[a0, a2, a1, a0]
                                + nL * Q.stderr[a0, a1, a2, a0]) / n
    diag, off = numpy_step(24000, 17)
    mean, sem = diag.mean(0), diag.std(0, ddof=1) / np.sqrt(len(diag))
    z = np.abs(mean - pred) / np.hypot(err, sem)
    assert z.max() < 5, (z, mean, pred)
    assert (np.abs(pred) / err).min() > 5       # the mean change is resolved, not zero
    zo = np.abs(off.mean(0)) / (off.std(0, ddof=1) / np.sqrt(len(off)))
    assert zo.max() < 5, zo
