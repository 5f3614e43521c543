"""`mcsim sweep ... --local [-j N]`: a sweep's tasks run on this machine, each an `mcsim run`
(resumable), leaving the folder that `mcsim collect` reads."""
from __future__ import annotations

import textwrap

import h5py
import numpy as np

from tests.conftest import run_cli
from tests.test_checkpoint import assert_same_statistics

BASE = """
[network]
input_dim = 2
widths = [4, 4, 4]
activation = "tanh"
[inputs]
values = [[1.0, 0.0], [0.6, 0.8]]
[ensemble]
networks = 4096
seed = 1
block_size = 128
jackknife_bins = 8
[output]
statistics = ["metric", "vertex"]
"""
SWEEP = """
base = "base.toml"
[vary]
"network.width" = [4, 8]
"""


def write_checkpoint(config, blocks: int) -> None:
    """A genuine partial result (what a killed or interrupted run leaves): the driver's own
    checkpoint after the first ``blocks`` blocks."""
    from mcsim.config import load_config
    from mcsim.run.driver import BlockWorker, RunState, _checkpoint
    from mcsim.stats.accumulator import accumulator_layout, new_accumulator
    cfg = load_config(config)
    acc = new_accumulator(cfg)
    acc.add_blocks(0, *BlockWorker(cfg, accumulator_layout(cfg)).run(0, blocks))
    _checkpoint(cfg, cfg.output.path, RunState(acc, start_block=0), 0.1, complete=False)


def test_local_sweep_runs_resumes_and_collects(tmp_path):
    (tmp_path / "base.toml").write_text(textwrap.dedent(BASE))
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(textwrap.dedent(SWEEP))
    folder = tmp_path / "sw"
    proc = run_cli("sweep", sweep, "-d", folder, "--local", "--submit")
    assert proc.returncode == 2 and "not both" in proc.stderr
    # a partial start of task 1 (fewer networks), which the local sweep must extend
    proc = run_cli("sweep", sweep, "-d", folder, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("sweep", sweep, "-d", folder)                  # writes the folder only
    assert proc.returncode == 0 and "--local" in proc.stdout
    task1 = folder / "tasks" / "1"
    write_checkpoint(task1 / "config.toml", blocks=8)
    proc = run_cli("sweep", sweep, "-d", folder, "--local", "-j", "2", "--threads", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 tasks complete, 0 failed" in proc.stdout
    for i in (0, 1):
        assert (folder / "tasks" / str(i) / "exit_status").read_text().strip() == "0"
        with h5py.File(folder / "tasks" / str(i) / "result.h5", "r") as f:
            assert f.attrs["complete"] and f.attrs["networks"] == 4096
    assert "resuming" in (folder / "logs" / "local_1.out").read_text()
    # the extended task equals a plain uninterrupted run of its config
    fresh = tmp_path / "fresh.h5"
    proc = run_cli("run", task1 / "config.toml", "-o", fresh, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert_same_statistics(fresh, task1 / "result.h5")
    # again: nothing left to run
    proc = run_cli("sweep", sweep, "-d", folder, "--local")
    assert proc.returncode == 0 and "all tasks complete" in proc.stdout
    out = tmp_path / "sw.h5"
    proc = run_cli("collect", folder, "-o", out, "--strict")
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as f:
        assert [int(w) for w in f["manifest"]["network.width"]] == [4, 8]
        assert np.all(f["manifest"]["status"].astype(str) == "complete")


def test_local_sweep_reports_a_failing_task(tmp_path):
    (tmp_path / "base.toml").write_text(textwrap.dedent(BASE))
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(textwrap.dedent(SWEEP))
    folder = tmp_path / "sw"
    assert run_cli("sweep", sweep, "-d", folder).returncode == 0
    (folder / "tasks" / "0" / "result.h5").write_bytes(b"not an hdf5 file")     # damaged
    proc = run_cli("sweep", sweep, "-d", folder, "--local")
    assert proc.returncode == 1
    assert "1 tasks complete, 1 failed" in proc.stdout and "failed tasks: 0" in proc.stderr
    assert (folder / "tasks" / "0" / "exit_status").read_text().strip() != "0"
