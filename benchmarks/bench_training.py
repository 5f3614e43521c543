"""Training throughput: networks x steps per second of mcsim's training kernel against a
batched NumPy (and, when installed, PyTorch) implementation of the same ensemble, one thread.

Setup (issue 15): tanh at criticality, L = 4 (widths n, n, n, 1), n_0 = 8, N = 8 training
points, k = 2 test points, full-batch gradient descent with per-layer rates, float64.

- ``mcsim``: ``kernels.training.train_networks`` on one block (one Numba thread): the
  networks' parameters drawn from Philox, the per-network NTK at initialisation, the training
  steps, the linearised model and the recorded outputs;
- ``numpy``: the same networks (parameters copied from mcsim's draw, so the trained outputs
  are compared to 1e-9) trained with stacked ``matmul`` over the ensemble axis, BLAS on one
  thread; gradient descent only (no NTK, no linearised model);
- ``torch``: the same with ``torch.bmm`` in float64, ``torch.set_num_threads(1)``.

Each row: networks x steps per second (median of repeats, min and max). Printed ratios:
mcsim over numpy and over torch, and mcsim's one-off cost per network (draw + NTK) in steps.

    python benchmarks/bench_training.py [--quick]     (or benchmarks/run.py --only training)
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"      # one thread everywhere (set before numpy / numba / torch load)

import sys                      # noqa: E402
import time                     # noqa: E402
from pathlib import Path        # noqa: E402

import numpy as np              # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine_info, write_json   # noqa: E402

L, N, K_TEST, N0 = 4, 8, 2, 8


def _setup(n, networks, steps):
    from mcsim.activations import get_activation
    from mcsim.kernels import training as kt
    from mcsim.kernels.rng import seed_key
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N + K_TEST, N0))
    y = rng.normal(size=(N, 1)) * 0.5
    widths = np.array([n] * (L - 1) + [1], dtype=np.int64)
    act = get_activation("tanh")
    s = dict(key=seed_key(1), x=x, y=y, widths=widths, C_W=np.ones(L), C_b=np.zeros(L),
             act=act, lam_b=np.ones(L), lam_W=np.ones(L), eta=0.05, steps=steps,
             record=np.array([0, steps], dtype=np.int64), B=networks, kt=kt)
    return s


def run_mcsim(s):
    kt = s["kt"]
    out = np.zeros((1, s["B"], 2, kt.record_width(K_TEST, 1)))
    div = np.zeros((1, s["B"]), dtype=np.uint8)
    kt.train_networks(s["key"], 0, 1, s["B"], s["x"], N, s["y"], np.zeros((0, 1)), s["widths"], s["C_W"],
                      s["C_b"], s["act"].code, s["act"].param, 0, s["lam_b"], s["lam_W"], s["eta"], s["steps"],
                      s["record"], out, div)
    return out[0, :, -1, :K_TEST]          # (B, k): trained outputs at the test points


def parameters(s):
    """Stacked parameters of the B networks (mcsim's draw): Ws[l] (B, n_l, n_{l-1}), bs[l] (B, n_l)."""
    kt = s["kt"]
    woff, boff, nw, nb = kt.parameter_offsets(N0, s["widths"])
    Ws = [np.empty((s["B"], s["widths"][l], N0 if l == 0 else s["widths"][l - 1])) for l in range(L)]
    bs = [np.empty((s["B"], s["widths"][l])) for l in range(L)]
    w, b = np.empty(nw), np.empty(nb)
    for j in range(s["B"]):
        kt.draw_parameters(s["key"], 0, j, N0, s["widths"], s["C_W"], s["C_b"], 0, woff, boff, w, b)
        for l in range(L):
            Ws[l][j] = w[woff[l]:woff[l + 1]].reshape(Ws[l].shape[1:])
            bs[l][j] = b[boff[l]:boff[l + 1]]
    return Ws, bs


def run_numpy(s, Ws, bs):
    Ws, bs = [W.copy() for W in Ws], [b.copy() for b in bs]
    B = s["B"]
    xt = np.broadcast_to(s["x"][:N], (B, N, N0))
    y = s["y"][None]
    eta = s["eta"]
    for _ in range(s["steps"]):
        hs, zs, h = [xt], [], xt
        for l in range(L):
            z = np.matmul(h, Ws[l].transpose(0, 2, 1)) + bs[l][:, None, :]
            zs.append(z)
            if l < L - 1:
                h = np.tanh(z)
                hs.append(h)
        d = zs[-1] - y
        for l in range(L - 1, -1, -1):
            gW = np.matmul(d.transpose(0, 2, 1), hs[l])
            gb = d.sum(axis=1)
            if l:
                d = np.matmul(d, Ws[l]) * (1.0 - hs[l] ** 2)
            Ws[l] -= eta * s["lam_W"][l] / Ws[l].shape[2] * gW
            bs[l] -= eta * s["lam_b"][l] * gb
    h = np.broadcast_to(s["x"][N:], (B, K_TEST, N0))
    for l in range(L):
        h = np.matmul(h, Ws[l].transpose(0, 2, 1)) + bs[l][:, None, :]
        if l < L - 1:
            h = np.tanh(h)
    return h[:, :, 0]


def run_torch(s, Ws, bs):
    import torch
    torch.set_num_threads(1)
    Ws = [torch.from_numpy(W.copy()) for W in Ws]
    bs = [torch.from_numpy(b.copy()) for b in bs]
    B, eta = s["B"], s["eta"]
    xt = torch.from_numpy(s["x"][:N]).expand(B, N, N0)
    y = torch.from_numpy(s["y"])[None]
    with torch.no_grad():
        for _ in range(s["steps"]):
            hs, zs, h = [xt], [], xt
            for l in range(L):
                z = torch.baddbmm(bs[l][:, None, :], h, Ws[l].transpose(1, 2))
                zs.append(z)
                if l < L - 1:
                    h = torch.tanh(z)
                    hs.append(h)
            d = zs[-1] - y
            for l in range(L - 1, -1, -1):
                gW = torch.bmm(d.transpose(1, 2), hs[l])
                gb = d.sum(dim=1)
                if l:
                    d = torch.bmm(d, Ws[l]) * (1.0 - hs[l] ** 2)
                Ws[l] -= eta * float(s["lam_W"][l]) / Ws[l].shape[2] * gW
                bs[l] -= eta * float(s["lam_b"][l]) * gb
        h = torch.from_numpy(s["x"][N:]).expand(B, K_TEST, N0)
        for l in range(L):
            h = torch.baddbmm(bs[l][:, None, :], h, Ws[l].transpose(1, 2))
            if l < L - 1:
                h = torch.tanh(h)
    return h[:, :, 0].numpy()


def _rate(fn, items, repeats):
    fn()                                   # warm-up (JIT, allocations)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        rates.append(items / (time.perf_counter() - t0))
    rates.sort()
    return {"median": rates[len(rates) // 2], "min": rates[0], "max": rates[-1], "repeats": repeats}


def bench_training(quick: bool = False) -> dict:
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    results, ratios, agreement = {}, {}, {}
    for n in (64, 256):
        networks = 32 if quick else 64
        steps = 20 if quick else 100
        repeats = 3 if quick else 5
        s = _setup(n, networks, steps)
        Ws, bs = parameters(s)
        ref = run_mcsim(s)
        agreement[f"numpy n={n}"] = float(np.abs(run_numpy(s, Ws, bs) - ref).max())
        items = networks * steps
        results[f"mcsim n={n}"] = r_m = _rate(lambda: run_mcsim(s), items, repeats)
        results[f"numpy n={n}"] = r_n = _rate(lambda: run_numpy(s, Ws, bs), items, repeats)
        ratios[f"mcsim/numpy n={n}"] = r_m["median"] / r_n["median"]
        if have_torch:
            agreement[f"torch n={n}"] = float(np.abs(run_torch(s, Ws, bs) - ref).max())
            results[f"torch n={n}"] = r_t = _rate(lambda: run_torch(s, Ws, bs), items, repeats)
            ratios[f"mcsim/torch n={n}"] = r_m["median"] / r_t["median"]
        # one-off cost per network (draw, forward of all points, NTK, eigenvalue check) in steps
        s0 = dict(s, steps=0, record=np.array([0], dtype=np.int64))
        kt = s["kt"]

        def setup_only():
            out = np.zeros((1, networks, 1, kt.record_width(K_TEST, 1)))
            div = np.zeros((1, networks), dtype=np.uint8)
            kt.train_networks(s0["key"], 0, 1, networks, s0["x"], N, s0["y"], np.zeros((0, 1)), s0["widths"],
                              s0["C_W"], s0["C_b"], s0["act"].code, s0["act"].param, 0, s0["lam_b"], s0["lam_W"],
                              s0["eta"], 0, s0["record"], out, div)
        r0 = _rate(setup_only, networks, repeats)
        ratios[f"mcsim setup cost in steps n={n}"] = r_m["median"] / r0["median"]
    report = {"setup": {"L": L, "N_train": N, "k_test": K_TEST, "n0": N0, "activation": "tanh",
                        "dtype": "float64", "threads": 1, "torch": have_torch},
              "unit": "networks x steps per second", "results": results, "ratios": ratios,
              "max_abs_difference_of_trained_outputs": agreement, "machine": machine_info()}
    if have_torch:
        import torch
        report["machine"]["torch"] = torch.__version__
    return report


def main() -> None:
    quick = "--quick" in sys.argv
    report = bench_training(quick)
    print(f"training throughput ({report['unit']}; L={L}, N={N} training points, one thread)")
    for label, r in report["results"].items():
        print(f"  {label:<14} {r['median']:12.4g}   (min {r['min']:.4g}, max {r['max']:.4g})")
    for label, v in report["ratios"].items():
        print(f"  {label:<34} {v:8.3g}")
    for label, v in report["max_abs_difference_of_trained_outputs"].items():
        print(f"  max |difference| {label:<12} {v:.2e}")
    if "--no-write" not in sys.argv:
        print("wrote", write_json("training", report))


if __name__ == "__main__":
    main()
