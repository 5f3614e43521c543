"""Parameter sweeps: one base run config plus lists of values, expanded into one run config
per SLURM array task.

A sweep file (users keep these in their repositories, so the names are stable)::

    base = "relu.toml"            # a run config, relative to this file
    mode = "product"              # or "zip"
    [vary]
    "network.width" = [64, 128, 256]
    "ensemble.seed" = [1, 2]
    [slurm]                       # optional: #SBATCH options for the array job
    time = "02:00:00"
    ntasks = 2                    # MPI ranks per task
    max_parallel = 10             # at most this many tasks at once (--array=...%10)

`mode = "product"` takes every combination, the last key varying fastest; `"zip"` takes the
i-th value of every list (all lists equally long). Task i is the i-th combination.

The sweep folder (`mcsim sweep SWEEP.toml -d DIR`)::

    DIR/manifest.json            task index -> parameters -> config -> output
    DIR/sweep.toml, base.toml    copies of what the sweep was made from
    DIR/job.sbatch               the array job script (from jobs/sweep-array.sbatch)
    DIR/tasks/<i>/config.toml    the run config of task i
    DIR/tasks/<i>/result.h5      its output (written by the job)
    DIR/tasks/<i>/exit_status    mcsim's exit status of the task's last attempt
    DIR/logs/<jobid>_<i>.out     the task's SLURM log

How a varied key is applied to the base config:
- `network.width`, `network.depth`, `network.output_dim` on a base that gives explicit
  `widths`: the base's widths are rewritten as width + depth (+ output_dim when the last
  layer differs from the others), which needs the base's hidden widths to be equal;
  `network.widths` on a base with width + depth replaces them.
- `inputs.values`, `inputs.file`, `inputs.generate` replace the base's input source.
- Relative input files are made absolute (task configs live in another folder).
- `[output] path` is set to the task's result file; `output.path` cannot be varied.
Every task config is validated with the run config loader before anything is written, so
a sweep with a bad combination fails at once rather than in the queue.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..config.tomlw import dumps as toml_dumps
from ..errors import SweepError
from ..storage.reader import result_status

MODES = ("product", "zip")
SWEEP_KEYS = ("base", "mode", "vary", "slurm")
SECTIONS = ("network", "inputs", "ensemble", "output")

MANIFEST = "manifest.json"
JOB_SCRIPT = "job.sbatch"
TASKS_DIR = "tasks"
LOGS_DIR = "logs"
CONFIG_NAME = "config.toml"
RESULT_NAME = "result.h5"
EXIT_STATUS_NAME = "exit_status"
MANIFEST_FORMAT = "mcsim-sweep"
MANIFEST_VERSION = 1

# [slurm] keys that are not #SBATCH options, and #SBATCH options the sweep manages itself.
_SLURM_SPECIAL = ("max_parallel",)
_SLURM_MANAGED = ("array", "output", "error")
_INPUT_SOURCES = ("values", "file", "generate")
_SHAPE_KEYS = ("width", "depth", "output_dim")



@dataclass(frozen=True)
class Sweep:
    path: Path                  # the sweep file
    base_path: Path             # the base run config
    base: dict                  # the base config as read (TOML tables)
    mode: str
    vary: dict                  # dotted key -> list of values, in file order
    slurm: dict = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return list(self.vary)


@dataclass(frozen=True)
class Task:
    index: int
    params: dict                # dotted key -> value of this task
    config: dict                # the run config (TOML tables) written for this task

    @property
    def config_rel(self) -> str:
        return f"{TASKS_DIR}/{self.index}/{CONFIG_NAME}"

    @property
    def output_rel(self) -> str:
        return f"{TASKS_DIR}/{self.index}/{RESULT_NAME}"


# ---------------------------------------------------------------------------------------
# reading and expanding
def _read_toml(path: Path, what: str) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise SweepError(f"cannot read {what} {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML: {exc}") from None


def load_sweep(path) -> Sweep:
    """Read and check a sweep file and its base config (not yet the task configs)."""
    path = Path(path)
    raw = _read_toml(path, "sweep file")
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise SweepError(f"{unknown[0]}: unknown key in sweep file {path}; allowed: {', '.join(SWEEP_KEYS)}")
    base_name = raw.get("base")
    if not isinstance(base_name, str) or not base_name:
        raise SweepError(f"base: missing in {path} (the run config to vary, relative to the sweep file)")
    base_path = Path(base_name)
    if not base_path.is_absolute():
        base_path = path.parent / base_path
    base = _read_toml(base_path, "base config")
    mode = raw.get("mode", "product")
    if mode not in MODES:
        raise SweepError(f"mode: {mode!r} is not allowed; allowed: {', '.join(MODES)}")
    vary = raw.get("vary")
    if not isinstance(vary, dict) or not vary:
        raise SweepError('vary: missing or empty (a table like "network.width" = [64, 128])')
    for key, values in vary.items():
        _check_key(key)
        if not isinstance(values, list) or not values:
            raise SweepError(f"vary.{key}: must be a non-empty list of values")
    if mode == "zip":
        lengths = {key: len(v) for key, v in vary.items()}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise SweepError(f"mode = \"zip\" needs equally long lists in [vary] ({detail})")
    slurm = raw.get("slurm", {})
    if not isinstance(slurm, dict):
        raise SweepError("slurm: must be a table of #SBATCH options")
    for key in slurm:
        if key.replace("_", "-") in _SLURM_MANAGED:
            raise SweepError(f"slurm.{key}: set by mcsim sweep itself (the array range and the "
                             f"logs in {LOGS_DIR}/); remove it")
    return Sweep(path, base_path, base, mode, dict(vary), dict(slurm))


def _check_key(key: str) -> None:
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in SECTIONS or not parts[1]:
        raise SweepError(f"vary: {key!r} is not a config key; use \"section.key\" with section one "
                         f"of {', '.join(SECTIONS)} (e.g. \"network.width\")")
    if key == "output.path":
        raise SweepError("vary: output.path is set per task by the sweep; it cannot be varied")


def combinations(sweep: Sweep) -> list[dict]:
    """The parameters of every task, in task order."""
    keys = sweep.keys
    lists = [sweep.vary[k] for k in keys]
    rows = itertools.product(*lists) if sweep.mode == "product" else zip(*lists)
    return [dict(zip(keys, row)) for row in rows]


def apply_params(base: dict, params: dict, base_dir: Path, sweep_dir: Path) -> dict:
    """The base config with `params` set (see the module docstring for the rules).

    Relative input files in the base resolve against `base_dir`, those given in the sweep
    file against `sweep_dir`; both are written as absolute paths."""
    cfg = {name: dict(sec) if isinstance(sec, dict) else sec for name, sec in base.items()}
    if "inputs" in cfg and "file" in cfg["inputs"]:
        cfg["inputs"]["file"] = _absolute(cfg["inputs"]["file"], base_dir)
    net = cfg.setdefault("network", {})
    varied = {tuple(k.split(".")) for k in params}
    if "widths" in net and any(("network", k) in varied for k in _SHAPE_KEYS):
        _widths_to_width_depth(net)
    if ("network", "widths") in varied:
        for key in _SHAPE_KEYS:
            net.pop(key, None)
    if any(("inputs", k) in varied for k in _INPUT_SOURCES):
        inputs = cfg.setdefault("inputs", {})
        for key in _INPUT_SOURCES + ("dataset",):
            inputs.pop(key, None)
    for key, value in params.items():
        section, name = key.split(".")
        if key == "inputs.file":
            value = _absolute(value, sweep_dir)
        cfg.setdefault(section, {})[name] = value
    return cfg


def _absolute(value, folder: Path):
    if isinstance(value, str) and not Path(value).is_absolute():
        return str((folder / value).resolve())
    return value


def _widths_to_width_depth(net: dict) -> None:
    """Rewrite widths = [n, ..., n, out] as width = n, depth = L (, output_dim = out)."""
    widths = net.pop("widths")
    if not isinstance(widths, list) or not widths:
        raise SweepError("base network.widths: must be a non-empty list")
    hidden = widths[:-1] or widths
    if len(set(hidden)) != 1:
        raise SweepError(f"base network.widths = {widths}: the hidden layers differ in width, so "
                         "varying network.width/depth is ambiguous; give width + depth in the base "
                         "or vary network.widths with whole lists")
    net["width"], net["depth"] = hidden[0], len(widths)
    if widths[-1] != hidden[0]:
        net["output_dim"] = widths[-1]


def build_tasks(sweep: Sweep, sweep_dir) -> list[Task]:
    """Expand the sweep into validated task configs whose output lies in `sweep_dir`."""
    from ..config import ConfigError, config_from_dict
    sweep_dir = Path(sweep_dir).resolve()
    tasks = []
    for i, params in enumerate(combinations(sweep)):
        cfg = apply_params(sweep.base, params, sweep.base_path.parent, sweep.path.parent)
        cfg.setdefault("output", {})["path"] = str(sweep_dir / TASKS_DIR / str(i) / RESULT_NAME)
        try:
            config_from_dict(cfg, base_dir=sweep.base_path.parent)
        except ConfigError as exc:
            raise SweepError(f"task {i} ({format_params(params)}): {exc}") from None
        tasks.append(Task(i, params, cfg))
    return tasks


def format_params(params: dict) -> str:
    return ", ".join(f"{k} = {json.dumps(v)}" for k, v in params.items())


# ---------------------------------------------------------------------------------------
# task status
def task_statuses(sweep_dir, manifest: dict) -> dict[int, str]:
    sweep_dir = Path(sweep_dir)
    return {t["index"]: result_status(sweep_dir / t["output"]) for t in manifest["tasks"]}


# ---------------------------------------------------------------------------------------
# the sweep folder
def manifest_dict(sweep: Sweep, tasks: list[Task]) -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "mcsim_version": __version__,
        "sweep_file": "sweep.toml",
        "base_file": "base.toml",
        "source": str(sweep.path),
        "mode": sweep.mode,
        "keys": sweep.keys,
        "job_script": JOB_SCRIPT,
        "tasks": [{"index": t.index, "params": t.params, "config": t.config_rel,
                   "output": t.output_rel} for t in tasks],
        "submissions": [],
    }


def read_manifest(sweep_dir) -> dict:
    path = Path(sweep_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise SweepError(f"{sweep_dir}: not a sweep folder (no {MANIFEST}; make one with mcsim sweep)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SweepError(f"{path}: unreadable manifest: {exc}") from None
    if manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest.get("tasks"), list):
        raise SweepError(f"{path}: not an mcsim sweep manifest")
    if int(manifest.get("version", 0)) > MANIFEST_VERSION:
        raise SweepError(f"{path}: written by a newer mcsim; upgrade mcsim")
    return manifest


def _write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_existing(sweep_dir, tasks: list[Task]) -> None:
    """Refuse to reuse a folder whose tasks have results from a different config.

    A task whose config changed while its result.h5 exists would be refused by mcsim run
    anyway (different ensemble); saying so now names all of them at once."""
    sweep_dir = Path(sweep_dir)
    conflicts = []
    for t in tasks:
        cfg_path, out_path = sweep_dir / t.config_rel, sweep_dir / t.output_rel
        if cfg_path.exists() and out_path.exists():
            try:
                old = tomllib.loads(cfg_path.read_text())
            except (OSError, tomllib.TOMLDecodeError):
                old = None
            if _without_path(old) != _without_path(t.config):
                conflicts.append(t.index)
    if conflicts:
        listed = ", ".join(map(str, conflicts[:10])) + (" ..." if len(conflicts) > 10 else "")
        which = f"tasks {listed} have other configs" if len(conflicts) > 1 else f"task {listed} has another config"
        raise SweepError(f"{sweep_dir} holds results of a different sweep ({which}); use another "
                         "folder, or delete it to start over")


def _without_path(cfg):
    """A config without output.path (which moves with the folder; the rest must match)."""
    if not isinstance(cfg, dict):
        return cfg
    out = {k: v for k, v in cfg.items()}
    out["output"] = {k: v for k, v in out.get("output", {}).items() if k != "path"}
    return out


def write_sweep(sweep: Sweep, sweep_dir, tasks: list[Task], template: Path | None = None) -> dict:
    """Write task configs, copies of the sweep and base files, the job script and the
    manifest into sweep_dir; returns the manifest. Existing results are kept."""
    sweep_dir = Path(sweep_dir)
    check_existing(sweep_dir, tasks)
    template_text = read_template(template)      # before writing anything
    (sweep_dir / LOGS_DIR).mkdir(parents=True, exist_ok=True)
    for t in tasks:
        folder = sweep_dir / TASKS_DIR / str(t.index)
        folder.mkdir(parents=True, exist_ok=True)
        _write_text(folder / CONFIG_NAME, toml_dumps(t.config))
    _write_text(sweep_dir / "sweep.toml", sweep.path.read_text())
    _write_text(sweep_dir / "base.toml", sweep.base_path.read_text())
    script = render_job_script(template_text, sweep_dir.resolve(), len(tasks), sweep.slurm)
    _write_text(sweep_dir / JOB_SCRIPT, script)
    os.chmod(sweep_dir / JOB_SCRIPT, 0o755)
    manifest = manifest_dict(sweep, tasks)
    old = sweep_dir / MANIFEST
    if old.exists():
        try:
            manifest["submissions"] = read_manifest(sweep_dir).get("submissions", [])
        except SweepError:
            pass
    _write_text(old, json.dumps(manifest, indent=1) + "\n")
    return manifest


# ---------------------------------------------------------------------------------------
# the job script
def default_template() -> Path:
    """jobs/sweep-array.sbatch: from the source tree mcsim runs from, else the copy
    installed with the package (mcsim.jobs)."""
    source = Path(__file__).resolve().parents[2] / "jobs" / "sweep-array.sbatch"
    if source.exists():
        return source
    from importlib.resources import files
    return Path(str(files("mcsim.jobs") / "sweep-array.sbatch"))


def read_template(template: Path | None = None) -> str:
    path = Path(template) if template else default_template()
    try:
        return path.read_text()
    except OSError:
        raise SweepError(f"job script template {path} not found; pass --template "
                         "path/to/jobs/sweep-array.sbatch (from the mcsim sources)") from None


_SBATCH_LINE = re.compile(r"^#{1,2}SBATCH\s+--([A-Za-z0-9_-]+)(?:[=\s].*)?$")


def _sbatch_value(name: str, value) -> str | None:
    """The #SBATCH line for one option; None removes it (value false)."""
    if value is True:
        return f"#SBATCH --{name}"
    if value is False or value is None:
        return None
    return f"#SBATCH --{name}={value}"


