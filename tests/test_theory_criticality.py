"""Susceptibilities, fixed points, critical tuning and universality classes."""
import numpy as np
import pytest
from scipy import integrate, special

from mcsim.cli import main
from mcsim.theory.criticality import (chi_parallel, chi_perpendicular, find_criticality,
                                      fixed_points, kernel_map)


@pytest.mark.parametrize("name,C_W", [("relu", 2.0), ("linear", 1.0),
                                      ({"name": "leaky_relu", "slope": 0.2}, 2 / 1.04)])
def test_scale_invariant(name, C_W):
    c = find_criticality(name)
    assert c.universality == "scale-invariant"
    p = c.critical
    assert (p.C_b, p.C_W) == (0.0, pytest.approx(C_W, rel=1e-12))
    assert p.chi_par == pytest.approx(1) and p.chi_perp == pytest.approx(1)


@pytest.mark.parametrize("name,C_W,a1", [("tanh", 1.0, -2.0), ("erf", np.pi / 4, -2.0),
                                         ("sin", 1.0, -1.0)])
def test_k_star_zero(name, C_W, a1):
    c = find_criticality(name)
    assert c.universality == "K*=0"
    p = c.critical
    assert (p.C_b, p.C_W, p.K_star) == (0.0, pytest.approx(C_W, rel=1e-12), 0.0)
    assert c.details["a1"] == pytest.approx(a1, rel=1e-12)
    # chi -> 1 as K -> 0 at the critical C_W
    assert chi_parallel(name, 1e-6, C_W) == pytest.approx(1, abs=1e-4)
    assert chi_perpendicular(name, 1e-6, C_W) == pytest.approx(1, abs=1e-4)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "perceptron"])
def test_none(name):
    c = find_criticality(name)
    assert c.universality == "none" and c.critical is None and c.reason


def _expect(f, K):
    g = lambda u: f(np.sqrt(K) * u) * np.exp(-u * u / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    return integrate.quad(g, -40, 40, epsabs=0, epsrel=1e-13, limit=400)[0]


def test_gelu_half_stable_point_verified_independently():
    """GELU has no class but a K* > 0 point with chi_par = chi_perp = 1 (book section 5.3.4),
    checked with scipy's adaptive quadrature."""
    c = find_criticality("gelu")
    assert c.universality == "none"
    (p,) = [q for q in c.points if q.kind == "K*>0"]
    gelu = lambda x: x * special.ndtr(x)                                       # noqa: E731
    dgelu = lambda x: special.ndtr(x) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    fixed = p.C_b + p.C_W * _expect(lambda x: gelu(x) ** 2, p.K_star)
    assert fixed == pytest.approx(p.K_star, rel=1e-9)
    assert p.C_W * _expect(lambda x: dgelu(x) ** 2, p.K_star) == pytest.approx(1, rel=1e-9)
    assert p.chi_par == pytest.approx(1, rel=1e-8)
    assert (p.C_b, p.C_W, p.K_star) == (pytest.approx(0.17292239, rel=1e-6),
                                        pytest.approx(1.98305826, rel=1e-6),
                                        pytest.approx(3.5615528, rel=1e-6))


def test_fixed_points_and_susceptibilities():
    (K, chi), = fixed_points("tanh", 1.5, 0.1)
    assert kernel_map("tanh", K, 1.5, 0.1) == pytest.approx(K, rel=1e-12)
    assert 0 < chi < 1                                       # stable
    assert chi_parallel("relu", 0.7, 2.0) == pytest.approx(1.0)
    assert chi_perpendicular("relu", 0.7, 2.0) == pytest.approx(1.0)
    assert fixed_points("relu", 2.0, 0.0)[0][1] == pytest.approx(1.0)


def test_cli_criticality(capsys):
    assert main(["theory", "criticality", "relu"]) == 0
    out = capsys.readouterr().out
    assert "scale-invariant" in out and "C_W = 2" in out and "C_b = 0" in out
    assert main(["theory", "criticality", "tanh"]) == 0
    out = capsys.readouterr().out
    assert "K*=0" in out and "C_W = 1," in out
    assert main(["theory", "criticality", "leaky_relu", "--param", "0.5"]) == 0
    assert "slope=0.5" in capsys.readouterr().out
    assert main(["theory", "criticality", "nonesuch"]) == 2
    assert main(["theory", "criticality"]) == 2
