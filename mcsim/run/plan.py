"""`mcsim plan`: how many networks, and how much time, a target error needs.

A short pilot samples the first blocks of the configured ensemble (the same random streams
as the run would use) for about ``pilot_seconds`` (and at least one block per jackknife
bin), measures the sampling rate of this process after the kernels are compiled, and
evaluates the target's standard error. Standard errors fall like 1/sqrt(N), so

    N_needed = N_pilot (err_pilot / err_target)^2,   wall time = N_needed / rate.

The pilot's error estimate comes from B jackknife bins and is itself uncertain by about
1/sqrt(2 (B - 1)) relative, which makes N_needed uncertain by about sqrt(2 / (B - 1))
(18% with the default 64 bins): `Plan.spread` says how much.
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
    pilot_seconds: float         # sampling time of the pilot (compile excluded)
    compile_seconds: float
    rate: float                  # networks per second of this process
    networks_needed: float
    block_size: int
    cap: int                     # ensemble.networks of the config
    bins: int
    threads: int

    @property
    def blocks_needed(self) -> int:
        return int(math.ceil(self.networks_needed / self.block_size)) if math.isfinite(self.networks_needed) else 0

    @property
    def seconds_needed(self) -> float:
        return self.networks_needed / self.rate if self.rate > 0 else float("inf")

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
        lines.append(f"time:   about {_duration(self.seconds_needed)} of sampling in one process like "
                     f"this one; R MPI ranks of the same speed take about 1/R of it")
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
    acc = new_accumulator(cfg)
    ens = cfg.ensemble
    cap_blocks = ens.blocks
    min_blocks = min(cap_blocks, ens.jackknife_bins)
    sampling, n = 0.0, 1
    while acc.blocks < cap_blocks:
        n = min(n, cap_blocks - acc.blocks)
        first = ens.first_block + acc.blocks
        t0 = time.monotonic()
        states = worker.run(first, n)
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
    return Plan(status, acc.networks, sampling, compile_seconds, rate, need, ens.block_size,
                ens.blocks * ens.block_size, ens.jackknife_bins, get_threads())
