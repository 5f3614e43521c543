"""The fused ReLU/Gram sums of the markov sampler (8-lane vector code, ``kernels/lanes.py``)
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


def _mismatches(trials: int = 400, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    bad = []
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


def test_fused_relu_sums_equal_the_general_path_bitwise():
    bad = _mismatches()
    assert not bad, "\n".join(bad[:10])


def test_fused_relu_sums_equal_the_general_path_on_a_haswell_build():
    sys.path.insert(0, str(HERE))
    from isa import haswell_env

    env = haswell_env(HERE.parent / ".venv" / "numba-cache-haswell")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import test_lanes; "
            "bad = test_lanes._mismatches(); print(len(bad)); print('\\n'.join(bad[:10]))")
    out = subprocess.run([sys.executable, "-c", code, str(HERE)], env=env, check=True,
                         capture_output=True, text=True, timeout=900).stdout
    assert out.splitlines()[0] == "0", out
