"""Graceful stop on SIGTERM / SIGINT / SIGUSR1 (what SLURM sends before a time limit).

`capture_early()` is called first thing by `mcsim run`, before the slow imports, so that a
signal arriving during start-up is remembered instead of killing the process; `StopFlag`
(used by the driver around its sampling loop) takes it over. Handlers only set a flag; the
driver finishes the round in flight, checkpoints and exits with status 75. A second SIGINT
stops at once (the file still holds the last checkpoint).
"""
from __future__ import annotations

import signal
import threading

SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1")
_early: dict = {"signame": None, "installed": False}


def _early_handler(signum, frame):
    _early["signame"] = signal.Signals(signum).name


def capture_early() -> None:
    """Remember stop signals from now on (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, _early_handler)
    _early["installed"] = True


class StopFlag:
    """Context manager: `signame` becomes the name of the first stop signal received."""

    def __init__(self):
        self.signame = _early["signame"]
        self._old = {}

    def _handler(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signame == "SIGINT" and name == "SIGINT":
            raise KeyboardInterrupt
        self.signame = name

    def __enter__(self):
        self.signame = self.signame or _early["signame"]
        if threading.current_thread() is threading.main_thread():
            for name in SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        _early["signame"] = None
