"""Reduced samplers: exact, with the law of Ghat^(l+1) given Ghat^(l) in closed form
(kernels: ``mcsim.kernels.reduced``; the maths is in that module's docstring).

- ``chi2``    one input, ReLU / leaky ReLU / linear / perceptron, any C_W, C_b: a chi-squared
              variable with a binomial number of degrees of freedom per layer, O(L) random
              numbers per network (markov: O(n L)); version 3: the binomials of widths
              129..65536 from exact alias tables (``binomial_table``);
- ``wishart`` linear activation, any number of inputs: a Wishart matrix per layer by the
              Bartlett decomposition, O(L k^2) random numbers per network; version 3
              (``kernels.wishart_pairs``): chi-squared and normal draws in pairs, half the
              random numbers of version 2.

- ``chi2_v2`` the ``chi2`` of version 2 (BTRS for every width above 128): never picked by
              "auto"; a file it wrote (``sampler = "chi2"``, ``sampler_version`` 2) reads
              as ``chi2_v2`` and resumes and extends with it, bitwise.
- ``chi2_v1`` the ``chi2`` of mcsim before its version 2 (network by network, other
              random numbers): never picked by "auto"; a file it wrote (``sampler = "chi2"``
              without a ``sampler_version`` attribute) reads as ``chi2_v1`` and resumes
              and extends with it, bitwise.
- ``wishart_v2`` the ``wishart`` of version 2 (``kernels.wishart_batch``, batches of
              networks), kept for its files as ``chi2_v2``.
- ``wishart_v1`` the ``wishart`` before its version 2 (``kernels.reduced.sample_wishart``,
              network by network), kept for its files in the same way.

All are exact for Gaussian weights and agree with ``markov`` in distribution, not bitwise
(they draw other random numbers). ``sampler = "auto"`` picks them where they apply."""
from __future__ import annotations

import numpy as np

from .base import Sampler, register_sampler
from .markov import kernel_arguments

_CHI2_ACTIVATIONS = ("relu", "leaky_relu", "linear", "perceptron")


class _Reduced(Sampler):
    weights = ("gaussian",)
    _kernel_name = ""

    @classmethod
    def fills(cls, cfg):
        return ("gram",)

    def __init__(self, cfg, quantities):
        if not self.exact_for(cfg):
            raise ValueError(f"sampler {self.name!r} does not apply to this configuration: "
                             f"{self.applies}")
        super().__init__(cfg, quantities)
        from ..kernels import rng
        self._kernel = self._load_kernel()
        # draws no fill_normals, the only draw the generators differ in: the philox53 key
        # under either generator (one compiled specialisation)
        self._key = rng.seed_key(cfg.ensemble.seed)
        self._args = kernel_arguments(cfg)

    def _load_kernel(self):
        from ..kernels import reduced
        return getattr(reduced, self._kernel_name)

    def sample(self, first_block, n_blocks, out):
        self._kernel(self._key, np.uint64(first_block), n_blocks, self.cfg.ensemble.block_size,
                     *self._args, out)


@register_sampler
class Chi2Sampler(_Reduced):
    name = "chi2"
    # 1: network by network (now ``chi2_v1``); 2: batches of networks (now ``chi2_v2``);
    # 3: the binomials from alias tables
    version = 3
    description = ("one input, relu / leaky_relu / linear / perceptron: chi-squared with a "
                   "binomial number of degrees of freedom per layer, O(L) numbers per network")
    applies = "one input and activation relu, leaky_relu, linear or perceptron (Gaussian weights)"
    auto_priority = 30
    example = {"activation": "relu", "inputs": [[1.0, 0.0]]}

    def __init__(self, cfg, quantities):
        super().__init__(cfg, quantities)
        from .binomial_table import binomial_tables
        self._args = (*self._args, *binomial_tables(cfg.network.widths).arguments())

    def _load_kernel(self):
        from ..kernels import chi2_alias
        return chi2_alias.sample_chi2

    @classmethod
    def exact_for(cls, cfg):
        return (super().exact_for(cfg) and cfg.k == 1
                and cfg.network.activation["name"] in _CHI2_ACTIVATIONS)


@register_sampler
class Chi2V2Sampler(Chi2Sampler):
    name = "chi2_v2"
    version = 2
    description = ("chi2 version 2 (same law, other random numbers: BTRS binomials): resumes "
                   "and extends files written by it, bitwise")
    auto_priority = None

    def __init__(self, cfg, quantities):
        _Reduced.__init__(self, cfg, quantities)

    def _load_kernel(self):
        from ..kernels import chi2_batch
        return chi2_batch.sample_chi2


@register_sampler
class Chi2V1Sampler(Chi2Sampler):
    name = "chi2_v1"
    version = 1
    description = ("chi2 as in mcsim before chi2 version 2 (same law, other random numbers): "
                   "resumes and extends files written by it, bitwise")
    auto_priority = None
    _kernel_name = "sample_chi2_v1"

    def __init__(self, cfg, quantities):
        _Reduced.__init__(self, cfg, quantities)

    def _load_kernel(self):
        return _Reduced._load_kernel(self)


@register_sampler
class WishartSampler(_Reduced):
    name = "wishart"
    # 1: network by network (now ``wishart_v1``); 2: batches of networks (now
    # ``wishart_v2``); 3: chi-squared and normal draws in pairs
    version = 3
    description = "linear activation, any k: Bartlett-decomposed Wishart per layer, O(L k^2) numbers"
    applies = "the linear activation (Gaussian weights)"
    auto_priority = 20
    example = {"activation": "linear", "inputs": [[1.0, 0.0], [0.6, 0.8]]}
    _kernel_name = "sample_wishart"

    def _load_kernel(self):
        from ..kernels import wishart_pairs
        return wishart_pairs.sample_wishart

    @classmethod
    def exact_for(cls, cfg):
        return super().exact_for(cfg) and cfg.network.activation["name"] == "linear"


@register_sampler
class WishartV2Sampler(WishartSampler):
    name = "wishart_v2"
    version = 2
    description = ("wishart version 2 (same law, other random numbers: no pairs): resumes "
                   "and extends files written by it, bitwise")
    auto_priority = None

    def _load_kernel(self):
        from ..kernels import wishart_batch
        return wishart_batch.sample_wishart


@register_sampler
class WishartV1Sampler(WishartSampler):
    name = "wishart_v1"
    version = 1
    description = ("wishart as in mcsim before wishart version 2 (same law, other random "
                   "numbers): resumes and extends files written by it, bitwise")
    auto_priority = None

    def _load_kernel(self):
        return _Reduced._load_kernel(self)
