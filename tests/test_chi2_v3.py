"""chi2 version 3 (``kernels/chi2_alias.py``, ``mcsim/samplers/binomial_table.py``) against
independent sources:

- the alias tables represent exactly the integer weights floor(C(n, k) 2^b / 2^n) computed
  here from ``math.comb`` (every column's kept and alias mass added up in integers);
- the binomial draws (two per counter: its words x0:x1, then x2:x3) against SciPy's
  Binomial(n, 1/2), with 64-bit tables and with coarse tables (few bits), whose fallback
  entry is hit in a good part of the draws: only the fallback's acceptance step makes those
  draws binomial; the pair's sum against Binomial(2 n, 1/2) and its correlation against 0;
- the paired chi-squared draws (the second from the first's spare pair): each against
  SciPy's chi^2, their sum against chi^2 with twice the degrees of freedom, and their
  correlation against 0;
- the logs-free acceptance of Marsaglia-Tsang proposals (``_mt_sure``): at the largest
  uniform it accepts, version 2's computed test (``mt_test``) accepts too, and the exact
  test (mpmath, 50 digits, with the same rounded d and c) holds with room to spare;
- file versions: new files record version 3; a version this mcsim does not have is
  refused (files of versions 1 and 2 resume with chi2_v1 / chi2_v2, bitwise:
  ``test_reduced_samplers.py``).

The sampler's statistics against markov and the exact moment ratios are in
``test_reduced_samplers.py`` (they run "auto", i.e. this version).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy import stats

import mcsim
from mcsim.samplers.binomial_table import FALLBACK, alias_table, binomial_tables

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_reduced_samplers import _gof_pvalue, cfg_of  # noqa: E402


# --- the acceptance without logs -----------------------------------------------------------
def _sure_boundary():
    import numba
    from mcsim.kernels import chi2_alias, chi2_batch
    from mcsim.kernels.jit import FASTMATH

    @numba.njit(fastmath=set(FASTMATH), error_model="numpy")
    def boundary(xs, dofs, u_max, v2_accepts, d_out, c_out):
        # per point: the largest u in [0, 1) that _mt_sure accepts for sure (bisection on
        # the bit patterns of positive doubles, which order like the values), -1 if none;
        # whether mt_test accepts (x, u_max); the constants d, c
        for i in range(xs.shape[0]):
            d, c = chi2_batch.mt_constants(np.int64(dofs[i]))
            d_out[i], c_out[i] = d, c
            if not chi2_alias._mt_sure(xs[i], 0.0, d, c)[0]:
                u_max[i] = -1.0
                continue
            lo = np.int64(0)                                  # bits of 0.0: sure
            hi = np.int64(0x3FF0000000000000)                 # bits of 1.0: never sure
            while hi - lo > 1:
                mid = (lo + hi) // 2
                u = np.array([mid]).view(np.float64)[0]
                if chi2_alias._mt_sure(xs[i], u, d, c)[0]:
                    lo = mid
                else:
                    hi = mid
            u_max[i] = np.array([lo]).view(np.float64)[0]
            v2_accepts[i] = chi2_batch.mt_test(xs[i], u_max[i], d, c)[0]
    return boundary


def test_acceptance_without_logs_implies_the_computed_test_and_the_exact_one():
    import mpmath
    rng = np.random.default_rng(11)
    dofs = np.array([2, 3, 4, 7, 20, 129, 512, 1024, 4096, 65536, 10**6, 10**8], dtype=np.float64)
    xs = np.concatenate([rng.standard_normal(400), [8.57, -8.57, 1e-3, -1e-3, 1e-7, 0.0],
                         rng.uniform(-9, 9, 200)])
    X, D = (a.ravel() for a in np.meshgrid(xs, dofs))
    # and the points at t = c x = -1/2 (the edge of the bound's range), just inside / outside
    c_of = 1.0 / np.sqrt(9.0 * (0.5 * dofs - 1.0 / 3.0))
    edge = -0.5 / c_of
    X = np.concatenate([X, edge * (1 - 1e-12), edge * (1 + 1e-12), edge])
    D = np.concatenate([D, dofs, dofs, dofs])
    u_max, v2, d, c = np.empty(len(X)), np.zeros(len(X), bool), np.empty(len(X)), np.empty(len(X))
    _sure_boundary()(X, D, u_max, v2, d, c)
    sure = u_max >= 0
    assert sure.mean() > 0.95                     # (the shortcut applies almost everywhere)
    assert v2[sure].all(), (X[sure & ~v2][:5], D[sure & ~v2][:5])
    mpmath.mp.dps = 50
    worst = np.inf
    for x, dd, cc, u in zip(X[sure], d[sure], c[sure], u_max[sure]):
        x, dd, cc, u = (mpmath.mpf(float(a)) for a in (x, dd, cc, u))
        v = (1 + cc * x) ** 3
        if v <= 0:
            raise AssertionError(f"sure at v <= 0: x={x}, d={dd}")
        if u == 0:
            continue
        rhs = x * x / 2 + dd * (1 - v + mpmath.log(v))
        margin = rhs - mpmath.log(u)
        assert margin > 0, (x, dd, u)
        if u >= 1 - mpmath.mpf("0.0331") * x ** 4:       # beyond version 2's squeeze: the
            worst = min(worst, float(margin / (1 + x * x + dd * (4 + 2 * v))))   # new bound
    assert worst > 2.0 ** -50                   # room above rounding of the computed test


# --- the tables ---------------------------------------------------------------------------
@pytest.mark.parametrize("n, bits", [(129, 64), (300, 64), (1024, 64), (5000, 64), (300, 20),
                                     (1024, 10), (200, 7), (1024, 4)])
def test_alias_table_represents_the_integer_weights_exactly(n, bits):
    threshold, kept, alias, lo, accept = alias_table(n, bits)
    columns = len(threshold)
    assert columns & (columns - 1) == 0 and len(kept) == len(alias) == columns
    height = (1 << bits) // columns
    mass = {}
    for t, a, b in zip(threshold, kept, alias):
        assert 0 <= t <= height
        mass[a] = mass.get(a, 0) + t
        mass[b] = mass.get(b, 0) + height - t
    weights = {k: (math.comb(n, k) << bits) >> n for k in range(n + 1)}
    for k, w in weights.items():
        assert mass.pop(float(k), 0) == w, k
    assert mass.pop(FALLBACK, 0) == (1 << bits) - sum(weights.values())
    assert not any(mass.values()), mass           # nothing else carries mass
    # accept[k - lo] p_k 2^b = p_k 2^b - w_k (the fallback's residual law), to rounding
    for j, a in enumerate(accept):
        k = lo + j
        residual = (math.comb(n, k) << bits) - (weights[k] << n)     # exact integers
        assert a == pytest.approx(residual / (math.comb(n, k) << bits), rel=1e-15, abs=0)
    assert all(w == 0 for k, w in weights.items() if not lo <= k < lo + len(accept))


def test_tables_per_layer():
    t = binomial_tables([4, 300, 128, 129, 300, 70000])
    m = t.layout[:, 1]
    assert list(m >= 0) == [False, True, False, True, True, False]
    assert np.array_equal(t.layout[1], t.layout[4])            # one table per width
    assert t.layout[3, 0] == len(alias_table(300)[0])          # placed after it
    assert t.value.shape == (t.threshold.size, 2)
    with pytest.raises(ValueError):
        alias_table(0)


# --- the draws ----------------------------------------------------------------------------
def _binomial_draws(n, bits, seed, size=100_096):
    """(size, 2): draws 0 and 1 of each stream (the second from the first's spare word)."""
    from mcsim.kernels import chi2_alias, rng
    out = np.empty((size, 2))
    chi2_alias.draw_binomial_half_alias(rng.seed_key(seed), 3, n,
                                        *binomial_tables([n], bits=bits).arguments(), out)
    return out


@pytest.mark.parametrize("n, bits", [(129, 64), (300, 64), (1024, 64), (65536, 64),
                                     (1024, 10), (200, 7), (300, 4)])
def test_binomial_alias_against_scipy(n, bits):
    """Both draws of a pair against Binomial(n, 1/2), their sum against Binomial(2 n, 1/2)
    (independence), their correlation against 0."""
    pairs = _binomial_draws(n, bits, seed=n + bits)
    assert np.all(pairs == np.round(pairs)) and pairs.min() >= 0 and pairs.max() <= n
    for draws, trials in ((pairs[:, 0], n), (pairs[:, 1], n), (pairs.sum(1), 2 * n)):
        lo, hi = int(stats.binom.ppf(1e-7, trials, 0.5)), int(stats.binom.isf(1e-7, trials, 0.5))
        support = np.arange(lo, hi + 1)
        assert _gof_pvalue(draws, lambda v: stats.binom.pmf(v, trials, 0.5), support) > 1e-4
    r = np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]
    assert abs(r) * math.sqrt(len(pairs)) < 5, r


