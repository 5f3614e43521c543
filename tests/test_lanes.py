"""``reduce.dot`` (8-lane vector code for C-contiguous float64, ``kernels/lanes.py``) against
the documented order computed exactly in Python (FMA rounded once via fractions), and the
fused ReLU/Gram sums of the markov sampler (8-lane vector code, ``kernels/lanes.py``)
against the general path they replace: z transform (``common.correlate_rows``), ``activate``
and ``reduce.dot``, compiled as the sampler compiles them. Bitwise, for widths below, at and
above multiples of 8 (the vector loop and the scalar tail), c10 = 0 (its own branch) and
values over many binades; on this machine's own target and on a Haswell (AVX2) build, where
the backend once fused the other product of z1 = c10 x + c11 y when left to choose.

The golden runs do not reach this code (their markov ReLU widths are below 8, all tail).
"""
from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from mcsim.kernels import markov
from mcsim.kernels.activations import RELU, activate
from mcsim.kernels.common import correlate_rows
from mcsim.kernels.jit import kernel
from mcsim.kernels.reduce import dot

HERE = Path(__file__).resolve().parent


@kernel(cache=False)
def _general(eps, k, n, C, res):
    # markov's general path for k = 1, 2 (z = C eps, ReLU, one reduce.dot per pair)
    zz = eps[: k * n].reshape((k, n))
    correlate_rows(C, zz, k, n)
    activate(RELU, 0.0, eps[: k * n], eps[: k * n])
    p = 0
    for a in range(k):
        for b in range(a, k):
            res[p] = dot(zz[a, :n], zz[b, :n])
            p += 1


def _fma(a: float, b: float, c: float) -> float:
    return float(Fraction(a) * Fraction(b) + Fraction(c))     # one rounding


def _dot_reference(x, y) -> float:
    # reduce.dot's documented order: s_j = fma(x_i, y_i, s_j) over i = j mod 8 below
    # 8 floor(n / 8), ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)), then the tail
    n = len(x)
    full = n - n % 8
    s = [0.0] * 8
    for i in range(full):
        s[i % 8] = _fma(float(x[i]), float(y[i]), s[i % 8])
    acc = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
    for i in range(full, n):
        acc = _fma(float(x[i]), float(y[i]), acc)
    return acc


def _mismatches(trials: int = 400, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    bad = []
    for t in range(trials // 2):
        n = int(rng.integers(0, 70))
        x = rng.standard_normal(2 * n) * 10.0 ** rng.integers(-4, 5)
        y = rng.standard_normal(2 * n + 3)
        want_dot = _dot_reference(x[:n], y[:n])
        for name, got_dot in (("C", dot(x[:n], y)), ("strided", dot(x[::2], y[::2]))):
            if name == "strided":
                want_dot = _dot_reference(x[::2], y[::2])
            if np.float64(got_dot).view(np.int64) != np.float64(want_dot).view(np.int64):
                bad.append(f"dot {name} n={n}: {got_dot!r} != {want_dot!r}")
    want, got = np.empty(3), np.empty(3)
    for t in range(trials):
        n = int(rng.integers(0, 80)) if t % 4 else int(rng.integers(256, 1100))
        eps = rng.standard_normal(2 * n) * 10.0 ** rng.integers(-4, 5)
        C = np.zeros((2, 2))
        C[0, 0], C[1, 0], C[1, 1] = rng.standard_normal(3) * 10.0 ** rng.integers(-3, 4, 3)
        if t % 3 == 0:
            C[1, 0] = 0.0
        x, y = eps[:n].copy(), eps[n:].copy()
        _general(eps[:n].copy(), 1, n, C, want)
        g1 = markov._relu_gram1(x, n, C[0, 0])
        if np.float64(g1).view(np.int64) != want[:1].view(np.int64)[0]:
            bad.append(f"k=1 n={n} c00={C[0, 0]!r}: {g1!r} != {want[0]!r}")
        _general(eps.copy(), 2, n, C, want)
        markov._relu_gram2(x, y, n, C[0, 0], C[1, 0], C[1, 1], got)
        if not np.array_equal(got.view(np.int64), want.view(np.int64)):
            bad.append(f"k=2 n={n} C={C.tolist()}: {got.tolist()} != {want.tolist()}")
    return bad


def test_dot_and_fused_relu_sums_bitwise():
    bad = _mismatches()
    assert not bad, "\n".join(bad[:10])


def test_dot_and_fused_relu_sums_bitwise_on_a_haswell_build():
    sys.path.insert(0, str(HERE))
    from isa import haswell_env

    env = haswell_env(HERE.parent / ".venv" / "numba-cache-haswell")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import test_lanes; "
            "bad = test_lanes._mismatches(); print(len(bad)); print('\\n'.join(bad[:10]))")
    out = subprocess.run([sys.executable, "-c", code, str(HERE)], env=env, check=True,
                         capture_output=True, text=True, timeout=900).stdout
    assert out.splitlines()[0] == "0", out
