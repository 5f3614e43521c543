"""Networks per second of the samplers against explicit-weight baselines, and issue 6's ratios.

Every measurement runs in its own subprocess (``--worker``), so that thread counts, BLAS
threads and peak memory are per measurement:

- ``markov`` / ``dense``: mcsim's block sampler plus its moment reduction (what `mcsim run`
  does per block), after JIT warm-up, with 1 or 2 Numba threads;
- ``numpy``: the plainest vectorised explicit-weights code a user would write (batched
  ``W @ s`` per layer with ``Generator.standard_normal``), BLAS limited to one thread;
- ``torch``: the same with ``torch.randn`` and ``bmm`` (only when PyTorch is installed).

Each row: median of repeats with min and max (networks/s). Ratios printed: markov cost per
normal over the generator's cost per normal (target <= 1.3 at n >= 256); markov over numpy /
torch at n = 1024 (targets 1000x / 500x); dense over its generator bound (target <= 1.5);
2 threads over 1 (target >= 1.8); peak RSS for N and 8N networks (flat); `mcsim run` start
with a warm JIT cache (target < 2 s); and the wall time for the last layer's four-point vertex
to reach 1% relative standard error (ReLU, n = 256, L = 10, k = 1).

    python benchmarks/bench_samplers.py [--quick]     (or benchmarks/run.py --only samplers)
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEPTH = 10


def _cfg_dict(n, L, k, act, sampler, block_size=64, networks=1 << 30):
    crit = {"relu": (2.0, 0.0), "tanh": (1.0, 0.0)}[act]
    return {"network": {"input_dim": n, "widths": [n] * L, "activation": act,
                        "C_W": crit[0], "C_b": crit[1]},
            "inputs": {"generate": "fixed_norm", "count": k, "seed": 1},
            "ensemble": {"networks": networks, "seed": 1, "sampler": sampler,
                         "block_size": block_size},
            "output": {"statistics": ["metric", "vertex"]}}


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def _repeat(fn, items, budget, repeats):
    """Rates (items/s) of `repeats` timed runs, each of >= budget/repeats seconds."""
    fn(1)                                        # warm-up (JIT, caches)
    t0 = time.perf_counter()
    fn(1)
    one = max(time.perf_counter() - t0, 1e-6)
    reps = max(1, int(budget / repeats / one))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(reps)
        rates.append(reps * items / (time.perf_counter() - t0))
    return {"median": _median(rates), "min": min(rates), "max": max(rates), "repeats": repeats}


# -- workers (run in a subprocess) -----------------------------------------------------
def _worker_mcsim(n, L, k, act, sampler, threads, budget, repeats):
    from mcsim.config import config_from_dict
    from mcsim.run.driver import BlockWorker
    from mcsim.stats.accumulator import accumulator_layout
    from mcsim.kernels.jit import set_threads
    set_threads(threads)
    bs = 256 if n <= 256 else (32 if n <= 1024 else 4)
    if sampler == "dense":
        bs = max(1, bs // 8)
    cfg = config_from_dict(_cfg_dict(n, L, k, act, sampler, block_size=bs))
    s = BlockWorker(cfg, accumulator_layout(cfg))
    nb = max(1, 2 * threads)
    state = {"block": 0}

    def run(reps):
        for _ in range(reps):
            s.run(state["block"], nb)
            state["block"] += nb
    return _repeat(run, nb * bs, budget, repeats)


def _worker_numpy(n, L, k, act, budget, repeats):
    import numpy as np
    rng = np.random.default_rng(1)
    C_W = 2.0 if act == "relu" else 1.0
    x = rng.standard_normal((n, k))
    batch = max(1, min(256, (1 << 22) // (n * n)))
    sigma = (lambda z: np.maximum(z, 0.0)) if act == "relu" else np.tanh

    def run(reps):
        for _ in range(reps):
            s = np.broadcast_to(x, (batch, n, k))
            for _l in range(L):
                W = rng.standard_normal((batch, n, s.shape[1])) * np.sqrt(C_W / s.shape[1])
                z = W @ s
                s = sigma(z)
            np.einsum("bia,bic->bac", s, s) * (C_W / n)
    return _repeat(run, batch, budget, repeats)


def _worker_torch(n, L, k, act, budget, repeats):
    import torch
    torch.set_num_threads(1)
    C_W = 2.0 if act == "relu" else 1.0
    x = torch.randn(n, k, dtype=torch.float64)
    batch = max(1, min(256, (1 << 22) // (n * n)))
    sigma = torch.relu if act == "relu" else torch.tanh

    def run(reps):
        with torch.no_grad():
            for _ in range(reps):
                s = x.expand(batch, n, k)
                for _l in range(L):
                    W = torch.randn(batch, n, s.shape[1], dtype=torch.float64) * (C_W / s.shape[1]) ** 0.5
                    s = sigma(torch.bmm(W, s))
                torch.einsum("bia,bic->bac", s, s) * (C_W / n)
    return _repeat(run, batch, budget, repeats)


def _worker_normals(budget, repeats):
    import numpy as np
    from mcsim.kernels import rng
    from mcsim.kernels.jit import set_threads
    set_threads(1)
    out = np.empty(1 << 20)
    key = rng.seed_key(5)
    r = _repeat(lambda reps: [rng.fill_normals(key, 1, j, 0, out) for j in range(reps)],
                len(out), budget, repeats)
    return {"ns_per_normal": 1e9 / r["median"], **r}


def _worker_memory(n, networks):
    import mcsim
    from mcsim.config import config_from_dict
    cfg = config_from_dict(_cfg_dict(n, 6, 2, "relu", "markov", block_size=256, networks=networks))
    mcsim.simulate(cfg, progress="off")
    return {"networks": networks}


def worker(spec: dict) -> dict:
    kind = spec.pop("kind")
    fn = {"mcsim": _worker_mcsim, "numpy": _worker_numpy, "torch": _worker_torch,
          "normals": _worker_normals, "memory": _worker_memory}[kind]
    out = fn(**spec)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _spawn(spec: dict, threads: int = 1) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(max(threads, 1)), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # a current numpy is slowed by these (set on some machines for old OpenBLAS builds)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    proc = subprocess.run([sys.executable, str(Path(__file__)), "--worker", json.dumps(spec)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _has_torch() -> bool:
    try:
        import importlib.util
        return importlib.util.find_spec("torch") is not None
    except Exception:
        return False


# -- the benchmark ---------------------------------------------------------------------
def bench_samplers(quick: bool = False) -> dict:
    budget, repeats = (0.6, 3) if quick else (3.0, 5)
    widths = [64, 256, 1024] if quick else [64, 256, 1024, 4096]
    ks = [2] if quick else [1, 2, 4]
    acts = ["relu"] if quick else ["relu", "tanh"]
    torch = _has_torch()
    rows = {}
    normals = _spawn({"kind": "normals", "budget": budget, "repeats": repeats})
    ns_normal = normals["ns_per_normal"]
    for act in acts:
        for k in ks:
            for n in widths:
                base = {"n": n, "L": DEPTH, "k": k, "act": act, "budget": budget, "repeats": repeats}
                for threads in ([1] if quick and n != 1024 else [1, 2]):
                    rows[f"markov {act} k={k} n={n} threads={threads}"] = _spawn(
                        {"kind": "mcsim", "sampler": "markov", "threads": threads, **base}, threads)
                if n <= (1024 if quick else 4096) and k == 2 or (not quick and n <= 1024):
                    rows[f"dense {act} k={k} n={n} threads=1"] = _spawn(
                        {"kind": "mcsim", "sampler": "dense", "threads": 1, **base})
                if k == 2 and act == "relu":
                    rows[f"numpy {act} k={k} n={n}"] = _spawn({"kind": "numpy", **base})
                    if torch:
                        rows[f"torch {act} k={k} n={n}"] = _spawn({"kind": "torch", **base})
    ratios = {}

    def rate(label):
        r = rows.get(label, {})
        return r.get("median")

    for n in widths:
        m = rate(f"markov relu k=2 n={n} threads=1")
        if m:
            per_normal = 1e9 / m / ((DEPTH - 1) * n * 2)
            ratios[f"markov ns per normal / generator ns per normal, n={n}"] = per_normal / ns_normal
        d = rate(f"dense relu k=2 n={n} threads=1")
        if d:
            normals_dense = DEPTH * n * n + DEPTH * n
            ratios[f"dense ns per normal / generator ns per normal, n={n}"] = 1e9 / d / normals_dense / ns_normal
    for other in ("numpy", "torch"):
        o, m = rate(f"{other} relu k=2 n=1024"), rate("markov relu k=2 n=1024 threads=1")
        if o and m:
            ratios[f"markov / {other}, n=1024, 1 thread"] = m / o
    one, two = rate("markov relu k=2 n=1024 threads=1"), rate("markov relu k=2 n=1024 threads=2")
    if one and two:
        ratios["markov 2 threads / 1 thread, n=1024"] = two / one
    small = _spawn({"kind": "memory", "n": 64, "networks": 200_000})
    big = _spawn({"kind": "memory", "n": 64, "networks": 1_600_000})
    memory = {"peak_rss_mb_200k_networks": small.get("peak_rss_mb"),
              "peak_rss_mb_1600k_networks": big.get("peak_rss_mb")}
    return {"normals": normals, "rates_networks_per_second": rows, "ratios": ratios,
            "memory": memory, "startup": _startup(), "vertex_1pct": _figure_of_merit(quick),
            "torch_installed": torch}


def _startup() -> dict:
    """Wall time of a small `mcsim run` with a warm cache (the second of two runs)."""
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "s.toml"
        cfg.write_text(textwrap.dedent("""
            [network]
            input_dim = 2
            widths = [16, 16, 1]
            [ensemble]
            networks = 2048
        """))
        times = []
        for i in range(3):
            t0 = time.perf_counter()
            subprocess.run([str(Path(sys.executable).parent / "mcsim"), "run", str(cfg), "-o",
                            str(Path(d) / f"o{i}.h5"), "--quiet"], check=True,
                           env=dict(os.environ, NUMBA_NUM_THREADS="1"))
            times.append(time.perf_counter() - t0)
    return {"first_s": times[0], "warm_s": _median(times[1:])}


def _figure_of_merit(quick: bool) -> dict:
    """Seconds for V of the last layer to reach 1% relative standard error (ReLU, n=256,
    L=10, k=1, markov, 1 thread): measure rel. stderr r after time t; t_1% = t (r / 0.01)^2."""
    import mcsim
    from mcsim.config import config_from_dict
    from mcsim.kernels.jit import set_threads
    set_threads(1)
    networks = 16_384 if quick else 131_072
    d = _cfg_dict(256, DEPTH, 1, "relu", "markov", block_size=256, networks=networks)
    d["inputs"] = {"values": [[1.0] * 256]}
    cfg = config_from_dict(d)
    mcsim.simulate(cfg.replace(networks=512), progress="off")          # warm-up
    t0 = time.perf_counter()
    res = mcsim.simulate(cfg, progress="off")
    t = time.perf_counter() - t0
    v = res.layer(DEPTH).vertex
    rel = float(v.stderr[0, 0, 0, 0] / v.mean[0, 0, 0, 0])
    return {"networks": networks, "seconds": t, "relative_stderr": rel,
            "seconds_to_1pct": t * (rel / 0.01) ** 2}


def print_report(r: dict) -> None:
    print(f"generator: {r['normals']['ns_per_normal']:.2f} ns per float64 normal (1 thread)")
    print(f"{'networks per second':48s} {'median':>12s} {'min':>12s} {'max':>12s} {'RSS MB':>8s}")
    for label, x in r["rates_networks_per_second"].items():
        if "median" in x:
            print(f"{label:48s} {x['median']:12,.0f} {x['min']:12,.0f} {x['max']:12,.0f} {x['peak_rss_mb']:8.0f}")
        else:
            print(f"{label:48s} {x.get('error')}")
    print("ratios:")
    for label, v in r["ratios"].items():
        print(f"  {label:62s} {v:10.2f}")
    print(f"peak RSS: {r['memory']}")
    print(f"mcsim run start-up: first {r['startup']['first_s']:.2f} s, warm cache {r['startup']['warm_s']:.2f} s")
    f = r["vertex_1pct"]
    print(f"V of layer {DEPTH} to 1% rel. stderr (relu n=256 k=1): {f['seconds_to_1pct']:.1f} s "
          f"(measured {100 * f['relative_stderr']:.2f}% after {f['seconds']:.1f} s, {f['networks']:,} networks)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        print(json.dumps(worker(json.loads(sys.argv[2]))))
        sys.exit(0)
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="also write the report to this file")
    args = ap.parse_args()
    report = bench_samplers(args.quick)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
