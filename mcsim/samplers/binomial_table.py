"""Alias tables for Binomial(n, 1/2), built in exact integer arithmetic (``chi2`` version 3;
the draw is ``kernels.chi2_batch``).

A table for n and ``bits`` b represents the integer weights

    w_k = floor(C(n, k) 2^b / 2^n)          (k with w_k >= 1: the window lo..hi)

plus one *fallback* entry of weight F = 2^b - sum_k w_k, in Walker's alias form with
C = 2^m columns of height H = 2^(b - m): a uniform b-bit integer r picks column
c = r >> (b - m) and, by its low bits v = r mod H, the column's own value if v < T[c], else
its alias. Every integer is exact (Vose's construction on Python integers), so P(value k)
= w_k / 2^b exactly, on every machine.

The fallback (probability F / 2^b: about 1e-17 at b = 64) makes the draw exact: it draws
k from Binomial(n, 1/2) by rejection (BTRS) and accepts it with probability
a_k = 1 - w_k / (p_k 2^b) (p_k = C(n, k) / 2^n; a_k = 1 outside the window), else draws again.
The accepted k has law (p_k - w_k / 2^b) / (F / 2^b), so the value's law is
w_k / 2^b + F / 2^b * (p_k - w_k / 2^b) / (F / 2^b) = p_k: Binomial(n, 1/2) exactly (up to
the rounding of a_k to float64, i.e. relative 1e-16 of a probability of 1e-17). Tables
with fewer bits (tests) reach the fallback often.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["TABLE_BITS", "TABLE_MIN_N", "TABLE_MAX_N", "FALLBACK", "alias_table",
           "BinomialTables", "binomial_tables"]

#: bits of the uniform integer a draw uses (one Philox counter's words x0:x1)
TABLE_BITS = 64
#: widths at and below which the binomial stays a bit count (one counter, exact already)
TABLE_MIN_N = 128
#: widths above which BTRS is used instead of a table (here the table has 4096 columns,
#: 96 KiB; at such widths the reduced sampler is > 1000x faster than markov anyway)
TABLE_MAX_N = 1 << 16
#: the value of the fallback entry
FALLBACK = -1.0


@functools.lru_cache(maxsize=64)
def alias_table(n: int, bits: int = TABLE_BITS):
    """(threshold, kept, alias, lo, accept) for Binomial(n, 1/2) with ``bits``-bit draws:
    threshold (C,) Python ints < 2^bits, kept / alias (C,) floats (k, or FALLBACK),
    lo the window's first k, accept (hi - lo + 1,) floats a_k (module docstring)."""
    if n < 1 or not 1 <= bits <= 64:
        raise ValueError(f"alias_table: need n >= 1 and 1 <= bits <= 64 (got {n}, {bits})")
    centre = n // 2
    c_centre = math.comb(n, centre)

    def weight(c):
        return (c << bits) >> n

    # walk out from the centre (the weights are unimodal) while w_k >= 1
    weights = {centre: weight(c_centre)}
    combs = {centre: c_centre}
    c, k = c_centre, centre
    while k > 0:
        c = c * k // (n - k + 1)          # C(n, k - 1)
        k -= 1
        if weight(c) == 0:
            break
        weights[k], combs[k] = weight(c), c
    c, k = c_centre, centre
    while k < n:
        c = c * (n - k) // (k + 1)        # C(n, k + 1)
        k += 1
        if weight(c) == 0:
            break
        weights[k], combs[k] = weight(c), c
    lo, hi = min(weights), max(weights)
    if weights[centre] == 0:              # bits too few for any weight: all fallback
        lo, hi = centre, centre - 1
    values = [float(k) for k in range(lo, hi + 1)] + [FALLBACK]
    w = [weights[k] for k in range(lo, hi + 1)] + [0]
    total = 1 << bits
    w[-1] = total - sum(w)
    m = max(1, (len(values) - 1).bit_length())
    if m > bits:
        raise ValueError(f"alias_table: {bits} bits are too few for {len(values)} entries")
    columns, height = 1 << m, total >> m
    values += [FALLBACK] * (columns - len(values))
    w += [0] * (columns - len(w))
    # Vose's alias construction on integers: column s keeps its own weight, the rest of its
    # height goes to a large entry l, whose weight shrinks by as much
    threshold, kept, alias = [0] * columns, list(values), list(values)
    small = [i for i in range(columns) if w[i] < height]
    large = [i for i in range(columns) if w[i] >= height]
    while small and large:
        s, l = small.pop(), large[-1]
        threshold[s], alias[s] = w[s], values[l]
        w[l] -= height - w[s]
        if w[l] < height:
            small.append(large.pop())
    for i in large + small:               # (exactly height: a full column)
        threshold[i] = height
    # a_k = (C(n, k) 2^b - w_k 2^n) / (C(n, k) 2^b): integer true division rounds correctly
    accept = [((combs[k] << bits) - (weights[k] << n)) / (combs[k] << bits)
              for k in range(lo, hi + 1)]
    return threshold, kept, alias, lo, accept


@dataclass(frozen=True)
class BinomialTables:
    """The alias tables of a network's layers, as the chi2 kernel takes them.

    threshold (C_total,) uint64, value (C_total, 2) float64 (per column: kept, alias; side by
    side, so that the kernel picks one by index arithmetic, without a branch), accept (A_total,)
    float64; layout (len(widths), 6) int64, row l for widths[l]: column offset, log2 of the
    columns m (-1: no table: bit count or BTRS), 64 - bits (the shift of the 64-bit word),
    accept offset, window lo, window length."""
    threshold: np.ndarray
    value: np.ndarray
    accept: np.ndarray
    layout: np.ndarray

    def arguments(self):
        return self.threshold, self.value, self.accept, self.layout


def binomial_tables(widths, bits: int = TABLE_BITS) -> BinomialTables:
    """Tables for every width w with TABLE_MIN_N < w <= TABLE_MAX_N (one per distinct width)."""
    thresholds, values, accepts = [], [], []
    layout = np.full((len(widths), 6), -1, dtype=np.int64)
    placed = {}
    col_off = acc_off = 0
    for l, n in enumerate(int(w) for w in widths):
        if not TABLE_MIN_N < n <= TABLE_MAX_N:
            continue
        if n not in placed:
            threshold, kept, alias, lo, accept = alias_table(n, bits)
            placed[n] = (col_off, (len(threshold) - 1).bit_length(), 64 - bits, acc_off, lo,
                         len(accept))
            thresholds += threshold
            values.append((kept, alias))
            accepts += accept
            col_off += len(threshold)
            acc_off += len(accept)
        layout[l] = placed[n]
    value = (np.ascontiguousarray(np.concatenate([np.array(v, dtype=np.float64) for v in values],
                                                 axis=1).T)
             if values else np.zeros((1, 2)))
    return BinomialTables(np.array(thresholds or [0], dtype=np.uint64), value,
                          np.array(accepts or [0.0], dtype=np.float64), layout)

