"""The one reader of mcsim's HDF5 files (schema: docs/hdf5-schema.md).

Every command that reads a file (`info`, `compare`, `merge`, `collect`, `sweep`, resume)
goes through here, so the format and its version are checked in one place:

    open_file(path)          an open h5py.File whose header was checked (context manager)
    check_header(obj, path)  the root (or a sweep task group's) attributes, validated
    read_layers(group)       {l: (attrs, {dataset: (mean, stderr or None)})}: every dataset
                             under /layers/<l>, measurements and predictions alike
    read_run(path)           a measurement's config, attributes and accumulator (`RunFile`)
    open_result(path)        a measurement or prediction as a `Result`
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
           "RunFile", "read_run", "open_result", "is_complete", "result_status"]


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
    return RunFile(str(path), cfg, attrs, acc, layers)


def open_result(path) -> Result:
    """Read a measurement (or prediction) file into a Result: every dataset of every layer,
    with standard error 0 where the file has none (predictions, exact layer 1)."""
    with open_file(path) as (f, attrs):
        cfg = read_config(attrs, path)
        layers = read_layers(f["layers"]) if "layers" in f else {}
    estimates = {}
    for l, (lattrs, stats) in layers.items():
        stats = {name: (m, e if e is not None else np.zeros_like(m)) for name, (m, e) in stats.items()}
        estimates[l] = layer_estimates(l, int(lattrs.get("width", 0)), int(lattrs.get("fan_in", 0)),
                                       bool(lattrs.get("stochastic", l > 1)), stats)
    return Result(cfg, int(attrs.get("networks", 0)), estimates, attrs, str(path))


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
