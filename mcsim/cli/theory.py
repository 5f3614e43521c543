"""`mcsim theory` and `mcsim compare` (registered by ``add_commands``; see mcsim/cli.py).

    mcsim theory CONFIG [-o FILE] [--layer L] [--all] [--ntk] [--dntk]
                                                           predictions for a configuration,
                                                           each layer's share of the NTK
    mcsim theory criticality ACTIVATION [--param X] [--depth L] [--input-norm Q]
                                                           critical initialisation and the
                                                           equivalence-principle learning rates
    mcsim compare RESULT.h5 [--plot DIR]                   measurement vs prediction
    mcsim compare A.h5 B.h5 ... [--plot DIR]               width sweep: fits in 1/n
                                                           ([training] runs: also /training)

Exit status as for the other commands: 0 ok, 1 unreadable file or failure, 2 bad usage.
"""
from __future__ import annotations

import sys

import numpy as np

from .status import EXIT_FAILURE, EXIT_OK, EXIT_USAGE


def add_commands(subparsers) -> None:
    """Add the ``theory`` and ``compare`` subcommands to an argparse subparsers object."""
    t = subparsers.add_parser(
        "theory", help="1/n-expansion predictions, or the critical initialisation",
        description="`mcsim theory CONFIG`: per layer the kernel K, the 1/n metric correction "
        "G1 (G = K + G1/n_(l-1)), the four-point vertex V and its 1/n correction V1, the "
        "six-point vertex at leading order and the mean NTK for the network of CONFIG, and each "
        "layer's contribution to the output layer's mean NTK H^(L) (learning rates [network] "
        "lambda_b, lambda_W, default 1.0); --ntk adds the NTK mean to order 1/n (H + H1/n_(l-1)) "
        "and its fluctuations A, B, D, F; --dntk (or dntk_P / dntk_Q in the config's "
        "statistics) the dNTK-preactivation correlations P, Q; -o stores the predictions in "
        "HDF5 with the layout of a measurement (kind = \"prediction\"). `mcsim theory criticality ACTIVATION`: the "
        "susceptibilities, the critical (C_b, C_W), the universality class of an activation, and "
        "the per-layer learning rates lambda_b^(l), lambda_W^(l) with which every layer "
        "contributes equally to the NTK (learning-rate equivalence principle) for a network of "
        "--depth layers.")
    t.add_argument("target", metavar="CONFIG|criticality",
                   help="a run configuration (TOML), or the word `criticality`")
    t.add_argument("activation", nargs="?", help="with `criticality`: the activation name")
    t.add_argument("--param", type=float, help="with `criticality`: the activation's parameter "
                   "(leaky_relu: slope)")
    t.add_argument("-o", "--output", help="write the predictions to this HDF5 file")
    t.add_argument("--layer", type=int, action="append", help="print only this layer (repeatable)")
    t.add_argument("--all", action="store_true", help="print every distinct entry")
    t.add_argument("--no-ntk", action="store_true", help="skip the NTK mean and contributions")
    t.add_argument("--ntk", action="store_true", help="also print the NTK mean to order 1/n "
                   "and its fluctuations A, B, D, F (leading order)")
    t.add_argument("--dntk", action="store_true", help="also print (and with -o store) the "
                   "dNTK-preactivation correlations dntk_P, dntk_Q at leading order (automatic "
                   "when the config asks for them)")
    t.add_argument("--depth", type=int, default=10, help="with `criticality`: number of layers "
                   "L for the equivalence-principle learning rates (default 10)")
    t.add_argument("--input-norm", type=float, default=1.0, help="with `criticality`: x.x/n_0 "
                   "of the reference input (default 1.0)")
    t.set_defaults(func=cmd_theory)

    c = subparsers.add_parser(
        "compare", help="compare measurements with the 1/n expansion",
        description="One file: per layer and distinct entry, the measurement +- standard error, "
        "the prediction (K + G1/n for the metric, V + V1/n for the vertex, leading order for "
        "the six-point vertex, the kurtosis to order 1/n^2) "
        "and the deviation in standard errors. Several files (or a collected sweep): runs that "
        "differ only in width are fitted to X(n) = X_inf + a/n (+ b/n^2 with >= 4 widths when "
        "chi^2 supports it), X_inf against the leading prediction and a against G1 (metric) or "
        "V1 (vertex). Runs with a [training] section: the /training statistics at every recorded "
        "step against the infinite-width prediction (one run), and their width fits, X_inf "
        "against that prediction and the 1/n coefficient a with its error (several runs).")
    c.add_argument("files", nargs="+", help="measurement files or collected sweep files")
    c.add_argument("--plot", metavar="DIR", help="write PNG and PDF figures into DIR")
    c.add_argument("--layer", type=int, action="append", help="only this layer (repeatable)")
    c.add_argument("--stat", action="append", choices=_predicted(),
                   help="only this statistic (repeatable; default: every one with a prediction)")
    c.add_argument("--order", type=int, choices=(1, 2),
                   help="width fits: 1 = X_inf + a/n, 2 = + b/n^2 (default: 2 only with >= 4 "
                   "widths when chi^2 supports it)")
    c.add_argument("--tables", action="store_true",
                   help="with several runs: also print each run's full comparison table")
    c.set_defaults(func=cmd_compare)


