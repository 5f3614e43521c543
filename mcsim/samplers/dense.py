"""The explicit-weights ("dense") sampler backend: the reference, and the only one for
non-Gaussian weight laws (kernel: ``mcsim.kernels.dense.sample_dense``)."""
from __future__ import annotations

import numpy as np

from .base import Sampler, register_sampler
from .markov import kernel_arguments


@register_sampler
class DenseSampler(Sampler):
    name = "dense"
    description = "explicit weights, row by row (any weight law)"
    weights = ("gaussian", "uniform", "rademacher")
    auto_priority = 0

    @classmethod
    def fills(cls, cfg):
        return ("gram",)

    def __init__(self, cfg, quantities):
        super().__init__(cfg, quantities)
        from ..kernels import dense, rng
        self._kernel = dense.sample_dense
        self._key = rng.seed_key(cfg.ensemble.seed)
        self._args = kernel_arguments(cfg)
        self._weight_code = np.int64(dense.WEIGHT_CODES[cfg.ensemble.weights])

    def sample(self, first_block, n_blocks, out):
        self._kernel(self._key, np.uint64(first_block), n_blocks, self.cfg.ensemble.block_size,
                     *self._args, self._weight_code, out)
