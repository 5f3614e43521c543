"""The explicit-weights ("dense") sampler backend: the reference, and the only one for
non-Gaussian weight and bias laws (kernel: ``mcsim.kernels.dense.sample_dense_laws``; with
NTK quantities ``mcsim.kernels.ntk_dense.sample_dense_ntk``, explicit backpropagation; with
dNTK quantities ``mcsim.kernels.dntk_dense.sample_dense_dntk``, which also fills the metric
and the NTK quantities; the configuration allows the last two for Gaussian weights and
biases)."""
from __future__ import annotations

import numpy as np

from ..laws import LAWS
from ..stats.dntk_estimators import DNTK_QUANTITIES
from .base import Sampler, register_sampler
from .markov import NTK_QUANTITIES, dntk_layout, kernel_arguments, ntk_arguments, ntk_layout


@register_sampler
class DenseSampler(Sampler):
    name = "dense"
    description = "explicit weights, row by row (any weight and bias law)"
    weights = tuple(LAWS)
    biases = tuple(LAWS)
    auto_priority = 0

    @classmethod
    def fills(cls, cfg):
        return ("gram",) + NTK_QUANTITIES + DNTK_QUANTITIES + ("unit_cumulant_diag", "unit_cumulant")

    def __init__(self, cfg, quantities):
        super().__init__(cfg, quantities)
        from ..kernels import dense, rng
        ens, L = cfg.ensemble, cfg.network.depth
        wl, bl = ens.weight_law, ens.bias_law
        self._key = rng.seed_key(ens.seed)
        layout = dntk_layout(cfg, quantities)
        if layout is not None:          # dNTK (and NTK): forward-over-backward, explicit weights
            from ..kernels import dntk_dense
            self.layout = layout
            self._kernel = dntk_dense.sample_dense_dntk
            self._args = kernel_arguments(cfg) + (np.int64(dense.WEIGHT_CODES[wl.name]),) \
                + ntk_arguments(cfg)
            return
        layout = ntk_layout(cfg, quantities)
        if layout is not None:          # NTK: explicit backpropagation (Gaussian laws: config.schema)
            from ..kernels import ntk_dense
            self.layout = layout
            self._kernel = ntk_dense.sample_dense_ntk
            self._args = kernel_arguments(cfg) + (np.int64(dense.WEIGHT_CODES[wl.name]),) \
                + ntk_arguments(cfg)
            return
        self._kernel = dense.sample_dense_laws
        names = self.layout.names
        self._args = kernel_arguments(cfg) + (
            np.int64(wl.code), np.int64(wl.nu), np.int64(bl.code), np.int64(bl.nu),
            np.full(L, wl.kappa4), np.full(L, bl.kappa4),
            np.int64(self.layout.lengths[names.index("unit_cumulant_diag")]
                     if "unit_cumulant_diag" in names else 0),
            np.int64(self.layout.lengths[names.index("unit_cumulant")]
                     if "unit_cumulant" in names else 0))

    def sample(self, first_block, n_blocks, out):
        self._kernel(self._key, np.uint64(first_block), n_blocks, self.cfg.ensemble.block_size,
                     *self._args, out)
