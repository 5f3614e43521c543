"""Compiling the kernels before the timed work, and saying so.

Numba compiles mcsim's kernels on their first call and caches the machine code on disk
(beside the kernel sources, or in ``NUMBA_CACHE_DIR``). The first run on a machine therefore
spends tens of seconds compiling; later runs load the cache in well under a second.

`warm_up(cfg)` calls every kernel a run of ``cfg`` uses (its sampler, the block moments, the
bin merges and the jackknife) once on a tiny ensemble of the same kind (same sampler,
activation, number of inputs, depth and statistics; widths of 2, one block of 2 networks),
so the driver can start its clocks afterwards: compile time never enters the progress rate,
the ETA, ``runtime_seconds`` or ``networks_per_second``. The kernels' types do not depend on
the sizes, so the run itself then finds them compiled. When Numba has to compile (a cache
miss) one line says so at once, so the first minute is never silent.

`compile_all()` (``mcsim compile``, also run by ``scripts/setup.sh``) warms the cache for
every sampler backend with second- and third-order moments and with the NTK statistics (their
own kernels), so even the very first run starts at once.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time

import numpy as np

log = logging.getLogger("mcsim")

__all__ = ["tiny_config", "warm_up", "compile_all", "NOTICE_AFTER"]

#: seconds after which a warm-up that is still running announces that it compiles
NOTICE_AFTER = 1.0


def tiny_config(cfg):
    """``cfg`` shrunk to widths of 2 and one block of 2 networks (2 jackknife bins), with
    everything that selects kernels or their argument types unchanged."""
    net = dataclasses.replace(cfg.network, widths=(2,) * cfg.network.depth)
    ens = dataclasses.replace(cfg.ensemble, networks=2, block_size=2, jackknife_bins=2,
                              first_block=0, target=None)
    out = dataclasses.replace(cfg.output, path=None)
    return dataclasses.replace(cfg, network=net, ensemble=ens, output=out)


def _exercise(tiny) -> None:
    from ..stats.accumulator import accumulator_layout, new_accumulator
    from ..stats.estimators import compute_estimates
    from .worker import BlockWorker
    worker = BlockWorker(tiny, accumulator_layout(tiny))
    acc = new_accumulator(tiny)
    for block in range(2):                  # two bins: the jackknife's merges run too
        acc.add_blocks(block, *worker.run(block, 1))
    with np.errstate(all="ignore"):
        compute_estimates(tiny, acc)


class _CompileNotice:
    """Says once, at the first compilation Numba starts, that the kernels are compiling.

    Listens to Numba's "numba:compile" event, which fires only on a cache miss (a kernel
    loaded from the cache raises none); where that API is missing, a timer says it after
    ``notice_after`` seconds instead."""

    def __init__(self, notice_after: float):
        self.noticed = threading.Event()
        self._timer = None
        self._listener = None
        try:
            from numba.core import event
        except ImportError:                 # pragma: no cover - very old or new Numba
            event = None
        if event is not None and hasattr(event, "Listener"):
            notice = self._notice

            class Listener(event.Listener):
                def on_start(self, ev):
                    notice()

                def on_end(self, ev):
                    pass

            self._event, self._listener = event, Listener()
            event.register("numba:compile", self._listener)
        else:                               # pragma: no cover
            self._timer = threading.Timer(notice_after, self._notice)
            self._timer.daemon = True
            self._timer.start()

    def _notice(self):
        if not self.noticed.is_set():
            self.noticed.set()
            log.info("compiling kernels (first run only; later runs load them from the cache) ...")

    def close(self):
        if self._listener is not None:
            self._event.unregister("numba:compile", self._listener)
        if self._timer is not None:
            self._timer.cancel()


def warm_up(cfg, announce: bool = True, notice_after: float = NOTICE_AFTER) -> float:
    """Compile (or load from the cache) the kernels a run of ``cfg`` uses; returns the
    seconds it took. With ``announce``, logs "compiling kernels (first run only) ..." as
    soon as Numba starts compiling (not when it loads the cache), and the time taken when
    it is done."""
    t0 = time.monotonic()
    notice = _CompileNotice(notice_after) if announce else None
    try:
        _exercise(tiny_config(cfg))
        if getattr(cfg, "training", None) is not None:
            from ..training.accumulate import warm_up_training
            warm_up_training(cfg)
    finally:
        if notice is not None:
            notice.close()
    seconds = time.monotonic() - t0
    if notice is not None and notice.noticed.is_set():
        log.info("kernels compiled in %.1f s (not counted in rates or run time)", seconds)
    return seconds


def _representative_configs():
    """(sampler, statistics, config) for every kernel path a run can take: each backend
    with and without third moments, with the NTK (and dNTK) statistics where it fills them, and the
    dense sampler with a non-Gaussian law (the unit cumulants of the z statistics)."""
    from ..config import config_from_dict
    from ..errors import ConfigError
    from ..samplers import SAMPLERS
    from ..stats.statistics import computed, required_quantities
    for sampler, cls in SAMPLERS.items():
        for stats, weights in ((["metric", "vertex"], cls.weights[0]),
                               (["metric", "vertex", "six_point"], cls.weights[0]),
                               (["metric", "ntk", "ntk_A", "ntk_B", "ntk_D", "ntk_F"], cls.weights[0]),
                               (["metric", "ntk", "dntk_P", "dntk_Q"], cls.weights[0]),
                               (["metric", "vertex"], "uniform")):
            if weights not in cls.weights:
                continue
            try:
                cfg = config_from_dict({
                    "network": {"input_dim": 2, "widths": [2, 2, 2],
                                "activation": cls.example["activation"]},
                    "inputs": {"values": cls.example["inputs"]},
                    "ensemble": {"networks": 4, "sampler": sampler, "weights": weights,
                                 "block_size": 2, "jackknife_bins": 2},
                    "output": {"statistics": stats}})
            except ConfigError:         # the backend cannot measure these statistics
                continue
            needed = required_quantities(computed(cfg.output.statistics))
            if all(q in cls.fills(cfg) for q in needed):
                yield sampler, stats, cfg


def compile_all(announce: bool = True, jobs: int = 1) -> list[tuple[str, str, float]]:
    """Warm Numba's cache for every sampler backend, with and without third moments and with
    the NTK statistics (the kernels take the activation as a run-time code, so one activation
    covers all). ``jobs`` > 1 compiles the configurations in that many worker processes
    (Numba compiles on one core; its cache files are written atomically, so processes that
    compile a shared kernel at the same time only duplicate work).
    Returns (sampler, statistics, seconds) per configuration, in the order of the list."""
    configs = list(_representative_configs())
    if jobs <= 1 or len(configs) <= 1:
        return [(sampler, "+".join(stats), warm_up(cfg, announce=announce))
                for sampler, stats, cfg in configs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    # fresh interpreters (no fork of a process that may hold Numba's threads or locks)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(configs)), mp_context=ctx) as pool:
        seconds = list(pool.map(_compile_one, range(len(configs))))
    return [(sampler, "+".join(stats), sec) for (sampler, stats, _), sec in zip(configs, seconds)]


def _compile_one(index: int) -> float:
    # worker process: the index-th representative configuration (the list is deterministic)
    _, _, cfg = list(_representative_configs())[index]
    return warm_up(cfg, announce=False)
