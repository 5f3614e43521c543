"""The ``[training]`` section: what every network of the ensemble is trained on, and how.

    [training]
    inputs  = { values = [[...], ...] }   # (N, n_0), or file = "x.npy" / file + dataset
    targets = { values = [[...], ...] }   # (N, n_L), or file = ...
    test_targets = { values = ... }       # optional (k, n_L) targets at the [inputs] points
    steps = 1000                          # full-batch gradient descent on the MSE loss
    learning_rate = 0.1                   # global eta
    record = [0, 1, 10, 100, 1000]        # steps at which statistics are taken
    lambdas = "config"                    # or "equivalence" (book ch. 9)

The loss is (1/2) sum_{a, i} (z_{i;a} - y_{a,i})^2 over training points a and output units
i; parameter theta_mu moves by -eta lambda_mu dL/dtheta_mu with lambda_mu = lambda_b^(l) for
biases and lambda_W^(l) / n_{l-1} for the weights of layer l. ``lambdas = "config"`` takes
lambda_b, lambda_W from ``[network]`` (one value or one per layer; 1 where not given);
``"equivalence"`` rescales them per layer by the learning-rate equivalence principle
(``equivalence_rates``). Trained networks are evaluated at the ``[inputs]`` points.

Every bad value raises ``ConfigError`` naming the key (``training.record: ...``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError

__all__ = ["TrainingConfig", "parse_training", "TRAINING_KEYS", "learning_rates", "equivalence_rates",
           "LAMBDAS"]

TRAINING_KEYS = {"inputs", "targets", "test_targets", "steps", "learning_rate", "record", "lambdas"}
LAMBDAS = ("config", "equivalence")
MAX_STEPS = 10**9


@dataclass(frozen=True, eq=False)
class TrainingConfig:
    inputs: np.ndarray              # (N, n_0) training inputs, read-only
    targets: np.ndarray             # (N, n_L)
    test_targets: np.ndarray | None  # (k, n_L) or None
    steps: int
    learning_rate: float
    record: tuple[int, ...]         # increasing, in 0..steps
    lambdas: str = "config"
    lambda_b: tuple[float, ...] = ()   # resolved per-layer rates (from [network] and lambdas)
    lambda_W: tuple[float, ...] = ()

    @property
    def n_train(self) -> int:
        return self.inputs.shape[0]

    def to_dict(self) -> dict:
        d = {"inputs": {"values": self.inputs.tolist()}, "targets": {"values": self.targets.tolist()},
             "steps": self.steps, "learning_rate": self.learning_rate, "record": list(self.record),
             "lambdas": self.lambdas}
        if self.test_targets is not None:
            d["test_targets"] = {"values": self.test_targets.tolist()}
        return d


def _per_layer_rate(network, name: str) -> np.ndarray:
    value = getattr(network, name, None)
    L = len(network.widths)
    if value is None:
        return np.ones(L)
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    return np.full(L, float(arr[0])) if arr.size == 1 else arr.copy()


def equivalence_rates(activation, L: int, lambda_b, lambda_W) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer rates of the learning-rate equivalence principle (book ch. 9), from the
    base rates lambda_b, lambda_W (scalars or per layer; entry l-1 for layer l):

    - scale-invariant class (ReLU-like):  lambda_b^(l) = lambda_b / L,
      lambda_W^(l) = lambda_W / L;
    - K* = 0 class (tanh-like, sigma = s1 z + s2 z^2/2 + s3 z^3/6 + ...):
      p = b1 / a1 with a1 = s3/s1 + (3/4)(s2/s1)^2, b1 = s3/s1 + (s2/s1)^2, and
      lambda_b^(l) = lambda_b L^(p-1) / l^p,  lambda_W^(l) = lambda_W (L / l)^(p-1).

    With these every layer contributes equally (O(1/L)) to the output NTK at criticality.
    Raises ValueError for an activation with no critical point."""
    from ..activations import get_activation
    from ..theory import gaussian as _g
    act = get_activation(activation)
    lb = np.broadcast_to(np.asarray(lambda_b, dtype=np.float64), (L,)).copy()
    lw = np.broadcast_to(np.asarray(lambda_W, dtype=np.float64), (L,)).copy()
    layers = np.arange(1, L + 1, dtype=np.float64)
    if _g.is_discontinuous(act):
        raise ValueError(f"activation {act.name!r} has no critical point (sigma jumps: the NTK is "
                         "infinite), so the equivalence principle does not apply")
    if _g.relu_family(act) is not None or act.scale_invariant:
        return lb / L, lw / L
    try:
        s0, s1, s2, s3 = (float(v) for v in _g.higher_derivatives(act, 0.0, 3))
    except ValueError:
        h = 1e-3
        f = lambda x: float(act.value(x))            # noqa: E731
        s0, s1 = f(0.0), (f(h) - f(-h)) / (2 * h)
        s2 = (f(h) - 2 * f(0.0) + f(-h)) / h ** 2
        s3 = (f(2 * h) - 2 * f(h) + 2 * f(-h) - f(-2 * h)) / (2 * h ** 3)
    a1 = s3 / s1 + 0.75 * (s2 / s1) ** 2 if abs(s1) > 1e-14 else float("nan")
    if abs(s0) > 1e-14 or not a1 < 0:
        raise ValueError(f"activation {act.name!r} has no critical point of the scale-invariant or "
                         "K* = 0 class, so the equivalence principle does not apply")
    b1 = s3 / s1 + (s2 / s1) ** 2
    p = b1 / a1
    return lb * L ** (p - 1) / layers ** p, lw * (L / layers) ** (p - 1)