def render_job_script(template: str, sweep_dir: Path, n_tasks: int, slurm: dict) -> str:
    """The template with the array range, the log location, the sweep folder and the
    [slurm] options filled in. Options already in the template (also commented-out `##`
    ones) are replaced in place; new ones go after the last #SBATCH line."""
    options = {k.replace("_", "-"): v for k, v in slurm.items() if k not in _SLURM_SPECIAL}
    options["array"] = array_spec(range(n_tasks), slurm.get("max_parallel"))
    options["output"] = str(sweep_dir / LOGS_DIR / "%A_%a.out")
    lines, done, last_sbatch = [], set(), -1
    for line in template.splitlines():
        m = _SBATCH_LINE.match(line)
        if m and m.group(1) in options:
            name = m.group(1)
            new = _sbatch_value(name, options[name]) if name not in done else None
            done.add(name)
            if new is not None:
                lines.append(new)
                last_sbatch = len(lines) - 1
            continue
        if line.startswith("SWEEP_DIR="):
            line = f"SWEEP_DIR=${{1:-{shlex.quote(str(sweep_dir))}}}"
        lines.append(line)
        if line.startswith(("#SBATCH", "##SBATCH")):
            last_sbatch = len(lines) - 1
    extra = [v for v in (_sbatch_value(n, options[n]) for n in options if n not in done) if v]
    lines[last_sbatch + 1:last_sbatch + 1] = extra
    return "\n".join(lines) + "\n"


