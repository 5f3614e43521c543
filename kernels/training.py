"""Training whole ensembles by full-batch gradient descent, one network at a time.

Every network of the ensemble is an explicit MLP whose parameters are drawn exactly as the
dense sampler draws them (``kernels.dense``), continued to the output layer: network ``j``
of block ``first_block + i`` uses the Philox stream ``(key, first_block + i, j)``; layer l
(0-based here, l = 0..L-1) takes first ``ceil(n_l / 2)`` counters of bias normals, then one
run of counters per weight row (``ceil(n_{l-1} / 2)`` for normals and uniforms,
``ceil(n_{l-1} / 128)`` for signs). Layers 0..L-2 therefore have exactly the dense
sampler's parameters; the output layer's follow in the same stream.

Index conventions (P = N + k points):

- points ``a = 0..N-1`` are the training inputs, ``a = N..N+k-1`` the test inputs;
- weights of layer l (0-based) sit row-major at ``wbuf[woff[l]:]`` as W[i, j] (n_l, n_{l-1});
  biases at ``bbuf[boff[l]:]``;
- a flattened output index is ``a * n_L + i`` (point-major, unit i).

Training: loss (1/2) sum_{a < N, i} (z_{i;a} - y_{a,i})^2; one step is

    b^(l) -= eta lambda_b^(l) dL/db^(l),   W^(l) -= eta lambda_W^(l) / n_{l-1} dL/dW^(l),

all gradients taken at the current parameters (full batch). The network's *linearised*
model evolves with its own NTK at initialisation,
Theta_{(a,i),(b,j)} = sum_mu lambda_mu dz_{i;a}/dtheta_mu dz_{j;b}/dtheta_mu (all output
units, also i != j): residual r = z_T - y on the training points,

    r_{t+1} = r_t - eta Theta_TT r_t,      z^lin_s(t+1) = z^lin_s(t) - eta Theta_sT r_t,

which is the closed form z^lin_s(t) = z_s(0) - eta Theta_sT sum_{u<t} (1 - eta Theta_TT)^u r_0
evaluated step by step (exact arithmetic identical; O(N P n_L^2) per step).

Per recorded step r (``record[r]`` = t, evaluated before the update of step t) a network
writes ``out[., ., r, :]`` (length M = 3 k n_L + 4):

    [0, K)        z_{i;a}(t) at the test inputs, index (a - N) * n_L + i   (K = k n_L)
    [K, 2K)       the linearised model's outputs there
    [2K, 3K)      the difference network minus linearisation
    3K            training loss; 3K + 1 the linearised model's training loss
    3K + 2        test loss (with test targets, else 0); 3K + 3 the linearised one's

A network is *diverged* (``diverged[i, j] = 1``, its ``out`` rows are left as they are and
must not be used; it is not trained further) when

- its learning rate is above the stability limit of its own NTK at initialisation,
  eta lambda_max(Theta_TT) >= 2 (lambda_max by ``POWER_ITERATIONS`` power iterations): its
  linearised model then grows without bound; or
- its training loss, or its linearisation's, exceeds ``DIVERGENCE_FACTOR`` times
  (1 + the initial loss), or is not finite.
"""

from __future__ import annotations

import numba
import numpy as np

from .activations import activate, activate_derivative
from .common import MAX_CHUNKS, chunk_range
from .dense import RADEMACHER, UNIFORM
from .jit import kernel, parallel_kernel
from .rng import fill_normals, fill_signs, fill_uniforms

__all__ = ["draw_parameters", "parameter_offsets", "train_networks", "network_ntk", "max_eigenvalue",
           "masked_block_moments", "record_width", "DIVERGENCE_FACTOR", "POWER_ITERATIONS"]

#: a loss above DIVERGENCE_FACTOR * (1 + initial loss) (or not finite) marks a network as diverged
DIVERGENCE_FACTOR = 1e8
#: power iterations for the largest eigenvalue of the per-network Theta_TT
POWER_ITERATIONS = 200


