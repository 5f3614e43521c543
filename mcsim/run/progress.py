"""Progress reporting: a one-line bar with rate and ETA on a terminal, log lines otherwise.

The driver creates it after the kernels are compiled (`mcsim.run.warmup`), so the rate and
the ETA never include compile time."""
from __future__ import annotations

import sys
import time


def _hms(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "--:--:--"
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Reports networks done out of `total`. mode: "bar", "log" or "off".

    On a terminal the bar is redrawn at most 5 times a second; otherwise (job logs) one line
    is written every `log_every` seconds, so a SLURM output file shows the run advancing."""

    def __init__(self, total: int, done: int = 0, mode: str | None = None, stream=None,
                 log_every: float = 30.0):
        self.stream = stream or sys.stderr
        if mode is None:
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "log"
        self.mode, self.total, self.start_done = mode, total, done
        self.t0 = self.last = time.monotonic()
        self.log_every = log_every
        self.done = done
        self.note = ""          # appended to the line (e.g. the error against a target)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.t0
        return (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        frac = self.done / self.total if self.total else 1.0
        return (f"{self.done:,}/{self.total:,} networks ({100 * frac:5.1f}%), "
                f"{rate:,.0f} networks/s, elapsed {_hms(time.monotonic() - self.t0)}, ETA {_hms(eta)}"
                + (f"; {self.note}" if self.note else ""))

    def update(self, done: int, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if self.mode == "off":
            return
        if self.mode == "bar" and (force or now - self.last >= 0.2):
            frac = self.done / self.total if self.total else 1.0
            bar = "#" * int(30 * frac)
            self.stream.write(f"\r[{bar:<30}] {self.line()}")
            self.stream.flush()
            self.last = now
        elif self.mode == "log" and (force or now - self.last >= self.log_every):
            self.stream.write(f"mcsim: {self.line()}\n")
            self.stream.flush()
            self.last = now

    def close(self) -> None:
        if self.mode == "bar":
            self.update(self.done, force=True)
            self.stream.write("\n")
            self.stream.flush()
        elif self.mode == "log":
            self.update(self.done, force=True)
