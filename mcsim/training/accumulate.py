"""Training blocks of networks and accumulating what they give, mergeably.

Per recorded step r (``steps[r]``) every network that did not diverge contributes the vector
of ``mcsim.kernels.training`` (length M = 3 K + 4, K = k n_L): its outputs at the k test
inputs, its linearised model's, their difference, and four losses. The accumulator is the
project's `BinnedMoments` with the recorded steps in place of the layer axis (S = R) and a
`Layout` of four parts::

    train_output (K)  train_linearised (K)  train_deviation (K)  train_losses (4)

Blocks go to jackknife bin ``block % bins`` in block order as for every run, with the number
of networks that did not diverge as each block's count, so resume, merge and MPI work
unchanged and the state is bitwise independent of ranks and threads. Diverged networks are
counted (``blocks * block_size - networks``), never averaged.

Estimates (``training_estimates``), each with its delete-one-bin jackknife error:

    output_mean, linearised_mean, deviation_mean   (R, k, n_L)
    output_covariance, linearised_covariance       (R, k, k): covariance over the ensemble of
                                                   one output unit at the k inputs, averaged
                                                   over the n_L units (unbiased, N - 1)
    train_loss, linearised_train_loss              (R,)
    test_loss, linearised_test_loss                (R,)   with training.test_targets only

HDF5: group ``/training`` with ``steps`` (R,), every estimate and its ``_stderr`` twin, the
attributes ``diverged``, ``diverged_fraction``, ``networks_trained``, and the accumulator in
``/training/accumulator`` (the layout of ``/accumulator``); written by
``storage.hdf5.write_training`` and read by ``storage.reader`` (this module does no I/O, so
storage depends on it and not the other way round).
"""
from __future__ import annotations

import os

import numpy as np

from ..stats.accumulator import BinnedMoments
from ..stats.quantities import Layout
from ..stats.results import Estimate

__all__ = ["training_layout", "TrainingWorker", "new_training_accumulator", "add_training_blocks",
           "training_estimates", "TrainingResult", "result_of", "diverged_count", "training_size",
           "warm_up_training", "DATASETS"]

#: estimate name -> (description, units)
DATASETS = {
    "output_mean": ("mean over the ensemble of the trained output z_{i;a}(t) at the [inputs] "
                    "points, shape (R, k, n_L): recorded step, input a, output unit i", "output units"),
    "output_covariance": ("covariance over the ensemble of one output unit's values z_{i;a}(t), "
                          "z_{i;b}(t) at the k inputs, averaged over units i, shape (R, k, k)",
                          "output units squared"),
    "linearised_mean": ("mean of each network's linearised model (its output evolved with its own "
                        "NTK at initialisation), shape (R, k, n_L)", "output units"),
    "linearised_covariance": ("covariance of the linearised model's output, as output_covariance, "
                              "shape (R, k, k)", "output units squared"),
    "deviation_mean": ("mean of network minus its own linearisation, z(t) - z_lin(t), shape "
                       "(R, k, n_L): the effect of the moving NTK (book ch. 11)", "output units"),
    "train_loss": ("mean training loss (1/2) sum_{a,i} (z_{i;a}(t) - y_{a,i})^2 over the training "
                   "points, shape (R,)", "output units squared"),
    "linearised_train_loss": ("mean training loss of the linearised models, shape (R,)",
                              "output units squared"),
    "test_loss": ("mean test loss (1/2) sum_{a,i} (z_{i;a}(t) - y_test_{a,i})^2 over the [inputs] "
                  "points, shape (R,)", "output units squared"),
    "linearised_test_loss": ("mean test loss of the linearised models, shape (R,)", "output units squared"),
}
BUFFER_BYTES = 32 << 20


def training_layout(cfg) -> Layout:
    K = cfg.k * cfg.network.widths[-1]
    return Layout(("train_output", "train_linearised", "train_deviation", "train_losses"),
                  (K, K, K, 4), (2, 2, 2, 2))


