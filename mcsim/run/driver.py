"""The simulation driver: blocks, rounds, checkpoints, signals, resume.

Work is cut into blocks of `ensemble.block_size` networks; block b's random numbers are keyed
by (root seed, b) only. The driver runs in *rounds*: the root gives each rank a share of
consecutive blocks, every rank samples its share with the configured sampler backend and
reduces each block to a moment state, and the root gathers the states and merges them in
block order. Hence the result is bitwise the same for any number of ranks and threads, and
for any shares.

Shares follow each rank's measured speed (`schedule.next_shares`): a rank on a slower node,
or one sharing its core, gets proportionally fewer blocks, so that every rank of a round
finishes at about the same time (the round lasts about ROUND_SECONDS) and nobody waits long
for a straggler; a rank that slows down mid-run gets less from the next round on.

The root checkpoints the output file every `output.checkpoint_interval` seconds (atomic
rename), and at once on SIGTERM / SIGINT / SIGUSR1, after which `simulate` raises
`Interrupted` (the CLI exits with status 75). Running again on the file resumes; asking for
more networks extends it; running again on a complete file changes nothing.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Interrupted, PeerFailed, ResumeError
from ..stats.accumulator import BinnedMoments, accumulator_layout, new_accumulator
from ..stats.estimators import compute_estimates
from ..stats.results import Result, build_result
from ..storage.hdf5 import remove_stale_temporaries, resolve_output, write_run
from ..storage.lock import OutputLock
from ..storage.reader import is_foreign, read_run
from ..config.compat import check_compatible, check_layout
from .parallel import get_comm
from .progress import Progress
from .schedule import RankTimes, next_shares, simulated_slowdown
from .sizes import check_run_size
from .signals import StopFlag
from .target import target_attrs, target_check
from .watchdog import Watchdog, watchdog_seconds
from .warmup import warm_up
from .worker import BlockWorker

log = logging.getLogger("mcsim")

ROUND_SECONDS = 1.0             # target duration of one round of blocks

__all__ = ["simulate", "RunState", "BlockWorker", "Interrupted", "ResumeError"]


@dataclass
class RunState:
    """The root rank's state of one run session."""
    acc: BinnedMoments
    start_block: int                        # blocks already in the accumulator at start
    runtime_before: float = 0.0             # sampling time of earlier sessions (seconds)
    created: str | None = None              # creation time of the file being resumed
    ranks: int = 1
    up_to_date: bool = False                # the existing file is complete: nothing to do
    stored_attrs: dict = field(default_factory=dict)   # the existing file's attributes
    sampler: str = ""                       # the backend that runs (a resume keeps the file's)
    generator: str = ""                     # the generator that runs (likewise)
    timing: dict = field(default_factory=lambda: {"sampling": 0.0, "reduction": 0.0, "checkpoint": 0.0})
    rank_times: object = None               # schedule.RankTimes of this session (root)
    training: BinnedMoments | None = None   # [training]: the trained networks' accumulator


def simulate(cfg, *, output=None, threads: int | None = None, progress: str | None = None,
             force: bool = False, comm=None, max_memory=None, watchdog=None) -> Result | None:
    """Sample the ensemble of `cfg`, return the Result (on the root rank; None elsewhere).

    output: HDF5 path, or None to keep the result in memory only (the CLI passes
    cfg.output.path). The root rank holds an exclusive lock on the output for the whole run
    (`storage.lock`): a second writer of the same file is refused (`OutputLocked`). A symbolic
    link as output is followed. An existing compatible file is resumed or extended (a
    complete one is left untouched); an incompatible one raises ResumeError unless force.
    threads: Numba threads per rank. progress: "bar", "log", "off" or None (auto).
    max_memory: the memory limit per process ("64G"; default MCSIM_MAX_MEMORY or 80 % of the
    machine's memory): a run estimated to need more is refused before allocating
    (`run.sizes`). watchdog: seconds (or MCSIM_WATCHDOG): every rank aborts the job when no
    round completes for max(watchdog, 20 x the longest round) (`run.watchdog`); off by default."""
    comm = comm or get_comm()
    dog = Watchdog(watchdog_seconds(watchdog), comm.rank, lambda: comm.abort(1),
                   lambda: f"Output: {output}. " if output else "")
    try:
        return _simulate_locked(cfg, output, threads, progress, force, comm, max_memory, dog)
    finally:
        dog.close()


