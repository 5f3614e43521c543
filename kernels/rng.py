"""Philox4x32-10 counter-based random numbers (Salmon et al. 2011, Random123).

Two generators share the Philox stream and differ in how normals are made from it
(``fill_normals``); the type of the ``key`` a kernel is given selects one at compile time:

- ``philox53`` (key: ``np.uint64``, from ``seed_key``): two 53-bit uniforms per counter and a
  float64 Box-Muller, 2 normals per counter (mcsim's only generator before it had a name);
- ``philox32`` (key: ``Philox32Key``, from ``stream_key(seed, "philox32")``): one 32-bit
  word per uniform and a float32 Box-Muller widened to float64, 4 normals per counter
  (2-2.4x faster on AVX2; tails end at |z| = 6.66: docs/performance.md). Uniforms, signs and
  the scalar draws (``uniforms_at``, ``normals_at``, ``words_at``) are those of ``philox53``.

philox53 in detail:

Every number is a pure function of ``(key, block, network, position)``:

- key   ``k1:k0``  = 64-bit key from ``seed_key(root_seed)`` (``k0`` low 32 bits);
- counter ``c0`` = ``position + i`` (the i-th Philox counter of this call),
          ``c1`` = network index within the block (low 32 bits),
          ``c3:c2`` = block index (64 bit, ``c2`` low 32 bits).

One counter value gives four 32-bit words ``x0..x3`` and from them

- 2 uniforms (53 bit): ``u_a`` from ``(x0, x1)``, ``u_b`` from ``(x2, x3)``;
- 2 normals (Box-Muller): ``r = sqrt(-2 log(1 - u_a))``, ``z0 = r cos(2 pi u_b)``,
  ``z1 = r sin(2 pi u_b)``;  ``1 - u_a`` lies in ``(0, 1]`` so the log is finite;
- 128 signs: bit ``b`` of word ``x_w`` gives sign ``32 w + b``; a set bit is ``-1.0``.

with ``u = ((x_hi >> 5) * 2**26 + (x_lo >> 6)) * 2**-53`` (exact, in [0, 1)). ``log``,
``sin`` and ``cos`` are vectorisable fdlibm-style polynomials (below), accurate to ~1 ulp.

A fill writes consecutive counters starting at ``position``; an ``out`` of odd length drops
the last counter's second value.

philox32 (same key and counter words): ``out[j]`` is normal ``4 * position + j`` of the
stream; counter ``c`` gives words ``x0..x3``, uniforms ``v_w = (float32(x_w >> 1) + 1/2) *
2**-31`` (float32, in ``[2**-32, 1]``), ``r = sqrt(-2 log v_0)``, ``(z_0, z_1) = r (cos,
sin)(2 pi v_1)`` and from ``v_2, v_3`` likewise ``z_2, z_3``, computed in float32
(``f32math``), then widened. It uses ``ceil(n / 4)`` counters from ``position``, a subset of
the ``ceil(n / 2)`` that philox53 uses, so callers that lay out counter ranges for philox53
never overlap.

For both, ``position + n_counters`` must stay below ``2**32`` (``c0`` is 32 bit; the fill
raises otherwise rather than wrap into a repeated stream).

Numba typing trap: ``int64 * uint64`` is float64 in Numba, so every public function casts
its integer arguments to ``np.uint64`` first and all constants are ``np.uint64``.
Timings and the alternatives that were measured: ``docs/performance.md``.
"""

from __future__ import annotations

import numpy as np

import collections

from numba.core import types
from numba.extending import overload

from .f32math import logf, sincos_2pi_f32
from .fdlibm import bits_f64, f64_bits, log_kernel, sincos_quadrants
from .jit import inline, kernel

__all__ = [
    "seed_key",
    "stream_key",
    "Philox32Key",
    "philox4x32_10",
    "fill_normals",
    "fill_normals_with",
    "NORMALS_SCRATCH",
    "fill_uniforms",
    "fill_signs",
    "uniforms_at",
    "normals_at",
    "words_at",
    "stream_words",
    "philox_block",
    "u53",
    "box_muller",
    "vlog",
    "MASK32",
    "TWO_M53",
]

# Random123 Philox4x32 constants.
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)

_MASK32 = np.uint64(0xFFFFFFFF)
_SH32 = np.uint64(32)
_SH5 = np.uint64(5)
_SH6 = np.uint64(6)
_TWO26 = 67108864.0  # 2**26
_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53
_C0_LIMIT = np.uint64(1 << 32)
_ONE = np.uint64(1)

_U64 = (1 << 64) - 1


