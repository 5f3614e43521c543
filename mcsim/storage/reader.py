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
from ..generators import LEGACY_GENERATOR
from ..stats.accumulator import BinnedMoments
from ..stats.finite import nonfinite_entries
from ..stats.quantities import Layout
from ..stats.results import Result, layer_estimates
from .hdf5 import FORMAT, FORMAT_VERSION

__all__ = ["open_file", "check_header", "check_run_attrs", "read_array", "read_config", "read_layers", "read_accumulator",
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


_DAMAGE = (KeyError, OSError, ValueError, TypeError, RuntimeError, IndexError, OverflowError,
           AttributeError, MemoryError, UnicodeDecodeError)


def read_array(ds, where: str, shape=None, ndim=None) -> np.ndarray:
    """A numeric dataset as float64, validated against the schema before anything is read:
    a dataset (not a group), numbers (not strings), the expected shape or number of
    dimensions, and a size below the memory limit (a damaged or hostile file may claim a
    shape of exabytes)."""
    h5py = _h5py()
    if not isinstance(ds, h5py.Dataset):
        raise ResultFileError(f"{where}: expected a dataset, found a {type(ds).__name__}")
    if ds.dtype.kind not in "fiub":
        raise ResultFileError(f"{where}: expected numbers, found dtype {ds.dtype}")
    if shape is not None and tuple(ds.shape) != tuple(shape):
        raise ResultFileError(f"{where}: has shape {ds.shape}, the file's own settings need {tuple(shape)}")
    if ndim is not None and ds.ndim != ndim:
        raise ResultFileError(f"{where}: has {ds.ndim} dimensions, expected {ndim}")
    nbytes = int(np.prod(ds.shape, dtype=object) if ds.shape else 1) * 8
    from ..limits import format_size, memory_limit
    limit = memory_limit()[0] or (16 << 30)
    if nbytes > limit:
        raise ResultFileError(f"{where}: claims {format_size(nbytes)}, more than the memory limit "
                              f"of {format_size(limit)} (a damaged file?)")
    return np.asarray(ds[()], dtype=np.float64)


def _int_attr(attrs, name: str, where, lo=0, hi=2**62, default=None) -> int:
    value = attrs.get(name, default) if hasattr(attrs, "get") else default
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
            or not lo <= int(value) <= hi:
        raise ResultFileError(f"{where}: attribute {name} = {value!r} is not an integer in [{lo}, {hi}] (damaged file)")
    return int(value)


def _float_attr(attrs: dict, name: str, where, default=0.0) -> float:
    value = attrs.get(name, default)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise ResultFileError(f"{where}: attribute {name} = {value!r} is not a non-negative number (damaged file)")
    return float(value)


def check_run_attrs(attrs: dict, path) -> dict:
    """Validate the root attributes a measurement's readers use (counts, times, flags, JSON)."""
    for name in ("networks", "networks_requested", "blocks"):
        if name in attrs:
            _int_attr(attrs, name, path)
    for name in ("runtime_seconds", "networks_per_second"):
        if name in attrs:
            _float_attr(attrs, name, path)
    for name in ("complete", "merged", "target_reached"):
        if name in attrs and not isinstance(attrs[name], (bool, np.bool_, int)):
            raise ResultFileError(f"{path}: attribute {name} = {attrs[name]!r} is not a flag (damaged file)")
    for name in ("created", "target", "block_ranges", "merged_from", "seeds", "kind"):
        if name in attrs and not isinstance(attrs[name], str):
            raise ResultFileError(f"{path}: attribute {name} is not text (damaged file)")
    return attrs


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
    if path.is_dir():
        raise ResultFileError(f"{path} is a directory, not an mcsim result file")
    try:
        f = h5py.File(path, "r")
    except (OSError, RuntimeError) as exc:
        raise ResultFileError(f"{path}: not a readable HDF5 file (truncated or damaged?): {exc}") from None
    with f:
        try:
            attrs = check_header(f, path)
            yield f, attrs
        except ResultFileError:
            raise
        except _DAMAGE as exc:
            raise ResultFileError(f"{path}: damaged mcsim file: {str(exc) or type(exc).__name__}") from None


def _sampler_of_version(name, version, path):
    """The registered sampler that makes the numbers of sampler ``name`` at the recorded
    ``sampler_version`` (none recorded: version 1, files before the attribute existed): the
    sampler itself, or the kept earlier version ``<name>_v<version>`` (``chi2_v1``,
    ``chi2_v2``, ``wishart_v1``, ``wishart_v2``: mcsim.samplers.reduced)."""
    from ..samplers import SAMPLERS
    if name not in SAMPLERS:
        return name                     # (validated with the rest of the configuration)
    version = 1 if version is None else int(version)
    if version == SAMPLERS[name].version:
        return name
    kept = f"{name}_v{version}"
    if kept not in SAMPLERS or SAMPLERS[kept].version != version:
        raise ResultFileError(f"{path}: written by sampler {name!r} version {version}, which this "
                              f"mcsim ({__version__}) does not have (it has version "
                              f"{SAMPLERS[name].version})")
    return kept


def read_config(attrs: dict, path):
    """The stored configuration, validated like a config file. It must hold its inputs as
    values: reading a result never opens a path named in the file."""
    from ..config import config_from_dict
    try:
        raw = json.loads(attrs["config_json"])
        inputs = raw.get("inputs", {}) if isinstance(raw, dict) else None
        if not isinstance(inputs, dict) or set(inputs) - {"values"}:
            raise ConfigError("inputs: a result file stores its inputs as values (it names "
                              f"{', '.join(sorted(inputs)) if isinstance(inputs, dict) else inputs!r})")
        ens = raw.get("ensemble")
        if isinstance(ens, dict) and "generator" not in ens:
            # written before the setting existed: the only generator then (mcsim.generators)
            raw["ensemble"] = {**ens, "generator": LEGACY_GENERATOR}
        if isinstance(ens, dict):
            raw["ensemble"] = {**raw["ensemble"], "sampler": _sampler_of_version(
                ens.get("sampler"), attrs.get("sampler_version"), path)}
        return config_from_dict(raw)
    except ResultFileError:
        raise
    except (ConfigError, json.JSONDecodeError, *_DAMAGE) as exc:
        raise ResultFileError(f"{path}: damaged file: stored configuration unreadable ({exc})") from None


def _expected_shape(name: str, k: int | None):
    from ..stats.statistics import STATISTICS
    base = name
    for suffix in ("_leading", "_correction"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
    if k is None or base not in STATISTICS:
        return None
    return tuple(STATISTICS[base].shape(k))


def read_layers(group, k: int | None = None, where: str = "") -> dict[int, tuple[dict, dict[str, tuple]]]:
    """{l: (layer attrs, {name: (mean, stderr or None)})} from a /layers group: every dataset,
    with ``X_stderr`` paired to ``X``. Validated: layer names are layer numbers, datasets are
    numbers of the registry's shape for ``k`` inputs (when k is given), an estimate and its
    error have the same shape."""
    h5py = _h5py()
    out = {}
    names = list(group)
    for name in names:
        if not name.isdigit() or not 1 <= int(name) <= 10**7 or not isinstance(group[name], h5py.Group):
            raise ResultFileError(f"{where}/layers/{name}: not a layer (damaged file)")
    for name in sorted(names, key=int):
        g = group[name]
        stats = {}
        for ds in g:
            if ds.endswith("_stderr") and ds[: -len("_stderr")] in g:
                continue
            at = f"{where}/layers/{name}/{ds}"
            mean = read_array(g[ds], at, shape=_expected_shape(ds, k))
            err = read_array(g[ds + "_stderr"], at + "_stderr", shape=mean.shape) if ds + "_stderr" in g else None
            stats[ds] = (mean, err)
        out[int(name)] = (attributes(g), stats)
    return out


def _stored_layout(a, shapes: dict, where: str) -> Layout:
    if "quantities" in a.attrs:
        names = tuple(str(n) for n in np.atleast_1d(a.attrs["quantities"]))
        lengths = tuple(int(v) for v in np.atleast_1d(a.attrs["lengths"]))
        orders = tuple(int(v) for v in np.atleast_1d(a.attrs["orders"]))
        if any(not 1 <= n <= 10**6 for n in lengths) or any(o not in (2, 3) for o in orders):
            raise ResultFileError(f"{where}: accumulator layout has invalid lengths {lengths} or orders {orders}")
        try:
            return Layout(names, lengths, orders)
        except ValueError as exc:
            raise ResultFileError(f"{where}: accumulator layout: {exc}") from None
    # format version 1: Ghat only, to third order if third moments are stored
    if len(shapes["mean"]) != 3 or len(shapes["m3"]) != 3:
        raise ResultFileError(f"{where}: accumulator arrays have the wrong number of dimensions")
    m = int(shapes["mean"][-1])
    return Layout(("gram",), (m,), (3 if shapes["m3"][-1] else 2,))


def read_accumulator(a, where: str = "") -> BinnedMoments:
    """The accumulator state of an ``/accumulator`` group, validated against the schema
    before reading (shapes from the stored layout, integer attributes in range) and after
    (every entry finite, counts whole and summing to blocks x block_size): a damaged
    state is refused, never resumed or merged."""
    where = f"{where}/accumulator"
    for name in ("count", "mean", "m2", "m3"):
        if name not in a:
            raise ResultFileError(f"{where}: dataset {name} missing (damaged file)")
    shapes = {name: tuple(a[name].shape) for name in ("count", "mean", "m2", "m3")}
    layout = _stored_layout(a, shapes, where)
    if len(shapes["count"]) != 1 or len(shapes["mean"]) != 3:
        raise ResultFileError(f"{where}: count / mean have the wrong number of dimensions")
    B, S = shapes["count"][0], shapes["mean"][1]
    M, T = layout.width, layout.n_triples
    expected = {"count": (B,), "mean": (B, S, M), "m2": (B, S, M, M), "m3": (B, S, T)}
    arrays = {name: read_array(a[name], f"{where}/{name}", shape=shape) for name, shape in expected.items()}
    bad = nonfinite_entries(arrays)
    if bad:
        raise ResultFileError(f"{where}: {bad} entries are inf or NaN; the state is damaged (or was "
                              "written after a numerical overflow) and cannot be resumed or merged")
    count = arrays["count"]
    blocks = _int_attr(a.attrs, "blocks", where)
    block_size = _int_attr(a.attrs, "block_size", where, lo=1, hi=2**31)
    first_block = _int_attr(a.attrs, "first_block", where, default=0)
    if np.any(count < 0) or np.any(count != np.round(count)) or count.sum() != blocks * block_size:
        raise ResultFileError(f"{where}: counts {count.sum():.0f} do not match blocks x block_size = "
                              f"{blocks} x {block_size} (damaged file)")
    return BinnedMoments.from_arrays(arrays, layout, blocks, block_size, first_block)


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
        check_run_attrs(attrs, path)
        cfg = read_config(attrs, path)
        acc, layers = None, []
        if "accumulator" in f:
            a = f["accumulator"]
            acc = read_accumulator(a, str(path))
            layers = [int(v) for v in np.atleast_1d(a.attrs["layers"])]
            if layers != list(cfg.stochastic_layers) or acc.mean.shape[1] != len(layers):
                raise ResultFileError(f"{path}/accumulator: layers {layers} do not match the stored "
                                      f"configuration's {list(cfg.stochastic_layers)} (damaged file)")
        training = None
        if "training" in f and "accumulator" in f["training"]:
            training = read_accumulator(f["training"]["accumulator"], f"{path}/training")
    return RunFile(str(path), cfg, attrs, acc, layers, training)


def result_from_group(group, attrs: dict, path) -> Result:
    """A Result from a measurement-like group (a file root or a sweep's /tasks/<i>)."""
    check_run_attrs(attrs, path)
    cfg = read_config(attrs, path)
    layers = read_layers(group["layers"], cfg.k, str(path)) if "layers" in group else {}
    estimates = {}
    for l, (lattrs, stats) in layers.items():
        if l > cfg.network.depth:
            raise ResultFileError(f"{path}/layers/{l}: the network has {cfg.network.depth} layers (damaged file)")
        stats = {name: (m, e if e is not None else np.zeros_like(m)) for name, (m, e) in stats.items()}
        estimates[l] = layer_estimates(l, int(lattrs.get("width", 0)), int(lattrs.get("fan_in", 0)),
                                       bool(lattrs.get("stochastic", l > 1)), stats)
    result = Result(cfg, int(attrs.get("networks", 0)), estimates, attrs, str(path))
    if "training" in group:
        result.training = read_training_result(group["training"])
    return result


def read_training_result(group):
    """`res.training` (a `training.accumulate.TrainingResult`) from a /training group, a
    measurement's or a prediction's: every estimate it holds, standard error 0 where the
    group has none (a prediction)."""
    from ..training.accumulate import DATASETS, TrainingResult
    est = {}
    for name in group:
        if name in DATASETS:
            err = group[name + "_stderr"][()] if name + "_stderr" in group else None
            m = group[name][()]
            est[name] = (m, err if err is not None else np.zeros_like(m))
    return TrainingResult.build(group["steps"][()], est, int(group.attrs.get("diverged", 0)),
                                int(group.attrs.get("networks_averaged", 0)))


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


def is_foreign(path) -> bool:
    """Whether an existing `path` is not an mcsim file at all (not HDF5, or HDF5 without
    format = "mcsim"), as opposed to a damaged mcsim file."""
    h5py = _h5py()
    path = Path(path)
    try:
        if not h5py.is_hdf5(path):
            return True
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") != FORMAT
    except Exception:
        return False


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
