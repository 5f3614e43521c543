"""The training kernel against an independent NumPy trainer (explicit batched matrices,
per-parameter Jacobians for the NTK, the linearised model in eigenvector closed form)."""
from __future__ import annotations

import numpy as np
import pytest

from mcsim.activations import get_activation
from mcsim.kernels import training as kt
from mcsim.kernels.dense import WEIGHT_CODES, sample_dense
from mcsim.kernels.rng import seed_key


def draw(key, block, network, n0, widths, C_W, C_b, weights="gaussian"):
    """The parameters of one network, via the kernel's draw (checked against dense below)."""
    woff, boff, nw, nb = kt.parameter_offsets(n0, widths)
    wbuf, bbuf = np.empty(nw), np.empty(nb)
    kt.draw_parameters(key, block, network, n0, np.asarray(widths, dtype=np.int64), np.asarray(C_W, float),
                       np.asarray(C_b, float), WEIGHT_CODES[weights], woff, boff, wbuf, bbuf)
    Ws, bs, n_in = [], [], n0
    for l, n in enumerate(widths):
        Ws.append(wbuf[woff[l]:woff[l + 1]].reshape(n, n_in).copy())
        bs.append(bbuf[boff[l]:boff[l + 1]].copy())
        n_in = n
    return Ws, bs


def forward(act, Ws, bs, X):
    """zs[l] (P, n_l) for l = 0..L-1, hs[l] = sigma(zs[l]) (hs[-1] unused)."""
    zs, hs, h = [], [], X
    for l, (W, b) in enumerate(zip(Ws, bs)):
        z = h @ W.T + b
        zs.append(z)
        h = act.value(z)
        hs.append(h)
    return zs, hs


def gradients(act, Ws, bs, X, Y):
    zs, hs = forward(act, Ws, bs, X)
    d = zs[-1] - Y
    gW, gb = [None] * len(Ws), [None] * len(Ws)
    for l in range(len(Ws) - 1, -1, -1):
        hin = X if l == 0 else hs[l - 1]
        gW[l] = d.T @ hin
        gb[l] = d.sum(axis=0)
        if l:
            d = (d @ Ws[l]) * act.derivative(zs[l - 1])
    return gW, gb


def jacobian(act, Ws, bs, X, lam_b, lam_W):
    """J (Q, n_params), rows a * n_L + i, columns scaled by sqrt(lambda_mu): Theta = J J^T."""
    P, n_out = X.shape[0], Ws[-1].shape[0]
    rows = []
    for a in range(P):
        for i in range(n_out):
            Y = np.zeros((P, n_out))
            zs, _ = forward(act, Ws, bs, X)
            Y[:] = zs[-1]
            Y[a, i] -= 1.0            # d/dz of (1/2)(z - Y)^2 summed is e_{a,i}
            gW, gb = gradients(act, Ws, bs, X, Y)
            cols = []
            for l in range(len(Ws)):
                n_in = Ws[l].shape[1]
                cols.append(np.sqrt(lam_b[l]) * gb[l])
                cols.append(np.sqrt(lam_W[l] / n_in) * gW[l].ravel())
            rows.append(np.concatenate(cols))
    return np.array(rows)


