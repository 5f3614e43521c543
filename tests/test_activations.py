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


# --------------------------------------------------------------------------------------
# accuracy of the vectorisable elementary functions (kernels/vmath.py) and of the array
# kernels built on them; limits are the measured maxima (docs/performance.md, "Activations")
# --------------------------------------------------------------------------------------
import numba  # noqa: E402

from mcsim.kernels import vmath  # noqa: E402
from mcsim.kernels.jit import FASTMATH, kernel  # noqa: E402

_RNG = np.random.default_rng(20240611)

#: dense grid, random normals, log-uniform magnitudes over the whole double range, edges
WIDE = np.concatenate([
    np.linspace(-40.0, 40.0, 200001),
    _RNG.standard_normal(100000) * 3.0,
    np.exp(_RNG.uniform(-745.0, 709.0, 100000)) * _RNG.choice([-1.0, 1.0], 100000),
    np.array([0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 1e-20, 1e-8, 0.625,
              -0.625, 0.84375, -0.84375, 1.25, -1.25, 1 / 0.35, -1 / 0.35, 6.0, -6.0,
              19.1, -19.1, 22.0, 28.0, -28.0, 37.0, 700.0, 709.78, 709.79, 710.0, -708.0,
              -745.1, -745.2, -746.0, 1e300, -1e300, 1.7976931348623157e308,
              -1.7976931348623157e308]),
])
SPECIAL = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0])


def _ulps(got, ref):
    """|got - ref| in units of ref's last place, where ref is finite and non-zero."""
    got, ref = np.asarray(got, float), np.asarray(ref, float)
    ok = np.isfinite(ref) & (ref != 0.0)
    return np.abs(got[ok] - ref[ok]) / np.spacing(np.abs(ref[ok]))


def _fast_loop(f):
    # f applied in a loop compiled like the kernels (fast-math flags), not cached
    @kernel(cache=False)
    def loop(src, dst):
        for i in range(src.shape[0]):
            dst[i] = f(src[i])

    def call(x):
        out = np.empty_like(x)
        loop(x, out)
        return out
    return call


def _plain_ufunc(f):
    # the same Python source compiled without fast-math (as mcsim.activations does)
    return numba.vectorize(["float64(float64)"], nopython=True)(f.py_func)


VMATH_CASES = {  # name: (function, reference, max ulp, domain filter)
    "exp": (vmath.exp, np.exp, 1, None),
    "tanh": (vmath.tanh, np.tanh, 2, None),
    "erf": (vmath.erf, special.erf, 3, None),
    # scipy's erfc itself is off by up to ~20 ulp for x in [0.8, 5] and ~500 ulp in the upper
    # tail (exp(-x^2) of a rounded x^2): a loose check here, the 3-ulp bound against mpmath
    "erfc": (vmath.erfc, special.erfc, 24, lambda x: x < 5.0),
    "sin": (vmath.sin, np.sin, 1, None),
    "cos": (vmath.cos, np.cos, 2, None),
}


@pytest.mark.parametrize("name", list(VMATH_CASES))
@pytest.mark.parametrize("build", ["fastmath", "plain"])
def test_vmath_accuracy(name, build):
    f, ref, max_ulp, domain = VMATH_CASES[name]
    x = WIDE if domain is None else WIDE[domain(WIDE)]
    g = _fast_loop(f) if build == "fastmath" else _plain_ufunc(f)
    with np.errstate(all="ignore"):
        got, want = g(x), ref(x)
        # no NaN from finite input, same inf / zero pattern as the reference
        assert not np.any(np.isnan(got)), name
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        np.testing.assert_array_equal(got[want == 0.0], 0.0)
        assert _ulps(got, want).max() <= max_ulp, (name, build, _ulps(got, want).max())
        sp = g(SPECIAL)
        np.testing.assert_array_equal(sp, ref(SPECIAL))   # inf / NaN like numpy


