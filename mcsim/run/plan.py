"""`mcsim plan`: how many networks, and how much time, a target error needs.

A short pilot samples the first blocks of the configured ensemble (the same random streams
as the run would use) for about ``pilot_seconds`` (and at least one block per jackknife
bin), measures the sampling rate of this process after the kernels are compiled, and
evaluates the target's standard error. Standard errors fall like 1/sqrt(N), so

    N_needed = N_pilot (err_pilot / err_target)^2,   wall time = N_needed / rate.

The pilot's error estimate comes from B jackknife bins and is itself uncertain by about
1/sqrt(2 (B - 1)) relative, which makes N_needed uncertain by about sqrt(2 / (B - 1))
(18% with the default 64 bins): `Plan.spread` says how much.

With a ``[training]`` section every network is also trained for ``training.steps`` steps, and
that usually dominates. The pilot trains its networks too and times the two parts apart, so

    wall time = N_needed t_sample + N_needed steps t_step

with t_sample the sampling seconds per network and t_step the training seconds per network and
step (``Plan.seconds_per_network_step``; network x steps is the training work,
``Plan.network_steps_needed``). ``Plan.size`` is the memory and file-size estimate of the
planned run (``run.sizes.estimate_run``, the /training accumulator included).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

__all__ = ["Plan", "plan"]


@dataclass(frozen=True)
class Plan:
    status: object               # TargetStatus of the pilot
    pilot_networks: int
    pilot_seconds: float         # sampling (and training) time of the pilot (compile excluded)
    compile_seconds: float
    rate: float                  # networks per second of this process
    networks_needed: float
    block_size: int
    cap: int                     # ensemble.networks of the config
    bins: int
    threads: int
    training_steps: int = 0      # [training] steps per network (0: no training)
    training_seconds: float = 0.0  # of pilot_seconds, the time spent training
    size: object = None          # run.sizes.RunSize of the planned run

    @property
    def sampling_seconds_per_network(self) -> float:
        return (self.pilot_seconds - self.training_seconds) / self.pilot_networks if self.pilot_networks else 0.0

    @property
    def seconds_per_network_step(self) -> float:
        """Training seconds per network and gradient-descent step (0 without [training])."""
        work = self.pilot_networks * self.training_steps
        return self.training_seconds / work if work else 0.0

    @property
    def network_steps_needed(self) -> float:
        """The training work of the planned run: networks x steps."""
        return self.networks_needed * self.training_steps

    @property
    def blocks_needed(self) -> int:
        return int(math.ceil(self.networks_needed / self.block_size)) if math.isfinite(self.networks_needed) else 0

    @property
    def seconds_needed(self) -> float:
        """Sampling plus training: N t_sample + (N x steps) t_step."""
        if not self.pilot_networks:
            return float("inf")
        return (self.networks_needed * self.sampling_seconds_per_network
                + self.network_steps_needed * self.seconds_per_network_step)

    @property
    def spread(self) -> float:
        """Relative uncertainty of networks_needed from the pilot's error estimate."""
        return math.sqrt(2.0 / max(self.bins - 1, 1))

    @property
    def error_at_cap(self) -> float:
        """The target's error expected with the config's `networks`."""
        return self.status.achieved * math.sqrt(self.pilot_networks / self.cap)

    def text(self) -> str:
        t = self.status.target
        kind = "relative standard error" if t.relative else "standard error"
        lines = [f"pilot: {self.pilot_networks:,} networks in {self.pilot_seconds:.1f} s of sampling, "
                 f"{self.rate:,.0f} networks/s in this process ({self.threads} thread"
                 f"{'s' if self.threads != 1 else ''}; compile and load time "
                 f"{self.compile_seconds:.1f} s not counted)",
                 f"target: {t.describe()}",
                 f"pilot:  {kind} {self.status.achieved:.3g} (worst entry {self.status.entry})"]
        need = self.networks_needed
        lines.append(f"needed: about {need:,.0f} networks ({self.blocks_needed:,} blocks of "
                     f"{self.block_size}; +-{100 * self.spread:.0f}% from the pilot's error estimate)"
                     + ("; the pilot already meets the target" if self.status.reached else ""))
        if self.training_steps:
            lines.append(f"time:   about {_duration(self.seconds_needed)} of sampling and training in one process "
                         f"like this one; R MPI ranks of the same speed take about 1/R of it")
            lines.append(f"        training: {self.network_steps_needed:,.0f} network x steps ({self.training_steps:,} "
                         f"steps per network) at {self.seconds_per_network_step:.3g} s each, "
                         f"{_duration(self.network_steps_needed * self.seconds_per_network_step)}; sampling "
                         f"{_duration(self.networks_needed * self.sampling_seconds_per_network)}")
        else:
            lines.append(f"time:   about {_duration(self.seconds_needed)} of sampling in one process like "
                         f"this one; R MPI ranks of the same speed take about 1/R of it")
        if self.size is not None:
            from ..limits import format_size
            lines.append(f"size:   about {format_size(self.size.memory)} of memory per process, an output file "
                         f"of about {format_size(self.size.file)}"
                         + (f" (/training: {format_size(self.size.parts['training'])} of memory)"
                            if "training" in self.size.parts else ""))
        lines.append(f"cap:    the config's networks = {self.cap:,} "
                     + (f"give about {self.error_at_cap:.3g}" if self.cap else "")
                     + ("" if self.cap >= self.networks_needed else
                        f"; raise it to at least {1.2 * self.networks_needed:,.0f} to meet the target"))
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "an unknown time"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plan(cfg, target=None, pilot_seconds: float = 3.0, threads: int | None = None,
         announce: bool = True) -> Plan:
    """Run a pilot of ``cfg`` and estimate what ``target`` (a Target or a table like
    ``{"statistic": "vertex", "layer": 10, "relative_stderr": 0.01}``; default: the config's
    ``ensemble.target``) needs. Samples in this process only; writes nothing."""
    from ..errors import ConfigError
    from ..kernels.jit import get_threads, set_threads
    from ..stats.accumulator import accumulator_layout, new_accumulator
    from .worker import BlockWorker
    from .target import evaluate_target, networks_needed
    from .warmup import warm_up
    if target is not None:
        cfg = cfg.replace(target=target)
    if cfg.ensemble.target is None:
        raise ConfigError("no target: give --target (e.g. statistic=vertex,layer=10,"
                          "relative_stderr=0.01) or [ensemble] target in the config")
    if threads:
        set_threads(int(threads))
    compile_seconds = warm_up(cfg, announce=announce)
    layout = accumulator_layout(cfg)
    worker = BlockWorker(cfg, layout)
    trainer = None
    if cfg.training is not None:                # every network is trained too: time it apart
        from ..training.accumulate import TrainingWorker
        trainer = TrainingWorker(cfg)
    acc = new_accumulator(cfg)
    ens = cfg.ensemble
    cap_blocks = ens.blocks
    min_blocks = min(cap_blocks, ens.jackknife_bins)
    sampling, training, n = 0.0, 0.0, 1
    while acc.blocks < cap_blocks:
        n = min(n, cap_blocks - acc.blocks)
        first = ens.first_block + acc.blocks
        t0 = time.monotonic()
        states = worker.run(first, n)
        t1 = time.monotonic()
        if trainer is not None:
            trainer.run(first, n)
            training += time.monotonic() - t1
        sampling += time.monotonic() - t0
        acc.add_blocks(first, *states)
        if acc.blocks >= min_blocks and sampling >= pilot_seconds:
            break
        per_block = sampling / acc.blocks           # aim at the time left, at most doubling
        n = max(1, min(2 * n, math.ceil((pilot_seconds - sampling) / per_block)),
                min_blocks - acc.blocks)
    status = evaluate_target(cfg, acc)
    rate = acc.networks / sampling if sampling > 0 else float("inf")
    need = networks_needed(status)
    from .sizes import estimate_run
    size = estimate_run(cfg)                    # sizes do not grow with the networks (bins)
    return Plan(status, acc.networks, sampling, compile_seconds, rate, need, ens.block_size,
                ens.blocks * ens.block_size, ens.jackknife_bins, get_threads(),
                training_steps=cfg.training.steps if cfg.training is not None else 0,
                training_seconds=training, size=size)
