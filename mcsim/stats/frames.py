"""Results as xarray Datasets and tidy pandas DataFrames (optional: ``pip install mcsim[analysis]``).

``Result.to_xarray()`` gives one Dataset per result:

    dims        layer (recorded layers l), input_a, input_b, ..., input_f (inputs, numbered
                from 1 as in the labels G[12], V[(11)(12)]), input_component (n_0)
    variables   every per-layer dataset of the file, e.g. metric (layer, input_a, input_b),
                vertex (layer, input_a .. input_d), six_point (layer, input_a .. input_f),
                kurtosis (layer, input_a), each with its ``<name>_stderr`` twin (measurements;
                a prediction has none), with the registry's ``description`` and ``units``;
                inputs (input_a, input_component)
    coords      layer, input_a.., width (layer) = n_l, fan_in (layer) = n_{l-1}, stochastic (layer)
    attrs       the file's root attributes: config_toml, config_json, seed, networks, the
                software versions, ... (booleans as 0/1, so ``to_netcdf`` works)

A statistic missing at some layer is NaN there. ``Result.to_pandas()`` gives one row per
layer, statistic and entry (the distinct entries by symmetry, or every index tuple with
``entries="all"``): layer, width, fan_in, statistic, entry (its label), input_a ..
input_f (1-based, empty where the statistic has fewer indices), mean, stderr.

``SweepResult`` (``mcsim.open_sweep``) stacks its tasks along a ``task`` dimension (xarray,
with the swept parameters as coordinates) or adds them as columns (pandas).

Trained ensembles (``[training]``, group ``/training``): ``Result.to_xarray()`` also holds
every training statistic along a ``step`` dimension (the recorded gradient-descent steps, as
coordinate values), with its ``_stderr`` twin (measurements): ``output_mean``,
``linearised_mean``, ``deviation_mean`` (step, input_a, output_unit), ``output_covariance``,
``linearised_covariance`` (step, input_a, input_b), the losses (step); attributes
``training_networks`` and ``training_diverged``. ``res.training.to_xarray()`` gives these
alone, and ``res.training.to_pandas()`` one row per step, statistic and entry (the distinct
a <= b of a covariance, or every index with ``entries="all"``): step, statistic, entry,
input_a, input_b, output_unit (1-based, empty where not an index), mean, stderr.
"""
from __future__ import annotations

import itertools

import numpy as np

from .statistics import STATISTICS, describe

__all__ = ["INPUT_DIMS", "result_to_xarray", "result_to_pandas", "records_to_pandas",
           "entry_indices", "entry_label_of", "training_to_xarray", "training_to_pandas"]

INPUT_DIMS = ("input_a", "input_b", "input_c", "input_d", "input_e", "input_f")


def _need(module: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is needed for this (pip install 'mcsim[analysis]', or "
                          f"pip install {module})") from None


def _base(name: str) -> str:
    for suffix in ("_leading", "_correction"):
        if name.endswith(suffix) and name[: -len(suffix)] in STATISTICS:
            return name[: -len(suffix)]
    return name


def entry_indices(name: str, shape: tuple, entries: str = "distinct") -> list[tuple]:
    """Index tuples of a dataset: the registry's distinct entries (for a statistic or a
    prediction's ``X_leading`` / ``X_correction``), else the upper triangle of a square
    matrix, else every index; ``entries="all"``: every index tuple."""
    if entries == "all" or not shape:
        return list(itertools.product(*(range(n) for n in shape)))
    base = _base(name)
    if base in STATISTICS:
        return [tuple(i) for i in STATISTICS[base].distinct(shape[0])]
    if len(shape) == 2 and shape[0] == shape[1]:
        return [(a, b) for a in range(shape[0]) for b in range(a, shape[0])]
    return list(itertools.product(*(range(n) for n in shape)))


def entry_label_of(name: str, idx: tuple) -> str:
    """The registry's label (``G[12]``) or, for other datasets, ``name[12]``."""
    base = _base(name)
    if base in STATISTICS:
        label = STATISTICS[base].label(tuple(idx))
        return label if base == name else f"{label} ({name[len(base) + 1:]})"
    return f"{name}[{''.join(str(i + 1) for i in idx)}]"


def _plain_attr(value):
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, np.ndarray) and value.dtype == bool:
        return value.astype(np.int8)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _names(result) -> list[str]:
    present = {n for l in result.layers for n in result.layer(l).stats}
    ordered = [n for n in STATISTICS if n in present]
    return ordered + sorted(present - set(ordered))


