"""Shared helpers for the benchmark scripts: timing statistics, machine info, JSON output."""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def time_per_item(fn, n_items: int, repeats: int, warmup: int = 1) -> dict:
    """Run ``fn()`` ``warmup + repeats`` times; nanoseconds per item over the timed runs.

    Returns ``{"median": ns, "min": ns, "max": ns, "repeats": repeats, "items": n_items}``.
    The median is the number to quote; min/max show the spread (a max far above the median
    usually means another process took the core).
    """
    for _ in range(warmup):
        fn()
    ns = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        ns.append((time.perf_counter_ns() - t0) / n_items)
    ns.sort()
    mid = len(ns) // 2
    median = ns[mid] if len(ns) % 2 else 0.5 * (ns[mid - 1] + ns[mid])
    return {"median": median, "min": ns[0], "max": ns[-1], "repeats": repeats, "items": n_items}


def machine_info() -> dict:
    """CPU, core count and library versions, stored with every result."""
    import numba
    import numpy

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import llvmlite.binding as llvm

        llvm_cpu = llvm.get_host_cpu_name()
    except Exception:  # pragma: no cover
        llvm_cpu = "?"
    return {
        "cpu": cpu,
        "llvm_cpu": llvm_cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "numba_svml": bool(numba.config.USING_SVML),
        # NUMBA_CPU_NAME / NUMBA_CPU_FEATURES overrides (None: compiled for the host CPU)
        "numba_cpu_name": numba.config.CPU_NAME,
        "numba_cpu_features": numba.config.CPU_FEATURES,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(name: str, payload: dict) -> Path:
    """Write ``payload`` to ``results/<name>.json`` atomically; returns the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def format_row(label: str, stats: dict, unit: str = "ns") -> str:
    return (
        f"{label:<46s} {stats['median']:8.2f} {unit}"
        f"   (min {stats['min']:.2f}, max {stats['max']:.2f}, n={stats['repeats']})"
    )
