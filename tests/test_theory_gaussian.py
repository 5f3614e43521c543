"""Gaussian expectations: quadrature against closed forms and 1-d adaptive integration,
Price's theorem against finite differences, the higher-derivative table against the registry."""
import numpy as np
import pytest
from scipy import integrate

from mcsim.activations import get_activation, names
from mcsim.theory import gaussian as G
from mcsim.theory.quadrature import expect, gaussian_grid, pivoted_cholesky

K3 = np.array([[1.2, 0.5, -0.3], [0.5, 0.8, 0.2], [-0.3, 0.2, 1.5]])
# strongly correlated pair (rho = 0.9995) and a semidefinite one (x3 = x1 + x2)
X = np.array([[1.0, 0.3, 0.0], [1.0, 0.33, 0.0], [0.2, -0.4, 1.0]])
K_CORR = X @ X.T / 3
Y = np.array([[1.0, 0.2], [-0.3, 0.9], [0.7, 1.1]])
K_SEMI = Y @ Y.T / 2                     # rank 2, k = 3

CLOSED = ["linear", "relu", {"name": "leaky_relu", "slope": 0.2}, "perceptron", "erf", "sin"]


def _quad1d(f, K):
    s = np.sqrt(K)
    g = lambda u: f(s * u) * np.exp(-u * u / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    return sum(integrate.quad(g, a, b, epsabs=0, epsrel=1e-13, limit=500)[0]
               for a, b in [(-40, 0), (0, 40)])


def test_grid_weights_and_moments_semidefinite():
    for K in (K3, K_CORR, K_SEMI, np.zeros((2, 2))):
        z, w = gaussian_grid(K, (0.0,))
        assert w.sum() == pytest.approx(1.0, abs=1e-13)
        np.testing.assert_allclose((w[:, None, None] * z[:, :, None] * z[:, None, :]).sum(0), K,
                                   atol=1e-13)
    L = pivoted_cholesky(K_SEMI)
    assert L.shape == (3, 2)
    np.testing.assert_allclose(L @ L.T, K_SEMI, atol=1e-14)


@pytest.mark.parametrize("spec", CLOSED, ids=str)
@pytest.mark.parametrize("K", [K3, K_CORR, K_SEMI], ids=["generic", "rho~1", "semidefinite"])
def test_quadrature_matches_closed_forms(spec, K):
    act = get_activation(spec)
    np.testing.assert_allclose(G.two_point(act, K, closed=False), G.two_point(act, K),
                               rtol=1e-11, atol=1e-13)
    if not G.is_discontinuous(act):
        np.testing.assert_allclose(G.derivative_two_point(act, K, closed=False),
                                   G.derivative_two_point(act, K), rtol=1e-10, atol=1e-12)


def test_closed_forms_known_values():
    relu = get_activation("relu")
    K = np.array([[2.0, 0.0], [0.0, 3.0]])
    M = G.two_point(relu, K)
    assert M[0, 0] == pytest.approx(1.0) and M[1, 1] == pytest.approx(1.5)
    assert M[0, 1] == pytest.approx(np.sqrt(6) / (2 * np.pi))        # <relu><relu>
    assert G.two_point(get_activation("perceptron"), K)[0, 1] == pytest.approx(0.25)
    assert G.four_point(relu, [[2.0]])[0, 0, 0, 0] == pytest.approx(1.5 * 4.0, rel=1e-12)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "gelu", "swish", "erf", "sin"])
@pytest.mark.parametrize("K", [0.05, 1.0, 10.0])
def test_smooth_one_dimensional_accuracy(name, K):
    """1e-10 relative (measured ~1e-14) against adaptive quadrature, also at large variance."""
    act = get_activation(name)
    for power in (2, 4):
        ref = _quad1d(lambda z: act.value(z) ** power, K)
        got = expect(lambda z: act.value(z[:, 0]) ** power, [[K]])
        assert got == pytest.approx(ref, rel=1e-10, abs=1e-300)


def test_smooth_two_dimensional_accuracy():
    tanh = get_activation("tanh")
    K = np.array([[1.0, 0.8], [0.8, 1.3]])
    ref = expect(lambda z: np.tanh(z[:, 0]) * np.tanh(z[:, 1]), K, method="hermite", q=400)
    assert G.two_point(tanh, K)[0, 1] == pytest.approx(ref, rel=1e-12)
    # erf closed form (Williams) at strong correlation
    erf = get_activation("erf")
    np.testing.assert_allclose(G.two_point(erf, K_CORR, closed=False), G.two_point(erf, K_CORR),
                               rtol=1e-12)