def reference_train(act, Ws, bs, Xtr, Y, Xte, Yte, lam_b, lam_W, eta, steps, record):
    """(R, M) records and diverged flag, as the kernel's layout."""
    Ws, bs = [W.copy() for W in Ws], [b.copy() for b in bs]
    N, k, n_out = Xtr.shape[0], Xte.shape[0], Ws[-1].shape[0]
    X = np.vstack([Xtr, Xte])
    J = jacobian(act, Ws, bs, X, lam_b, lam_W)
    theta = J @ J.T
    T = N * n_out
    tTT, tsT = theta[:T, :T], theta[T:, :T]
    z0 = forward(act, Ws, bs, X)[0][-1]
    r0 = (z0[:N] - Y).ravel()
    lam, U = np.linalg.eigh(tTT)
    out = []
    for t in range(steps + 1):
        if t in record:
            zte = forward(act, Ws, bs, Xte)[0][-1].ravel()
            ztr = forward(act, Ws, bs, Xtr)[0][-1]
            g = np.where(np.abs(eta * lam) > 1e-14, (1 - (1 - eta * lam) ** t) / np.where(lam == 0, 1, lam),
                         eta * t)
            zlin = z0[N:].ravel() - tsT @ (U @ (g * (U.T @ r0)))
            rlin = U @ ((1 - eta * lam) ** t * (U.T @ r0))
            row = np.concatenate([zte, zlin, zte - zlin,
                                  [0.5 * ((ztr - Y) ** 2).sum(), 0.5 * (rlin ** 2).sum(),
                                   0.5 * ((zte - Yte.ravel()) ** 2).sum(), 0.5 * ((zlin - Yte.ravel()) ** 2).sum()]])
            out.append(row)
        if t == steps:
            break
        gW, gb = gradients(act, Ws, bs, Xtr, Y)
        for l in range(len(Ws)):
            Ws[l] -= eta * lam_W[l] / Ws[l].shape[1] * gW[l]
            bs[l] -= eta * lam_b[l] * gb[l]
    return np.array(out)


def run_kernel(cfg, n_blocks=1, block_size=3, first_block=0, seed=7):
    L = len(cfg["widths"])
    out = np.full((n_blocks, block_size, len(cfg["record"]), kt.record_width(len(cfg["Xte"]), cfg["widths"][-1])),
                  np.nan)
    div = np.zeros((n_blocks, block_size), dtype=np.uint8)
    act = get_activation(cfg["act"])
    kt.train_networks(seed_key(seed), first_block, n_blocks, block_size, np.vstack([cfg["Xtr"], cfg["Xte"]]),
                      len(cfg["Xtr"]), cfg["Y"], cfg["Yte"], np.asarray(cfg["widths"], dtype=np.int64),
                      np.full(L, cfg["C_W"]), np.full(L, cfg["C_b"]), act.code, act.param,
                      WEIGHT_CODES[cfg.get("weights", "gaussian")], np.asarray(cfg["lam_b"], float),
                      np.asarray(cfg["lam_W"], float), cfg["eta"], cfg["steps"],
                      np.asarray(cfg["record"], dtype=np.int64), out, div)
    return out, div


def make_cfg(act="tanh", widths=(7, 5, 2), n0=3, N=4, k=3, steps=12, eta=0.05, weights="gaussian"):
    rng = np.random.default_rng(0)
    L = len(widths)
    return dict(act=act, widths=list(widths), Xtr=rng.normal(size=(N, n0)), Xte=rng.normal(size=(k, n0)),
                Y=rng.normal(size=(N, widths[-1])), Yte=rng.normal(size=(k, widths[-1])), C_W=1.5, C_b=0.2,
                lam_b=np.linspace(0.5, 1.5, L), lam_W=np.linspace(1.2, 0.8, L), eta=eta, steps=steps,
                record=[0, 1, 5, steps], weights=weights)


@pytest.mark.parametrize("act,weights", [("tanh", "gaussian"), ("relu", "uniform"), ("swish", "rademacher")])
def test_kernel_matches_numpy_trainer(act, weights):
    cfg = make_cfg(act=act, weights=weights)
    out, div = run_kernel(cfg, n_blocks=2, block_size=2, first_block=5)
    assert not div.any()
    a = get_activation(act)
    L = len(cfg["widths"])
    for i in range(2):
        for j in range(2):
            Ws, bs = draw(seed_key(7), 5 + i, j, 3, cfg["widths"], [cfg["C_W"]] * L, [cfg["C_b"]] * L, weights)
            ref = reference_train(a, Ws, bs, cfg["Xtr"], cfg["Y"], cfg["Xte"], cfg["Yte"], cfg["lam_b"],
                                  cfg["lam_W"], cfg["eta"], cfg["steps"], cfg["record"])
            np.testing.assert_allclose(out[i, j], ref, rtol=1e-11, atol=1e-12)


