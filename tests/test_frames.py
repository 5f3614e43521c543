"""Results as xarray Datasets and pandas DataFrames; collected sweeps with `open_sweep`.

Every value is checked against the HDF5 file read with plain h5py."""
from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import mcsim
from mcsim.analysis.compare import compare
from mcsim.errors import ResultFileError
from mcsim.stats.statistics import STATISTICS
from mcsim.theory.full import predict_config
from mcsim.theory.store import write_prediction
from tests.test_compare import _cfg, _write_sweep

DIMS = ("input_a", "input_b", "input_c", "input_d", "input_e", "input_f")


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "m.h5"
    cfg = mcsim.config_from_dict({
        "network": {"input_dim": 3, "widths": [6, 5, 4], "activation": "relu", "C_W": 2.0, "C_b": 0.1},
        "inputs": {"values": [[1.0, 0.0, 0.5], [0.2, 0.9, -0.4]]},
        "ensemble": {"networks": 2048, "seed": 3, "block_size": 128, "jackknife_bins": 8},
        "output": {"statistics": ["metric", "vertex", "six_point"]}})
    mcsim.simulate(cfg, output=path, progress="off")
    return path


def test_to_xarray_has_named_dimensions_errors_and_metadata(measured):
    ds = mcsim.open_result(measured).to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert list(ds.layer.values) == [1, 2, 3] and list(ds.input_a.values) == [1, 2]
    assert list(ds.width.values) == [6, 5, 4] and list(ds.fan_in.values) == [3, 6, 5]
    with h5py.File(measured, "r") as f:
        for l in (1, 2, 3):
            g = f[f"layers/{l}"]
            for name in ("metric", "vertex", "six_point", "kurtosis"):
                var = ds[name].sel(layer=l)
                assert var.dims == DIMS[: g[name].ndim]
                np.testing.assert_array_equal(var.values, g[name][()])
                np.testing.assert_array_equal(ds[name + "_stderr"].sel(layer=l).values, g[name + "_stderr"][()])
                assert ds[name].attrs["description"] == g[name].attrs["description"]
        # 1-based input coordinates: V_(12)(12) is vertex[0, 1, 0, 1]
        v = ds.vertex.sel(layer=3, input_a=1, input_b=2, input_c=1, input_d=2).item()
        assert v == f["layers/3/vertex"][0, 1, 0, 1]
        np.testing.assert_array_equal(ds.inputs.values, f["inputs"][()])
        assert ds.attrs["config_toml"] == f.attrs["config_toml"]
        assert ds.attrs["networks"] == f.attrs["networks"] and ds.attrs["complete"] == 1
        assert ds.attrs["numba_version"] == f.attrs["numba_version"]


def test_to_pandas_is_tidy_with_labels(measured):
    res = mcsim.open_result(measured)
    df = res.to_pandas()
    assert list(df.columns) == ["layer", "width", "fan_in", "statistic", "entry", *DIMS, "mean", "stderr"]
    k = 2
    per_layer = sum(len(STATISTICS[n].distinct(k)) for n in ("metric", "vertex", "six_point", "kurtosis"))
    assert len(df) == 3 * per_layer
    with h5py.File(measured, "r") as f:
        for row in df.itertuples():
            idx = tuple(int(getattr(row, d)) - 1 for d in DIMS if not pd.isna(getattr(row, d)))
            assert row.mean == f[f"layers/{row.layer}/{row.statistic}"][idx]
            assert row.stderr == f[f"layers/{row.layer}/{row.statistic}_stderr"][idx]
            assert row.entry == STATISTICS[row.statistic].label(idx)
    full = res.to_pandas(entries="all", statistics=["vertex"])
    assert len(full) == 3 * k ** 4 and set(full.statistic) == {"vertex"}
    # the comparison table as a DataFrame
    table = compare(res)
    cdf = table.to_pandas()
    assert list(cdf.columns) == list(table.rows.dtype.names) and len(cdf) == len(table.rows)
    assert cdf.entry.tolist() == table.rows["entry"].tolist()
    np.testing.assert_array_equal(cdf.deviation.values, table.rows["deviation"])


def test_prediction_file_as_xarray(tmp_path):
    cfg = _cfg(8)
    path = tmp_path / "pred.h5"
    pred = predict_config(cfg)
    write_prediction(path, pred, cfg)
    ds = mcsim.open_result(path).to_xarray()
    assert not any(name.endswith("_stderr") for name in ds.data_vars)      # predictions have none
    assert {"metric", "metric_leading", "metric_correction", "vertex", "kurtosis", "ntk"} <= set(ds.data_vars)
    np.testing.assert_allclose(ds.metric_leading.sel(layer=4).values, pred.layer(4).kernel, rtol=0, atol=0)
    assert "leading order" in ds.vertex.attrs["description"]
    df = mcsim.open_result(path).to_pandas()
    assert "G[12] (leading)" in set(df.entry) and "ntk[12]" in set(df.entry)


def test_open_sweep_stacks_tasks(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "sweep.h5"
    _write_sweep(path, [_cfg(n) for n in (8, 16, 32)], rng)
    with pytest.raises(ResultFileError, match="open_sweep"):
        mcsim.open_result(path)
    sweep = mcsim.open_sweep(path)
    assert len(sweep) == 3 and [p["network.width"] for p in sweep.params] == [8, 16, 32]
    ds = sweep.to_xarray()
    assert ds.vertex.dims == ("task", "layer", *DIMS[:4])
    assert list(ds["network.width"].values) == [8, 16, 32]
    assert ds.fan_in.sel(task=2, layer=3).item() == 32
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(ds.vertex.sel(task=1, layer=4).values, f["tasks/1/layers/4/vertex"][()])
    df = sweep.to_pandas(statistics=["metric"])
    assert list(df.columns[:3]) == ["task", "status", "network.width"]
    assert sorted(set(df["network.width"])) == [8, 16, 32] and set(df.statistic) == {"metric"}
    with pytest.raises(ResultFileError, match="not a collected sweep"):
        mcsim.open_sweep(_single(tmp_path))


def _single(tmp_path):
    from tests.test_compare import _fake_estimates, _write_measurement
    cfg = _cfg(8)
    path = tmp_path / "single.h5"
    _write_measurement(path, cfg, _fake_estimates(cfg, np.random.default_rng(1)))
    return path
