"""The one reader of mcsim's HDF5 files (schema: docs/hdf5-schema.md).

Every command that reads a file (`info`, `compare`, `merge`, `collect`, `sweep`, resume)
goes through here, so the format and its version are checked in one place:

    open_file(path)          an open h5py.File whose header was checked (context manager)
    check_header(obj, path)  the root (or a sweep task group's) attributes, validated
    read_layers(group)       {l: (attrs, {dataset: (mean, stderr or None)})}: every dataset
                             under /layers/<l>, measurements and predictions alike
    read_run(path)           a measurement's config, attributes and accumulator (`RunFile`)
    open_result(path)        a measurement or prediction as a `Result` (.to_xarray(), .to_pandas())
    open_sweep(path)         a collected sweep as a `SweepResult` (one Result per task)
    is_complete(attrs)       whether a stored run holds all the networks it was asked for
    result_status(path)      "pending", "partial", "complete" or "damaged" (sweeps)

Version 1 files (accumulator of Ghat only, no layout attributes) are read as the layout
``gram`` (to third order when they hold third moments), so they resume, extend and merge.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ConfigError, ResultFileError
from ..stats.accumulator import BinnedMoments
from ..stats.quantities import Layout
from ..stats.results import Result, layer_estimates
from .hdf5 import FORMAT, FORMAT_VERSION

__all__ = ["open_file", "check_header", "read_config", "read_layers", "read_accumulator",
           "RunFile", "read_run", "open_result", "result_from_group", "SweepResult", "open_sweep",
           "is_complete", "result_status"]


def _h5py():
    import h5py
    return h5py


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def attributes(obj) -> dict:
    """An HDF5 object's attributes as plain Python values where they are scalars."""
    return {k: _plain(v) for k, v in obj.attrs.items()}


def check_header(obj, path) -> dict:
    """Validate format and version of a file root (or a collected sweep's task group)."""
    attrs = attributes(obj)
    if attrs.get("format") != FORMAT:
        raise ResultFileError(f"{path}: not an mcsim file (no format = 'mcsim' attribute)")
    try:
        version = int(attrs.get("format_version", -1))
    except (TypeError, ValueError):
        raise ResultFileError(f"{path}: invalid format_version {attrs.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise ResultFileError(f"{path}: written by a newer mcsim (format version {version}); "
                              f"this mcsim {__version__} reads up to version {FORMAT_VERSION}: upgrade mcsim")
    if version < 1:
        raise ResultFileError(f"{path}: invalid format_version {version}")
    return attrs


@contextlib.contextmanager
def open_file(path):
    """Open an mcsim file read-only and check its header; yields (h5py.File, attrs).

    Every error becomes a ResultFileError that names the file and says what is wrong."""
    h5py = _h5py()
    path = Path(path)
    if not path.exists():
        raise ResultFileError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ResultFileError(f"{path}: not a readable HDF5 file (truncated or damaged?): {exc}") from None
    with f:
        try:
            attrs = check_header(f, path)
            yield f, attrs
        except ResultFileError:
            raise
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise ResultFileError(f"{path}: damaged mcsim file: {exc}") from None


def read_config(attrs: dict, path):
    from ..config import config_from_dict
    try:
        return config_from_dict(json.loads(attrs["config_json"]))
    except (KeyError, TypeError, json.JSONDecodeError, ConfigError) as exc:
        raise ResultFileError(f"{path}: damaged file: stored configuration unreadable ({exc})") from None


def read_layers(group) -> dict[int, tuple[dict, dict[str, tuple]]]:
    """{l: (layer attrs, {name: (mean, stderr or None)})} from a /layers group: every dataset,
    with ``X_stderr`` paired to ``X``."""
    out = {}
    for name in sorted(group, key=int):
        g = group[name]
        stats = {}
        for ds in g:
            if ds.endswith("_stderr") and ds[: -len("_stderr")] in g:
                continue
            err = g[ds + "_stderr"][()] if ds + "_stderr" in g else None
            stats[ds] = (g[ds][()], err)
        out[int(name)] = (attributes(g), stats)
    return out


def _stored_layout(a, arrays: dict) -> Layout:
    if "quantities" in a.attrs:
        names = tuple(str(n) for n in a.attrs["quantities"])
        return Layout(names, tuple(int(v) for v in a.attrs["lengths"]), tuple(int(v) for v in a.attrs["orders"]))
    # format version 1: Ghat only, to third order if third moments are stored
    m = int(np.shape(arrays["mean"])[-1])
    return Layout(("gram",), (m,), (3 if np.shape(arrays["m3"])[-1] else 2,))


def read_accumulator(a) -> BinnedMoments:
    """The accumulator state of an ``/accumulator`` group."""
    arrays = {name: a[name][()] for name in ("count", "mean", "m2", "m3")}
    layout = _stored_layout(a, arrays)
    return BinnedMoments.from_arrays(arrays, layout, int(a.attrs["blocks"]), int(a.attrs["block_size"]),
                                     int(a.attrs.get("first_block", 0)))


def is_complete(attrs: dict) -> bool:
    """Whether a stored run holds all the networks it was asked for (its `complete` flag,
    which the driver sets only on the final write)."""
    return bool(attrs.get("complete", False))


@dataclass
class RunFile:
    """What a measurement file holds, validated."""
    path: str
    config: object
    attrs: dict
    accumulator: BinnedMoments | None
    stochastic_layers: list[int]
    training: BinnedMoments | None = None      # /training/accumulator of a [training] run

    @property
    def complete(self) -> bool:
        return is_complete(self.attrs)