def new_training_accumulator(cfg) -> BinnedMoments:
    """An empty accumulator: jackknife bins x recorded steps x the training layout."""
    return BinnedMoments(cfg.ensemble.jackknife_bins, len(cfg.training.record), training_layout(cfg),
                         cfg.ensemble.block_size, cfg.ensemble.first_block)


def training_size(cfg, threads: int | None = None) -> tuple[int, int]:
    """(memory per process, bytes in the output file) that ``[training]`` adds to a run, from
    the config alone (``run.sizes.estimate_run``). With R recorded steps, M = 3 k n_L + 4
    entries per network and step, B jackknife bins: the accumulator B R (M + M^2) 8 bytes,
    about 3 times that while the jackknife estimates are formed, two blocks' states, the
    per-call output buffer (at most BUFFER_BYTES, at least one block) and per thread the
    network's parameters, forward pass and NTK; the file holds the accumulator and the
    estimates (R (3 k n_L + 2 k^2 + 4) values and their errors)."""
    tc, net = cfg.training, cfg.network
    if tc is None:
        return 0, 0
    k, n_out, R, B = cfg.k, net.widths[-1], len(tc.record), cfg.ensemble.jackknife_bins
    M = 3 * k * n_out + 4
    state = 8 * R * (M + M * M)
    block_out = 8 * cfg.ensemble.block_size * R * M
    widths = [net.input_dim, *net.widths]
    params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    P, Q, nmax = tc.n_train + k, (tc.n_train + k) * n_out, max(widths)
    threads = max(1, int(threads or os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1)))
    scratch = 8 * (params + 2 * net.depth * P * nmax + 4 * Q * nmax + Q * Q)
    memory = 4 * B * state + 2 * state + max(BUFFER_BYTES, block_out) + threads * scratch
    file = B * state + 2 * 8 * R * (3 * k * n_out + 2 * k * k + 4)
    return int(memory), int(file)


def diverged_count(acc: BinnedMoments) -> int:
    """Networks trained so far that diverged (not in the moments)."""
    return int(acc.blocks * acc.block_size - acc.networks)