def test_coarse_tables_reach_the_fallback_often():
    """The coarse cases above do test the fallback: a good part of their draws land on it."""
    for n, bits in ((1024, 10), (200, 7), (300, 4)):
        threshold, kept, alias, lo, accept = alias_table(n, bits)
        height = (1 << bits) // len(threshold)
        fallback = sum(t for t, a in zip(threshold, kept) if a == FALLBACK) + \
            sum(height - t for t, b in zip(threshold, alias) if b == FALLBACK)
        assert fallback / (1 << bits) > 0.04, (n, bits)   # 4.8 %, 13 %, 100 %


@pytest.mark.parametrize("dof", [0, 1, 2, 3, 7, 64, 10_000])
def test_chi2_pairs_against_scipy(dof):
    from mcsim.kernels import chi2_alias, rng
    m = 50_176
    draws = np.empty((m, 2))
    chi2_alias.draw_chi2_pairs(rng.seed_key(200 + dof), 5, np.float64(dof), draws)
    if dof == 0:
        assert np.all(draws == 0.0)
        return
    for q in range(2):
        assert stats.kstest(draws[:, q], "chi2", args=(dof,)).pvalue > 1e-4, q
    # independent: the sum is chi^2_{2 dof}, the correlation 0 (standard error 1 / sqrt(m))
    assert stats.kstest(draws.sum(1), "chi2", args=(2 * dof,)).pvalue > 1e-4
    r = np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]
    assert abs(r) * math.sqrt(m) < 5, r