def _predicted() -> tuple[str, ...]:
    from ..stats.statistics import STATISTICS
    return tuple(n for n, s in STATISTICS.items() if s.prediction is not None)


def _err(cmd, msg, code):
    print(f"mcsim {cmd}: error: {msg}", file=sys.stderr)
    return code


def cmd_theory(args) -> int:
    from pathlib import Path
    if args.target == "criticality" and (args.activation or not Path(args.target).exists()):
        return _criticality(args)
    if args.activation:
        return _err("theory", f"unexpected argument {args.activation!r} (only `mcsim theory "
                    "criticality ACTIVATION` takes a second argument)", EXIT_USAGE)
    from ..config import ConfigError, load_config
    from ..theory.full import predict_config
    from ..theory.store import format_prediction, write_prediction
    try:
        cfg = load_config(args.target)
    except ConfigError as exc:
        return _err("theory", exc, EXIT_USAGE)
    from ..theory.ntk import config_learning_rates
    training = None
    try:
        lb, lw = config_learning_rates(cfg)
        pred = predict_config(cfg, ntk=not args.no_ntk, lambda_b=lb, lambda_W=lw,
                              **({"dntk_moments": True} if args.dntk else {}))
        if cfg.training is not None:            # [training]: the infinite-width trained ensemble
            from ..theory.training import format_training_prediction, predict_training
            training = predict_training(cfg)
    except ValueError as exc:
        return _err("theory", exc, EXIT_USAGE)
    print(format_prediction(pred, layers=args.layer, show_all=args.all))
    if training is not None:
        print(format_training_prediction(training))
    if not args.no_ntk:
        try:
            print(_ntk_text(cfg, lb, lw, args))
        except ValueError as exc:
            return _err("theory", exc, EXIT_USAGE)
    if any(p.dntk_moments is not None for p in pred.layers):
        from ..theory.dntk import format_dntk
        print(format_dntk(pred, layers=args.layer, show_all=args.all))
    if args.output:
        try:
            write_prediction(args.output, pred, cfg, training=training)
        except OSError as exc:
            return _err("theory", exc, EXIT_FAILURE)
        print(f"wrote {args.output}")
    return EXIT_OK


def _criticality(args) -> int:
    from ..activations import get_activation
    from ..theory.criticality import find_criticality, summary
    if not args.activation:
        return _err("theory", "`mcsim theory criticality` needs an activation name, e.g. relu",
                    EXIT_USAGE)
    try:
        act = get_activation(args.activation)
        if args.param is not None:
            if act.param_name is None:
                raise ValueError(f"activation {act.name!r} has no parameter")
            act = get_activation({"name": act.name, act.param_name: args.param})
    except (ValueError, TypeError) as exc:
        return _err("theory", exc, EXIT_USAGE)
    crit = find_criticality(act)
    print(summary(crit))
    if crit.critical is None:
        return EXIT_OK
    from ..theory.ntk import equivalence_learning_rates
    try:
        lb, lw = equivalence_learning_rates(act, args.depth, input_norm=args.input_norm)
    except ValueError as exc:
        return _err("theory", exc, EXIT_USAGE)
    print(f"learning-rate equivalence principle (depth L = {args.depth}, reference input "
          f"x.x/n_0 = {args.input_norm:g}, critical C_W, C_b): every layer's biases contribute "
          "1/L and its weights 1/L to H^(L) = 2")
    print(f"  {'layer':>5} {'lambda_b':>15} {'lambda_W':>15}")
    for l, (b, w) in enumerate(zip(lb, lw), start=1):
        print(f"  {l:>5} {b:15.8g} {w:15.8g}")
    print("  (rates for total NTK lambda_b_total, lambda_W_total: multiply the columns by them; "
          "weights are trained with lambda_W / n_(l-1))")
    return EXIT_OK


