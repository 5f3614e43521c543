"""The conditional-Gaussian ("markov") sampler backend: exact for Gaussian weights.

Never forms a weight matrix: given layer l, the rows of z^(l) are drawn as N(0, Ghat^(l))
(kernel: ``mcsim.kernels.markov.sample_markov``; theory notes, section 4)."""
from __future__ import annotations

import numpy as np

from .base import Sampler, register_sampler


def kernel_arguments(cfg) -> tuple:
    """(inputs, widths, C_W, C_b, act_code, act_param) as the kernels take them."""
    from ..activations import get_activation      # (imports Numba: only when sampling)
    net = cfg.network
    act = get_activation(net.activation)
    return (np.ascontiguousarray(cfg.inputs), np.asarray(net.widths, dtype=np.int64),
            np.asarray(net.C_W), np.asarray(net.C_b), np.int64(act.code), np.float64(act.param))


@register_sampler
class MarkovSampler(Sampler):
    name = "markov"
    description = "conditional Gaussian layer by layer, no weight matrices (Gaussian weights)"
    weights = ("gaussian",)

    @classmethod
    def fills(cls, cfg):
        # the unit cumulants are identically 0 for Gaussian weights and biases
        return ("gram", "unit_cumulant_diag", "unit_cumulant")

    def __init__(self, cfg, quantities):
        super().__init__(cfg, quantities)
        from ..kernels import markov, rng
        self._kernel = markov.sample_markov
        self._key = rng.seed_key(cfg.ensemble.seed)
        self._args = kernel_arguments(cfg)

    def sample(self, first_block, n_blocks, out):
        m = self.layout.lengths[0]
        if out.shape[-1] == m:
            self._kernel(self._key, np.uint64(first_block), n_blocks, self.cfg.ensemble.block_size,
                         *self._args, out)
            return
        gram = np.empty(out.shape[:-1] + (m,))
        self._kernel(self._key, np.uint64(first_block), n_blocks, self.cfg.ensemble.block_size,
                     *self._args, gram)
        out[..., :m] = gram
        out[..., m:] = 0.0
