"""`mcsim theory` and `mcsim compare` (registered by ``add_commands``; see mcsim/cli.py).

    mcsim theory CONFIG [-o FILE] [--layer L] [--all]     predictions for a configuration
    mcsim theory criticality ACTIVATION [--param X]        critical initialisation
    mcsim compare RESULT.h5 [--plot DIR]                   measurement vs prediction
    mcsim compare A.h5 B.h5 ... [--plot DIR]               width sweep: fits in 1/n

Exit status as for the other commands: 0 ok, 1 unreadable file or failure, 2 bad usage.
"""
from __future__ import annotations

import sys

from .status import EXIT_FAILURE, EXIT_OK, EXIT_USAGE


def add_commands(subparsers) -> None:
    """Add the ``theory`` and ``compare`` subcommands to an argparse subparsers object."""
    t = subparsers.add_parser(
        "theory", help="1/n-expansion predictions, or the critical initialisation",
        description="`mcsim theory CONFIG`: per layer the kernel K, the 1/n metric correction "
        "G1 (G = K + G1/n_(l-1)), the four-point vertex V at leading order and the mean NTK, "
        "for the network of CONFIG; -o stores them in HDF5 with the layout of a measurement "
        "(kind = \"prediction\"). `mcsim theory criticality ACTIVATION`: the susceptibilities, "
        "the critical (C_b, C_W) and the universality class of an activation.")
    t.add_argument("target", metavar="CONFIG|criticality",
                   help="a run configuration (TOML), or the word `criticality`")
    t.add_argument("activation", nargs="?", help="with `criticality`: the activation name")
    t.add_argument("--param", type=float, help="with `criticality`: the activation's parameter "
                   "(leaky_relu: slope)")
    t.add_argument("-o", "--output", help="write the predictions to this HDF5 file")
    t.add_argument("--layer", type=int, action="append", help="print only this layer (repeatable)")
    t.add_argument("--all", action="store_true", help="print every distinct entry")
    t.add_argument("--no-ntk", action="store_true", help="skip the NTK mean")
    t.set_defaults(func=cmd_theory)

    c = subparsers.add_parser(
        "compare", help="compare measurements with the 1/n expansion",
        description="One file: per layer and distinct entry, the measurement +- standard error, "
        "the prediction (K + G1/n for the metric, leading order for the vertex and kurtosis) "
        "and the deviation in standard errors. Several files (or a collected sweep): runs that "
        "differ only in width are fitted to X(n) = X_inf + a/n (+ b/n^2 with >= 4 widths when "
        "chi^2 supports it), X_inf against the leading prediction and a against G1.")
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
    from ..theory.recursions import predict_config
    from ..theory.store import format_prediction, write_prediction
    try:
        cfg = load_config(args.target)
    except ConfigError as exc:
        return _err("theory", exc, EXIT_USAGE)
    try:
        pred = predict_config(cfg, ntk=not args.no_ntk)
    except ValueError as exc:
        return _err("theory", exc, EXIT_USAGE)
    print(format_prediction(pred, layers=args.layer, show_all=args.all))
    if args.output:
        try:
            write_prediction(args.output, pred, cfg)
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
    print(summary(find_criticality(act)))
    return EXIT_OK


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
            sweep = C.width_sweep(group, statistics=tuple(s for s in stats if s != "kurtosis"),
                                  layers=args.layer, order=args.order)
            print(sweep.text())
            if args.plot and len(sweep.rows):
                layer = max(int(r) for r in sweep.rows["layer"])
                stem = P.figure_stem("width-sweep", tag, f"layer{layer}", taken=taken)
                for p in P.plot_width_sweep(sweep, args.plot, stem=stem, layer=layer):
                    print(f"wrote {p}")
            if args.plot and "kurtosis" in stats and all(
                    any("kurtosis" in m.layers[l] for l in m.layers) for m in group):
                stem = P.figure_stem("kurtosis-depth", tag, taken=taken)
                for p in P.plot_kurtosis_depth(group, args.plot, stem=stem):
                    print(f"wrote {p}")
    except ValueError as exc:
        return _err("compare", exc, EXIT_USAGE)
    return EXIT_OK