def read_run(path) -> RunFile:
    """Header, config and accumulator state of a measurement file."""
    with open_file(path) as (f, attrs):
        cfg = read_config(attrs, path)
        acc, layers = None, []
        if "accumulator" in f:
            a = f["accumulator"]
            acc = read_accumulator(a)
            layers = [int(v) for v in a.attrs["layers"]]
        training = None
        if "training" in f and "accumulator" in f["training"]:
            from ..training.accumulate import read_training_accumulator
            training = read_training_accumulator(f["training"])
    return RunFile(str(path), cfg, attrs, acc, layers, training)


def result_from_group(group, attrs: dict, path) -> Result:
    """A Result from a measurement-like group (a file root or a sweep's /tasks/<i>)."""
    cfg = read_config(attrs, path)
    layers = read_layers(group["layers"]) if "layers" in group else {}
    estimates = {}
    for l, (lattrs, stats) in layers.items():
        stats = {name: (m, e if e is not None else np.zeros_like(m)) for name, (m, e) in stats.items()}
        estimates[l] = layer_estimates(l, int(lattrs.get("width", 0)), int(lattrs.get("fan_in", 0)),
                                       bool(lattrs.get("stochastic", l > 1)), stats)
    result = Result(cfg, int(attrs.get("networks", 0)), estimates, attrs, str(path))
    if "training" in group:
        from ..training.accumulate import read_training_result
        result.training = read_training_result(group["training"])
    return result


def open_result(path) -> Result:
    """Read a measurement (or prediction) file into a Result: every dataset of every layer,
    with standard error 0 where the file has none (predictions, exact layer 1).
    ``result.to_xarray()`` / ``result.to_pandas()`` turn it into a Dataset / DataFrame."""
    with open_file(path) as (f, attrs):
        if attrs.get("kind") == "sweep":
            raise ResultFileError(f"{path} is a collected sweep (several runs): read it with "
                                  "mcsim.open_sweep(path)")
        return result_from_group(f, attrs, path)


@dataclass
class SweepResult:
    """A collected sweep (``mcsim collect``): one Result per task with results, and the
    swept parameters of each (``params[i]``: {"network.width": 64, ...})."""
    path: str
    attrs: dict
    keys: list                  # the swept keys, in sweep order
    tasks: list                 # task indices
    params: list                # per task: {key: value}
    status: list                # per task: "complete" or "partial"
    results: list               # per task: Result

    def __len__(self) -> int:
        return len(self.results)

    def to_xarray(self):
        """The tasks stacked along a ``task`` dimension (outer join over layers and inputs),
        the swept parameters and ``status`` as coordinates along it."""
        from ..stats.frames import _need
        xr = _need("xarray")
        parts = [r.to_xarray() for r in self.results]
        ds = xr.concat(parts, dim="task", join="outer", combine_attrs="drop_conflicts",
                       coords="different", compat="equals")
        ds = ds.assign_coords(task=("task", np.asarray(self.tasks, dtype=np.int64)),
                              status=("task", np.asarray(self.status, dtype=object)))
        for key in self.keys:
            values = [p.get(key) for p in self.params]
            if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values):
                ds = ds.assign_coords({key: ("task", np.asarray(values))})
            else:
                ds = ds.assign_coords({key: ("task", np.asarray([json.dumps(v) if not isinstance(v, str)
                                                               else v for v in values], dtype=object))})
        ds.attrs.update({k: v for k, v in self.attrs.items() if k in ("swept", "mode", "n_tasks", "kind")})
        return ds

    def to_pandas(self, entries: str = "distinct", statistics=None):
        """The tasks' tidy tables stacked, with columns task, status and one per swept key."""
        from ..stats.frames import _need
        pd = _need("pandas")
        frames = []
        for t, p, st, r in zip(self.tasks, self.params, self.status, self.results):
            df = r.to_pandas(entries=entries, statistics=statistics)
            df.insert(0, "task", t)
            df.insert(1, "status", st)
            for j, key in enumerate(self.keys):
                v = p.get(key)
                df.insert(2 + j, key, v if not isinstance(v, (dict, list)) else json.dumps(v))
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def open_sweep(path) -> SweepResult:
    """Read a collected sweep file (``kind = "sweep"``): every task that has results."""
    with open_file(path) as (f, attrs):
        if attrs.get("kind") != "sweep":
            raise ResultFileError(f"{path} is not a collected sweep (kind = {attrs.get('kind')!r}); "
                                  "read it with mcsim.open_result(path)")
        keys = json.loads(attrs.get("swept", "[]"))
        out = SweepResult(str(path), attrs, keys, [], [], [], [])
        for name in sorted(f.get("tasks", {}), key=int):
            g = f["tasks"][name]
            gattrs = check_header(g, f"{path}:/tasks/{name}")
            out.tasks.append(int(name))
            out.params.append({key: _plain(g.attrs[key]) for key in keys if key in g.attrs})
            out.status.append(str(gattrs.get("status", "")))
            out.results.append(result_from_group(g, gattrs, f"{path}:/tasks/{name}"))
    return out


def result_status(path) -> str:
    """'complete', 'partial' (a checkpoint), 'pending' (no file) or 'damaged' (unreadable,
    not an mcsim file, or a newer format)."""
    path = Path(path)
    if not path.exists():
        return "pending"
    try:
        with open_file(path) as (_, attrs):
            return "complete" if is_complete(attrs) else "partial"
    except ResultFileError:
        return "damaged"
