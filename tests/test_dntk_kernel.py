"""The dNTK kernel on single networks: against an independent complex-step NumPy reference
(tests/dntk_reference.py: literal sums over parameters), against central finite differences
of the NTK, and the sampling kernel against the single-network entry point and the NTK kernel
(same networks, same metric and NTK), bitwise independent of threads and block grouping."""
from __future__ import annotations

import numba
import numpy as np
import pytest

from mcsim.activations import get_activation
from mcsim.config import config_from_dict
from tests import dntk_reference as ref

CASES = {
    # k = 2, three hidden layers, per-layer C_W, C_b and learning rates
    "tanh-k2": dict(x=[[1.0, 0.5, -0.2], [0.3, -1.0, 0.4]], widths=[4, 5, 3], act="tanh",
                    C_W=[1.5, 1.2, 1.0, 0.9], C_b=[0.1, 0.2, 0.3, 0.1],
                    lam_W=[1.0, 0.7, 1.3, 0.5], lam_b=[0.5, 1.0, 2.0, 0.3]),
    # k = 1, ReLU (sigma'' = 0 almost everywhere), a zero bias learning rate
    "relu-k1": dict(x=[[0.8, -0.6]], widths=[5, 3], act="relu", C_W=[2.0] * 3, C_b=[0.05] * 3,
                    lam_W=[2.0, 1.0, 1.0], lam_b=[1.0, 0.0, 0.5]),
    # k = 3, layer 2 (one hidden layer), a width-1 hidden layer below
    "tanh-k3-layer2": dict(x=[[1.0, 0.2], [-0.4, 0.9], [0.5, 0.5]], widths=[6], act="tanh",
                           C_W=[1.0, 2.0], C_b=[0.2, 0.1], lam_W=[1.0, 1.5], lam_b=[0.3, 1.0]),
    "linear-width1": dict(x=[[1.0, 0.2], [-0.4, 0.9]], widths=[3, 1, 4], act="linear",
                          C_W=[1.0, 1.5, 2.0, 1.0], C_b=[0.1, 0.2, 0.0, 0.1],
                          lam_W=[1.0, 1.0, 0.5, 2.0], lam_b=[1.0, 0.5, 1.0, 1.0]),
}


def kernel_dntk(case, params, t):
    """(H, dH, zp) of network t of ``params`` (reference layout) by the kernel."""
    from mcsim.kernels import dntk_dense
    c = CASES[case]
    x = np.asarray(c["x"], dtype=float)
    k = x.shape[0]
    widths = np.asarray(c["widths"], dtype=np.int64)
    Wf = np.concatenate([W[t].ravel() for W, _ in params[:-1]])
    bf = np.zeros((len(widths), max(widths)))
    for m, (_, b) in enumerate(params[:-1]):
        bf[m, : b.shape[1]] = b[t]
    act = get_activation(c["act"])
    H, dH, zp = np.empty((2 * k, 2 * k)), np.empty((2 * k,) * 3), np.empty((2, k))
    dntk_dense.dntk_explicit(x, widths, Wf, bf, np.ascontiguousarray(params[-1][0][t]),
                             np.ascontiguousarray(params[-1][1][t]), np.asarray(c["lam_W"], float),
                             np.asarray(c["lam_b"], float), np.int64(act.code),
                             np.float64(act.param), H, dH, zp)
    return H, dH, zp


