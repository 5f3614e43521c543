"""Explicit-weights ("dense") sampler of the stochastic metric Ghat: the reference.

Per network, for l = 1..L-1: draw the biases b^(l) (variance C_b^(l)) and the weights W^(l)
(n_l x n_{l-1}, variance C_W^(l) / n_{l-1}) from their laws (``mcsim.laws``; codes below,
Student-t with an integer ``nu``):

- code 0 (``GAUSSIAN``):   sqrt(var) * N(0, 1)
- code 1 (``UNIFORM``):    sqrt(3 var) * U(-1, 1)
- code 2 (``RADEMACHER``): sqrt(var) * (+-1)
- code 3 (``STUDENT_T``):  sqrt(var (nu - 2) / nu) * Z / sqrt(chi^2_nu / nu), chi^2_nu the
  sum of nu squared normals

then z^(l) = b^(l) + W^(l) sigma(z^(l-1)) (with sigma(z^(0)) := x), and Ghat^(l+1) from
sigma(z^(l)) exactly as in the markov sampler (Rao-Blackwellised: the last layer's
weights are never drawn). ``sample_dense_laws`` can also write, after the k (k + 1) / 2
entries of Ghat^(l+1), the conditional fourth cumulant of one unit of layer l+1 (the
``unit_cumulant`` quantities): kappa4_W (C_W/n_l)^2 sum_j s_a1 s_a2 s_a3 s_a4 + kappa4_b C_b^2
with s = sigma(z^(l)), first its k diagonal entries (a1 = .. = a4 = a), then its sorted
quadruples a1 <= a2 <= a3 <= a4 (lexicographic), each part only when asked for.

Random numbers: network ``j`` of block ``first_block + i`` uses the Philox stream
``(key, first_block + i, j)``. Layer l takes, from its start position, one run of counters
for its n_l biases, then one fixed-size run of counters per weight row i, row after row. A
run of n draws takes ``ceil(n / 2)`` counters for normals and uniforms, ``ceil(n / 128)``
for signs and ``(nu + 1) ceil(n / 2)`` for Student-t (the numerators' normals, then the nu
batches of normals of chi^2_nu). Weights are generated one row at a time, so scratch memory
is O(k n).
"""

from __future__ import annotations

import numba
import numpy as np

from .activations import activate
from .jit import exact, inline, kernel, ordered, parallel_kernel
from .common import MAX_CHUNKS, check_sampler_shapes, chunk_range, metric_from_activations
from .reduce import dot
from .rng import fill_normals, fill_signs, fill_uniforms

__all__ = ["sample_dense", "sample_dense_laws", "GAUSSIAN", "UNIFORM", "RADEMACHER", "STUDENT_T",
           "WEIGHT_CODES"]

GAUSSIAN = 0
UNIFORM = 1
RADEMACHER = 2
STUDENT_T = 3
#: name -> law code (weights and biases)
WEIGHT_CODES = {"gaussian": GAUSSIAN, "uniform": UNIFORM, "rademacher": RADEMACHER,
                "student_t": STUDENT_T}


