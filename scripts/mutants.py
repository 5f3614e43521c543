"""Curated mutation testing: does the test suite catch realistic bugs?

Each entry of MUTANTS replaces one exact snippet of one module by a plausible wrong version
(a sign, an off-by-one fan-in, a dropped term, a wrong factor, a wrong ordering, random
numbers keyed by the wrong index, a missing fsync, ...) and names the tests that should
catch it. The runner copies the checkout to a temporary folder once, applies each mutant
there in turn (the checkout is never modified), runs the named tests, and restores the file.
A mutant is *killed* when the tests fail; a survivor is a gap in the suite, unless its entry
explains why it is equivalent or out of reach (``note``).

    bash scripts/mutation.sh                     # all mutants (about 20-40 minutes on 2 cores)
    bash scripts/mutation.sh --list              # the table
    bash scripts/mutation.sh --check             # every snippet occurs exactly once (fast)
    bash scripts/mutation.sh markov-stream-overlap dense-uniform-scale   # some of them
    bash scripts/mutation.sh --module kernels/   # those of one file or folder

Updating the table when the code changes: ``--check`` names every entry whose ``old``
snippet no longer occurs exactly once; edit the snippet (keep the bug the same). New
modules get new entries: file, the exact old text, the new text, the tests to run (pytest
arguments, fast tests only) and, for known survivors, a note. The last line of the output
is ``mutation score: K/N killed``.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str                   # path relative to the repository root
    old: str                    # exact snippet; must occur exactly once in the file
    new: str
    tests: tuple                # pytest arguments (files or node ids)
    what: str = ""              # the bug, in words
    note: str = ""              # for an expected survivor: why the suite cannot see it
    extra: tuple = field(default_factory=tuple)   # further pytest options (e.g. ("-k", "relu"))


T_REF = "tests/test_reference_networks.py"
T_EXACT = "tests/test_exact_moments.py"
T_JACK = "tests/test_jackknife_exact.py"
T_DUR = "tests/test_durability.py"
T_KERN = "tests/test_kernels.py"
T_AGREE = "tests/test_samplers_agree.py"
T_EST = "tests/test_estimators.py"
T_MOM = "tests/test_moments.py"
T_DRIVER = "tests/test_driver.py"
T_REC = "tests/test_theory_recursions.py"
T_DNTK = "tests/test_dntk_theory.py"
T_REC_MC = ("tests/test_theory_recursions.py::test_metric_correction_propagates_with_the_width_ratio",
            "tests/test_theory_recursions.py::test_metric_correction_against_numpy_monte_carlo",
            "tests/test_theory_recursions.py::test_unequal_widths_ratio")
T_GAUSS = "tests/test_theory_gaussian.py"
T_CRIT = "tests/test_theory_criticality.py"
T_MERGE = "tests/test_merge_cli.py"
T_CONFIG = "tests/test_config.py"
T_SWEEP = "tests/test_sweep.py"
T_TARGET = "tests/test_target.py"
T_RNG = "tests/test_rng.py"
T_GOLDEN = "tests/test_golden.py"
T_REG = "tests/test_registry.py"
T_MPI = "tests/test_mpi.py::test_ranks_give_bitwise_identical_results"
T_DNTK_KERN = "tests/test_dntk_kernel.py"
T_DNTK_MC = "tests/test_dntk_runs.py::test_agrees_with_numpy_monte_carlo_and_tensor_structure[dense]"
T_DNTK_MARKOV = ("tests/test_dntk_kernel.py::test_markov_weight_products_are_those_of_one_matrix",
                 "tests/test_dntk_runs.py::test_agrees_with_numpy_monte_carlo_and_tensor_structure[markov]",
                 "tests/test_dntk_runs.py::test_markov_agrees_with_dense_on_narrow_layers")

MUTANTS = [
    # ---- kernels: the markov sampler -----------------------------------------------------
    Mutant("markov-stream-overlap", "kernels/markov.py",
           "position += (k * n + 1) // 2", "position += (k * n) // 2",
           (T_REF,), "layer streams overlap by one counter when k n is odd"),
    Mutant("markov-ascending-transform", "kernels/common.py",
           "for a in range(k - 1, -1, -1):", "for a in range(k):",
           (T_REF, T_KERN), "z = C eps in place in the wrong order (reads rows already transformed)"),
    Mutant("markov-next-layer-C_W", "kernels/markov.py",
           "metric_from_activations(zz, n, C_W[l + 1], C_b[l + 1], G, out[l])",
           "metric_from_activations(zz, n, C_W[l], C_b[l + 1], G, out[l])",
           (T_REF, T_EXACT), "per-layer C_W off by one layer"),
    Mutant("markov-keyed-by-call-position", "kernels/markov.py",
           "_markov_network(key, first_block + i, j, G1,",
           "_markov_network(key, first_block + i, t, G1,",
           (T_REF, T_KERN), "random numbers keyed by the network's position in the call, not in its block"),
    # ---- kernels: shared layer maths -------------------------------------------------------
    Mutant("cholesky-duplicate-search", "kernels/common.py",
           "        for i in range(j):\n            same = True",
           "        for i in range(j - 1):\n            same = True",
           (T_REF,), "duplicate-row search misses the adjacent row"),
    Mutant("cholesky-pivot-tolerance", "kernels/common.py",
           "C[j, j] = np.sqrt(d) if d > tol else 0.0", "C[j, j] = np.sqrt(d) if d > 0.0 else 0.0",
           (T_REF,), "round-off pivots of semidefinite metrics become tiny positive pivots"),
    Mutant("cholesky-wrong-divisor", "kernels/common.py",
           "C[j, t] = sub_dot_seq(G[j, t], C[j], C[t], t) / C[t, t]", "C[j, t] = sub_dot_seq(G[j, t], C[j], C[t], t) / C[j, j]",
           (T_REF, T_KERN), "divides by the wrong pivot"),
    Mutant("metric-bessel-fan-in", "kernels/common.py",
           "scale = C_W / n\n", "scale = C_W / (n - 1)\n",
           (T_REF, T_EXACT), "Ghat normalised by n - 1 instead of n"),
    Mutant("metric-dropped-bias", "kernels/common.py",
           "g = C_b + scaled_dot(scale, s[a, :n], s[b, :n])", "g = scaled_dot(scale, s[a, :n], s[b, :n])",
           (T_REF, T_EXACT), "C_b dropped from Ghat"),
    Mutant("input-metric-k", "kernels/common.py",
           "G[a, b] = C_b1 + scaled_dot(C_W1 / n0, inputs[a], inputs[b])", "G[a, b] = C_b1 + scaled_dot(C_W1 / k, inputs[a], inputs[b])",
           (T_REF, T_EXACT), "layer-1 metric divided by the number of inputs, not n_0"),
    # ---- kernels: the dense sampler --------------------------------------------------------
    Mutant("dense-uniform-scale", "kernels/dense.py",
           "scale = np.sqrt(3.0 * C_W[l] / n_in)", "scale = np.sqrt(C_W[l] / n_in)",
           (T_REF, T_KERN), "uniform weights with a third of the variance"),
    Mutant("dense-sign-row-counters", "kernels/dense.py",
           "        return (n + 127) // 128", "        return n // 128",
           (T_REF, T_KERN), "Rademacher rows reuse the same counter (0 counters per short row)"),
    Mutant("dense-normal-row-overlap", "kernels/dense.py",
           "        return (nu + 1) * ((n + 1) // 2)\n    return (n + 1) // 2",
           "        return (nu + 1) * ((n + 1) // 2)\n    return n // 2",
           (T_REF,), "Gaussian weight rows overlap by one counter when n_{l-1} is odd"),
    Mutant("dense-bias-variance", "kernels/dense.py",
           "sb = np.sqrt(C_b[l])", "sb = C_b[l]",
           (T_REF, T_KERN), "bias scaled by its variance instead of its standard deviation"),
    Mutant("dense-next-layer-C_b", "kernels/dense.py",
           "metric_from_activations(h, n, C_W[l + 1], C_b[l + 1], G, out[l])",
           "metric_from_activations(h, n, C_W[l + 1], C_b[l], G, out[l])",
           (T_REF, T_EXACT), "per-layer C_b off by one layer"),
    # ---- kernels: random numbers and moments --------------------------------------------------
    Mutant("rng-network-block-swapped", "kernels/rng.py",
           "        np.uint64(network) & _MASK32,\n        block & _MASK32,",
           "        block & _MASK32,\n        np.uint64(network) & _MASK32,",
           (T_RNG,), "counter words of block and network swapped (streams of (b, j) and (j, b) collide)"),
    Mutant("box-muller-log-argument", "kernels/rng.py",
           "r = np.sqrt(-2.0 * _log(1.0 - ua))", "r = np.sqrt(-1.0 * _log(1.0 - ua))",
           (T_RNG,), "normals with variance 1/2"),
    Mutant("philox32-angle-from-radius-word", "kernels/rng.py",
           "        buf[4 * i + 1] = _v31(x1)\n", "        buf[4 * i + 1] = _v31(x0)\n",
           (T_RNG,), "philox32: the angle of the first pair from the radius word (z_0, z_1 dependent)"),
    Mutant("philox32-uniform-offset", "kernels/rng.py",
           "np.float32(np.int32(x >> _ONE)) + _F32_HALF", "np.float32(np.int32(x >> _ONE)) + _F32_HALF * _F32_HALF",
           (T_RNG,), "philox32: uniform on (j + 1/4) 2**-31 instead of the midpoints (layout off by a quarter step)"),
    Mutant("logf-ln2-high-part", "kernels/f32math.py",
           "return f + y + e * _LN2_HI", "return f + y + e * _LN2_LO",
           (T_RNG,), "float32 log drops the high part of e ln 2 (radii wrong away from v = 1)"),
    Mutant("resume-ignores-file-generator", "mcsim/run/driver.py",
           "    if cfg.ensemble.generator_auto and stored_gen != cfg.ensemble.generator:",
           "    if False and stored_gen != cfg.ensemble.generator:",
           ("tests/test_generator_setting.py",), "a resume without a named generator switches a philox53 file to philox32"),
    Mutant("block-mean-n-minus-1", "kernels/moments.py",
           "mu = total(samples[i, :, s, c]) / N", "mu = total(samples[i, :, s, c]) / (N - 1)",
           (T_MOM, T_EST), "block mean divided by N - 1"),
    Mutant("merge-m2-cross-term", "kernels/moments.py",
           "c2 = na * nb / n\n", "c2 = na * nb / (n * n)\n",
           (T_MOM, T_EST), "Chan's merge: wrong weight of the between-group term"),
    Mutant("merge-m3-sign", "kernels/moments.py",
           "c3 = na * nb * (na - nb) / (n * n)", "c3 = na * nb * (nb - na) / (n * n)",
           (T_MOM, T_EST), "Pebay's merge: sign of the delta^3 term (only unequal counts see it)"),
    Mutant("merge-mean-weight", "kernels/moments.py",
           "w = nb / n\n", "w = na / n\n",
           (T_MOM, T_EST), "merged mean weighted by the wrong count"),
    Mutant("bin-rule-shifted", "kernels/moments.py",
           "b = (first_block + i) % n_bins", "b = (first_block + i + 1) % n_bins",
           (T_MOM, T_JACK), "block b in bin (b + 1) % B, not the documented b % B"),
    # ---- stats: estimators, accumulator, indexing --------------------------------------------
    Mutant("jackknife-factor-dropped", "mcsim/stats/estimators.py",
           "err = np.sqrt((B - 1) / B * ((thetas", "err = np.sqrt(((thetas",
           (T_JACK, T_EST), "jackknife (B-1)/B factor dropped (errors ~2.6 % too large at B = 20)"),
    Mutant("vertex-fan-in-is-width", "mcsim/stats/estimators.py",
           "[cfg.network.fan_in(l) for l in layers]", "[cfg.network.widths[l - 1] for l in layers]",
           (T_EXACT, T_DRIVER), "vertex and six-point scaled by n_l instead of n_{l-1}"),
    Mutant("layer-one-gram-k", "mcsim/stats/estimators.py",
           "cfg.network.C_W[0] / cfg.network.input_dim", "cfg.network.C_W[0] / cfg.k",
           (T_DRIVER, T_EXACT), "exact layer-1 metric divided by k, not n_0"),
    Mutant("jackknife-empty-bins", "mcsim/stats/accumulator.py",
           "idx = [i for i in range(self.bins) if self.count[i] > 0]", "idx = list(range(self.bins))",
           (T_JACK, T_EST), "empty bins counted in the jackknife (blocks < bins)"),
    Mutant("leave-one-out-keeps-bin", "mcsim/stats/accumulator.py",
           "return [prefix[j].copy().merge(suffix[j + 1]) for j in range(len(idx))]",
           "return [prefix[j + 1].copy().merge(suffix[j + 1]) for j in range(len(idx))]",
           (T_JACK, T_EST), "the leave-one-out state still holds the left-out bin"),
    Mutant("merge-blocks-not-added", "mcsim/stats/accumulator.py",
           "        self.blocks += other.blocks\n        return self",
           "        return self",
           (T_MERGE,), "bin-wise merge forgets the other run's block count"),
    Mutant("covariance-divides-by-N", "mcsim/stats/statistics.py",
           "return m2 / (N - 1) if N > 1", "return m2 / N if N > 1",
           (T_EST, T_JACK), "biased covariance (1/N)"),
    Mutant("six-point-n-not-n2", "mcsim/stats/statistics.py",
           "return fan_in[:, None] ** 2 * k3", "return fan_in[:, None] * k3",
           (T_EXACT, T_JACK), "six-point scaled by n instead of n^2"),
    Mutant("six-point-k-statistic", "mcsim/stats/statistics.py",
           "k3 = N * m3 / ((N - 1) * (N - 2))", "k3 = m3 / (N - 1)",
           (T_EST, T_JACK), "k-statistic factor replaced by 1/(N-1): biased third cumulant"),
    Mutant("kurtosis-factor", "mcsim/stats/statistics.py",
           "return 3 * cov[:, diag, diag] / mean[:, diag] ** 2", "return 2 * cov[:, diag, diag] / mean[:, diag] ** 2",
           (T_EST, T_EXACT), "excess kurtosis with 2 Var instead of 3 Var"),
    Mutant("pairs-column-major", "mcsim/stats/indexing.py",
           "a, b = np.triu_indices(k)", "b, a = np.tril_indices(k)",
           (T_MOM, T_EXACT), "pairs in column-major order (differs from the kernels' order for k >= 3)"),
    Mutant("unpack-vertex-transposed", "mcsim/stats/indexing.py",
           "return cov[..., pi[:, :, None, None], pi[None, None, :, :]]",
           "return cov[..., pi[:, None, :, None], pi[None, :, None, :]]",
           (T_MOM, T_EXACT), "vertex unpacked as V[a1, a3, a2, a4]"),
    # ---- theory --------------------------------------------------------------------------------
    Mutant("G1-ratio-inverted", "mcsim/theory/recursions.py",
           "G1_new += ratio * C_W_ * 0.5 * np.einsum", "G1_new += C_W_ * 0.5 / ratio * np.einsum",
           (T_EXACT, *T_REC_MC), "width ratio inverted in the G1 source term only"),
    Mutant("G1-propagation-ratio-dropped", "mcsim/theory/recursions.py",
           "G1_new = ratio * C_W_ * np.einsum(\"abcd,cd->ab\", J, G1)",
           "G1_new = C_W_ * np.einsum(\"abcd,cd->ab\", J, G1)",
           (T_EXACT, *T_REC_MC), "width ratio dropped from the propagation of G1"),
    Mutant("G1-half-dropped", "mcsim/theory/recursions.py",
           "G1_new += ratio * C_W_ * 0.5 * np.einsum", "G1_new += ratio * C_W_ * np.einsum",
           (T_EXACT, *T_REC_MC), "the 1/2 of the second-order term dropped"),
    Mutant("V-ratio-inverted", "mcsim/theory/recursions.py",
           "V_new += ratio * C_W_ ** 2 * np.einsum", "V_new += C_W_ ** 2 / ratio * np.einsum",
           (T_EXACT, *T_REC_MC), "width ratio inverted in the vertex recursion"),
    Mutant("kernel-dropped-bias", "mcsim/theory/recursions.py",
           "K = C_b_ + C_W_ * M2", "K = C_W_ * M2",
           (T_EXACT, *T_REC_MC), "C_b dropped from the kernel recursion"),
    Mutant("prediction-kurtosis-width", "mcsim/theory/recursions.py",
           "(self.fan_in * np.diag(self.kernel) ** 2)", "(self.width * np.diag(self.kernel) ** 2)",
           (T_EXACT, *T_REC_MC), "predicted kurtosis divided by n_l instead of n_{l-1}"),
    Mutant("prediction-metric-width", "mcsim/theory/recursions.py",
           "return self.kernel + self.correction / self.fan_in", "return self.kernel + self.correction / self.width",
           (T_EXACT,), "K + G1/n with n the width, not the fan-in"),
    Mutant("relu-two-point-kappa", "mcsim/theory/gaussian.py",
           "return (np.sqrt(1 - rho * rho) + (np.pi - np.arccos(rho)) * rho) / (2 * np.pi)",
           "return (np.sqrt(1 - rho * rho) + (np.pi - np.arccos(rho)) * rho) / np.pi",
           (T_GAUSS, T_EXACT), "arc-cosine kernel off by a factor 2"),
    Mutant("sin-two-point-sign", "mcsim/theory/gaussian.py",
           "return 0.5 * (np.exp(K - m) - np.exp(-K - m))", "return 0.5 * (np.exp(K - m) + np.exp(-K - m))",
           (T_GAUSS, T_EXACT), "sin closed form with cosh instead of sinh"),
    Mutant("criticality-chi-perp", "mcsim/theory/criticality.py",
           "return C_W * _D(_act(activation), K)", "return C_W * _D(_act(activation), K) ** 2",
           (T_CRIT,), "chi_perp squared"),
    # ---- storage, merge, driver -------------------------------------------------------------
    Mutant("fsync-file-dropped", "mcsim/storage/hdf5.py",
           "            os.fsync(fh.fileno())", "            pass",
           (T_DUR,), "the temporary file is renamed without fsync"),
    Mutant("fsync-directory-dropped", "mcsim/storage/hdf5.py",
           "                os.fsync(dirfd)", "                pass",
           (T_DUR,), "the rename is not made durable (no fsync of the directory)"),
    Mutant("stored-blocks-off-by-one", "mcsim/storage/hdf5.py",
           "        a.attrs.update(blocks=acc.blocks,", "        a.attrs.update(blocks=acc.blocks - 1,",
           (T_DRIVER,), "the stored accumulator claims one block fewer"),
    Mutant("merge-complete-any", "mcsim/storage/merge.py",
           "\"complete\": all(is_complete(r.attrs) for r in runs)",
           "\"complete\": any(is_complete(r.attrs) for r in runs)",
           (T_MERGE,), "a merge with a partial input claims to be complete"),
    Mutant("merge-overlap-check", "mcsim/storage/merge.py",
           "if r[\"seed\"] == q[\"seed\"] and r[\"first_block\"] < q[\"first_block\"] + q[\"blocks\"]",
           "if r[\"seed\"] == q[\"seed\"] and r[\"first_block\"] < q[\"first_block\"]",
           (T_MERGE,), "overlapping block ranges of one seed are merged (networks counted twice)"),
    Mutant("checkpoint-marked-complete", "mcsim/run/driver.py",
           "_checkpoint(cfg, path, state, now - session_start, complete=False)",
           "_checkpoint(cfg, path, state, now - session_start, complete=True)",
           (T_DUR,), "mid-run checkpoints marked complete (sweep --submit would skip the task)"),
    Mutant("driver-first-block-ignored", "mcsim/run/driver.py",
           "acc.add_blocks(cfg.ensemble.first_block + g_first, *g_states)",
           "acc.add_blocks(g_first, *g_states)",
           (T_MERGE,), "ensemble.first_block forgotten when merging a round"),
    Mutant("driver-rng-keyed-by-rank", "mcsim/run/driver.py",
           "states = worker.run(cfg.ensemble.first_block + first, n) if n else None",
           "states = worker.run(cfg.ensemble.first_block + first + comm.rank, n) if n else None",
           (T_MPI,), "each rank's blocks shifted by its rank: streams depend on the number of ranks"),
    Mutant("resume-ignores-complete", "mcsim/run/driver.py",
           "if existing.complete and (acc.blocks == cfg.ensemble.blocks or met):",
           "if acc.blocks == cfg.ensemble.blocks or met:",
           (T_DUR, T_DRIVER + "::test_resume_and_extend_are_bitwise_equal_to_one_run"),
           "a file with all its blocks is treated as up to date without its complete flag"),
    # ---- config, sweep, target -----------------------------------------------------------------
    Mutant("config-C_W-zero-allowed", "mcsim/config/schema.py",
           "if v < 0 or (strictly_positive and v == 0):", "if v < 0:",
           (T_CONFIG,), "C_W = 0 accepted"),
    Mutant("config-one-bin-allowed", "mcsim/config/schema.py",
           "    if bins < 2:\n", "    if bins < 1:\n",
           (T_CONFIG,), "a single jackknife bin accepted (no error bars)"),
    Mutant("fan-in-of-layer", "mcsim/config/schema.py",
           "return self.input_dim if layer == 1 else self.widths[layer - 2]",
           "return self.input_dim if layer == 1 else self.widths[layer - 1]",
           (T_EXACT, T_DRIVER), "fan_in(l) returns n_l"),
    Mutant("merge-key-keeps-seed", "mcsim/config/compat.py",
           "for key in (\"seed\", \"first_block\"):", "for key in (\"first_block\",):",
           (T_MERGE,), "runs of different seeds refused by merge"),
    Mutant("sweep-partial-counts-as-complete", "mcsim/storage/reader.py",
           "return \"complete\" if is_complete(attrs) else \"partial\"", "return \"complete\"",
           (T_SWEEP,), "a checkpoint counts as a finished task: sweep --submit skips it"),
    Mutant("target-worst-entry", "mcsim/run/target.py",
           "        if value > worst:\n", "        if worst < 0 or value < worst:\n",
           (T_TARGET,), "the target is checked on the best entry instead of the worst"),
    # -- NTK, higher orders, weight laws (merged later; their own independent tests) --------
    Mutant("ntk-A-no-fan-in", "mcsim/stats/ntk_estimators.py",
           "    c = _cov(mom, \"ntk_11\", \"ntk_22\")\n    return fan_in[:, None, None] * 0.5",
           "    c = _cov(mom, \"ntk_11\", \"ntk_22\")\n    return 0.5",
           ("tests/test_ntk_reference.py",), "ntk_A without the fan-in factor n_{l-1}"),
    Mutant("ntk-B-no-fan-in", "mcsim/stats/ntk_estimators.py",
           "    k = _k_of_square(t.shape[-1])\n    return fan_in[:, None, None] * 0.5 * (t + _swap_units(t, k))\n\n\ndef ntk_D",
           "    k = _k_of_square(t.shape[-1])\n    return 0.5 * (t + _swap_units(t, k))\n\n\ndef ntk_D",
           ("tests/test_ntk_reference.py",), "ntk_B without the fan-in factor n_{l-1}"),
    Mutant("z-kurtosis-no-cumulant", "mcsim/stats/statistics.py",
           "return (3 * cov[:, diag, diag] + mom.mean(\"unit_cumulant_diag\")) / mean[:, diag] ** 2",
           "return (3 * cov[:, diag, diag]) / mean[:, diag] ** 2",
           ("tests/test_weight_laws.py",), "z_kurtosis without the weight-law cumulant"),
    Mutant("ntk-lambda-ignored", "mcsim/samplers/markov.py",
           "return np.asarray(net.lambda_W, dtype=np.float64), np.asarray(net.lambda_b, dtype=np.float64), flags",
           "return np.ones(net.depth), np.asarray(net.lambda_b, dtype=np.float64), flags",
           ("tests/test_ntk_reference.py",), "the weights' learning rates ignored by markov"),
    # -- trained ensembles: compare, plan ---------------------------------------------------
    Mutant("train-compare-deviation-target", "mcsim/analysis/training_compare.py",
           '"output_mean": "output_mean", "linearised_mean": "output_mean", "deviation_mean": None,',
           '"output_mean": "output_mean", "linearised_mean": "output_mean", "deviation_mean": "output_mean",',
           ("tests/test_training_compare.py",), "network minus linearisation held against E z(t), not 0"),
    Mutant("train-compare-step-shift", "mcsim/analysis/training_compare.py",
           "x, s, p = float(est.mean[(r, *idx)]), float(est.stderr[(r, *idx)]), float(y[(r, *idx)])",
           "x, s, p = float(est.mean[(r, *idx)]), float(est.stderr[(r, *idx)]), float(y[(r - 1, *idx)])",
           ("tests/test_training_compare.py",), "each step compared with the previous step's prediction"),
    Mutant("train-sweep-fan-in", "mcsim/analysis/training_compare.py",
           "n_all = np.array([m.widths[-2] for m in ms], dtype=float)",
           "n_all = np.array([m.widths[-2] ** 0.5 for m in ms], dtype=float)",
           ("tests/test_training_compare.py",), "the width fit in 1/sqrt(n) instead of 1/n"),
    Mutant("train-plan-steps-ignored", "mcsim/run/plan.py",
           "return self.networks_needed * self.training_steps",
           "return self.networks_needed",
           ("tests/test_training_plan.py",), "the plan's training work not proportional to the steps"),
    # -- dNTK theory (mcsim/theory/dntk.py; tests/test_dntk_theory.py) ----------------------
    Mutant("dntk-sigma2-terms-dropped", "mcsim/theory/dntk.py",
           "    Pn = lw * cw * ein(\"bc,bcad->abcd\", Th, Y4) + diag\n",
           "    Pn = lw * cw * ein(\"bc,bcad->abcd\", Th, Y4)\n",
           (T_DNTK,), "P without the single-unit sigma'' terms (d sigma'/dtheta)",
           extra=("-k", "layer2_exact")),
    Mutant("dntk-Q-wrong-ntk-entry", "mcsim/theory/dntk.py",
           "    Qn = lw * cw * (ein(\"ab,abcd->abcd\", Th, Y4) + ein(\"ac,acbd->abcd\", Th, Y4)) + diag",
           "    Qn = lw * cw * (ein(\"bc,abcd->abcd\", Th, Y4) + ein(\"ac,acbd->abcd\", Th, Y4)) + diag",
           (T_DNTK,), "Q's weight term with H[a1,a2] where H[a0,a1] belongs",
           extra=("-k", "layer2_exact")),
    Mutant("dntk-P-propagation-dropped", "mcsim/theory/dntk.py",
           "                             + ein(\"ab,dch,abch->abcd\", Dp, Yd, P))",
           "                             )",
           (T_DNTK,), "P of layer l not propagated to layer l+1",
           extra=("-k", "closed_form")),
    Mutant("dntk-width-ratio-inverted", "mcsim/theory/dntk.py",
           "                         fan_in[t] / fan_in[t - 1], q)",
           "                         fan_in[t - 1] / fan_in[t], q)",
           (T_DNTK,), "r = n_l/n_{l-1} inverted in the two-unit terms",
           extra=("-k", "closed_form")),
    Mutant("dntk-Q-F-term-dropped", "mcsim/theory/dntk.py",
           "        Qn += r * lw * cw * (ein(",
           "        Qn += 0 * r * lw * cw * (ein(",
           (T_DNTK,), "Q without the NTK-preactivation correlation F of the previous layer",
           extra=("-k", "closed_form or width_extrapolation")),
    Mutant("dntk-book-Q-order", "mcsim/theory/dntk.py",
           "    return np.asarray(P).copy(), np.einsum(\"abcd->adbc\", np.asarray(Q))",
           "    return np.asarray(P).copy(), np.einsum(\"abcd->acdb\", np.asarray(Q))",
           (T_DNTK,), "to_book with the wrong index permutation", extra=("-k", "book")),
    # ---- kernels: erf / erfc / gelu (issue 12), threaded moments, the dense wrapper ------------
    Mutant("erfc-no-t-correction", "kernels/vmath.py",
           "    return _fma(te, _fma(eta3, kappa3, dp), te)", "    return _fma(te, dp, te)",
           ("tests/test_activations.py",), "erfc without the correction for the rounded t = 3 / (3 + a)",
           extra=("-k", "mpmath")),
    Mutant("erfc-exponent-split-dropped", "kernels/vmath.py",
           "_fma(kf, LN2_LO, _fma(a, a, -zz)))",
           "kf * LN2_LO)",
           ("tests/test_activations.py",), "erfc's exponent -zh^2 without the a^2 - zh^2 part",
           extra=("-k", "mpmath")),
    Mutant("erf-small-region-too-far", "kernels/vmath.py",
           "    v = big if a >= _ERF_SMALL else small", "    v = big if a >= 1.0 else small",
           ("tests/test_activations.py",), "erf's small-|x| polynomial used beyond its fitted range",
           extra=("-k", "mpmath")),
    Mutant("moments-pieces-overlap", "kernels/moments.py",
           "first = (job - task * n_pieces) * PIECE", "first = (job - task * n_pieces) * (PIECE - 1)",
           (T_MOM,), "threaded products: pieces overlap, the last products of a task never computed"),
    Mutant("moments-m2-lower-triangle", "kernels/moments.py",
           "                m2_out[i, r, q, p] = acc\n", "",
           (T_MOM,), "threaded products: M2's lower triangle not written"),
    Mutant("dense-wrapper-bias-law", "kernels/dense.py",
           "act_code, act_param, weight_code, 0, GAUSSIAN, 0, zero, zero, 0, 0, out)",
           "act_code, act_param, weight_code, 0, UNIFORM, 0, zero, zero, 0, 0, out)",
           (T_REF, T_KERN), "sample_dense draws uniform biases"),
    Mutant("exact-inherits-fastmath", "kernels/jit.py",
           'exact = _decorator(fastmath=False, nogil=True, error_model="numpy")',
           'exact = _decorator(nogil=True, error_model="numpy")',
           (T_KERN,), "jit.exact leaves fastmath unset: Numba compiles it with the calling "
           "kernel's arcp/afn (Student-t draws round per vector width)",
           extra=("-k", "student_t_draws")),
    # ---- the dNTK (kernels/dntk_dense.py, stats/dntk_estimators.py) -------------------------
    Mutant("dntk-no-sigma-second", "kernels/dntk_common.py",
           "v = d2s[top, q] * zt[top, c0 * k + a, j] * Wp[u, j]", "v = 0.0 * Wp[u, j]",
           (T_DNTK_KERN,), "the sigma'' term of the backward tangent dropped at the top layer"),
    Mutant("dntk-no-output-weight-term", "kernels/dntk_common.py",
           "T[c0, u * k + a1, u * k + a2] += lw * acc", "T[c0, u * k + a1, u * k + a2] += 0.0 * acc",
           (T_DNTK_KERN,), "the output layer's weights' contribution (sdot . s) dropped"),
    Mutant("dntk-fan-in-off", "kernels/dntk_common.py",
           "lwb = lam_W[lp - 1] / nb", "lwb = lam_W[lp - 1] / n",
           (T_DNTK_KERN,), "lambda_W divided by the layer's width instead of its fan-in"),
    Mutant("dntk-not-symmetrised", "kernels/dntk_common.py",
           "v = T[c0, c1, c2] + T[c0, c2, c1]", "v = 2.0 * T[c0, c1, c2]",
           (T_DNTK_KERN,), "dHhat = 2 T(c1, c2) instead of T(c1, c2) + T(c2, c1)"),
    Mutant("dntk-tangent-wrong-input", "kernels/dntk_common.py",
           "f = Ls[lp, c0 % k, a]", "f = Ls[lp, a, a]",
           (T_DNTK_KERN,), "the forward tangent's own-layer term with the wrong input a0"),
    Mutant("dntk-markov-forward-unconditioned", "kernels/dntk_common.py",
           "    _divide(A[r], n, nrm)\n    rv.cnt[i0, 0] = r + 1", "    _divide(A[r], n, nrm)\n    rv.cnt[i0, 0] = r",
           T_DNTK_MARKOV, "markov's weight products not conditioned on the forward pass"),
    Mutant("dntk-markov-fresh-not-projected", "kernels/dntk_common.py",
           "    _project_off(Q, nq, f, dim_out, c)          # the fresh part, off the other side's basis",
           "    pass",
           T_DNTK_MARKOV, "the fresh part of a product not projected off the other side's basis "
                          "(the means of dHhat z do not see it; the one-matrix test does)"),
    Mutant("dntk-markov-known-part-dropped", "kernels/dntk_common.py",
           "            f[j] += v * Q[t, j]", "            f[j] += 0.0 * v * Q[t, j]",
           T_DNTK_MARKOV, "the known part (along the other side's basis) of a new product dropped"),
    Mutant("dntk-markov-not-remembered", "kernels/dntk_common.py",
           "network, position, rv.c, rv.fresh):\n        rv.cnt[i0, 0] = r + 1",
           "network, position, rv.c, rv.fresh):\n        rv.cnt[i0, 0] = r",
           T_DNTK_MARKOV, "a drawn right product not remembered (later products inconsistent; "
                          "the means of dHhat z do not see it, the one-matrix test does)"),
    Mutant("dntk-P-wrong-unit", "mcsim/stats/dntk_estimators.py",
           "[:, :, k:]       # E[d112 z_2]", "[:, :, :k]       # E[d112 z_2]",
           (T_DNTK_MC,), "dntk_P pairs dHhat_{112} with z_1 instead of z_2"),
    Mutant("dntk-Q-no-fan-in", "mcsim/stats/dntk_estimators.py",
           "return fan_in[:, None] * 0.5 * _pairs_to_full(a + b, k)", "return 0.5 * _pairs_to_full(a + b, k)",
           (T_DNTK_MC,), "dntk_Q without the fan-in factor n_{l-1}"),
    # -- dNTK prediction wiring (stats/statistics.py hooks; tests/test_dntk_compare.py) -----
    Mutant("dntk-prediction-hook-swapped", "mcsim/stats/statistics.py",
           'prediction=_dntk.prediction("P")',
           'prediction=_dntk.prediction("Q")',
           ("tests/test_dntk_compare.py",), "dntk_P compared with the predicted Q"),
    # -- the wishart sampler, version 2 (kernels/wishart_batch.py) ---------------------------
    Mutant("wishart-bartlett-dof", "kernels/wishart_batch.py",
           "dof[i] = np.float64(n - j)", "dof[i] = np.float64(n + j)",
           ("tests/test_reduced_samplers.py::test_bartlett_factor_against_scipy",),
           "Bartlett diagonal A_jj^2 ~ chi^2_{n+j} instead of chi^2_{n-j}"),
    Mutant("alias-threshold-le", "kernels/chi2_alias.py",
           "k = value[col, np.uint64((w & mask) >= threshold[col])]",
           "k = value[col, np.uint64((w & mask) > threshold[col])]",
           ("tests/test_chi2_v3.py::test_binomial_alias_against_scipy",),
           "alias draw keeps a column's own value one slot too often"),
    Mutant("alias-fallback-accept", "kernels/chi2_alias.py",
           "if j < 0 or j >= window or u < accept[acc0 + j]:",
           "if j < 0 or j >= window or u < 1.0 + 0.0 * accept[acc0 + j]:",
           ("tests/test_chi2_v3.py::test_binomial_alias_against_scipy",),
           "fallback returns a plain binomial instead of the residual law"),
    Mutant("alias-spare-word", "kernels/chi2_alias.py",
           "spare_word[i] = (x2 << np.uint64(32)) | x3", "spare_word[i] = (x0 << np.uint64(32)) | x1",
           ("tests/test_chi2_v3.py::test_binomial_alias_against_scipy",),
           "the second binomial of a counter reuses the first's word (equal draws)"),
    Mutant("alias-vose-height", "mcsim/samplers/binomial_table.py",
           "w[l] -= height - w[s]", "w[l] -= height - w[s] - 1",
           ("tests/test_chi2_v3.py::test_alias_table_represents_the_integer_weights_exactly",),
           "Vose's construction moves one unit too few from a large entry"),
    Mutant("chi2-spare-normal", "kernels/chi2_alias.py",
           "spare_x[i] = y", "spare_x[i] = x",
           ("tests/test_chi2_v3.py::test_chi2_pairs_against_scipy",),
           "the second draw of a pair reuses the first's normal (dependent draws)"),
    Mutant("chi2-sure-bound-loose", "kernels/chi2_alias.py",
           "bound = 1.5 * d * (t2 * t2)", "bound = 0.5 * d * (t2 * t2)",
           ("tests/test_chi2_v3.py::test_acceptance_without_logs_implies_the_computed_test_and_the_exact_one",),
           "the logs-free acceptance bound a third of the proven one (accepts too much)"),
    Mutant("chi2-sure-no-slack", "kernels/chi2_alias.py",
           "_SLACK = 2.0 ** -40", "_SLACK = 0.0",
           ("tests/test_chi2_v3.py::test_acceptance_without_logs_implies_the_computed_test_and_the_exact_one",),
           "no room left for the rounding of the computed test"),
    Mutant("chi2-sure-range", "kernels/chi2_alias.py",
           "| ((t >= -0.5) & (u < 1.0 - bound)))", "| ((t >= -0.9) & (u < 1.0 - bound)))",
           ("tests/test_chi2_v3.py::test_acceptance_without_logs_implies_the_computed_test_and_the_exact_one",),
           "the bound used below t = -1/2, where it is not proven"),
    Mutant("chi2-settle-skipped", "kernels/chi2_alias.py",
           "        _chi2_settle(dof, xs, us, ok)",
           "        pass",
           ("tests/test_chi2_v3.py::test_chi2_pairs_against_scipy",),
           "proposals not sure without logs are rejected unread"),
    # -- the wishart sampler, version 3 (kernels/wishart_pairs.py) ---------------------------
    Mutant("wishart3-bartlett-dof", "kernels/wishart_pairs.py",
           "dof[i] = np.float64(n - j)", "dof[i] = np.float64(n + j)",
           ("tests/test_reduced_samplers.py::test_bartlett_factor_against_scipy",),
           "Bartlett diagonal A_jj^2 ~ chi^2_{n+j} instead of chi^2_{n-j}"),
    Mutant("wishart3-spare-normal", "kernels/wishart_pairs.py",
           "spare_n[i] = y", "spare_n[i] = x",
           ("tests/test_reduced_samplers.py::test_bartlett_factor_against_scipy",),
           "the kept normal is the one just used (equal entries of A)"),
    Mutant("wishart3-cholesky-sign", "kernels/wishart_pairs.py",
           "acc[i] = fma(-C[j, c, i], C[j, c, i], acc[i])",
           "acc[i] = fma(C[j, c, i], C[j, c, i], acc[i])",
           ("tests/test_wishart_v3.py::test_fused_steps_equal_the_passes_bitwise_and_numpy",),
           "the factor's pivots (passes, k > 4) add the squares of the row instead of "
           "subtracting them"),
    Mutant("wishart3-step-bias", "kernels/wishart_pairs.py",
           "g = fma(scale, acc[i], cb)", "g = fma(scale, acc[i], 0.0 * cb)",
           ("tests/test_wishart_v3.py::test_fused_steps_equal_the_passes_bitwise_and_numpy",),
           "the bias variance C_b left out of Ghat^(l+1) (passes: k > 4, n < k layers)"),
    Mutant("wishart3-fused-pivot-sign", "kernels/wishart_fused.py",
           'add(f"        acc = fma(-c{j}{c}, c{j}{c}, acc)")',
           'add(f"        acc = fma(c{j}{c}, c{j}{c}, acc)")',
           ("tests/test_wishart_v3.py::test_fused_steps_equal_the_passes_bitwise_and_numpy",),
           "the fused factor's pivots add the squares of the row"),
    Mutant("wishart3-fused-same-row", "kernels/wishart_fused.py",
           'add(f"        c{j}{c} = c{r}{c} if same else c{j}{c}")',
           'add(f"        c{j}{c} = c{j}{c}")',
           ("tests/test_wishart_v3.py::test_fused_steps_equal_the_passes_bitwise_and_numpy",),
           "identical inputs no longer copy the factor's row (bitwise equality lost)"),
]


# ------------------------------------------------------------------------------------------
def _copy_tree(dest: Path) -> None:
    """The checkout's tracked and untracked (not ignored) files, with their times."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if rel.split("/")[0] in (".numba-cache", ".venv") or rel.endswith((".nbi", ".nbc")):
            continue                          # caches (when not ignored by .gitignore)
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    # the package maps mcsim.kernels -> kernels/ and mcsim.jobs -> jobs/ (pyproject): the same
    # layout for imports from the copy through PYTHONPATH
    for pkg, target in (("kernels", "../kernels"), ("jobs", "../jobs")):
        link = dest / "mcsim" / pkg
        if not link.exists():
            link.symlink_to(target)


