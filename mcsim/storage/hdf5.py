"""HDF5 files: writing atomically (schema: docs/hdf5-schema.md). Reading is `storage.reader`.

Files are written whole to a temporary file beside the target, fsync'ed, and renamed over
it, so a crash or a full disk at any moment leaves either the previous file or the new one,
never a half-written one. Dataset descriptions and units come from the statistics registry.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ResultFileError
from ..generators import generator_attrs
from ..samplers import get_sampler
from ..stats.statistics import describe

FORMAT = "mcsim"
#: 1: the accumulator held Ghat only; 2: it records its layout of quantities (read both)
FORMAT_VERSION = 2


def _h5py():
    import h5py
    return h5py


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _distribution_version(name: str) -> str | None:
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


_GIT: dict = {}


def source_revision() -> dict[str, str]:
    """``mcsim_git_commit`` (and ``mcsim_git_dirty`` = "true" with uncommitted changes) when
    mcsim runs from a git checkout; empty otherwise (an installed wheel)."""
    if "value" not in _GIT:
        import subprocess
        root = Path(__file__).resolve().parents[2]
        value = {}
        if (root / ".git").exists():
            try:
                commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                        text=True, timeout=10)
                if commit.returncode == 0 and commit.stdout.strip():
                    value["mcsim_git_commit"] = commit.stdout.strip()
                    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                            "--untracked-files=no"], capture_output=True, text=True, timeout=10)
                    if dirty.returncode == 0:
                        value["mcsim_git_dirty"] = "true" if dirty.stdout.strip() else "false"
            except (OSError, subprocess.SubprocessError):
                pass
        _GIT["value"] = value
    return dict(_GIT["value"])


def software_versions() -> dict[str, str]:
    """The software that writes a file: mcsim (and its git commit in a checkout), Python and
    the packages whose versions can change the numbers or the file (numpy, numba, h5py,
    scipy; mpi4py when installed, without importing it)."""
    import h5py
    import numba
    out = {"mcsim_version": __version__, "python_version": platform.python_version(),
           "numpy_version": np.__version__, "numba_version": numba.__version__,
           "h5py_version": h5py.__version__}
    for name in ("scipy", "mpi4py"):
        version = _distribution_version(name)
        if version:
            out[f"{name}_version"] = version
    out.update(source_revision())
    return out


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


def resolve_output(path) -> Path:
    """The file an output path names: a symbolic link is followed (the target is written,
    the link stays a link); a directory is refused with a clear message."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_dir():
        from ..errors import ConfigError
        raise ConfigError(f"output: {path} is a directory; give the path of an output file inside "
                          f"it (e.g. {path / 'result.h5'})")
    return path


def atomic_write(path, fill) -> None:
    """Create `path` by calling fill(h5py.File) on a temporary file, then rename it over path.

    A symbolic link at `path` is followed (its target is replaced). The temporary is removed
    on every error, whatever was raised."""
    h5py = _h5py()
    path = resolve_output(path)
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
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


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


def write_layers(group, estimates: dict, cfg, with_stderr: bool = True, describe_as=None) -> None:
    """/layers/<l>/<stat>[_stderr] from {l: {name: (mean, stderr)}} (stderr may be None).
    describe_as: optional ``name -> (description, units)`` that overrides the registry's."""
    layers = group.require_group("layers")
    net = cfg.network
    for l, stats in sorted(estimates.items()):
        g = layers.create_group(str(l))
        g.attrs.update(width=net.widths[l - 1], fan_in=net.fan_in(l), C_W=net.C_W[l - 1],
                       C_b=net.C_b[l - 1], stochastic=l > 1)
        for name, value in stats.items():
            mean, err = value if isinstance(value, tuple) else (value, None)
            desc, units = (describe_as or describe)(name)
            d = g.create_dataset(name, data=mean)
            d.attrs.update(description=desc, units=units)
            if with_stderr and err is not None:
                d = g.create_dataset(name + "_stderr", data=err)
                d.attrs.update(description=f"standard error (delete-one-bin jackknife) of {name}",
                               units=units)


def write_header(f, cfg, kind: str, attrs: dict) -> None:
    """Root attributes, /config and /inputs shared by every kind of file."""
    f.attrs.update(format=FORMAT, format_version=FORMAT_VERSION, kind=kind,
                   config_toml=cfg.to_toml(), config_json=cfg.to_json(), seed=cfg.ensemble.seed,
                   sampler=cfg.ensemble.sampler,
                   sampler_version=get_sampler(cfg.ensemble.sampler).version, weights=cfg.ensemble.weights, k=cfg.k,
                   input_dim=cfg.network.input_dim, depth=cfg.network.depth,
                   **generator_attrs(cfg.ensemble.generator), **software_versions())
    f.attrs.setdefault("created", now_iso())
    f.attrs["modified"] = now_iso()
    for key, value in attrs.items():
        f.attrs[key] = value
    cg = f.create_group("config")
    cg.attrs.update(_flat_attrs(cfg.to_dict()))
    cg.attrs["description"] = "the resolved configuration, flattened to dotted keys (also config_toml)"
    d = f.create_dataset("inputs", data=np.asarray(cfg.inputs))
    d.attrs.update(description="the inputs x_a: row a (0-based here, input a + 1 in the labels "
                               "G[12], V[(11)(12)]) is x_a, shape (k, n_0)",
                   units="input units (x enters layer 1 as C_W x.x / n_0)")