@kernel
def max_eigenvalue(A, T, iterations):
    """Largest eigenvalue of the symmetric PSD block A[:T, :T] by power iteration from a fixed
    start vector (deterministic); a lower bound that converges to lambda_max."""
    v = np.empty(T)
    u = np.empty(T)
    for q in range(T):
        v[q] = 1.0 + 0.01 * q
    lam = 0.0
    for it in range(iterations):
        norm = 0.0
        for q in range(T):
            norm += v[q] * v[q]
        norm = np.sqrt(norm)
        if norm == 0.0:
            return 0.0
        for q in range(T):
            v[q] /= norm
        lam = 0.0
        for q in range(T):
            acc = 0.0
            for r in range(T):
                acc += A[q, r] * v[r]
            u[q] = acc
            lam += v[q] * acc
        for q in range(T):
            v[q] = u[q]
    return lam


def record_width(k: int, n_out: int) -> int:
    """M: the length of one network's record per recorded step."""
    return 3 * k * n_out + 4


def parameter_offsets(n0: int, widths) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(woff (L + 1,), boff (L + 1,), total weights, total biases) int64."""
    widths = np.asarray(widths, dtype=np.int64)
    L = widths.shape[0]
    woff = np.zeros(L + 1, dtype=np.int64)
    boff = np.zeros(L + 1, dtype=np.int64)
    n_in = n0
    for l in range(L):
        woff[l + 1] = woff[l] + widths[l] * n_in
        boff[l + 1] = boff[l] + widths[l]
        n_in = widths[l]
    return woff, boff, int(woff[L]), int(boff[L])


@kernel
def draw_parameters(key, block, network, n0, widths, C_W, C_b, weight_code, woff, boff, wbuf, bbuf):
    """Draw all L layers' parameters of one network into wbuf / bbuf (layouts above).

    Biases ~ N(0, C_b^(l)); weights with variance C_W^(l) / n_{l-1}: gaussian, uniform
    (sqrt(3 C_W / n) U(-1, 1)) or rademacher (sqrt(C_W / n) (+-1)), as ``sample_dense``."""
    position = 0
    n_in = n0
    for l in range(widths.shape[0]):
        n = widths[l]
        bias = bbuf[boff[l]:boff[l] + n]
        fill_normals(key, block, network, position, bias)
        position += (n + 1) // 2
        sb = np.sqrt(C_b[l])
        for i in range(n):
            bias[i] *= sb
        if weight_code == RADEMACHER:
            row_ctr = (n_in + 127) // 128
            scale = np.sqrt(C_W[l] / n_in)
        elif weight_code == UNIFORM:
            row_ctr = (n_in + 1) // 2
            scale = np.sqrt(3.0 * C_W[l] / n_in)
        else:
            row_ctr = (n_in + 1) // 2
            scale = np.sqrt(C_W[l] / n_in)
        for i in range(n):
            wr = wbuf[woff[l] + i * n_in:woff[l] + (i + 1) * n_in]
            if weight_code == RADEMACHER:
                fill_signs(key, block, network, position, wr)
            elif weight_code == UNIFORM:
                fill_uniforms(key, block, network, position, wr)
                for j in range(n_in):
                    wr[j] = 2.0 * wr[j] - 1.0
            else:
                fill_normals(key, block, network, position, wr)
            position += row_ctr
            for j in range(n_in):
                wr[j] *= scale
        n_in = n


@kernel
def _forward(x, p0, p1, widths, act_code, act_param, woff, boff, wbuf, bbuf, zs, hs):
    """Forward pass of points p0..p1-1: zs[l, a, :n_l] = z^(l+1), hs[l, a, :n_l] its
    activation (hs of the output layer is not computed); x (P, n0)."""
    L = widths.shape[0]
    n_in = x.shape[1]
    for l in range(L):
        n = widths[l]
        for i in range(n):
            w = wbuf[woff[l] + i * n_in:woff[l] + (i + 1) * n_in]
            b = bbuf[boff[l] + i]
            for a in range(p0, p1):
                h = x[a] if l == 0 else hs[l - 1, a]
                acc = 0.0
                for j in range(n_in):           # reduction: vectorised under `reassoc`
                    acc += w[j] * h[j]
                zs[l, a, i] = b + acc
        if l < L - 1:
            for a in range(p0, p1):
                activate(act_code, act_param, zs[l, a, :n], hs[l, a, :n])
        n_in = n


@kernel
def _gd_step(x, N, y, widths, act_code, act_param, lam_b, lam_W, eta, woff, boff, wbuf, bbuf,
             zs, hs, delta, grad):
    """One full-batch step from the forward pass of the training points 0..N-1 in zs / hs.
    delta, grad: scratch (N, nmax)."""
    L = widths.shape[0]
    n_out = widths[L - 1]
    for a in range(N):
        for i in range(n_out):
            delta[a, i] = zs[L - 1, a, i] - y[a, i]
    for l in range(L - 1, -1, -1):
        n = widths[l]
        n_in = x.shape[1] if l == 0 else widths[l - 1]
        cb = eta * lam_b[l]
        cw = eta * lam_W[l] / n_in
        if l > 0:
            for a in range(N):
                for j in range(n_in):
                    grad[a, j] = 0.0
        for i in range(n):
            w = wbuf[woff[l] + i * n_in:woff[l] + (i + 1) * n_in]
            if l > 0:                           # backpropagate with the old weights
                for a in range(N):
                    d = delta[a, i]
                    g = grad[a]
                    for j in range(n_in):
                        g[j] += d * w[j]
            gb = 0.0
            for a in range(N):
                gb += delta[a, i]
                c = cw * delta[a, i]
                h = x[a] if l == 0 else hs[l - 1, a]
                for j in range(n_in):
                    w[j] -= c * h[j]
            bbuf[boff[l] + i] -= cb * gb
        if l > 0:
            for a in range(N):
                activate_derivative(act_code, act_param, zs[l - 1, a, :n_in], delta[a, :n_in])
                for j in range(n_in):
                    delta[a, j] *= grad[a, j]


@kernel
def network_ntk(x, widths, act_code, act_param, lam_b, lam_W, woff, boff, wbuf, bbuf, zs, hs,
                theta):
    """The network's NTK on all P points from a forward pass of all of them (zs, hs):
    theta (P n_L, P n_L), index a * n_L + i (all output units, also i != j)."""
    P = x.shape[0]
    L = widths.shape[0]
    n_out = widths[L - 1]
    Q = P * n_out
    nmax = 0
    for l in range(L):
        nmax = max(nmax, widths[l])
    D = np.zeros((Q, nmax))            # dz^(L)_{i;a} / dz^(l)_a, row a * n_L + i
    Dn = np.zeros((Q, nmax))
    for a in range(P):
        for i in range(n_out):
            D[a * n_out + i, i] = 1.0
    theta[:, :] = 0.0
    for l in range(L - 1, -1, -1):
        n = widths[l]
        n_in = x.shape[1] if l == 0 else widths[l - 1]
        for q in range(Q):
            a = q // n_out
            hq = x[a] if l == 0 else hs[l - 1, a]
            for r in range(q, Q):
                b = r // n_out
                hr = x[b] if l == 0 else hs[l - 1, b]
                hh = 0.0
                for j in range(n_in):
                    hh += hq[j] * hr[j]
                dd = 0.0
                for j in range(n):
                    dd += D[q, j] * D[r, j]
                theta[q, r] += (lam_b[l] + lam_W[l] / n_in * hh) * dd
        if l > 0:
            for q in range(Q):
                a = q // n_out
                g = Dn[q]
                for j in range(n_in):
                    g[j] = 0.0
                for i in range(n):
                    d = D[q, i]
                    w = wbuf[woff[l] + i * n_in:woff[l] + (i + 1) * n_in]
                    for j in range(n_in):
                        g[j] += d * w[j]
                s = np.empty(n_in)
                activate_derivative(act_code, act_param, zs[l - 1, a, :n_in], s)
                for j in range(n_in):
                    D[q, j] = g[j] * s[j]
    for q in range(Q):
        for r in range(q):
            theta[q, r] = theta[r, q]


@kernel
def _train_one(key, block, network, x, N, y, y_test, widths, C_W, C_b, act_code, act_param,
               weight_code, lam_b, lam_W, eta, steps, record, woff, boff, wbuf, bbuf, zs, hs,
               delta, grad, theta, rlin, rtmp, zlin, out):
    # One network: returns True if it diverged. out (R, M).
    P = x.shape[0]
    k = P - N
    L = widths.shape[0]
    n_out = widths[L - 1]
    K = k * n_out
    T = N * n_out
    has_test = y_test.shape[0] > 0
    draw_parameters(key, block, network, x.shape[1], widths, C_W, C_b, weight_code, woff, boff, wbuf, bbuf)
    _forward(x, 0, P, widths, act_code, act_param, woff, boff, wbuf, bbuf, zs, hs)
    network_ntk(x, widths, act_code, act_param, lam_b, lam_W, woff, boff, wbuf, bbuf, zs, hs, theta)
    for a in range(N):
        for i in range(n_out):
            rlin[a * n_out + i] = zs[L - 1, a, i] - y[a, i]
    for a in range(k):
        for i in range(n_out):
            zlin[a * n_out + i] = zs[L - 1, N + a, i]
    if eta * max_eigenvalue(theta, T, POWER_ITERATIONS) >= 2.0:
        return True
    r = 0
    R = record.shape[0]
    limit = 0.0
    for t in range(steps + 1):
        if t > 0:
            _forward(x, 0, N, widths, act_code, act_param, woff, boff, wbuf, bbuf, zs, hs)
        loss = 0.0
        for a in range(N):
            for i in range(n_out):
                e = zs[L - 1, a, i] - y[a, i]
                loss += e * e
        loss *= 0.5
        lin_loss = 0.0
        for q in range(T):
            lin_loss += rlin[q] * rlin[q]
        lin_loss *= 0.5
        if t == 0:
            limit = DIVERGENCE_FACTOR * (1.0 + loss)
        if not (loss <= limit and lin_loss <= limit):   # also NaN
            return True
        if r < R and record[r] == t:
            o = out[r]
            _forward(x, N, P, widths, act_code, act_param, woff, boff, wbuf, bbuf, zs, hs)
            test_loss = 0.0
            lin_test_loss = 0.0
            for a in range(k):
                for i in range(n_out):
                    q = a * n_out + i
                    z = zs[L - 1, N + a, i]
                    o[q] = z
                    o[K + q] = zlin[q]
                    o[2 * K + q] = z - zlin[q]
                    if has_test:
                        e = z - y_test[a, i]
                        test_loss += e * e
                        e = zlin[q] - y_test[a, i]
                        lin_test_loss += e * e
            o[3 * K] = loss
            o[3 * K + 1] = lin_loss
            o[3 * K + 2] = 0.5 * test_loss
            o[3 * K + 3] = 0.5 * lin_test_loss
            if not (abs(o[3 * K + 2]) < np.inf and abs(o[3 * K + 3]) < np.inf):
                return True
            r += 1
        if t == steps:
            break
        _gd_step(x, N, y, widths, act_code, act_param, lam_b, lam_W, eta, woff, boff, wbuf, bbuf,
                 zs, hs, delta, grad)
        # the linearised model, with the residual before this step
        for q in range(T):
            rtmp[q] = rlin[q]
        for q in range(T):
            acc = 0.0
            for u in range(T):
                acc += theta[q, u] * rtmp[u]
            rlin[q] -= eta * acc
        for q in range(K):
            acc = 0.0
            for u in range(T):
                acc += theta[T + q, u] * rtmp[u]
            zlin[q] -= eta * acc
    return False


@parallel_kernel
def train_networks(key, first_block, n_blocks, block_size, x, N, y, y_test, widths, C_W, C_b,
                   act_code, act_param, weight_code, lam_b, lam_W, eta, steps, record, out, diverged):
    """Train ``n_blocks * block_size`` networks; see the module docstring.

    Args:
        x: (P, n0) training inputs (rows 0..N-1) then test inputs; y: (N, n_L) targets;
        y_test: (k, n_L) test targets or (0, n_L) without.
        widths, C_W, C_b, lam_b, lam_W: (L,); act_code, act_param as ``sample_dense``;
        weight_code 0 gaussian, 1 uniform, 2 rademacher.
        eta: global learning rate; steps: number of steps; record: (R,) int64 sorted steps
        in 0..steps.
        out: (n_blocks, block_size, R, M) float64; diverged: (n_blocks, block_size) uint8.
    Parallel over networks; bitwise independent of the number of threads.
    """
    L = widths.shape[0]
    P, n0 = x.shape
    k = P - N
    n_out = widths[L - 1]
    if (C_W.shape[0] != L or C_b.shape[0] != L or lam_b.shape[0] != L or lam_W.shape[0] != L):
        raise ValueError("C_W, C_b, lam_b, lam_W need one entry per layer")
    if y.shape[0] != N or y.shape[1] != n_out or (y_test.shape[0] > 0 and (y_test.shape[0] != k
                                                                              or y_test.shape[1] != n_out)):
        raise ValueError("targets must have shape (N, n_L) and test targets (k, n_L) or (0, n_L)")
    R = record.shape[0]
    if (out.shape[0] != n_blocks or out.shape[1] != block_size or out.shape[2] != R
            or out.shape[3] != 3 * k * n_out + 4):
        raise ValueError("out must have shape (n_blocks, block_size, R, 3 k n_L + 4)")
    if diverged.shape[0] != n_blocks or diverged.shape[1] != block_size:
        raise ValueError("diverged must have shape (n_blocks, block_size)")
    for r in range(R):
        if record[r] < 0 or record[r] > steps or (r > 0 and record[r] <= record[r - 1]):
            raise ValueError("record must be increasing steps in 0..steps")
    total = n_blocks * block_size
    if total == 0:
        return
    nmax = n0
    for l in range(L):
        nmax = max(nmax, widths[l])
    nw = 0
    nb = 0
    n_in = n0
    for l in range(L):
        nw += widths[l] * n_in
        nb += widths[l]
        n_in = widths[l]
    woff = np.zeros(L + 1, dtype=np.int64)
    boff = np.zeros(L + 1, dtype=np.int64)
    n_in = n0
    for l in range(L):
        woff[l + 1] = woff[l] + widths[l] * n_in
        boff[l + 1] = boff[l] + widths[l]
        n_in = widths[l]
    Q = P * n_out
    n_chunks = min(total, MAX_CHUNKS)
    for c in numba.prange(n_chunks):
        wbuf = np.empty(nw)
        bbuf = np.empty(nb)
        zs = np.zeros((L, P, nmax))
        hs = np.zeros((L, P, nmax))
        delta = np.zeros((N, nmax))
        grad = np.zeros((N, nmax))
        theta = np.empty((Q, Q))
        rlin = np.empty(N * n_out)
        rtmp = np.empty(N * n_out)
        zlin = np.empty(k * n_out)
        lo, hi = chunk_range(c, n_chunks, total)
        for t in range(lo, hi):
            i = t // block_size
            j = t - i * block_size
            bad = _train_one(key, first_block + i, j, x, N, y, y_test, widths, C_W, C_b, act_code,
                             act_param, weight_code, lam_b, lam_W, eta, steps, record, woff, boff,
                             wbuf, bbuf, zs, hs, delta, grad, theta, rlin, rtmp, zlin, out[i, j])
            diverged[i, j] = 1 if bad else 0


@kernel
def masked_block_moments(samples, diverged, count_out, mean_out, m2_out):
    """Per block, the moments of the networks that did not diverge.

    samples (n_blocks, bs, R, M), diverged (n_blocks, bs) uint8 -> count_out (n_blocks,)
    float64, mean_out (n_blocks, R, M), m2_out (n_blocks, R, M, M) (central sums; zero for
    an empty block). Serial, two-pass, in network order: deterministic."""
    nB, bs, R, M = samples.shape
    for i in range(nB):
        c = 0
        for j in range(bs):
            if diverged[i, j] == 0:
                c += 1
        count_out[i] = c
        mean_out[i] = 0.0
        m2_out[i] = 0.0
        if c == 0:
            continue
        for j in range(bs):
            if diverged[i, j] == 0:
                for r in range(R):
                    for p in range(M):
                        mean_out[i, r, p] += samples[i, j, r, p]
        for r in range(R):
            for p in range(M):
                mean_out[i, r, p] /= c
        d = np.empty(M)
        for j in range(bs):
            if diverged[i, j] == 0:
                for r in range(R):
                    for p in range(M):
                        d[p] = samples[i, j, r, p] - mean_out[i, r, p]
                    for p in range(M):
                        for q in range(M):
                            m2_out[i, r, p, q] += d[p] * d[q]
