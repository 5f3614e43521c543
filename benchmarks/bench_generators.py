"""The generators per ISA: ns per normal, markov / reduced / dense / NumPy (/ PyTorch)
networks per second, and the time to 1% on V^(L), before (philox53) and after (philox32).

    python benchmarks/bench_generators.py [--quick] [--normals-only] [--isa avx2 avx512] [--json OUT]

One subprocess per ISA, each compiling every kernel for that target with its own Numba
cache: ``avx2`` is the Haswell target (AVX2 + FMA, the code an AVX2-only node runs),
``avx512`` the host's own CPU (only where it has AVX-512). One thread throughout. Within a
subprocess the old and the new generator are timed alternately (old, new, old, ...) so that
load from other processes hits both, and each row is the best of the repeats (the least
disturbed); ratios within one run are the numbers to compare across machines.

Rows: ns per normal (best of 25 round-robin repeats) of ``fill_normals`` with philox53 and philox32 and of the options that
were not chosen (``rng_variants.py``); networks/s of markov (ReLU at criticality, L = 10,
k = 2) with both generators, of the reduced sampler for one input (chi2, k = 1), of dense
(k = 2, both generators), of the NumPy explicit-weights baseline (and PyTorch if installed),
each at n = 64, 256, 1024, all as ``mcsim run`` does a block (sampling plus moments); and
the seconds for the last layer's four-point vertex to reach 1% relative standard error
(ReLU, n = 256, L = 10, k = 1): markov with each generator, and sampler = "auto" (chi2).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEPTH = 10
WIDTHS = (64, 256, 1024)
GENERATORS = ("philox53", "philox32")


def _isa_env(isa: str) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from isa import HASWELL_FEATURES, host_env, target_env
    cache = ROOT / ".venv" / f"numba-cache-bench-{isa}"
    env = target_env("haswell", HASWELL_FEATURES, cache) if isa == "avx2" else host_env(cache)
    env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    return env


def _best_alternating(fns: dict, items: dict, budget: float, repeats: int) -> dict:
    """{name: best rate (items/s)}: each fn(reps) timed `repeats` times, round robin."""
    reps = {}
    for name, fn in fns.items():
        fn(1)                                             # warm-up: JIT, caches
        t0 = time.perf_counter()
        fn(1)
        reps[name] = max(1, int(budget / repeats / max(time.perf_counter() - t0, 1e-7)))
    best = dict.fromkeys(fns, 0.0)
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(reps[name])
            best[name] = max(best[name], reps[name] * items[name] / (time.perf_counter() - t0))
    return best


def _cfg(n, k, sampler, generator, block_size, networks=1 << 30, inputs=None):
    from mcsim.config import config_from_dict
    return config_from_dict({
        "network": {"input_dim": n, "widths": [n] * DEPTH, "activation": "relu", "C_W": 2.0, "C_b": 0.0},
        "inputs": inputs or {"generate": "fixed_norm", "count": k, "seed": 1},
        "ensemble": {"networks": networks, "seed": 1, "sampler": sampler, "block_size": block_size,
                     "generator": generator},
        "output": {"statistics": ["metric", "vertex"]}})


def _block_runner(cfg):
    from mcsim.run.driver import BlockWorker
    from mcsim.stats.accumulator import accumulator_layout
    w = BlockWorker(cfg, accumulator_layout(cfg))
    state = [0]

    def run(reps):
        w.run(state[0], reps)
        state[0] += reps
    return run


def _numpy_runner(n, k):
    import numpy as np
    g = np.random.default_rng(1)
    x = g.standard_normal((n, k))
    batch = max(1, min(256, (1 << 22) // (n * n)))

    def run(reps):
        for _ in range(reps):
            s = np.broadcast_to(x, (batch, n, k))
            for _l in range(DEPTH):
                W = g.standard_normal((batch, n, s.shape[1])) * np.sqrt(2.0 / s.shape[1])
                s = np.maximum(W @ s, 0.0)
            np.einsum("bia,bic->bac", s, s) * (2.0 / n)
    return run, batch


def _torch_runner(n, k):
    import torch
    torch.set_num_threads(1)
    x = torch.randn(n, k, dtype=torch.float64)
    batch = max(1, min(256, (1 << 22) // (n * n)))

    def run(reps):
        with torch.no_grad():
            for _ in range(reps):
                s = x.expand(batch, n, k)
                for _l in range(DEPTH):
                    W = torch.randn(batch, n, s.shape[1], dtype=torch.float64) * (2.0 / s.shape[1]) ** 0.5
                    s = torch.relu(torch.bmm(W, s))
                torch.einsum("bia,bic->bac", s, s) * (2.0 / n)
    return run, batch


def _normals(budget, repeats) -> dict:
    import numpy as np
    sys.path.insert(0, str(HERE))
    import rng_variants as rv
    from mcsim.kernels import rng
    out = np.empty(1 << 20)
    k53, k32 = rng.stream_key(5, "philox53"), rng.stream_key(5, "philox32")
    fns = {
        "philox53 (Philox4x32-10, 53-bit uniforms, float64 Box-Muller)":
            lambda r: [rng.fill_normals(k53, 1, j, 0, out) for j in range(r)],
        "philox32 (Philox4x32-10, 32-bit words, float32 Box-Muller)":
            lambda r: [rng.fill_normals(k32, 1, j, 0, out) for j in range(r)],
        "option: Philox4x32-10, 32-bit words, float64 Box-Muller":
            lambda r: [rv.w32_f64(k53, 1, j, out, False) for j in range(r)],
        "option: Philox4x32-7, 32-bit words, float64 Box-Muller":
            lambda r: [rv.w32_f64(k53, 1, j, out, True) for j in range(r)],
        "option: Philox4x32-7, 32-bit words, float32 Box-Muller":
            lambda r: [rv.w32_f32_rounds7(k53, 1, j, out) for j in range(r)],
        "option: Threefry4x32-20, 32-bit words, float32 Box-Muller":
            lambda r: [rv.threefry_w32_f32(k53, 1, j, out) for j in range(r)],
    }
    best = _best_alternating(fns, dict.fromkeys(fns, out.size), budget, repeats)
    return {name: 1e9 / rate for name, rate in best.items()}


def _seconds_to_1pct(quick: bool) -> dict:
    """Seconds to 1% relative standard error on V^(L): (seconds per network, best of the
    repeats) x (networks needed). Every sampler and generator samples the same ensemble
    exactly, so the networks needed, N (rel / 1%)^2, is one number: the mean over the runs
    (one estimate per run is noisy by ~2 x 1 / sqrt(2 (bins - 1)) ~ 18%)."""
    import mcsim
    networks = 16_384 if quick else 131_072
    runs = {}
    for label, sampler, generator in (("markov, philox53 (before)", "markov", "philox53"),
                                      ("markov, philox32", "markov", "philox32"),
                                      ("auto (chi2), philox32", "auto", "philox32")):
        cfg = _cfg(256, 1, sampler, generator, 256, networks, inputs={"values": [[1.0] * 256]})
        mcsim.simulate(cfg.replace(networks=512), progress="off")          # warm-up (2 blocks)
        best, need = None, []
        for _ in range(1 if quick else 3):
            t0 = time.perf_counter()
            res = mcsim.simulate(cfg, progress="off")
            t = time.perf_counter() - t0
            v = res.layer(DEPTH).vertex
            rel = float(v.stderr[0, 0, 0, 0] / v.mean[0, 0, 0, 0])
            need.append(networks * (rel / 0.01) ** 2)
            best = t if best is None else min(best, t)
        runs[label] = (best / networks, need, cfg.ensemble.sampler)
    needed = float(np.mean([x for _, need, _ in runs.values() for x in need]))
    return {label: {"seconds_to_1pct": per * needed, "seconds_per_network": per,
                    "networks_needed": needed, "sampler": sampler}
            for label, (per, _, sampler) in runs.items()}


def worker(quick: bool, normals_only: bool = False) -> dict:
    import importlib.util
    budget, repeats = (0.3, 3) if quick else (1.5, 5)
    report = {"normals_ns": _normals(3 * budget, 5 * repeats), "networks_per_second": {}}
    if normals_only:
        return report
    rates = report["networks_per_second"]
    torch = importlib.util.find_spec("torch") is not None
    for n in WIDTHS:
        bs = 256 if n <= 256 else 32
        fns, items = {}, {}
        for gen in GENERATORS:
            fns[f"markov k=2 n={n} {gen}"] = _block_runner(_cfg(n, 2, "markov", gen, bs))
            items[f"markov k=2 n={n} {gen}"] = bs
        fns[f"reduced (chi2) k=1 n={n}"] = _block_runner(_cfg(n, 1, "chi2", "philox32", 256))
        items[f"reduced (chi2) k=1 n={n}"] = 256
        dbs = max(1, bs // 32)
        for gen in GENERATORS:
            fns[f"dense k=2 n={n} {gen}"] = _block_runner(_cfg(n, 2, "dense", gen, dbs))
            items[f"dense k=2 n={n} {gen}"] = dbs
        fns[f"numpy k=2 n={n}"], items[f"numpy k=2 n={n}"] = _numpy_runner(n, 2)
        if torch:
            fns[f"torch k=2 n={n}"], items[f"torch k=2 n={n}"] = _torch_runner(n, 2)
        rates.update(_best_alternating(fns, items, budget, repeats))
    report["vertex_1pct"] = _seconds_to_1pct(quick)
    report["torch_installed"] = torch
    return report


def _machine(isa) -> dict:
    sys.path.insert(0, str(HERE))
    from _timing import machine_info
    m = machine_info()
    m["isa"] = isa
    return m


def print_report(isa: str, r: dict) -> None:
    print(f"== {isa}: {r['machine']['cpu']} ({r['machine']['numba_cpu_name'] or 'host'}), "
          f"{r['machine']['date']}, one thread, best of repeats")
    for name, ns in r["normals_ns"].items():
        print(f"  {name:66s} {ns:7.2f} ns/normal")
    for name, rate in r["networks_per_second"].items():
        print(f"  {name:66s} {rate:12,.1f} networks/s")
    if not r["networks_per_second"]:
        return
    for n in WIDTHS:
        a, b = (r["networks_per_second"][f"markov k=2 n={n} {g}"] for g in GENERATORS)
        print(f"  markov n={n}: philox32 / philox53 = {b / a:.2f}")
    for name, x in r["vertex_1pct"].items():
        print(f"  V^({DEPTH}) to 1% (ReLU n=256 k=1), {name:30s} {x['seconds_to_1pct']:8.3f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short timings (a few minutes)")
    ap.add_argument("--isa", nargs="+", choices=["avx2", "avx512"], help="default: every one this host runs")
    ap.add_argument("--json", help="write the reports to this file")
    ap.add_argument("--normals-only", action="store_true", help="only the ns per normal rows")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps({**worker(args.quick, args.normals_only), "machine": _machine(args.worker)}))
        return 0
    sys.path.insert(0, str(ROOT / "tests"))
    from isa import host_has_avx512
    isas = args.isa or (["avx2", "avx512"] if host_has_avx512() else ["avx2"])
    reports = {}
    for isa in isas:
        cmd = [sys.executable, str(Path(__file__)), *(["--quick"] if args.quick else []),
               *(["--normals-only"] if args.normals_only else []), "--worker", isa]
        proc = subprocess.run(cmd, env=_isa_env(isa), capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{isa}: failed\n{proc.stderr}", file=sys.stderr)
            return 1
        reports[isa] = json.loads(proc.stdout.strip().splitlines()[-1])
        print_report(isa, reports[isa])
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