def _is_prediction(result) -> bool:
    return result.attrs.get("kind") == "prediction"


def result_to_xarray(result):
    """A ``Result`` as an ``xarray.Dataset`` (see the module docstring)."""
    xr = _need("xarray")
    layers = list(result.layers)
    k = result.config.k
    with_err = not _is_prediction(result)
    data_vars = {}
    for name in _names(result):
        first = next(result.layer(l)[name] for l in layers if name in result.layer(l))
        shape = first.mean.shape
        if len(shape) > len(INPUT_DIMS):
            continue
        mean = np.full((len(layers),) + shape, np.nan)
        err = np.full((len(layers),) + shape, np.nan)
        for i, l in enumerate(layers):
            if name in result.layer(l):
                est = result.layer(l)[name]
                mean[i], err[i] = est.mean, est.stderr
        dims = ("layer",) + INPUT_DIMS[:len(shape)]
        desc, units = describe(name, prediction=not with_err)
        data_vars[name] = (dims, mean, {"description": desc, "units": units})
        if with_err:
            data_vars[name + "_stderr"] = (dims, err, {
                "description": f"standard error (delete-one-bin jackknife) of {name}; 0 where exact",
                "units": units})
    data_vars["inputs"] = (("input_a", "input_component"), np.asarray(result.config.inputs),
                           {"description": "the inputs x_a, one row per input a"})
    coords = {"layer": ("layer", np.asarray(layers, dtype=np.int64), {"description": "layer l (1-based)"}),
              "width": ("layer", np.asarray([result.layer(l).width for l in layers], dtype=np.int64),
                        {"description": "n_l, the width of layer l"}),
              "fan_in": ("layer", np.asarray([result.layer(l).fan_in for l in layers], dtype=np.int64),
                         {"description": "n_{l-1}, the fan-in of layer l (V is normalised by it)"}),
              "stochastic": ("layer", np.asarray([int(result.layer(l).stochastic) for l in layers], dtype=np.int8),
                             {"description": "0 for layer 1 (deterministic, exact), 1 otherwise"})}
    for dim in INPUT_DIMS:
        coords[dim] = (dim, np.arange(1, k + 1), {"description": "input number (1-based, as in the labels)"})
    coords["input_component"] = ("input_component", np.arange(result.config.network.input_dim))
    used = {d for v in data_vars.values() for d in v[0]}
    coords = {c: v for c, v in coords.items() if v[0] in used}
    attrs = {key: _plain_attr(v) for key, v in result.attrs.items()}
    attrs.setdefault("networks", int(result.networks))
    if result.path:
        attrs["source"] = str(result.path)
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    if getattr(result, "training", None):
        tds = result.training.to_xarray(with_err=with_err)
        ds = ds.merge(tds, combine_attrs="override")
        ds.attrs.update(tds.attrs)
    return ds


def _training_dims(name: str, ndim: int) -> tuple:
    if ndim == 1:
        return ("step",)
    return ("step", "input_a", "input_b") if name.endswith("_covariance") else ("step", "input_a", "output_unit")