def _simulate_locked(cfg, output, threads, progress, force, comm, max_memory, dog):
    if not comm.is_root:
        return _simulate(cfg, output=output, threads=threads, progress=progress, force=force, comm=comm,
                         dog=dog)
    lock = None
    try:
        if output:
            output = resolve_output(output)
        check_run_size(cfg, output, max_memory=max_memory, threads=threads)   # before allocating
        if output:
            lock = OutputLock(output, "mcsim run").acquire()
    except Exception as exc:                 # tell the other ranks, then raise here
        comm.bcast(("error", (str(exc), type(exc))))
        raise
    fresh = output is not None and (force or not Path(output).exists())
    try:
        return _simulate(cfg, output=output, threads=threads, progress=progress, force=force, comm=comm,
                         dog=dog)
    except BaseException as exc:
        if fresh and not isinstance(exc, Interrupted):
            _remove_if_empty(Path(output))  # a failed new run leaves no 0-network file behind
        raise
    finally:
        if lock is not None:
            lock.release()


def _remove_if_empty(path: Path) -> None:
    try:
        if path.exists() and read_run(path).accumulator.blocks == 0:
            path.unlink()
    except Exception:                        # never mask the original error
        pass


def _simulate(cfg, *, output=None, threads: int | None = None, progress: str | None = None,
              force: bool = False, comm=None, dog=None) -> Result | None:
    """The body of `simulate` (every rank; the root holds the output lock)."""
    comm = comm or get_comm()
    if threads:
        from ..kernels.jit import set_threads
        set_threads(int(threads))
    path = Path(output) if output else None
    state = None
    if comm.is_root:
        try:
            state = _root_setup(cfg, path, force)
            state.ranks = comm.size
        except Exception as exc:             # tell the other ranks, then raise here
            comm.bcast(("error", (str(exc), type(exc))))
            raise
    status, start = comm.bcast(("ok", (state.start_block, state.sampler, state.generator))
                               if comm.is_root else None)
    if status == "error":                    # the root reports the error
        message, cause = start
        raise PeerFailed(f"the root rank failed: {message}", cause)
    start_block, sampler, generator = start
    if sampler != cfg.ensemble.sampler:      # resumed with the sampler recorded in the file
        cfg = cfg.replace(sampler=sampler)
    if generator != cfg.ensemble.generator:  # ... and with its generator
        cfg = cfg.replace(generator=generator)

    total = cfg.ensemble.blocks
    layout = state.acc.layout if comm.is_root else accumulator_layout(cfg)
    worker = BlockWorker(cfg, layout)
    trainer = None
    if cfg.training is not None:
        from ..training.accumulate import TrainingWorker, add_training_blocks
        trainer = TrainingWorker(cfg)
    bs = cfg.ensemble.block_size
    if comm.is_root and state.up_to_date:
        total = start_block                 # complete (or met its target): nothing to sample
    idle = start_block >= total
    # compile (or load) the kernels before any clock starts: compile time is in no rate
    compile_seconds = 0.0 if idle else warm_up(cfg, announce=comm.is_root and progress != "off")
    prog = Progress(total * bs, start_block * bs, mode="off" if idle else progress) if comm.is_root else None
    reached = target_check(cfg, prog) if comm.is_root and not idle else None   # [ensemble] target
    last_target_check = time.monotonic()
    if reached is not None and reached(state.acc):
        total = state.acc.blocks            # met already (resumed file): nothing to sample
    next_block, shares = start_block, [1] * comm.size
    last_checkpoint = session_start = time.monotonic()
    interval = cfg.output.checkpoint_interval
    round_seconds = min(ROUND_SECONDS, interval / 2)
    stop_signal = None
    timing = state.timing if comm.is_root else {"sampling": 0.0, "reduction": 0.0, "checkpoint": 0.0}
    timing["compile"] = compile_seconds
    ranks = RankTimes(comm.size)                 # the root's record of every rank's work
    slowdown = simulated_slowdown(comm.rank)
    if comm.is_root:
        state.rank_times = ranks
    with StopFlag() as flag:
        while True:
            t_reduce = time.monotonic()
            plan = comm.bcast((shares, stop_signal, total) if comm.is_root else None)
            shares, stop_signal, total = plan       # total: the root may stop on its target
            if dog is not None:
                dog.beat()                          # a round completed on every rank
            timing["reduction"] += time.monotonic() - t_reduce   # the plan broadcast
            if stop_signal or next_block >= total:
                break
            first = next_block + sum(shares[:comm.rank])
            n = max(0, min(shares[comm.rank], total - first))
            t0 = time.monotonic()
            states = worker.run(cfg.ensemble.first_block + first, n) if n else None
            trained = trainer.run(cfg.ensemble.first_block + first, n) if n and trainer else None
            if slowdown > 1.0 and n:
                time.sleep((slowdown - 1.0) * (time.monotonic() - t0))   # a slower node, for tests
            dt = time.monotonic() - t0
            timing["sampling"] += dt
            t_reduce_0 = time.monotonic()
            gathered = comm.gather((first, n, states, flag.signame, dt, trained))
            next_block = min(total, next_block + sum(shares))
            if comm.is_root:
                acc = state.acc
                for g_first, g_n, g_states, g_sig, _, g_trained in sorted(gathered, key=lambda g: g[0]):
                    if g_n:
                        acc.add_blocks(cfg.ensemble.first_block + g_first, *g_states)
                        if trainer is not None:
                            add_training_blocks(state.training, cfg.ensemble.first_block + g_first, *g_trained)
                    stop_signal = stop_signal or g_sig
                ranks.record([(g[1], g[4]) for g in gathered], time.monotonic() - t_reduce)
                shares = next_shares(shares, [(g[1], g[4]) for g in gathered], round_seconds)
                prog.update(acc.blocks * bs)
                now = time.monotonic()
                timing["reduction"] += now - t_reduce_0           # gather (incl. waiting) + merge
                if reached is not None and now - last_target_check >= interval and acc.blocks < total:
                    last_target_check = now                       # on the checkpoint schedule
                    if reached(acc):
                        total = acc.blocks
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
    acc = state.acc
    elapsed = time.monotonic() - session_start
    complete = acc.blocks >= total
    t_final = time.monotonic()
    estimates, attrs = _finish_attrs(cfg, state, elapsed, complete)
    if state.up_to_date:
        attrs = state.stored_attrs          # nothing was done: the file is left as it is
    elif path:
        write_run(path, cfg, acc, estimates, attrs, training=state.training)
    timing["checkpoint"] += time.monotonic() - t_final
    comm.barrier()              # (a rank exiting early could make srun kill this write)
    if stop_signal and not complete:
        raise Interrupted(path, acc.networks, stop_signal)
    result = build_result(cfg, estimates, attrs, path)
    if state.training is not None:
        from ..training.accumulate import result_of
        result.training = result_of(cfg, state.training)
    result.written = bool(path) and not state.up_to_date
    return result


