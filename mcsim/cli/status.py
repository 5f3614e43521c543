"""Exit statuses: the one table that maps mcsim's exceptions to them (see `mcsim.cli.app`)."""
from __future__ import annotations

import sys

from ..errors import (ConfigError, Interrupted, MPIUnavailableError, McsimError, NumericalOverflow,
                      OutputLocked, PeerFailed, ResultFileError, ResumeError, SweepError)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 75

#: exception class -> exit status (the first matching class in this order wins)
EXIT_STATUS = (
    (Interrupted, EXIT_INTERRUPTED),
    (ConfigError, EXIT_USAGE),
    (ResumeError, EXIT_USAGE),
    (SweepError, EXIT_USAGE),
    (MPIUnavailableError, EXIT_USAGE),
    (OutputLocked, EXIT_USAGE),
    (NumericalOverflow, EXIT_USAGE),
    (ResultFileError, EXIT_FAILURE),
    (PeerFailed, EXIT_FAILURE),
    (McsimError, EXIT_FAILURE),
)


def exit_status(exc: BaseException) -> int:
    kind = type(exc)
    if isinstance(exc, PeerFailed) and isinstance(getattr(exc, "cause", None), type):
        kind = exc.cause                    # the root's status, on every rank
    for cls, code in EXIT_STATUS:
        if issubclass(kind, cls):
            return code
    return EXIT_FAILURE


def report(command: str, exc: BaseException) -> int:
    """Print one line for an mcsim error and return its exit status."""
    code = exit_status(exc)
    if isinstance(exc, Interrupted):
        print(f"mcsim {command}: {exc}", file=sys.stderr)
    elif not isinstance(exc, PeerFailed):      # the root rank reports the reason
        print(f"mcsim {command}: error: {exc}", file=sys.stderr)
    return code
