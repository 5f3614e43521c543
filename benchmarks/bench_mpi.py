"""Parallel efficiency of MPI ranks and the share of wall time in reductions and checkpoints.

Runs one ensemble with 1 and with 2 ranks (mpiexec from the MPICH wheel, one Numba thread
per rank) and reads the driver's own timers from the output files:
    efficiency = T(1 rank) / (2 * T(2 ranks))      (session wall time of the run)
    reduction share  = seconds in broadcasts, gathers (incl. waiting) and merges / wall
    checkpoint share = seconds writing periodic checkpoints (every 2 s here) / wall
Target (issue 4): reductions + checkpoints under 2% of wall time.

Heterogeneous nodes: three ranks on the same two cores, two of them sharing core 0 and one
alone on core 1 (taskset per rank), against two ranks one per core: the same capacity, so
    heterogeneous efficiency = T(2 ranks, one per core) / T(3 ranks, 2 + 1 per core)
(target >= 0.95; with equal shares per round it was 0.73).

Scale model (docs/performance.md): per round of T seconds every rank samples T / t_b blocks
and then waits while the root merges them all, so
    efficiency(R) = 1 / (1 + R t_m / t_b)
with t_b the sampling time of one block and t_m the root's time per block (receive,
unpickle and merge its state); the root saturates at R* = t_b / t_m ranks.

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


def _run(ranks: int, cfg: Path, out: Path, cores: str | None = None, env_extra=None) -> dict:
    """cores: one core number per rank (e.g. "001": ranks 0 and 1 on core 0, rank 2 on 1)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="1", **(env_extra or {}))
    env.setdefault("UCX_TLS", "self,sm")          # one machine (see the README's MPI notes)
    cmd = [str(BIN / "mcsim"), "run", str(cfg), "-o", str(out), "--quiet", "--force"]
    if cores:
        pick = " ".join(f'[ "$PMI_RANK" = {r} ] && c={c};' for r, c in enumerate(cores))
        cmd = ["sh", "-c", f'c=0; {pick} exec taskset -c "$c" "$@"', "rank"] + cmd
    if ranks > 1:
        cmd = [shutil.which("mpiexec", path=str(BIN)) or "mpiexec", "-n", str(ranks)] + cmd
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    wall = time.perf_counter() - t0
    with h5py.File(out, "r") as f:
        a = {k: float(f.attrs[k]) for k in f.attrs if str(k).startswith("session_seconds")}
        rate = float(f.attrs["networks_per_second"])
        blocks = int(f.attrs["blocks"])
        shares = [int(b) for b in f.attrs.get("session_rank_blocks", [])]
        rank_eff = float(f.attrs.get("session_rank_efficiency", float("nan")))
        state_bytes = sum(f[f"accumulator/{k}"][0].nbytes for k in ("mean", "m2", "m3")
                          if f"accumulator/{k}" in f)
    return {"ranks": ranks, "process_wall_s": wall, "networks_per_second": rate, "blocks": blocks,
            "rank_blocks": shares, "rank_efficiency": rank_eff, "block_state_bytes": state_bytes, **a}


def root_costs(cfg_path: Path, blocks: int) -> dict:
    """The root's work per rank and round, measured in this process: unpickling one rank's
    gathered block states (what mpi4py's gather does) and merging them in block order."""
    import pickle

    from mcsim.config import load_config
    from mcsim.run.driver import BlockWorker
    from mcsim.stats.accumulator import accumulator_layout, new_accumulator
    cfg = load_config(cfg_path)
    worker = BlockWorker(cfg, accumulator_layout(cfg))
    states = worker.run(0, blocks)
    payload = pickle.dumps((0, blocks, states, None, 1.0), protocol=pickle.HIGHEST_PROTOCOL)
    acc, t_load, t_merge, reps = new_accumulator(cfg), 0.0, 0.0, 20
    acc.add_blocks(0, *states)                    # load the compiled merge kernel first
    for i in range(1, reps + 1):
        t0 = time.perf_counter()
        _, n, st, _, _ = pickle.loads(payload)
        t1 = time.perf_counter()
        acc.add_blocks(i * blocks, *st)
        t_load += t1 - t0
        t_merge += time.perf_counter() - t1
    return {"bytes_per_block": len(payload) / blocks, "unpickle_per_block_s": t_load / reps / blocks,
            "merge_per_block_s": t_merge / reps / blocks}


def scale_model(one: dict, root: dict, round_seconds: float = 1.0) -> dict:
    """Efficiency at 10^2..10^4 ranks from measured costs (see the docstring). The message
    cost is the bytes through the root at an assumed 5 GB/s (an InfiniBand link)."""
    t_b = one["session_seconds_sampling"] / one["blocks"]
    t_m = root["unpickle_per_block_s"] + root["merge_per_block_s"] + root["bytes_per_block"] / 5e9
    eff = {str(r): 1.0 / (1.0 + r * t_m / t_b) for r in (100, 1000, 10000)}
    return {"t_block_s": t_b, "t_root_per_block_s": t_m, **root,
            "root_saturates_at_ranks": t_b / t_m, "efficiency": eff}


def bench_mpi(quick: bool = False) -> dict:
    width, networks = (128, 200_000) if quick else (256, 3_000_000)
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "bench.toml"
        cfg.write_text(textwrap.dedent(CONFIG.format(width=width, networks=networks)))
        _run(1, cfg, Path(d) / "warm.h5")                      # JIT cache warm-up
        one = _run(1, cfg, Path(d) / "one.h5")
        two = _run(2, cfg, Path(d) / "two.h5", cores="01")
        three = _run(3, cfg, Path(d) / "three.h5", cores="001")
        # a rank that takes twice as long per block (test-only setting): with equal shares
        # every round waits for it (busy share (1 + 2) / (2 x 2) = 0.75)
        slowed = _run(2, cfg, Path(d) / "slowed.h5", cores="01",
                      env_extra={"MCSIM_TEST_SLOW_RANK": "1:2"})
        root = root_costs(cfg, 64)
    eff = one["session_seconds"] / (2 * two["session_seconds"])
    result = {"width": width, "depth": 10, "k": 2, "networks": networks, "one_rank": one,
              "two_ranks": two, "three_ranks_two_cores": three, "slowed_rank": slowed, "parallel_efficiency": eff,
              "heterogeneous_efficiency": two["session_seconds"] / three["session_seconds"],
              "model": scale_model(one, root)}
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
    h = r["three_ranks_two_cores"]
    print(f"heterogeneous: 3 ranks on 2 cores (2 + 1) vs 2 ranks on 2 cores: "
          f"{r['heterogeneous_efficiency']:.2f} of the capacity (blocks per rank {h['rank_blocks']}, "
          f"busy share {h['rank_efficiency']:.2f})")
    w = r["slowed_rank"]
    print(f"one of 2 ranks 2x slower per block: busy share {w['rank_efficiency']:.2f} (equal shares: 0.75; "
          f"homogeneous 2 ranks: {r['two_ranks']['rank_efficiency']:.2f}), blocks per rank {w['rank_blocks']}")
    m = r["model"]
    print(f"model: t_block {1e3 * m['t_block_s']:.2f} ms, root {1e6 * m['t_root_per_block_s']:.1f} us "
          f"per block ({m['bytes_per_block']:,.0f} bytes, unpickle {1e6 * m['unpickle_per_block_s']:.1f} us, "
          f"merge {1e6 * m['merge_per_block_s']:.1f} us); root saturates at ~{m['root_saturates_at_ranks']:,.0f} ranks; efficiency "
          + ", ".join(f"{k} ranks {v:.2f}" for k, v in m["efficiency"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
