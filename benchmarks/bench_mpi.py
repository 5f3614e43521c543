"""Parallel efficiency of MPI ranks and the share of wall time in reductions and checkpoints.

Runs one ensemble with 1 and with 2 ranks (mpiexec from the MPICH wheel, one Numba thread
per rank) and reads the driver's own timers from the output files:
    efficiency = T(1 rank) / (2 * T(2 ranks))      (session wall time of the run)
    reduction share  = seconds in broadcasts, gathers (incl. waiting) and merges / wall
    checkpoint share = seconds writing periodic checkpoints (every 2 s here) / wall
Target (issue 4): reductions + checkpoints under 2% of wall time.

    python benchmarks/bench_mpi.py [--quick] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import h5py

BIN = Path(sys.executable).parent
CONFIG = """
[network]
input_dim = 2
width = {width}
depth = 10
activation = "relu"
C_W = 2.0
[inputs]
values = [[1.0, 0.0], [0.6, 0.8]]
[ensemble]
networks = {networks}
seed = 1
[output]
statistics = ["metric", "vertex", "six_point"]
checkpoint_interval = 2.0   # more often than the default 10 s: a conservative share
"""


def _run(ranks: int, cfg: Path, out: Path) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    cmd = [str(BIN / "mcsim"), "run", str(cfg), "-o", str(out), "--quiet", "--force"]
    if ranks > 1:
        cmd = [shutil.which("mpiexec", path=str(BIN)) or "mpiexec", "-n", str(ranks)] + cmd
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    wall = time.perf_counter() - t0
    with h5py.File(out, "r") as f:
        a = {k: float(f.attrs[k]) for k in f.attrs if str(k).startswith("session_seconds")}
        rate = float(f.attrs["networks_per_second"])
    return {"ranks": ranks, "process_wall_s": wall, "networks_per_second": rate, **a}


def bench_mpi(quick: bool = False) -> dict:
    width, networks = (128, 200_000) if quick else (256, 3_000_000)
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "bench.toml"
        cfg.write_text(textwrap.dedent(CONFIG.format(width=width, networks=networks)))
        _run(1, cfg, Path(d) / "warm.h5")                      # JIT cache warm-up
        one = _run(1, cfg, Path(d) / "one.h5")
        two = _run(2, cfg, Path(d) / "two.h5")
    eff = one["session_seconds"] / (2 * two["session_seconds"])
    result = {"width": width, "depth": 10, "k": 2, "networks": networks, "one_rank": one,
              "two_ranks": two, "parallel_efficiency": eff}
    for tag, r in (("one_rank", one), ("two_ranks", two)):
        wall = r["session_seconds"]
        result[f"{tag}_reduction_share"] = r["session_seconds_reduction"] / wall
        result[f"{tag}_checkpoint_share"] = r["session_seconds_checkpoint"] / wall
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", help="write the result as JSON to this file")
    args = p.parse_args(argv)
    r = bench_mpi(args.quick)
    print(f"ensemble: n={r['width']}, L=10, k=2, relu, {r['networks']:,} networks, markov")
    for tag in ("one_rank", "two_ranks"):
        x = r[tag]
        print(f"{x['ranks']} rank(s): {x['session_seconds']:.2f} s sampling session, "
              f"{x['networks_per_second']:,.0f} networks/s, reductions {100 * r[tag + '_reduction_share']:.2f}%, "
              f"checkpoints {100 * r[tag + '_checkpoint_share']:.2f}% of wall")
    print(f"parallel efficiency, 2 ranks vs 1: {r['parallel_efficiency']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
