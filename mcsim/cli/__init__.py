"""The command line: `mcsim run | info | merge | compile | plan | theory | compare | sweep | collect`.

    app       the parser, the dispatch and the exit statuses (table in `status`)
    run       run, info, merge, compile, plan
    theory    theory, compare
    sweep     sweep (on SLURM or --local), collect

This package imports nothing at start-up, so that `mcsim run` can take over the stop signals
before any slow import (see `app.main`).
"""


def main(argv=None) -> int:
    from .app import main as _main
    return _main(argv)


__all__ = ["main"]
