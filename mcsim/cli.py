"""Command line: `mcsim run | info | merge | theory | compare | sweep | collect`.

Exit status (documented in the README; job scripts rely on it):
  0   success (also: the output was already complete, nothing to do)
  1   runtime failure (I/O error, damaged file, a rank died)
  2   bad configuration or usage, or an existing output that belongs to another ensemble;
      nothing was written or changed
  75  stopped by SIGTERM / SIGINT / SIGUSR1 after writing a valid checkpoint: run the same
      command again to resume
"""
from __future__ import annotations

import argparse
import logging
import sys
import traceback

from . import __version__

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):           # argparse's own errors: status 2, like ours
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError("must be in [0, 2**63)")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mcsim", description="Monte Carlo ensembles of randomly initialised MLPs: "
                "finite-width statistics of preactivations (metric, four-point and six-point "
                "vertices) with error bars, and their 1/n predictions.",
                epilog="Exit status: 0 ok; 1 failure; 2 bad config/usage (nothing written); "
                       "75 stopped by a signal with a checkpoint written (rerun to resume).")
    p.add_argument("--version", action="version", version=f"mcsim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser("run", help="sample an ensemble and write its statistics to HDF5",
                       description="Sample the ensemble described by CONFIG (TOML) and write the "
                       "per-layer estimates with standard errors to HDF5. An existing output of "
                       "the same ensemble is resumed (or extended when more networks are asked "
                       "for); one of a different ensemble is refused unless --force. Works under "
                       "mpirun/mpiexec/srun: blocks are spread over ranks, one rank writes.",
                       epilog="Exit status: 0 done; 1 failure; 2 bad config/usage or incompatible "
                              "existing output (nothing changed); 75 stopped by SIGTERM/SIGINT/"
                              "SIGUSR1 with a checkpoint written: rerun the same command to resume.")
    r.add_argument("config", help="run configuration (TOML)")
    r.add_argument("-o", "--output", help="output HDF5 file (overrides output.path)")
    r.add_argument("--networks", type=_positive_int, help="number of networks (overrides ensemble.networks)")
    r.add_argument("--seed", type=_seed, help="root seed (overrides ensemble.seed)")
    r.add_argument("--sampler", choices=("markov", "dense"), help="overrides ensemble.sampler")
    r.add_argument("--threads", type=_positive_int, help="Numba threads per process (default: all cores, or NUMBA_NUM_THREADS)")
    r.add_argument("--force", action="store_true", help="overwrite an existing output file instead of resuming it")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress or log lines, only errors")
    r.add_argument("--progress", choices=("bar", "log", "off"), help="progress style (default: bar on a terminal, log lines otherwise)")
    r.set_defaults(func=cmd_run)

    i = sub.add_parser("info", help="print the estimates stored in a result file",
                       description="Print a result file's metadata and, per layer, the metric G, "
                       "four-point vertex V, kurtosis and six-point vertex (distinct entries by "
                       "symmetry), each +- its standard error.")
    i.add_argument("file", help="HDF5 file written by mcsim run or merge")
    i.add_argument("--layer", type=_positive_int, action="append", help="only this layer (repeatable)")
    i.add_argument("--all", action="store_true", help="print every distinct entry (default: at most 12 per statistic)")
    i.set_defaults(func=cmd_info)

    m = sub.add_parser("merge", help="combine runs of the same ensemble exactly",
                       description="Merge result files of the same ensemble (different seeds, or "
                       "disjoint block ranges of one seed) through the accumulator merge. Files "
                       "that differ in anything else are refused, naming the setting.")
    m.add_argument("files", nargs="+", help="input result files")
    m.add_argument("-o", "--output", required=True, help="merged output file")
    m.add_argument("--force", action="store_true", help="overwrite an existing output file")
    m.set_defaults(func=cmd_merge)

    for module in ("cli_theory", "cli_sweep"):
        try:
            mod = __import__(f"mcsim.{module}", fromlist=["add_commands"])
        except ImportError:
            continue
        mod.add_commands(sub)
    return p


def _setup_logging(quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="mcsim: %(message)s", stream=sys.stderr, force=True)


def cmd_run(args) -> int:
    from .signals import capture_early
    capture_early()             # before the slow imports: a SLURM warning now is not fatal
    from .config import ConfigError, load_config
    from .driver import EXIT_INTERRUPTED, Interrupted, ResumeError, simulate
    from .hdf5io import ResultFileError
    from .parallel import MPIUnavailableError, get_comm
    try:
        comm = get_comm()
    except MPIUnavailableError as exc:
        print(f"mcsim run: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _setup_logging(args.quiet or not comm.is_root)
    try:
        cfg = load_config(args.config)
        cfg = cfg.replace(networks=args.networks, seed=args.seed, sampler=args.sampler, path=args.output)
        if not cfg.output.path:
            raise ConfigError("output.path: missing; give -o/--output or output.path in the config")
    except ConfigError as exc:
        if comm.is_root:
            print(f"mcsim run: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    progress = "off" if args.quiet else args.progress
    try:
        result = simulate(cfg, output=cfg.output.path, threads=args.threads, progress=progress,
                          force=args.force, comm=comm)
    except Interrupted as exc:
        if comm.is_root:
            print(f"mcsim run: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ResumeError, ConfigError) as exc:
        print(f"mcsim run: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ResultFileError as exc:
        print(f"mcsim run: error: {exc}", file=sys.stderr)
        if comm.size > 1:
            comm.abort(EXIT_FAILURE)
        return EXIT_FAILURE
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        if comm.size > 1:       # never leave the other ranks waiting in a collective
            print(f"mcsim run: rank {comm.rank} failed; aborting the job", file=sys.stderr)
            comm.abort(EXIT_FAILURE)
        return EXIT_FAILURE
    if comm.is_root and result is not None:
        rate = result.attrs.get("networks_per_second", 0.0)
        logging.getLogger("mcsim").info("wrote %s: %s networks, %.0f networks/s", cfg.output.path,
                                        f"{result.networks:,}", rate)
    return EXIT_OK


def cmd_info(args) -> int:
    from .hdf5io import ResultFileError, open_result
    from .report import format_result
    try:
        result = open_result(args.file)
    except ResultFileError as exc:
        print(f"mcsim info: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(format_result(result, layers=args.layer, show_all=args.all))
    return EXIT_OK


def cmd_merge(args) -> int:
    from .driver import ResumeError
    from .hdf5io import ResultFileError
    from .merge import merge_files
    try:
        result = merge_files(args.files, args.output, force=args.force)
    except (ResumeError, FileExistsError) as exc:
        print(f"mcsim merge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ResultFileError as exc:
        print(f"mcsim merge: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"mcsim merge: wrote {args.output}: {result.networks:,} networks from {len(args.files)} files")
    return EXIT_OK


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:             # `mcsim info x.h5 | head`: not an error
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