def training_to_xarray(training, descriptions: dict | None = None, with_err: bool | None = None):
    """A ``TrainingResult`` (``res.training``) as an ``xarray.Dataset`` with a ``step``
    dimension (see the module docstring). ``descriptions``: {name: (description, units)}
    (``TrainingResult.to_xarray`` passes ``training.accumulate.DATASETS``); ``with_err``: add
    the ``_stderr`` twins (default: unless every standard error is 0, as in a prediction)."""
    xr = _need("xarray")
    descriptions = descriptions or {}
    if with_err is None:
        with_err = any(np.any(est.stderr != 0) for est in training.values())
    data_vars = {}
    for name, est in training.items():
        mean = np.asarray(est.mean, dtype=float)
        dims = _training_dims(name, mean.ndim)
        desc, units = descriptions.get(name, (name, ""))
        data_vars[name] = (dims, mean, {"description": desc, "units": units, "group": "/training"})
        if with_err:
            data_vars[name + "_stderr"] = (dims, np.asarray(est.stderr, dtype=float), {
                "description": f"standard error (delete-one-bin jackknife) of {name}", "units": units,
                "group": "/training"})
    coords = {"step": ("step", np.asarray(training.steps, dtype=np.int64),
                       {"description": "the recorded gradient-descent step t"})}
    used = {d: n for v in data_vars.values() for d, n in zip(v[0], np.shape(v[1]))}
    for dim in ("input_a", "input_b"):
        if dim in used:
            coords[dim] = (dim, np.arange(1, used[dim] + 1), {"description": "input number (1-based, as in the labels)"})
    if "output_unit" in used:
        coords["output_unit"] = ("output_unit", np.arange(1, used["output_unit"] + 1),
                                 {"description": "output unit i (1-based)"})
    return xr.Dataset(data_vars, coords=coords,
                      attrs={"training_networks": int(training.networks), "training_diverged": int(training.diverged)})


def training_to_pandas(training, entries: str = "distinct", statistics=None):
    """A ``TrainingResult`` as a tidy ``pandas.DataFrame``: one row per recorded step,
    statistic and entry (see the module docstring)."""
    pd = _need("pandas")
    rows = []
    for name, est in training.items():
        if statistics and name not in statistics:
            continue
        mean, err = np.asarray(est.mean), np.asarray(est.stderr)
        dims = _training_dims(name, mean.ndim)[1:]
        shape = mean.shape[1:]
        if name.endswith("_covariance") and entries != "all":
            idxs = [(a, b) for a in range(shape[0]) for b in range(a, shape[0])]
        else:
            idxs = list(itertools.product(*(range(n) for n in shape)))
        for r, t in enumerate(np.asarray(training.steps).tolist()):
            for idx in idxs:
                row = {"step": t, "statistic": name,
                       "entry": f"{name}[{''.join(str(i + 1) for i in idx)}]" if idx else name}
                for d, i in zip(dims, idx):
                    row[d] = i + 1
                row["mean"] = float(mean[(r, *idx)])
                row["stderr"] = float(err[(r, *idx)])
                rows.append(row)
    columns = ["step", "statistic", "entry", "input_a", "input_b", "output_unit", "mean", "stderr"]
    df = pd.DataFrame(rows, columns=columns)
    for d in ("input_a", "input_b", "output_unit"):
        df[d] = df[d].astype("Int64")
    df.attrs.update({"networks": int(training.networks), "diverged": int(training.diverged)})
    return df


def result_to_pandas(result, entries: str = "distinct", statistics=None):
    """A ``Result`` as a tidy ``pandas.DataFrame``: one row per layer, statistic and entry."""
    pd = _need("pandas")
    rows = []
    for l in result.layers:
        le = result.layer(l)
        for name in _names(result):
            if name not in le or (statistics and name not in statistics):
                continue
            est = le[name]
            for idx in entry_indices(name, est.mean.shape, entries):
                row = {"layer": l, "width": le.width, "fan_in": le.fan_in, "statistic": name,
                       "entry": entry_label_of(name, idx)}
                for d, i in zip(INPUT_DIMS, idx):
                    row[d] = i + 1
                row["mean"] = float(est.mean[idx])
                row["stderr"] = float(est.stderr[idx])
                rows.append(row)
    columns = ["layer", "width", "fan_in", "statistic", "entry", *INPUT_DIMS, "mean", "stderr"]
    df = pd.DataFrame(rows, columns=columns)
    for d in INPUT_DIMS:
        df[d] = df[d].astype("Int64")
    df = df.drop(columns=[d for d in INPUT_DIMS if df[d].isna().all()])
    df.attrs.update({"source": str(result.path or ""), "networks": int(result.networks)})
    return df


def records_to_pandas(rows: np.ndarray, **attrs):
    """A numpy structured array (e.g. ``ComparisonTable.rows``) as a DataFrame with plain
    string columns."""
    pd = _need("pandas")
    df = pd.DataFrame({name: (rows[name].astype(str).astype(object) if rows.dtype[name].kind == "U"
                              else rows[name]) for name in rows.dtype.names})
    df.attrs.update(attrs)
    return df
