"""Cost of the dNTK kernels per network against the NTK-only kernels (one thread).

    python benchmarks/bench_dntk.py [--widths 64 256] [--ks 1 2 4] [--depth 4] [--repeat 3]

Dense (NTK, dNTK) and markov (NTK, dNTK) on the same ensemble (tanh, C_W = 1, equal widths,
depth L); every layer 2..L recorded (one backward pass per recorded layer, as a run with all
layers does) and, separately, only the output layer. Prints networks/s of each (the minimum
time of ``--repeat`` calls; timings on a shared machine are noisy: compare within one run).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from mcsim.kernels import dntk_dense, dntk_markov, jit, ntk_common, ntk_dense, ntk_markov, rng
    jit.set_threads(1)
    L = args.depth
    key = rng.seed_key(1)
    print(f"{'n':>5} {'k':>2} {'layers':>7} {'dense ntk':>10} {'dense dntk':>11} "
          f"{'markov ntk':>11} {'markov dntk':>12}   networks/s")
    for n in args.widths:
        for k in args.ks:
            x = np.random.default_rng(0).standard_normal((k, n))
            widths = np.full(L, n, dtype=np.int64)
            cw, cb = np.ones(L), np.full(L, 0.1)
            lam = np.ones(L)
            act = (np.int64(3), np.float64(0.0))
            dense_code = (np.int64(0),)
            for label, flags in (("all", np.ones(L - 1, dtype=np.int64)),
                                 ("output", np.r_[np.zeros(L - 2), 1].astype(np.int64))):
                rates = []
                for fn, width, extra, cost in (
                        (ntk_dense.sample_dense_ntk, ntk_common.ntk_width(k), dense_code, n * n * 2 * k),
                        (dntk_dense.sample_dense_dntk, ntk_common.ntk_width(k) + dntk_dense.dntk_width(k),
                         dense_code, n * n * 6 * k * k),
                        (ntk_markov.sample_markov_ntk, ntk_common.ntk_width(k), (), n * 8 * k * k),
                        (dntk_markov.sample_markov_dntk, ntk_common.ntk_width(k) + dntk_dense.dntk_width(k),
                         (), n * 40 * k ** 4)):
                    block = max(4, min(20000, int(2e7 // (cost * L))))
                    out = np.empty((1, block, L - 1, width))
                    call = lambda: fn(key, np.uint64(0), 1, block, x, widths, cw, cb,  # noqa: E731
                                      *act, *extra, lam, lam, flags, out)
                    call()
                    best = min(_timed(call) for _ in range(args.repeat))
                    rates.append(block / best)
                print(f"{n:>5} {k:>2} {label:>7} " + " ".join(f"{r:>11.0f}" for r in rates))


def _timed(call):
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
