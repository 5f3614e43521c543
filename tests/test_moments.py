"""Per-block central moments, Chan/Pebay merges, and the pair/triple index tables."""

import itertools

import numpy as np
import pytest

from mcsim.stats import indexing as ix
from mcsim.kernels import moments as M


def _third(d, tr):
    return np.einsum("ip,iq,ir->pqr", d, d, d)[tr[:, 0], tr[:, 1], tr[:, 2]]


def _reference(y, tr):
    """mean, M2, M3 of samples y (N, m) by numpy."""
    d = y - y.mean(axis=0)
    return y.mean(axis=0), np.cov(y.T, ddof=1).reshape(y.shape[1], -1) * (len(y) - 1), _third(d, tr)


def _close(a, b, scale, rtol=1e-12):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(12345)
    n_blocks, N, S, m = 5, 64, 3, 6
    # shifted, scaled and skewed so that the central sums are far from the raw ones
    x = 100.0 + rng.gamma(2.0, 1.0, size=(n_blocks, N, S, m)) * np.arange(1, m + 1)
    return x, ix.triples(m)


def test_block_moments_equal_numpy(data):
    x, tr = data
    n_blocks, N, S, m = x.shape
    layers = np.array([2, 0], dtype=np.int64)
    mean = np.empty((n_blocks, 2, m))
    m2 = np.empty((n_blocks, 2, m, m))
    m3 = np.empty((n_blocks, 2, len(tr)))
    M.block_moments(x, layers, np.arange(x.shape[-1]), tr, 3, mean, m2, m3)
    for i in range(n_blocks):
        for r, s in enumerate(layers):
            mu, c2, c3 = _reference(x[i, :, s], tr)
            _close(mean[i, r], mu, 100.0)
            _close(m2[i, r], c2, np.abs(c2).max())
            _close(m3[i, r], c3, np.abs(c3).max(), rtol=1e-11)
    assert np.array_equal(m2, np.swapaxes(m2, -1, -2))


def test_block_moments_order2_leaves_m3(data):
    x, tr = data
    n_blocks, N, S, m = x.shape
    m3 = np.full((n_blocks, S, 0), np.nan)
    mean = np.empty((n_blocks, S, m))
    m2 = np.empty((n_blocks, S, m, m))
    M.block_moments(x, np.arange(S), np.arange(x.shape[-1]), tr[:0], 2, mean, m2, m3)
    mean3, m23 = np.empty_like(mean), np.empty_like(m2)
    M.block_moments(x, np.arange(S), np.arange(x.shape[-1]), tr, 3, mean3, m23, np.empty((n_blocks, S, len(tr))))
    assert np.array_equal(mean, mean3) and np.array_equal(m2, m23)


def _block_states(x, tr):
    n_blocks, N, S, m = x.shape
    mean = np.empty((n_blocks, S, m))
    m2 = np.empty((n_blocks, S, m, m))
    m3 = np.empty((n_blocks, S, len(tr)))
    M.block_moments(x, np.arange(S), np.arange(x.shape[-1]), tr, 3, mean, m2, m3)
    return mean, m2, m3


def _check_union(x, tr, mean, m2, m3):
    S = x.shape[2]
    for s in range(S):
        mu, c2, c3 = _reference(x[:, :, s].reshape(-1, x.shape[-1]), tr)
        _close(mean[s], mu, 100.0)
        _close(m2[s], c2, np.abs(c2).max())
        _close(m3[s], c3, np.abs(c3).max(), rtol=1e-11)


def test_merge_many_blocks_equals_single_pass(data):
    x, tr = data
    N = x.shape[1]
    mean, m2, m3 = _block_states(x, tr)
    a = [mean[0].copy(), m2[0].copy(), m3[0].copy()]
    count = float(N)
    for i in range(1, x.shape[0]):
        M.merge_moments(count, *a, float(N), mean[i], m2[i], m3[i], tr, 3)
        count += N
    _check_union(x, tr, *a)


def test_merge_unequal_counts_and_count_forms(data):
    # a = first 40 networks of block 0, b = the rest plus block 1: na != nb matters in M3
    x, tr = data
    S = x.shape[2]
    parts = [x[:1, :40], np.concatenate([x[:1, 40:], x[1:2]], axis=1)]
    (ma, m2a, m3a), (mb, m2b, m3b) = (_block_states(p, tr) for p in parts)
    for count_a, count_b in ((40.0, 88.0), (np.array([40.0]), np.array([88.0])),
                             (np.full(S, 40.0), np.full(S, 88.0))):
        a = [ma[0].copy(), m2a[0].copy(), m3a[0].copy()]
        M.merge_moments(count_a, *a, count_b, mb[0], m2b[0], m3b[0], tr, 3)
        _check_union(x[:2].reshape(1, -1, S, x.shape[-1]), tr, *a)


