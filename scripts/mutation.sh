#!/usr/bin/env bash
# Curated mutation testing (not part of CI: it takes a while). Applies each mutant of
# scripts/mutants.py to a temporary copy of this checkout, runs the tests named for it and
# prints killed / survived; the last line is "mutation score: K/N killed".
#   bash scripts/mutation.sh [--list | --check | MUTANT_ID ... | --module PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh --no-slurm
exec .venv/bin/python scripts/mutants.py "$@"
