"""Criticality of a single input (book chapter 5): susceptibilities, fixed points, tuning.

For one input with kernel K and F(K) = <sigma(z)^2>_{z ~ N(0, K)}:

* kernel map        f(K) = C_b + C_W F(K)
* parallel          chi_par(K)  = C_W dF/dK = f'(K)  (growth of a change of K)
* perpendicular     chi_perp(K) = C_W <sigma'(z)^2>_K (growth of a change of the angle
                    between two nearby inputs, and the per-layer factor of the NTK)

Critical initialisation tunes (C_b, C_W) so that chi_par = chi_perp = 1 at a fixed point K*
of the kernel map. Since dF/dK = <sigma'^2> + <sigma sigma''> (Price), that needs
<sigma sigma''>_{K*} = 0. The classes found here:

* ``scale-invariant``: sigma(c z) = c sigma(z) (ReLU family, linear): F(K) = c2 K, every
  K is a fixed point of f when C_b = 0 and C_W = 1 / <sigma'^2>_1 (ReLU: 2);
* ``K*=0``: sigma(0) = 0, sigma'(0) != 0: C_b = 0, C_W = 1 / sigma'(0)^2 (tanh: 1), and the
  kernel flows to 0 as K^(l) ~ 1 / (-a1 l) when a1 = sigma'''(0)/sigma'(0) +
  (3/4) (sigma''(0)/sigma'(0))^2 < 0 (tanh: a1 = -2);
* ``none``: no such point. Points with K* > 0 where <sigma sigma''> changes sign and C_b >= 0
  (SWISH, GELU) are still reported, as ``kind="K*>0"``: there f'(K*) = 1 but f''(K*) != 0,
  so the fixed point is only half-stable and the book does not count it as a class.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from . import gaussian as _g

__all__ = ["kernel_map", "chi_parallel", "chi_perpendicular", "fixed_points", "CriticalPoint",
           "Criticality", "find_criticality", "summary"]


def _F(act, K):
    return float(_g.two_point(act, [[K]])[0, 0])


def _dF(act, K, second=False):
    J, H = _g.two_point_jacobian(act, [[K]], second=second)
    return float(J[0, 0, 0, 0]), (float(H[0, 0, 0, 0, 0, 0]) if second else None)


def _D(act, K):
    return float(_g.derivative_two_point(act, [[K]])[0, 0])


def _act(activation):
    from ..activations import get_activation
    return get_activation(activation)


def kernel_map(activation, K, C_W, C_b) -> float:
    """f(K) = C_b + C_W <sigma^2>_K."""
    return C_b + C_W * _F(_act(activation), K)


def chi_parallel(activation, K, C_W) -> float:
    """chi_par(K) = C_W d<sigma^2>_K / dK."""
    return C_W * _dF(_act(activation), K)[0]


def chi_perpendicular(activation, K, C_W) -> float:
    """chi_perp(K) = C_W <sigma'^2>_K (inf when sigma jumps)."""
    return C_W * _D(_act(activation), K)


def fixed_points(activation, C_W, C_b, K_max=1e4) -> list[tuple[float, float]]:
    """Fixed points K* = f(K*) in [0, K_max] as (K*, chi_par(K*)); stable when chi_par < 1.

    Found by a sign scan of f(K) - K on a logarithmic grid and refined with Brent's method;
    K* = 0 is included when f(0) = 0. A scale-invariant activation at C_b = 0 has
    f(K) = chi K: every K is fixed when chi = 1 and the list holds the single entry (nan, 1).
    """
    act = _act(activation)
    if _g.relu_family(act) is not None and C_b == 0:
        chi = C_W * _dF(act, 1.0)[0]
        return [(np.nan, chi)] if abs(chi - 1) < 1e-12 else [(0.0, chi)]
    g = lambda K: C_b + C_W * _F(act, K) - K        # noqa: E731
    out = []
    if abs(C_b + C_W * float(act.value(0.0)) ** 2) < 1e-15:
        out.append((0.0, C_W * _dF(act, 1e-12)[0]))
    grid = np.geomspace(1e-6, K_max, 120)
    vals = [g(K) for K in grid]
    for a, b, ga, gb in zip(grid[:-1], grid[1:], vals[:-1], vals[1:]):
        if ga == 0 or ga * gb < 0:
            K = a if ga == 0 else brentq(g, a, b, xtol=1e-14, rtol=1e-13)
            out.append((K, C_W * _dF(act, K)[0]))
    return out


@dataclass(frozen=True)
class CriticalPoint:
    """One critical initialisation: chi_par = chi_perp = 1 at the fixed point K*."""
    C_b: float
    C_W: float
    K_star: float               # nan: every K is a fixed point (scale-invariant)
    kind: str                   # "scale-invariant", "K*=0" or "K*>0"
    chi_par: float
    chi_perp: float
    note: str = ""


@dataclass(frozen=True)
class Criticality:
    """Result of ``find_criticality``: the universality class and the critical points."""
    activation: dict
    universality: str           # "scale-invariant", "K*=0" or "none"
    points: list = field(default_factory=list)
    details: dict = field(default_factory=dict)
    reason: str = ""

    @property
    def critical(self) -> CriticalPoint | None:
        """The point of the universality class (None for "none")."""
        for p in self.points:
            if p.kind == self.universality:
                return p
        return None


