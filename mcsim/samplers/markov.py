"""The conditional-Gaussian ("markov") sampler backend: exact for Gaussian weights.

Never forms a weight matrix: given layer l, the rows of z^(l) are drawn as N(0, Ghat^(l))
(kernel: ``mcsim.kernels.markov.sample_markov``; theory notes, section 4). With NTK
quantities it runs ``mcsim.kernels.ntk_markov.sample_markov_ntk``, which also backpropagates
through weights drawn from their conditional law given the forward pass; with dNTK
quantities ``mcsim.kernels.dntk_markov.sample_markov_dntk``, which draws every product with a
layer's weights given the forward pass and the products drawn before."""
from __future__ import annotations

import numpy as np

from ..stats.dntk_estimators import DNTK_QUANTITIES
from ..stats.quantities import Layout, get_quantity
from .base import Sampler, register_sampler

#: the NTK kernels fill the metric and these, in this buffer order (kernels/ntk_common.py)
NTK_QUANTITIES = ("ntk_11", "ntk_22", "ntk_12", "ntk_zz")


def ntk_layout(cfg, quantities) -> Layout | None:
    """The buffer layout of the NTK kernels (gram and every NTK quantity) when any NTK
    quantity is asked for, else None (then the metric-only kernel runs)."""
    if not any(q in NTK_QUANTITIES for q in quantities):
        return None
    names = ("gram",) + NTK_QUANTITIES
    return Layout(names, tuple(int(get_quantity(q).length(cfg)) for q in names), (2,) * len(names))


def dntk_layout(cfg, quantities) -> Layout | None:
    """The buffer layout of the dNTK kernels (gram, the NTK and the dNTK quantities) when any
    dNTK quantity is asked for, else None."""
    if not any(q in DNTK_QUANTITIES for q in quantities):
        return None
    names = ("gram",) + NTK_QUANTITIES + DNTK_QUANTITIES
    return Layout(names, tuple(int(get_quantity(q).length(cfg)) for q in names), (2,) * len(names))


def ntk_arguments(cfg) -> tuple:
    """(lambda_W, lambda_b, ntk_layers) as the NTK kernels take them: the learning rates
    (L,) and (L-1,) int64 flags of the recorded stochastic layers."""
    net = cfg.network
    flags = np.zeros(max(net.depth - 1, 0), dtype=np.int64)
    for l in cfg.stochastic_layers:
        flags[l - 2] = 1
    return np.asarray(net.lambda_W, dtype=np.float64), np.asarray(net.lambda_b, dtype=np.float64), flags


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
    auto_priority = 10

    @classmethod
    def fills(cls, cfg):
        # the unit cumulants are identically 0 for Gaussian weights and biases
        return ("gram",) + NTK_QUANTITIES + DNTK_QUANTITIES + ("unit_cumulant_diag", "unit_cumulant")

    def __init__(self, cfg, quantities):
        super().__init__(cfg, quantities)
        from ..kernels import rng
        self._key = rng.seed_key(cfg.ensemble.seed)
        self._args = kernel_arguments(cfg)
        layout = ntk_layout(cfg, quantities)
        self._kernel_width = int(get_quantity("gram").length(cfg))
        dntk = dntk_layout(cfg, quantities)
        if dntk is not None:            # the dNTK (and the NTK): kernels/dntk_markov.py
            from ..kernels import dntk_markov
            self.layout = dntk
            self._kernel_width = dntk.width
            self._kernel = dntk_markov.sample_markov_dntk
            self._args = self._args + ntk_arguments(cfg)
        elif layout is None:
            from ..kernels import markov
            self._kernel = markov.sample_markov
        else:
            self._kernel_width = layout.width
            from ..kernels import ntk_markov
            self.layout = layout
            self._kernel = ntk_markov.sample_markov_ntk
            self._args = self._args + ntk_arguments(cfg)

    def sample(self, first_block, n_blocks, out):
        # the kernel fills the metric (and, the NTK kernel, the NTK quantities); the unit
        # cumulants after them are 0 (config.schema refuses them together with the NTK)
        m = self._kernel_width
        if out.shape[-1] == m:
            self._kernel(self._key, np.uint64(first_block), n_blocks, self.cfg.ensemble.block_size,
                         *self._args, out)
            return
        gram = np.empty(out.shape[:-1] + (m,))
        self._kernel(self._key, np.uint64(first_block), n_blocks, self.cfg.ensemble.block_size,
                     *self._args, gram)
        out[..., :m] = gram
        out[..., m:] = 0.0
