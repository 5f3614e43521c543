"""Benchmark of the smooth activations erf and GELU: nanoseconds per element, per ISA.

    python benchmarks/bench_activations.py [--quick] [--no-write] [--tag TAG]

For each target (the host's own build, AVX-512 where the host has it, and AVX2: Haswell
features, see ``tests/isa.py``) a worker subprocess compiles for that target, with its own
Numba cache in a temporary directory, and times, on one thread and a 2^16 buffer of N(0, 1.5^2) values:

- after:  ``activations.activate`` / ``activate_derivative`` in place (what markov runs) and
          plain loops over ``vmath.erf`` / ``vmath.erfc``;
- before: the same loops over the fdlibm erf / erfc of ``activations_before.py`` (the code
          before issue 12), over round two's erf / erfc / gelu (``activations_round2.py``,
          issue 12's first own fits) and over round three's (``activations_round3.py``), so
          fdlibm / round two / round three / round four (after) are measured in one run.

The figure quoted is the minimum over the repeats (the machine is shared: the median moves
with other load, the minimum much less). Prints a table and writes
``results/activations.json`` (``results/activations-TAG.json`` with ``--tag``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))                          # siblings, also when imported
sys.path.insert(0, str(HERE.parent / "tests"))         # isa.py: the target environments

from _timing import format_row, machine_info, time_per_item, write_json  # noqa: E402
from isa import (AVX512_FEATURES, HASWELL_FEATURES, host_env, host_has_avx512,  # noqa: E402
                 target_env)

#: (label, after, before): the before / after pairs of the summary
RATIOS = (("erf", "vmath.erf loop (after)", "fdlibm erf loop (before)"),
          ("erfc", "vmath.erfc loop (after)", "fdlibm erfc loop (before)"),
          ("gelu", "gelu value loop (after)", "fdlibm gelu loop (before)"),
          ("erf vs round two", "vmath.erf loop (after)", "round-two erf loop (before)"),
          ("erfc vs round two", "vmath.erfc loop (after)", "round-two erfc loop (before)"),
          ("gelu vs round two", "gelu value loop (after)", "round-two gelu loop (before)"),
          ("erf vs round three", "vmath.erf loop (after)", "round-three erf loop (before)"),
          ("erfc vs round three", "vmath.erfc loop (after)", "round-three erfc loop (before)"),
          ("gelu vs round three", "gelu value loop (after)", "round-three gelu loop (before)"))

#: "host": the build mcsim itself runs here (this CPU's name and features). The fixed
#: "avx512" target (Skylake-SP) compiles to 256-bit vectors (LLVM prefers ymm for that CPU);
#: a host build for Zen 4 / Zen 5 uses zmm
TARGETS = {"host": None, "avx512": ("skylake-avx512", AVX512_FEATURES),
           "avx2": ("haswell", HASWELL_FEATURES)}


def worker(quick: bool) -> dict:
    """Times in this process (compiled for whatever target its environment names)."""
    import numpy as np

    import activations_before as before
    import activations_round2 as round2
    import activations_round3 as round3
    from mcsim.kernels import activations as K
    from mcsim.kernels import vmath
    from mcsim.kernels.jit import inline, kernel, set_threads

    set_threads(1)

    def loop(f):
        @kernel(cache=False)
        def run(src, dst):
            for i in range(src.shape[0]):
                dst[i] = f(src[i])
        return run

    n = 1 << 16
    repeats = 15 if quick else 101
    x = np.random.default_rng(7).standard_normal(n) * 1.5
    buf = np.empty_like(x)
    cases = {
        "erf value, activate (after)": lambda: K.activate(K.ERF, 0.0, x, buf),
        "gelu value, activate (after)": lambda: K.activate(K.GELU, 0.0, x, buf),
        "gelu derivative, activate (after)": lambda: K.activate_derivative(K.GELU, 0.0, x, buf),
        "erf derivative, activate (unchanged)":
            lambda: K.activate_derivative(K.ERF, 0.0, x, buf),
    }
    @inline
    def gelu_after(v):
        return K.gelu(v, 0.0)

    loops = {"vmath.erf loop (after)": vmath.erf, "vmath.erfc loop (after)": vmath.erfc,
             "gelu value loop (after)": gelu_after,
             "fdlibm erf loop (before)": before.erf, "fdlibm erfc loop (before)": before.erfc,
             "fdlibm gelu loop (before)": before.gelu,
             "round-two erf loop (before)": round2.erf,
             "round-two erfc loop (before)": round2.erfc,
             "round-two gelu loop (before)": round2.gelu,
             "round-three erf loop (before)": round3.erf,
             "round-three erfc loop (before)": round3.erfc,
             "round-three gelu loop (before)": round3.gelu}
    for name, f in loops.items():
        fn = loop(f)
        cases[name] = (lambda fn=fn: fn(x, buf))
    for fn in cases.values():
        fn()                                            # compile (not timed)
    # round robin: each repeat times every case once, so that a burst of load from another
    # process hits before and after alike
    samples = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            samples[name].append(time_per_item(fn, n, 1, warmup=0)["min"])
    results = {}
    for name, ns in samples.items():
        ns.sort()
        results[name] = {"median": ns[len(ns) // 2], "min": ns[0], "max": ns[-1],
                         "repeats": repeats, "items": n}
    return {"machine": machine_info(), "buffer": n, "results": results}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (~10 s per target)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--tag", default="", help="suffix of the results file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.quick)))
        return 0
    targets = [t for t in TARGETS if t != "avx512" or host_has_avx512()]
    payload = {}
    with tempfile.TemporaryDirectory() as tmp:
        for target in targets:
            if TARGETS[target] is None:
                env = host_env(Path(tmp) / target)
            else:
                cpu, feats = TARGETS[target]
                env = target_env(cpu, feats, Path(tmp) / target)
            cmd = [sys.executable, __file__, "--worker"] + (["--quick"] if args.quick else [])
            done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            payload[target] = json.loads(done.stdout.strip().splitlines()[-1])
    for target, res in payload.items():
        r = res["results"]
        print(f"\n{target} (ns per element; the minimum of the repeats is the figure quoted)")
        for name, stats in r.items():
            print(format_row(name, stats) + f"   best {stats['min']:.2f}")
        for what, after, before in RATIOS:
            print(f"  {what}: after / before = {r[after]['min'] / r[before]['min']:.2f}")
    if not args.no_write:
        path = write_json("activations" + (f"-{args.tag}" if args.tag else ""), payload)
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    sys.exit(main())
