"""Registry of activation functions: name -> :class:`Activation`.

Built from the kernel table ``mcsim.kernels.activations.SPECS``; the numerical definitions
live only there (scalar Numba functions), and the numpy ufuncs here are compiled from them
(``numba.vectorize``, lazily on first use, one ufunc per activation and derivative order).

Specifications accepted by :func:`get_activation`:

- a name, ``"relu"`` (parameters take their defaults);
- a mapping, ``{"name": "leaky_relu", "slope": 0.1}``;
- an :class:`Activation` (returned unchanged).

Parameters and defaults: ``leaky_relu`` has ``slope`` (default 0.01: sigma(x) = slope * x for
x < 0). No other activation has a parameter. To add an activation, see the module docstring
of ``mcsim.kernels.activations`` (everything is in that one file).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Mapping

import numba
import numpy as np

from .kernels import activations as _k

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "names"]

_SPECS = {s.name: s for s in _k.SPECS}
_BY_CODE = {s.code: s for s in _k.SPECS}


@functools.lru_cache(maxsize=None)
def _ufunc(code: int, order: int):
    """The numpy ufunc ``f(x, param)`` for derivative ``order`` (0, 1, 2) of ``code``."""
    spec = _BY_CODE[code]
    fn = (spec.value, spec.derivative, spec.second)[order]
    # vectorize the plain Python source of the kernel's scalar function: the same definition,
    # compiled as a ufunc loop (float64 only; numpy casts other inputs).
    return numba.vectorize(["float64(float64, float64)"], nopython=True)(fn.py_func)


@dataclass(frozen=True)
class Activation:
    """One activation with its parameter.

    Attributes:
        name: registry name (``"relu"``, ...).
        code: integer code the kernels dispatch on (``act_code``).
        param: the kernels' ``act_param`` (``leaky_relu``: the slope; otherwise 0.0, unused).
        param_name: name of that parameter in configurations, or ``None``.
        kinks: x positions where sigma or sigma' is not smooth (``relu``: ``(0.0,)``).
        scale_invariant: sigma(c x) = c sigma(x) for c > 0 (linear, relu, leaky_relu).

    ``value``, ``derivative`` and ``second_derivative`` accept scalars or arrays of any shape
    and return float64 of the broadcast shape. The derivatives are the almost-everywhere
    ones: at a kink they take the conventional value (ReLU'(0) = 0, perceptron' = 0) and the
    delta functions of sigma' or sigma'' at kinks are not included.
    """

    name: str
    code: int
    param: float = 0.0
    param_name: str | None = None
    kinks: tuple = ()
    scale_invariant: bool = False

    @property
    def jumps(self) -> bool:
        """True when sigma is discontinuous at a kink (perceptron): sigma' has a delta
        function there, so derivatives (backpropagation, the NTK) are infinite."""
        if not self.kinks:
            return False
        # the scalar definition run as plain Python (no compilation for a config check)
        f = getattr(_SPECS[self.name].value, "py_func", None) or (lambda x, p: float(self.value(x)))
        return any(abs(f(c + 1e-9, self.param) - f(c - 1e-9, self.param)) > 1e-6 for c in self.kinks)

    @property
    def smooth(self) -> bool:
        """True when sigma is infinitely differentiable everywhere (no kinks)."""
        return not self.kinks

    def value(self, x):
        """sigma(x), elementwise."""
        return _ufunc(self.code, 0)(x, self.param)

    def derivative(self, x):
        """sigma'(x), elementwise (almost everywhere, see the class docstring)."""
        return _ufunc(self.code, 1)(x, self.param)

    def second_derivative(self, x):
        """sigma''(x), elementwise (almost everywhere: 0 on linear pieces of kinked ones)."""
        return _ufunc(self.code, 2)(x, self.param)

    def spec(self) -> dict:
        """The canonical specification, ``{"name": ..., <param_name>: param}``."""
        d = {"name": self.name}
        if self.param_name is not None:
            d[self.param_name] = self.param
        return d

    __call__ = value


def _make(spec: _k.ActivationSpec, param: float | None = None) -> Activation:
    return Activation(
        name=spec.name,
        code=spec.code,
        param=float(spec.param_default if param is None else param),
        param_name=spec.param_name,
        kinks=tuple(float(v) for v in spec.kinks),
        scale_invariant=spec.scale_invariant,
    )


#: name -> Activation with default parameters, in code order.
ACTIVATIONS: dict[str, Activation] = {s.name: _make(s) for s in _k.SPECS}


def names() -> tuple[str, ...]:
    """Names of all registered activations, in code order."""
    return tuple(ACTIVATIONS)


def get_activation(spec) -> Activation:
    """Resolve ``"relu"``, ``{"name": "leaky_relu", "slope": 0.1}`` or an Activation.

    Raises ``ValueError`` naming what is allowed for an unknown name, an unknown or missing
    parameter key, or a parameter that is not a finite number; ``TypeError`` for a spec of
    another type.
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, Mapping):
        if "name" not in spec:
            raise ValueError(f"activation needs a 'name'; allowed names: {', '.join(names())}")
        name = spec["name"]
        params = {k: v for k, v in spec.items() if k != "name"}
    else:
        raise TypeError(f"activation must be a name or a mapping with 'name', got {spec!r}")
    if not isinstance(name, str) or name not in _SPECS:
        raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(names())}")
    s = _SPECS[name]
    allowed = () if s.param_name is None else (s.param_name,)
    for key in params:
        if key not in allowed:
            what = f"parameters: {', '.join(allowed)}" if allowed else "no parameters"
            raise ValueError(f"activation {name!r} got unknown parameter {key!r}; it takes {what}")
    param = None
    if s.param_name is not None and s.param_name in params:
        param = params[s.param_name]
        if isinstance(param, bool) or not isinstance(param, (int, float, np.integer, np.floating)) \
                or not math.isfinite(param):
            raise ValueError(f"activation {name!r}: {s.param_name} must be a finite number, "
                             f"got {param!r}")
    return _make(s, param)
