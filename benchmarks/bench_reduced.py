"""Speed-up of the exact reduced samplers (chi2, wishart) over markov, measured in one run.

Per case (L = 10 equal widths, one Numba thread): networks per second of the sampler alone
(``Sampler.sample``) and of a block as ``mcsim run`` does it (sampling plus the block's
moment reduction, ``BlockWorker.run``), for markov and for the reduced sampler, measured
alternately (markov, reduced, markov, ...) so that load from other processes hits both;
printed: medians and the ratio reduced / markov.

    NUMBA_NUM_THREADS=1 python benchmarks/bench_reduced.py [--quick] [--json OUT]
        [--only linear:2 linear:4 ...] [--also wishart_v1]

``--only ACT[:K]``: the cases of those activations (and numbers of inputs) only; ``--also
SAMPLER``: time that sampler too in the same alternation (e.g. an older version of the
reduced sampler), printed as its ratio over markov.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

CASES = [  # (activation, k, n, C_W, C_b, statistics)
    ("relu", 1, 64, 2.0, 0.0), ("relu", 1, 1024, 2.0, 0.0), ("relu", 1, 16384, 2.0, 0.0),
    ("leaky_relu", 1, 1024, 1.9, 0.1), ("perceptron", 1, 1024, 1.0, 0.1),
    ("linear", 1, 1024, 1.0, 0.0),
    ("linear", 2, 64, 1.0, 0.0), ("linear", 2, 1024, 1.0, 0.0), ("linear", 2, 16384, 1.0, 0.0),
    ("linear", 4, 1024, 1.0, 0.1),
]
DEPTH = 10


def config(act, k, n, cw, cb, sampler, block_size):
    from mcsim.config import config_from_dict
    return config_from_dict({
        "network": {"input_dim": 8, "widths": [n] * DEPTH, "activation": act, "C_W": cw, "C_b": cb},
        "inputs": {"generate": "fixed_norm", "count": k, "seed": 1},
        "ensemble": {"networks": 1 << 30, "seed": 1, "sampler": sampler, "block_size": block_size},
        "output": {"statistics": ["metric", "vertex"]}})


def rates(cfg, budget, repeats):
    """(sampler-only, sampler + moments) networks/s: `repeats` timings each."""
    from mcsim.run.driver import BlockWorker
    from mcsim.stats.accumulator import accumulator_layout
    w = BlockWorker(cfg, accumulator_layout(cfg))
    bs = cfg.ensemble.block_size
    buf = np.empty((1, bs, DEPTH - 1, w.sampler.width))
    w.sampler.sample(0, 1, buf)
    w.run(0, 1)
    t0 = time.perf_counter()
    w.sampler.sample(1, 1, buf)
    blocks = max(1, int(budget / max(time.perf_counter() - t0, 1e-7)))
    buf = np.empty((blocks, bs, DEPTH - 1, w.sampler.width))
    block = [2]

    def sample_only():
        t = time.perf_counter()
        w.sampler.sample(block[0], blocks, buf)
        block[0] += blocks
        return blocks * bs / (time.perf_counter() - t)

    def with_moments():
        t = time.perf_counter()
        w.run(block[0], blocks)
        block[0] += blocks
        return blocks * bs / (time.perf_counter() - t)
    return sample_only, with_moments


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--only", nargs="+", metavar="ACT[:K]")
    ap.add_argument("--also", metavar="SAMPLER")
    args = ap.parse_args(argv)
    from mcsim.kernels.jit import set_threads
    from mcsim.samplers import SAMPLERS, choose_sampler
    set_threads(1)
    budget, repeats = (0.1, 3) if args.quick else (0.4, 5)
    rows = []
    print(f"{'activation':<11} {'k':>2} {'n':>6} {'reduced':<8} {'markov/s':>11} {'reduced/s':>12} "
          f"{'ratio':>8} | with moments: {'markov/s':>10} {'reduced/s':>11} {'ratio':>7}")
    for act, k, n, cw, cb in CASES:
        if args.only and act not in args.only and f"{act}:{k}" not in args.only:
            continue
        red_cfg = config(act, k, n, cw, cb, "auto", 1024)
        red = red_cfg.ensemble.sampler
        bs_markov = max(16, min(1024, (1 << 22) // (n * k * DEPTH)))
        m = rates(config(act, k, n, cw, cb, "markov", bs_markov), budget / repeats, repeats)
        r = rates(red_cfg, budget / repeats, repeats)
        res = {"markov": [], "reduced": [], "markov_run": [], "reduced_run": []}
        o = None
        if args.also and SAMPLERS[args.also].exact_for(red_cfg):   # (others: markov/reduced only)
            o = rates(config(act, k, n, cw, cb, args.also, 1024), budget / repeats, repeats)
            res.update(also=[], also_run=[])
        for _ in range(repeats):
            res["markov"].append(m[0]())
            res["reduced"].append(r[0]())
            if o:
                res["also"].append(o[0]())
            res["markov_run"].append(m[1]())
            res["reduced_run"].append(r[1]())
            if o:
                res["also_run"].append(o[1]())
        med = {key: float(np.median(v)) for key, v in res.items()}
        row = dict(activation=act, k=k, n=n, sampler=red, **med,
                   ratio=med["reduced"] / med["markov"], ratio_run=med["reduced_run"] / med["markov_run"])
        rows.append(row)
        print(f"{act:<11} {k:>2} {n:>6} {red:<8} {med['markov']:>11,.0f} {med['reduced']:>12,.0f} "
              f"{row['ratio']:>7,.0f}x | {'':>13} {med['markov_run']:>10,.0f} {med['reduced_run']:>11,.0f} "
              f"{row['ratio_run']:>6,.0f}x", flush=True)
        if o:
            row.update(also=args.also, ratio_also=med["also"] / med["markov"],
                       ratio_also_run=med["also_run"] / med["markov_run"])
            print(f"{'':<11} {'':>2} {'':>6} {args.also:<8} {'':>11} {med['also']:>12,.0f} "
                  f"{row['ratio_also']:>7,.0f}x | {'':>13} {'':>10} {med['also_run']:>11,.0f} "
                  f"{row['ratio_also_run']:>6,.0f}x", flush=True)
    if args.json:
        from _timing import machine_info
        with open(args.json, "w") as f:
            json.dump({"machine": machine_info(), "depth": DEPTH, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