def test_parameters_are_the_dense_samplers():
    """Layers 1..L-1 of a trained network are the dense sampler's network: same Ghat."""
    widths, n0, C_W, C_b = [6, 5, 4], 3, 1.7, 0.3
    X = np.random.default_rng(1).normal(size=(2, n0))
    act = get_activation("tanh")
    for weights in ("gaussian", "uniform", "rademacher"):
        out = np.empty((2, 3, len(widths) - 1, 3))
        L = len(widths)
        sample_dense(seed_key(11), 4, 2, 3, X, np.asarray(widths, dtype=np.int64), np.full(L, C_W),
                     np.full(L, C_b), act.code, act.param, WEIGHT_CODES[weights], out)
        for i in range(2):
            for j in range(3):
                Ws, bs = draw(seed_key(11), 4 + i, j, n0, widths, [C_W] * L, [C_b] * L, weights)
                _, hs = forward(act, Ws, bs, X)
                for s in range(L - 1):
                    G = C_b + C_W / widths[s] * hs[s] @ hs[s].T
                    np.testing.assert_allclose(out[i, j, s], G[np.triu_indices(2)], rtol=1e-12)


def test_divergence_flagged():
    cfg = make_cfg(eta=50.0, steps=200)
    cfg["record"] = [0, 200]
    out, div = run_kernel(cfg, block_size=4)
    assert div.all()
    cfg = make_cfg(eta=0.01)
    out, div = run_kernel(cfg, block_size=4)
    assert not div.any() and np.isfinite(out).all()


def test_masked_block_moments():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 10, 2, 4))
    div = (rng.random((3, 10)) < 0.3).astype(np.uint8)
    div[2] = 1
    count, mean, m2 = np.empty(3), np.empty((3, 2, 4)), np.empty((3, 2, 4, 4))
    kt.masked_block_moments(x, div, count, mean, m2)
    for i in range(3):
        keep = x[i][div[i] == 0]
        assert count[i] == len(keep)
        if len(keep):
            np.testing.assert_allclose(mean[i], keep.mean(axis=0), rtol=1e-13)
            d = keep - keep.mean(axis=0)
            np.testing.assert_allclose(m2[i], np.einsum("nrp,nrq->rpq", d, d), rtol=1e-12, atol=1e-14)
        else:
            assert not mean[i].any() and not m2[i].any()


def test_bitwise_independent_of_threads():
    import numba
    from mcsim.kernels.jit import set_threads
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two Numba threads")
    cfg = make_cfg()
    set_threads(1)
    a, _ = run_kernel(cfg, n_blocks=2, block_size=5)
    set_threads(2)
    b, _ = run_kernel(cfg, n_blocks=2, block_size=5)
    set_threads(None)
    assert a.tobytes() == b.tobytes()
    # and independent of how the blocks are split over calls
    c1, _ = run_kernel(cfg, n_blocks=1, block_size=5, first_block=0)
    c2, _ = run_kernel(cfg, n_blocks=1, block_size=5, first_block=1)
    assert np.concatenate([c1, c2]).tobytes() == a.tobytes()


def test_max_eigenvalue_and_stability_limit():
    """Power iteration against eigh; a network is flagged exactly when eta is above the
    stability limit 2 / lambda_max of its own Theta_TT (checked away from the boundary)."""
    rng = np.random.default_rng(4)
    A = rng.normal(size=(6, 6))
    A = A @ A.T
    assert kt.max_eigenvalue(A, 6, 500) == pytest.approx(np.linalg.eigvalsh(A)[-1], rel=1e-10)
    cfg = make_cfg(steps=3)
    cfg["record"] = [0, 3]
    a, L = get_activation("tanh"), 3
    lam = []
    for j in range(12):
        Ws, bs = draw(seed_key(7), 0, j, 3, cfg["widths"], [cfg["C_W"]] * L, [cfg["C_b"]] * L)
        J = jacobian(a, Ws, bs, cfg["Xtr"], cfg["lam_b"], cfg["lam_W"])
        lam.append(np.linalg.eigvalsh(J @ J.T)[-1])
    lam = np.array(lam)
    cfg["eta"] = 2.0 / np.median(lam)
    _, div = run_kernel(cfg, block_size=12)
    unstable = cfg["eta"] * lam > 2.0 * (1 + 1e-6)
    assert div[0][unstable].all() and unstable.any()
    cfg["eta"] = 0.9 * 2.0 / lam.max()          # every network stable
    _, div = run_kernel(cfg, block_size=12)
    assert not div.any()
