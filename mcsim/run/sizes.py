"""Checks before anything is allocated: memory, output-file size, jackknife bins, layer 1.

`estimate_run(cfg)` estimates from the configuration alone (no allocation) the memory a run
needs per process and the size of its output file:

    per-block moment state  s = S_r (M + M^2 + T) 8 bytes   (S_r recorded stochastic layers,
                                                              M entries, T third-moment triples)
    accumulator              B s                             (B jackknife bins)
    estimates                about 4 B s (the prefix, suffix and leave-one-bin-out merges and
                             the B packed estimates) + 2 D (D: the unpacked estimates of all
                             layers and their errors, e.g. k^6 per layer for six_point)
    sample buffer            max(32 MiB, one block: block_size (L - 1) W 8 bytes)
    scratch                  threads (3 k n_max + n_max) 8 bytes (the widest layer)
    baseline                 192 MiB (interpreter, libraries, kernels)
    output file              B s + 2 D (estimates and their standard errors) + header and inputs
    [training]               the /training accumulator, estimates and buffers
                             (``training.accumulate.training_size``)

`check_run_size(cfg, output)` refuses (`TooLarge`, exit 2) a run whose memory estimate exceeds
the limit: ``--max-memory`` / ``MCSIM_MAX_MEMORY`` (e.g. "64G"), by default 80 % of this
machine's physical memory; and a run whose output would not fit on the output's file system.
It warns (log) when the output file will be larger than ``MCSIM_WARN_FILE_SIZE`` (default 1 GiB).
It also refuses a run with fewer than 2 blocks (no error bars: the jackknife needs 2 groups),
warns when fewer blocks than jackknife bins are asked for, and refuses inputs whose layer-1
metric overflows float64.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, NumericalOverflow, TooLarge
from ..limits import format_size, memory_limit, parse_size

log = logging.getLogger("mcsim")

__all__ = ["RunSize", "estimate_run", "check_run_size"]

DEFAULT_WARN_FILE_SIZE = 1 << 30
#: Python, NumPy, Numba, h5py and the compiled kernels (measured: about 150-200 MiB)
PROCESS_BASELINE = 192 << 20


@dataclass
class RunSize:
    memory: int                  # bytes per process, peak (estimate)
    file: int                    # bytes of the output file (estimate)
    parts: dict                  # what the memory is made of

    def largest(self) -> str:
        name, value = max(self.parts.items(), key=lambda kv: kv[1])
        return f"{name} {format_size(value)}"


def estimate_run(cfg, threads: int | None = None) -> RunSize:
    """Memory (per process) and output size of a run of ``cfg``, from the config alone."""
    from ..samplers import make_sampler
    from ..stats.accumulator import accumulator_layout
    from ..stats.statistics import computed, get_statistic
    from .worker import sample_buffer_bytes
    layout = accumulator_layout(cfg)
    M, T = layout.width, layout.n_triples
    Sr, L, k = len(cfg.stochastic_layers), cfg.network.depth, cfg.k
    B, bs = cfg.ensemble.jackknife_bins, cfg.ensemble.block_size
    state = 8 * Sr * (M + M * M + T)
    D = 0
    for name in computed(cfg.output.statistics):
        D += 8 * int(np.prod(get_statistic(name).shape(k), dtype=np.float64)) * len(cfg.layers)
    try:
        W = make_sampler(cfg, layout.names).width
    except Exception:           # a sampler that cannot be built cheaply: the accumulator's width
        W = M
    block = 8 * bs * max(L - 1, 1) * W
    nmax = max([cfg.network.input_dim, *cfg.network.widths[:-1]])
    threads = threads or int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1))
    parts = {"accumulator": B * state, "estimates": 4 * B * state + 2 * D,
             "sample buffer": max(sample_buffer_bytes(threads), block),
             "block states": 2 * state + 8 * 3 * T,
             "scratch": threads * 8 * (3 * k * nmax + nmax) + 8 * k * cfg.network.input_dim,
             "interpreter and libraries": PROCESS_BASELINE}
    n_datasets = 2 * len(computed(cfg.output.statistics)) * len(cfg.layers) + 6
    overhead = (16 << 10) + 1024 * n_datasets + 8 * k * cfg.network.input_dim   # header, inputs
    train_file = 0
    if getattr(cfg, "training", None) is not None:      # [training]: the /training group
        from ..training.accumulate import training_size
        parts["training"], train_file = training_size(cfg, threads)
    return RunSize(int(sum(parts.values())), int(B * state + 2 * D + overhead + train_file), parts)


def check_run_size(cfg, output=None, max_memory=None, threads: int | None = None) -> RunSize:
    """Refuse (TooLarge / ConfigError / NumericalOverflow) what would fail later; warn about
    surprising sizes. Returns the estimate."""
    _check_blocks(cfg, warn=False)
    _check_first_layer(cfg)
    size = estimate_run(cfg, threads)
    limit, source = memory_limit(max_memory)
    if limit is not None and size.memory > limit:
        raise TooLarge(
            f"this run needs about {format_size(size.memory)} of memory per process (largest part: "
            f"{size.largest()}), more than the limit of {format_size(limit)} ({source}). Make it "
            "smaller (fewer inputs k, layers, statistics such as six_point, jackknife bins, or a "
            "smaller ensemble.block_size), or raise the limit with --max-memory / MCSIM_MAX_MEMORY")
    if output is not None:
        folder = Path(output).resolve().parent
        try:
            free = shutil.disk_usage(folder).free if folder.exists() else None
        except OSError:
            free = None
        if free is not None and size.file > free and limit is not None:
            raise TooLarge(
                f"the output file will be about {format_size(size.file)}, more than the "
                f"{format_size(free)} free in {folder}; make the run smaller (fewer inputs, "
                "layers or statistics) or free some space")
        warn = parse_size(os.environ.get("MCSIM_WARN_FILE_SIZE", DEFAULT_WARN_FILE_SIZE))
        if size.file > warn:
            log.warning("the output file %s will be about %s (mostly the accumulator and the "
                        "unpacked estimates of %d inputs)", output, format_size(size.file), cfg.k)
    _check_blocks(cfg, warn=True)
    return size


def _check_blocks(cfg, warn: bool) -> None:
    blocks, bins, bs = cfg.ensemble.blocks, cfg.ensemble.jackknife_bins, cfg.ensemble.block_size
    if blocks < 2:
        raise ConfigError(
            f"ensemble.networks: {cfg.ensemble.networks:,} networks make {blocks} block of "
            f"ensemble.block_size = {bs}, and error bars need at least 2 blocks (one per jackknife "
            f"bin). Use a smaller block_size (e.g. {max(1, cfg.ensemble.networks // bins)} for "
            f"{bins} bins) or more networks")
    if blocks < bins and warn:
        log.warning("only %d blocks for %d jackknife bins: the error bars come from %d groups "
                    "(set ensemble.block_size to at most %d to fill every bin)", blocks, bins,
                    blocks, max(1, cfg.ensemble.networks // bins))


def _check_first_layer(cfg) -> None:
    from ..stats.estimators import layer_one_gram
    try:
        with np.errstate(over="raise", invalid="raise"):
            g = layer_one_gram(cfg)
    except FloatingPointError:
        g = np.array([np.inf])
    if not np.all(np.isfinite(g)):
        raise NumericalOverflow(
            "the preactivations overflow float64 at layer 1: the input metric C_b + C_W / n_0 x.x "
            "is not finite; use smaller inputs or network.C_W")