def _root_setup(cfg, path, force: bool) -> RunState:
    if path is not None:
        remove_stale_temporaries(path)
    requested = cfg.ensemble.blocks * cfg.ensemble.block_size
    if requested != cfg.ensemble.networks:
        log.info("rounding %s networks up to %s (whole blocks of %d)", f"{cfg.ensemble.networks:,}",
                 f"{requested:,}", cfg.ensemble.block_size)
    if path is None or not path.exists() or force:
        state = RunState(new_accumulator(cfg), start_block=0, sampler=cfg.ensemble.sampler,
                         generator=cfg.ensemble.generator)
        if cfg.training is not None:
            from ..training.accumulate import new_training_accumulator
            state.training = new_training_accumulator(cfg)
        if path is not None:
            # write the empty file first: an unwritable location fails now, not after the work
            _checkpoint(cfg, path, state, 0.0, complete=False)
        return state
    if is_foreign(path):
        raise ResumeError(f"{path} exists and is not an mcsim file (not HDF5, or HDF5 without "
                          "format = 'mcsim'); it is left unchanged: choose another output path, or "
                          "--force to overwrite it")
    existing = read_run(path)
    stored = existing.config.ensemble.sampler
    if cfg.ensemble.auto and stored != cfg.ensemble.sampler:
        # sampler = "auto" resumes a file with the backend that file was started with (a file
        # of an earlier version, or one whose backend "auto" no longer picks), bitwise
        log.info("resuming %s with its sampler %s (sampler = \"auto\")", path, stored)
        cfg = cfg.replace(sampler=stored)
    stored_gen = existing.config.ensemble.generator
    if cfg.ensemble.generator_auto and stored_gen != cfg.ensemble.generator:
        # no generator named: a file keeps the generator it was started with (a file of an
        # earlier version: philox53), so a resume or extension continues it bitwise
        log.info("resuming %s with its generator %s", path, stored_gen)
        cfg = cfg.replace(generator=stored_gen)
    check_compatible(cfg, existing.config, f"existing output {path}")
    if existing.attrs.get("merged"):
        raise ResumeError(f"{path} is the output of mcsim merge and cannot be resumed or "
                          "extended; run a new block range or seed and merge again")
    acc = existing.accumulator
    if acc is None:
        raise ResumeError(f"{path} holds no accumulator state; cannot resume (use --force)")
    check_layout(accumulator_layout(cfg), acc.layout, f"existing output {path}")
    if acc.blocks > cfg.ensemble.blocks:
        raise ResumeError(f"{path} already holds {acc.networks:,} networks, more than the "
                          f"{requested:,} requested; the file is unchanged (ask for at least as many networks)")
    if cfg.training is not None and (existing.training is None or existing.training.blocks != acc.blocks):
        raise ResumeError(f"{path} holds no /training accumulator matching its {acc.blocks} blocks; "
                          "cannot resume a [training] run from it (use --force)")
    state = RunState(acc, start_block=acc.blocks, sampler=cfg.ensemble.sampler,
                     generator=cfg.ensemble.generator,
                     runtime_before=float(existing.attrs.get("runtime_seconds", 0.0)),
                     created=existing.attrs.get("created"), stored_attrs=existing.attrs,
                     training=existing.training if cfg.training is not None else None)
    met = cfg.ensemble.target is not None and existing.attrs.get("target_reached") and \
        existing.attrs.get("target") == json.dumps(cfg.ensemble.target.to_dict())
    if existing.complete and (acc.blocks == cfg.ensemble.blocks or met):
        state.up_to_date = True
        log.info("%s is already complete (%s networks); nothing to do", path, f"{acc.networks:,}")
    else:
        log.info("resuming %s at %s of %s networks", path, f"{acc.networks:,}", f"{requested:,}")
    return state