def _pair_entries(k, show_all, limit=3):
    """Distinct (a, b), a <= b, the diagonal first; at most ``limit`` unless ``show_all``."""
    entries = [(a, a) for a in range(k)] + [(a, b) for a in range(k) for b in range(a + 1, k)]
    return entries if show_all else entries[:limit]


def _ntk_text(cfg, lb, lw, args) -> str:
    """Each layer's share of H^(L) and (with --ntk) the NTK mean to 1/n and A, B, D, F."""
    from ..errors import ConfigError
    from ..theory.ntk import ntk_contributions, predict_ntk_config
    net = cfg.network
    L = len(net.widths)
    try:
        c = ntk_contributions(net.activation, cfg.inputs, L, net.C_W, net.C_b, lb, lw)
    except ConfigError as exc:
        return f"NTK: not predicted ({exc})"
    k = cfg.inputs.shape[0]
    fmt = lambda v: "%.4g" % v if np.ndim(v) == 0 else str(np.round(v, 4).tolist())  # noqa
    lines = [f"NTK contributions to H^(L), L = {L} (lambda_b = {fmt(np.asarray(lb))}, "
             f"lambda_W = {fmt(np.asarray(lw))}; H^(L) = sum over layers, leading order)"]
    entries = _pair_entries(k, args.all)
    for a, b in entries:
        total = c.total[a, b]
        lines.append(f"  H[{a + 1}{b + 1}] = {total:.8g}")
        lines.append(f"  {'layer':>5} {'biases':>14} {'weights':>14} {'layer':>14} {'share':>8}")
        for l in range(L):
            share = c.per_layer[l, a, b] / total if total != 0 else np.nan
            lines.append(f"  {l + 1:>5} {c.bias[l, a, b]:14.6g} {c.weight[l, a, b]:14.6g} "
                         f"{c.per_layer[l, a, b]:14.6g} {share:8.2%}")
    if len(entries) < k * (k + 1) // 2:
        lines.append(f"  ... {k * (k + 1) // 2 - len(entries)} more entries (--all)")
    if args.ntk:
        P = predict_ntk_config(cfg, lb, lw)
        lines.append("NTK mean E[Hhat] = H + H1/n_(l-1) + O(1/n^2); fluctuations at leading "
                     "order, n_(l-1) times: A = Cov(H11, H22), B = E[H12 H12], "
                     "D = Cov(H11, z2 z2), F = E[H12 z1 z2]")
        for p in P.layers:
            if args.layer and p.layer not in args.layer:
                continue
            lines.append(f"layer {p.layer}  (n_{p.layer - 1} = {p.fan_in})")
            lines.append(f"  {'entry':<8} {'H':>13} {'H1':>13} {'H + H1/n':>13} {'A':>11} "
                         f"{'B':>11} {'D':>11} {'F':>11}")
            for a, b in entries:
                lines.append(f"  H[{a + 1}{b + 1}]{'':<3} {p.ntk_leading[a, b]:13.7g} "
                             f"{p.ntk_correction[a, b]:13.7g} {p.ntk[a, b]:13.7g} "
                             f"{p.A[a, b, a, b]:11.5g} {p.B[a, a, b, b]:11.5g} "
                             f"{p.D[a, b, a, b]:11.5g} {p.F[a, a, b, b]:11.5g}")
        lines.append("  (A, B, D, F columns: the entries [a,b,a,b], [a,a,b,b], [a,b,a,b], "
                     "[a,a,b,b] of the (k,k,k,k) tensors)")
    return "\n".join(lines)


def _groups(measurements):
    """Measurements grouped by everything but the width scale (order kept)."""
    import json
    groups: dict = {}
    for m in measurements:
        shape = tuple(round(n / m.widths[0], 12) for n in m.widths[:-1])
        key = (json.dumps(m.activation, sort_keys=True), m.C_W, m.C_b, m.inputs.tobytes(),
               m.inputs.shape, len(m.widths), shape, m.weights, m.biases)
        groups.setdefault(key, []).append(m)
    return list(groups.values())