def test_merge_with_empty_state(data):
    x, tr = data
    mean, m2, m3 = _block_states(x, tr)
    N = float(x.shape[1])
    empty = [np.full_like(mean[0], np.nan), np.full_like(m2[0], np.nan),
             np.full_like(m3[0], np.nan)]  # contents of an empty state are never read
    M.merge_moments(0.0, *empty, N, mean[0], m2[0], m3[0], tr, 3)
    for got, want in zip(empty, (mean[0], m2[0], m3[0])):
        assert np.array_equal(got, want)
    a = [mean[1].copy(), m2[1].copy(), m3[1].copy()]
    M.merge_moments(N, *a, 0.0, *(np.zeros_like(v) for v in a), tr, 3)
    for got, want in zip(a, (mean[1], m2[1], m3[1])):
        assert np.array_equal(got, want)


def test_merge_order2_ignores_m3(data):
    x, tr = data
    mean, m2, m3 = _block_states(x, tr)
    N = float(x.shape[1])
    a = [mean[0].copy(), m2[0].copy(), np.empty((x.shape[2], 0))]
    M.merge_moments(N, *a, N, mean[1], m2[1], np.empty((x.shape[2], 0)), tr[:0], 2)
    b = [mean[0].copy(), m2[0].copy(), m3[0].copy()]
    M.merge_moments(N, *b, N, mean[1], m2[1], m3[1], tr, 3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_merge_blocks_into_bins(data):
    x, tr = data
    n_blocks, N, S, m = x.shape
    mean, m2, m3 = _block_states(x, tr)
    n_bins, first = 3, 7   # blocks 7..11 -> bins 1, 2, 0, 1, 2
    cnt = np.zeros(n_bins)
    bm = np.zeros((n_bins, S, m))
    b2 = np.zeros((n_bins, S, m, m))
    b3 = np.zeros((n_bins, S, len(tr)))
    M.merge_blocks_into_bins(cnt, bm, b2, b3, mean, m2, m3, N, first, n_bins, tr, 3)
    assert cnt.tolist() == [N, 2 * N, 2 * N]
    for b in range(n_bins):
        members = [i for i in range(n_blocks) if (first + i) % n_bins == b]
        _check_union(x[members], tr, bm[b], b2[b], b3[b])
    # same as merging the blocks one call at a time, bitwise (deterministic order)
    cnt2, bm2, b22, b32 = np.zeros_like(cnt), np.zeros_like(bm), np.zeros_like(b2), \
        np.zeros_like(b3)
    for i in range(n_blocks):
        M.merge_blocks_into_bins(cnt2, bm2, b22, b32, mean[i:i + 1], m2[i:i + 1],
                                 m3[i:i + 1], N, first + i, n_bins, tr, 3)
    for u, v in ((cnt, cnt2), (bm, bm2), (b2, b22), (b3, b32)):
        assert np.array_equal(u, v)


# ----------------------------------------------------------------------------------------
# index tables
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_pairs_and_pair_index(k):
    pr = ix.pairs(k)
    m = k * (k + 1) // 2
    assert pr.shape == (m, 2) and pr.dtype == np.int64
    assert [tuple(r) for r in pr] == [(a, b) for a in range(k) for b in range(a, k)]
    pi = ix.pair_index(k)
    assert np.array_equal(pi, pi.T)
    assert np.array_equal(pi[pr[:, 0], pr[:, 1]], np.arange(m))


@pytest.mark.parametrize("m", [1, 3, 6])
def test_triples(m):
    tr = ix.triples(m)
    assert tr.shape == (m * (m + 1) * (m + 2) // 6, 3) and tr.dtype == np.int64
    assert [tuple(r) for r in tr] == sorted(
        (p, q, r) for p in range(m) for q in range(p, m) for r in range(q, m))
    ti = ix.triple_index(m)
    for p, q, r in itertools.product(range(m), repeat=3):
        assert tuple(tr[ti[p, q, r]]) == tuple(sorted((p, q, r)))


def test_unpack_symmetries():
    rng = np.random.default_rng(1)
    k = 3
    m = 6
    vec = rng.standard_normal((2, m))
    mat = ix.unpack_matrix(vec, k)
    assert mat.shape == (2, k, k) and np.array_equal(mat, np.swapaxes(mat, 1, 2))
    assert np.array_equal(ix.pack_matrix(mat), vec)
    c = rng.standard_normal((m, m))
    cov = c + c.T
    V = ix.unpack_vertex(cov, k)
    pi = ix.pair_index(k)
    for a1, a2, a3, a4 in itertools.product(range(k), repeat=4):
        v = V[a1, a2, a3, a4]
        assert v == cov[pi[a1, a2], pi[a3, a4]]
        assert v == V[a2, a1, a3, a4] == V[a1, a2, a4, a3] == V[a3, a4, a1, a2]
    T = m * (m + 1) * (m + 2) // 6
    third = rng.standard_normal((4, T))
    S6 = ix.unpack_six_point(third, k)
    assert S6.shape == (4,) + (k,) * 6
    tr = ix.triples(m)
    for idx in itertools.product(range(k), repeat=6):
        ps = sorted((pi[idx[0], idx[1]], pi[idx[2], idx[3]], pi[idx[4], idx[5]]))
        t = int(np.flatnonzero((tr == ps).all(axis=1))[0])
        assert np.array_equal(S6[(slice(None),) + idx], third[:, t])
    # within-pair swaps and pair permutations
    assert np.array_equal(S6, S6.transpose(0, 2, 1, 3, 4, 5, 6))
    assert np.array_equal(S6, S6.transpose(0, 3, 4, 1, 2, 5, 6))
    assert np.array_equal(S6, S6.transpose(0, 5, 6, 3, 4, 1, 2))
    with pytest.raises(ValueError):
        ix.unpack_matrix(np.zeros(5), 3)


# ----------------------------------------------------------------------------------------
# threads: the products are spread over threads in pieces; every entry must keep its bits
# ----------------------------------------------------------------------------------------
def _serial_reference(x, layers, tr, order):
    """Entry by entry with the fixed-order sums of kernels.reduce, called from Python: the
    order block_moments promises, independent of any schedule."""
    from mcsim.kernels.reduce import dot, dot3, total
    n_blocks, N, _, m = x.shape
    mean = np.empty((n_blocks, len(layers), m))
    m2 = np.empty((n_blocks, len(layers), m, m))
    m3 = np.empty((n_blocks, len(layers), len(tr)))
    for i in range(n_blocks):
        for r, s in enumerate(layers):
            cols = np.ascontiguousarray(x[i, :, s].T)
            # the kernels' `arcp` flag turns the division by N into a product with 1 / N
            mu = np.array([total(c) * (1.0 / N) for c in cols])
            d = np.ascontiguousarray(cols - mu[:, None])
            mean[i, r] = mu
            for p in range(m):
                for q in range(m):
                    m2[i, r, p, q] = dot(d[min(p, q)], d[max(p, q)])
            if order == 3:
                for t, (p, q, u) in enumerate(tr):
                    m3[i, r, t] = dot3(d[p], d[q], d[u])
    return mean, m2, m3


@pytest.mark.parametrize("order", [2, 3])
def test_block_moments_bitwise_independent_of_threads(order):
    # k = 8 inputs: m = 36 pair columns, T = 8,436 triples (the six-point case the threads
    # are for); N = 40 is not a multiple of the 8 partial sums of kernels.reduce
    import numba
    from mcsim.kernels.jit import set_threads
    rng = np.random.default_rng(8)
    n_blocks, N, S, m = 3, 40, 2, 36
    x = 1.0 + rng.standard_normal((n_blocks, N, S, m)) * np.linspace(0.5, 2.0, m)
    tr = ix.triples(m)
    layers = np.array([1, 0], dtype=np.int64)
    want = _serial_reference(x, layers, tr, order)
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, 2, numba.config.NUMBA_NUM_THREADS}):
            set_threads(threads)
            got = (np.empty((n_blocks, 2, m)), np.empty((n_blocks, 2, m, m)),
                   np.empty((n_blocks, 2, len(tr) if order == 3 else 0)))
            M.block_moments(x, layers, np.arange(m), tr if order == 3 else tr[:0], order, *got)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
            if order == 3:
                np.testing.assert_array_equal(got[2], want[2])
    finally:
        numba.set_num_threads(before)