def test_vmath_log1p_unit():
    x = np.concatenate([np.linspace(0.0, 1.0, 100001), _RNG.uniform(0.0, 1.0, 100000),
                        np.exp(_RNG.uniform(-745.0, 0.0, 100000)),
                        [5e-324, 0.41421356237309503, 0.41421356237309515, 0.5]])
    for g in (_fast_loop(vmath.log1p_unit), _plain_ufunc(vmath.log1p_unit)):
        assert _ulps(g(x), np.log1p(x)).max() <= 3
        assert np.isnan(g(np.array([np.nan])))[0]


def test_vmath_erfc_tail_against_mpmath():
    mpmath = pytest.importorskip("mpmath")
    x = np.concatenate([_RNG.uniform(-6.0, 26.5, 1500), _RNG.uniform(4.0, 26.5, 1500),
                        _RNG.uniform(-1.3, 1.3, 1500), _RNG.uniform(1.25, 5.0, 1500)])
    with mpmath.workdps(40):
        want = np.array([float(mpmath.erfc(mpmath.mpf(float(v)))) for v in x])
    got = _fast_loop(vmath.erfc)(x)
    normal = want > np.finfo(float).tiny
    assert _ulps(got[normal], want[normal]).max() <= 3
    np.testing.assert_allclose(got[~normal], want[~normal], rtol=0, atol=1e-323)


def test_vmath_trig_far_arguments_use_libm():
    x = np.array([vmath.TRIG_MAX, np.nextafter(vmath.TRIG_MAX, np.inf), 1e7, -3e9, 1e300])
    np.testing.assert_array_equal(_fast_loop(vmath.sin)(x)[1:], np.sin(x[1:]))
    np.testing.assert_array_equal(_fast_loop(vmath.cos)(x)[1:], np.cos(x[1:]))
    assert _ulps(_fast_loop(vmath.sin)(x[:1]), np.sin(x[:1])).max() <= 1
    # near multiples of pi/2 (cancellation in the reduction): absolute error ~ulp(1)
    k = np.arange(1, 200001, 7, dtype=float)
    y = np.concatenate([k * (np.pi / 2), np.nextafter(k * (np.pi / 2), np.inf)])
    np.testing.assert_allclose(_fast_loop(vmath.sin)(y), np.sin(y), rtol=2.3e-16, atol=2e-22)
    np.testing.assert_allclose(_fast_loop(vmath.cos)(y), np.cos(y), rtol=2.3e-16, atol=2e-22)


SMOOTH = ["tanh", "sigmoid", "softplus", "sin", "erf", "gelu", "swish"]

#: (value, derivative) references; derivatives written independently of the kernels
DERIV_REF = {
    # in extended precision: NumPy's double cosh is itself off by up to 4 ulp here, and by a
    # different amount where NumPy dispatches to its AVX-512 implementation
    "tanh": lambda x: (1.0 / np.cosh(x.astype(np.longdouble)) ** 2).astype(np.float64),
    "sigmoid": lambda x: special.expit(x) * special.expit(-x),
    "softplus": lambda x: special.expit(x),
    "sin": np.cos,
    "erf": lambda x: 2.0 / np.sqrt(np.pi) * np.exp(-x * x),
    "gelu": lambda x: special.ndtr(x) + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi),
    "swish": lambda x: special.expit(x) * (1.0 + x * special.expit(-x)),
}
#: max ulp of activate / activate_derivative against the references on WIDE (derivatives
#: on |x| <= 37, where the references themselves are accurate); gelu's value: see below;
#: erf's value: scipy's erf is itself off by up to 2 ulp on [0.84, 1] (the kernel is within 1
#: ulp of mpmath there, test_erf_gelu_against_mpmath), so 1 + 2 here
ACT_ULP = {"tanh": (2, 5), "sigmoid": (4, 5), "softplus": (4, 4), "sin": (1, 1),
           "erf": (3, 2), "gelu": (None, 4), "swish": (4, 4)}
