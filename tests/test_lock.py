"""Exclusive output locks: two writers of one file are refused, stale locks are taken over."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from mcsim.errors import OutputLocked
from mcsim.storage.lock import OutputLock, lock_path, read_holder
from tests.conftest import VENV_BIN, write_config


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_file_names_holder_and_is_removed(tmp_path):
    out = tmp_path / "r.h5"
    with OutputLock(out, "mcsim run x") as lock:
        holder = read_holder(lock_path(out))
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder["command"] == "mcsim run x"
        with pytest.raises(OutputLocked) as exc:
            OutputLock(out, "second").acquire()
        assert f"pid {os.getpid()}" in str(exc.value) and socket.gethostname() in str(exc.value)
        assert lock.path.exists()
    assert not lock_path(out).exists()
    assert [p.name for p in tmp_path.iterdir()] == []          # no private files left


def test_stale_lock_of_dead_process_is_taken_over(tmp_path, capsys):
    out = tmp_path / "r.h5"
    lock_path(out).write_text(json.dumps({"host": socket.gethostname(), "pid": dead_pid(),
                                          "command": "mcsim run"}))
    with OutputLock(out, "new"):
        assert read_holder(lock_path(out))["command"] == "new"
    assert "stale lock" in capsys.readouterr().err


def test_reused_pid_is_stale(tmp_path):
    """A live pid whose start time differs from the recorded one is another process."""
    out = tmp_path / "r.h5"
    if not os.path.exists(f"/proc/{os.getpid()}/stat"):
        pytest.skip("needs /proc")
    lock_path(out).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid(),
                                          "start": "1"}))
    with OutputLock(out, "new"):
        pass


@pytest.mark.parametrize("holder", [{"host": "some-other-node", "pid": 1234}, "garbage {"])
def test_lock_of_other_host_or_unreadable_is_never_guessed_stale(tmp_path, holder):
    out = tmp_path / "r.h5"
    lock_path(out).write_text(json.dumps(holder) if isinstance(holder, dict) else holder)
    with pytest.raises(OutputLocked) as exc:
        OutputLock(out, "new").acquire()
    assert "delete" in str(exc.value) and str(lock_path(out)) in str(exc.value)
    if isinstance(holder, dict):
        assert "some-other-node" in str(exc.value) and "1234" in str(exc.value)
    assert lock_path(out).exists()


def test_requeued_slurm_job_takes_over_its_earlier_incarnation(tmp_path, monkeypatch):
    """After a node failure SLURM requeues the job on another node: same job id, next restart
    count. Its old lock (of the dead node) is taken over; another job's is not."""
    out = tmp_path / "r.h5"
    old = {"host": "dead-node", "pid": 4242, "slurm_job": "777", "slurm_restart": "0"}
    lock_path(out).write_text(json.dumps(old))
    monkeypatch.setenv("SLURM_JOB_ID", "778")
    with pytest.raises(OutputLocked):
        OutputLock(out, "other job").acquire()
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    with pytest.raises(OutputLocked):                 # same incarnation elsewhere: alive
        OutputLock(out, "same job").acquire()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    with OutputLock(out, "requeued"):
        assert read_holder(lock_path(out))["slurm_restart"] == "1"


def test_symlinks_share_the_lock(tmp_path):
    target = tmp_path / "target.h5"
    link = tmp_path / "link.h5"
    link.symlink_to(target)
    with OutputLock(target, "a"):
        with pytest.raises(OutputLocked):
            OutputLock(link, "b").acquire()


def _contend(path, barrier, queue):
    barrier.wait()
    try:
        lock = OutputLock(path, "contender").acquire()
        queue.put("won")
        time.sleep(0.5)                 # hold it while the others try
        lock.release()
    except OutputLocked:
        queue.put("refused")


def test_exactly_one_of_many_contenders_wins_also_over_a_stale_lock(tmp_path):
    out = tmp_path / "r.h5"
    lock_path(out).write_text(json.dumps({"host": socket.gethostname(), "pid": dead_pid()}))
    ctx = multiprocessing.get_context("fork")
    n = 6
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(out, barrier, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    results = sorted(queue.get(timeout=5) for _ in range(n))
    assert results.count("won") == 1, results


FAST = """
[network]
input_dim = 2
widths = [32, 32, 32, 1]
activation = "tanh"
C_W = 1.5

[inputs]
values = [[1.0, 0.5]]

[ensemble]
networks = {networks}
seed = 1
block_size = 256
jackknife_bins = 8

[output]
statistics = ["metric", "vertex"]
checkpoint_interval = 0.3
"""


def test_concurrent_runs_on_one_output(tmp_path):
    """The issue's scenario: two runs with different seeds on one output. The second is
    refused (exit 2, naming the holder); the file holds the first run only."""
    from mcsim.storage.reader import read_run
    cfg = write_config(tmp_path, FAST.format(networks=50_000_000))
    out = tmp_path / "out.h5"
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    first = subprocess.Popen([str(VENV_BIN / "mcsim"), "run", str(cfg), "-o", str(out), "--seed", "7",
                              "-q"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not lock_path(out).exists():
        assert first.poll() is None, first.communicate()
        assert time.time() - t0 < 60
        time.sleep(0.02)
    second = subprocess.run([str(VENV_BIN / "mcsim"), "run", str(cfg), "-o", str(out), "--seed", "8"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2, second.stderr
    assert "in use by pid" in second.stderr and str(first.pid) in second.stderr
    assert "Traceback" not in second.stderr
    first.send_signal(signal.SIGTERM)     # ends with a checkpoint (exit 75)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 75, stderr
    run = read_run(out)
    assert run.config.ensemble.seed == 7
    assert not lock_path(out).exists()


def test_merge_output_is_locked(tmp_path):
    from mcsim.storage.merge import merge_files
    out = tmp_path / "m.h5"
    with OutputLock(out, "someone"):
        with pytest.raises(OutputLocked):
            merge_files([tmp_path / "a.h5"], out)