def array_spec(indices, max_parallel=None) -> str:
    """Compact --array value: [0, 1, 2, 5, 7, 8] -> '0-2,5,7-8' (then '%N' if throttled)."""
    idx = sorted(set(int(i) for i in indices))
    parts, start = [], None
    for pos, i in enumerate(idx):
        if start is None:
            start = i
        if pos + 1 == len(idx) or idx[pos + 1] != i + 1:
            parts.append(str(i) if i == start else f"{start}-{i}")
            start = None
    spec = ",".join(parts)
    if max_parallel:
        spec += f"%{int(max_parallel)}"
    return spec


# ---------------------------------------------------------------------------------------
# submitting
def active_jobs(job_ids) -> list[str]:
    """Those of `job_ids` SLURM still has pending or running (empty when squeue fails)."""
    active = []
    for job in job_ids:
        try:
            proc = subprocess.run(["squeue", "-h", "-o", "%i", "-j", str(job)], capture_output=True,
                                  text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0 and proc.stdout.strip():
            active.append(str(job))
    return active


def submit(sweep_dir, indices, max_parallel=None, sbatch_args=()) -> str:
    """Submit tasks `indices` of the sweep as one array job; returns the job id."""
    sweep_dir = Path(sweep_dir).resolve()
    spec = array_spec(indices, max_parallel)
    cmd = ["sbatch", "--parsable", f"--array={spec}", *sbatch_args,
           str(sweep_dir / JOB_SCRIPT), str(sweep_dir)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise SweepError("sbatch not found: run on a SLURM login node (or drop --submit)") from None
    except subprocess.TimeoutExpired:
        raise SweepError("sbatch did not answer within 120 s") from None
    if proc.returncode != 0:
        raise SweepError(f"sbatch failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    job_id = proc.stdout.strip().splitlines()[-1].split(";")[0].strip()
    if not job_id:
        raise SweepError(f"sbatch printed no job id: {proc.stdout!r}")
    manifest = read_manifest(sweep_dir)
    from ..storage.hdf5 import now_iso
    manifest.setdefault("submissions", []).append({"job_id": job_id, "array": spec, "time": now_iso()})
    _write_text(sweep_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return job_id


def submit_command(sweep_dir, indices, max_parallel=None) -> str:
    """The sbatch command line that `submit` runs (for printing)."""
    sweep_dir = Path(sweep_dir)
    return shlex.join(["sbatch", f"--array={array_spec(indices, max_parallel)}",
                       str(sweep_dir / JOB_SCRIPT), str(sweep_dir)])
