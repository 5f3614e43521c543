"""The two linear-algebra steps of the wishart sampler (version 3, ``wishart_pairs``) for
k <= FUSED_MAX_K inputs, lane by lane in one vectorised loop, with the same bits as the
passes of ``wishart_pairs`` (one lane loop per term):

- ``fused_factor(G, C)``: C lower triangular with C C^T = G (``wishart_pairs._cholesky_lanes``:
  pivots at or below PIVOT_RTOL max(diag G) give a zero column, a row of G equal to an
  earlier row copies the first such row of C);
- ``fused_step(C, At, cb, scale, G)``: G = cb + scale (C A)(C A)^T for a Bartlett factor
  (``wishart_pairs._next_metric`` with r = k, A lower triangular).

Each returns False, doing nothing, where it does not apply (k > FUSED_MAX_K, or arrays of
another number of lanes than FUSED_LANES); the caller then runs the passes.

Why generated source: the passes make one loop over the lanes per term (about 60 at
k = 4), each with its loop overhead and a round trip through memory. One loop over the
lanes, with the work of a lane as straight-line code on scalars (k a constant), vectorises
over the lanes, but only if the code inside is straight-line: from k = 3 on, LLVM's full
unrolling of the loops over inputs leaves a loop inside (the row comparisons of the factor;
measured: the factor at k = 3 took 20 ns per lane, without those comparisons 2.4), and a
loop left inside stops the vectoriser. So the body is written out per k (``_factor_source``,
``_step_source``), the same operations in the same order as the passes: every
multiply-add an explicit ``fma`` (also the products with the zeros above the diagonal, as
the passes compute them), divisions and square roots correctly rounded (``exact`` functions, as in the passes).

Arrays: G, C, At (k, k, FUSED_LANES), C-contiguous, read flat: entry (a, b) of lane i at
(a k + b) FUSED_LANES + i, every offset a constant. FUSED_LANES is the batch's LANES (256):
batches of 32, 64 or 128 lanes, whose arrays stay in the first-level cache, were slower
overall (the draws' passes pay their loop overhead per batch; measured in
docs/performance.md).
"""
from __future__ import annotations

import numpy as np

from .chi2_batch import LANES
from .common import PIVOT_RTOL
from .jit import exact, inline
from .lanes import fma

__all__ = ["FUSED_MAX_K", "FUSED_LANES", "fused_factor", "fused_step"]

#: numbers of inputs with fused steps
FUSED_MAX_K = 4
#: lanes of the arrays the fused steps take (the batches of ``chi2_batch``: every loop runs
#: in its vector body, no remainder)
FUSED_LANES = LANES


@exact
def _quotient(a, p):
    # a / p for a pivot p > 0, else 0: IEEE division (an ``exact`` function, inlined by LLVM
    # with its own flags: inside the fast-math kernel Numba would give a division ``arcp``)
    return a / p if p > 0.0 else 0.0


@exact
def _pivot(a, tol):
    # sqrt(a) above the tolerance, else 0: IEEE square root (as _quotient)
    return np.sqrt(a) if a > tol else 0.0


def _at(name, a, b, k):
    return f"{name}[{(a * k + b)} * NL + i]"


