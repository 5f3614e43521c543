"""Laws of the weights and biases: names, parameters, cumulants, kernel codes.

Every law has mean 0 and is scaled to the layer's variance (weights: C_W / n_{l-1}, biases:
C_b); what distinguishes the laws at the order mcsim works to is the standardised fourth
cumulant kappa_4 = E[w^4] / E[w^2]^2 - 3 (the third cumulant vanishes: all laws are
symmetric).

| law | draw (before scaling to the variance) | kappa_4 |
|---|---|---|
| ``gaussian``   | N(0, 1)                                     | 0 |
| ``uniform``    | U(-1, 1) * sqrt(3)                           | -6/5 |
| ``rademacher`` | +-1                                          | -2 |
| ``student_t``  | t_nu * sqrt((nu - 2) / nu), integer nu >= 5 | 6 / (nu - 4) |

Student-t with nu <= 4 has an infinite fourth moment (the four-point function of z does not
exist); nu is an integer because the sampler draws t_nu = Z / sqrt(chi^2_nu / nu) with
chi^2_nu a sum of nu squared normals (a fixed count of random numbers per draw).

In a configuration: ``ensemble.weights`` / ``ensemble.biases`` = ``"uniform"`` or a table
``{name = "student_t", nu = 6}``. ``Law`` is the parsed form; ``parse_law`` raises
``ValueError`` with a message that the config prefixes with the key.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LAWS", "Law", "parse_law", "GAUSSIAN"]

#: law name -> kernel code (``mcsim.kernels.dense``)
LAWS = {"gaussian": 0, "uniform": 1, "rademacher": 2, "student_t": 3}


@dataclass(frozen=True)
class Law:
    """One parsed law. ``nu``: Student-t degrees of freedom (0 for the other laws)."""
    name: str = "gaussian"
    nu: int = 0

    @property
    def code(self) -> int:
        return LAWS[self.name]

    @property
    def kappa4(self) -> float:
        """Standardised fourth cumulant E[w^4]/E[w^2]^2 - 3."""
        if self.name == "uniform":
            return -1.2
        if self.name == "rademacher":
            return -2.0
        if self.name == "student_t":
            return 6.0 / (self.nu - 4)
        return 0.0

    @property
    def gaussian(self) -> bool:
        return self.name == "gaussian"

    def spec(self):
        """The canonical configuration value: the name, or a table with the parameter."""
        return {"name": self.name, "nu": self.nu} if self.name == "student_t" else self.name

    def __str__(self) -> str:
        return f"student_t(nu={self.nu})" if self.name == "student_t" else self.name


GAUSSIAN = Law()


def parse_law(value) -> Law:
    """A ``Law`` from a configuration value (a name or ``{name = ..., nu = ...}``)."""
    allowed = ", ".join(LAWS) + ' (student_t as {name = "student_t", nu = 6})'
    if isinstance(value, Law):
        return value
    if isinstance(value, str):
        name, params = value, {}
    elif isinstance(value, dict):
        params = dict(value)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(f"a law table needs a name; allowed: {allowed}")
    else:
        raise ValueError(f"{value!r} is not allowed; allowed: {allowed}")
    if name not in LAWS:
        raise ValueError(f"{name!r} is not allowed; allowed: {allowed}")
    if name != "student_t":
        if params:
            raise ValueError(f"{name} takes no parameters, got {sorted(params)}")
        return Law(name)
    extra = set(params) - {"nu"}
    if extra:
        raise ValueError(f"student_t takes only nu, got {sorted(extra)}")
    if "nu" not in params:
        raise ValueError('student_t needs its degrees of freedom: {name = "student_t", nu = 6}')
    nu = params["nu"]
    if isinstance(nu, bool) or not isinstance(nu, (int, float)) or not math.isfinite(nu):
        raise ValueError(f"student_t: nu must be a number, got {nu!r}")
    if nu <= 4:
        raise ValueError(f"student_t with nu = {nu} has an infinite fourth moment (need nu > 4): "
                         "the four-point function of z does not exist")
    if nu != int(nu):
        raise ValueError(f"student_t: nu must be an integer >= 5 (it is sampled as a sum of nu "
                         f"squared normals), got {nu!r}")
    return Law("student_t", int(nu))


def unit_cumulant(s, C_W: float, C_b: float, weights: Law, biases: Law):
    """Fourth joint cumulant of one unit's preactivations z_{i;a} = b_i + sum_j W_ij s_{j;a}
    given the previous layer's s (k, n) (activations, or the inputs x for layer 1):
    kappa4_W (C_W / n)^2 sum_j s_a1 s_a2 s_a3 s_a4 + kappa4_b C_b^2, full (k, k, k, k)."""
    import numpy as np
    s = np.atleast_2d(np.asarray(s, dtype=float))
    n = s.shape[1]
    out = weights.kappa4 * (C_W / n) ** 2 * np.einsum("aj,bj,cj,dj->abcd", s, s, s, s)
    return out + biases.kappa4 * C_b ** 2


def first_layer_cumulant(cfg):
    """``unit_cumulant`` of layer 1 (exact: its input is the fixed x) for a ``Config``."""
    net, ens = cfg.network, cfg.ensemble
    return unit_cumulant(cfg.inputs, net.C_W[0], net.C_b[0], ens.weight_law, ens.bias_law)