# --- the sampler --------------------------------------------------------------------------
@pytest.mark.parametrize("act, widths", [("relu", [300, 5, 40]), ("leaky_relu", [4, 1000, 7]),
                                         ("perceptron", [129, 3]), ("linear", [6, 2, 3])])
def test_network_numbers_independent_of_batch_and_threads(act, widths):
    """Network numbers depend on (key, block, network) only (full batches on two threads,
    one-network blocks, other block groupings)."""
    from mcsim.kernels import chi2_alias, rng
    from mcsim.kernels.activations import LEAKY_RELU, LINEAR, PERCEPTRON, RELU
    from mcsim.kernels.jit import set_threads
    code = {"relu": RELU, "leaky_relu": LEAKY_RELU, "perceptron": PERCEPTRON, "linear": LINEAR}[act]
    key = rng.seed_key(19)
    args = (np.array([[1.0, -0.5, 2.0]]), np.array(widths, dtype=np.int64),
            np.full(len(widths), 1.9), np.full(len(widths), 0.1), code, -0.3,
            *binomial_tables(widths).arguments())
    L1 = len(widths) - 1
    wide = np.empty((7, 300, L1, 1))
    # (first_block as the sampler passes it, np.uint64: the set-up's compiled kernel serves)
    chi2_alias.sample_chi2(key, np.uint64(3), 7, 300, *args, wide)
    grouped = np.empty((7, 300, L1, 1))
    set_threads(1)
    try:
        for lo, hi in ((0, 1), (1, 4), (4, 7)):
            chi2_alias.sample_chi2(key, np.uint64(3 + lo), hi - lo, 300, *args, grouped[lo:hi])
        single = np.empty((7, 1, L1, 1))
        for b in range(7):
            chi2_alias.sample_chi2(key, np.uint64(3 + b), 1, 1, *args, single[b:b + 1])
    finally:
        set_threads(None)
    assert np.array_equal(wide, grouped)
    assert np.array_equal(wide[:, :1], single)
    assert np.all(np.isfinite(wide)) and len(np.unique(wide[:, :, -1])) > (20 if act == "perceptron" else 1000)


def test_the_kernel_refuses_a_layout_of_another_length():
    from mcsim.kernels import chi2_alias, rng
    from mcsim.kernels.activations import RELU
    widths = np.array([300, 5, 4], dtype=np.int64)
    with pytest.raises(ValueError, match="layout"):
        chi2_alias.sample_chi2(rng.seed_key(1), np.uint64(0), 1, 4, np.array([[1.0]]), widths,
                               np.ones(3), np.zeros(3), RELU, 0.0,
                               *binomial_tables(widths[:2]).arguments(), np.empty((1, 4, 2, 1)))


# --- versions -----------------------------------------------------------------------------
def test_new_files_record_chi2_version_3(tmp_path):
    path = tmp_path / "new.h5"
    mcsim.simulate(cfg_of([300, 3], "relu", 1, "auto", networks=1024), output=path, progress="off")
    with h5py.File(path, "r") as f:
        assert f.attrs["sampler"] == "chi2" and f.attrs["sampler_version"] == 3
    assert mcsim.open_result(path).config.ensemble.sampler == "chi2"
    res = mcsim.simulate(cfg_of([300, 3], "relu", 1, "auto", networks=2048), output=path,
                         progress="off")
    assert res.config.ensemble.sampler == "chi2"


def test_a_sampler_version_this_mcsim_does_not_have_is_refused(tmp_path):
    path = tmp_path / "future.h5"
    mcsim.simulate(cfg_of([4, 3], "relu", 1, "auto", networks=1024), output=path, progress="off")
    with h5py.File(path, "r+") as f:
        f.attrs["sampler_version"] = 9
    with pytest.raises(mcsim.errors.ResultFileError, match="version 9"):
        mcsim.open_result(path)