def seed_key(root_seed: int) -> np.uint64:
    """64-bit Philox key from a root seed: splitmix64(root_seed).

    ``root_seed`` is any integer in ``[0, 2**64)``. splitmix64 (Steele, Lea & Flood 2014)
    spreads nearby seeds (0, 1, 2, ...) over unrelated keys.
    """
    seed = int(root_seed)
    if not 0 <= seed <= _U64:
        raise ValueError(f"root_seed must be in [0, 2**64), got {root_seed}")
    z = (seed + 0x9E3779B97F4A7C15) & _U64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
    return np.uint64(z ^ (z >> 31))


#: the key of the philox32 generator: the same 64-bit Philox key, wrapped so that Numba
#: compiles the kernels that receive it with the philox32 normals (a distinct argument type)
Philox32Key = collections.namedtuple("Philox32Key", ["key"])


def stream_key(root_seed: int, generator: str):
    """The key kernels take for ``generator`` (``"philox53"`` or ``"philox32"``): its type
    selects the normal transform (module docstring); both use ``seed_key(root_seed)``."""
    key = seed_key(root_seed)
    if generator == "philox53":
        return key
    if generator == "philox32":
        return Philox32Key(key)
    raise ValueError(f"unknown generator {generator!r}; known: philox53, philox32")


def _key64(key):  # pragma: no cover - replaced in compiled code by the overload below
    raise NotImplementedError


@overload(_key64)
def _key64_overload(key):
    # the raw uint64 key of either key type (Numba-typed dispatch)
    if isinstance(key, types.Integer):
        return lambda key: np.uint64(key)
    if isinstance(key, types.BaseNamedTuple) and key.instance_class is Philox32Key:
        return lambda key: np.uint64(key[0])
    return None


@inline
def _round(c0, c1, c2, c3, k0, k1):
    # One Philox S-box round. All operands are uint64 holding 32-bit values, so each
    # product is an exact 32x32->64 multiply (vpmuludq once vectorised).
    p0 = _M0 * c0
    p1 = _M1 * c2
    return (
        (p1 >> _SH32) ^ c1 ^ k0,
        p1 & _MASK32,
        (p0 >> _SH32) ^ c3 ^ k1,
        p0 & _MASK32,
    )


@inline
def _philox(c0, c1, c2, c3, k0, k1):
    # Ten rounds, key bumped (mod 2**32) between rounds: the Random123 schedule. The loop
    # has a constant trip count and is fully unrolled by LLVM.
    for _ in range(9):
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return _round(c0, c1, c2, c3, k0, k1)


@kernel
def philox4x32_10(counter, key):
    """Raw Philox4x32-10 block: ``counter`` (4,) and ``key`` (2,) uint32-valued -> (4,) uint64.

    For known-answer tests and debugging; the fills inline the same rounds.
    """
    x0, x1, x2, x3 = _philox(
        np.uint64(counter[0]), np.uint64(counter[1]), np.uint64(counter[2]),
        np.uint64(counter[3]), np.uint64(key[0]), np.uint64(key[1]),
    )
    out = np.empty(4, dtype=np.uint64)
    out[0] = x0
    out[1] = x1
    out[2] = x2
    out[3] = x3
    return out


# --- vectorisable log and sin/cos (kernels in fdlibm.py) ---------------------------------
_SQRT_HALF_SHIFT = np.int64(0x3FF0000000000000 - 0x3FE6A09E00000000)
_SQRT_HALF_BITS = np.int64(0x3FE6A09E00000000)
_MANT_MASK = np.int64(0x000FFFFFFFFFFFFF)
_I52 = np.int64(52)
_I1023 = np.int64(1023)
_HALF_PI = 0.5 * np.pi


@inline
def _log(x):
    # Natural log for normal positive finite x (fdlibm e_log.c): x = 2**k * m with
    # m in [sqrt(1/2), sqrt(2)), log(m) = f - f**2/2 + s (f**2/2 + R(s**2)), s = f / (2 + f).
    ix = f64_bits(x) + _SQRT_HALF_SHIFT
    dk = np.float64(np.int32((ix >> _I52) - _I1023))
    f = bits_f64((ix & _MANT_MASK) + _SQRT_HALF_BITS) - 1.0
    return log_kernel(f, dk)


@inline
def _sincos_2pi(u):
    # (sin, cos)(2 pi u) for u in [0, 1). Exact reduction to a quadrant: y = 4u = q + f with
    # integer q = round(y) and f in [-1/2, 1/2] (both exact for u on the 2**-53 grid), then
    # x = f pi/2 in [-pi/4, pi/4] and the fdlibm kernels k_sin.c / k_cos.c.
    y = 4.0 * u
    qf = np.floor(y + 0.5)
    x = (y - qf) * _HALF_PI
    return sincos_quadrants(x, np.int64(qf))


