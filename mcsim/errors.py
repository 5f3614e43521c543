"""The exceptions mcsim's library code raises (the CLI maps them to exit statuses).

Library code never calls ``sys.exit``: it raises one of these, and the command line turns
each class into the documented exit status in one table (``mcsim.cli.status.EXIT_STATUS``):

    ConfigError, ResumeError, SweepError,           2   bad configuration or usage; nothing
    MPIUnavailableError, OutputLocked,                  was written or changed
    TooLarge, NumericalOverflow
    ResultFileError, PeerFailed                     1   runtime failure
    Interrupted                                     75  stopped by a signal after a checkpoint
"""
from __future__ import annotations


class McsimError(Exception):
    """Base class of mcsim's own errors."""


class ConfigError(McsimError, ValueError):
    """A configuration value is missing or not allowed; the message names the key."""


class ResumeError(McsimError, ValueError):
    """An existing output belongs to a different ensemble (or cannot be resumed or merged);
    it was left unchanged."""


class ResultFileError(McsimError, OSError):
    """An mcsim HDF5 file cannot be read or written; the message says why."""


class SweepError(McsimError, ValueError):
    """A sweep file or sweep folder is not usable; the message says why."""


class MPIUnavailableError(McsimError, RuntimeError):
    """An MPI launcher started several ranks, but this process cannot join them."""


class OutputLocked(McsimError, RuntimeError):
    """Another live process writes the same output (its lock file names it); nothing was
    changed."""


class TooLarge(ConfigError):
    """The memory or the output file a configuration needs exceeds a limit; the message gives
    the estimate, the limit and how to raise it."""


class NumericalOverflow(McsimError, ArithmeticError):
    """Per-network values or moments left float64 (inf / NaN): the message names the first
    layer and what to change. Nothing non-finite was written."""


class PeerFailed(McsimError, RuntimeError):
    """Raised on the other ranks when the root rank failed (the root reports the reason).
    ``cause``: the class of the root's exception, so that every rank exits with the same
    status (MPICH's mpiexec combines the ranks' statuses by bitwise OR: 2 | 1 would be 3)."""

    def __init__(self, message: str = "", cause: type | None = None):
        super().__init__(message)
        self.cause = cause


class Interrupted(McsimError):
    """The run stopped on a signal after writing a checkpoint."""

    def __init__(self, path, networks: int, signame: str):
        super().__init__(f"stopped by {signame} after {networks:,} networks; checkpoint in {path}; "
                         "run the same command again to resume")
        self.path, self.networks, self.signame = path, networks, signame


__all__ = ["McsimError", "ConfigError", "ResumeError", "ResultFileError", "MPIUnavailableError",
           "SweepError", "PeerFailed", "Interrupted", "OutputLocked", "TooLarge", "NumericalOverflow"]
