"""Optional watchdog for MPI runs: a rank that stops responding ends the job with a message.

MPI collectives wait forever for a rank that was stopped (SIGSTOP, a frozen node, a debugger
left attached): ``mpirun`` then hangs with no output. With ``mcsim run --watchdog SECONDS``
(or ``MCSIM_WATCHDOG=SECONDS``) every rank runs a thread that watches the rounds of the
driver's loop: when no round has completed for

    limit = max(SECONDS, FACTOR x the longest round so far)

it prints which rank noticed and since when, and aborts the job (MPI_Abort, exit status 1)
a second later (so that the launcher forwards the message first).
The last checkpoint is intact: run the same command again to resume. Off by default (a round
that includes a large checkpoint write can legitimately take long; choose SECONDS above the
longest expected checkpoint write).
"""
from __future__ import annotations

import os
import sys
import threading
import time

__all__ = ["Watchdog", "watchdog_seconds", "ABORT_GRACE"]

FACTOR = 20.0
#: seconds between the message and MPI_Abort: the message travels from the rank through the
#: launcher's forwarding (mpiexec's proxies) and is lost if the abort tears that down first
#: (seen once in CI: the job ended with exit status 1 and an empty stderr)
ABORT_GRACE = 1.0


def watchdog_seconds(value=None) -> float | None:
    """The watchdog's minimum limit: the argument, else MCSIM_WATCHDOG, else None (off)."""
    value = value if value is not None else os.environ.get("MCSIM_WATCHDOG")
    if value in (None, "", "0", 0):
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        from ..errors import ConfigError
        raise ConfigError(f"--watchdog / MCSIM_WATCHDOG: must be a positive number of seconds, got {value!r}")
    return seconds


class Watchdog:
    """``beat()`` after every round; ``close()`` when the loop is done. on_timeout(message)
    ends the job (the driver passes ``comm.abort``)."""

    def __init__(self, seconds: float | None, rank: int, on_timeout, describe=lambda: ""):
        self.seconds, self.rank = seconds, rank
        self.on_timeout, self.describe = on_timeout, describe
        self.last = None            # armed at the first round (compiling may take minutes)
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = None
        if seconds:
            self._thread = threading.Thread(target=self._watch, name="mcsim-watchdog", daemon=True)
            self._thread.start()

    def beat(self) -> None:
        now = time.monotonic()
        if self.last is not None:
            self.longest = max(self.longest, now - self.last)
        self.last = now

    def limit(self) -> float:
        return max(self.seconds or 0.0, FACTOR * self.longest)

    def _watch(self) -> None:
        while not self._stop.wait(min(1.0, self.seconds / 4)):
            if self.last is None:
                continue
            waited = time.monotonic() - self.last
            if waited > self.limit():
                message = (f"mcsim run: watchdog (rank {self.rank}): no round completed for "
                           f"{waited:.0f} s (limit {self.limit():.0f} s; the longest round took "
                           f"{self.longest:.2f} s): a rank is stopped or hung (SIGSTOP, a frozen "
                           f"node?); aborting the job. {self.describe()}The last checkpoint is "
                           "intact: run the same command again to resume.")
                print(message, file=sys.stderr, flush=True)
                time.sleep(ABORT_GRACE)
                self.on_timeout()
                return

    def close(self) -> None:
        self._stop.set()

    def __enter__(self) -> "Watchdog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
