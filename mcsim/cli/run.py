"""`mcsim run`, `mcsim info`, `mcsim merge` (registered by ``add_commands``)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from ..errors import ConfigError, Interrupted, McsimError, NumericalOverflow, PeerFailed
from .status import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exit_status, report


def positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError("must be in [0, 2**63)")
    return value


def add_commands(sub) -> None:
    from ..samplers import AUTO, SAMPLERS
    from ..stats.statistics import STATISTICS
    r = sub.add_parser("run", help="sample an ensemble and write its statistics to HDF5",
                       description="Sample the ensemble described by CONFIG (TOML) and write the "
                       "per-layer estimates with standard errors to HDF5. An existing output of "
                       "the same ensemble is resumed (or extended when more networks are asked "
                       "for); one of a different ensemble is refused unless --force; a complete "
                       "one is left untouched. Works under mpirun/mpiexec/srun: blocks are spread "
                       "over ranks, one rank writes.",
                       epilog="Exit status: 0 done; 1 failure; 2 bad config/usage or incompatible "
                              "existing output (nothing changed); 75 stopped by SIGTERM/SIGINT/"
                              "SIGUSR1 with a checkpoint written: rerun the same command to resume.")
    r.add_argument("config", help="run configuration (TOML)")
    r.add_argument("-o", "--output", help="output HDF5 file (overrides output.path)")
    r.add_argument("--networks", type=positive_int, help="number of networks (overrides ensemble.networks)")
    r.add_argument("--seed", type=seed, help="root seed (overrides ensemble.seed)")
    r.add_argument("--sampler", choices=(AUTO,) + tuple(SAMPLERS),
                   help="overrides ensemble.sampler (auto: the exact reduced samplers where they apply)")
    r.add_argument("--threads", type=positive_int, help="Numba threads per process (default: all cores, or NUMBA_NUM_THREADS)")
    r.add_argument("--force", action="store_true", help="overwrite an existing output file instead of resuming it")
    r.add_argument("--max-memory", metavar="SIZE", help="refuse a run estimated to need more memory per "
                   "process than SIZE (e.g. 64G; default MCSIM_MAX_MEMORY or 80%% of this machine's memory)")
    r.add_argument("--watchdog", type=float, metavar="SECONDS",
                   help="MPI: abort the job when no round of blocks completes for max(SECONDS, 20x "
                   "the longest round), e.g. a rank was stopped (default: off, or MCSIM_WATCHDOG)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress or log lines, only errors")
    r.add_argument("--progress", choices=("bar", "log", "off"), help="progress style (default: bar on a terminal, log lines otherwise)")
    r.set_defaults(func=cmd_run)

    i = sub.add_parser("info", help="print the estimates stored in a result file",
                       description="Print a result file's metadata and, per layer, every statistic "
                       f"it holds ({', '.join(STATISTICS)}; distinct entries by symmetry), each +- "
                       "its standard error.")
    i.add_argument("file", help="HDF5 file written by mcsim run or merge")
    i.add_argument("--layer", type=positive_int, action="append", help="only this layer (repeatable)")
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

    c = sub.add_parser("compile", help="compile the kernels into Numba's cache (once per machine)",
                       description="Compile mcsim's Numba kernels for every sampler and store them "
                       "in Numba's on-disk cache (beside the kernel sources, or NUMBA_CACHE_DIR), so "
                       "that the first `mcsim run` starts at once instead of compiling for tens of "
                       "seconds. scripts/setup.sh runs it. Fast when the cache is already warm.")
    c.add_argument("--quiet", "-q", action="store_true", help="print nothing")
    c.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="compile in N processes (default: the number of usable cores, at most 4)")
    c.set_defaults(func=cmd_compile)

    pl = sub.add_parser("plan", help="networks and time needed for a target error (short pilot)",
                        description="Run a short pilot of CONFIG in this process (a few seconds, "
                        "the run's own first blocks), then print how many networks and how much "
                        "sampling time the target error needs, and what the config's networks "
                        "would give. Writes nothing.")
    pl.add_argument("config", help="run configuration (TOML)")
    pl.add_argument("--target", metavar="SPEC",
                    help="statistic=vertex,layer=10,relative_stderr=0.01 (or stderr=..., entry=...), "
                    "or a TOML inline table; default: [ensemble] target of the config")
    pl.add_argument("--pilot-seconds", type=float, default=3.0, help="sampling time of the pilot (default 3)")
    pl.add_argument("--threads", type=positive_int, help="Numba threads (default: all cores)")
    pl.add_argument("--networks", type=positive_int, help="the cap (overrides ensemble.networks)")
    pl.set_defaults(func=cmd_plan)


def _setup_logging(quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="mcsim: %(message)s", stream=sys.stderr, force=True)


def cmd_run(args) -> int:
    from ..run.signals import capture_early
    capture_early()             # before the slow imports: a SLURM warning now is not fatal
    from ..config import load_config
    from ..run.driver import simulate
    from ..run.parallel import get_comm
    comm = get_comm()           # MPIUnavailableError: reported by main (exit 2)
    _setup_logging(args.quiet or not comm.is_root)
    try:
        cfg = load_config(args.config)
        cfg = cfg.replace(networks=args.networks, seed=args.seed, sampler=args.sampler, path=args.output)
        if not cfg.output.path:
            raise ConfigError("output.path: missing; give -o/--output or output.path in the config")
    except ConfigError as exc:
        return report("run", exc) if comm.is_root else exit_status(exc)
    progress = "off" if args.quiet else args.progress
    try:
        result = simulate(cfg, output=cfg.output.path, threads=args.threads, progress=progress,
                          force=args.force, comm=comm, max_memory=args.max_memory,
                          watchdog=args.watchdog)
    except McsimError as exc:
        if isinstance(exc, PeerFailed) or (isinstance(exc, Interrupted) and not comm.is_root):
            return exit_status(exc)             # the root reports it
        code = report("run", exc)
        if comm.size > 1 and (code == EXIT_FAILURE or isinstance(exc, NumericalOverflow)):
            comm.abort(code)                    # never leave the other ranks in a collective
        return code
    except BaseException:
        traceback.print_exc()
        if comm.size > 1:       # never leave the other ranks waiting in a collective
            print(f"mcsim run: rank {comm.rank} failed; aborting the job", file=sys.stderr)
            comm.abort(EXIT_FAILURE)
        return EXIT_FAILURE
    if comm.is_root and result is not None and result.written:
        rate = result.attrs.get("networks_per_second", 0.0)
        logging.getLogger("mcsim").info("wrote %s: %s networks, %.0f networks/s", cfg.output.path,
                                        f"{result.networks:,}", rate)
    return EXIT_OK


def cmd_info(args) -> int:
    from ..analysis.report import format_result
    from ..storage.reader import open_result
    print(format_result(open_result(args.file), layers=args.layer, show_all=args.all))
    return EXIT_OK


def cmd_compile(args) -> int:
    import time
    _setup_logging(True)            # its own lines below, not the warm-up's
    from ..run.warmup import compile_all
    t0 = time.monotonic()
    if not args.quiet:
        print("mcsim compile: compiling the kernels (a minute or so the first time) ...", flush=True)
    jobs = args.jobs if args.jobs is not None else min(4, len(os.sched_getaffinity(0)))
    if jobs < 1:
        print("mcsim compile: error: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    done = compile_all(announce=False, jobs=jobs)
    if not args.quiet:
        for sampler, stats, seconds in done:
            print(f"  {sampler:<8} {stats:<24} {seconds:6.1f} s")
        print(f"mcsim compile: kernels ready in Numba's cache ({time.monotonic() - t0:.1f} s)")
    return EXIT_OK


def cmd_plan(args) -> int:
    from ..config import load_config
    from ..config.target import parse_target_text
    from ..run.plan import plan
    _setup_logging(False)
    cfg = load_config(args.config).replace(networks=args.networks)
    target = parse_target_text(args.target) if args.target else None
    print(plan(cfg, target, pilot_seconds=args.pilot_seconds, threads=args.threads).text())
    return EXIT_OK


def cmd_merge(args) -> int:
    from ..storage.merge import merge_files
    result = merge_files(args.files, args.output, force=args.force)
    print(f"mcsim merge: wrote {args.output}: {result.networks:,} networks from {len(args.files)} files")
    return EXIT_OK
