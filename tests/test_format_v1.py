"""Files written by mcsim 0.1.0 (HDF5 format version 1, no accumulator layout) stay readable
(`info`, `compare`, `open_result`), resumable and mergeable.

`data/reference/format-v1.h5` was written by mcsim 0.1.0 from `format-v1.toml` with
`--networks 512`. Its numbers were computed on an AVX2 node, so runs here are compared with
a relative tolerance (last bits of the Gram reductions may differ on other vector widths),
not bitwise.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np

import mcsim
from mcsim.storage.merge import merge_files
from tests.conftest import run_cli

REF = Path(__file__).resolve().parents[1] / "data" / "reference"


def test_v1_file_reads_and_prints():
    res = mcsim.open_result(REF / "format-v1.h5")
    assert res.networks == 512
    assert set(res.layer(2).names) >= {"metric", "vertex", "six_point", "kurtosis"}
    proc = run_cli("info", REF / "format-v1.h5")
    assert proc.returncode == 0, proc.stderr
    assert "V[(11)(12)]" in proc.stdout and "S6[" in proc.stdout
    proc = run_cli("compare", REF / "format-v1.h5")
    assert proc.returncode == 0, proc.stderr
    assert "kurt[1]" in proc.stdout


def test_v1_file_resumes_and_merges(tmp_path):
    old = tmp_path / "old.h5"
    shutil.copy(REF / "format-v1.h5", old)
    cfg = mcsim.load_config(REF / "format-v1.toml")
    extended = mcsim.simulate(cfg, output=old, progress="off")          # 512 -> 1024 networks
    # the file has no generator attribute: it was extended with philox53 (the generator of
    # mcsim 0.1.0), so the fresh run names it (a new run would use the default, philox32)
    fresh = mcsim.simulate(cfg.replace(generator="philox53"), output=tmp_path / "fresh.h5", progress="off")
    assert extended.networks == fresh.networks == 1024
    for l in (2, 3):
        for name in ("metric", "vertex", "six_point"):
            np.testing.assert_allclose(extended.layer(l)[name].mean, fresh.layer(l)[name].mean,
                                       rtol=1e-10, atol=1e-14)
    with h5py.File(old, "r") as f:                                     # rewritten as version 2
        assert f.attrs["format_version"] == 2
        assert list(f["accumulator"].attrs["quantities"]) == ["gram"]
        assert list(f["accumulator"].attrs["orders"]) == [3]
    other = mcsim.simulate(cfg.replace(seed=99, networks=512, generator="philox53"),
                           output=tmp_path / "s99.h5", progress="off")
    merged = merge_files([REF / "format-v1.h5", tmp_path / "s99.h5"], tmp_path / "m.h5")
    assert merged.networks == 512 + other.networks
