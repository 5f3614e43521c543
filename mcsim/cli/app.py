"""`mcsim`: the parser, the dispatch, and the one place where errors become exit statuses.

Exit status (documented in the README; job scripts rely on it):
  0   success (also: the output was already complete, nothing to do)
  1   runtime failure (I/O error, damaged file, a rank died)
  2   bad configuration or usage, or an existing output that belongs to another ensemble;
      nothing was written or changed
  75  stopped by SIGTERM / SIGINT / SIGUSR1 after writing a valid checkpoint: run the same
      command again to resume

Subcommands live in `run`, `theory` and `sweep`; each registers its parsers with
``add_commands(subparsers)`` and its functions raise mcsim's exceptions (`mcsim.errors`),
which `main` maps to the statuses above through the table in `status`.
"""
from __future__ import annotations

import sys

# Nothing else at module level: `main` takes over the stop signals of `mcsim run` before the
# slow imports.


def build_parser():
    import argparse

    from .. import __version__
    from . import run as _run, sweep as _sweep, theory as _theory
    from .status import EXIT_USAGE

    class _Parser(argparse.ArgumentParser):
        def error(self, message):           # argparse's own errors: status 2, like ours
            self.print_usage(sys.stderr)
            self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    p = _Parser(prog="mcsim", description="Monte Carlo ensembles of randomly initialised MLPs: "
                "finite-width statistics of preactivations (metric, four-point and six-point "
                "vertices) with error bars, and their 1/n predictions.",
                epilog="Exit status: 0 ok; 1 failure; 2 bad config/usage (nothing written); "
                       "75 stopped by a signal with a checkpoint written (rerun to resume).")
    p.add_argument("--version", action="version", version=f"mcsim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in (_run, _theory, _sweep):
        module.add_commands(sub)
    return p


def main(argv=None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if words[:1] == ["run"]:
        # before building the parser (it imports the registries): a SLURM warning during
        # start-up is remembered and ends the run with a checkpoint, instead of killing it
        from ..run.signals import capture_early
        capture_early()
    from ..errors import McsimError
    from .status import EXIT_OK, report
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except McsimError as exc:
        return report(args.command, exc)
    except BrokenPipeError:             # `mcsim info x.h5 | head`: not an error
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