@inline
def _counters(code, nu, n):
    """Philox counters one run of n draws of law ``code`` takes."""
    if code == RADEMACHER:
        return (n + 127) // 128
    if code == STUDENT_T:
        return (nu + 1) * ((n + 1) // 2)
    return (n + 1) // 2


@inline
def _unit_scale(code, nu):
    """Factor that turns the raw draws of ``_draw`` into unit-variance ones."""
    if code == UNIFORM:
        return np.sqrt(3.0)
    if code == STUDENT_T:
        return np.sqrt((nu - 2.0) / nu)
    return 1.0


@exact
def _divide_by_root_mean(out, chi, nu):
    """out[j] /= sqrt(chi[j] / nu), correctly rounded on every target (see ``jit.exact``).

    Three IEEE operations per element: chi / nu, sqrt, the division. Under the kernels'
    ``arcp`` / ``afn`` LLVM rewrites the vector body as out * sqrt(nu / chi) and the scalar
    remainder as out / sqrt(chi * (1 / nu)): each rounds differently, and which elements of
    a row take the vector body depends on the width (4 doubles on AVX2, 8 on AVX-512), so
    rows of 5 or 7 weights differed between the builds (rows of 2, 3 or 9 did not). That is
    what this function did while ``jit.exact`` left ``fastmath`` unset, which in Numba
    means "inherit the calling kernel's flags"; now it says ``fastmath=False``.
    """
    for j in range(out.shape[0]):
        out[j] = out[j] / np.sqrt(chi[j] / nu)


@kernel
def _draw(code, nu, key, block, network, position, out, t, u):
    """Fill ``out`` (n,) with raw draws of law ``code`` from ``position`` (mean 0; variance
    1 after multiplying by ``_unit_scale``); t, u: (>= n,) scratch for Student-t."""
    n = out.shape[0]
    if code == RADEMACHER:
        fill_signs(key, block, network, position, out)
    elif code == UNIFORM:
        fill_uniforms(key, block, network, position, out)
        for j in range(n):
            out[j] = 2.0 * out[j] - 1.0
    elif code == STUDENT_T:
        fill_normals(key, block, network, position, out)
        run = (n + 1) // 2
        chi = t[:n]
        uu = u[:n]
        for j in range(n):
            chi[j] = 0.0
        for r in range(nu):
            fill_normals(key, block, network, position + (r + 1) * run, uu)
            for j in range(n):
                chi[j] += uu[j] * uu[j]
        _divide_by_root_mean(out, chi, nu)
    else:
        fill_normals(key, block, network, position, out)


@ordered
def _unit_cumulant(h, n, cw, cb, n_diag, n_full, out):
    """out[:n_diag] (k or 0 entries), out[n_diag:n_diag + n_full] (sorted quadruples or 0):
    cw * sum_j h_a1 h_a2 h_a3 h_a4 + cb over the first n columns of h (k, >= n). Compiled
    ``ordered``: the sums run in the order written, the same bits on AVX2 and AVX-512."""
    k = h.shape[0]
    if n_diag > 0:
        for a in range(k):
            acc = 0.0
            for j in range(n):
                x = h[a, j] * h[a, j]
                acc += x * x
            out[a] = cw * acc + cb
    if n_full > 0:
        p = n_diag
        for a in range(k):
            for b in range(a, k):
                for c in range(b, k):
                    for d in range(c, k):
                        acc = 0.0
                        for j in range(n):
                            acc += h[a, j] * h[b, j] * h[c, j] * h[d, j]
                        out[p] = cw * acc + cb
                        p += 1


@kernel
def _dense_network(key, block, network, inputs, widths, C_W, C_b, act_code, act_param,
                   weight_code, weight_nu, bias_code, bias_nu, k4w, k4b, n_diag, n_full,
                   G, h, z, w, t, u, out):
    # One network: out (L-1, >= m); scratch G (k, k), h and z (k, max width) hold sigma(z) of
    # the previous layer and z of the current one, w (max fan-in,) one weight row, t and u
    # (max width,) Student-t scratch.
    k, n0 = inputs.shape
    m = k * (k + 1) // 2
    for a in range(k):
        for j in range(n0):
            h[a, j] = inputs[a, j]
    position = 0
    n_in = n0
    for l in range(widths.shape[0] - 1):   # 0-based: computes z of layer l + 1
        n = widths[l]
        # biases
        bias = z[0, :n]
        _draw(bias_code, bias_nu, key, block, network, position, bias, t, u)
        position += _counters(bias_code, bias_nu, n)
        sb = np.sqrt(C_b[l]) * _unit_scale(bias_code, bias_nu)
        for i in range(n):
            bias[i] *= sb
        for a in range(1, k):               # every input sees the same biases
            for i in range(n):
                z[a, i] = bias[i]
        # weights, one row (unit i) at a time
        row_ctr = _counters(weight_code, weight_nu, n_in)
        if weight_code == UNIFORM:
            scale = np.sqrt(3.0 * C_W[l] / n_in)
        elif weight_code == STUDENT_T:
            scale = np.sqrt(C_W[l] / n_in * ((weight_nu - 2.0) / weight_nu))
        else:
            scale = np.sqrt(C_W[l] / n_in)
        wr = w[:n_in]
        for i in range(n):
            _draw(weight_code, weight_nu, key, block, network, position, wr, t, u)
            position += row_ctr
            for a in range(k):              # fixed-order sum (kernels/reduce.py)
                z[a, i] += scale * dot(wr, h[a, :n_in])
        for a in range(k):
            # row slices z[a, :n] keep the C layout (z[:, :n][a] would be 'A')
            activate(act_code, act_param, z[a, :n], h[a, :n])
        metric_from_activations(h, n, C_W[l + 1], C_b[l + 1], G, out[l])
        if n_diag + n_full > 0:
            _unit_cumulant(h, n, k4w[l + 1] * (C_W[l + 1] / n) ** 2, k4b[l + 1] * C_b[l + 1] ** 2,
                           n_diag, n_full, out[l, m:])
        n_in = n


@parallel_kernel
def sample_dense_laws(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                      act_code, act_param, weight_code, weight_nu, bias_code, bias_nu,
                      k4w, k4b, n_diag, n_full, out):
    """``sample_dense`` for any weight and bias law, optionally with the unit cumulant.

    weight_code, bias_code: law codes (module docstring); weight_nu, bias_nu: Student-t
    degrees of freedom (integers >= 5; ignored by the other laws). k4w, k4b (L,): the laws'
    standardised fourth cumulants per layer (only read for the cumulant entries). n_diag:
    0 or k, n_full: 0 or k (k+1) (k+2) (k+3) / 24 entries of the unit cumulant written after
    the metric. ``out`` (n_blocks, block_size, L-1, m + n_diag + n_full). With Gaussian laws
    and no cumulant entries the output is bitwise that of ``sample_dense``.
    """
    k, n0 = inputs.shape
    L = widths.shape[0]
    m = k * (k + 1) // 2
    if C_W.shape[0] != L or C_b.shape[0] != L or k4w.shape[0] != L or k4b.shape[0] != L:
        raise ValueError("C_W, C_b, k4w and k4b need one entry per layer")
    if (out.shape[0] != n_blocks or out.shape[1] != block_size or out.shape[2] != L - 1
            or out.shape[3] != m + n_diag + n_full):
        raise ValueError("out must have shape (n_blocks, block_size, L - 1, m + n_diag + n_full)")
    for code, nu in ((weight_code, weight_nu), (bias_code, bias_nu)):
        if code < 0 or code > 3:
            raise ValueError("law codes: 0 gaussian, 1 uniform, 2 rademacher, 3 student_t")
        if code == STUDENT_T and nu < 5:
            raise ValueError("student_t needs an integer nu >= 5 (finite fourth moment)")
    total = n_blocks * block_size
    if L < 2 or total == 0:
        return
    nmax = n0
    for l in range(L - 1):
        nmax = max(nmax, widths[l])
    n_chunks = min(total, MAX_CHUNKS)
    for c in numba.prange(n_chunks):
        G = np.empty((k, k))
        h = np.empty((k, nmax))
        z = np.empty((k, nmax))
        w = np.empty(nmax)
        t = np.empty(nmax)
        u = np.empty(nmax)
        lo, hi = chunk_range(c, n_chunks, total)
        for s in range(lo, hi):
            i = s // block_size
            j = s - i * block_size
            _dense_network(key, first_block + i, j, inputs, widths, C_W, C_b, act_code,
                           act_param, weight_code, weight_nu, bias_code, bias_nu, k4w, k4b,
                           n_diag, n_full, G, h, z, w, t, u, out[i, j])


@kernel
def sample_dense(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                 act_code, act_param, weight_code, out):
    """Sample Ghat^(2..L) of ``n_blocks * block_size`` networks with explicit weights.

    Arguments as ``sample_markov`` plus ``weight_code`` (0 gaussian, 1 uniform,
    2 rademacher); ``out`` (n_blocks, block_size, L-1, m) gets
    ``out[i, j, s, p]`` = pair p of Ghat^(s+2) of network j of block first_block + i.
    ``sample_dense_laws`` with Gaussian biases and no cumulant entries (the same chunk loop,
    parallel over networks; bitwise independent of the number of threads).
    """
    check_sampler_shapes(n_blocks, block_size, inputs, widths, C_W, C_b, out)
    if weight_code < 0 or weight_code > 2:
        raise ValueError("weight_code must be 0 (gaussian), 1 (uniform) or 2 (rademacher)")
    zero = np.zeros(widths.shape[0])
    sample_dense_laws(key, first_block, n_blocks, block_size, inputs, widths, C_W, C_b,
                      act_code, act_param, weight_code, 0, GAUSSIAN, 0, zero, zero, 0, 0, out)
