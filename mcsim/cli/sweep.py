"""`mcsim sweep` and `mcsim collect`: the SLURM side of the command line.

Registered by mcsim.cli through `add_commands(subparsers)`; each command's `func(args)`
returns the exit status (0 ok, 1 failure, 2 bad input or usage) or raises an mcsim error
(`SweepError`: 2; `ResultFileError`: 1), which `mcsim.cli.app` reports."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .status import EXIT_FAILURE, EXIT_OK, EXIT_USAGE


def add_commands(subparsers) -> None:
    s = subparsers.add_parser(
        "sweep", help="expand a parameter sweep into a SLURM array job, or run it here (--local)",
        description="Expand SWEEP (a base run config plus lists of values to vary) into one run "
        "config per task under DIR, with a manifest and an array job script. --submit also "
        "submits the unfinished tasks with sbatch and prints the job id as the last line. "
        "Running it again on the same folder keeps finished results and submits only the rest. "
        "--local runs the unfinished tasks on this machine instead (-j N at once), leaving the "
        "same folder for mcsim collect.",
        epilog="Sweep file: base = \"relu.toml\"; mode = \"product\" | \"zip\"; [vary] "
               "\"network.width\" = [64, 128]; optional [slurm] #SBATCH options "
               "(time, ntasks, cpus_per_task, partition, account, max_parallel, ...).")
    s.add_argument("sweep", help="sweep file (TOML)")
    s.add_argument("-d", "--dir", help="sweep folder (default: the sweep file's name without "
                   ".toml, beside it)")
    s.add_argument("--dry-run", action="store_true", help="show the tasks and the sbatch command; write nothing")
    s.add_argument("--submit", action="store_true", help="submit the unfinished tasks as one array job")
    s.add_argument("--sbatch", default="", metavar="ARGS",
                   help="extra sbatch options for --submit, one string, e.g. --sbatch=\"--qos=debug\"")
    s.add_argument("--template", help="job script template (default: jobs/sweep-array.sbatch of the mcsim sources)")
    s.add_argument("--local", action="store_true",
                   help="run the unfinished tasks on this machine instead of SLURM (each one an "
                   "`mcsim run`, resumable; the folder is the same, so `mcsim collect` reads it)")
    s.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="with --local: run N tasks at once (default 1)")
    s.add_argument("--threads", type=int, metavar="T",
                   help="with --local: Numba threads per task (default: the cores divided among the jobs)")
    s.set_defaults(func=cmd_sweep)

    c = subparsers.add_parser(
        "collect", help="gather a sweep's results into one HDF5 file",
        description="Gather the results of the tasks of SWEEP_DIR, finished or partial (marked "
        "as such), into one HDF5 file (kind = \"sweep\") indexed by the swept parameters. Missing "
        "and failed tasks are listed on stderr and in the file.")
    c.add_argument("sweep_dir", help="sweep folder written by mcsim sweep")
    c.add_argument("-o", "--output", required=True, help="output HDF5 file")
    c.add_argument("--strict", action="store_true", help="exit 1 unless every task is complete")
    c.set_defaults(func=cmd_collect)


def _status_line(index: int, params: dict, status: str) -> str:
    from ..cluster.sweep import format_params
    return f"  {index:>4}  {status:<9} {format_params(params)}"


def cmd_sweep(args) -> int:
    from ..cluster.sweep import (active_jobs, build_tasks, check_existing, load_sweep,
                                 read_manifest, result_status, submit, submit_command, write_sweep)
    sweep_path = Path(args.sweep)
    sweep_dir = Path(args.dir) if args.dir else sweep_path.with_suffix("")
    if sweep_dir.resolve() == sweep_path.resolve():
        print("mcsim sweep: error: give the sweep folder with -d", file=sys.stderr)
        return EXIT_USAGE
    sweep = load_sweep(sweep_path)
    tasks = build_tasks(sweep, sweep_dir)
    statuses = {t.index: result_status(sweep_dir / t.output_rel) for t in tasks}
    todo = [t.index for t in tasks if statuses[t.index] != "complete"]
    max_parallel = sweep.slurm.get("max_parallel")
    print(f"mcsim sweep: {len(tasks)} tasks ({sweep.mode} of {', '.join(sweep.keys)}) in {sweep_dir}")
    for t in tasks:
        print(_status_line(t.index, t.params, statuses[t.index]))
    if args.dry_run:
        check_existing(sweep_dir, tasks)
        if todo:
            print("would run: " + submit_command(sweep_dir, todo, max_parallel))
        else:
            print("all tasks complete; nothing would run")
        return EXIT_OK
    if args.local and args.submit:
        print("mcsim sweep: error: give --local or --submit, not both", file=sys.stderr)
        return EXIT_USAGE
    if args.local and args.jobs < 1:
        print("mcsim sweep: error: -j/--jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    write_sweep(sweep, sweep_dir, tasks, args.template)
    print(f"wrote {len(tasks)} task configs, {sweep_dir / 'manifest.json'} and {sweep_dir / 'job.sbatch'}")
    if not todo:
        print("all tasks complete; nothing to " + ("run" if args.local else "submit"))
        return EXIT_OK
    if args.local:
        return _run_local(args, sweep_dir, todo, len(tasks))
    if not args.submit:
        print("submit with: " + submit_command(sweep_dir, todo, max_parallel))
        print(f"or run here:  mcsim sweep {args.sweep} -d {sweep_dir} --local [-j N]")
        return EXIT_OK
    # Two array jobs on one folder would have two mcsim processes write one result file.
    queued = active_jobs(s["job_id"] for s in read_manifest(sweep_dir).get("submissions", []))
    if queued:
        print(f"mcsim sweep: error: this sweep is still queued or running as job {', '.join(queued)}; "
              "wait for it (or scancel it) before submitting again", file=sys.stderr)
        return EXIT_USAGE
    job_id = submit(sweep_dir, todo, max_parallel, shlex.split(args.sbatch))
    print(f"submitted array job {job_id}: {len(todo)} of {len(tasks)} tasks")
    print(job_id)
    return EXIT_OK


def _run_local(args, sweep_dir, todo, n_tasks) -> int:
    from ..cluster.local import INTERRUPTED, default_threads, run_local
    from ..cluster.sweep import active_jobs, read_manifest
    # an array job of this sweep still queued would write the same result files
    queued = active_jobs(s["job_id"] for s in read_manifest(sweep_dir).get("submissions", []))
    if queued:
        print(f"mcsim sweep: error: this sweep is queued or running on SLURM as job {', '.join(queued)}; "
              "wait for it (or scancel it) before running it locally", file=sys.stderr)
        return EXIT_USAGE
    threads = args.threads or default_threads(args.jobs)
    print(f"running {len(todo)} of {n_tasks} tasks here, {args.jobs} at a time, {threads} "
          f"thread{'s' if threads != 1 else ''} each", flush=True)
    try:
        done = run_local(sweep_dir, todo, jobs=args.jobs, threads=threads,
                         report=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("mcsim sweep: interrupted; the running tasks wrote checkpoints: run the same "
              "command to resume", file=sys.stderr)
        return INTERRUPTED
    failed = [t.index for t in done if t.status not in (0, INTERRUPTED)]
    stopped = [t.index for t in done if t.status == INTERRUPTED]
    left = len(todo) - len(done)
    print(f"mcsim sweep: {sum(t.status == 0 for t in done)} tasks complete, {len(failed)} failed, "
          f"{len(stopped)} interrupted, {left} not started")
    if failed:
        print(f"mcsim sweep: failed tasks: {' '.join(map(str, failed))} (see {sweep_dir / 'logs'}/local_<i>.out)",
              file=sys.stderr)
        return EXIT_FAILURE
    if stopped or left:
        print("mcsim sweep: run the same command again to resume the unfinished tasks", file=sys.stderr)
        return INTERRUPTED
    print(f"collect with: mcsim collect {sweep_dir} -o {sweep_dir}.h5")
    return EXIT_OK


def cmd_collect(args) -> int:
    from ..cluster.collect import collect
    summary = collect(args.sweep_dir, args.output)
    counts = summary.counts()
    print(f"mcsim collect: wrote {args.output}: {summary.n_tasks} tasks: "
          + ", ".join(f"{n} {status}" for status, n in counts.items() if n))
    for status in ("partial", "failed", "missing"):
        listed = summary.indices(status)
        if listed:
            print(f"mcsim collect: {status} tasks: {' '.join(map(str, listed))}", file=sys.stderr)
    if args.strict and counts.get("complete", 0) != summary.n_tasks:
        return EXIT_FAILURE
    return EXIT_OK
