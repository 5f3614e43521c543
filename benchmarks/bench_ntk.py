"""Networks per second with and without the NTK statistics (issue 10's cost targets).

tanh at criticality (C_W = 1, C_b = 0), L = 10 equal widths n = 256 and 1024, k = 2 inputs,
one thread, the markov sampler (and dense at n = 256 for reference). Each rate is mcsim's
block sampler plus its moment reduction (what `mcsim run` does per block), after the JIT
warm-up; median of repeats. Three runs per size:

- ``metric``        statistics = ["metric"] (every layer recorded): the baseline;
- ``ntk output``    the five NTK statistics of the output layer only (output.layers = [L]);
- ``ntk all``       the five NTK statistics of every layer.

Ratios printed: cost(ntk output) / cost(metric) (target <= 3) and cost(ntk all) / cost(metric)
(target <= L/2 = 5).

    python benchmarks/bench_ntk.py [--quick]       (or benchmarks/run.py --only ntk)

Measured (AMD EPYC znver5, one thread, results/ntk.json): markov n = 256: 70.6k / 20.8k /
7.0k networks/s (ratios 3.4 and 10.0); n = 1024: 20.9k / 6.4k / 2.2k (3.3 and 9.4); dense
n = 256: 1.08k / 0.56k / 0.21k (1.9 and 5.2). Where the cost goes: a forward layer draws k n
normals, a backward step through a layer 2k n (the conditional sample of W^T Delta for the 2k
gradient columns of two units, theory notes section 4), and the forward pass also needs
sigma'. One backward pass per recorded layer l costs l - 2 steps, so "every layer" is
~(L-1)(L-2)/2 = 36 steps against 9 forward layers at L = 10: about 8x the metric's normals
alone, hence ~10x rather than L/2.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import machine_info  # noqa: E402

DEPTH = 10
NTK = ["metric", "ntk", "ntk_A", "ntk_B", "ntk_D", "ntk_F"]


def _config(n, sampler, statistics, layers, block_size):
    from mcsim.config import config_from_dict
    return config_from_dict({
        "network": {"input_dim": n, "widths": [n] * DEPTH, "activation": "tanh", "C_W": 1.0, "C_b": 0.0},
        "inputs": {"generate": "fixed_norm", "count": 2, "seed": 1},
        "ensemble": {"networks": 1 << 30, "seed": 1, "sampler": sampler, "block_size": block_size},
        "output": {"statistics": statistics, "layers": layers}})


def _rate(cfg, budget, repeats):
    from mcsim.run.driver import BlockWorker
    from mcsim.stats.accumulator import accumulator_layout
    worker = BlockWorker(cfg, accumulator_layout(cfg))
    bs = cfg.ensemble.block_size
    worker.run(0, 1)                                     # JIT / cache load
    t0 = time.perf_counter()
    worker.run(1, 1)
    one = max(time.perf_counter() - t0, 1e-6)
    reps = max(1, int(budget / repeats / one))
    rates, block = [], 2
    for _ in range(repeats):
        t0 = time.perf_counter()
        worker.run(block, reps)
        rates.append(reps * bs / (time.perf_counter() - t0))
        block += reps
    rates.sort()
    return {"median": rates[len(rates) // 2], "min": rates[0], "max": rates[-1], "repeats": repeats}


def bench_ntk(quick: bool = False) -> dict:
    from mcsim.kernels.jit import set_threads
    set_threads(1)
    budget, repeats = (1.0, 3) if quick else (4.0, 5)
    sizes = [("markov", 256), ("markov", 1024), ("dense", 256)]
    if quick:
        sizes = [("markov", 256)]
    results, ratios = {}, {}
    for sampler, n in sizes:
        bs = (64 if n <= 256 else 16) if sampler == "markov" else 4
        runs = {"metric": (["metric"], "all"), "ntk output": (NTK, [DEPTH]), "ntk all": (NTK, "all")}
        rates = {}
        for label, (stats, layers) in runs.items():
            r = _rate(_config(n, sampler, stats, layers, bs), budget, repeats)
            results[f"{sampler} n={n} {label} (networks/s)"] = r
            rates[label] = r["median"]
            print(f"{sampler:6s} n={n:5d} {label:11s} {r['median']:12.1f} networks/s "
                  f"(min {r['min']:.1f}, max {r['max']:.1f})", flush=True)
        ratios[f"{sampler} n={n}"] = {
            "ntk output / metric (cost, target <= 3)": rates["metric"] / rates["ntk output"],
            f"ntk all / metric (cost, target <= {DEPTH / 2:g})": rates["metric"] / rates["ntk all"]}
        for key, value in ratios[f"{sampler} n={n}"].items():
            print(f"    {key}: {value:.2f}", flush=True)
    return {"machine": machine_info(), "depth": DEPTH, "k": 2, "threads": 1, "activation": "tanh",
            "rates": results, "ratios": ratios}


if __name__ == "__main__":
    print(json.dumps(bench_ntk("--quick" in sys.argv), indent=2, default=str))
