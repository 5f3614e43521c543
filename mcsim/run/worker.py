"""One rank's work: sample consecutive blocks of networks and reduce each to its moment state.

`BlockWorker` is used by the driver (`run.driver`), by the kernel warm-up (`run.warmup`) and by
the pilot of `mcsim plan` (`run.plan`); it lives here so that none of them imports another.
"""
from __future__ import annotations

import numpy as np

from ..samplers import make_sampler
from ..stats.finite import check_moments, check_samples

__all__ = ["BlockWorker", "SAMPLE_BUFFER_BYTES", "SAMPLE_BUFFER_BYTES_PER_THREAD",
           "sample_buffer_bytes"]

SAMPLE_BUFFER_BYTES = 32 << 20  # cap on the per-call sample buffer (memory flat in N)
#: per thread: the samples of a call stay in cache between the sampler, the finiteness check
#: and the moment kernel (measured: chi2, ReLU, n = 1024, 1 thread: 167 ns per network with
#: 32 MiB per call, 122 with 1 MiB; 2 threads: 123 and 64 with 2 MiB; docs/performance.md)
SAMPLE_BUFFER_BYTES_PER_THREAD = 1 << 20


def sample_buffer_bytes(threads: int) -> int:
    """Bytes of samples per sampler call (at least one block is always taken)."""
    return min(SAMPLE_BUFFER_BYTES, SAMPLE_BUFFER_BYTES_PER_THREAD * max(1, threads))


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
        self._per_block = self.bs * max(self.S, 1) * self.sampler.width * 8
        self._buffer = None

    @property
    def chunk(self) -> int:
        """Blocks per sampler call (by the threads the kernels use now)."""
        from ..kernels.jit import get_threads
        return max(1, sample_buffer_bytes(get_threads()) // self._per_block)

    def run(self, first: int, n: int):
        """Moment states of blocks first..first+n-1: mean (n, Sr, M), m2 (n, Sr, M, M), m3 (n, Sr, T)."""
        Sr, M, T = len(self.layers), self.M, len(self.triples)
        mean, m2, m3 = np.empty((n, Sr, M)), np.empty((n, Sr, M, M)), np.empty((n, Sr, T))
        chunk = self.chunk
        for c0 in range(0, n, chunk):
            cn = min(chunk, n - c0)
            if self._buffer is None or self._buffer.shape[0] < cn:
                self._buffer = np.empty((min(chunk, n), self.bs, self.S, self.sampler.width))
            out = self._buffer[:cn]
            self.sampler.sample(first + c0, cn, out)
            check_samples(out, first + c0, self.sampler.layout,      # inf / NaN: stop, say where
                          recorded=self.layers)
            self.block_moments(out, self.layers, self.columns, self.triples, self.order,
                               mean[c0:c0 + cn], m2[c0:c0 + cn], m3[c0:c0 + cn])
        check_moments({"mean": mean, "m2": m2, "m3": m3}, first, self.cfg.stochastic_layers)
        return mean, m2, m3
