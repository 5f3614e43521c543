"""Checkpoints under signals and kill -9: a valid file at any moment, bitwise-exact resume."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from mcsim.storage.reader import read_run
from tests.conftest import VENV_BIN, write_config

LONG = """
[network]
input_dim = 2
widths = [48, 48, 48, 48, 1]
activation = "tanh"
C_W = 1.5
C_b = 0.05

[inputs]
values = [[1.0, 0.5], [-0.3, 0.8]]

[ensemble]
networks = {networks}
seed = 17
block_size = 256
jackknife_bins = 32

[output]
statistics = ["metric", "vertex", "six_point"]
checkpoint_interval = 0.3
"""


NETWORKS = 1_200_000      # a few seconds of sampling: long enough to interrupt


def start(cfg, out, *extra):
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    return subprocess.Popen([str(VENV_BIN / "mcsim"), "run", str(cfg), "-o", str(out),
                             "--progress", "log", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(out, proc, min_blocks=1, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        if out.exists():
            try:
                if read_run(out).accumulator.blocks >= min_blocks:
                    return
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def file_arrays(path):
    with h5py.File(path, "r") as f:
        arrays = {}
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
        return arrays


def assert_same_statistics(a, b):
    x, y = file_arrays(a), file_arrays(b)
    assert x.keys() == y.keys()
    for name in x:
        np.testing.assert_array_equal(x[name], y[name], err_msg=name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run (a few seconds of sampling)."""
    d = tmp_path_factory.mktemp("ref")
    cfg = write_config(d, LONG.format(networks=NETWORKS))
    out = d / "ref.h5"
    proc = subprocess.run([str(VENV_BIN / "mcsim"), "run", str(cfg), "-o", str(out), "--quiet"],
                          env=dict(os.environ, NUMBA_NUM_THREADS="1"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return cfg, out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT])
def test_signal_checkpoints_and_exits_75_then_resumes_exactly(reference, tmp_path, sig):
    cfg, ref = reference
    out = tmp_path / "sig.h5"
    proc = start(cfg, out)
    wait_for_checkpoint(out, proc, min_blocks=2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    assert "resume" in err
    run = read_run(out)
    assert not run.attrs["complete"] and 0 < run.accumulator.blocks < -(-NETWORKS // 256)
    with h5py.File(out, "r") as f:
        assert f.attrs["networks"] == run.accumulator.networks
    proc = start(cfg, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "resuming" in err
    assert_same_statistics(ref, out)


def test_kill_9_at_random_moments_then_resume_is_bitwise_equal(reference, tmp_path):
    cfg, ref = reference
    out = tmp_path / "kill.h5"
    rng = np.random.default_rng(2024)
    for delay in rng.uniform(0.0, 1.5, size=3):
        proc = start(cfg, out)
        if out.exists():
            wait_for_checkpoint(out, proc)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        if out.exists():
            read_run(out)                       # always a valid file
    # a temporary file of a writer killed mid-write is cleaned up by the next run
    stale = tmp_path / f".{out.name}.tmp999999999"
    stale.write_bytes(b"half-written")
    proc = start(cfg, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert_same_statistics(ref, out)
    assert not stale.exists()


def _catches(pid: int, sig) -> bool:
    """Whether process pid has a handler installed for sig (Linux: SigCgt in /proc)."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (int(sig) - 1) & 1)
    except OSError:
        pass
    return False


def test_signal_during_start_up_still_checkpoints(reference, tmp_path):
    """A SLURM warning that arrives while mcsim is still importing is not fatal."""
    cfg, _ = reference
    out = tmp_path / "early.h5"
    proc = start(cfg, out)
    # Send it as soon as mcsim has taken over SIGUSR1 (its caught-signal mask in /proc says
    # so), which it does before its slow imports (Numba, h5py): the signal lands during
    # start-up however loaded the machine is (a fixed sleep raced the interpreter's start).
    deadline = time.monotonic() + 30
    while not _catches(proc.pid, signal.SIGUSR1) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert _catches(proc.pid, signal.SIGUSR1), "mcsim never installed its SIGUSR1 handler"
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    assert not read_run(out).attrs["complete"]
