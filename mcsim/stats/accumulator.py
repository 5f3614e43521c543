"""Moment accumulators: the one mergeable state behind every estimate.

A `MomentState` holds, for S recorded stochastic layers, the count N of networks, the mean of
the per-network vector x (the concatenated quantities of a `Layout`, length M; shape (S, M)),
its central sums m2 = sum (x - mean)(x - mean)^T (shape (S, M, M)) and, for the quantities
kept to third order, m3[t] = sum d_p d_q d_r over the layout's column triples t = (p <= q <= r)
(shape (S, T)). Central sums are merged with Chan's (m2) and Pebay's (m3) formulas, never
accumulated as raw power sums, so the 1/n signal survives 10^9 networks. The state knows
nothing about what the quantities mean: statistics read their blocks through the layout.

`BinnedMoments` keeps one such state per jackknife bin (leading axis B). Block b goes to
bin b % B; blocks are only ever added as a contiguous prefix 0, 1, 2, ... in increasing
order, so the state is a pure function of the blocks, whichever rank or thread made them.
The same `merge()` combines blocks, ranks (via their blocks) and files.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels.moments import merge_blocks_into_bins, merge_moments
from .quantities import Layout


@dataclass
class MomentState:
    """Moments of one group of networks. count: float64 N (exact below 2**53)."""
    count: float
    mean: np.ndarray            # (S, M)
    m2: np.ndarray              # (S, M, M)
    m3: np.ndarray              # (S, T); T = 0 when no quantity is kept to third order
    layout: Layout

    @classmethod
    def empty(cls, layers: int, layout: Layout) -> "MomentState":
        M, T = layout.width, layout.n_triples
        return cls(0.0, np.zeros((layers, M)), np.zeros((layers, M, M)), np.zeros((layers, T)), layout)

    @property
    def order(self) -> int:
        return 3 if self.m3.shape[-1] else 2

    def copy(self) -> "MomentState":
        return MomentState(self.count, self.mean.copy(), self.m2.copy(), self.m3.copy(), self.layout)

    def merge(self, other: "MomentState") -> "MomentState":
        """Merge `other` into self (in place) and return self."""
        merge_moments(float(self.count), self.mean, self.m2, self.m3, float(other.count), other.mean,
                      other.m2, other.m3, _triples(self.layout), self.order)
        self.count = float(self.count) + float(other.count)   # the kernel leaves counts to us
        return self


_TRIPLES_CACHE: dict = {}


def _triples(layout: Layout) -> np.ndarray:
    if layout not in _TRIPLES_CACHE:
        _TRIPLES_CACHE[layout] = layout.triples()
    return _TRIPLES_CACHE[layout]


class BinnedMoments:
    """Jackknife bins of moment states, filled block by block.

    Arrays: count (B,), mean (B, S, M), m2 (B, S, M, M), m3 (B, S, T), with M and T from
    the `layout`. `blocks` is the number of blocks merged so far (always the prefix
    0..blocks-1 for a run; after merging files it is the sum, and `block_ranges` records
    where they came from).
    """

    def __init__(self, bins: int, layers: int, layout: Layout, block_size: int, first_block: int = 0):
        M, T = layout.width, layout.n_triples
        self.layout = layout
        self.block_size = int(block_size)
        self.count = np.zeros(bins)
        self.mean = np.zeros((bins, layers, M))
        self.m2 = np.zeros((bins, layers, M, M))
        self.m3 = np.zeros((bins, layers, T))
        self.blocks = 0
        self.first_block = int(first_block)
        self._triples = _triples(layout)

    # -- shape ------------------------------------------------------------------------
    @property
    def bins(self) -> int:
        return self.count.shape[0]

    @property
    def order(self) -> int:
        return 3 if self.m3.shape[-1] else 2

    @property
    def networks(self) -> int:
        return int(self.count.sum())

    def bin_state(self, i: int) -> MomentState:
        return MomentState(float(self.count[i]), self.mean[i], self.m2[i], self.m3[i], self.layout)

    # -- filling ------------------------------------------------------------------------
    def add_blocks(self, first_block: int, mean, m2, m3) -> None:
        """Merge per-block states (n_blocks, S, ...) for blocks first_block.. in order.

        Blocks must continue the prefix exactly: this is what makes results independent of
        how many ranks or threads produced them."""
        if first_block != self.first_block + self.blocks:
            raise ValueError("blocks must be added in order: expected block "
                             f"{self.first_block + self.blocks}, got {first_block}")
        merge_blocks_into_bins(self.count, self.mean, self.m2, self.m3, mean, m2, m3,
                               float(self.block_size), first_block, self.bins, self._triples, self.order)
        self.blocks += mean.shape[0]

    def merge(self, other: "BinnedMoments") -> "BinnedMoments":
        """Bin-wise merge of another run of the same ensemble (in place; returns self)."""
        diff = self.layout.difference(other.layout)
        if diff:
            raise ValueError(f"cannot merge accumulators of different layouts: {diff}")
        if (other.bins, other.mean.shape, other.m3.shape) != (self.bins, self.mean.shape, self.m3.shape):
            raise ValueError("cannot merge accumulators of different shape (bins, layers, inputs or statistics)")
        for i in range(self.bins):
            s = self.bin_state(i)
            s.merge(other.bin_state(i))
            self.count[i] = s.count
        self.blocks += other.blocks
        return self

    # -- reductions for the estimators ---------------------------------------------------
    def total(self) -> MomentState:
        """All bins merged, in bin order."""
        state = MomentState.empty(self.mean.shape[1], self.layout)
        for i in range(self.bins):
            state.merge(self.bin_state(i))
        return state

    def leave_one_out(self) -> list[MomentState]:
        """For each non-empty bin i, the merge of all other bins (delete-one jackknife).

        Built from prefix and suffix merges (O(B) merges, no subtraction of states, which
        would cancel catastrophically)."""
        idx = [i for i in range(self.bins) if self.count[i] > 0]
        S = self.mean.shape[1]
        prefix = [MomentState.empty(S, self.layout)]
        for i in idx:
            prefix.append(prefix[-1].copy().merge(self.bin_state(i)))
        suffix = [MomentState.empty(S, self.layout)]
        for i in reversed(idx):
            suffix.append(suffix[-1].copy().merge(self.bin_state(i)))
        suffix.reverse()
        return [prefix[j].copy().merge(suffix[j + 1]) for j in range(len(idx))]

    # -- persistence ----------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2, "m3": self.m3}

    @classmethod
    def from_arrays(cls, arrays: dict, layout: Layout, blocks: int, block_size: int,
                    first_block: int = 0) -> "BinnedMoments":
        """Rebuild from stored arrays; raises ValueError if their shapes do not match the layout."""
        count, mean = np.asarray(arrays["count"]), np.asarray(arrays["mean"])
        m3 = np.asarray(arrays["m3"])
        if count.ndim != 1 or mean.ndim != 3:
            raise ValueError("accumulator arrays have the wrong number of dimensions")
        B, S = count.shape[0], mean.shape[1]
        M, T = layout.width, layout.n_triples
        expected = {"mean": (B, S, M), "m2": (B, S, M, M), "m3": (B, S, T)}
        for name, shape in expected.items():
            if np.shape(arrays[name]) != shape:
                raise ValueError(f"accumulator {name} has shape {np.shape(arrays[name])}, the layout "
                                 f"needs {shape}")
        self = cls(B, S, layout, block_size, first_block)
        self.count[...] = count
        self.mean[...] = mean
        self.m2[...] = arrays["m2"]
        self.m3[...] = m3
        self.blocks = int(blocks)
        return self


def accumulator_layout(cfg) -> Layout:
    """The layout a run of ``cfg`` accumulates: the quantities its statistics need, each to
    the highest moment order any of them needs."""
    from .statistics import computed, required_quantities
    return Layout.build(cfg, required_quantities(computed(cfg.output.statistics)))


def new_accumulator(cfg) -> BinnedMoments:
    """An empty accumulator for a run of ``cfg``."""
    return BinnedMoments(cfg.ensemble.jackknife_bins, len(cfg.stochastic_layers), accumulator_layout(cfg),
                         cfg.ensemble.block_size, cfg.ensemble.first_block)
