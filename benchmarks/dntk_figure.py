"""The dNTK against depth for ReLU and tanh at criticality (issue 19, README figure).

One input (k = 1), so P = P[1111] and Q = Q[1111] are scalars. For each activation at
criticality (ReLU: C_W = 2, C_b = 0; tanh: C_W = 1, C_b = 0), equal widths n, learning rates 1,
the markov sampler measures P, Q and the mean NTK H = E[Hhat_{11}] at every layer; the theory
gives their leading order (P, Q: `theory.dntk`; H: `theory.ntk`).

The third column is the dNTK's size relative to the NTK,

    r = E[dHhat_{111} z_1] / H^2 = (2P + Q) / (n H^2)          (k = 1: P' = P)

the mean relative change of one unit's NTK in one gradient-descent step of size 1/H on that
unit's squared error with target 0 (Delta Hhat_{11} = -eta dHhat_{111} z_1). It is invariant
under rescaling the learning rates and the preactivations, and vanishes at infinite width (no
representation learning). Its error bar propagates the standard errors of P, Q and H
(independent errors assumed: an upper bound up to their correlation).

    python benchmarks/dntk_figure.py [--widths 16 32 64] [--depth 8] [--networks 100000]
                                     [-o docs/dntk-depth.png]

Prints one line per activation, width and layer: measured +- s.e., prediction and deviation in
standard errors for P and Q, and r measured against predicted.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import mcsim
from mcsim.config import config_from_dict
from mcsim.theory.full import predict_config

CRITICAL = {"relu": (2.0, 0.0), "tanh": (1.0, 0.0)}


def config(act, n, depth, networks, seed):
    C_W, C_b = CRITICAL[act]
    return config_from_dict({
        "network": {"input_dim": 2, "widths": [n] * depth, "activation": act, "C_W": C_W,
                    "C_b": C_b},
        "inputs": {"values": [[1.0, 1.0]]},
        "ensemble": {"networks": networks, "seed": seed, "sampler": "markov",
                     "block_size": 512, "jackknife_bins": 32},
        "output": {"statistics": ["metric", "ntk", "dntk_P", "dntk_Q"]}})


def measure(act, n, depth, networks, seed):
    """Per layer 2..depth: dict of arrays (P, P_err, Q, Q_err, H, H_err, and the predictions
    P_pred, Q_pred, H_pred)."""
    cfg = config(act, n, depth, networks, seed)
    res = mcsim.simulate(cfg, progress="off")
    pred = predict_config(cfg)
    out = {key: [] for key in ("layer", "P", "P_err", "Q", "Q_err", "H", "H_err",
                               "P_pred", "Q_pred", "H_pred")}
    for l in range(2, depth + 1):
        est, p = res.layer(l), pred.layer(l)
        out["layer"].append(l)
        for name, key in (("dntk_P", "P"), ("dntk_Q", "Q"), ("ntk", "H")):
            e = est[name]
            out[key].append(float(e.mean.flat[0]))
            out[key + "_err"].append(float(e.stderr.flat[0]))
        out["P_pred"].append(float(p.dntk_moments.P.flat[0]))
        out["Q_pred"].append(float(p.dntk_moments.Q.flat[0]))
        out["H_pred"].append(float(p.ntk_moments.ntk_leading.flat[0]))
    return {key: np.array(v) for key, v in out.items()}


def ratio(d, n):
    """r = (2P + Q)/(n H^2) measured (with its propagated error) and predicted."""
    r = (2 * d["P"] + d["Q"]) / (n * d["H"] ** 2)
    num_err = np.hypot(2 * d["P_err"], d["Q_err"]) / (n * d["H"] ** 2)
    r_err = np.hypot(num_err, 2 * r * d["H_err"] / d["H"])
    r_pred = (2 * d["P_pred"] + d["Q_pred"]) / (n * d["H_pred"] ** 2)
    return r, r_err, r_pred


def extrapolate(d_small, d_large, key):
    """X_inf = 2 X(2n) - X(n) from two widths n, 2n (removes the 1/n term; the O(1/n^2)
    remainder is left) with its standard error (independent runs)."""
    x = 2 * d_large[key] - d_small[key]
    return x, np.hypot(2 * d_large[key + "_err"], d_small[key + "_err"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--networks", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("-o", "--output", default="docs/dntk-depth.png")
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acts = ("relu", "tanh")
    data = {}
    for act in acts:
        for n in args.widths:
            t0 = time.perf_counter()
            data[act, n] = measure(act, n, args.depth, args.networks, args.seed)
            print(f"# {act} n={n}: {args.networks} networks in {time.perf_counter() - t0:.0f} s",
                  flush=True)

    print(f"{'act':>5} {'n':>3} {'l':>2} {'P':>10} {'+-':>7} {'P pred':>9} {'dev':>6}"
          f" {'Q':>10} {'+-':>7} {'Q pred':>9} {'dev':>6} {'r':>9} {'+-':>8} {'r pred':>9}")
    for (act, n), d in data.items():
        r, r_err, r_pred = ratio(d, n)
        for j, l in enumerate(d["layer"]):
            dp = (d["P"][j] - d["P_pred"][j]) / d["P_err"][j]
            dq = (d["Q"][j] - d["Q_pred"][j]) / d["Q_err"][j]
            print(f"{act:>5} {n:>3} {l:>2} {d['P'][j]:10.4f} {d['P_err'][j]:7.4f} "
                  f"{d['P_pred'][j]:9.4f} {dp:+6.2f} {d['Q'][j]:10.4f} {d['Q_err'][j]:7.4f} "
                  f"{d['Q_pred'][j]:9.4f} {dq:+6.2f} {r[j]:9.5f} {r_err[j]:8.5f} {r_pred[j]:9.5f}")

    two = sorted(args.widths)[-2:]
    if len(two) == 2 and two[1] == 2 * two[0]:
        print(f"two-width extrapolation 2 X(n={two[1]}) - X(n={two[0]}) against the leading order")
        for act in acts:
            d1, d2 = data[act, two[0]], data[act, two[1]]
            for key in ("P", "Q"):
                x, e = extrapolate(d1, d2, key)
                dev = (x - d2[key + "_pred"]) / e
                print(f"{act:>5} {key}: " + "  ".join(
                    f"l={l} {v:.4g}+-{u:.2g} ({z:+.1f})" for l, v, u, z in zip(d2["layer"], x, e, dev)))

    fig, axes = plt.subplots(2, 3, figsize=(11, 6.2), constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    for row, act in enumerate(acts):
        C_W, C_b = CRITICAL[act]
        for i, n in enumerate(args.widths):
            c = cmap(0.1 + 0.75 * i / max(1, len(args.widths) - 1))
            d = data[act, n]
            ls = d["layer"]
            for col, key in enumerate(("P", "Q")):
                ax = axes[row, col]
                ax.errorbar(ls + 0.06 * (i - 1), d[key], d[key + "_err"], fmt="o", ms=3.5,
                            color=c, capsize=2, label=f"measured, n = {n}")
                if i == 0:
                    ax.plot(ls, d[key + "_pred"], "-", color="0.25", lw=1.2,
                            label="leading order")
                if i == len(args.widths) - 1 and len(two) == 2 and two[1] == 2 * two[0]:
                    x, e = extrapolate(data[act, two[0]], data[act, two[1]], key)
                    ax.errorbar(ls + 0.06 * (i + 0.5), x, e, fmt="s", ms=4, mfc="none",
                                color="k", capsize=2,
                                label=f"$2X({two[1]}) - X({two[0]})$ (1/n removed)")
            r, r_err, r_pred = ratio(d, n)
            ax = axes[row, 2]
            ax.errorbar(ls / n, r, r_err, fmt="o", ms=3.5, color=c, capsize=2, label=f"n = {n}")
            ax.plot(ls / n, r_pred, "-", color=c, lw=1, alpha=0.8)
        for col, key in enumerate(("P", "Q")):
            ax = axes[row, col]
            ax.set_title(f"{act}, $C_W$ = {C_W:g}, $C_b$ = {C_b:g}: {key} (k = 1)", fontsize=9)
            ax.set_xlabel("layer $\\ell$")
            ax.set_ylabel(f"{key} = $n_{{\\ell-1}}$ E[" +
                          ("$d\\hat H_{112}\\, z_2$" if key == "P" else
                           "$d\\hat H_{122}\\, z_1$") + "]")
            if act == "relu":                   # P, Q grow like l^3: log scale
                ax.set_yscale("log")
            ax.legend(frameon=False, fontsize=7)
        ax = axes[row, 2]
        ax.set_title(f"{act}: dNTK relative to NTK, $r = (2P+Q)/(n H^2)$", fontsize=9)
        ax.set_xlabel("depth / width  $\\ell / n$")
        ax.set_ylabel("$r$ = E[$d\\hat H_{111} z_1$] / $H^2$")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.legend(frameon=False, fontsize=7, title="lines: leading order", title_fontsize=7)
    fig.suptitle(f"dNTK at criticality: markov sampler, {args.networks:,} networks per width; "
                 "error bars one standard error", fontsize=10)
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
