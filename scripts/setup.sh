#!/usr/bin/env bash
# Install mcsim and everything its tests need into ./.venv (idempotent).
#   bash scripts/setup.sh            # Python packages (numba, h5py, mpi4py + MPICH wheel,
#                                    # xarray, pandas, ...), compiles the kernels into Numba's
#                                    # cache (mcsim compile) and, as root with apt, installs
#                                    # Debian's SLURM + munge for the SLURM tests (skip with
#                                    # --no-slurm)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
with_slurm=1
for arg in "$@"; do
  case "$arg" in
    --no-slurm) with_slurm=0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# reinstall only when the project metadata changed since the last install
stamp=.venv/.mcsim-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[mpi,analysis,test]"
  touch "$stamp"
fi

if [ "$with_slurm" = 1 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
      echo "setup.sh: installing Debian's slurmctld slurmd slurm-client munge (for the SLURM tests)"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null 2>&1 || \
        echo "setup.sh: warning: could not install SLURM; the SLURM tests will be skipped" >&2
    fi
  else
    echo "setup.sh: not root or no apt-get: SLURM tests will be skipped" >&2
  fi
fi
# Compile the kernels into Numba's cache now (a minute or so once per machine and mcsim
# version; a second when the cache is warm), so that the first `mcsim run` starts at once.
.venv/bin/mcsim compile --quiet || echo "setup.sh: warning: mcsim compile failed; the first run will compile" >&2
echo "setup.sh: ready: .venv/bin/mcsim"