def _training_text(name: str, *args, **kw) -> str:
    """The /training comparison (``analysis.training_compare.<name>``) as text, or one line
    saying why there is none (no infinite-width prediction, e.g. eta above its stability
    limit; runs with different [training] sections): the layer comparison still stands."""
    from ..analysis import training_compare as T
    try:
        return getattr(T, name)(*args, **kw).text()
    except ValueError as exc:
        return f"training: not compared ({exc})"


def _plot_training(group, args, tag, taken) -> None:
    """``training-width-sweep.png`` for a width group of [training] runs (nothing where the
    runs cannot be compared: ``_training_text`` has said why)."""
    from ..analysis import plots as P
    from ..analysis.training_compare import training_width_sweep
    try:
        sweep = training_width_sweep(group, order=args.order)
    except ValueError:
        return
    if len(sweep.rows):
        for p in P.plot_training_sweep(sweep, args.plot, stem=P.figure_stem("training-width-sweep", tag,
                                                                              taken=taken)):
            print(f"wrote {p}")


def _group_tag(m, i: int) -> str:
    """A file-name tag for one network of several: activation, depth and its index."""
    return f"{m.activation['name']}-L{len(m.widths)}-{i + 1}"


def cmd_compare(args) -> int:
    from ..analysis import compare as C
    from ..analysis import plots as P
    stats = tuple(args.stat) if args.stat else C.predicted_statistics()
    ms = []
    for path in args.files:
        try:
            ms.extend(C.read_measurements(path))
        except (OSError, ValueError, KeyError) as exc:
            return _err("compare", exc, EXIT_FAILURE)
    if not ms:
        return _err("compare", "no measurements in the given files", EXIT_FAILURE)
    try:
        if len(ms) == 1:
            table = C.compare(ms[0], statistics=stats, layers=args.layer)
            print(table.text())
            if ms[0].training:                  # [training]: the trained ensemble, per step
                print(_training_text("compare_training", ms[0]))
            if args.plot:
                for p in P.plot_layers(ms[0], args.plot):
                    print(f"wrote {p}")
            return EXIT_OK
        groups = _groups(ms)
        taken: set = set()
        for i, group in enumerate(groups):
            widths = sorted({m.widths[0] for m in group})
            # one group: plain names; several: each name says which network it is
            tag = "" if len(groups) == 1 else _group_tag(group[0], i)
            for m in group:
                table = C.compare(m, statistics=stats, layers=args.layer)
                if args.tables:
                    print(table.text())
                    if m.training:
                        print(_training_text("compare_training", m))
                else:
                    print(table.text().splitlines()[0] + "  |  " + "; ".join(
                        line.split(" (")[0] for line in table.text().splitlines()
                        if line.split(":")[0] in stats))
                if args.plot:
                    stem = P.figure_stem("layers", tag, P.run_name(m), taken=taken)
                    for p in P.plot_layers(m, args.plot, stem=stem):
                        print(f"wrote {p}")
            if len(widths) < 2:
                continue
            if all(m.training for m in group):  # [training]: X_inf + a/n per step and entry
                print(_training_text("training_width_sweep", group, order=args.order))
                if args.plot:
                    _plot_training(group, args, tag, taken)
            sweep = C.width_sweep(group, statistics=tuple(s for s in stats if s != "kurtosis"),
                                  layers=args.layer, order=args.order)
            print(sweep.text())
            if args.plot and len(sweep.rows):
                layer = max(int(r) for r in sweep.rows["layer"])
                stem = P.figure_stem("width-sweep", tag, f"layer{layer}", taken=taken)
                for p in P.plot_width_sweep(sweep, args.plot, stem=stem, layer=layer):
                    print(f"wrote {p}")
                ntk = [e for e in P.NTK_SWEEP_ENTRIES
                       if any(k[0] == layer and k[2] == e for k in sweep.points)]
                if ntk:                 # the NTK and its fluctuations: a figure of their own
                    stem = P.figure_stem("width-sweep-ntk", tag, f"layer{layer}", taken=taken)
                    for p in P.plot_width_sweep(sweep, args.plot, stem=stem, layer=layer,
                                                entries=ntk):
                        print(f"wrote {p}")
            if args.plot and "kurtosis" in stats and all(
                    any("kurtosis" in m.layers[l] for l in m.layers) for m in group):
                stem = P.figure_stem("kurtosis-depth", tag, taken=taken)
                for p in P.plot_kurtosis_depth(group, args.plot, stem=stem):
                    print(f"wrote {p}")
    except ValueError as exc:
        return _err("compare", exc, EXIT_USAGE)
    return EXIT_OK