#: kernel (fast-math) against ufunc (plain) build: both within the mpmath bounds, so at most
#: their sum apart (gelu: 4 + 4 in the lower tail, where the exponent's roundings differ)
BUILDS_ULP = {"gelu": 8}
#: derivatives with a zero (gelu' at -0.75, swish' at -1.28): there the sum of terms of size
#: O(1) cancels, so an absolute error of a few eps is all one can ask for
NEAR_ZERO_ATOL = {"gelu": 4.5e-16, "swish": 4.5e-16}


@pytest.mark.parametrize("name", SMOOTH)
def test_activation_kernels_accuracy(name):
    code = getattr(K, name.upper())
    x = WIDE
    v_ulp, d_ulp = ACT_ULP[name]
    with np.errstate(all="ignore"):
        dst = np.empty_like(x)
        K.activate(code, 0.0, x, dst)
        assert not np.any(np.isnan(dst)), name
        ref = REFERENCE[name](x, 0.0)
        np.testing.assert_array_equal(np.isinf(dst), np.isinf(ref))
        if v_ulp is not None:
            assert _ulps(dst, ref).max() <= v_ulp, _ulps(dst, ref).max()
        # the ufuncs (same source, compiled without fast-math) agree to a few ulp (gelu's
        # tail, where it is subnormal, excepted)
        sel = np.abs(get_activation(name).value(x)) > 1e-300
        assert _ulps(dst[sel], get_activation(name).value(x[sel])).max() <= BUILDS_ULP.get(name, 4)
        K.activate_derivative(code, 0.0, x, dst)
        assert not np.any(np.isnan(dst)), name
        sel = np.abs(x) <= 37.0
        got, dref = dst[sel], DERIV_REF[name](x[sel])
        tol = d_ulp * np.spacing(np.abs(dref)) + NEAR_ZERO_ATOL.get(name, 0.0)
        assert np.all(np.abs(got - dref) <= tol), np.max(np.abs(got - dref) / tol)


#: erf / gelu against mpmath: the bounds of kernels/vmath.py's error budget (erf 1 ulp; gelu =
#: x erfc(-x / sqrt 2) / 2: erfc's 3 ulp, the product and the halving ~1), for the kernel
#: (fast-math), the ufunc (plain), and the AVX2 and AVX-512 builds (test_erf_gelu_isa_builds)
MP_ULP = {"erf": 1, "gelu": 4}


def _mp_points():
    # the intervals of vmath's erf / erfc (0.84375, 6, 27.3), the gelu tail down to
    # underflow, and normals
    rng = np.random.default_rng(20261202)
    return np.concatenate([rng.uniform(-37.0, 8.0, 2000), rng.standard_normal(1000) * 2.0,
                           rng.uniform(-1.3, 1.3, 1000), rng.uniform(-6.5, 6.5, 1000),
                           [0.0, 1e-300, 1e-17, 0.84375, -0.84375, 1.1932426932522988, 6.0]])


def _mp_reference(x):
    """{"erf": erf(x), "gelu": x erfc(-x / sqrt 2) / 2} in 40 digits (gelu's argument
    -x / sqrt 2 rounded to double first: the definition, see test_gelu_against_mpmath)."""
    mpmath = pytest.importorskip("mpmath")
    y = -x * (1.0 / np.sqrt(2.0))
    with mpmath.workdps(40):
        erf = np.array([float(mpmath.erf(mpmath.mpf(float(a)))) for a in x])
        gelu = np.array([float(mpmath.mpf(float(a)) * mpmath.erfc(mpmath.mpf(float(b))) / 2)
                         for a, b in zip(x, y)])
    return {"erf": erf, "gelu": gelu}


def _check_mp_bounds(got, want, label):
    normal = np.abs(want) > np.finfo(float).tiny
    worst = _ulps(got[normal], want[normal]).max()
    assert worst <= MP_ULP[label.split()[0]], (label, worst)
    np.testing.assert_allclose(got[~normal], want[~normal], rtol=0, atol=1e-323)


