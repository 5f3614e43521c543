"""Tests of the Philox4x32-10 generators (kernels/rng.py): philox53 and philox32.

The distribution and independence tests run for both generators (fixture ``gen``); the
exact layout of philox32 is checked against NumPy float64 formulas on the raw Philox words.

Statistical checks use fixed seeds and a 5-sigma tolerance, with sigma derived from the
sample size (so a failure means a real defect, not bad luck: P(|z| > 5) ~ 6e-7).
"""

import math

import numba
import numpy as np
import pytest

from mcsim.kernels import f32math, rng
from mcsim.kernels.jit import kernel, parallel_kernel, set_threads

N = 2_000_000  # normals per statistical test
TOL = 5.0  # sigmas

M = 0xFFFFFFFF
# Random123 tests/kat_vectors, "philox4x32 10" lines: counter[4], key[2] -> output[4].
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M, M, M, M), (M, M), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


GENERATORS = ["philox53", "philox32"]


def normals(n, seed=12345, block=0, network=0, position=0, generator="philox53"):
    out = np.empty(n)
    rng.fill_normals(rng.stream_key(seed, generator), block, network, position, out)
    return out


@pytest.fixture(scope="module", params=GENERATORS)
def gen(request):
    return request.param


@pytest.fixture(scope="module")
def z(gen):
    return normals(N, generator=gen)


# --- exact algorithm ------------------------------------------------------------------------


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_known_answers(counter, key, expected):
    got = rng.philox4x32_10(np.array(counter, np.uint64), np.array(key, np.uint64))
    assert [int(v) for v in got] == list(expected)


def test_seed_key_is_splitmix64():
    # First output of splitmix64 seeded with 0 (reference value of the published algorithm).
    assert rng.seed_key(0) == np.uint64(0xE220A8397B1DCDAF)
    assert isinstance(rng.seed_key(7), np.uint64)
    assert len({int(rng.seed_key(s)) for s in range(1000)}) == 1000
    with pytest.raises(ValueError):
        rng.seed_key(-1)
    with pytest.raises(ValueError):
        rng.seed_key(1 << 64)


def _raw(key, block, network, c0):
    key, block = int(key), int(block)
    counter = np.array([c0, network, block & M, block >> 32], np.uint64)
    return [int(v) for v in rng.philox4x32_10(counter, np.array([key & M, key >> 32], np.uint64))]


def _u53(hi, lo):
    return ((hi >> 5) * 2**26 + (lo >> 6)) / 2**53


