"""Benchmark of normal random numbers: nanoseconds per float64 normal.

    python benchmarks/bench_rng.py [--quick] [--no-write] [--tag TAG]

Times mcsim's ``rng.fill_normals`` (philox53: 1 and all threads; philox32), ``fill_uniforms``
and ``fill_signs``,
against numpy's Generator in bulk, Numba's ``np.random`` inside an ``@njit`` loop, and the
alternatives in ``rng_variants.py``. Prints a table and writes ``results/rng.json``
(``results/rng-TAG.json`` with ``--tag``, e.g. for a run with ``NUMBA_CPU_NAME=haswell
NUMBA_CPU_FEATURES=""``, which compiles for AVX2 only; give it its own NUMBA_CACHE_DIR).
Compilation happens in a warm-up call and is not timed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # siblings, also when imported

import numba  # noqa: E402
import numpy as np  # noqa: E402

import rng_variants as rv  # noqa: E402
from _timing import format_row, machine_info, time_per_item, write_json  # noqa: E402

from mcsim.kernels import rng  # noqa: E402
from mcsim.kernels.jit import set_threads, threading_layer  # noqa: E402


def bench_rng(quick: bool) -> dict:
    """Run the RNG benchmark; returns ``{"machine": ..., "threading_layer": ...,
    "buffer": n, "results": {name: {"median", "min", "max", "repeats", "items"}}}`` with
    times in ns per number. ``quick`` uses a smaller buffer and fewer repeats (~5 s)."""
    n = 1 << 18 if quick else 1 << 21
    repeats = 7 if quick else 21
    slow_n = n // 8  # the ~30-40 ns/number baselines get a shorter buffer
    out = np.empty(n)
    key = rng.seed_key(20240601)
    max_threads = numba.config.NUMBA_NUM_THREADS
    results: dict[str, dict] = {}

    def run(name, fn, items=n, reps=repeats):
        results[name] = time_per_item(fn, items, reps)

    old_threads = numba.get_num_threads()
    try:
        set_threads(1)
        run("mcsim fill_normals (Philox4x32-10, 1 thread)",
            lambda: rng.fill_normals(key, 7, 3, 0, out))
        key32 = rng.stream_key(20240601, "philox32")
        run("mcsim fill_normals, philox32 (32-bit words, float32 BM)",
            lambda: rng.fill_normals(key32, 7, 3, 0, out))
        run("alt: 32-bit words, float64 BM, Philox4x32-10",
            lambda: rv.w32_f64(key, 7, 3, out, False))
        run("alt: 32-bit words, float64 BM, Philox4x32-7",
            lambda: rv.w32_f64(key, 7, 3, out, True))
        run("alt: 32-bit words, float32 BM, Philox4x32-7",
            lambda: rv.w32_f32_rounds7(key, 7, 3, out))
        run("alt: 32-bit words, float32 BM, Threefry4x32-20",
            lambda: rv.threefry_w32_f32(key, 7, 3, out))
        run("mcsim fill_uniforms (per uniform)", lambda: rng.fill_uniforms(key, 7, 3, 0, out))
        run("mcsim fill_signs (per sign)", lambda: rng.fill_signs(key, 7, 3, 0, out))
        uniforms = np.random.default_rng(0).random(n)
        run("  its Box-Muller pass alone (per normal)",
            lambda: rv.box_muller_only(uniforms, out))
        short = np.empty(256)
        run("mcsim fill_normals, 256 per call from Python",
            lambda: [rng.fill_normals(key, 7, j, 0, short) for j in range(n // 256)])
        for threads in sorted({1, max_threads}):
            set_threads(threads)
            run(f"mcsim fill_normals, prange chunks, {threads} thread(s)",
                lambda: rv.fill_normals_parallel(key, 7, 3, out, 1 << 14))
        set_threads(1)

        gen = np.random.default_rng(1)
        run("numpy Generator.standard_normal (bulk)",
            lambda: gen.standard_normal(out=out))
        small = out[:slow_n]
        run("numba np.random.standard_normal() in njit loop",
            lambda: rv.numba_legacy_normals(small), items=slow_n)
        run("numba Generator.standard_normal() in njit loop",
            lambda: rv.numba_generator_normals(gen, small), items=slow_n)

        run("alt: Philox + libm log/cos/sin (scalar)",
            lambda: rv.philox_libm(key, 7, 3, 0, small), items=slow_n)
        run("alt: Philox + polar method (rejection)",
            lambda: rv.philox_polar(key, 7, 3, 0, small), items=slow_n)
        run("alt: Philox + own log/sincos, one fused loop",
            lambda: rv.philox_fused(key, 7, 3, 0, out))
        state = rv.xoshiro_state(16)
        run("alt: xoshiro256++ x16 lanes + same Box-Muller",
            lambda: rv.xoshiro_normals(state, out))
    finally:
        numba.set_num_threads(old_threads)

    return {
        "benchmark": "rng",
        "unit": "ns per number (float64)",
        "quick": quick,
        "buffer": n,
        "threading_layer": threading_layer(),
        "max_threads": max_threads,
        "machine": machine_info(),
        "results": results,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small buffer, few repeats")
    ap.add_argument("--no-write", action="store_true", help="do not write results/rng.json")
    ap.add_argument("--tag", help="write results/rng-TAG.json instead")
    args = ap.parse_args(argv)
    report = bench_rng(args.quick)
    m = report["machine"]
    print(f"{m['cpu']} ({m['llvm_cpu']}), {m['cores']} cores, numba {m['numba']}, "
          f"threading layer {report['threading_layer']}, buffer {report['buffer']}")
    for name, stats in report["results"].items():
        print(format_row(name, stats))
    if not args.no_write:
        print("wrote", write_json("rng" if not args.tag else f"rng-{args.tag}", report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
