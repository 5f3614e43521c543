"""Running a sweep's tasks on this machine (`mcsim sweep SWEEP.toml --local [-j N]`).

The sweep folder is the one `mcsim sweep` writes for SLURM (`mcsim.cluster.sweep`), and the
tasks leave exactly what the array job leaves: ``tasks/<i>/result.h5`` and
``tasks/<i>/exit_status``, with each task's output in ``logs/local_<i>.out`` (appended to
across attempts). So `mcsim collect` reads it the same way, and a sweep may be started
locally and finished on a cluster or the other way round (never both at once).

Each task is one `mcsim run` process on its task config, so it is resumable like any run:
interrupt the sweep (Ctrl-C, SIGTERM) and every running task writes a checkpoint and exits
with status 75; run the same command again and only the unfinished tasks run, resuming.
``jobs`` tasks run at once, each with ``threads`` Numba threads (default: the cores divided
among the jobs).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .sweep import CONFIG_NAME, EXIT_STATUS_NAME, LOGS_DIR, TASKS_DIR

__all__ = ["LocalTask", "run_local", "default_threads"]

#: exit status of a task stopped by a signal after its checkpoint (as `mcsim run`)
INTERRUPTED = 75


@dataclass
class LocalTask:
    index: int
    status: int | None = None       # mcsim's exit status once finished
    seconds: float = 0.0


def default_threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def _command(config: Path, threads: int) -> list[str]:
    return [sys.executable, "-m", "mcsim.cli.app", "run", str(config), "--progress", "log",
            "--threads", str(threads)]


def run_local(sweep_dir, indices, jobs: int = 1, threads: int | None = None, report=print,
              env: dict | None = None) -> list[LocalTask]:
    """Run the tasks ``indices`` of the sweep in ``sweep_dir``, ``jobs`` at a time; returns
    them with their exit statuses. Stops starting new tasks once one was interrupted by a
    signal (status 75) or this process is interrupted, and waits for the running ones."""
    sweep_dir = Path(sweep_dir).resolve()
    jobs = max(1, int(jobs))
    threads = threads or default_threads(jobs)
    logs = sweep_dir / LOGS_DIR
    logs.mkdir(parents=True, exist_ok=True)
    pending = list(indices)
    running: dict[int, tuple[subprocess.Popen, float, object]] = {}
    done: list[LocalTask] = []
    stopping = False
    full_env = dict(os.environ, **(env or {}))
    full_env["MCSIM_NO_MPI"] = "1"          # a task is one process, even inside an MPI launcher
    forwarded = []

    def forward(signum, frame):             # SIGTERM / SIGUSR1: every task checkpoints and stops
        nonlocal stopping
        stopping = True
        forwarded.append(signum)
        for proc, _, _ in running.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        try:
            previous[sig] = signal.signal(sig, forward)
        except ValueError:                  # not the main thread: no forwarding
            pass
    try:
        while pending or running:
            while pending and len(running) < jobs and not stopping:
                i = pending.pop(0)
                task_dir = sweep_dir / TASKS_DIR / str(i)
                log = open(logs / f"local_{i}.out", "a")
                log.write(f"mcsim sweep --local: task {i} started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
                log.flush()
                proc = subprocess.Popen(_command(task_dir / CONFIG_NAME, threads), stdout=log,
                                        stderr=subprocess.STDOUT, env=full_env)
                running[i] = (proc, time.monotonic(), log)
                report(f"  task {i}: started ({threads} thread{'s' if threads != 1 else ''})")
            time.sleep(0.05)
            for i, (proc, t0, log) in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                log.close()
                del running[i]
                (sweep_dir / TASKS_DIR / str(i) / EXIT_STATUS_NAME).write_text(f"{code}\n")
                task = LocalTask(i, code, time.monotonic() - t0)
                done.append(task)
                word = {0: "complete", INTERRUPTED: "interrupted (checkpoint written)"}.get(code, "FAILED")
                report(f"  task {i}: {word}, exit status {code}, {task.seconds:.1f} s")
                if code == INTERRUPTED:
                    stopping = True
    except KeyboardInterrupt:
        # the tasks got the same SIGINT (one process group): let them write their checkpoints
        stopping = True
        for i, (proc, t0, log) in running.items():
            code = proc.wait()
            log.close()
            (sweep_dir / TASKS_DIR / str(i) / EXIT_STATUS_NAME).write_text(f"{code}\n")
            done.append(LocalTask(i, code, time.monotonic() - t0))
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    done.sort(key=lambda t: t.index)
    return done
