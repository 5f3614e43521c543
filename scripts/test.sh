#!/usr/bin/env bash
# Install what the tests need (idempotent) and run the test suite. CI runs exactly this.
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# one Numba thread per process unless a test asks for more: MPI tests oversubscribe 2 cores
export PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest -q "$@"
