"""Index tables for packed symmetric tensors, and unpacking to full tensors.

Conventions (see ``docs/architecture.md``):

- A symmetric ``k x k`` matrix is stored by its upper triangle as a vector of length
  ``m = k (k + 1) / 2``. Pair ``p`` is ``(a, b)`` with ``a <= b``, lexicographic:
  ``(0,0), (0,1), ..., (0,k-1), (1,1), ..., (k-1,k-1)``.
- Third moments of a length-``m`` vector are stored over triples ``t = (p, q, r)`` with
  ``p <= q <= r``, lexicographic; ``T = m (m + 1) (m + 2) / 6``.

Everything here is plain numpy (small tables, built once per run).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "n_pairs",
    "n_triples",
    "pairs",
    "pair_index",
    "triples",
    "triple_index",
    "pack_matrix",
    "unpack_matrix",
    "unpack_vertex",
    "unpack_six_point",
    "n_quads",
    "quads",
    "unpack_quads",
]


def n_pairs(k: int) -> int:
    """m = k (k + 1) / 2."""
    return k * (k + 1) // 2


def n_triples(m: int) -> int:
    """T = m (m + 1) (m + 2) / 6."""
    return m * (m + 1) * (m + 2) // 6


@functools.lru_cache(maxsize=None)
def _pairs(k: int) -> np.ndarray:
    a, b = np.triu_indices(k)  # row-major upper triangle = lexicographic (a, b), a <= b
    out = np.stack([a, b], axis=1).astype(np.int64)
    out.setflags(write=False)
    return out


def pairs(k: int) -> np.ndarray:
    """(m, 2) int64: row p is (a, b), a <= b, lexicographic."""
    return _pairs(int(k)).copy()


@functools.lru_cache(maxsize=None)
def _pair_index(k: int) -> np.ndarray:
    idx = np.empty((k, k), dtype=np.int64)
    for p, (a, b) in enumerate(_pairs(k)):
        idx[a, b] = idx[b, a] = p
    idx.setflags(write=False)
    return idx


def pair_index(k: int) -> np.ndarray:
    """(k, k) int64 symmetric table: ``pair_index(k)[a, b]`` = p of pair (min, max)."""
    return _pair_index(int(k)).copy()


@functools.lru_cache(maxsize=None)
def _triples(m: int) -> np.ndarray:
    rows = [(p, q, r) for p in range(m) for q in range(p, m) for r in range(q, m)]
    out = np.array(rows, dtype=np.int64).reshape(-1, 3)
    out.setflags(write=False)
    return out


def triples(m: int) -> np.ndarray:
    """(T, 3) int64: row t is (p, q, r), p <= q <= r, lexicographic."""
    return _triples(int(m)).copy()


@functools.lru_cache(maxsize=None)
def _triple_index(m: int) -> np.ndarray:
    idx = np.empty((m, m, m), dtype=np.int64)
    for t, (p, q, r) in enumerate(_triples(m)):
        for i, j, l in ((p, q, r), (p, r, q), (q, p, r), (q, r, p), (r, p, q), (r, q, p)):
            idx[i, j, l] = t
    idx.setflags(write=False)
    return idx


def triple_index(m: int) -> np.ndarray:
    """(m, m, m) int64, symmetric under all permutations: [p, q, r] -> t of the sorted triple."""
    return _triple_index(int(m)).copy()


def _k_from_m(m: int) -> int:
    k = int(round((np.sqrt(8 * m + 1) - 1) / 2))
    if n_pairs(k) != m:
        raise ValueError(f"{m} is not a triangular number k (k + 1) / 2")
    return k


def pack_matrix(mat, k: int | None = None) -> np.ndarray:
    """(..., k, k) -> (..., m): the upper triangle in pair order (the inverse of unpack)."""
    mat = np.asarray(mat)
    k = mat.shape[-1] if k is None else int(k)
    pr = _pairs(k)
    return mat[..., pr[:, 0], pr[:, 1]]


def unpack_matrix(vec, k: int) -> np.ndarray:
    """(..., m) packed pairs -> (..., k, k) symmetric: ``M[a, b] = vec[pair_index[a, b]]``."""
    vec = np.asarray(vec)
    k = int(k)
    if vec.shape[-1] != n_pairs(k):
        raise ValueError(f"last axis has {vec.shape[-1]} entries, expected m = {n_pairs(k)}")
    return vec[..., _pair_index(k)]


def unpack_vertex(cov, k: int) -> np.ndarray:
    """(..., m, m) -> (..., k, k, k, k): ``V[a1, a2, a3, a4] = cov[p(a1, a2), p(a3, a4)]``.

    Symmetric under a1 <-> a2, a3 <-> a4, and (if ``cov`` is symmetric) (a1a2) <-> (a3a4).
    """
    cov = np.asarray(cov)
    k = int(k)
    m = n_pairs(k)
    if cov.shape[-2:] != (m, m):
        raise ValueError(f"last two axes are {cov.shape[-2:]}, expected ({m}, {m})")
    pi = _pair_index(k)
    return cov[..., pi[:, :, None, None], pi[None, None, :, :]]


def unpack_six_point(third, k: int) -> np.ndarray:
    """(..., T) over triples -> (..., k, k, k, k, k, k).

    ``S[a1, ..., a6] = third[t]`` with ``t`` the triple of the sorted pair indices
    ``p(a1, a2), p(a3, a4), p(a5, a6)``: symmetric under swapping within each pair and under
    permuting the three pairs.
    """
    third = np.asarray(third)
    k = int(k)
    m = n_pairs(k)
    if third.shape[-1] != n_triples(m):
        raise ValueError(f"last axis has {third.shape[-1]} entries, expected T = {n_triples(m)}")
    pi = _pair_index(k)
    ti = _triple_index(m)
    s = (slice(None), slice(None), None, None, None, None)
    idx = ti[pi[s], pi[None, None, :, :, None, None], pi[None, None, None, None, :, :]]
    return third[..., idx]


# -- fully symmetric four-index tensors (the same-unit four-point function of z) ----------
def n_quads(k: int) -> int:
    """Q = k (k + 1) (k + 2) (k + 3) / 24: sorted quadruples a1 <= a2 <= a3 <= a4."""
    return k * (k + 1) * (k + 2) * (k + 3) // 24


@functools.lru_cache(maxsize=None)
def _quads(k: int) -> np.ndarray:
    import itertools
    out = np.array(list(itertools.combinations_with_replacement(range(k), 4)),
                   dtype=np.int64).reshape(-1, 4)
    out.setflags(write=False)
    return out


def quads(k: int) -> np.ndarray:
    """(Q, 4) int64: row t is (a1, a2, a3, a4), a1 <= a2 <= a3 <= a4, lexicographic."""
    return _quads(int(k)).copy()


def unpack_quads(packed, k: int) -> np.ndarray:
    """(..., Q) packed fully symmetric tensor -> (..., k, k, k, k), every permutation of an
    index quadruple holding the same value."""
    import itertools
    packed = np.asarray(packed)
    out = np.empty(packed.shape[:-1] + (k,) * 4, dtype=packed.dtype)
    for t, q in enumerate(_quads(int(k))):
        for perm in set(itertools.permutations(q)):
            out[(...,) + perm] = packed[..., t]
    return out
