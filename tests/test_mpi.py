"""MPI (the project's own MPICH wheel): results bitwise equal for 1, 2 and 3 ranks; failures abort."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN, run_cli
from tests.test_checkpoint import assert_same_statistics

MPIEXEC = shutil.which("mpiexec", path=str(VENV_BIN)) or shutil.which("mpiexec")
pytestmark = [pytest.mark.mpi,
              pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install mpich mpi4py)")]
ENV = dict(os.environ, NUMBA_NUM_THREADS="1")
# one machine: shared-memory transports only (see the note on UCX_TLS in tests/test_slurm.py)
ENV.setdefault("UCX_TLS", "self,sm")
TMP = Path("/tmp")                # where Hydra writes its topology files, whatever TMPDIR says


def _open_files() -> set[str]:
    """Every path some process on this machine holds open (from /proc/*/fd)."""
    held = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                try:
                    held.add(os.readlink(fd))
                except OSError:
                    pass
        except OSError:
            pass
    return held


@pytest.fixture(scope="module", autouse=True)
def remove_hydra_topology_files():
    """MPICH's mpiexec (Hydra) exports the node's hwloc topology to
    /tmp/hydra_hwloc_xmlfile_XXXXXX (a fixed path, TMPDIR is ignored) and leaves it behind when
    a job ends in MPI_Abort, as the failure tests here do. Remove the ones these tests left:
    new since the module started, and held open by no process."""
    before = set(TMP.glob("hydra_hwloc_xmlfile_*"))
    yield
    left = set(TMP.glob("hydra_hwloc_xmlfile_*")) - before
    deadline = time.monotonic() + 10       # an aborted job's processes may take a moment to go
    while left and time.monotonic() < deadline:
        held = _open_files()
        for path in [p for p in left if str(p) not in held]:
            try:
                path.unlink()
            except OSError:
                pass
            left.discard(path)
        if left:
            time.sleep(0.5)


def mpirun(n, *args, timeout=180):
    return subprocess.run([MPIEXEC, "-n", str(n), str(VENV_BIN / "mcsim"), *map(str, args)],
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def test_ranks_give_bitwise_identical_results(small_config, tmp_path):
    single = tmp_path / "one.h5"
    proc = run_cli("run", small_config, "-o", single, "--quiet", "--networks", "16384")
    assert proc.returncode == 0, proc.stderr
    for n in (2, 3):            # 3 ranks oversubscribe the 2 cores
        out = tmp_path / f"mpi{n}.h5"
        proc = mpirun(n, "run", small_config, "-o", out, "--quiet", "--networks", "16384")
        assert proc.returncode == 0, proc.stderr
        assert_same_statistics(single, out)
        import h5py
        with h5py.File(out, "r") as f:
            assert f.attrs["ranks"] == n
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".h5") == ["mpi2.h5", "mpi3.h5", "one.h5"]


def test_root_error_stops_all_ranks(small_config, tmp_path):
    proc = mpirun(2, "run", small_config, "-o", tmp_path / "missing" / "x.h5", timeout=60)
    assert proc.returncode != 0
    assert "cannot write" in proc.stderr


def test_failing_rank_aborts_the_job_instead_of_hanging(small_config, tmp_path):
    # rank 1 raises inside its sampling; the job must end (MPI_Abort), not hang in a gather
    code = (
        "import sys, mcsim.run.driver as d\n"
        "from mcsim.run.parallel import get_comm\n"
        "orig = d.BlockWorker.run\n"
        "def run(self, first, n):\n"
        "    if get_comm().rank == 1: raise RuntimeError('injected failure on rank 1')\n"
        "    return orig(self, first, n)\n"
        "d.BlockWorker.run = run\n"
        "from mcsim.cli import main\n"
        f"sys.exit(main(['run', {str(small_config)!r}, '-o', {str(tmp_path / 'x.h5')!r}, '--quiet']))\n"
    )
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-c", code], env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "injected failure on rank 1" in proc.stderr


def test_launcher_without_mpi4py_is_refused(small_config, tmp_path):
    # pretend a launcher started 2 ranks; hide mpi4py from this process
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "from mcsim.cli import main\n"
            f"sys.exit(main(['run', {str(small_config)!r}, '-o', {str(tmp_path / 'x.h5')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], env=dict(ENV, PMI_SIZE="2", PMI_RANK="0"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "mpi4py is not installed" in proc.stderr
    assert not (tmp_path / "x.h5").exists()


def test_target_stop_under_mpi_matches_a_fixed_single_process_run(tmp_path):
    # the root decides to stop and broadcasts the new end: every rank leaves the loop together
    cfg = tmp_path / "target.toml"
    cfg.write_text(
        '[network]\ninput_dim = 2\nwidths = [6, 5, 4]\nactivation = "relu"\nC_W = 2.0\n'
        '[inputs]\nvalues = [[1.0, 0.0], [0.6, 0.8]]\n'
        '[ensemble]\nnetworks = 4_000_000\nseed = 5\nblock_size = 128\njackknife_bins = 8\n'
        'target = { statistic = "vertex", layer = 3, relative_stderr = 0.04 }\n'
        '[output]\nstatistics = ["metric", "vertex"]\ncheckpoint_interval = 0.05\n')
    out = tmp_path / "mpi.h5"
    proc = mpirun(2, "run", cfg, "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    import h5py
    with h5py.File(out, "r") as f:
        networks = int(f.attrs["networks"])
        assert f.attrs["complete"] and f.attrs["target_reached"] and f.attrs["ranks"] == 2
    assert networks < 4_000_000
    single = tmp_path / "one.h5"
    fixed = tmp_path / "fixed.toml"
    fixed.write_text(cfg.read_text().replace(
        'target = { statistic = "vertex", layer = 3, relative_stderr = 0.04 }\n', ""))
    proc = run_cli("run", fixed, "-o", single, "--quiet", "--networks", networks)
    assert proc.returncode == 0, proc.stderr
    assert_same_statistics(single, out)


def test_shares_follow_rank_speed_and_change_no_number(small_config, tmp_path):
    """A rank made 5x slower (test-only MCSIM_TEST_SLOW_RANK, it sleeps after sampling) gets
    fewer blocks than every other rank, and the result is still bitwise that of one process."""
    import h5py
    single = tmp_path / "one.h5"
    proc = run_cli("run", small_config, "-o", single, "--quiet", "--networks", "640000")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "slow.h5"
    env = dict(ENV, MCSIM_TEST_SLOW_RANK="1:5")
    proc = subprocess.run([MPIEXEC, "-n", "3", str(VENV_BIN / "mcsim"), "run", str(small_config),
                           "-o", str(out), "--quiet", "--networks", "640000"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert_same_statistics(single, out)
    with h5py.File(out, "r") as f:
        blocks = [int(b) for b in f.attrs["session_rank_blocks"]]
        assert sum(blocks) == f.attrs["blocks"] == 5000
        assert 0 < f.attrs["session_rank_efficiency"] <= 1
    # a 5x margin: the slow rank's share is about a fifth of the others'
    assert blocks[1] < min(blocks[0], blocks[2]), blocks
    proc = run_cli("info", out)
    assert proc.returncode == 0 and f"blocks per rank {blocks}" in proc.stdout, proc.stdout
