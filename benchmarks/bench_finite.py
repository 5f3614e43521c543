"""Cost of the non-finite checks (`mcsim.stats.finite`) relative to sampling.

For a few ensembles, times one sampler call on a buffer of blocks, the scan of that buffer
for inf / NaN (`check_samples`), the block moments and their scan (`check_moments`), and
prints the checks' cost in % of the sampling (+ moments) time, measured in this run.

    NUMBA_NUM_THREADS=1 python benchmarks/bench_finite.py
"""
from __future__ import annotations

import time

import numpy as np

from mcsim.config import config_from_dict
from mcsim.run.driver import BlockWorker
from mcsim.stats.accumulator import accumulator_layout
from mcsim.stats.finite import check_moments, check_samples

CASES = [
    ("markov w64 L10 k1", dict(width=64, depth=10, k=1, sampler="markov")),
    ("markov w16 L300 k1", dict(width=16, depth=300, k=1, sampler="markov")),
    ("markov w64 L10 k4", dict(width=64, depth=10, k=4, sampler="markov")),
    ("dense w64 L10 k2", dict(width=64, depth=10, k=2, sampler="dense")),
]


def config(width, depth, k, sampler):
    x = np.random.default_rng(0).standard_normal((k, 3)).tolist()
    return config_from_dict({
        "network": {"input_dim": 3, "width": width, "depth": depth, "activation": "tanh", "C_W": 1.5},
        "inputs": {"values": x},
        "ensemble": {"networks": 8192, "seed": 1, "block_size": 256, "jackknife_bins": 8, "sampler": sampler},
        "output": {"statistics": ["metric", "vertex", "six_point"]}})


def best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    print(f"{'case':<22} {'sample s':>9} {'scan s':>9} {'moments s':>9} {'mscan s':>9} {'checks %':>9}")
    for name, kw in CASES:
        cfg = config(**kw)
        worker = BlockWorker(cfg, accumulator_layout(cfg))
        n = 4
        out = np.empty((n, cfg.ensemble.block_size, cfg.network.depth - 1, worker.sampler.width))
        worker.sampler.sample(0, n, out)                    # compile
        check_samples(out, 0, worker.sampler.layout)
        t_sample = best(lambda: worker.sampler.sample(0, n, out))
        t_scan = best(lambda: check_samples(out, 0, worker.sampler.layout))
        Sr, M, T = len(worker.layers), worker.M, len(worker.triples)
        mean, m2, m3 = np.empty((n, Sr, M)), np.empty((n, Sr, M, M)), np.empty((n, Sr, T))
        mom = lambda: worker.block_moments(out, worker.layers, worker.columns, worker.triples,  # noqa: E731
                                           worker.order, mean, m2, m3)
        mom()
        t_mom = best(mom)
        arrays = {"mean": mean, "m2": m2, "m3": m3}
        t_mscan = best(lambda: check_moments(arrays, 0, cfg.stochastic_layers))
        pct = 100 * (t_scan + t_mscan) / (t_sample + t_mom)
        print(f"{name:<22} {t_sample:9.4f} {t_scan:9.5f} {t_mom:9.4f} {t_mscan:9.5f} {pct:8.2f}%")


if __name__ == "__main__":
    main()
