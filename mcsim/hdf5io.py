"""HDF5 files: writing runs atomically, reading them back (schema: docs/hdf5-schema.md).

Files are written whole to a temporary file beside the target, fsync'ed, and renamed over
it, so a crash or a full disk at any moment leaves either the previous file or the new one,
never a half-written one. Every read validates the file and raises `ResultFileError` with a
message that says what is wrong (not HDF5 / damaged, not an mcsim file, newer format, ...).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .accumulator import BinnedMoments
from .config import Config, ConfigError, config_from_dict
from .results import STAT_NAMES, Result, layer_estimates

FORMAT = "mcsim"
FORMAT_VERSION = 1


class ResultFileError(OSError):
    """An mcsim HDF5 file cannot be read or written; the message says why."""


def _h5py():
    import h5py
    return h5py


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def software_versions() -> dict[str, str]:
    import h5py
    import numba
    return {"mcsim_version": __version__, "python_version": platform.python_version(),
            "numpy_version": np.__version__, "numba_version": numba.__version__,
            "h5py_version": h5py.__version__}


def _flat_attrs(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if name.endswith("activation"):
                out[name] = json.dumps(value)
            else:
                out.update(_flat_attrs(value, name + "."))
        elif isinstance(value, list) and value and isinstance(value[0], list):
            continue                          # matrices (inputs) are datasets, not attributes
        elif isinstance(value, list) and value and isinstance(value[0], str):
            out[name] = json.dumps(value)
        else:
            out[name] = np.asarray(value) if isinstance(value, list) else value
    return out


def atomic_write(path, fill) -> None:
    """Create `path` by calling fill(h5py.File) on a temporary file, then rename it over path."""
    h5py = _h5py()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            fill(f)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        try:
            dirfd = os.open(path.parent or ".", os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)
        except OSError:
            pass
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        reason = exc.strerror or str(exc)
        raise ResultFileError(f"cannot write {path}: {reason} (any previous version of the file is unchanged)") from exc


def remove_stale_temporaries(path) -> list[Path]:
    """Delete temporary files left beside `path` by a writer that was killed (kill -9, node
    failure) mid-write; a temporary of a process that is still alive is left alone."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{path.name}.tmp*"):
        pid = tmp.name.rsplit(".tmp", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                continue                     # its writer still runs
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


DESCRIPTIONS = {
    "metric": ("G_ab = E[Ghat_ab] = E[z_{i;a} z_{i;b}]", "preactivation variance (units of z^2)"),
    "vertex": ("V_(a1a2)(a3a4) = n_{l-1} Cov(Ghat_a1a2, Ghat_a3a4)", "z^4 times fan-in"),
    "six_point": ("n_{l-1}^2 kappa_3(Ghat_a1a2, Ghat_a3a4, Ghat_a5a6)", "z^6 times fan-in^2"),
    "kurtosis": ("excess kurtosis of z_{i;a}: 3 Var(Ghat_aa) / G_aa^2", "dimensionless"),
    "metric_leading": ("leading-order kernel K", "preactivation variance (units of z^2)"),
    "metric_correction": ("1/n correction G^{1}: G = K + G^{1}/n_{l-1}", "units of z^2 times fan-in"),
}


def write_layers(group, estimates: dict, cfg: Config, with_stderr: bool = True) -> None:
    """/layers/<l>/<stat>[_stderr] from {l: {name: (mean, stderr)}} (stderr may be None)."""
    layers = group.require_group("layers")
    net = cfg.network
    for l, stats in sorted(estimates.items()):
        g = layers.create_group(str(l))
        g.attrs.update(width=net.widths[l - 1], fan_in=net.fan_in(l), C_W=net.C_W[l - 1],
                       C_b=net.C_b[l - 1], stochastic=l > 1)
        for name, value in stats.items():
            mean, err = value if isinstance(value, tuple) else (value, None)
            desc, units = DESCRIPTIONS.get(name, ("", ""))
            d = g.create_dataset(name, data=mean)
            d.attrs.update(description=desc, units=units)
            if with_stderr and err is not None:
                d = g.create_dataset(name + "_stderr", data=err)
                d.attrs.update(description=f"standard error (delete-one-bin jackknife) of {name}",
                               units=units)


def write_header(f, cfg: Config, kind: str, attrs: dict) -> None:
    """Root attributes, /config and /inputs shared by every kind of file."""
    f.attrs.update(format=FORMAT, format_version=FORMAT_VERSION, kind=kind,
                   config_toml=cfg.to_toml(), config_json=cfg.to_json(), seed=cfg.ensemble.seed,
                   sampler=cfg.ensemble.sampler, weights=cfg.ensemble.weights, k=cfg.k,
                   input_dim=cfg.network.input_dim, depth=cfg.network.depth, **software_versions())
    f.attrs.setdefault("created", now_iso())
    f.attrs["modified"] = now_iso()
    for key, value in attrs.items():
        f.attrs[key] = value
    cg = f.create_group("config")
    cg.attrs.update(_flat_attrs(cfg.to_dict()))
    f.create_dataset("inputs", data=np.asarray(cfg.inputs))


def write_run(path, cfg: Config, acc: BinnedMoments, estimates: dict, attrs: dict,
              stochastic_layers: list[int]) -> None:
    """A measurement: header, per-layer estimates and the raw accumulator state."""
    def fill(f):
        write_header(f, cfg, "measurement", attrs)
        write_layers(f, estimates, cfg)
        a = f.create_group("accumulator")
        a.attrs.update(blocks=acc.blocks, first_block=acc.first_block, block_size=acc.block_size, bins=acc.bins,
                       layers=np.asarray(stochastic_layers, dtype=np.int64), order=acc.order,
                       description="per jackknife bin: count, mean of the pair-vector of Ghat "
                                   "(bin, layer, pair), central sums m2 (bin, layer, pair, pair) "
                                   "and m3 (bin, layer, triple); block b is in bin b % bins")
        for name, arr in acc.arrays().items():
            a.create_dataset(name, data=arr)
    atomic_write(path, fill)


@dataclass
class RunFile:
    """What a measurement file holds, validated."""
    path: str
    config: Config
    attrs: dict
    accumulator: BinnedMoments | None
    stochastic_layers: list[int]


def _open(path):
    h5py = _h5py()
    path = Path(path)
    if not path.exists():
        raise ResultFileError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ResultFileError(f"{path}: not a readable HDF5 file (truncated or damaged?): {exc}") from None


def _check_header(f, path) -> dict:
    attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
    if attrs.get("format") != FORMAT:
        raise ResultFileError(f"{path}: not an mcsim file (no format = 'mcsim' attribute)")
    version = int(attrs.get("format_version", -1))
    if version > FORMAT_VERSION:
        raise ResultFileError(f"{path}: written by a newer mcsim (format version {version}); "
                              f"this mcsim {__version__} reads up to version {FORMAT_VERSION}: upgrade mcsim")
    if version < 1:
        raise ResultFileError(f"{path}: invalid format_version {version}")
    return attrs


def read_config(attrs: dict, path) -> Config:
    try:
        return config_from_dict(json.loads(attrs["config_json"]))
    except (KeyError, json.JSONDecodeError, ConfigError) as exc:
        raise ResultFileError(f"{path}: damaged file: stored configuration unreadable ({exc})") from None


def read_run(path) -> RunFile:
    """Header, config and accumulator state of a measurement file."""
    with _open(path) as f:
        try:
            attrs = _check_header(f, path)
            cfg = read_config(attrs, path)
            acc, layers = None, []
            if "accumulator" in f:
                a = f["accumulator"]
                arrays = {name: a[name][()] for name in ("count", "mean", "m2", "m3")}
                acc = BinnedMoments.from_arrays(arrays, int(a.attrs["blocks"]), int(a.attrs["block_size"]),
                                                int(a.attrs.get("first_block", 0)))
                layers = [int(v) for v in a.attrs["layers"]]
        except ResultFileError:
            raise
        except (KeyError, OSError, ValueError) as exc:
            raise ResultFileError(f"{path}: damaged mcsim file: {exc}") from None
    return RunFile(str(path), cfg, attrs, acc, layers)


def read_layers(group, k=None) -> dict[int, dict[str, tuple]]:
    """{l: {stat: (mean, stderr or None)}} from a /layers group."""
    out = {}
    for name in sorted(group, key=int):
        g = group[name]
        stats = {}
        for stat in list(STAT_NAMES) + ["metric_leading", "metric_correction"]:
            if stat in g:
                err = g[stat + "_stderr"][()] if stat + "_stderr" in g else None
                stats[stat] = (g[stat][()], err)
        out[int(name)] = (dict(g.attrs), stats)
    return out


def open_result(path) -> Result:
    """Read a measurement (or prediction) file into a Result."""
    with _open(path) as f:
        try:
            attrs = _check_header(f, path)
            cfg = read_config(attrs, path)
            layers = read_layers(f["layers"]) if "layers" in f else {}
        except ResultFileError:
            raise
        except (KeyError, OSError, ValueError) as exc:
            raise ResultFileError(f"{path}: damaged mcsim file: {exc}") from None
    estimates = {}
    for l, (lattrs, stats) in layers.items():
        stats = {name: (m, e if e is not None else np.zeros_like(m))
                 for name, (m, e) in stats.items() if name in STAT_NAMES}
        if "metric" not in stats:
            continue
        k = stats["metric"][0].shape[0]
        stats.setdefault("vertex", (np.full((k,) * 4, np.nan), np.full((k,) * 4, np.nan)))
        stats.setdefault("kurtosis", (np.full(k, np.nan), np.full(k, np.nan)))
        estimates[l] = layer_estimates(l, int(lattrs.get("width", 0)), int(lattrs.get("fan_in", 0)),
                                       bool(lattrs.get("stochastic", l > 1)), stats)
    return Result(cfg, int(attrs.get("networks", 0)), estimates, attrs, str(path))
