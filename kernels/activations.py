"""Activation functions for the kernels: scalar definitions, integer codes, array dispatch.

Each activation ``foo`` is three scalar functions of ``(x, param)``:

- ``foo(x, param)``            sigma(x)
- ``foo_derivative(x, param)`` sigma'(x) (almost everywhere; at a kink the right-continuous
                               or conventional value, see ``KINKS``)
- ``foo_second(x, param)``     sigma''(x) almost everywhere (0 on the linear pieces of
                               kinked functions; the delta terms at kinks are not included)

``param`` is the activation's one parameter (``leaky_relu``'s slope); activations without a
parameter ignore it. The scalar functions are inlined at Numba-IR level into the array loops
below so that each loop body is straight-line code that LLVM can vectorise.

The Python registry (``mcsim.activations``) is built from ``SPECS`` and compiles numpy ufuncs
from the same scalar functions, so every definition exists exactly once.

How to add an activation ``foo`` (all in this file):

1. write ``foo``, ``foo_derivative``, ``foo_second`` (``@inline``, float64 in and out);
2. add a code ``FOO = <next integer>`` and one ``ActivationSpec`` row to ``SPECS``
   (name, code, functions, parameter name/default, kinks, scale invariance);
3. add one ``elif code == FOO:`` line to ``_dispatch``.

``tests/test_activations.py`` checks that every row of ``SPECS`` is dispatched by
``activate`` (so a forgotten step 3 fails the tests).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from . import vmath
from .jit import inline, kernel

__all__ = [
    "LINEAR", "RELU", "LEAKY_RELU", "TANH", "SIGMOID", "SOFTPLUS", "SIN", "ERF", "GELU",
    "SWISH", "PERCEPTRON",
    "ActivationSpec", "SPECS",
    "activate", "activate_derivative", "activate_second",
]

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


# --------------------------------------------------------------------------------------
# scalar definitions
# --------------------------------------------------------------------------------------
@inline
def linear(x, param):
    return x


@inline
def linear_derivative(x, param):
    return 1.0


@inline
def linear_second(x, param):
    return 0.0


@inline
def relu(x, param):
    # written so that NaN propagates (NaN < 0 is false)
    return 0.0 if x < 0.0 else x


@inline
def relu_derivative(x, param):
    return 1.0 if x > 0.0 else 0.0


@inline
def relu_second(x, param):
    return 0.0


@inline
def leaky_relu(x, param):
    return param * x if x < 0.0 else x


@inline
def leaky_relu_derivative(x, param):
    return 1.0 if x > 0.0 else param


@inline
def leaky_relu_second(x, param):
    return 0.0


@inline
def _sech2(x):
    # sech(x)^2 = 4 e / (1 + e)^2 with e = exp(-2|x|): no cancellation (1 - tanh^2 has it
    # for large |x|) and no overflow.
    e = vmath.exp(-2.0 * abs(x))
    d = 1.0 + e
    return 4.0 * e / (d * d)


@inline
def tanh(x, param):
    return vmath.tanh(x)


@inline
def tanh_derivative(x, param):
    return _sech2(x)


@inline
def tanh_second(x, param):
    return -2.0 * vmath.tanh(x) * _sech2(x)


@inline
def _sigmoid_pair(x):
    # (sigmoid(x), sigmoid(-x)) = (s, 1 - s), both to full relative precision: one exp of
    # a non-positive argument, never 1 - s computed by subtraction.
    e = vmath.exp(-abs(x))
    r = 1.0 / (1.0 + e)
    if x >= 0.0:
        return r, e * r
    return e * r, r


@inline
def sigmoid(x, param):
    s, _ = _sigmoid_pair(x)
    return s


@inline
def sigmoid_derivative(x, param):
    s, t = _sigmoid_pair(x)
    return s * t


@inline
def sigmoid_second(x, param):
    s, t = _sigmoid_pair(x)
    return s * t * (t - s)


@inline
def softplus(x, param):
    # log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}): no overflow, full precision for x << 0.
    return (x if x > 0.0 else 0.0) + vmath.log1p_unit(vmath.exp(-abs(x)))


@inline
def softplus_derivative(x, param):
    s, _ = _sigmoid_pair(x)
    return s


@inline
def softplus_second(x, param):
    s, t = _sigmoid_pair(x)
    return s * t


@inline
def sin(x, param):
    return vmath.sin(x)


@inline
def sin_derivative(x, param):
    return vmath.cos(x)


@inline
def sin_second(x, param):
    return -vmath.sin(x)


# sin restricted to arguments where vmath.sin does not fall back to libm (|x| <= ~1.6e6,
# inf, NaN): the same values, but loops over them vectorise. `_dispatch` uses them when
# every element of the array qualifies.
@inline
def _sin_reduced(x, param):
    return vmath.sin_reduced(x)


@inline
def _sin_reduced_derivative(x, param):
    return vmath.cos_reduced(x)


@inline
def _sin_reduced_second(x, param):
    return -vmath.sin_reduced(x)


@inline
def erf(x, param):
    return vmath.erf(x)


@inline
def erf_derivative(x, param):
    return _TWO_OVER_SQRT_PI * vmath.exp(-x * x)


@inline
def erf_second(x, param):
    return -2.0 * x * _TWO_OVER_SQRT_PI * vmath.exp(-x * x)


@inline
def _phi(x):
    # standard normal density
    return _INV_SQRT_2PI * vmath.exp(-0.5 * x * x)


@inline
def _Phi(x):
    # standard normal CDF erfc(-x / sqrt 2) / 2, erfc's relative precision in the lower tail
    # (NaN gives some value in [0, 1]: the GELU expressions multiply it by x)
    return vmath.normal_cdf(x)


@inline
def gelu(x, param):
    # exact GELU x * Phi(x) (not the tanh approximation)
    return x * _Phi(x)


@inline
def gelu_derivative(x, param):
    return _Phi(x) + x * _phi(x)


@inline
def gelu_second(x, param):
    return _phi(x) * (2.0 - x * x)


@inline
def swish(x, param):
    s, _ = _sigmoid_pair(x)
    return x * s


@inline
def swish_derivative(x, param):
    s, t = _sigmoid_pair(x)
    return s * (1.0 + x * t)


@inline
def swish_second(x, param):
    s, t = _sigmoid_pair(x)
    return s * t * (2.0 + x * (t - s))


@inline
def perceptron(x, param):
    return 1.0 if x > 0.0 else 0.0


@inline
def perceptron_derivative(x, param):
    return 0.0


@inline
def perceptron_second(x, param):
    return 0.0


# --------------------------------------------------------------------------------------
# codes and the table the Python registry is built from
# --------------------------------------------------------------------------------------
LINEAR = 0
RELU = 1
LEAKY_RELU = 2
TANH = 3
SIGMOID = 4
SOFTPLUS = 5
SIN = 6
ERF = 7
GELU = 8
SWISH = 9
PERCEPTRON = 10


class ActivationSpec(NamedTuple):
    """One row of the activation table.

    ``param_name`` is the name of the parameter in configurations (``None``: no parameter,
    the kernels get ``param_default``, which they ignore). ``kinks`` are the x where sigma or
    sigma' is not smooth. ``scale_invariant``: sigma(lambda x) = lambda sigma(x) for
    lambda > 0 (the universality class of ReLU-like activations).
    """

    name: str
    code: int
    value: Callable
    derivative: Callable
    second: Callable
    param_name: str | None = None
    param_default: float = 0.0
    kinks: tuple = ()
    scale_invariant: bool = False


SPECS = (
    ActivationSpec("linear", LINEAR, linear, linear_derivative, linear_second,
                   scale_invariant=True),
    ActivationSpec("relu", RELU, relu, relu_derivative, relu_second,
                   kinks=(0.0,), scale_invariant=True),
    ActivationSpec("leaky_relu", LEAKY_RELU, leaky_relu, leaky_relu_derivative,
                   leaky_relu_second, param_name="slope", param_default=0.01,
                   kinks=(0.0,), scale_invariant=True),
    ActivationSpec("tanh", TANH, tanh, tanh_derivative, tanh_second),
    ActivationSpec("sigmoid", SIGMOID, sigmoid, sigmoid_derivative, sigmoid_second),
    ActivationSpec("softplus", SOFTPLUS, softplus, softplus_derivative, softplus_second),
    ActivationSpec("sin", SIN, sin, sin_derivative, sin_second),
    ActivationSpec("erf", ERF, erf, erf_derivative, erf_second),
    ActivationSpec("gelu", GELU, gelu, gelu_derivative, gelu_second),
    ActivationSpec("swish", SWISH, swish, swish_derivative, swish_second),
    ActivationSpec("perceptron", PERCEPTRON, perceptron, perceptron_derivative,
                   perceptron_second, kinks=(0.0,)),
)


# --------------------------------------------------------------------------------------
# array dispatch
# --------------------------------------------------------------------------------------
# Three element loops, one per derivative order. `_dispatch` gets one of them as a
# compile-time function argument, so each public kernel below contains only its own loops
# (a runtime `order` flag would compile all three per activation: twice the compile time).
# Each loop is a plain dst[i] = f(src[i]) that LLVM vectorises: the scalar functions use
# kernels.vmath instead of libm (see docs/performance.md, "Activations").
#
# The loop always runs in place, on dst alone: an out-of-place call first copies src into
# dst. (i) With two array arguments LLVM cannot know whether they coincide; it guards the
# vector loop with a runtime overlap check, which fails for identical buffers (markov calls
# activate in place), and runs the scalar remainder loop instead: 4.7 instead of 0.8 ns per
# element for tanh. (ii) One loop per activation means one compiled instance, so in-place
# and out-of-place calls give bitwise the same results (two loops are optimised separately
# under `reassoc` / `contract` and can differ in the last bit). The copy costs ~0.05 ns per
# element. src and dst must be the same array or not overlap at all.
@inline
def _to_dst(src, dst):
    if not (src.ctypes.data == dst.ctypes.data and src.strides[0] == dst.strides[0]):
        for i in range(src.shape[0]):
            dst[i] = src[i]


@inline
def _map_value(f, df, d2f, param, src, dst):
    _to_dst(src, dst)
    for i in range(dst.shape[0]):
        dst[i] = f(dst[i], param)


@inline
def _map_derivative(f, df, d2f, param, src, dst):
    _to_dst(src, dst)
    for i in range(dst.shape[0]):
        dst[i] = df(dst[i], param)


@inline
def _map_second(f, df, d2f, param, src, dst):
    _to_dst(src, dst)
    for i in range(dst.shape[0]):
        dst[i] = d2f(dst[i], param)


@inline
def _all_trig_reducible(src):
    # vectorised count of the elements for which vmath.sin would call libm
    n_far = 0
    for i in range(src.shape[0]):
        n_far += 0 if vmath.trig_reducible(src[i]) else 1
    return n_far == 0


@inline
def _dispatch(code, mapper, param, src, dst):
    # The one if-chain on the activation code (evaluated once per array, not per element).
    # `mapper` is one of the _map_* loops above.
    if code == LINEAR:
        mapper(linear, linear_derivative, linear_second, param, src, dst)
    elif code == RELU:
        mapper(relu, relu_derivative, relu_second, param, src, dst)
    elif code == LEAKY_RELU:
        mapper(leaky_relu, leaky_relu_derivative, leaky_relu_second, param, src, dst)
    elif code == TANH:
        mapper(tanh, tanh_derivative, tanh_second, param, src, dst)
    elif code == SIGMOID:
        mapper(sigmoid, sigmoid_derivative, sigmoid_second, param, src, dst)
    elif code == SOFTPLUS:
        mapper(softplus, softplus_derivative, softplus_second, param, src, dst)
    elif code == SIN:
        if _all_trig_reducible(src):
            mapper(_sin_reduced, _sin_reduced_derivative, _sin_reduced_second, param, src, dst)
        else:
            mapper(sin, sin_derivative, sin_second, param, src, dst)
    elif code == ERF:
        mapper(erf, erf_derivative, erf_second, param, src, dst)
    elif code == GELU:
        mapper(gelu, gelu_derivative, gelu_second, param, src, dst)
    elif code == SWISH:
        mapper(swish, swish_derivative, swish_second, param, src, dst)
    elif code == PERCEPTRON:
        mapper(perceptron, perceptron_derivative, perceptron_second, param, src, dst)
    else:
        raise ValueError("unknown activation code")


@kernel
def activate(code, param, src, dst):
    """``dst[i] = sigma(src[i])`` for 1-d float64 arrays of equal length (in place allowed:
    ``src`` and ``dst`` the same array; otherwise they must not overlap)."""
    _dispatch(code, _map_value, param, src, dst)


@kernel
def activate_derivative(code, param, src, dst):
    """``dst[i] = sigma'(src[i])`` for 1-d float64 arrays of equal length (in place allowed)."""
    _dispatch(code, _map_derivative, param, src, dst)


@kernel
def activate_second(code, param, src, dst):
    """``dst[i] = sigma''(src[i])`` (almost everywhere) for 1-d float64 arrays."""
    _dispatch(code, _map_second, param, src, dst)
