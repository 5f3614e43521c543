"""Run mcsim's benchmarks.

    python benchmarks/run.py [--quick] [--only NAME ...] [--no-write]

Each benchmark is a function ``bench_<name>(quick: bool) -> dict`` in ``bench_<name>.py``
beside this file, registered in ``BENCHMARKS``; its report is printed and written to
``results/<name>.json``. To add one, write the module and add a line below. A report whose
``"results"`` maps labels to ``_timing.time_per_item`` statistics prints as a table;
any other report prints as JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import format_row, write_json  # noqa: E402

#: name -> module (``bench_<name>.py``) whose ``bench_<name>(quick)`` runs it.
BENCHMARKS = {
    "rng": "bench_rng",
    "samplers": "bench_samplers",
    "mpi": "bench_mpi",
    "ntk": "bench_ntk",
    "training": "bench_training",
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Run mcsim benchmarks.")
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    ap.add_argument("--no-write", action="store_true", help="do not write results/*.json")
    args = ap.parse_args(argv)
    for name in args.only or BENCHMARKS:
        fn = getattr(importlib.import_module(BENCHMARKS[name]), f"bench_{name}")
        report = fn(args.quick)
        print(f"== {name}")
        rows = report.get("results")
        if isinstance(rows, dict) and all(isinstance(v, dict) and "median" in v
                                          for v in rows.values()):
            for label, stats in rows.items():
                print(format_row(label, stats))
        else:  # free-form report
            print(json.dumps(report, indent=2, default=str))
        if not args.no_write:
            print("wrote", write_json(name, report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
