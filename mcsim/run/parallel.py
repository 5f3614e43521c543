"""Process-level parallelism: the only module that imports mpi4py.

Numerical code talks to a `Comm` with five operations (rank/size, bcast, gather, any_true,
abort) and runs unchanged with one process (`SerialComm`). mpi4py is imported only when the
environment says the process was started by an MPI launcher (mpirun/mpiexec/srun) with more
than one rank, so a laptop run never initialises MPI. If a launcher started several ranks but
mpi4py is missing, we refuse to run: otherwise each rank would silently compute (and write)
the whole ensemble on its own.
"""
from __future__ import annotations

import os
import sys

# Environment variables by which launchers announce the world size.
_SIZE_VARS = (
    "OMPI_COMM_WORLD_SIZE",     # Open MPI
    "PMI_SIZE",                 # MPICH / Hydra, Intel MPI, srun --mpi=pmi2
    "PMIX_SIZE",                # some PMIx launchers
    "MPI_LOCALNRANKS",          # Hydra (single node)
    "MV2_COMM_WORLD_SIZE",      # MVAPICH2
)


def launched_size() -> int:
    """World size announced by an MPI launcher or srun, 1 when none."""
    for var in _SIZE_VARS:
        value = os.environ.get(var)
        if value and value.isdigit():
            return int(value)
    # srun without an MPI plugin still starts SLURM_NTASKS copies inside a job step
    if "SLURM_STEP_ID" in os.environ and os.environ.get("SLURM_NTASKS", "1").isdigit():
        return int(os.environ.get("SLURM_STEP_NUM_TASKS", os.environ["SLURM_NTASKS"]))
    return 1


from ..errors import MPIUnavailableError  # noqa: E402  (re-exported)


class SerialComm:
    """One process: every collective is the identity."""
    rank = 0
    size = 1
    is_root = True
    name = "serial"

    def bcast(self, obj):
        return obj

    def gather(self, obj):
        return [obj]

    def any_true(self, flag: bool) -> bool:
        return bool(flag)

    def barrier(self) -> None:
        pass

    def abort(self, code: int = 1):
        sys.stderr.flush()
        os._exit(code)


class MPIComm:
    """MPI.COMM_WORLD behind the same five operations (pickle-based, small messages)."""
    name = "mpi"

    def __init__(self):
        from mpi4py import MPI        # the one import of mpi4py in mcsim
        self._MPI = MPI
        self._comm = MPI.COMM_WORLD
        self.rank = self._comm.Get_rank()
        self.size = self._comm.Get_size()
        self.is_root = self.rank == 0

    def bcast(self, obj):
        return self._comm.bcast(obj, root=0)

    def gather(self, obj):
        return self._comm.gather(obj, root=0)

    def any_true(self, flag: bool) -> bool:
        return bool(self._comm.allreduce(bool(flag), op=self._MPI.LOR))

    def barrier(self) -> None:
        self._comm.Barrier()

    def abort(self, code: int = 1):
        """Stop every rank of the job (never hang waiting for a dead peer)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self._comm.Abort(code)

    @property
    def library(self) -> str:
        return self._MPI.Get_library_version().splitlines()[0].strip()


_COMM = None


def get_comm():
    """The process's communicator: MPIComm under a multi-rank launch, else SerialComm.

    Set MCSIM_NO_MPI=1 to force serial mode."""
    global _COMM
    if _COMM is not None:
        return _COMM
    size = launched_size()
    if size <= 1 or os.environ.get("MCSIM_NO_MPI") == "1":
        _COMM = SerialComm()
        return _COMM
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise MPIUnavailableError(
            f"this process was started by an MPI launcher or srun with {size} ranks, but mpi4py "
            "is not installed, so every rank would run the whole ensemble on its own. Install "
            "it (pip install mpi4py mpich, or build mpi4py against your cluster's MPI; see the "
            "README), or run a single process.") from None
    comm = MPIComm()
    if comm.size == 1:
        # each process initialised MPI alone: the launcher's MPI is not the one mpi4py uses
        raise MPIUnavailableError(
            f"the launcher started {size} ranks but MPI sees only 1 in this process: mpi4py is "
            "built against a different MPI than the launcher (e.g. srun --mpi=none, or a "
            "cluster mpirun with the PyPI mpich wheel). Use the matching mpiexec (or srun "
            "--mpi=pmi2), or rebuild mpi4py against the cluster's MPI (see the README).")
    _COMM = comm
    return _COMM
