"""Alternative normal generators, kept only to measure them against ``rng.fill_normals``.

None of these is used by mcsim; ``docs/performance.md`` lists their timings. All fill
``out`` (n,) float64 with standard normals. The ``w32_*`` variants are the options of issue
12 next to the chosen philox32 (``rng._fill_normals_philox32``): one 32-bit word per uniform
with a float64 Box-Muller (10 or 7 Philox rounds), and 7 rounds with the float32 one.
"""

from __future__ import annotations

import numba
import numpy as np

from mcsim.kernels import rng
from mcsim.kernels.jit import kernel, parallel_kernel
from mcsim.kernels.rng import (
    _CHUNK32,
    _MASK32,
    _TWO_M53,
    _W0,
    _W1,
    _box_muller,
    _box_muller_f32,
    _box_muller_inplace,
    _log,
    _philox,
    _round,
    _sincos_2pi,
    _stream_words,
    _u53,
    _v31,
    _widen,
)
from mcsim.kernels.jit import inline


@kernel
def philox_libm(key, block, network, position, out):
    """Philox + Box-Muller with libm ``log``/``cos``/``sin``: scalar calls, not vectorised."""
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    pos = np.uint64(position)
    for i in range(out.shape[0] // 2):
        x0, x1, x2, x3 = _philox(pos + np.uint64(i), c1, c2, c3, k0, k1)
        r = np.sqrt(-2.0 * np.log(1.0 - _u53(x0, x1) * _TWO_M53))
        t = 2.0 * np.pi * _u53(x2, x3) * _TWO_M53
        out[2 * i] = r * np.cos(t)
        out[2 * i + 1] = r * np.sin(t)


@kernel
def philox_fused(key, block, network, position, out):
    """Philox + own log/sincos in one loop: vectorised, but too many live vector registers."""
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    pos = np.uint64(position)
    for i in range(out.shape[0] // 2):
        x0, x1, x2, x3 = _philox(pos + np.uint64(i), c1, c2, c3, k0, k1)
        out[2 * i], out[2 * i + 1] = _box_muller(_u53(x0, x1) * _TWO_M53, _u53(x2, x3) * _TWO_M53)


@kernel
def box_muller_only(u, out):
    """The Box-Muller pass of ``rng.fill_normals`` alone: u (2 m,) uniforms -> out (2 m,)."""
    for i in range(out.shape[0] // 2):
        out[2 * i], out[2 * i + 1] = _box_muller(u[2 * i], u[2 * i + 1])


@kernel
def philox_polar(key, block, network, position, out):
    """Marsaglia's polar method on Philox uniforms: rejection (accepts pi/4), so a counter
    no longer maps to fixed outputs, and the data-dependent branch keeps it scalar."""
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    ctr = np.uint64(position)
    j = 0
    n = out.shape[0]
    while j < n:
        x0, x1, x2, x3 = _philox(ctr, c1, c2, c3, k0, k1)
        ctr += np.uint64(1)
        v1 = 2.0 * _u53(x0, x1) * _TWO_M53 - 1.0
        v2 = 2.0 * _u53(x2, x3) * _TWO_M53 - 1.0
        s = v1 * v1 + v2 * v2
        if s >= 1.0 or s == 0.0:
            continue
        f = np.sqrt(-2.0 * np.log(s) / s)
        out[j] = v1 * f
        if j + 1 < n:
            out[j + 1] = v2 * f
        j += 2


@kernel
def xoshiro_uniforms(state, out):
    """xoshiro256++ (Blackman & Vigna), ``L`` independent lanes: state (4, L) uint64.

    out (n,), n a multiple of L: ``out[L t + l]`` = 53-bit uniform of lane ``l`` at step ``t``.
    Stateful: numbers depend on how many were drawn before, unlike Philox.
    """
    s0 = state[0].copy()
    s1 = state[1].copy()
    s2 = state[2].copy()
    s3 = state[3].copy()
    lanes = s0.shape[0]
    for t in range(out.shape[0] // lanes):
        for lane in range(lanes):
            a0, a1, a2, a3 = s0[lane], s1[lane], s2[lane], s3[lane]
            x = a0 + a3
            res = ((x << np.uint64(23)) | (x >> np.uint64(41))) + a0
            tt = a1 << np.uint64(17)
            a2 ^= a0
            a3 ^= a1
            a1 ^= a2
            a0 ^= a3
            a2 ^= tt
            a3 = (a3 << np.uint64(45)) | (a3 >> np.uint64(19))
            s0[lane], s1[lane], s2[lane], s3[lane] = a0, a1, a2, a3
            out[lanes * t + lane] = np.float64(np.int64(res >> np.uint64(11))) * _TWO_M53
    state[0] = s0
    state[1] = s1
    state[2] = s2
    state[3] = s3


@kernel
def xoshiro_normals(state, out):
    """xoshiro256++ lanes + the same vectorised Box-Muller as ``rng.fill_normals``."""
    xoshiro_uniforms(state, out)
    _box_muller_inplace(out)


def xoshiro_state(lanes: int, seed: int = 1) -> np.ndarray:
    """Nonzero (4, lanes) uint64 state for ``xoshiro_*``."""
    return np.random.default_rng(seed).integers(1, 2**63, size=(4, lanes)).astype(np.uint64)


@kernel
def numba_legacy_normals(out):
    """``np.random.standard_normal()`` per element inside ``@njit`` (Numba's own MT19937)."""
    for i in range(out.shape[0]):
        out[i] = np.random.standard_normal()


@kernel
def numba_generator_normals(gen, out):
    """``numpy.random.Generator.standard_normal()`` per element inside ``@njit``."""
    for i in range(out.shape[0]):
        out[i] = gen.standard_normal()


@parallel_kernel
def fill_normals_parallel(key, block, network, out, chunk):
    """``rng.fill_normals`` over disjoint counter ranges of one stream, ``prange`` over chunks.

    Same numbers as one serial call (chunk must be even).
    """
    n = out.shape[0]
    for c in numba.prange((n + chunk - 1) // chunk):
        lo = c * chunk
        hi = min(n, lo + chunk)
        rng.fill_normals(key, block, network, lo // 2, out[lo:hi])


# --- issue 12 options: one 32-bit word per uniform -----------------------------------------
@inline
def _philox7(c0, c1, c2, c3, k0, k1):
    # Philox4x32-7: the fewest rounds Salmon et al. (2011) found Crush-resistant (no margin)
    for _ in range(6):
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return _round(c0, c1, c2, c3, k0, k1)


@kernel
def _words_f64(buf, pos, c1, c2, c3, k0, k1, rounds7):
    # buf (4 m,) float64: the philox32 uniforms of counters pos.., in float64 (exact)
    if rounds7:
        for i in range(buf.shape[0] // 4):
            x0, x1, x2, x3 = _philox7(pos + np.uint64(i), c1, c2, c3, k0, k1)
            buf[4 * i] = _v31(x0)
            buf[4 * i + 1] = _v31(x1)
            buf[4 * i + 2] = _v31(x2)
            buf[4 * i + 3] = _v31(x3)
    else:
        for i in range(buf.shape[0] // 4):
            x0, x1, x2, x3 = _philox(pos + np.uint64(i), c1, c2, c3, k0, k1)
            buf[4 * i] = _v31(x0)
            buf[4 * i + 1] = _v31(x1)
            buf[4 * i + 2] = _v31(x2)
            buf[4 * i + 3] = _v31(x3)


@kernel
def _words_f32_r7(buf, pos, c1, c2, c3, k0, k1):
    for i in range(buf.shape[0] // 4):
        x0, x1, x2, x3 = _philox7(pos + np.uint64(i), c1, c2, c3, k0, k1)
        buf[4 * i] = _v31(x0)
        buf[4 * i + 1] = _v31(x1)
        buf[4 * i + 2] = _v31(x2)
        buf[4 * i + 3] = _v31(x3)


@kernel
def _box_muller_w32_f64(buf):
    # float64 Box-Muller of uniforms in (0, 1] (no 1 - u: the uniform is never 0)
    for i in range(buf.shape[0] // 2):
        r = np.sqrt(-2.0 * _log(buf[2 * i]))
        sn, cs = _sincos_2pi(buf[2 * i + 1])
        buf[2 * i] = r * cs
        buf[2 * i + 1] = r * sn


@kernel
def w32_f64(key, block, network, out, rounds7):
    """One 32-bit word per uniform, float64 Box-Muller; Philox with 7 or 10 rounds."""
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    m = out.shape[0] // 4
    for lo in range(0, m, _CHUNK32):
        hi = min(m, lo + _CHUNK32)
        buf = out[4 * lo:4 * hi]
        _words_f64(buf, np.uint64(lo), c1, c2, c3, k0, k1, rounds7)
        _box_muller_w32_f64(buf)


@kernel
def w32_f32_rounds7(key, block, network, out):
    """philox32 with Philox4x32-7 instead of -10."""
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    m = out.shape[0] // 4
    buf = np.empty(4 * _CHUNK32, dtype=np.float32)
    for lo in range(0, m, _CHUNK32):
        hi = min(m, lo + _CHUNK32)
        b = buf[:4 * (hi - lo)]
        _words_f32_r7(b, np.uint64(lo), c1, c2, c3, k0, k1)
        _box_muller_f32(b)
        _widen(b, out[4 * lo:4 * hi])


# --- another published counter-based generator: Threefry4x32-20 (Salmon et al. 2011) -----
_TF_PARITY = np.uint64(0x1BD11BDA)
_TF_R = ((10, 26), (11, 21), (13, 27), (23, 5), (6, 20), (17, 11), (25, 10), (18, 20))


def _threefry_source() -> str:
    # Random123's threefry4x32 with 20 rounds, key injection every 4 rounds, written out
    # round by round (a loop over tuples of rotation constants is not unrolled by Numba and
    # keeps the loop scalar); uint64 values holding 32 bits (Numba widens uint32 arithmetic).
    lines = ["def _threefry4x32_20(c0, c1, c2, c3, k0, k1, k2, k3):",
             "    k4 = _TF_PARITY ^ k0 ^ k1 ^ k2 ^ k3",
             "    x0 = (c0 + k0) & _MASK32", "    x1 = (c1 + k1) & _MASK32",
             "    x2 = (c2 + k2) & _MASK32", "    x3 = (c3 + k3) & _MASK32"]

    def rot(v, r):
        return f"((({v} << np.uint64({r})) | ({v} >> np.uint64({32 - r}))) & _MASK32)"
    for rnd in range(20):
        ra, rb = _TF_R[rnd % 8]
        if rnd % 2 == 0:
            lines += [f"    x0 = (x0 + x1) & _MASK32", f"    x1 = {rot('x1', ra)} ^ x0",
                      f"    x2 = (x2 + x3) & _MASK32", f"    x3 = {rot('x3', rb)} ^ x2"]
        else:
            lines += [f"    x0 = (x0 + x3) & _MASK32", f"    x3 = {rot('x3', ra)} ^ x0",
                      f"    x2 = (x2 + x1) & _MASK32", f"    x1 = {rot('x1', rb)} ^ x2"]
        if rnd % 4 == 3:
            s = rnd // 4 + 1
            ks = ["k0", "k1", "k2", "k3", "k4"]
            lines += [f"    x0 = (x0 + {ks[s % 5]}) & _MASK32", f"    x1 = (x1 + {ks[(s + 1) % 5]}) & _MASK32",
                      f"    x2 = (x2 + {ks[(s + 2) % 5]}) & _MASK32",
                      f"    x3 = (x3 + {ks[(s + 3) % 5]} + np.uint64({s})) & _MASK32"]
    lines.append("    return x0, x1, x2, x3")
    return "\n".join(lines)


_ns = {"np": np, "_MASK32": _MASK32, "_TF_PARITY": _TF_PARITY}
exec(_threefry_source(), _ns)  # noqa: S102 - generated straight-line code, for timing only
#: Threefry4x32-20 block function (for timing only: not checked against Random123's answers)
_threefry4x32_20 = inline(_ns["_threefry4x32_20"])


@kernel
def _threefry_uniforms(buf, pos, c1, c2, c3, k0, k1):
    for i in range(buf.shape[0] // 4):
        x0, x1, x2, x3 = _threefry4x32_20(pos + np.uint64(i), c1, c2, c3, k0, k1, c1, c2)
        buf[4 * i] = _v31(x0)
        buf[4 * i + 1] = _v31(x1)
        buf[4 * i + 2] = _v31(x2)
        buf[4 * i + 3] = _v31(x3)


@kernel
def threefry_w32_f32(key, block, network, out):
    """philox32's transform on Threefry4x32-20 words instead of Philox4x32-10."""
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    m = out.shape[0] // 4
    buf = np.empty(4 * _CHUNK32, dtype=np.float32)
    for lo in range(0, m, _CHUNK32):
        hi = min(m, lo + _CHUNK32)
        b = buf[:4 * (hi - lo)]
        _threefry_uniforms(b, np.uint64(lo), c1, c2, c3, k0, k1)
        _box_muller_f32(b)
        _widen(b, out[4 * lo:4 * hi])
