"""The infinite-width prediction for a trained ensemble (book ch. 10).

At infinite width the outputs at initialisation are a Gaussian process with the output
layer's kernel K = K^(L) (independent, identical for each output unit), and the NTK is
frozen at its mean Theta = Theta^(L) (diagonal in the output units). Gradient descent on
L = (1/2) sum (z - y)^2 is then linear. Over the P = N + k points (training points T first,
then the test points s), per output unit, with Theta_TT = U diag(lambda) U^T:

    r_t   = B_t r_0,                       B_t = U diag((1 - eta lambda)^t) U^T
    z_s(t) = z_s(0) - A_t r_0,             A_t = Theta_sT U diag(g_t(lambda)) U^T,
                                           g_t(lambda) = (1 - (1 - eta lambda)^t) / lambda
                                           (eta t at lambda = 0)

with r_0 = z_T(0) - y. Hence, for targets Y (N, n_L) and test targets Y_s (k, n_L),

    E z_s(t)      = A_t Y                                              (k, n_L)
    Cov z_s(t)    = K_ss - A_t K_Ts - K_sT A_t^T + A_t K_TT A_t^T      (k, k), each unit
    E train loss  = (1/2) [ |B_t Y|^2 + n_L tr(B_t K_TT B_t) ]
    E test loss   = (1/2) [ |A_t Y - Y_s|^2 + n_L tr(Cov z_s(t)) ]

and t -> infinity: g = 1/lambda (0 on the null space of Theta_TT), B = the projector on
that null space (stable only for eta lambda_max < 2). The mean NTK uses the standard
recursion with the [training] per-layer rates:

    Theta^(1) = lambda_b^(1) + lambda_W^(1) x.x / n_0,
    Theta^(l+1) = lambda_b^(l+1) + lambda_W^(l+1) <s s>_{K^(l)} + C_W^(l+1) <s' s'>_{K^(l)} Theta^(l).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import gaussian as _g

__all__ = ["TrainingPrediction", "output_kernels", "predict_training", "write_training_prediction",
           "format_training_prediction"]


@dataclass(frozen=True, eq=False)
class TrainingPrediction:
    steps: np.ndarray                   # (R,)
    output_mean: np.ndarray             # (R, k, n_L)
    output_covariance: np.ndarray       # (R, k, k)
    train_loss: np.ndarray              # (R,)
    test_loss: np.ndarray | None        # (R,) with test targets
    limit_output_mean: np.ndarray       # (k, n_L), t -> infinity
    limit_output_covariance: np.ndarray  # (k, k)
    limit_train_loss: float
    limit_test_loss: float | None
    kernel: np.ndarray                  # K^(L) on the P points (training first), (P, P)
    ntk: np.ndarray                     # Theta^(L), (P, P)
    stability_limit: float              # 2 / lambda_max(Theta_TT): eta must stay below it


def output_kernels(activation, x, C_W, C_b, lambda_b, lambda_W, L: int, q=None):
    """(K^(L), Theta^(L)) on the points x (P, n_0); per-layer arrays of length L."""
    from ..activations import get_activation
    act = get_activation(activation)
    x = np.atleast_2d(np.asarray(x, dtype=float))
    gram = x @ x.T / x.shape[1]
    K = C_b[0] + C_W[0] * gram
    theta = lambda_b[0] + lambda_W[0] * gram
    for l in range(1, L):
        M2 = _g.two_point(act, K, q=q)
        D = _g.derivative_two_point(act, K, q=q)
        theta = lambda_b[l] + lambda_W[l] * M2 + C_W[l] * D * theta
        K = C_b[l] + C_W[l] * M2
    return 0.5 * (K + K.T), 0.5 * (theta + theta.T)


def _solve(K, theta, N, eta, steps, Y, Y_s):
    T, s = slice(0, N), slice(N, None)
    lam, U = np.linalg.eigh(theta[T, T])
    tol = 1e-12 * max(abs(lam).max(), 1e-300)
    null = lam <= tol
    n_out = Y.shape[1]

    def stats(g, b):
        A = theta[s, T] @ (U * g) @ U.T
        B = (U * b) @ U.T
        mean = A @ Y
        cov = K[s, s] - A @ K[T, s] - K[s, T] @ A.T + A @ K[T, T] @ A.T
        cov = 0.5 * (cov + cov.T)
        train = 0.5 * (np.sum((B @ Y) ** 2) + n_out * np.trace(B @ K[T, T] @ B))
        test = None if Y_s is None else 0.5 * (np.sum((mean - Y_s) ** 2) + n_out * np.trace(cov))
        return mean, cov, train, test

    out = []
    for t in steps:
        decay = (1.0 - eta * lam) ** t
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(null, eta * t, (1.0 - decay) / np.where(null, 1.0, lam))
        out.append(stats(g, decay))
    with np.errstate(divide="ignore"):
        limit = stats(np.where(null, 0.0, 1.0 / np.where(null, 1.0, lam)), null.astype(float))
    return out, limit, 2.0 / lam.max() if lam.max() > 0 else np.inf


def predict_training(cfg, q=None) -> TrainingPrediction:
    """The infinite-width prediction for the [training] section of a config."""
    tc, net = cfg.training, cfg.network
    L = net.depth
    x = np.vstack([tc.inputs, cfg.inputs])
    K, theta = output_kernels(net.activation, x, np.asarray(net.C_W), np.asarray(net.C_b),
                              np.asarray(tc.lambda_b), np.asarray(tc.lambda_W), L, q=q)
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(theta))):
        raise ValueError("training: the infinite-width NTK is not finite for this activation")
    N = tc.n_train
    rows, limit, stab = _solve(K, theta, N, tc.learning_rate, tc.record, np.asarray(tc.targets),
                               None if tc.test_targets is None else np.asarray(tc.test_targets))
    if not tc.learning_rate < stab:
        raise ValueError(f"training.learning_rate: {tc.learning_rate} is above the infinite-width "
                         f"stability limit 2 / lambda_max(Theta_TT) = {stab:.6g}; the kernel "
                         "prediction diverges")
    test = tc.test_targets is not None
    return TrainingPrediction(
        steps=np.asarray(tc.record), output_mean=np.stack([r[0] for r in rows]),
        output_covariance=np.stack([r[1] for r in rows]), train_loss=np.array([r[2] for r in rows]),
        test_loss=np.array([r[3] for r in rows]) if test else None,
        limit_output_mean=limit[0], limit_output_covariance=limit[1], limit_train_loss=float(limit[2]),
        limit_test_loss=float(limit[3]) if test else None, kernel=K, ntk=theta, stability_limit=stab)


def write_training_prediction(f, cfg, pred: TrainingPrediction | None = None) -> None:
    """The group /training of a prediction file: steps, output_mean, output_covariance,
    train_loss (and test_loss) at the recorded steps, the same at t -> infinity
    (``*_infinite_time``), and the kernel and NTK on the training and test points."""
    from ..training.accumulate import DATASETS
    pred = pred or predict_training(cfg)
    g = f.create_group("training")
    g.attrs.update(description="infinite-width prediction for the trained ensemble (book ch. 10): "
                               "kernel regression with the output layer's K and mean NTK Theta",
                   diverged=0, stability_limit=pred.stability_limit,
                   learning_rate=cfg.training.learning_rate)
    d = g.create_dataset("steps", data=pred.steps.astype(np.int64))
    d.attrs.update(description="the recorded gradient-descent steps t, shape (R,)", units="steps")
    items = {"output_mean": pred.output_mean, "output_covariance": pred.output_covariance,
             "train_loss": pred.train_loss, "test_loss": pred.test_loss}
    for name, value in items.items():
        if value is None:
            continue
        desc, units = DATASETS[name]
        d = g.create_dataset(name, data=value)
        d.attrs.update(description="prediction at infinite width: " + desc, units=units)
    limits = {"output_mean": pred.limit_output_mean, "output_covariance": pred.limit_output_covariance,
              "train_loss": pred.limit_train_loss, "test_loss": pred.limit_test_loss}
    for name, value in limits.items():
        if value is None:
            continue
        d = g.create_dataset(name + "_infinite_time", data=value)
        d.attrs.update(description=f"{name} at infinite width and t -> infinity", units=DATASETS[name][1])
    d = g.create_dataset("kernel", data=pred.kernel)
    d.attrs.update(description="K^(L) on the N training points then the k test points, (P, P)",
                   units="output units squared")
    d = g.create_dataset("ntk", data=pred.ntk)
    d.attrs.update(description="mean NTK Theta^(L) at infinite width on the same points, (P, P)",
                   units="output units squared")


def format_training_prediction(pred: TrainingPrediction) -> str:
    k = pred.output_mean.shape[1]
    lines = ["training    infinite-width prediction (kernel regression with K and the mean NTK; "
             f"stable for eta < {pred.stability_limit:.6g})",
             f"  {'step':>8} {'train loss':>14}" + (f" {'test loss':>14}" if pred.test_loss is not None else "")
             + "".join(f" {'E z[' + str(a + 1) + ']':>12}" for a in range(min(k, 4)))]
    rows = list(zip(pred.steps.tolist(), pred.train_loss, pred.output_mean[:, :, 0],
                    pred.test_loss if pred.test_loss is not None else [None] * len(pred.steps)))
    rows.append(("inf", pred.limit_train_loss, pred.limit_output_mean[:, 0], pred.limit_test_loss))
    for t, tr, z, te in rows:
        lines.append(f"  {t!s:>8} {tr:14.8g}" + (f" {te:14.8g}" if te is not None else "")
                     + "".join(f" {v:12.6g}" for v in z[:4]))
    return "\n".join(lines)
