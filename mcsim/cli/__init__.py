"""The command line: `mcsim run | info | merge | compile | plan | theory | compare | sweep | collect`.

    main      the parser, the dispatch and the exit statuses (table in `status`)
    run       run, info, merge, compile, plan
    theory    theory, compare
    sweep     sweep (on SLURM or --local), collect

This package imports nothing at start-up, so that `mcsim run` can take over the stop signals
before any slow import (see `main.main`).
"""


def main(argv=None) -> int:
    from .main import main as _main
    # importing the submodule `main` rebinds this package's name `main` to it: put the
    # function back, so that `from mcsim.cli import main` keeps giving the entry point
    globals()["main"] = _entry_point
    return _main(argv)


_entry_point = main


__all__ = ["main"]