def test_counter_layout_and_transforms():
    # Every output is the documented function of the raw Philox words of its counter.
    key, block, network, position = rng.seed_key(99), (5 << 32) + 17, 3, 1000
    n_ctr = 4
    z = np.empty(2 * n_ctr)
    u = np.empty(2 * n_ctr)
    s = np.empty(128 * 2)
    rng.fill_normals(key, block, network, position, z)
    rng.fill_uniforms(key, block, network, position, u)
    rng.fill_signs(key, block, network, position, s)
    for i in range(n_ctr):
        x0, x1, x2, x3 = _raw(key, block, network, position + i)
        ua, ub = _u53(x0, x1), _u53(x2, x3)
        assert u[2 * i] == ua and u[2 * i + 1] == ub
        r = math.sqrt(-2.0 * math.log(1.0 - ua))
        assert z[2 * i] == pytest.approx(r * math.cos(2 * math.pi * ub), rel=1e-13, abs=1e-15)
        assert z[2 * i + 1] == pytest.approx(r * math.sin(2 * math.pi * ub), rel=1e-13, abs=1e-15)
        if i < 2:
            words = (x0, x1, x2, x3)
            bits = [(words[j // 32] >> (j % 32)) & 1 for j in range(128)]
            assert list(s[128 * i:128 * (i + 1)]) == [1.0 - 2.0 * b for b in bits]


def test_integer_argument_types_agree():
    # The int64 * uint64 -> float64 trap: any integer type of the arguments gives one stream.
    key = rng.seed_key(3)
    ref = np.empty(9)
    rng.fill_normals(key, np.uint64(2), np.uint64(1), np.uint64(6), ref)
    for args in [(2, 1, 6), (np.int64(2), np.int32(1), np.int64(6))]:
        out = np.empty(9)
        rng.fill_normals(int(key), *args, out)
        np.testing.assert_array_equal(out, ref)


def test_position_overflow_raises():
    out = np.empty(4)
    rng.fill_normals(rng.seed_key(1), 0, 0, (1 << 32) - 2, out)  # last counter 2**32 - 1: ok
    with pytest.raises(ValueError):
        rng.fill_normals(rng.seed_key(1), 0, 0, (1 << 32) - 1, out)


# --- reproducibility ------------------------------------------------------------------------


def test_same_key_same_stream_and_offsets():
    ref = normals(4099, seed=5, block=8, network=2)
    np.testing.assert_array_equal(normals(4099, seed=5, block=8, network=2), ref)
    # Any window of the stream equals the same slice of a longer fill, whatever the length
    # or parity (vectorised body vs. remainder must give bitwise the same numbers).
    for pos, n in [(0, 1), (0, 7), (1, 6), (3, 33), (17, 4000), (1000, 1001), (2047, 5)]:
        got = normals(n, seed=5, block=8, network=2, position=pos)
        np.testing.assert_array_equal(got, ref[2 * pos:2 * pos + n])
    u_ref = np.empty(1001)
    rng.fill_uniforms(rng.seed_key(5), 8, 2, 0, u_ref)
    u = np.empty(37)
    rng.fill_uniforms(rng.seed_key(5), 8, 2, 100, u)
    np.testing.assert_array_equal(u, u_ref[200:237])
    s_ref = np.empty(1000)
    rng.fill_signs(rng.seed_key(5), 8, 2, 0, s_ref)
    s = np.empty(300)
    rng.fill_signs(rng.seed_key(5), 8, 2, 3, s)
    np.testing.assert_array_equal(s, s_ref[384:684])


def test_random_windows_bitwise():
    # Vectorised chunks, chunk boundaries and the scalar odd tail all give the same bits.
    ref = normals(6000, seed=8, block=1, network=1)
    g = np.random.default_rng(0)
    for _ in range(200):
        pos = int(g.integers(0, 2000))
        n = int(g.integers(0, 6000 - 2 * pos + 1))
        got = normals(n, seed=8, block=1, network=1, position=pos)
        np.testing.assert_array_equal(got, ref[2 * pos:2 * pos + n])


@parallel_kernel
def _parallel_fill(key, block, out):
    # One stream per row (network), as the samplers do.
    for j in numba.prange(out.shape[0]):
        rng.fill_normals(key, block, j, 0, out[j])


def test_thread_count_does_not_change_streams():
    key = rng.seed_key(2024)
    outs = []
    old = numba.get_num_threads()
    try:
        for threads in (1, 2):
            set_threads(threads)
            out = np.empty((64, 1001))
            _parallel_fill(key, 3, out)
            outs.append(out)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(outs[0], outs[1])
    for j in (0, 63):
        np.testing.assert_array_equal(outs[0][j], normals(1001, seed=2024, block=3, network=j))


def test_different_seeds_differ():
    a, b = normals(1000, seed=1), normals(1000, seed=2)
    assert not np.any(a == b)


# --- distribution ---------------------------------------------------------------------------


def test_normal_moments(z):
    n = z.size
    d = z - z.mean()
    var = np.mean(d**2)
    skew = np.mean(d**3) / var**1.5
    exkurt = np.mean(d**4) / var**2 - 3.0
    # Standard errors of the sample moments of N iid standard normals.
    assert abs(z.mean()) < TOL * math.sqrt(1.0 / n)
    assert abs(z.var(ddof=1) - 1.0) < TOL * math.sqrt(2.0 / n)
    assert abs(skew) < TOL * math.sqrt(6.0 / n)
    assert abs(exkurt) < TOL * math.sqrt(24.0 / n)
    assert np.all(np.isfinite(z))


@pytest.mark.parametrize("t", [1.0, 2.0, 3.0, 4.0, 5.0])
def test_normal_tails(z, t):
    p = math.erfc(t / math.sqrt(2.0))  # P(|Z| > t)
    n = z.size
    count = np.count_nonzero(np.abs(z) > t)
    assert abs(count - n * p) < TOL * math.sqrt(n * p * (1.0 - p)) + 1.0


def test_normal_cdf_deciles(z):
    # Sign symmetry and the bulk of the distribution: counts below the Gaussian deciles.
    n = z.size
    for q in np.arange(0.1, 1.0, 0.1):
        x = math.sqrt(2.0) * _erfinv(2.0 * q - 1.0)
        count = np.count_nonzero(z < x)
        assert abs(count - n * q) < TOL * math.sqrt(n * q * (1.0 - q))


def _erfinv(y):
    # Bisection: plenty for nine deciles.
    lo, hi = -6.0, 6.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if math.erf(mid) < y else (lo, mid)
    return 0.5 * (lo + hi)


def test_uniforms():
    n = 1_000_000
    u = np.empty(n)
    rng.fill_uniforms(rng.seed_key(77), 0, 0, 0, u)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert np.all(u * 2.0**53 == np.floor(u * 2.0**53))  # 53-bit grid
    assert abs(u.mean() - 0.5) < TOL * math.sqrt(1.0 / 12.0 / n)
    counts = np.bincount((u * 100).astype(np.int64), minlength=100)
    chi2 = np.sum((counts - n / 100) ** 2 / (n / 100))  # ~ chi2(99): mean 99, sd 14
    assert chi2 < 99 + TOL * math.sqrt(2 * 99)


def test_signs():
    n = 1_000_000
    s = np.empty(n)
    rng.fill_signs(rng.seed_key(78), 0, 0, 0, s)
    assert set(np.unique(s)) == {-1.0, 1.0}
    assert abs(s.mean()) < TOL * math.sqrt(1.0 / n)
    assert abs(np.mean(s[1:] * s[:-1])) < TOL * math.sqrt(1.0 / n)


# --- independence of streams ----------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        dict(seed=12345, block=1, network=0, position=0),
        dict(seed=12345, block=1 << 32, network=0, position=0),  # high word of the block
        dict(seed=12345, block=0, network=1, position=0),
        dict(seed=12346, block=0, network=0, position=0),
        dict(seed=12345, block=0, network=0, position=1),  # shifted by one counter
    ],
)
def test_streams_uncorrelated(z, gen, other):
    n = 500_000
    a = z[:n]
    b = normals(n, generator=gen, **other)
    assert not np.any(a == b)
    # Correlation of independent streams ~ N(0, 1/n); also of their squares (|z| coupling).
    assert abs(np.corrcoef(a, b)[0, 1]) < TOL / math.sqrt(n)
    assert abs(np.corrcoef(a**2, b**2)[0, 1]) < TOL / math.sqrt(n)


def test_pair_members_uncorrelated(z):
    # The normals of one counter (cos and sin branch; philox32: also its two pairs) and of
    # neighbouring counters are independent: every pair of offsets within 8 consecutive.
    w = z[: z.size - z.size % 8].reshape(-1, 8)
    n = w.shape[0]
    for i in range(8):
        for j in range(i + 1, 8):
            a, b = w[:, i], w[:, j]
            assert abs(np.corrcoef(a, b)[0, 1]) < TOL / math.sqrt(n), (i, j)
            assert abs(np.corrcoef(a**2, b**2)[0, 1]) < TOL / math.sqrt(n), (i, j)


def test_normal_moments_to_sixth(z):
    # E z^4 = 3, E z^6 = 15, with the standard errors sqrt(Var z^p / N) of the raw moments
    # (Var z^4 = 105 - 9, Var z^6 = 10395 - 225); the tails of philox32 end at |z| = 6.66,
    # which moves these by < 1e-8 (docs/performance.md), far below the tolerance.
    n = z.size
    assert abs(np.mean(z**4) - 3.0) < TOL * math.sqrt(96.0 / n)
    assert abs(np.mean(z**6) - 15.0) < TOL * math.sqrt(10170.0 / n)


# --- philox32: layout, tail, float32 transform ------------------------------------------------


def _philox32_reference(seed, block, network, c0, count):
    # Independent float64 NumPy evaluation of the philox32 formulas on the raw Philox words
    # (the block function is pinned by the known-answer tests): 4 normals per counter.
    out = []
    for c in range(c0, c0 + count):
        x = _raw(rng.seed_key(seed), block, network, c)
        # the uniform as specified: IEEE float32 conversion, sum and (exact) scaling
        v = ((np.right_shift(x, 1).astype(np.float32) + np.float32(0.5))
             * np.float32(2.0**-31)).astype(np.float64)
        r = np.sqrt(-2.0 * np.log(v))
        out += [r[0] * np.cos(2 * np.pi * v[1]), r[0] * np.sin(2 * np.pi * v[1]),
                r[2] * np.cos(2 * np.pi * v[3]), r[2] * np.sin(2 * np.pi * v[3])]
    return np.array(out)


def test_philox32_layout_against_float64_formulas():
    got = normals(4 * 300, seed=31, block=(1 << 33) + 5, network=7, position=9, generator="philox32")
    ref = _philox32_reference(31, (1 << 33) + 5, 7, 9, 300)
    # float32 log, sqrt, sin, cos: a few float32 ulps relative to the radius r (the sin / cos
    # error is relative to 1, not to a small z)
    r = np.repeat(np.sqrt(ref[0::2] ** 2 + ref[1::2] ** 2), 2)
    assert np.all(np.abs(got - ref) <= 8 * 2.0**-24 * r)


def test_philox32_windows_bitwise():
    # Every window (chunk boundaries, the partial last counter, vector remainders) gives the
    # bits of the one long fill: out[j] is normal 4 * position + j.
    ref = normals(8000, seed=8, block=1, network=1, generator="philox32")
    g = np.random.default_rng(1)
    for _ in range(200):
        pos = int(g.integers(0, 1000))
        n = int(g.integers(0, 8000 - 4 * pos + 1))
        got = normals(n, seed=8, block=1, network=1, position=pos, generator="philox32")
        np.testing.assert_array_equal(got, ref[4 * pos:4 * pos + n])


@pytest.mark.parametrize("generator", ["philox53", "philox32"])
def test_fill_normals_with_a_scratch_gives_the_same_numbers(generator):
    # windows against the one long fill, through one reused scratch that starts as garbage
    # (NaN): nothing of an earlier call or of the scratch's contents may leak into a fill
    key = rng.stream_key(8, generator)
    ref = np.empty(8000)
    rng.fill_normals(key, 1, 1, 0, ref)
    per = 4 if generator == "philox32" else 2                    # normals per counter
    scratch = np.full(rng.NORMALS_SCRATCH, np.nan, dtype=np.float32)
    g = np.random.default_rng(2)
    for _ in range(100):
        pos = int(g.integers(0, 1000))
        got = np.empty(int(g.integers(0, 8000 - per * pos + 1)))
        rng.fill_normals_with(key, 1, 1, pos, got, scratch)
        np.testing.assert_array_equal(got, ref[per * pos:per * pos + got.shape[0]])


def test_philox32_tail_ends_at_the_smallest_uniform():
    # The largest radius comes from a word with x >> 1 == 0: v = 2**-32, r = sqrt(64 ln 2).
    buf = np.array([2.0**-32, 0.25, 1.0, 0.0], dtype=np.float32)
    rng._box_muller_f32(buf)
    r_max = math.sqrt(64.0 * math.log(2.0))
    assert abs(buf[1] - r_max) < 4 * 2.0**-24 * r_max and abs(buf[0]) < 1e-6
    assert buf[2] == 0.0 and buf[3] == 0.0          # v = 1 (the largest word): radius 0
    z = normals(1 << 20, seed=3, generator="philox32")
    assert np.abs(z).max() <= r_max * (1 + 2.0**-22)


@kernel
def _v31_array(x, out):
    for i in range(x.shape[0]):
        out[i] = rng._v31(x[i])


def test_philox32_uniforms_exactly_as_specified():
    # v = (float32(x >> 1) + 1/2) 2**-31 in IEEE float32, bitwise; the smallest words make the
    # tail (v = 2**-32 is the largest radius), the largest give v = 1 (radius 0)
    x = np.array([0, 1, 2, 3, 5, 2**24 - 2, 2**24, 2**25 + 6, 2**31, 2**32 - 2, 2**32 - 1],
                 dtype=np.uint64)
    got = np.empty(x.size, dtype=np.float32)
    _v31_array(x, got)
    ref = (np.right_shift(x, np.uint64(1)).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-31)
    np.testing.assert_array_equal(got, ref)
    assert got[0] == np.float32(2.0**-32) and got[2] == np.float32(1.5 * 2.0**-31)
    assert got[-1] == np.float32(1.0)


def test_philox32_key_selects_the_transform():
    # the same seed, the other generator: other numbers; philox53 numbers are unchanged
    a = normals(64, seed=4, generator="philox32")
    b = normals(64, seed=4, generator="philox53")
    assert not np.any(a == b)
    out = np.empty(64)
    rng.fill_normals(rng.seed_key(4), 0, 0, 0, out)
    np.testing.assert_array_equal(out, b)
    with pytest.raises(ValueError, match="unknown generator"):
        rng.stream_key(4, "mt19937")


# --- the vectorisable log and sin/cos against numpy ------------------------------------------


@kernel
def _log_array(x, out):
    for i in range(x.shape[0]):
        out[i] = rng._log(x[i])


@kernel
def _sincos_array(u, s, c):
    for i in range(u.shape[0]):
        s[i], c[i] = rng._sincos_2pi(u[i])


def _ulps(got, ref):
    return np.abs(got - ref) / np.spacing(np.abs(ref))


def test_log_accuracy():
    # Whole range used: 1 - u for u on the 2**-53 grid, i.e. k * 2**-53 for k = 1..2**53.
    g = np.random.default_rng(1)
    k = np.concatenate([
        g.integers(1, 2**53, size=200_000),
        np.arange(1, 5000),  # smallest arguments, down to 2**-53
        2**53 - np.arange(0, 5000),  # arguments near 1, where log is near 0
        2 ** np.arange(0, 54),  # exact powers of two
        np.round(2**53 * np.sqrt(0.5) + np.arange(-50, 50)),  # reduction boundary
    ]).astype(np.float64)
    x = k * 2.0**-53
    got = np.empty_like(x)
    _log_array(x, got)
    ref = np.log(x)
    assert got[x == 1.0].tolist() == [0.0] * int(np.sum(x == 1.0))
    nz = ref != 0
    assert _ulps(got[nz], ref[nz]).max() <= 2.0


def test_sincos_accuracy():
    g = np.random.default_rng(2)
    k = np.concatenate([
        g.integers(0, 2**53, size=200_000),
        np.arange(0, 3000),
        2**53 - np.arange(1, 3000),
        np.arange(0, 8) * 2**50 + np.arange(-3, 4)[:, None],  # around multiples of 1/8
    ], axis=None)
    k = k[(k >= 0) & (k < 2**53)]
    u = k.astype(np.float64) * 2.0**-53
    s, c = np.empty_like(u), np.empty_like(u)
    _sincos_array(u, s, c)
    # numpy's own argument 2 pi u carries a rounding error up to ~4e-16 near 2 pi.
    assert np.abs(s - np.sin(2 * np.pi * u)).max() < 1e-15
    assert np.abs(c - np.cos(2 * np.pi * u)).max() < 1e-15
    assert np.abs(s * s + c * c - 1.0).max() < 5e-16
    # Relative accuracy against an exactly reduced reference: 2 pi u = q pi/2 + 2 pi f with
    # q = round(4u), f = u - q/4 exact; numpy's sin/cos of the small 2 pi f are < 1 ulp.
    q = np.round(4 * u)
    f = u - q / 4
    sf, cf = np.sin(2 * np.pi * f), np.cos(2 * np.pi * f)
    qm = q.astype(np.int64) % 4
    rs = np.choose(qm, [sf, cf, -sf, -cf])
    rc = np.choose(qm, [cf, -sf, -cf, sf])
    for got, ref in ((s, rs), (c, rc)):
        nz = ref != 0
        assert np.all(got[~nz] == 0)
        assert _ulps(got[nz], ref[nz]).max() <= 3.0


def test_cache_key_includes_kernel_sources():
    # A cached kernel is recompiled when any kernels/*.py changes (Numba alone would only
    # notice changes to the kernel's own file and load a sampler with a stale generator).
    from mcsim.kernels import jit

    disp = rng.fill_normals
    if not disp.signatures:
        disp(rng.seed_key(0), 0, 0, 0, np.empty(2))
    key = disp._cache._index_key(disp.signatures[0], disp.targetctx.codegen())
    assert key[-1] == jit.sources_digest()


# --- the float32 log and sin/cos of philox32 (kernels/f32math.py) against numpy float64 -----


@kernel
def _logf_array(x, out):
    for i in range(x.shape[0]):
        out[i] = f32math.logf(x[i])


@kernel
def _sincosf_array(u, s, c):
    for i in range(u.shape[0]):
        s[i], c[i] = f32math.sincos_2pi_f32(u[i])


def test_logf_accuracy():
    # Cephes logf: peak relative error 7.6e-8 (~1.3 float32 ulp) plus the final rounding;
    # over the whole range philox32 uses (2**-32 .. 1) and just below 1
    g = np.random.default_rng(5)
    x = np.concatenate([g.random(500_000), 2.0 ** -g.uniform(0, 32, 500_000),
                        1.0 - g.random(50_000) * 1e-5, [2.0**-32, 1.0]]).astype(np.float32)
    x = x[x > 0]
    got = np.empty_like(x)
    _logf_array(x, got)
    ref = np.log(x.astype(np.float64))
    assert got[x == 1.0].tolist() == [0.0] * int(np.sum(x == 1.0))
    nz = ref != 0.0
    ulp = np.spacing(np.abs(ref[nz]).astype(np.float32)).astype(np.float64)
    assert (np.abs(got[nz] - ref[nz]) / ulp).max() <= 2.0


def test_sincos_f32_accuracy():
    # Cephes sinf / cosf kernels (< 1 ulp on [-pi/4, pi/4]) after an exact quadrant
    # reduction whose product t pi/2 is rounded once: absolute error <= 2 * 2**-24
    g = np.random.default_rng(6)
    u = np.concatenate([g.random(500_000), np.arange(0.0, 1.0 + 1 / 2048, 1 / 2048)]).astype(np.float32)
    s, c = np.empty_like(u), np.empty_like(u)
    _sincosf_array(u, s, c)
    t = 2.0 * np.pi * u.astype(np.float64)
    assert np.abs(s - np.sin(t)).max() <= 2.0 * 2.0**-24
    assert np.abs(c - np.cos(t)).max() <= 2.0 * 2.0**-24
    quarter = np.arange(0.0, 1.0 + 1 / 4, 1 / 4).astype(np.float32)      # exact at quarter turns
    _sincosf_array(quarter, s[:5], c[:5])
    assert s[:5].tolist() == [0.0, 1.0, 0.0, -1.0, 0.0] and c[:5].tolist() == [1.0, 0.0, -1.0, 0.0, 1.0]