def check_finite_result(acc, estimates: dict, path) -> None:
    """The last guard before writing: no inf / NaN in the accumulator, no inf in an estimate
    (NaN marks an undefined estimate: too few networks or bins, or 0/0)."""
    from ..errors import NumericalOverflow
    from ..stats.finite import nonfinite_entries
    bad = nonfinite_entries(acc.arrays())
    if bad:
        raise NumericalOverflow(f"{bad} entries of the moment state are inf or NaN (numerical "
                                f"overflow); {path} is not written")
    for l, stats in estimates.items():
        for name, value in stats.items():
            for arr in (value if isinstance(value, tuple) else (value,)):
                if arr is not None and np.isinf(arr).any():
                    raise NumericalOverflow(f"the {name} estimate of layer {l} is infinite (numerical "
                                            f"overflow); {path} is not written")


def write_run(path, cfg, acc, estimates: dict, attrs: dict, training=None) -> None:
    """A measurement: header, per-layer estimates and the raw accumulator state (and, for a
    run with [training], the group /training from its accumulator ``training``). Refuses
    (NumericalOverflow) to write a non-finite state or an infinite estimate."""
    layout = acc.layout
    check_finite_result(acc, estimates, path)

    def fill(f):
        write_header(f, cfg, "measurement", attrs)
        write_layers(f, estimates, cfg)
        a = f.create_group("accumulator")
        a.attrs.update(blocks=acc.blocks, first_block=acc.first_block, block_size=acc.block_size, bins=acc.bins,
                       layers=np.asarray(cfg.stochastic_layers, dtype=np.int64), order=acc.order,
                       description="per jackknife bin: count, the mean of the per-network vector x "
                                   "(bin, layer, entry), its central sums m2 (bin, layer, entry, entry) "
                                   "and m3 (bin, layer, triple) over the triples of the order-3 entries; "
                                   "x concatenates the quantities named in `quantities` at `offsets` "
                                   "(lengths `lengths`, moment orders `orders`); block b is in bin b % bins",
                       **layout.to_attrs())
        for name, arr in acc.arrays().items():
            d = a.create_dataset(name, data=arr)
            d.attrs["description"] = ACCUMULATOR_DATASETS[name]
        if training is not None:
            write_training(f, cfg, training)
    atomic_write(path, fill)


#: descriptions of the /accumulator datasets (B bins, S recorded stochastic layers, M entries
#: of the per-network vector x, T sorted triples of its order-3 entries)
ACCUMULATOR_DATASETS = {
    "count": "networks in each jackknife bin, shape (B,) (float64, exact below 2**53)",
    "mean": "mean of the per-network vector x in each bin, shape (B, S, M): bin, recorded "
            "stochastic layer (attribute layers), entry of x (quantities at offsets)",
    "m2": "central cross sums sum (x_p - mean_p)(x_q - mean_q) in each bin, shape (B, S, M, M)",
    "m3": "third central sums sum d_p d_q d_r over the sorted triples p <= q <= r of the order-3 "
          "entries (lexicographic) in each bin, shape (B, S, T); T = 0 without third moments",
}


def write_training(f, cfg, acc) -> None:
    """The group /training of an open HDF5 file from the trained networks' accumulator
    (`training.accumulate`; layout in docs/hdf5-schema.md)."""
    from ..training.accumulate import DATASETS, diverged_count, training_estimates
    tc = cfg.training
    g = f.create_group("training")
    trained = acc.blocks * acc.block_size
    div = diverged_count(acc)
    g.attrs.update(description="trained ensemble: every network trained by full-batch gradient descent "
                               "on the [training] set; statistics at the recorded steps",
                   diverged=div, diverged_fraction=div / trained if trained else 0.0,
                   networks_trained=trained, networks_averaged=acc.networks, learning_rate=tc.learning_rate,
                   lambda_b=np.asarray(tc.lambda_b), lambda_W=np.asarray(tc.lambda_W), lambdas=tc.lambdas)
    d = g.create_dataset("steps", data=np.asarray(tc.record, dtype=np.int64))
    d.attrs.update(description="the recorded gradient-descent steps t, shape (R,)", units="steps")
    for name, (mean, err) in training_estimates(cfg, acc).items():
        desc, units = DATASETS[name]
        d = g.create_dataset(name, data=mean)
        d.attrs.update(description=desc, units=units)
        d = g.create_dataset(name + "_stderr", data=err)
        d.attrs.update(description=f"standard error (delete-one-bin jackknife) of {name}", units=units)
    a = g.create_group("accumulator")
    a.attrs.update(blocks=acc.blocks, first_block=acc.first_block, block_size=acc.block_size, bins=acc.bins,
                   description="as /accumulator, with the recorded steps (steps) in place of the layer "
                               "axis; count holds only networks that did not diverge",
                   **acc.layout.to_attrs())
    for name, arr in acc.arrays().items():
        d = a.create_dataset(name, data=arr)
        d.attrs["description"] = ACCUMULATOR_DATASETS[name].replace("layer (attribute layers)", "recorded step")
