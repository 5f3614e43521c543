"""Activation registry and kernels: values, derivatives, dispatch, errors."""

import numpy as np
import pytest
from scipy import special

from mcsim.activations import ACTIVATIONS, Activation, get_activation, names
from mcsim.kernels import activations as K

X = np.linspace(-6.0, 6.0, 241) + 0.013  # avoids the kinks at 0 exactly

REFERENCE = {
    "linear": lambda x, p: x,
    "relu": lambda x, p: np.maximum(x, 0.0),
    "leaky_relu": lambda x, p: np.where(x > 0, x, p * x),
    "tanh": lambda x, p: np.tanh(x),
    "sigmoid": lambda x, p: special.expit(x),
    "softplus": lambda x, p: np.logaddexp(0.0, x),
    "sin": lambda x, p: np.sin(x),
    "erf": lambda x, p: special.erf(x),
    "gelu": lambda x, p: x * special.ndtr(x),
    "swish": lambda x, p: x * special.expit(x),
    "perceptron": lambda x, p: (x > 0).astype(float),
}


def test_registry_complete_and_ordered():
    assert set(names()) == set(REFERENCE)
    assert list(names()) == [s.name for s in sorted(K.SPECS, key=lambda s: s.code)]
    assert len({s.code for s in K.SPECS}) == len(K.SPECS)
    for name, act in ACTIVATIONS.items():
        assert isinstance(act, Activation) and act.name == name


@pytest.mark.parametrize("name", list(REFERENCE))
def test_values_match_numpy(name):
    act = get_activation(name)
    np.testing.assert_allclose(act.value(X), REFERENCE[name](X, act.param), rtol=1e-14,
                               atol=1e-15)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_derivatives_finite_differences(name):
    act = get_activation(name)
    x = X[np.min(np.abs(X[:, None] - np.array(act.kinks or [1e9])[None, :]), axis=1) > 1e-3]
    h = 1e-5
    fd1 = (act.value(x + h) - act.value(x - h)) / (2 * h)
    np.testing.assert_allclose(act.derivative(x), fd1, rtol=1e-7, atol=1e-8)
    fd2 = (act.derivative(x + h) - act.derivative(x - h)) / (2 * h)
    np.testing.assert_allclose(act.second_derivative(x), fd2, rtol=1e-6, atol=1e-7)


def test_kinked_conventions():
    relu = get_activation("relu")
    assert relu.derivative(0.0) == 0.0 and relu.derivative(1e-300) == 1.0
    leaky = get_activation({"name": "leaky_relu", "slope": 0.2})
    assert leaky.param == 0.2 and leaky.value(-2.0) == pytest.approx(-0.4)
    assert leaky.derivative(-1.0) == 0.2
    perc = get_activation("perceptron")
    assert perc.value(0.0) == 0.0 and perc.value(1e-300) == 1.0 and perc.derivative(3.0) == 0
    assert [a.name for a in ACTIVATIONS.values() if a.scale_invariant] == \
        ["linear", "relu", "leaky_relu"]
    assert relu.kinks == (0.0,) and not relu.smooth and get_activation("tanh").smooth


def test_extreme_arguments_are_finite_and_accurate():
    big = np.array([-1000.0, -40.0, 40.0, 1000.0])
    for name in names():
        act = get_activation(name)
        if name == "linear":
            continue
        for f in (act.value, act.derivative, act.second_derivative):
            assert np.all(np.isfinite(f(big))), name
    sig = get_activation("sigmoid")
    assert sig.value(-40.0) == pytest.approx(special.expit(-40.0), rel=1e-14)
    assert get_activation("softplus").value(-40.0) == pytest.approx(np.exp(-40.0), rel=1e-14)
    assert get_activation("tanh").derivative(30.0) == pytest.approx(1 / np.cosh(30.0) ** 2,
                                                                    rel=1e-13)


@pytest.mark.parametrize("spec", K.SPECS, ids=lambda s: s.name)
def test_array_dispatch_matches_ufuncs(spec):
    # every row of the kernel table is reachable through activate*
    act = get_activation(spec.name)
    param = 0.3 if spec.param_name else spec.param_default
    act = get_activation({"name": spec.name, spec.param_name: param}) if spec.param_name else act
    for kern, uf in ((K.activate, act.value), (K.activate_derivative, act.derivative),
                     (K.activate_second, act.second_derivative)):
        dst = np.empty_like(X)
        kern(spec.code, param, X, dst)
        # the kernels are compiled with FMA contraction, the ufuncs without: last-bit
        # differences (relative ones only near zeros of the function)
        np.testing.assert_allclose(dst, uf(X), rtol=1e-13, atol=1e-15)
    inplace = X.copy()
    K.activate(spec.code, param, inplace, inplace)
    np.testing.assert_allclose(inplace, act.value(X), rtol=1e-13, atol=1e-15)


def test_unknown_activation_code_raises():
    with pytest.raises(ValueError):
        K.activate(999, 0.0, X, np.empty_like(X))


def test_spec_forms_and_errors():
    assert get_activation("relu") == ACTIVATIONS["relu"]
    assert get_activation({"name": "relu"}) == ACTIVATIONS["relu"]
    a = get_activation({"name": "leaky_relu", "slope": 0.1})
    assert get_activation(a) is a and a.spec() == {"name": "leaky_relu", "slope": 0.1}
    assert ACTIVATIONS["leaky_relu"].param == 0.01
    with pytest.raises(ValueError, match="allowed: linear, relu"):
        get_activation("rleu")
    with pytest.raises(ValueError, match="no parameters"):
        get_activation({"name": "relu", "slope": 0.1})
    with pytest.raises(ValueError, match="slope"):
        get_activation({"name": "leaky_relu", "alpha": 0.1})
    with pytest.raises(ValueError, match="finite"):
        get_activation({"name": "leaky_relu", "slope": float("inf")})
    with pytest.raises(ValueError, match="finite"):
        get_activation({"name": "leaky_relu", "slope": True})
    with pytest.raises(ValueError, match="name"):
        get_activation({"slope": 0.1})
    with pytest.raises(TypeError):
        get_activation(3)
