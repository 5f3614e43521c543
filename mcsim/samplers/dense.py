"""The explicit-weights ("dense") sampler backend: the reference, and the only one for
non-Gaussian weight laws (kernel: ``mcsim.kernels.dense.sample_dense``; with NTK quantities
``mcsim.kernels.ntk_dense.sample_dense_ntk``, explicit backpropagation)."""
from __future__ import annotations

import numpy as np

from .base import Sampler, register_sampler
from .markov import NTK_QUANTITIES, kernel_arguments, ntk_arguments, ntk_layout


@register_sampler
class DenseSampler(Sampler):
    name = "dense"
    description = "explicit weights, row by row (any weight law)"
    weights = ("gaussian", "uniform", "rademacher")

    @classmethod
    def fills(cls, cfg):
        return ("gram",) + NTK_QUANTITIES

    def __init__(self, cfg, quantities):
        super().__init__(cfg, quantities)
        from ..kernels import dense, rng
        self._key = rng.seed_key(cfg.ensemble.seed)
        weight_code = np.int64(dense.WEIGHT_CODES[cfg.ensemble.weights])
        self._args = kernel_arguments(cfg) + (weight_code,)
        layout = ntk_layout(cfg, quantities)
        if layout is None:
            self._kernel = dense.sample_dense
        else:
            from ..kernels import ntk_dense
            self.layout = layout
            self._kernel = ntk_dense.sample_dense_ntk
            self._args = self._args + ntk_arguments(cfg)

    def sample(self, first_block, n_blocks, out):
        self._kernel(self._key, np.uint64(first_block), n_blocks, self.cfg.ensemble.block_size,
                     *self._args, out)
