"""Non-Gaussian weight laws: the issue's table and the README's worked example.

    python benchmarks/weight_laws.py table            # ReLU, widths [4, 4, 4, 1], layer 4
    python benchmarks/weight_laws.py depth [--plot docs/kurtosis-laws.png]

``table``: the cross-unit ``kurtosis``, the kurtosis of z (``z_kurtosis``) and the exact
E[z^4]/E[z^2]^2 - 3 (recursion for ReLU with one input, tests/test_weight_laws.py) and a
direct NumPy simulation with explicit weights, with the deviations in standard errors.

``depth``: ReLU at criticality (C_W = 2, C_b = 0), equal widths n, the excess kurtosis of z
against depth for Gaussian, uniform and Rademacher weights, measured against the prediction
(3 V + kappa4_W C_W^2 <s^4>) / (n K^2): the vertex term grows like depth/n, the weight law's
term stays kappa4_W * 6/n (ReLU) at every depth.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAWS = ("gaussian", "uniform", "rademacher")


def _cfg(widths, inputs, weights, networks, seed, stats=("metric", "vertex", "z_kurtosis")):
    from mcsim.config import config_from_dict
    return config_from_dict({
        "network": {"input_dim": len(inputs[0]), "widths": list(widths), "activation": "relu",
                    "C_W": 2.0, "C_b": 0.0},
        "inputs": {"values": inputs},
        "ensemble": {"networks": networks, "seed": seed, "sampler": "dense", "weights": weights,
                     "block_size": 1024, "jackknife_bins": 32},
        "output": {"statistics": list(stats)}})


def table(networks: int, direct: int) -> None:
    from mcsim.run.driver import simulate
    from tests.test_weight_laws import _jackknife, _kurtosis, direct_z, exact_relu_kurtosis
    widths, x = (4, 4, 4, 1), [[1.0]]
    print(f"ReLU, C_W = 2, C_b = 0, widths {list(widths)}, x = (1), layer 4; mcsim: {networks:,} "
          f"networks, direct NumPy simulation: {direct:,}")
    print(f"{'weights':<24} {'kurtosis':>15} {'z_kurtosis':>15} {'exact':>9} {'dev':>7} "
          f"{'direct':>15} {'dev':>7}")
    for w in LAWS + ({"name": "student_t", "nu": 10},):
        res = simulate(_cfg(widths, x, w, networks, seed=21), progress="none", threads=1)
        e = res.layer(4)
        k, z = e["kurtosis"], e["z_kurtosis"]
        ex = exact_relu_kurtosis(x, widths, 2.0, 0.0, w, "gaussian")[-1]
        d, derr = _jackknife(_kurtosis, direct_z(x, widths, "relu", 2.0, 0.0, w, "gaussian",
                                                 networks=direct, seed=22))
        name = w if isinstance(w, str) else f"student_t(nu={w['nu']})"
        print(f"{name:<24} {k.mean[0]:8.3f} +- {k.stderr[0]:4.2f} {z.mean[0]:8.3f} +- "
              f"{z.stderr[0]:4.2f} {ex:9.3f} {(z.mean[0] - ex) / z.stderr[0]:+7.2f} "
              f"{d[0]:8.3f} +- {derr[0]:4.2f} {(z.mean[0] - d[0]) / np.hypot(z.stderr[0], derr[0]):+7.2f}")


def depth(n: int, L: int, networks: int, plot: str | None) -> None:
    from mcsim.run.driver import simulate
    from mcsim.analysis.compare import compare, measurement_from_result
    from tests.test_weight_laws import exact_relu_kurtosis
    x = [list(np.ones(n))]
    rows = {}
    for w in LAWS:
        res = simulate(_cfg([n] * L, x, w, networks, seed=31), progress="none", threads=1)
        m = measurement_from_result(res, label=w)
        t = compare(m, statistics=("z_kurtosis", "kurtosis"))
        zk = t.select("z_kurtosis")
        kk = t.select("kurtosis")
        ex = exact_relu_kurtosis(x, [n] * L, 2.0, 0.0, w, "gaussian", cross=True)
        rows[w] = (zk, kk, ex)
        print(f"{w}: layer | n z_kurtosis: measured +- err, exact, dev/sigma, leading prediction | "
              f"n (z_kurtosis - kurtosis): measured, exact, leading prediction")
        for r, q, e, c in zip(zk, kk, *ex):
            dev = (r["measured"] - e) / r["stderr"] if r["stderr"] > 0 else 0.0
            print(f"  {r['layer']:3d}  {n * r['measured']:8.3f} +- {n * r['stderr']:6.3f} {n * e:8.3f} "
                  f"{dev:+6.2f} {n * r['prediction']:8.3f} | {n * (r['measured'] - q['measured']):8.3f} "
                  f"{n * (e - c):8.3f} {n * (r['prediction'] - q['prediction']):8.3f}")
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=150)
        for (w, (zk, kk, (ez, ec))), c in zip(rows.items(), ("k", "C0", "C3")):
            l = zk["layer"]
            a1.errorbar(l, zk["measured"], zk["stderr"], fmt="o", ms=3, color=c, label=f"{w}, measured")
            a1.plot(l, zk["prediction"], "-", color=c, lw=1, label=f"{w}, leading prediction")
            a1.plot(l, ez, ":", color=c, lw=1)
            if w != "gaussian":
                a2.errorbar(l, n * (zk["measured"] - kk["measured"]), n * zk["stderr"], fmt="o",
                            ms=3, color=c, label=f"{w}: n (z_kurtosis - kurtosis)")
                a2.plot(l, n * (zk["prediction"] - kk["prediction"]), "-", color=c, lw=1)
                a2.plot(l, n * (ez - ec), ":", color=c, lw=1)
            a2.plot(l, n * np.asarray(kk["prediction"]), "--", color="0.5", lw=1,
                    label="n 3V/(nK^2): vertex term" if w == "gaussian" else None)
        a1.set_xlabel("layer l")
        a1.set_ylabel("excess kurtosis of $z^{(l)}$")
        a1.set_title(f"ReLU at criticality, n = {n}", fontsize=9)
        a1.legend(fontsize=6)
        a2.set_xlabel("layer l")
        a2.set_ylabel("n x weight-law term")
        a2.set_title("weight-law term: O(1/n) at every depth", fontsize=9)
        a2.legend(fontsize=6)
        fig.text(0.01, 0.01, "solid: leading prediction (3V + kappa4_W C_W^2 <s^4>)/(n K^2); dotted: "
                 "exact (ReLU recursion); error bars: one standard error (jackknife; right: that of "
                 "z_kurtosis, an upper bound), smaller than the markers", fontsize=6)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(plot)
        print(f"wrote {plot}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("table", "depth"))
    ap.add_argument("--networks", type=int, default=400_000)
    ap.add_argument("--direct", type=int, default=1_000_000)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--plot")
    a = ap.parse_args(argv)
    if a.what == "table":
        table(a.networks, a.direct)
    else:
        depth(a.width, a.depth, a.networks, a.plot)


if __name__ == "__main__":
    main()