def draw(case, N, seed):
    c = CASES[case]
    x = np.asarray(c["x"])
    return ref.draw(np.random.default_rng(seed), N, x.shape[1], c["widths"], c["C_W"], c["C_b"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_complex_step_reference(case):
    c = CASES[case]
    params = draw(case, 4, 1)
    H, dH, z = ref.dntk(c["x"], params, c["lam_W"], c["lam_b"], c["act"])
    for t in range(4):
        Hk, dHk, zp = kernel_dntk(case, params, t)
        scale = np.abs(dH[t]).max()
        assert scale > 1e-3                      # not trivially zero
        np.testing.assert_allclose(dHk, dH[t], rtol=0, atol=1e-10 * scale)
        np.testing.assert_allclose(Hk, H[t], rtol=0, atol=1e-12 * np.abs(H[t]).max())
        np.testing.assert_allclose(zp, z[t], rtol=0, atol=1e-12)
        # dHhat_{c0 c1 c2} is symmetric in c1 <-> c2, and dHhat_{c0 c c} with c0 = c is the
        # derivative of one unit's NTK along its own gradient: not zero
        np.testing.assert_array_equal(dHk, dHk.transpose(0, 2, 1))


def test_a_wrong_learning_rate_is_seen():
    """Power: the reference with lambda_W^(1) = 1.2 instead of 1.0 differs from the kernel
    by far more than the tolerance above (the comparison sees the learning rates)."""
    case = "tanh-k3-layer2"
    c = CASES[case]
    params = draw(case, 2, 3)
    _, dH, _ = ref.dntk(c["x"], params, c["lam_W"], c["lam_b"], c["act"])
    _, dH2, _ = ref.dntk(c["x"], params, [1.2, 1.5], c["lam_b"], c["act"])
    _, dHk, _ = kernel_dntk(case, params, 0)
    assert np.abs(dHk - dH2[0]).max() > 1e-3 * np.abs(dH[0]).max()


@pytest.mark.parametrize("case", ["tanh-k2", "linear-width1"])
def test_matches_finite_differences_of_the_ntk(case):
    """dHhat_{c0 c1 c2} = d/dt Hhat_{c1 c2}(theta + t Lambda grad z_{c0}) at t = 0: central
    differences of the kernel's own NTK along that direction."""
    c = CASES[case]
    params = draw(case, 1, 7)
    f, df = ref.ACTIVATIONS[c["act"]]
    grads, _ = ref._gradients(np.asarray(c["x"], float), params, f, df)
    _, dH, _ = kernel_dntk(case, params, 0)
    h = 1e-5
    worst = 0.0
    for c0 in range(dH.shape[0]):
        moved = []
        for sign in (1, -1):
            p = [(W + sign * h * c["lam_W"][m] / W.shape[2] * grads[c0][m][0],
                  b + sign * h * c["lam_b"][m] * grads[c0][m][1]) for m, (W, b) in enumerate(params)]
            moved.append(kernel_dntk(case, p, 0)[0])
        fd = (moved[0] - moved[1]) / (2 * h)
        worst = max(worst, np.abs(fd - dH[c0]).max())
    assert worst < 1e-6 * np.abs(dH).max(), worst


def sampling_config(k=2, act="tanh"):
    x = [[1.0, 0.5, -0.2], [0.3, -1.0, 0.4], [0.2, 0.2, 0.9]][:k]
    return config_from_dict({
        "network": {"input_dim": 3, "widths": [5, 4, 3], "activation": act, "C_W": [1.5, 1.2, 1.0],
                    "C_b": [0.1, 0.2, 0.3], "lambda_b": [0.5, 1.0, 2.0], "lambda_W": [1.0, 0.7, 1.3]},
        "inputs": {"values": x},
        "ensemble": {"networks": 64, "seed": 1, "sampler": "dense", "block_size": 16,
                     "jackknife_bins": 4},
        "output": {"statistics": ["metric", "dntk_P", "dntk_Q"]}})


def sample(cfg, first_block, n_blocks, flags=None, sampler="dense"):
    from mcsim.kernels import dntk_dense, dntk_markov, ntk_common, rng
    from mcsim.samplers.markov import kernel_arguments, ntk_arguments
    k, L = cfg.k, cfg.network.depth
    lam_W, lam_b, default = ntk_arguments(cfg)
    flags = default if flags is None else np.asarray(flags, dtype=np.int64)
    out = np.full((n_blocks, 16, L - 1, ntk_common.ntk_width(k) + dntk_dense.dntk_width(k)), -1.0)
    if sampler == "dense":
        dntk_dense.sample_dense_dntk(rng.seed_key(5), np.uint64(first_block), n_blocks, 16,
                                     *kernel_arguments(cfg), np.int64(0), lam_W, lam_b, flags, out)
    else:
        dntk_markov.sample_markov_dntk(rng.seed_key(5), np.uint64(first_block), n_blocks, 16,
                                       *kernel_arguments(cfg), lam_W, lam_b, flags, out)
    return out


@pytest.mark.parametrize("sampler", ["dense", "markov"])
def test_sampling_kernel_bitwise_independent_of_threads_grouping_and_recorded_layers(sampler):
    cfg = sampling_config()
    results = {}
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            results[threads] = sample(cfg, 4, 3, sampler=sampler)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(results[1], results[2])
    np.testing.assert_array_equal(results[1], np.concatenate([sample(cfg, 4 + i, 1, sampler=sampler)
                                                              for i in range(3)]))
    assert np.isfinite(results[1]).all()
    only3 = sample(cfg, 4, 3, flags=[0, 1], sampler=sampler)
    np.testing.assert_array_equal(only3[:, :, 1], results[1][:, :, 1])
    assert np.isnan(only3[:, :, 0, 3:]).all()
    np.testing.assert_array_equal(only3[:, :, 0, :3], results[1][:, :, 0, :3])


def test_markov_kernel_samples_the_networks_of_the_markov_sampler():
    """The markov dNTK kernel's forward pass is kernels.markov's: the same Ghat; and its NTK
    quantities (other conditional weights than kernels.ntk_markov) are finite."""
    from mcsim.kernels import markov, rng
    from mcsim.samplers.markov import kernel_arguments
    cfg = sampling_config()
    mine = sample(cfg, 2, 2, sampler="markov")
    out = np.empty(mine.shape[:3] + (3,))
    markov.sample_markov(rng.seed_key(5), np.uint64(2), 2, 16, *kernel_arguments(cfg), out)
    np.testing.assert_allclose(mine[..., :3], out, rtol=1e-13, atol=0)


def test_sampling_kernel_samples_the_networks_of_the_ntk_kernel():
    """Same random numbers as kernels.ntk_dense: the metric and NTK parts agree to round-off."""
    from mcsim.kernels import ntk_common, ntk_dense, rng
    from mcsim.samplers.markov import kernel_arguments, ntk_arguments
    cfg = sampling_config()
    mine = sample(cfg, 2, 2)
    w = ntk_common.ntk_width(cfg.k)
    theirs = np.empty(mine.shape[:3] + (w,))
    ntk_dense.sample_dense_ntk(rng.seed_key(5), np.uint64(2), 2, 16, *kernel_arguments(cfg),
                               np.int64(0), *ntk_arguments(cfg), theirs)
    np.testing.assert_allclose(mine[..., :w], theirs, rtol=1e-12, atol=1e-14)


def _regenerate(cfg, block, network):
    """The explicit parameters (reference layout, N = 1) of one network of the sampling kernel
    and output layer L, rebuilt from its random-number positions (kernels.ntk_dense)."""
    from mcsim.kernels import ntk_dense, rng
    from mcsim.kernels.rng import fill_normals
    net = cfg.network
    n0, widths = net.input_dim, np.asarray(net.widths, dtype=np.int64)
    pos = ntk_dense.dense_positions(n0, widths, 0)
    key = rng.seed_key(5)
    params, n_in = [], n0
    for l in range(len(widths) - 1):
        n = int(widths[l])
        b = np.empty(n)
        fill_normals(key, np.uint64(block), network, pos[l], b)
        p = pos[l] + (n + 1) // 2
        W = np.empty((n, n_in))
        for i in range(n):
            fill_normals(key, np.uint64(block), network, p, W[i])
            p += (n_in + 1) // 2
        params.append((W[None] * np.sqrt(net.C_W[l] / n_in), b[None] * np.sqrt(net.C_b[l])))
        n_in = n
    start = pos[len(widths) - 1]
    for l in range(2, len(widths)):                 # skip the probes of layers 2..L-1
        start += 1 + 2 * ((int(widths[l - 2]) + 1) // 2)
    e = np.empty(2)
    fill_normals(key, np.uint64(block), network, start, e)
    Wp = np.empty((2, n_in))
    for u in range(2):
        fill_normals(key, np.uint64(block), network, start + 1 + u * ((n_in + 1) // 2), Wp[u])
    L = len(widths)
    params.append((Wp[None] * np.sqrt(net.C_W[L - 1] / n_in), e[None] * np.sqrt(net.C_b[L - 1])))
    return params


def test_sampling_kernel_quantities_are_the_single_network_dntk():
    """The packed dNTK quantities of the output layer of network (block 3, 5) against the
    reference on the same explicit parameters (regenerated from the random-number layout)."""
    from mcsim.kernels import ntk_common
    from mcsim.stats.indexing import pairs
    cfg = sampling_config(k=3)
    k = cfg.k
    row = sample(cfg, 3, 1)[0, 5, -1, ntk_common.ntk_width(k):]
    params = _regenerate(cfg, 3, 5)
    net = cfg.network
    _, dH, z = ref.dntk(cfg.inputs, params, net.lambda_W, net.lambda_b, "tanh")
    dH, z = dH[0], z[0]
    k3, m = k ** 3, k * (k + 1) // 2
    pr = pairs(k)
    expect = np.concatenate([
        dH[:k, :k, k:].ravel(), dH[k:, k:, :k].ravel(),
        np.array([dH[a0, k + a1, k + a2] for a0 in range(k) for a1, a2 in pr]),
        np.array([dH[k + a0, a1, a2] for a0 in range(k) for a1, a2 in pr]), z.ravel()])
    assert row.shape == (2 * k3 + 2 * k * m + 2 * k,)
    np.testing.assert_allclose(row, expect, rtol=0, atol=1e-10 * np.abs(expect).max())
