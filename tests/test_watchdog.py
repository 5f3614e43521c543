"""The optional MPI watchdog: a stopped rank ends the job with a message instead of a hang."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mcsim.errors import ConfigError
from mcsim.run.watchdog import ABORT_GRACE, Watchdog, watchdog_seconds
from tests.conftest import VENV_BIN, write_config
from tests.test_checkpoint import LONG, wait_for_checkpoint
from tests.test_mpi import ENV, MPIEXEC, remove_hydra_topology_files  # noqa: F401 (autouse fixture)


def test_watchdog_fires_only_after_a_round_and_a_silence(capsys):
    fired = threading.Event()
    with Watchdog(0.3, 0, fired.set) as dog:
        time.sleep(0.8)
        assert not fired.is_set()               # not armed before the first round (compiling)
        dog.beat()
        for _ in range(3):
            time.sleep(0.1)
            dog.beat()                          # rounds keep coming: quiet
        assert not fired.is_set()
        assert fired.wait(3 + ABORT_GRACE)      # silence: fires (the message, then the grace)
    assert "no round completed" in capsys.readouterr().err


def test_watchdog_setting():
    assert watchdog_seconds(None) is None or os.environ.get("MCSIM_WATCHDOG")
    assert watchdog_seconds("2.5") == 2.5
    with pytest.raises(ConfigError):
        watchdog_seconds("-1")
    with pytest.raises(ConfigError):
        watchdog_seconds("soon")


def _descendants(pid: int) -> list[int]:
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec")
def test_stopped_rank_ends_the_job_with_a_message(tmp_path):
    cfg = write_config(tmp_path, LONG.format(networks=20_000_000))
    out = tmp_path / "w.h5"
    proc = subprocess.Popen([MPIEXEC, "-n", "2", str(VENV_BIN / "mcsim"), "run", str(cfg), "-o", str(out),
                             "--progress", "log", "--watchdog", "3"], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ranks = []
    try:
        wait_for_checkpoint(out, proc, min_blocks=1, timeout=120)
        ranks = [p for p in _descendants(proc.pid)
                 if b"mcsim" in Path(f"/proc/{p}/cmdline").read_bytes() and p != proc.pid]
        assert ranks
        os.kill(max(ranks), signal.SIGSTOP)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode != 0
        assert "watchdog" in stderr and "no round completed" in stderr, stderr
    finally:
        for p in ranks:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(p, sig)
                except OSError:
                    pass
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