@inline
def _u53(hi, lo):
    # 53-bit integer (hi >> 5) * 2**26 + (lo >> 6) in [0, 2**53) as float64, exact.
    # Both parts fit in int32, so the conversion vectorises without 64-bit int->float.
    return np.float64(np.int32(hi >> _SH5)) * _TWO26 + np.float64(np.int32(lo >> _SH6))


@inline
def _stream_words(key, block, network):
    # Key words and the fixed counter words of one stream, all uint64 holding 32 bits.
    key = _key64(key)
    block = np.uint64(block)
    return (
        key & _MASK32,
        key >> _SH32,
        np.uint64(network) & _MASK32,
        block & _MASK32,
        block >> _SH32,
    )


@inline
def _check_range(position, n_counters):
    if np.uint64(position) + np.uint64(n_counters) > _C0_LIMIT:
        raise ValueError("position + number of counters exceeds 2**32 (32-bit c0)")


# Counters per chunk of fill_normals: 2 x 512 float64 = 8 KiB stays in L1 between stages.
_CHUNK = 512


@kernel
def _uniform_pairs(buf, pos, c1, c2, c3, k0, k1):
    # buf (2 m,): buf[2 i], buf[2 i + 1] = u_a, u_b of counter pos + i. Loop body depends
    # only on i (no branch), so LLVM vectorises the 32x32->64 multiplies (vpmuludq).
    # A separate function so that indices start at 0 and LLVM can prove them non-negative
    # (otherwise Numba's wraparound check for negative indices blocks vectorisation).
    for i in range(buf.shape[0] // 2):
        x0, x1, x2, x3 = _philox(pos + np.uint64(i), c1, c2, c3, k0, k1)
        buf[2 * i] = _u53(x0, x1) * _TWO_M53
        buf[2 * i + 1] = _u53(x2, x3) * _TWO_M53


@inline
def _box_muller(ua, ub):
    # Two normals from two uniforms in [0, 1); 1 - ua in (0, 1] is exact, so log is finite.
    r = np.sqrt(-2.0 * _log(1.0 - ua))
    sn, cs = _sincos_2pi(ub)
    return r * cs, r * sn


@kernel
def _box_muller_inplace(buf):
    # buf (2 m,) of uniform pairs -> normal pairs, in place; vectorised like _uniform_pairs.
    for i in range(buf.shape[0] // 2):
        buf[2 * i], buf[2 * i + 1] = _box_muller(buf[2 * i], buf[2 * i + 1])


@kernel
def _fill_normals_philox53(key, block, network, position, out):
    """philox53: ``out[j]`` is normal number ``2 * position + j`` of the stream; ``position``
    counts Philox counters (2 normals each). Two vectorised passes per chunk of 512 counters: Philox to
    uniform pairs written into ``out``, then Box-Muller in place (fusing them in one loop
    runs out of vector registers and is ~1.5x slower).
    """
    n = out.shape[0]
    n_pairs = n // 2
    _check_range(position, n_pairs + (n & 1))
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    pos = np.uint64(position)
    if n & 1:
        # Odd tail first: the last counter's pair goes through the very same two loops as
        # every other pair, in the last two slots (a scratch pair if n == 1); the main pass
        # then overwrites out[n - 2]. Computed inline instead, LLVM folds the integer ->
        # uniform -> normal chain differently under fast-math and the last bit can differ.
        tail = out[n - 2:] if n > 1 else np.empty(2)
        _uniform_pairs(tail, pos + np.uint64(n_pairs), c1, c2, c3, k0, k1)
        _box_muller_inplace(tail)
        out[n - 1] = tail[0]
    for lo in range(0, n_pairs, _CHUNK):
        hi = min(n_pairs, lo + _CHUNK)
        buf = out[2 * lo:2 * hi]
        _uniform_pairs(buf, pos + np.uint64(lo), c1, c2, c3, k0, k1)
        _box_muller_inplace(buf)


# --- philox32: one 32-bit word per uniform, float32 Box-Muller ---------------------------
_F32_HALF = np.float32(0.5)
_F32_2M31 = np.float32(1.0 / 2147483648.0)  # 2**-31
_F32_M2 = np.float32(-2.0)
# Counters per chunk of the philox32 fill: 4 x 256 float32 = 4 KiB of scratch.
_CHUNK32 = 256


@inline
def _v31(x):
    # (x >> 1) + 1/2 scaled by 2**-31, in float32: in [2**-32, 1] (never 0, so log is finite;
    # exact below 2**24 = the tail, rounded above, where only tiny radii are concerned)
    return (np.float32(np.int32(x >> _ONE)) + _F32_HALF) * _F32_2M31


@kernel
def _word_uniforms(buf, pos, c1, c2, c3, k0, k1):
    # buf (4 m,) float32: buf[4 i + w] = _v31(word w of counter pos + i). Vectorised like
    # _uniform_pairs (4 uint64 lanes per AVX2 register: the 32x32->64 multiplies).
    for i in range(buf.shape[0] // 4):
        x0, x1, x2, x3 = _philox(pos + np.uint64(i), c1, c2, c3, k0, k1)
        buf[4 * i] = _v31(x0)
        buf[4 * i + 1] = _v31(x1)
        buf[4 * i + 2] = _v31(x2)
        buf[4 * i + 3] = _v31(x3)


@kernel
def _box_muller_f32(buf):
    # buf (2 m,) float32 uniform pairs (radius, angle) -> normal pairs, in place. Only float32
    # in the loop, so it runs 8 lanes per AVX2 register (16 on AVX-512).
    for i in range(buf.shape[0] // 2):
        r = np.sqrt(_F32_M2 * logf(buf[2 * i]))
        sn, cs = sincos_2pi_f32(buf[2 * i + 1])
        buf[2 * i] = r * cs
        buf[2 * i + 1] = r * sn


@kernel
def _widen(src, dst):
    # dst (m,) float64 = src[:m] float32 (exact)
    for i in range(dst.shape[0]):
        dst[i] = np.float64(src[i])


@kernel
def _fill_normals_philox32(key, block, network, position, out):
    """philox32 with a scratch buffer of its own (``_philox32_chunks``)."""
    n_full = out.shape[0] // 4
    buf = np.empty(4 * max(1, min(n_full, _CHUNK32)), dtype=np.float32)
    _philox32_chunks(key, block, network, position, out, buf)


@kernel
def _philox32_chunks(key, block, network, position, out, buf):
    """philox32: ``out[j]`` is normal ``4 * position + j`` (module docstring). Three passes
    per chunk of 256 counters through the float32 scratch ``buf`` (at least
    ``4 min(256, max(1, len(out) // 4))`` long): words to uniforms, Box-Muller in place,
    widening into ``out``. A last partial counter goes through the same three loops (in their
    scalar remainder, which compiles from the same IR as their vector body)."""
    n = out.shape[0]
    n_full = n // 4
    rem = n - 4 * n_full
    _check_range(position, n_full + (1 if rem else 0))
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    pos = np.uint64(position)
    for lo in range(0, n_full, _CHUNK32):
        hi = min(n_full, lo + _CHUNK32)
        b = buf[:4 * (hi - lo)]
        _word_uniforms(b, pos + np.uint64(lo), c1, c2, c3, k0, k1)
        _box_muller_f32(b)
        _widen(b, out[4 * lo:4 * hi])
    if rem:
        b = buf[:4]
        _word_uniforms(b, pos + np.uint64(n_full), c1, c2, c3, k0, k1)
        _box_muller_f32(b)
        _widen(b, out[4 * n_full:])


def _fill_normals_impl(key, block, network, position, out):  # pragma: no cover - see overload
    raise NotImplementedError


@overload(_fill_normals_impl)
def _fill_normals_overload(key, block, network, position, out):
    # the generator is the type of the key (module docstring)
    if isinstance(key, types.Integer):
        return lambda key, block, network, position, out: _fill_normals_philox53(
            key, block, network, position, out)
    if isinstance(key, types.BaseNamedTuple) and key.instance_class is Philox32Key:
        return lambda key, block, network, position, out: _fill_normals_philox32(
            key, block, network, position, out)
    return None


@kernel
def fill_normals(key, block, network, position, out):
    """Fill ``out`` (n,) float64 with standard normals of stream ``(key, block, network)``
    starting at counter ``position``: with the generator of ``key``'s type (module
    docstring; ``np.uint64``: philox53, ``Philox32Key``: philox32)."""
    _fill_normals_impl(key, block, network, position, out)


#: length of the float32 ``scratch`` that ``fill_normals_with`` takes
NORMALS_SCRATCH = 4 * _CHUNK32


def _fill_normals_with_impl(key, block, network, position, out, scratch):  # pragma: no cover
    raise NotImplementedError


@overload(_fill_normals_with_impl)
def _fill_normals_with_overload(key, block, network, position, out, scratch):
    if isinstance(key, types.Integer):          # philox53 needs no scratch
        return lambda key, block, network, position, out, scratch: _fill_normals_philox53(
            key, block, network, position, out)
    if isinstance(key, types.BaseNamedTuple) and key.instance_class is Philox32Key:
        return lambda key, block, network, position, out, scratch: _philox32_chunks(
            key, block, network, position, out, scratch)
    return None


@kernel
def fill_normals_with(key, block, network, position, out, scratch):
    """``fill_normals`` with the caller's float32 scratch ``scratch`` (``NORMALS_SCRATCH``,)
    for philox32 instead of one allocated per call (kernels that fill many short runs keep
    one per thread). The same numbers as ``fill_normals``."""
    _fill_normals_with_impl(key, block, network, position, out, scratch)


@kernel
def fill_uniforms(key, block, network, position, out):
    """Fill ``out`` (n,) float64 with uniforms in [0, 1) (53 bit), 2 per counter."""
    n = out.shape[0]
    n_pairs = n // 2
    _check_range(position, n_pairs + (n & 1))
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    pos = np.uint64(position)
    _uniform_pairs(out[:2 * n_pairs], pos, c1, c2, c3, k0, k1)
    if n & 1:  # exact integer arithmetic and one exact scaling: no fast-math concern
        x0, x1, _, _ = _philox(pos + np.uint64(n_pairs), c1, c2, c3, k0, k1)
        out[n - 1] = _u53(x0, x1) * _TWO_M53


@inline
def _signs_of_word(out, base, x, count):
    # out[base + b] = -1.0 if bit b of x is set else +1.0, for b < count (<= 32).
    for b in range(count):
        out[base + b] = 1.0 - 2.0 * np.float64((x >> np.uint64(b)) & _ONE)


@kernel
def fill_signs(key, block, network, position, out):
    """Fill ``out`` (n,) float64 with independent +-1.0 (Rademacher), 128 per counter.

    ``out[j]`` uses bit ``j % 32`` of word ``(j // 32) % 4`` of counter ``position + j // 128``;
    a set bit gives ``-1.0``.
    """
    n = out.shape[0]
    n_ctr = (n + 127) // 128
    _check_range(position, n_ctr)
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    pos = np.uint64(position)
    for i in range(n_ctr):
        x0, x1, x2, x3 = _philox(pos + np.uint64(i), c1, c2, c3, k0, k1)
        base = 128 * i
        left = n - base  # > 0
        _signs_of_word(out, base, x0, min(32, left))
        _signs_of_word(out, base + 32, x1, min(32, max(0, left - 32)))
        _signs_of_word(out, base + 64, x2, min(32, max(0, left - 64)))
        _signs_of_word(out, base + 96, x3, min(32, max(0, left - 96)))


# --- scalar access (the reduced samplers draw a few numbers at a time) --------------------
@inline
def uniforms_at(key, block, network, position):
    """The 2 uniforms of counter ``position`` of stream ``(key, block, network)``: the same
    numbers ``fill_uniforms`` writes there (scalar, for samplers that draw few numbers).
    The caller keeps ``position < 2**32`` (no check here: a raise would keep a ``prange``
    loop that inlines this from running in parallel); only its low 32 bits are used."""
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    x0, x1, x2, x3 = _philox(np.uint64(position) & _MASK32, c1, c2, c3, k0, k1)
    return _u53(x0, x1) * _TWO_M53, _u53(x2, x3) * _TWO_M53


@inline
def normals_at(key, block, network, position):
    """The 2 normals of counter ``position`` (Box-Muller on ``uniforms_at``; the same
    formulas as ``fill_normals``, equal to it up to the last bit of fast-math folding)."""
    ua, ub = uniforms_at(key, block, network, position)
    return _box_muller(ua, ub)


@inline
def words_at(key, block, network, position):
    """The 4 raw 32-bit words (as uint64) of counter ``position`` (for bit counts); the
    caller keeps ``position < 2**32``, as for ``uniforms_at``."""
    k0, k1, c1, c2, c3 = _stream_words(key, block, network)
    return _philox(np.uint64(position) & _MASK32, c1, c2, c3, k0, k1)


# --- the pieces, for kernels that draw per lane (``chi2_batch``: many streams in one loop) -
#: (k0, k1, c1, c2, c3) of stream (key, block, network): key words and fixed counter words
stream_words = _stream_words
#: Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1), all uint64 holding 32 bits
philox_block = _philox
#: 53-bit integer of two words as float64 (times TWO_M53: a uniform in [0, 1))
u53 = _u53
#: two normals from two uniforms in [0, 1) (the philox53 transform)
box_muller = _box_muller
#: vectorisable natural log of a normal positive finite float64 (fdlibm)
vlog = _log
MASK32 = _MASK32
TWO_M53 = _TWO_M53