def learning_rates(network, lambdas: str) -> tuple[np.ndarray, np.ndarray]:
    """(lambda_b (L,), lambda_W (L,)) for a network config and the ``lambdas`` mode."""
    lb, lw = _per_layer_rate(network, "lambda_b"), _per_layer_rate(network, "lambda_W")
    if lambdas == "equivalence":
        return equivalence_rates(network.activation, len(network.widths), lb, lw)
    return lb, lw


def _matrix(sec, key: str, base_dir: Path) -> np.ndarray:
    from ..config.inputs import _from_file, _from_values
    if not isinstance(sec, dict):
        raise ConfigError(f"training.{key}: must be a table such as {{ values = [[...], ...] }} or "
                          "{ file = \"x.npy\" }")
    bad = set(sec) - {"values", "file", "dataset"}
    if bad:
        raise ConfigError(f"training.{key}.{sorted(bad)[0]}: unknown key; allowed: dataset, file, values")
    if not sec:
        raise ConfigError(f"training.{key}: give values = [[...], ...] or file = ...")
    if "values" in sec and "file" in sec:
        raise ConfigError(f"training.{key}.file: give only one of values, file")
    try:                                  # the [inputs] readers, with this key in the message
        x = _from_values(sec["values"]) if "values" in sec else _from_file(sec, base_dir)
    except ValueError as exc:
        msg = str(exc)
        raise ConfigError(f"training.{key}{msg[len('inputs'):]}" if msg.startswith("inputs") else
                          f"training.{key}: {msg}") from None
    if x.ndim == 1:
        x = x[:, None] if key != "inputs" else x[None, :]
    if x.ndim != 2 or x.shape[0] < 1:
        raise ConfigError(f"training.{key}: must be a matrix, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"training.{key}: contains NaN or inf")
    x = np.ascontiguousarray(x, dtype=np.float64)
    x.setflags(write=False)
    return x


def _int(key, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ConfigError(f"training.{key}: must be an integer in {lo}..{hi}, got {value!r}")
    return int(value)


def parse_training(sec, network, k: int, base_dir=".") -> TrainingConfig:
    """Validate a raw ``[training]`` table against the network (n_0, n_L) and the k test inputs."""
    if not isinstance(sec, dict):
        raise ConfigError("training: must be a table")
    bad = set(sec) - TRAINING_KEYS
    if bad:
        raise ConfigError(f"training.{sorted(bad)[0]}: unknown key; allowed: {', '.join(sorted(TRAINING_KEYS))}")
    for key in ("inputs", "targets", "steps", "learning_rate"):
        if key not in sec:
            raise ConfigError(f"training.{key}: missing")
    from ..activations import get_activation
    act = get_activation(network.activation)
    if act.jumps:
        # sigma' is a delta function: gradient descent moves only the last layer and the NTK
        # (and so the theory of the trained network) is infinite
        raise ConfigError(f"training: network.activation = {act.name!r} jumps (its derivative is a "
                          "delta function, so gradients and the NTK are undefined); use a "
                          "continuous activation")
    base_dir = Path(base_dir)
    n0, n_out = network.input_dim, network.widths[-1]
    x = _matrix(sec["inputs"], "inputs", base_dir)
    if x.shape[1] != n0:
        raise ConfigError(f"training.inputs: each input must have network.input_dim = {n0} entries, "
                          f"got {x.shape[1]}")
    if x.shape[0] > 64:
        raise ConfigError(f"training.inputs: at most 64 training points, got {x.shape[0]}")
    y = _matrix(sec["targets"], "targets", base_dir)
    if y.shape != (x.shape[0], n_out):
        raise ConfigError(f"training.targets: must have shape (N, n_L) = ({x.shape[0]}, {n_out}) "
                          f"(one row per training input, one column per output unit), got {y.shape}")
    y_test = None
    if "test_targets" in sec:
        y_test = _matrix(sec["test_targets"], "test_targets", base_dir)
        if y_test.shape != (k, n_out):
            raise ConfigError(f"training.test_targets: must have shape (k, n_L) = ({k}, {n_out}) "
                              f"(one row per [inputs] point), got {y_test.shape}")
    steps = _int("steps", sec["steps"], 0, MAX_STEPS)
    eta = sec["learning_rate"]
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or not eta > 0:
        raise ConfigError(f"training.learning_rate: must be a finite positive number, got {eta!r}")
    record = sec.get("record", [0, steps])
    if not isinstance(record, list) or not record:
        raise ConfigError("training.record: must be a non-empty list of steps")
    record = [_int("record", r, 0, MAX_STEPS) for r in record]
    if any(b <= a for a, b in zip(record, record[1:])):
        raise ConfigError(f"training.record: steps must be strictly increasing, got {record}")
    if record[-1] > steps:
        raise ConfigError(f"training.record: step {record[-1]} is beyond training.steps = {steps}")
    lambdas = sec.get("lambdas", "config")
    if lambdas not in LAMBDAS:
        raise ConfigError(f"training.lambdas: {lambdas!r} is not allowed; allowed: {', '.join(LAMBDAS)}")
    try:
        lb, lw = learning_rates(network, lambdas)
    except ValueError as exc:
        raise ConfigError(f"training.lambdas: {exc}") from None
    if not (np.all(np.isfinite(lb)) and np.all(np.isfinite(lw)) and np.all(lb >= 0) and np.all(lw >= 0)):
        raise ConfigError("training.lambdas: the per-layer learning rates must be finite and >= 0")
    return TrainingConfig(x, y, y_test, steps, float(eta), tuple(record), lambdas,
                          tuple(float(v) for v in lb), tuple(float(v) for v in lw))
