"""One rank's work: sample consecutive blocks of networks and reduce each to its moment state.

`BlockWorker` is used by the driver (`run.driver`), by the kernel warm-up (`run.warmup`) and by
the pilot of `mcsim plan` (`run.plan`); it lives here so that none of them imports another.
"""
from __future__ import annotations

import numpy as np

from ..samplers import make_sampler
from ..stats.finite import check_moments, check_samples

__all__ = ["BlockWorker", "SAMPLE_BUFFER_BYTES"]

SAMPLE_BUFFER_BYTES = 32 << 20  # cap on the per-call sample buffer (memory flat in N)


class BlockWorker:
    """Samples consecutive blocks and reduces each to its moment state (one rank's work)."""

    def __init__(self, cfg, layout):
        from ..kernels import moments
        self.cfg = cfg
        self.sampler = make_sampler(cfg, layout.names)
        self.columns = self.sampler.columns(layout)
        self.block_moments = moments.block_moments
        self.bs = cfg.ensemble.block_size
        self.S = cfg.network.depth - 1
        self.layers = np.asarray([l - 2 for l in cfg.stochastic_layers], dtype=np.int64)
        self.order = layout.order
        self.triples = layout.triples()
        self.M = layout.width
        per_block = self.bs * max(self.S, 1) * self.sampler.width * 8
        self.chunk = max(1, SAMPLE_BUFFER_BYTES // per_block)
        self._buffer = None

    def run(self, first: int, n: int):
        """Moment states of blocks first..first+n-1: mean (n, Sr, M), m2 (n, Sr, M, M), m3 (n, Sr, T)."""
        Sr, M, T = len(self.layers), self.M, len(self.triples)
        mean, m2, m3 = np.empty((n, Sr, M)), np.empty((n, Sr, M, M)), np.empty((n, Sr, T))
        for c0 in range(0, n, self.chunk):
            cn = min(self.chunk, n - c0)
            if self._buffer is None or self._buffer.shape[0] < cn:
                self._buffer = np.empty((min(self.chunk, n), self.bs, self.S, self.sampler.width))
            out = self._buffer[:cn]
            self.sampler.sample(first + c0, cn, out)
            check_samples(out, first + c0, self.sampler.layout,      # inf / NaN: stop, say where
                          recorded=self.layers)
            self.block_moments(out, self.layers, self.columns, self.triples, self.order,
                               mean[c0:c0 + cn], m2[c0:c0 + cn], m3[c0:c0 + cn])
        check_moments({"mean": mean, "m2": m2, "m3": m3}, first, self.cfg.stochastic_layers)
        return mean, m2, m3