def test_four_point_against_wick_and_lower_rules():
    lin = get_activation("linear")
    K = K3
    ref = G.four_point(lin, K)                     # Wick
    quad = G._moments(lin.value, K, 4, (0.0,), None)
    np.testing.assert_allclose(quad, ref, rtol=1e-10, atol=1e-12)
    relu = get_activation("relu")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 3))
    K4 = x @ x.T / 3 + 0.1
    M4 = G.four_point(relu, K4)
    assert M4.shape == (4,) * 4
    for perm in [(1, 0, 3, 2), (3, 2, 1, 0), (2, 0, 1, 3)]:
        assert np.allclose(M4, M4.transpose(perm))
    # 4 distinct inputs at the default order against a finer rule: ~1e-7
    finer = expect(lambda z: np.prod(np.maximum(z, 0), axis=1), K4, (0.0,), q=9)
    assert M4[0, 1, 2, 3] == pytest.approx(finer, rel=1e-6)
    # entries over two inputs agree with the 2-d closed-form-tested rule
    two = expect(lambda z: np.maximum(z[:, 0], 0) ** 2 * np.maximum(z[:, 1], 0) ** 2,
                 K4[:2, :2], (0.0,), q=16)
    assert M4[0, 0, 1, 1] == pytest.approx(two, rel=1e-12)


def _fd_checks(act, K, method=None):
    """Largest errors of J and H against central differences of M2 and of J."""
    J, H = G.two_point_jacobian(act, K, method=method)
    k = K.shape[0]
    errJ = errH = 0.0
    for c in range(k):
        for d in range(c, k):
            E = np.zeros((k, k))
            E[c, d] = E[d, c] = 1.0
            h = 1e-4
            fd = (G.two_point(act, K + h * E) - G.two_point(act, K - h * E)) / (2 * h)
            an = J[:, :, c, d] + (J[:, :, d, c] if c != d else 0)
            errJ = max(errJ, np.abs(fd - an).max())
            h = 1e-3
            Jp = G.two_point_jacobian(act, K + h * E, second=False, method=method)[0]
            Jm = G.two_point_jacobian(act, K - h * E, second=False, method=method)[0]
            an = H[..., c, d] + (H[..., d, c] if c != d else 0)
            errH = max(errH, np.abs((Jp - Jm) / (2 * h) - an).max())
    return errJ, errH


@pytest.mark.parametrize("name", list(names()) + ["leaky_relu:0.2"])
def test_price_derivatives_against_finite_differences(name):
    """J = dM2/dK and H = d2M2/dK2 (Price's theorem, closed forms or integration by parts)
    against central differences: truncation h^2 ~ 1e-8 (J) and 1e-6 (H)."""
    spec = {"name": "leaky_relu", "slope": 0.2} if name.startswith("leaky") else name
    act = get_activation(spec)
    errJ, errH = _fd_checks(act, K3)
    assert errJ < 1e-7 and errH < 2e-5


@pytest.mark.parametrize("name", ["relu", "tanh", "gelu", "perceptron", "sin"])
def test_derivative_methods_agree(name):
    """Closed / Price forms against integration by parts with the inverse 2x2 block."""
    act = get_activation(name)
    J, H = G.two_point_jacobian(act, K3)
    J2, H2 = G.two_point_jacobian(act, K3, method="parts")
    np.testing.assert_allclose(J, J2, atol=1e-11)
    np.testing.assert_allclose(H, H2, atol=1e-9)


def test_jacobian_structure_and_independent_entry_convention():
    act = get_activation("tanh")
    J, H = G.two_point_jacobian(act, K3)
    # <s0 s1> depends only on the block {0, 1}
    assert np.all(J[0, 1, 2, :] == 0) and np.all(H[0, 1, :, :, 2, :] == 0)
    # symmetric in (a, b), (c, d), and (cd) <-> (ef)
    assert np.allclose(J, J.transpose(1, 0, 2, 3)) and np.allclose(J, J.transpose(0, 1, 3, 2))
    assert np.allclose(H, H.transpose(0, 1, 4, 5, 2, 3))
    # Price: d<s0 s1>/dK_01 = (1/2) <s0' s1'>
    D = G.derivative_two_point(act, K3)
    assert J[0, 1, 0, 1] == pytest.approx(0.5 * D[0, 1], rel=1e-12)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "sin", "erf", "gelu", "swish"])
def test_higher_derivative_table_matches_registry(name):
    act = get_activation(name)
    x = np.linspace(-4, 4, 81) + 0.01
    h = 1e-4
    d = G.higher_derivatives(act, x)
    dp, dm = G.higher_derivatives(act, x + h), G.higher_derivatives(act, x - h)
    np.testing.assert_allclose(d[0], act.value(x), rtol=1e-14)
    for order in (3, 4):
        fd = (dp[order - 1] - dm[order - 1]) / (2 * h)
        np.testing.assert_allclose(d[order], fd, rtol=1e-6, atol=1e-7)


def test_kinked_derivatives_diverge_at_correlation_one():
    relu = get_activation("relu")
    K = np.array([[1.0, 1.0], [1.0, 1.0]])
    _, H = G.two_point_jacobian(relu, K)
    assert not np.all(np.isfinite(H))