class TrainingWorker:
    """Trains consecutive blocks of networks and reduces each to its moment state."""

    def __init__(self, cfg):
        from ..activations import get_activation
        from ..kernels.dense import WEIGHT_CODES
        from ..kernels.rng import stream_key
        from ..kernels import training as kt
        tc, net = cfg.training, cfg.network
        act = get_activation(net.activation)
        self.kt = kt
        self.key = stream_key(cfg.ensemble.seed, cfg.ensemble.generator)
        self.x = np.ascontiguousarray(np.vstack([tc.inputs, cfg.inputs]), dtype=np.float64)
        self.N = tc.n_train
        self.y = np.ascontiguousarray(tc.targets, dtype=np.float64)
        n_out = net.widths[-1]
        self.y_test = (np.ascontiguousarray(tc.test_targets, dtype=np.float64) if tc.test_targets is not None
                       else np.zeros((0, n_out)))
        self.widths = np.asarray(net.widths, dtype=np.int64)
        self.C_W, self.C_b = np.asarray(net.C_W, dtype=np.float64), np.asarray(net.C_b, dtype=np.float64)
        self.act = (act.code, float(act.param))
        self.weight_code = WEIGHT_CODES[cfg.ensemble.weights]
        self.lam_b = np.asarray(tc.lambda_b, dtype=np.float64)
        self.lam_W = np.asarray(tc.lambda_W, dtype=np.float64)
        self.eta, self.steps = float(tc.learning_rate), int(tc.steps)
        self.record = np.asarray(tc.record, dtype=np.int64)
        self.bs = cfg.ensemble.block_size
        self.R, self.M = len(tc.record), kt.record_width(cfg.k, n_out)
        self.chunk = max(1, BUFFER_BYTES // (self.bs * self.R * self.M * 8))

    def run(self, first_block: int, n: int):
        """Blocks first_block..first_block+n-1: counts (n,), mean (n, R, M), m2 (n, R, M, M)."""
        counts, mean, m2 = np.empty(n), np.empty((n, self.R, self.M)), np.empty((n, self.R, self.M, self.M))
        for c0 in range(0, n, self.chunk):
            cn = min(self.chunk, n - c0)
            out = np.zeros((cn, self.bs, self.R, self.M))
            div = np.zeros((cn, self.bs), dtype=np.uint8)
            self.kt.train_networks(self.key, first_block + c0, cn, self.bs, self.x, self.N, self.y, self.y_test,
                                   self.widths, self.C_W, self.C_b, self.act[0], self.act[1], self.weight_code,
                                   self.lam_b, self.lam_W, self.eta, self.steps, self.record, out, div)
            self.kt.masked_block_moments(out, div, counts[c0:c0 + cn], mean[c0:c0 + cn], m2[c0:c0 + cn])
        return counts, mean, m2


def add_training_blocks(acc: BinnedMoments, first_block: int, counts, mean, m2) -> None:
    """Merge per-block states (block i holds counts[i] networks) for blocks first_block.. in
    order into their bins (block b -> bin b % bins), as `BinnedMoments.add_blocks` does."""
    from ..kernels.moments import merge_moments
    if first_block != acc.first_block + acc.blocks:
        raise ValueError("blocks must be added in order: expected block "
                         f"{acc.first_block + acc.blocks}, got {first_block}")
    R = mean.shape[1]
    m3 = np.zeros((R, 0))
    triples = np.zeros((0, 3), dtype=np.int64)
    for i in range(mean.shape[0]):
        b = (first_block + i) % acc.bins
        merge_moments(float(acc.count[b]), acc.mean[b], acc.m2[b], acc.m3[b], float(counts[i]), mean[i],
                      m2[i], m3, triples, 2)
        acc.count[b] += counts[i]
    acc.blocks += mean.shape[0]


def _estimate(state, k: int, n_out: int, test: bool) -> dict[str, np.ndarray]:
    K = k * n_out
    mean, count = state.mean, float(state.count)
    R = mean.shape[0]
    cov = state.m2 / (count - 1.0)
    out = {"output_mean": mean[:, :K].reshape(R, k, n_out),
           "linearised_mean": mean[:, K:2 * K].reshape(R, k, n_out),
           "deviation_mean": mean[:, 2 * K:3 * K].reshape(R, k, n_out)}
    for name, o in (("output_covariance", 0), ("linearised_covariance", K)):
        c = cov[:, o:o + K, o:o + K].reshape(R, k, n_out, k, n_out)
        out[name] = np.einsum("raibi->rab", c) / n_out
    out["train_loss"] = mean[:, 3 * K].copy()
    out["linearised_train_loss"] = mean[:, 3 * K + 1].copy()
    if test:
        out["test_loss"] = mean[:, 3 * K + 2].copy()
        out["linearised_test_loss"] = mean[:, 3 * K + 3].copy()
    return out


def training_estimates(cfg, acc: BinnedMoments) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (estimate, delete-one-bin jackknife standard error)}; {} before any network."""
    if acc.networks == 0:
        return {}
    k, n_out = cfg.k, cfg.network.widths[-1]
    test = cfg.training.test_targets is not None
    with np.errstate(divide="ignore", invalid="ignore"):
        full = _estimate(acc.total(), k, n_out, test)
        loo = [_estimate(s, k, n_out, test) for s in acc.leave_one_out()]
    B = len(loo)
    result = {}
    for name, value in full.items():
        if B >= 2:
            th = np.stack([d[name] for d in loo])
            err = np.sqrt((B - 1) / B * ((th - th.mean(axis=0)) ** 2).sum(axis=0))
        else:
            err = np.full_like(value, np.nan)
        result[name] = (value, err)
    return result


class TrainingResult(dict):
    """``res.training``: {name: Estimate} (see ``DATASETS``) with ``steps`` (R,) the recorded
    steps, ``diverged`` the number of diverged networks and ``networks`` those averaged."""
    steps: np.ndarray
    diverged: int
    networks: int

    @classmethod
    def build(cls, steps, estimates: dict, diverged: int, networks: int) -> "TrainingResult":
        self = cls({n: Estimate(np.asarray(m), np.asarray(e), n) for n, (m, e) in estimates.items()})
        self.steps, self.diverged, self.networks = np.asarray(steps), int(diverged), int(networks)
        return self

    def to_xarray(self, with_err: bool | None = None):
        """An ``xarray.Dataset`` with a ``step`` dimension (``mcsim.stats.frames``; needs xarray)."""
        from ..stats.frames import training_to_xarray
        return training_to_xarray(self, DATASETS, with_err=with_err)

    def to_pandas(self, entries: str = "distinct", statistics=None):
        """A tidy ``pandas.DataFrame``: one row per step, statistic and entry (``mcsim.stats.frames``)."""
        from ..stats.frames import training_to_pandas
        return training_to_pandas(self, entries=entries, statistics=statistics)

    def __repr__(self) -> str:
        return (f"TrainingResult(steps={self.steps.tolist()}, networks={self.networks}, "
                f"diverged={self.diverged}; {', '.join(self)})")


def result_of(cfg, acc: BinnedMoments) -> TrainingResult:
    return TrainingResult.build(cfg.training.record, training_estimates(cfg, acc), diverged_count(acc),
                                acc.networks)


def warm_up_training(cfg) -> None:
    """Compile (or load) the training kernels on a tiny ensemble of the same kind."""
    import dataclasses
    net = dataclasses.replace(cfg.network, widths=(2,) * (cfg.network.depth - 1) + (cfg.network.widths[-1],))
    tc = dataclasses.replace(cfg.training, steps=1, record=(0, 1))
    ens = dataclasses.replace(cfg.ensemble, block_size=2, jackknife_bins=2, first_block=0, target=None)
    tiny = dataclasses.replace(cfg, network=net, training=tc, ensemble=ens)
    acc = new_training_accumulator(tiny)
    worker = TrainingWorker(tiny)
    for block in range(2):
        add_training_blocks(acc, block, *worker.run(block, 1))
    training_estimates(tiny, acc)


def format_training(tr: TrainingResult, limit: int = 3) -> list[str]:
    """Lines for `mcsim info`: per recorded step the losses and the mean outputs (unit 1)."""
    def f(est, idx):
        m, s = est.mean[idx], est.stderr[idx]
        return f"{m: .5g} +- {s:.2g}" if s > 0 else f"{m: .5g}"
    total = tr.networks + tr.diverged
    lines = ["", f"training    {tr.networks:,} networks averaged, {tr.diverged:,} diverged"
             + (f" ({tr.diverged / total:.2%})" if total else "") if total else
             "training    infinite-width prediction (kernel regression with K and the mean NTK)"]
    k = tr["output_mean"].shape[1] if "output_mean" in tr else 0
    head = f"  {'step':>7}  {'train loss':>20}" + (f"  {'test loss':>20}" if "test_loss" in tr else "")
    head += "".join(f"  {'E z[' + str(a + 1) + ']':>20}" for a in range(min(k, limit)))
    if "deviation_mean" in tr:
        head += "".join(f"  {'E (z - z_lin)[' + str(a + 1) + ']':>20}" for a in range(min(k, limit)))
    lines.append(head)
    for r, t in enumerate(np.asarray(tr.steps).tolist()):
        row = f"  {t:>7}  {f(tr['train_loss'], r):>20}" if "train_loss" in tr else f"  {t:>7}"
        if "test_loss" in tr:
            row += f"  {f(tr['test_loss'], r):>20}"
        for a in range(min(k, limit)):
            row += f"  {f(tr['output_mean'], (r, a, 0)):>20}"
        for a in range(min(k, limit)):
            if "deviation_mean" in tr:
                row += f"  {f(tr['deviation_mean'], (r, a, 0)):>20}"
        lines.append(row)
    return lines
