"""Benchmark of the moment kernel (``moments.block_moments``) at 1 and 2 threads.

    python benchmarks/bench_moments.py [--quick] [--no-write]

The case the threads are for: k = 8 inputs with six-point statistics, i.e. m = 36 pair
columns and T = 8,436 third moments per layer, blocks of 256 networks (the default block
size), 4 blocks x 3 layers per call (a driver chunk, ~9 ms on one thread), and the same
with 1 block x 2 layers per call ("short call", ~1.5 ms). Times in microseconds per
network-layer, all cases and both thread counts alternating (round robin), the minimum over
the repeats quoted: other processes share the cores. A trivially parallel kernel
(``_calibrate``: independent sums, no memory traffic) measures how much of a second core the
machine gives right now, once as short as the short call and once as long as the full call
("calibration, long"): on a shared machine a 2-thread call gets both cores only while no
other process needs one, which a 1 ms call finds far more often than a 10 ms call, so each
speed-up is to be read against the calibration of its own length. The serial kernel
from before (``moments_before.py``; its "2 threads" entry is the same serial code) are
timed in the same round robin. Writes ``results/moments.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # siblings, also when imported

import numba  # noqa: E402
import numpy as np  # noqa: E402
from _timing import machine_info, write_json  # noqa: E402

import moments_before  # noqa: E402

from mcsim.kernels import moments  # noqa: E402
from mcsim.kernels.jit import parallel_kernel, set_threads, threading_layer  # noqa: E402
from mcsim.stats import indexing  # noqa: E402


@parallel_kernel(cache=False)
def _calibrate(x, out):
    # out[i] = sum_j (x_j + i)^2: compute-bound, no shared writes, perfectly parallel
    for i in numba.prange(out.shape[0]):
        s = 0.0
        for j in range(x.shape[0]):
            v = x[j] + i
            s += v * v
        out[i] = s


def bench(quick: bool) -> dict:
    k, n_blocks, block_size, S = 8, 4, 256, 3
    m = k * (k + 1) // 2
    tr = indexing.triples(m)
    x = 1.0 + np.random.default_rng(3).standard_normal((n_blocks, block_size, S, m))
    layers = np.arange(S, dtype=np.int64)
    columns = np.arange(m, dtype=np.int64)
    xs = np.ascontiguousarray(x[:1])                     # the short call: 1 block x 2 layers
    layers_s = layers[:2]
    per = n_blocks * block_size * S
    per_s = block_size * len(layers_s)

    def outputs(nb, sr):
        return np.empty((nb, sr, m)), np.empty((nb, sr, m, m)), np.empty((nb, sr, len(tr)))

    full = {name: outputs(n_blocks, S) for name in ("new", "before")}
    short = {"new": outputs(1, len(layers_s))}
    xc = np.random.default_rng(4).standard_normal(200_000)
    cal, cal_long = np.empty(64), np.empty(512)
    repeats = 8 if quick else 40
    cases = {
        "block_moments": (lambda: moments.block_moments(x, layers, columns, tr, 3, *full["new"]),
                          1e6 / per),
        "calibration, long": (lambda: _calibrate(xc, cal_long), 1e3),
        "block_moments, short call": (
            lambda: moments.block_moments(xs, layers_s, columns, tr, 3, *short["new"]), 1e6 / per_s),
        "calibration": (lambda: _calibrate(xc, cal), 1e3),
        "serial before": (lambda: moments_before.block_moments(x, layers, columns, tr, 3,
                                                               *full["before"]), 1e6 / per),
    }
    units = {"calibration": "ms per call", "calibration, long": "ms per call"}
    threads = (1, 2)
    best = {(c, t): float("inf") for c in cases for t in threads}
    results = {}
    for t in threads:                                   # compile / warm up
        set_threads(t)
        for fn, _ in cases.values():
            fn()
    bits = {}
    for _ in range(repeats):
        for t in threads:
            set_threads(t)
            for c, (fn, scale) in cases.items():
                t0 = time.perf_counter()
                fn()
                best[c, t] = min(best[c, t], (time.perf_counter() - t0) * scale)
            bits[t] = [a.copy() for a in full["new"] + short["new"]]
    same = all(np.array_equal(a, b) for a, b in zip(bits[1], bits[2]))
    for c in cases:
        results[c] = {f"{t} thread(s)": best[c, t] for t in threads}
        results[c]["speed-up"] = best[c, 1] / best[c, 2]
        results[c]["unit"] = units.get(c, "us per network-layer")
    results["block_moments"]["1 thread / serial before"] = (best["block_moments", 1]
                                                            / best["serial before", 1])
    return {"machine": machine_info(), "threading_layer": threading_layer(),
            "k": k, "m": m, "T": len(tr), "block_size": block_size,
            "calls": {"full": f"{n_blocks} blocks x {S} layers",
                      "short": f"1 block x {len(layers_s)} layers"},
            "repeats": repeats, "same_bits_1_and_2_threads": same,
            "results": results}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if numba.config.NUMBA_NUM_THREADS < 2:
        print("needs NUMBA_NUM_THREADS >= 2")
        return 2
    res = bench(args.quick)
    for c, r in res["results"].items():
        print(f"{c:<26s} 1 thread {r['1 thread(s)']:8.3f}  2 threads {r['2 thread(s)']:8.3f} "
              f" {r['unit']}   speed-up {r['speed-up']:.2f}")
    print(f"same bits at 1 and 2 threads: {res['same_bits_1_and_2_threads']}")
    print(f"block_moments 1 thread / serial before: "
          f"{res['results']['block_moments']['1 thread / serial before']:.2f}")
    if not args.no_write:
        print(f"wrote {write_json('moments', res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
