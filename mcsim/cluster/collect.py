"""Gather the results of a sweep's tasks into one HDF5 file (kind = "sweep").

Layout (see docs/hdf5-schema.md for the measurement groups it copies)::

    /                    format, format_version, kind = "sweep", software versions, mode,
                         swept (JSON list of the varied keys), n_tasks, complete (bool),
                         tasks_complete / tasks_partial / tasks_failed / tasks_missing
                         (int64 task indices), sweep_toml, base_toml
    /manifest            table, one row per task: index, status, networks, complete,
                         config, output, then one column per swept key (e.g. network.width)
    /tasks/<i>           one group per task that has results: the task's root attributes,
                         the swept parameters as attributes ("network.width" = 64, ...),
                         status ("complete" | "partial"), task (its index); and its
                         layers/<l>, config and inputs copied unchanged, and a
                         [training] task's /training estimates (without its accumulator)

Task status: "complete" and "partial" (a checkpoint: fewer networks than asked for) have
data and a group; "failed" (the job recorded a failing exit status, or the file is not a
readable mcsim result) and "missing" (never ran, or is still running without a first
checkpoint) have none. Nothing is skipped silently: every task has a manifest row.
The accumulator state is not copied (it can be large); merge or extend the task's own
result.h5 for that.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ResultFileError
from ..storage.reader import check_run_attrs, is_complete, open_file, read_layers
from .sweep import EXIT_STATUS_NAME, SweepError, read_manifest

STATUSES = ("complete", "partial", "failed", "missing")
# Exit statuses that do not mean failure: done, or stopped with a checkpoint.
_NOT_FAILED = (0, 75)


@dataclass
class TaskInfo:
    index: int
    params: dict
    config: str
    output: str
    status: str = "missing"
    networks: int = 0
    complete: bool = False
    reason: str = ""


@dataclass
class Summary:
    n_tasks: int
    tasks: list[TaskInfo] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = Counter(t.status for t in self.tasks)
        return {s: c.get(s, 0) for s in STATUSES}

    def indices(self, status: str) -> list[int]:
        return [t.index for t in self.tasks if t.status == status]


def _exit_status(task_dir: Path) -> int | None:
    try:
        return int((task_dir / EXIT_STATUS_NAME).read_text().strip())
    except (OSError, ValueError):
        return None


def inspect_task(sweep_dir: Path, entry: dict) -> TaskInfo:
    """Classify one task by its result file and the exit status its job left."""
    info = TaskInfo(int(entry["index"]), dict(entry["params"]), entry["config"], entry["output"])
    path = sweep_dir / entry["output"]
    code = _exit_status(path.parent)
    if not path.exists():
        if code is not None and code not in _NOT_FAILED:
            info.status, info.reason = "failed", f"exit status {code}, no result file"
        else:
            info.reason = "no result file"
        return info
    try:
        with open_file(path) as (f, attrs):
            if attrs.get("kind") != "measurement":
                info.status, info.reason = "failed", "not an mcsim measurement file"
                return info
            check_run_attrs(attrs, path)        # validated: counts, flags, texts
            info.networks = int(attrs.get("networks", 0))
            info.complete = is_complete(attrs)
            has_layers = "layers" in f and len(f["layers"]) > 0
            if has_layers:
                read_layers(f["layers"], where=str(path))   # numbers of sane sizes, or "failed"
    except ResultFileError as exc:
        info.status, info.reason = "failed", f"unreadable result file ({exc})"
        return info
    if info.networks == 0 or not has_layers:
        failed = code is not None and code not in _NOT_FAILED
        info.status = "failed" if failed else "missing"
        info.reason = "result file holds no networks yet"
    else:
        info.status = "complete" if info.complete else "partial"
    return info


def _attr_value(value):
    """A parameter value as an HDF5 attribute: numbers and strings as they are, lists as
    arrays, tables (an activation with parameters) as JSON text."""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list):
        try:
            return np.asarray(value)
        except ValueError:
            return json.dumps(value)
    return value


def _column(values: list):
    """(numpy dtype, converted values) for one swept key across all tasks."""
    import h5py
    if all(isinstance(v, bool) for v in values):
        return np.bool_, values
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.int64, values
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.float64, [float(v) for v in values]
    if all(isinstance(v, str) for v in values):
        return h5py.string_dtype(), values
    return h5py.string_dtype(), [json.dumps(v, sort_keys=True) for v in values]


def manifest_table(keys: list[str], tasks: list[TaskInfo]) -> np.ndarray:
    import h5py
    text = h5py.string_dtype()
    fixed = [("index", np.int64, [t.index for t in tasks]),
             ("status", text, [t.status for t in tasks]),
             ("networks", np.int64, [t.networks for t in tasks]),
             ("complete", np.bool_, [t.complete for t in tasks]),
             ("config", text, [t.config for t in tasks]),
             ("output", text, [t.output for t in tasks])]
    swept = [(key, *_column([t.params.get(key) for t in tasks])) for key in keys]
    columns = fixed + swept
    table = np.empty(len(tasks), dtype=[(name, dtype) for name, dtype, _ in columns])
    for name, _, values in columns:
        table[name] = values
    return table


def collect(sweep_dir, output) -> Summary:
    """Write the sweep file `output` from `sweep_dir`; returns what was found."""
    from ..storage.hdf5 import FORMAT, FORMAT_VERSION, atomic_write, now_iso, software_versions
    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    keys = list(manifest.get("keys", []))
    summary = Summary(len(manifest["tasks"]))
    summary.tasks = [inspect_task(sweep_dir, entry) for entry in manifest["tasks"]]
    if Path(output).resolve().is_relative_to(sweep_dir.resolve() / "tasks"):
        raise SweepError("the output must not lie inside the sweep's tasks folder")

    def text(name):
        try:
            return (sweep_dir / name).read_text()
        except OSError:
            return ""

    def fill(f):
        tasks = f.create_group("tasks")
        for t in summary.tasks:
            if t.status not in ("complete", "partial"):
                continue
            g = tasks.create_group(str(t.index))
            with open_file(sweep_dir / t.output) as (src, src_attrs):
                # Re-read the state from what is copied: a running task may have written a
                # newer checkpoint since inspect_task looked at it.
                t.networks = int(src_attrs.get("networks", t.networks))
                t.complete = is_complete(src_attrs)
                t.status = "complete" if t.complete else "partial"
                for key, value in src.attrs.items():
                    g.attrs[key] = value
                for name in ("layers", "config", "inputs"):
                    if name in src:
                        src.copy(src[name], g, name=name)
                if "training" in src:       # [training]: its estimates (the state stays in the task file)
                    src.copy(src["training"], g, name="training")
                    if "accumulator" in g["training"]:
                        del g["training"]["accumulator"]
            for key, value in t.params.items():
                g.attrs[key] = _attr_value(value)
            g.attrs.update(status=t.status, task=t.index, source=t.output)
        by_status = {s: np.asarray(summary.indices(s), dtype=np.int64) for s in STATUSES}
        f.attrs.update(format=FORMAT, format_version=FORMAT_VERSION, kind="sweep",
                       created=now_iso(), modified=now_iso(), mode=manifest.get("mode", ""),
                       swept=json.dumps(keys), n_tasks=summary.n_tasks,
                       complete=bool(len(by_status["complete"]) == summary.n_tasks),
                       sweep_toml=text(manifest.get("sweep_file", "sweep.toml")),
                       base_toml=text(manifest.get("base_file", "base.toml")), **software_versions())
        for status, idx in by_status.items():
            f.attrs[f"tasks_{status}"] = idx
        f.create_dataset("manifest", data=manifest_table(keys, summary.tasks))

    from ..storage.hdf5 import resolve_output
    from ..storage.lock import OutputLock
    output = resolve_output(output)
    with OutputLock(output, "mcsim collect"):
        atomic_write(output, fill)
    return summary