def test_erf_gelu_against_mpmath():
    # gelu(x) = x erfc(-x / sqrt 2) / 2 with the argument -x / sqrt 2 rounded to double (the
    # definition; the rounding makes it ill-conditioned in the far lower tail, relative
    # condition 2 y^2). scipy's ndtr shares that rounding but its erfc is off by up to ~500
    # ulp there, so the reference is mpmath's erfc of the same double argument.
    x = _mp_points()
    want = _mp_reference(x)
    for name, code in (("erf", K.ERF), ("gelu", K.GELU)):
        got = np.empty_like(x)
        K.activate(code, 0.0, x, got)
        _check_mp_bounds(got, want[name], f"{name} kernel")
        _check_mp_bounds(get_activation(name).value(x), want[name], f"{name} ufunc")


#: computes erf and gelu (all three orders) with the array kernels of whatever target the
#: process compiles for; argv: input .npy, output .npz
_ISA_SCRIPT = """
import sys, numpy as np
from mcsim.kernels import activations as K
x = np.load(sys.argv[1])
out = {}
for name, code in (("erf", K.ERF), ("gelu", K.GELU)):
    for order, kern in enumerate((K.activate, K.activate_derivative, K.activate_second)):
        dst = np.empty_like(x)
        kern(code, 0.0, x, dst)
        out[f"{name}{order}"] = dst
np.savez(sys.argv[2], **out)
"""


def test_erf_gelu_isa_builds(tmp_path):
    # AVX2 (Haswell) and, where the host has it, AVX-512 builds: the mpmath bounds hold for
    # each, and both give the same bits (element-wise code: no reduction, and the
    # roundings vmath pins with strict operations and an explicit FMA are the same on every
    # FMA target), so a heterogeneous job computes the same activations everywhere
    import subprocess
    import sys
    from pathlib import Path
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    from isa import AVX512_FEATURES, haswell_env, host_has_avx512, target_env
    root = here.parent
    x = np.concatenate([_mp_points(), WIDE])
    np.save(tmp_path / "x.npy", x)
    envs = {"haswell": haswell_env(root / ".venv" / "numba-cache-haswell")}
    if host_has_avx512():
        envs["skylake-avx512"] = target_env("skylake-avx512", AVX512_FEATURES,
                                            root / ".venv" / "numba-cache-skylake-avx512")
    outs = {}
    for target, env in envs.items():
        out = tmp_path / f"{target}.npz"
        subprocess.run([sys.executable, "-c", _ISA_SCRIPT, str(tmp_path / "x.npy"), str(out)],
                       env=env, check=True, timeout=900)
        outs[target] = dict(np.load(out))
    n = len(_mp_points())
    want = _mp_reference(x[:n])
    for target, res in outs.items():
        for name in ("erf", "gelu"):
            _check_mp_bounds(res[f"{name}0"][:n], want[name], f"{name} {target}")
    first = next(iter(outs.values()))
    for target, res in outs.items():
        for key, arr in res.items():
            np.testing.assert_array_equal(arr, first[key], err_msg=f"{key} {target}")


@pytest.mark.parametrize("name", SMOOTH)
def test_ufuncs_raise_no_spurious_fp_flags(name):
    # branch-free code evaluates every branch; the unused ones must not overflow or divide
    # by zero either, or the numpy ufuncs (theory code) would warn on ordinary arguments
    x = WIDE[np.abs(WIDE) <= 1e150]
    act = get_activation(name)
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        act.value(x)
        act.derivative(x)


@pytest.mark.parametrize("name", SMOOTH)
def test_activation_special_values(name):
    code = getattr(K, name.upper())
    dst = np.empty_like(SPECIAL)
    K.activate(code, 0.0, SPECIAL, dst)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(dst, REFERENCE[name](SPECIAL, 0.0))
    huge = np.array([1e308, -1e308, 1e300, -1e300, 745.0, -745.0])
    # (not sigma'': erf'' and gelu'' are 0 * inf = NaN at |x| ~ 1e308 by their formulas)
    for kern in (K.activate, K.activate_derivative):
        out = np.empty_like(huge)
        kern(code, 0.0, huge, out)
        assert np.all(np.isfinite(out)), (name, kern)