def _finish_attrs(cfg, state: RunState, elapsed: float, complete: bool):
    acc = state.acc
    runtime = state.runtime_before + elapsed
    done_now = (acc.blocks - state.start_block) * cfg.ensemble.block_size
    attrs = {"networks": acc.networks,
             "networks_requested": cfg.ensemble.blocks * cfg.ensemble.block_size,
             "complete": bool(complete), "blocks": acc.blocks,
             "runtime_seconds": runtime,
             "networks_per_second": done_now / elapsed if elapsed > 0 and done_now else
             (acc.networks / runtime if runtime > 0 else 0.0),
             "ranks": state.ranks}
    if state.created:
        attrs["created"] = state.created
    estimates = compute_estimates(cfg, acc)
    attrs.update(target_attrs(cfg, acc, estimates))
    for name, seconds in state.timing.items():    # this session, root rank
        attrs[f"session_seconds_{name}"] = seconds
    attrs["session_seconds"] = elapsed
    if state.rank_times is not None:
        attrs.update(state.rank_times.attrs())
    return estimates, attrs


def _checkpoint(cfg, path, state: RunState, elapsed, complete):
    estimates, attrs = _finish_attrs(cfg, state, elapsed, complete)
    write_run(path, cfg, state.acc, estimates, attrs, training=state.training)
