"""The first-run experience: compiling is announced and kept out of every rate; `mcsim
compile`; `mcsim info` on predictions; every dataset of every file describes itself."""
from __future__ import annotations

import importlib.util
import logging
import subprocess
import time

import h5py
import numba
import numpy as np
import pytest

import mcsim
from mcsim.run import warmup
from mcsim.theory.full import predict_config
from mcsim.theory.store import write_prediction
from tests.conftest import ROOT, SMALL, run_cli, write_config


def test_compile_notice_fires_on_compilation_only(caplog):
    caplog.set_level(logging.INFO, logger="mcsim")

    @numba.njit
    def fresh(x):                     # a new function: Numba must compile it
        return x + 1

    notice = warmup._CompileNotice(notice_after=60.0)
    try:
        fresh(1)
    finally:
        notice.close()
    assert notice.noticed.is_set()
    assert "compiling kernels (first run only" in caplog.text
    caplog.clear()
    notice = warmup._CompileNotice(notice_after=60.0)
    try:
        fresh(2)                      # compiled already: no event, no line
    finally:
        notice.close()
    assert not notice.noticed.is_set() and caplog.text == ""


def test_warm_up_time_is_in_no_rate(small_config, monkeypatch):
    cfg = mcsim.load_config(small_config)
    warmup.warm_up(cfg, announce=False)            # the real kernels, compiled once here
    slow = 1.5
    original = warmup._exercise

    def slow_exercise(tiny):                       # stands for a long compilation
        time.sleep(slow)
        original(tiny)
    monkeypatch.setattr(warmup, "_exercise", slow_exercise)
    t0 = time.monotonic()
    res = mcsim.simulate(cfg, progress="off")
    wall = time.monotonic() - t0
    a = res.attrs
    assert a["session_seconds_compile"] >= slow
    assert a["runtime_seconds"] == pytest.approx(a["session_seconds"])
    assert wall - a["runtime_seconds"] >= slow                # the run time excludes it
    assert a["networks_per_second"] == pytest.approx(res.networks / a["runtime_seconds"], rel=1e-9)
    # the tiny warm-up ensemble changes nothing: the same numbers as without it
    monkeypatch.setattr(warmup, "_exercise", lambda tiny: None)
    plain = mcsim.simulate(cfg, progress="off")
    for l in res.layers:
        for name, est in res.layer(l).stats.items():
            np.testing.assert_array_equal(est.mean, plain.layer(l)[name].mean)


def test_tiny_config_keeps_what_selects_the_kernels(small_config):
    cfg = mcsim.load_config(small_config)
    tiny = warmup.tiny_config(cfg)
    assert tiny.network.widths == (2, 2, 2) and tiny.ensemble.block_size == 2
    assert (tiny.network.activation, tiny.ensemble.sampler, tiny.ensemble.weights, tiny.k,
            tiny.output.statistics, tiny.layers) == \
        (cfg.network.activation, cfg.ensemble.sampler, cfg.ensemble.weights, cfg.k,
         cfg.output.statistics, cfg.layers)


def test_cli_run_says_nothing_when_there_is_nothing_to_do(small_config, tmp_path):
    out = tmp_path / "r.h5"
    first = run_cli("run", small_config, "-o", out, "--progress", "log")
    assert first.returncode == 0, first.stderr
    assert "networks/s" in first.stderr
    again = run_cli("run", small_config, "-o", out, "--progress", "log")
    assert again.returncode == 0
    assert "nothing to do" in again.stderr
    assert "networks/s" not in again.stderr and "compiling" not in again.stderr


def test_mcsim_compile():
    proc = run_cli("compile", timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "kernels ready" in proc.stdout and "markov" in proc.stdout and "dense" in proc.stdout


def test_info_on_a_prediction(tmp_path):
    cfg = mcsim.load_config(write_config(tmp_path, SMALL))
    path = tmp_path / "pred.h5"
    write_prediction(path, predict_config(cfg), cfg)
    proc = run_cli("info", path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "kind        prediction" in out
    assert "networks" not in out and "sampler=" not in out and "seed=" not in out
    assert "metric_leading" in out and "G[12] (correction)" in out and "ntk[12]" in out


def _datasets(f):
    found = []
    f.visititems(lambda name, obj: found.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
    return found


def test_every_dataset_describes_itself(small_config, tmp_path):
    cfg = mcsim.load_config(small_config)
    meas = tmp_path / "m.h5"
    mcsim.simulate(cfg, output=meas, progress="off")
    pred = tmp_path / "p.h5"
    write_prediction(pred, predict_config(cfg), cfg)
    for path in (meas, pred):
        with h5py.File(path, "r") as f:
            for name, d in _datasets(f):
                assert d.attrs.get("description"), f"{path.name}:{name} has no description"
            for pkg in ("numpy", "numba", "h5py", "scipy", "mpi4py"):
                if pkg == "mpi4py" and importlib.util.find_spec("mpi4py") is None:
                    continue                    # optional: recorded where it is installed
                assert f.attrs[f"{pkg}_version"], pkg
            if (ROOT / ".git").exists():
                head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                      text=True).stdout.strip()
                assert f.attrs["mcsim_git_commit"] == head
                assert f.attrs["mcsim_git_dirty"] in ("true", "false")
    with h5py.File(meas, "r") as f:
        assert set(f["accumulator"]) == {"count", "mean", "m2", "m3"}
        assert "(B, S, M, M)" in f["accumulator/m2"].attrs["description"]
        assert "(k, n_0)" in f["inputs"].attrs["description"]
    with h5py.File(pred, "r") as f:
        assert "leading order" in f["layers/3/vertex"].attrs["description"]
        assert "K + G1/n" in f["layers/3/metric"].attrs["description"]
        assert "leading order" in f["layers/3/kurtosis"].attrs["description"]