def _factor_source(k):
    """The body of the factor for k inputs (see the module docstring)."""
    ln = [f"def factor_{k}(G, C):", "    for i in range(NL):"]
    add = ln.append
    for a in range(k):
        for b in range(k):
            add(f"        g{a}{b} = {_at('G', a, b, k)}")
    add("        tol = g00")
    for a in range(1, k):
        add(f"        tol = max(tol, g{a}{a})")
    add("        tol = PIVOT_RTOL * tol")
    for j in range(k):
        for t in range(j):
            add(f"        acc = g{j}{t}")
            for c in range(t):
                add(f"        acc = fma(-c{j}{c}, c{t}{c}, acc)")
            add(f"        c{j}{t} = quotient(acc, c{t}{t})")
        add(f"        acc = g{j}{j}")
        for c in range(j):
            add(f"        acc = fma(-c{j}{c}, c{j}{c}, acc)")
        add(f"        c{j}{j} = pivot(acc, tol)")
        for c in range(j + 1, k):
            add(f"        c{j}{c} = 0.0")
        for r in range(j - 1, -1, -1):      # (downwards: the first equal row wins)
            add("        same = " + " & ".join(f"(g{r}{c} == g{j}{c})" for c in range(k)))
            for c in range(k):
                add(f"        c{j}{c} = c{r}{c} if same else c{j}{c}")
    for a in range(k):
        for b in range(k):
            add(f"        {_at('C', a, b, k)} = c{a}{b}")
    add("    return True")
    return "\n".join(ln)


def _step_source(k):
    """The body of the step for k inputs (see the module docstring): T[j][a] = (C A)[a, j]
    (zero for a < j), then the sums over j of T[j][a] T[j][b]."""
    ln = [f"def step_{k}(C, At, cb, scale, G):", "    for i in range(NL):"]
    add = ln.append
    for a in range(k):
        for c in range(a + 1):
            add(f"        c{a}{c} = {_at('C', a, c, k)}")
    for j in range(k):
        for c in range(j, k):
            add(f"        a{j}{c} = {_at('At', j, c, k)}")

    def t(j, a):
        return f"t{j}{a}" if a >= j else "0.0"
    for j in range(k):
        for a in range(j, k):
            add("        acc = 0.0")
            for c in range(j, a + 1):
                add(f"        acc = fma(c{a}{c}, a{j}{c}, acc)")
            add(f"        t{j}{a} = acc")
    for a in range(k):
        for b in range(a, k):
            add(f"        acc = {t(0, a)} * {t(0, b)}")
            for j in range(1, k):
                add(f"        acc = fma({t(j, a)}, {t(j, b)}, acc)")
            add("        g = fma(scale, acc, cb)")
            add(f"        {_at('G', a, b, k)} = g")
            if b != a:
                add(f"        {_at('G', b, a, k)} = g")
    add("    return True")
    return "\n".join(ln)


def _compile(source, name):
    scope = {"NL": FUSED_LANES, "PIVOT_RTOL": PIVOT_RTOL, "fma": fma, "quotient": _quotient,
             "pivot": _pivot}
    exec(compile(source, f"<wishart_fused {name}>", "exec"), scope)   # noqa: S102
    return inline(scope[name])


_factor_2 = _compile(_factor_source(2), "factor_2")
_factor_3 = _compile(_factor_source(3), "factor_3")
_factor_4 = _compile(_factor_source(4), "factor_4")
_step_2 = _compile(_step_source(2), "step_2")
_step_3 = _compile(_step_source(3), "step_3")
_step_4 = _compile(_step_source(4), "step_4")


@inline
def fused_factor(G, C):
    """C from G, lane by lane (module docstring); False where it does not apply."""
    k = G.shape[0]
    if G.shape[2] != FUSED_LANES:
        return False
    if k == 2:
        return _factor_2(G.reshape(-1), C.reshape(-1))
    if k == 3:
        return _factor_3(G.reshape(-1), C.reshape(-1))
    if k == 4:
        return _factor_4(G.reshape(-1), C.reshape(-1))
    return False


@inline
def fused_step(C, At, cb, scale, G):
    """G from C and a Bartlett factor At, lane by lane (module docstring); False where it
    does not apply."""
    k = G.shape[0]
    if G.shape[2] != FUSED_LANES:
        return False
    if k == 2:
        return _step_2(C.reshape(-1), At.reshape(-1), cb, scale, G.reshape(-1))
    if k == 3:
        return _step_3(C.reshape(-1), At.reshape(-1), cb, scale, G.reshape(-1))
    if k == 4:
        return _step_4(C.reshape(-1), At.reshape(-1), cb, scale, G.reshape(-1))
    return False