def _pytest(tree: Path, args, env, timeout) -> tuple[int, str, float]:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slurm and not slow",
           *args]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return -1, out, time.monotonic() - t0


def _first_failure(output: str) -> str:
    m = re.search(r"^(FAILED|ERROR) (\S+)", output, re.M)
    return m.group(2) if m else ""


def check(mutants) -> list[str]:
    problems = []
    for m in mutants:
        path = ROOT / m.file
        if not path.exists():
            problems.append(f"{m.id}: {m.file} does not exist")
            continue
        n = path.read_text().count(m.old)
        if n != 1:
            problems.append(f"{m.id}: the snippet occurs {n} times in {m.file}")
        for t in m.tests:
            if not (ROOT / t.split("::")[0]).exists():
                problems.append(f"{m.id}: no test file {t}")
    ids = [m.id for m in mutants]
    problems += [f"duplicate id {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ids", nargs="*", help="run only these mutants")
    ap.add_argument("--module", help="run only the mutants of files under this path")
    ap.add_argument("--list", action="store_true", help="print the table and exit")
    ap.add_argument("--check", action="store_true", help="check that every snippet applies, and exit")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run of the tests on the unmutated copy")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per mutant (a timeout counts as killed)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = ap.parse_args(argv)

    mutants = [m for m in MUTANTS if (not args.ids or m.id in args.ids)
               and (not args.module or m.file.startswith(args.module))]
    unknown = set(args.ids) - {m.id for m in MUTANTS}
    if unknown:
        print(f"unknown mutants: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.list:
        for m in mutants:
            print(f"{m.id:34s} {m.file:32s} {m.what}")
        print(f"{len(mutants)} mutants")
        return 0
    problems = check(mutants)
    if problems:
        print("stale mutant table:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if args.check:
        print(f"all {len(mutants)} snippets apply")
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="mcsim-mutants-"))
    tree = tmp / "tree"
    tree.mkdir()
    _copy_tree(tree)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["NUMBA_CACHE_DIR"] = str(tmp / "numba-cache")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    killed, survivors, rows = 0, [], []
    try:
        probe = subprocess.run([sys.executable, "-c", "import mcsim, mcsim.kernels.markov as k; "
                                "print(mcsim.__file__); print(k.__file__)"],
                               cwd=tree, env=env, capture_output=True, text=True)
        if probe.returncode or any(not p.startswith(str(tree)) for p in probe.stdout.split()):
            print(f"the copy does not import its own mcsim:\n{probe.stdout}{probe.stderr}", file=sys.stderr)
            return 2
        if not args.no_baseline:
            tests = sorted({t for m in mutants for t in m.tests})
            print(f"baseline: {len(tests)} test files on the unmutated copy ...", flush=True)
            rc, out, dt = _pytest(tree, tests, env, timeout=max(args.timeout, 1800))
            if rc != 0:
                print(out[-4000:])
                print(f"baseline failed ({_first_failure(out)}): fix the suite before scoring mutants")
                return 1
            print(f"baseline passed in {dt:.0f} s", flush=True)
        for i, m in enumerate(mutants, 1):
            path = tree / m.file
            original = ROOT / m.file
            text = original.read_text()
            path.write_text(text.replace(m.old, m.new, 1))
            try:
                if m.file.endswith(".py"):
                    compile(path.read_text(), str(path), "exec")
                rc, out, dt = _pytest(tree, [*m.tests, *m.extra], env, args.timeout)
            finally:
                shutil.copy2(original, path)          # restore (content and time)
            if rc == -1:
                verdict, by = "KILLED", "timeout"
            elif rc == 5:
                verdict, by = "ERROR", "no tests ran"
            elif rc != 0:
                verdict, by = "KILLED", _first_failure(out) or f"exit {rc}"
            else:
                verdict, by = "SURVIVED", ""
            if verdict == "KILLED":
                killed += 1
            else:
                survivors.append(m)
            rows.append((m, verdict, by))
            print(f"[{i:2d}/{len(mutants)}] {verdict:8s} {m.id:34s} {dt:6.1f} s  {by}", flush=True)
    finally:
        if args.keep:
            print(f"copy kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if survivors:
        print("\nsurvivors:")
        for m in survivors:
            print(f"  {m.id} ({m.file}): {m.what}")
            print(f"      {m.note or 'NOT EXPLAINED: a gap in the tests'}")
    print(f"\nmutation score: {killed}/{len(mutants)} killed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