def test_tanh_odd_and_saturated():
    x = np.abs(WIDE[np.isfinite(WIDE)])
    pos, neg = np.empty_like(x), np.empty_like(x)
    K.activate(K.TANH, 0.0, x, pos)
    K.activate(K.TANH, 0.0, -x, neg)
    np.testing.assert_array_equal(neg, -pos)                  # bitwise odd
    assert np.all(pos[x >= 19.1] == 1.0) and np.all(pos <= 1.0)
    assert np.all(np.diff(pos[np.argsort(x)]) >= 0.0)          # monotone on the grid
    K.activate(K.ERF, 0.0, x, pos)
    K.activate(K.ERF, 0.0, -x, neg)
    np.testing.assert_array_equal(neg, -pos)
    assert np.all(pos[x >= 6.0] == 1.0)


def test_softplus_stable_for_large_arguments():
    x = np.array([37.0, 50.0, 700.0, 1e10, 1e300, -37.0, -700.0, -745.0, -746.0])
    out = np.empty_like(x)
    K.activate(K.SOFTPLUS, 0.0, x, out)
    np.testing.assert_array_equal(out[:5], x[:5])              # log1p(e^-x) < ulp(x) / 2
    assert _ulps(out[5:], np.logaddexp(0.0, x[5:])).max() <= 1
    assert out[-1] == 0.0 and out[-2] > 0.0                    # gradual underflow


@pytest.mark.parametrize("name", SMOOTH)
def test_in_place_equals_out_of_place(name):
    # markov applies activate in place; the in-place loop must give the same bits
    code = getattr(K, name.upper())
    x = _RNG.standard_normal(4099) * 4.0
    for kern in (K.activate, K.activate_derivative, K.activate_second):
        out = np.empty_like(x)
        kern(code, 0.0, x, out)
        y = x.copy()
        kern(code, 0.0, y, y)
        np.testing.assert_array_equal(y, out)
        z = x.copy()                  # strided views: another compiled loop, same to 1 ulp
        kern(code, 0.0, z[::2], z[::2])
        np.testing.assert_allclose(z[::2], out[::2], rtol=4.5e-16, atol=1e-300)
        np.testing.assert_array_equal(z[1::2], x[1::2])


def test_sin_kernel_with_far_arguments():
    # one element beyond the reduction's range: the whole array takes the libm-safe loop
    x = np.array([0.5, 1e7, -2.0, np.inf, np.nan, 3e9])
    for kern, ref in ((K.activate, np.sin), (K.activate_derivative, np.cos)):
        out = np.empty_like(x)
        kern(K.SIN, 0.0, x, out)
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(out, ref(x), rtol=2.3e-16, atol=0)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "erf", "gelu", "swish"])
def test_activation_loops_vectorise_without_libm(name):
    # the loops of the array kernels must not call libm (which keeps them scalar); checked
    # on the LLVM IR of a fresh (uncached) compile: vector types, no call to a libm symbol
    spec = next(s for s in K.SPECS if s.name == name)

    def compiled_loop(f):
        def loop(src, dst):
            for i in range(src.shape[0]):
                dst[i] = f(src[i], 0.0)
        return numba.njit(fastmath=set(FASTMATH), error_model="numpy")(loop)

    for f in (spec.value, spec.derivative):
        g = compiled_loop(f)
        g(X, np.empty_like(X))
        ir = g.inspect_llvm(g.signatures[0])
        assert "x double>" in ir, (name, f)
        for sym in ("@exp(", "@tanh(", "@erf(", "@erfc(", "@log1p(", "@sin(", "@cos("):
            assert sym not in ir, (name, f, sym)