def _taylor_at_zero(act):
    """sigma(0), sigma'(0), sigma''(0), sigma'''(0): the table, else finite differences."""
    try:
        return [float(v) for v in _g.higher_derivatives(act, 0.0, 3)]
    except ValueError:
        h = 1e-3
        f = lambda x: float(act.value(x))            # noqa: E731
        return [f(0.0), (f(h) - f(-h)) / (2 * h), (f(h) - 2 * f(0) + f(-h)) / h ** 2,
                (f(2 * h) - 2 * f(h) + 2 * f(-h) - f(-2 * h)) / (2 * h ** 3)]


def find_criticality(activation, K_range=(1e-3, 1e3)) -> Criticality:
    """Classify an activation and return its critical (C_b, C_W), or say there is none."""
    act = _act(activation)
    spec = act.spec() if hasattr(act, "spec") else {"name": act.name}
    if _g.is_discontinuous(act):
        return Criticality(spec, "none", reason="sigma jumps, so sigma' has a delta function: "
                           "chi_perp and the NTK are infinite for every C_W > 0")
    points, details = [], {}
    if _g.relu_family(act) is not None or getattr(act, "scale_invariant", False):
        c2, d2 = _dF(act, 1.0)[0], _D(act, 1.0)
        C_W = 1.0 / d2
        F1, F4 = _F(act, 1.0), float(_g.four_point(act, [[1.0]])[0, 0, 0, 0])
        details["vertex_slope"] = C_W ** 2 * (F4 - F1 ** 2)
        points.append(CriticalPoint(0.0, C_W, np.nan, "scale-invariant", C_W * c2, C_W * d2,
                                    "every K is a fixed point (marginal line); at equal "
                                    "widths V^(l)/K^2 = %.6g (l-1)" % details["vertex_slope"]))
        return Criticality(spec, "scale-invariant", points, details)
    s0, s1, s2, s3 = _taylor_at_zero(act)
    if abs(s0) < 1e-14 and abs(s1) > 1e-14:
        C_W = 1.0 / s1 ** 2
        a1 = s3 / s1 + 0.75 * (s2 / s1) ** 2
        details["a1"] = a1
        if a1 < 0:
            points.append(CriticalPoint(0.0, C_W, 0.0, "K*=0", 1.0, 1.0,
                                        "a1 = %.6g < 0: K^(l) ~ %.6g / l, V^(l)/K^2 ~ (2/3) l"
                                        % (a1, -1.0 / a1)))
        else:
            details["K*=0 rejected"] = ("a1 = %.6g >= 0: the kernel grows away from K* = 0"
                                        % a1)
    g = lambda K: _dF(act, K)[0] - _D(act, K)      # noqa: E731  (= <sigma sigma''>_K)
    grid = np.geomspace(*K_range, 90)
    vals = [g(K) for K in grid]
    for a, b, ga, gb in zip(grid[:-1], grid[1:], vals[:-1], vals[1:]):
        if ga * gb < 0:
            K = brentq(g, a, b, xtol=1e-14, rtol=1e-13)
            D = _D(act, K)
            C_W = 1.0 / D
            C_b = K - C_W * _F(act, K)
            if C_b >= -1e-12:
                curv = C_W * _dF(act, K, second=True)[1]
                points.append(CriticalPoint(max(C_b, 0.0), C_W, K, "K*>0", C_W * _dF(act, K)[0],
                                            1.0, "half-stable: f''(K*) = %.3g" % curv))
    universality = "K*=0" if any(p.kind == "K*=0" for p in points) else "none"
    reason = "" if universality != "none" else (
        "no K* = 0 fixed point with chi = 1 that attracts the kernel" +
        (" (only half-stable K* > 0 points)" if points else " and no K* > 0 critical point"))
    return Criticality(spec, universality, points, details, reason)


def _fmt(x):
    return "any" if np.isnan(x) else ("%.10g" % x)


def summary(crit: Criticality) -> str:
    """Human-readable report of a Criticality."""
    name = crit.activation.get("name", "?")
    params = ", ".join(f"{k}={v}" for k, v in crit.activation.items() if k != "name")
    lines = [f"activation: {name}" + (f" ({params})" if params else ""),
             f"universality class: {crit.universality}"]
    if crit.reason:
        lines.append(f"  {crit.reason}")
    for p in crit.points:
        tag = "critical initialisation" if p.kind == crit.universality else f"other ({p.kind})"
        lines.append(f"{tag}: C_b = {_fmt(p.C_b)}, C_W = {_fmt(p.C_W)}, K* = {_fmt(p.K_star)}")
        lines.append(f"  chi_parallel = {p.chi_par:.10g}, chi_perpendicular = {p.chi_perp:.10g}")
        if p.note:
            lines.append(f"  {p.note}")
    for key, value in crit.details.items():
        if isinstance(value, str):
            lines.append(f"  {value}")
    return "\n".join(lines)
