"""The simulation driver: blocks, rounds, checkpoints, signals, resume.

Work is cut into blocks of `ensemble.block_size` networks; block b's random numbers are keyed
by (root seed, b) only. The driver runs in *rounds*: the root picks how many blocks each rank
computes (adapted so a round takes about a second), every rank samples its consecutive
blocks and reduces each to a moment state, and the root gathers the states and merges them
in block order. Hence the result is bitwise the same for any number of ranks and threads.

The root checkpoints the output file every `output.checkpoint_interval` seconds (atomic
rename), and at once on SIGTERM / SIGINT / SIGUSR1, after which `simulate` raises
`Interrupted` (the CLI exits with status 75). Running again on the file resumes; asking for
more networks extends it.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from .accumulator import BinnedMoments
from .activations import get_activation
from .config import Config
from .estimators import deterministic_layer, layer_statistics
from .hdf5io import read_run, remove_stale_temporaries, write_run
from .indexing import triples as triples_table
from .parallel import get_comm
from .progress import Progress
from .signals import StopFlag
from .results import Result, layer_estimates

log = logging.getLogger("mcsim")

EXIT_INTERRUPTED = 75           # stopped early with a valid checkpoint: run again to resume
ROUND_SECONDS = 1.0             # target duration of one round of blocks
SAMPLE_BUFFER_BYTES = 32 << 20  # cap on the per-call sample buffer (memory flat in N)
WEIGHT_CODES = {"gaussian": 0, "uniform": 1, "rademacher": 2}


class Interrupted(Exception):
    """The run stopped on a signal after writing a checkpoint."""

    def __init__(self, path, networks: int, signame: str):
        super().__init__(f"stopped by {signame} after {networks:,} networks; checkpoint in {path}; "
                         "run the same command again to resume")
        self.path, self.networks, self.signame = path, networks, signame


class ResumeError(ValueError):
    """The existing output file belongs to a different ensemble; it was left unchanged."""


# ---------------------------------------------------------------------------------------
def layer_one_gram(cfg: Config) -> np.ndarray:
    """Ghat^(1) = C_b^(1) + C_W^(1)/n_0 x x^T, (k, k)."""
    x = np.asarray(cfg.inputs)
    return cfg.network.C_b[0] + cfg.network.C_W[0] / cfg.network.input_dim * (x @ x.T)


def stochastic_layers(cfg: Config) -> list[int]:
    return [l for l in cfg.layers if l >= 2]


def new_accumulator(cfg: Config) -> BinnedMoments:
    order = 3 if "six_point" in cfg.output.statistics else 2
    return BinnedMoments(cfg.ensemble.jackknife_bins, len(stochastic_layers(cfg)),
                         cfg.k * (cfg.k + 1) // 2, order, cfg.ensemble.block_size,
                         cfg.ensemble.first_block)


def first_difference(a: dict, b: dict, prefix: str = "") -> str | None:
    """Dotted name of the first setting that differs between two nested dicts."""
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            found = first_difference(va, vb, f"{prefix}{key}.")
            if found:
                return found
        elif va != vb:
            return f"{prefix}{key}"
    return None


def check_compatible(cfg: Config, other: Config, what: str) -> None:
    diff = first_difference(cfg.fingerprint(), other.fingerprint())
    if diff:
        raise ResumeError(f"{what} was made with a different {diff}; refusing to mix ensembles "
                          "(the file is unchanged; use --force to overwrite it or another --output)")


# ---------------------------------------------------------------------------------------
class BlockSampler:
    """Samples consecutive blocks and reduces each to its moment state (one rank's work)."""

    def __init__(self, cfg: Config):
        from .kernels import dense, markov, moments, rng
        self.cfg = cfg
        net = cfg.network
        act = get_activation(net.activation)
        self.key = rng.seed_key(cfg.ensemble.seed)
        self.args = (np.ascontiguousarray(cfg.inputs), np.asarray(net.widths, dtype=np.int64),
                     np.asarray(net.C_W), np.asarray(net.C_b), np.int64(act.code), np.float64(act.param))
        self.dense = cfg.ensemble.sampler == "dense"
        self.sample = dense.sample_dense if self.dense else markov.sample_markov
        self.weight_code = np.int64(WEIGHT_CODES[cfg.ensemble.weights])
        self.block_moments = moments.block_moments
        self.bs = cfg.ensemble.block_size
        self.k, self.m = cfg.k, cfg.k * (cfg.k + 1) // 2
        self.S = net.depth - 1
        self.layers = np.asarray([l - 2 for l in stochastic_layers(cfg)], dtype=np.int64)
        self.order = 3 if "six_point" in cfg.output.statistics else 2
        self.triples = triples_table(self.m) if self.order == 3 else np.zeros((0, 3), dtype=np.int64)
        per_block = self.bs * max(self.S, 1) * self.m * 8
        self.chunk = max(1, SAMPLE_BUFFER_BYTES // per_block)
        self._buffer = None

    def run(self, first: int, n: int):
        """Moment states of blocks first..first+n-1: mean (n, Sr, m), m2 (n, Sr, m, m), m3 (n, Sr, T)."""
        Sr, m, T = len(self.layers), self.m, len(self.triples)
        mean, m2, m3 = np.empty((n, Sr, m)), np.empty((n, Sr, m, m)), np.empty((n, Sr, T))
        for c0 in range(0, n, self.chunk):
            cn = min(self.chunk, n - c0)
            if self._buffer is None or self._buffer.shape[0] < cn:
                self._buffer = np.empty((min(self.chunk, n), self.bs, self.S, m))
            out = self._buffer[:cn]
            if self.dense:
                self.sample(self.key, np.uint64(first + c0), cn, self.bs, *self.args, self.weight_code, out)
            else:
                self.sample(self.key, np.uint64(first + c0), cn, self.bs, *self.args, out)
            self.block_moments(out, self.layers, self.triples, self.order,
                               mean[c0:c0 + cn], m2[c0:c0 + cn], m3[c0:c0 + cn])
        return mean, m2, m3


# ---------------------------------------------------------------------------------------
def compute_estimates(cfg: Config, acc: BinnedMoments) -> dict[int, dict]:
    """{l: {stat: (mean, stderr)}} for every recorded layer."""
    six = "six_point" in cfg.output.statistics
    out = {}
    if 1 in cfg.layers:
        out[1] = deterministic_layer(layer_one_gram(cfg), six)
    layers = stochastic_layers(cfg)
    if layers and acc.networks > 0:
        stats = layer_statistics(acc, [cfg.network.fan_in(l) for l in layers], cfg.k)
        for i, l in enumerate(layers):
            out[l] = {name: (mean[i], err[i]) for name, (mean, err) in stats.items()}
    for l, stats in out.items():
        if "vertex" not in cfg.output.statistics:
            stats.pop("vertex", None)
    return out


def build_result(cfg: Config, estimates: dict, attrs: dict, path=None) -> Result:
    net = cfg.network
    layers = {}
    for l, stats in estimates.items():
        stats = dict(stats)
        if "vertex" not in stats:       # kept in Result for shape uniformity, but not stored
            k = cfg.k
            stats["vertex"] = (np.full((k,) * 4, np.nan), np.full((k,) * 4, np.nan))
        layers[l] = layer_estimates(l, net.widths[l - 1], net.fan_in(l), l > 1, stats)
    return Result(cfg, int(attrs.get("networks", 0)), layers, attrs, str(path) if path else None)


def simulate(cfg: Config, *, output=None, threads: int | None = None, progress: str | None = None,
             force: bool = False, comm=None) -> Result | None:
    """Sample the ensemble of `cfg`, return the Result (on the root rank; None elsewhere).

    output: HDF5 path, or None to keep the result in memory only (the CLI passes
    cfg.output.path). An existing
    compatible file is resumed or extended; an incompatible one raises ResumeError unless
    force. threads: Numba threads per rank. progress: "bar", "log", "off" or None (auto)."""
    comm = comm or get_comm()
    if threads:
        from .kernels.jit import set_threads
        set_threads(int(threads))
    path = Path(output) if output else None
    state = None
    if comm.is_root:
        try:
            state = _root_setup(cfg, path, force)
            state["ranks"] = comm.size
        except Exception as exc:             # tell the other ranks, then raise here
            comm.bcast(("error", str(exc)))
            raise
    status, start_block = comm.bcast(("ok", state["start_block"]) if comm.is_root else None)
    if status == "error":                    # the root reports the error
        raise SystemExit(1)

    total = cfg.ensemble.blocks
    sampler = BlockSampler(cfg)
    bs = cfg.ensemble.block_size
    prog = Progress(total * bs, start_block * bs, mode=progress) if comm.is_root else None
    next_block, per_rank = start_block, 1
    last_checkpoint = session_start = time.monotonic()
    interval = cfg.output.checkpoint_interval
    stop_signal = None
    timing = {"sampling": 0.0, "reduction": 0.0, "checkpoint": 0.0}   # root, this session
    if comm.is_root:
        state["timing"] = timing
    with StopFlag() as flag:
        while True:
            t_reduce = time.monotonic()
            plan = comm.bcast((per_rank, stop_signal) if comm.is_root else None)
            per_rank, stop_signal = plan
            timing["reduction"] += time.monotonic() - t_reduce   # the plan broadcast
            if stop_signal or next_block >= total:
                break
            first = next_block + comm.rank * per_rank
            n = max(0, min(per_rank, total - first))
            t0 = time.monotonic()
            states = sampler.run(cfg.ensemble.first_block + first, n) if n else None
            dt = time.monotonic() - t0
            timing["sampling"] += dt
            t_reduce_0 = time.monotonic()
            gathered = comm.gather((first, n, states, flag.signame, dt))
            next_block = min(total, next_block + comm.size * per_rank)
            if comm.is_root:
                acc = state["acc"]
                for g_first, g_n, g_states, g_sig, _ in sorted(gathered, key=lambda g: g[0]):
                    if g_n:
                        acc.add_blocks(cfg.ensemble.first_block + g_first, *g_states)
                    stop_signal = stop_signal or g_sig
                # adapt the round so that it lasts about ROUND_SECONDS (at most 4x change per round)
                if n:
                    target = min(ROUND_SECONDS, interval / 2)
                    per_rank = int(min(4 * per_rank, max(1, per_rank * target / max(dt, 1e-6))))
                prog.update(acc.blocks * bs)
                now = time.monotonic()
                timing["reduction"] += now - t_reduce_0           # gather (incl. waiting) + merge
                if path and now - last_checkpoint >= interval and acc.blocks < total and not stop_signal:
                    _checkpoint(cfg, path, state, now - session_start, complete=False)
                    last_checkpoint = time.monotonic()
                    timing["checkpoint"] += last_checkpoint - now
    if not comm.is_root:
        comm.barrier()          # the root's final write is done: only now may this rank exit
        if stop_signal:
            raise Interrupted(path, next_block * bs, stop_signal)
        return None
    prog.close()
    acc = state["acc"]
    elapsed = time.monotonic() - session_start
    complete = acc.blocks >= total
    t_final = time.monotonic()
    estimates, attrs = _finish_attrs(cfg, state, elapsed, complete)
    if path:
        write_run(path, cfg, acc, estimates, attrs, stochastic_layers(cfg))
    timing["checkpoint"] += time.monotonic() - t_final
    comm.barrier()              # (a rank exiting early could make srun kill this write)
    if stop_signal and not complete:
        raise Interrupted(path, acc.networks, stop_signal)
    return build_result(cfg, estimates, attrs, path)


def _root_setup(cfg: Config, path, force: bool) -> dict:
    acc, runtime, created = None, 0.0, None
    if path is not None:
        remove_stale_temporaries(path)
    if path is not None and path.exists() and not force:
        existing = read_run(path)
        check_compatible(cfg, existing.config, f"existing output {path}")
        if existing.attrs.get("merged"):
            raise ResumeError(f"{path} is the output of mcsim merge and cannot be resumed or "
                              "extended; run a new block range or seed and merge again")
        acc = existing.accumulator
        runtime = float(existing.attrs.get("runtime_seconds", 0.0))
        created = existing.attrs.get("created")
        if acc is None:
            raise ResumeError(f"{path} holds no accumulator state; cannot resume (use --force)")
        if acc.blocks > cfg.ensemble.blocks:
            raise ResumeError(f"{path} already holds {acc.networks:,} networks, more than the "
                              f"{cfg.ensemble.blocks * cfg.ensemble.block_size:,} requested; "
                              "the file is unchanged (ask for at least as many networks)")
        if acc.blocks == cfg.ensemble.blocks:
            log.info("%s is already complete (%s networks); nothing to do", path, f"{acc.networks:,}")
        else:
            log.info("resuming %s at %s of %s networks", path, f"{acc.networks:,}",
                     f"{cfg.ensemble.blocks * cfg.ensemble.block_size:,}")
    requested = cfg.ensemble.blocks * cfg.ensemble.block_size
    if requested != cfg.ensemble.networks:
        log.info("rounding %s networks up to %s (whole blocks of %d)", f"{cfg.ensemble.networks:,}",
                 f"{requested:,}", cfg.ensemble.block_size)
    state = {"acc": acc or new_accumulator(cfg), "runtime_before": runtime, "created": created,
             "start_block": 0}
    state["start_block"] = state["acc"].blocks
    if path is not None and acc is None:
        # write the empty file first: an unwritable location fails now, not after the work
        _checkpoint(cfg, path, state, 0.0, complete=False)
    return state


def _finish_attrs(cfg: Config, state: dict, elapsed: float, complete: bool):
    acc = state["acc"]
    runtime = state["runtime_before"] + elapsed
    done_now = (acc.blocks - state["start_block"]) * cfg.ensemble.block_size
    attrs = {"networks": acc.networks,
             "networks_requested": cfg.ensemble.blocks * cfg.ensemble.block_size,
             "complete": bool(complete), "blocks": acc.blocks,
             "runtime_seconds": runtime,
             "networks_per_second": done_now / elapsed if elapsed > 0 and done_now else
             (acc.networks / runtime if runtime > 0 else 0.0),
             "ranks": state.get("ranks", 1)}
    if state.get("created"):
        attrs["created"] = state["created"]
    for name, seconds in state.get("timing", {}).items():    # this session, root rank
        attrs[f"session_seconds_{name}"] = seconds
    attrs["session_seconds"] = elapsed
    return compute_estimates(cfg, acc), attrs


def _checkpoint(cfg, path, state, elapsed, complete):
    estimates, attrs = _finish_attrs(cfg, state, elapsed, complete)
    write_run(path, cfg, state["acc"], estimates, attrs, stochastic_layers(cfg))
