#!/usr/bin/env bash
# Install what the tests need (idempotent) and run the test suite. CI runs exactly this.
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Numba threads: every mcsim process a test starts (CLI runs, MPI ranks, SLURM jobs) gets
# NUMBA_NUM_THREADS=1 from the test itself (tests/conftest.py run_cli, tests/test_mpi.py, ...),
# since the MPI tests oversubscribe 2 cores. It is deliberately not exported here: pytest's
# own process keeps every core, because the tests that results do not depend on the number
# of threads run two threads in-process (NUMBA_NUM_THREADS=1 would make them compare 1 with 1).
export PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest -q "$@"
