"""Exclusive locks on output files (`mcsim run`, `merge -o`, `collect -o`).

Two processes writing one output would silently lose one of the runs (the last rename wins),
so every writer first takes ``.<name>.lock`` beside the output:

- the lock is created atomically with a hard link (``link(2)`` of a private file that already
  holds the holder's description): atomic also on NFS, where ``flock``/``fcntl`` locks are
  unreliable or missing. Where hard links are not supported, ``open(O_CREAT | O_EXCL)`` is
  used instead;
- it holds JSON: host, pid, process start time (Linux), user, command and time, so a refusal
  names the holder (``OutputLocked``);
- a lock whose holder is on this host and no longer runs (or whose pid was reused by another
  process) is stale and taken over, under a short-lived second lock (``.<name>.lock.takeover``)
  so that two processes cannot both take it over;
- a lock of another host is never guessed stale (the message says how to remove it), except
  one left by an earlier incarnation of the same SLURM job (same ``SLURM_JOB_ID``, another
  ``SLURM_RESTART_COUNT``): a job requeued after its node failed takes its own lock over.

Released (removed) when the writer ends, if it is still ours. kill -9 leaves the lock behind;
the next run on the same host takes it over.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from ..errors import OutputLocked, ResultFileError

__all__ = ["OutputLock", "lock_path", "read_holder", "output_lock"]

#: a takeover lock older than this is itself stale (its holder died inside the takeover)
TAKEOVER_STALE_SECONDS = 30.0


def lock_path(path) -> Path:
    """The lock file of output `path` (beside it; symlinks resolved, so that two links to one
    file share the lock)."""
    path = Path(os.path.realpath(path))
    return path.with_name(f".{path.name}.lock")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _identity(command: str) -> dict:
    pid = os.getpid()
    try:
        user = os.getlogin()
    except OSError:
        user = os.environ.get("USER", "")
    out = {"host": socket.gethostname(), "pid": pid, "start": _start_time(pid), "user": user,
           "command": command, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if os.environ.get("SLURM_JOB_ID"):
        out.update(slurm_job=os.environ["SLURM_JOB_ID"],
                   slurm_restart=os.environ.get("SLURM_RESTART_COUNT", "0"))
    return out


def read_holder(path: Path) -> dict | None:
    """The holder recorded in lock file `path`; None if there is no lock; {} if unreadable."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(65536)
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        holder = json.loads(text.decode("utf-8"))
        return holder if isinstance(holder, dict) else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}                # being written right now, or damaged


def _alive(holder: dict) -> bool | None:
    """True / False for a holder on this host; None when it cannot be told (other host,
    unreadable lock)."""
    if holder.get("host") != socket.gethostname():
        job = os.environ.get("SLURM_JOB_ID")
        if job and holder.get("slurm_job") == job and \
                holder.get("slurm_restart") != os.environ.get("SLURM_RESTART_COUNT", "0"):
            return False         # an earlier incarnation of this requeued job: SLURM ended it
        return None
    pid = holder.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                     # exists, another user's process
    except OSError:
        return None
    start = holder.get("start")
    if start is not None and _start_time(pid) not in (None, start):
        return False             # the pid was reused by another process
    return True


def _describe(holder: dict) -> str:
    if not holder:
        return "another process (its lock file is being written or is unreadable)"
    parts = [f"pid {holder.get('pid')} on host {holder.get('host')}"]
    if holder.get("user"):
        parts.append(f"user {holder['user']}")
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    text = ", ".join(parts)
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


def _write_and_close(fd: int, data: bytes) -> None:
    """Write a lock file's identity, durably, and close it."""
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class OutputLock:
    """Exclusive lock of one output path; a context manager.

    ``with OutputLock(path, "mcsim run"):`` raises `OutputLocked` naming the holder when
    another live process holds it."""

    def __init__(self, path, command: str = "mcsim"):
        self.output = Path(path)
        self.path = lock_path(path)
        self.command = command
        self.identity = _identity(command)
        self.held = False

    # -- acquiring ---------------------------------------------------------------------
    def _create(self, target: Path) -> bool:
        """Atomically create `target` holding our identity; False if it exists."""
        data = json.dumps(self.identity).encode()
        private = target.with_name(f"{target.name}.{self.identity['host']}.{os.getpid()}")
        try:
            fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise ResultFileError(f"cannot write {self.output}: cannot create the lock file "
                                  f"{target}: {exc.strerror or exc}") from None
        _write_and_close(fd, data)
        try:
            try:
                os.link(private, target)
                return True
            except FileExistsError:
                return False
            except OSError:
                # NFS may report an error for a link that was made (lost reply): trust the
                # link count; file systems without hard links: fall back to O_EXCL
                try:
                    if os.stat(private).st_nlink == 2:
                        return True
                except OSError:
                    pass
                return self._create_excl(target, data)
        finally:
            try:
                os.unlink(private)
            except OSError:
                pass

    def _create_excl(self, target: Path, data: bytes) -> bool:
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise ResultFileError(f"cannot write {self.output}: cannot create the lock file "
                                  f"{target}: {exc.strerror or exc}") from None
        _write_and_close(fd, data)
        return True

    def acquire(self) -> "OutputLock":
        for _ in range(20):
            if self._create(self.path):
                self.held = True
                return self
            holder = read_holder(self.path)
            if holder is None:
                continue                         # released meanwhile: try again
            if holder == {}:
                time.sleep(0.05)                 # being written: look again
                holder = read_holder(self.path)
                if holder is None:
                    continue
            if _alive(holder) is False:
                self._take_over(holder)
                continue
            self._refuse(holder)
        self._refuse(read_holder(self.path) or {})
        return self                              # not reached

    def _refuse(self, holder: dict):
        if not holder:
            hint = f"if no mcsim process writes {self.output}, delete {self.path}"
        elif _alive(holder) is None:
            hint = (f"wait for it to finish, or use another output path; if it no longer runs "
                    f"(e.g. host {holder.get('host')} went down), delete {self.path}")
        else:
            hint = "wait for it to finish, or use another output path"
        raise OutputLocked(f"{self.output} is in use by {_describe(holder)}: two writers of one "
                           f"file would lose one run; {hint}")

    def _take_over(self, stale: dict) -> None:
        """Remove a stale lock, under the takeover lock (so only one process does it)."""
        takeover = self.path.with_name(self.path.name + ".takeover")
        if not self._create(takeover):
            holder = read_holder(takeover)
            try:
                age = time.time() - os.stat(takeover).st_mtime
            except OSError:
                return                           # finished meanwhile
            if (holder and _alive(holder) is False) or age > TAKEOVER_STALE_SECONDS:
                try:
                    os.unlink(takeover)
                except OSError:
                    pass
            else:
                time.sleep(0.05)
            return                               # the caller tries again
        try:
            if read_holder(self.path) == stale:  # still the same stale lock: remove it
                print(f"mcsim: taking over the stale lock {self.path} of {_describe(stale)}, "
                      "which no longer runs", file=sys.stderr)
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
        finally:
            try:
                os.unlink(takeover)
            except OSError:
                pass

    # -- releasing ---------------------------------------------------------------------
    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if read_holder(self.path) == self.identity:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def __enter__(self) -> "OutputLock":
        return self if self.held else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def output_lock(path, command: str) -> OutputLock:
    """``with output_lock(path, "mcsim merge"):`` (see `OutputLock`)."""
    return OutputLock(path, command)
