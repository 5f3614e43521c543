"""The k network inputs x_a (rows of a (k, n_0) matrix): explicit, from a file, or generated.

[inputs] takes exactly one of
  values = [[...], ...]                       explicit k x n_0 list
  file = "x.npy"  | file = "x.h5", dataset = "x"   a (k, n_0) array (1-D means k = 1)
  generate = "gaussian" | "fixed_norm" | "circle", count = k, seed = s, norm = r
      gaussian:   entries iid N(0, 1)
      fixed_norm: iid Gaussian directions rescaled to |x| = norm (default sqrt(n_0))
      circle:     x_a = norm (cos t_a, sin t_a, 0, ...), t_a = 2 pi a / k (needs n_0 >= 2)
Without [inputs], one input x = (1, ..., 1) is used (|x|^2 / n_0 = 1).
Errors are ValueError naming the key (the config layer turns them into ConfigError).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

GENERATORS = ("gaussian", "fixed_norm", "circle")
MAX_INPUTS = 64


def resolve_inputs(sec: dict, n0: int, base_dir: Path) -> tuple[np.ndarray, dict]:
    """Return (x of shape (k, n_0), read-only float64; a dict describing the source)."""
    given = [key for key in ("values", "file", "generate") if key in sec]
    if len(given) > 1:
        raise ValueError(f"inputs.{given[1]}: give only one of values, file, generate")
    if given != ["values"]:
        count = sec.get("count", 1) if given == ["generate"] else 1
        _check_size(count if isinstance(count, int) else 1, n0)
    if not given:
        x, source = np.ones((1, n0)), {"kind": "default"}
    elif given[0] == "values":
        x, source = _from_values(sec["values"]), {"kind": "values"}
    elif given[0] == "file":
        x, source = _from_file(sec, base_dir), {"kind": "file", "file": str(sec["file"])}
    else:
        x, source = _generate(sec, n0), {"kind": "generate", **{k: sec[k] for k in sec}}
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"inputs: must be a k x n_0 matrix, got shape {x.shape}")
    if x.shape[1] != n0:
        raise ValueError(f"inputs: each input must have network.input_dim = {n0} entries, got {x.shape[1]}")
    if x.shape[0] > MAX_INPUTS:
        raise ValueError(f"inputs: at most {MAX_INPUTS} inputs, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ValueError("inputs: contain NaN or inf")
    x = np.ascontiguousarray(x, dtype=np.float64)
    x.setflags(write=False)
    return x, source


def _check_size(k: int, n0: int) -> None:
    """Refuse inputs that would not fit in memory before making them."""
    from ..limits import format_size, memory_limit
    limit, source = memory_limit()
    need = 8 * k * n0
    if limit is not None and need > limit:
        raise ValueError(f"network.input_dim: {k} input(s) of dimension {n0:,} need {format_size(need)}, "
                         f"more than the memory limit of {format_size(limit)} ({source})")


def _numbers_only(values, key: str) -> None:
    """Refuse booleans, strings and other non-numbers anywhere in a nested list."""
    stack = [values]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{key}: must hold numbers only, got {v!r}")


def _numeric_array(x: np.ndarray, where: str) -> np.ndarray:
    """x as float64 if it holds real numbers; booleans, complex numbers, strings refused."""
    kind = x.dtype.kind
    if kind == "c":
        raise ValueError(f"{where}: holds complex numbers; inputs must be real")
    if kind == "b":
        raise ValueError(f"{where}: holds bool values; inputs must be numbers")
    if kind not in "iuf":
        raise ValueError(f"{where}: must hold numbers, found dtype {x.dtype}")
    return x.astype(np.float64)


def _from_values(values) -> np.ndarray:
    _numbers_only(values, "inputs.values")
    try:
        x = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("inputs.values: must be a list of equally long lists of numbers") from None
    if x.ndim not in (1, 2) or x.size == 0:
        raise ValueError("inputs.values: must be a non-empty k x n_0 list of lists")
    return x


def _from_file(sec: dict, base_dir: Path) -> np.ndarray:
    path = Path(sec["file"])
    if not path.is_absolute():
        path = base_dir / path
    if not path.exists():
        raise ValueError(f"inputs.file: {path} does not exist")
    if path.is_dir():
        raise ValueError(f"inputs.file: {path} is a directory")
    if path.suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise ValueError(f"inputs.file: cannot read {path} as .npy: {exc}") from None
        _check_shape(x.shape, f"inputs.file {path}")
        return _numeric_array(np.asarray(x), f"inputs.file {path}")
    import h5py
    if not h5py.is_hdf5(path):
        raise ValueError(f"inputs.file: {path} is not an HDF5 file nor a .npy file (give a (k, n_0) "
                         "array as .npy, or an HDF5 file and inputs.dataset)")
    name = sec.get("dataset")
    if not name or not isinstance(name, str):
        raise ValueError("inputs.dataset: needed for an HDF5 input file (the dataset's path)")
    try:
        with h5py.File(path, "r") as f:
            if name not in f:
                raise ValueError(f"inputs.dataset: {path} has no {name!r}")
            ds = f[name]
            if not isinstance(ds, h5py.Dataset):
                raise ValueError(f"inputs.dataset: {name!r} in {path} is not a dataset (a group?)")
            _check_shape(ds.shape, f"inputs.dataset {name!r}")
            return _numeric_array(ds[()] if ds.shape else np.asarray(ds[()]), f"inputs.dataset {name!r}")
    except (OSError, KeyError, RuntimeError, TypeError) as exc:
        raise ValueError(f"inputs.file: cannot read dataset {name!r} from {path}: {exc}") from None


def _check_shape(shape, where: str) -> None:
    if len(shape) not in (1, 2) or 0 in shape:
        raise ValueError(f"{where}: must be a k x n_0 array, got shape {tuple(shape)}")
    if len(shape) == 2 and shape[0] > MAX_INPUTS:
        raise ValueError(f"{where}: at most {MAX_INPUTS} inputs, got {shape[0]}")
    n = int(np.prod(shape, dtype=object))
    _check_size(1, n)


def _generate(sec: dict, n0: int) -> np.ndarray:
    kind = sec["generate"]
    if kind not in GENERATORS:
        raise ValueError(f"inputs.generate: {kind!r} is not allowed; allowed: {', '.join(GENERATORS)}")
    k = sec.get("count", 1)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_INPUTS:
        raise ValueError(f"inputs.count: must be an integer in 1..{MAX_INPUTS}, got {k!r}")
    seed = sec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"inputs.seed: must be a non-negative integer, got {seed!r}")
    norm = sec.get("norm", math.sqrt(n0))
    if isinstance(norm, bool) or not isinstance(norm, (int, float)) or not norm > 0 or not math.isfinite(norm):
        raise ValueError(f"inputs.norm: must be a positive number, got {norm!r}")
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return rng.standard_normal((k, n0))
    if kind == "fixed_norm":
        x = rng.standard_normal((k, n0))
        return norm * x / np.linalg.norm(x, axis=1, keepdims=True)
    if n0 < 2:
        raise ValueError("inputs.generate: 'circle' needs network.input_dim >= 2")
    t = 2 * np.pi * np.arange(k) / k
    x = np.zeros((k, n0))
    x[:, 0], x[:, 1] = norm * np.cos(t), norm * np.sin(t)
    return x
