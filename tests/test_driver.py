"""The driver: exact layer 1, reproducibility, HDF5 round trip, resume/extend, refusals."""
from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest

import mcsim
from mcsim.errors import ResultFileError, ResumeError
from mcsim.storage.reader import read_run
from mcsim.kernels.jit import set_threads
from tests.conftest import run_cli


def stats_equal(a, b):
    assert a.layers == b.layers
    for l in a.layers:
        for name in ("metric", "vertex", "kurtosis", "six_point"):
            x, y = getattr(a.layer(l), name), getattr(b.layer(l), name)
            if x is None:
                assert y is None
                continue
            np.testing.assert_array_equal(x.mean, y.mean, err_msg=f"{name} layer {l}")
            np.testing.assert_array_equal(x.stderr, y.stderr, err_msg=f"{name} stderr layer {l}")


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_layer_one_is_exact_and_shapes(small_config):
    cfg = mcsim.load_config(small_config)
    res = mcsim.simulate(cfg, progress="off")
    le = res.layer(1)
    x = np.array([[1.0, 0.0, 0.5], [0.2, 0.9, -0.4]])          # SMALL: C_b = 0.1, C_W = 2, n_0 = 3
    np.testing.assert_allclose(le.metric.mean, 0.1 + 2.0 * x @ x.T / 3, rtol=1e-14)
    assert not le.metric.stderr.any() and not le.vertex.mean.any() and not le.six_point.mean.any()
    k = cfg.k
    l3 = res.layer(3)
    assert l3.metric.mean.shape == (k, k) and l3.vertex.mean.shape == (k,) * 4
    assert l3.six_point.mean.shape == (k,) * 6 and l3.kurtosis.mean.shape == (k,)
    assert np.all(l3.metric.stderr > 0) and np.all(l3.vertex.stderr > 0)
    # the symmetries of the vertex: (a1a2) <-> (a3a4) and within each pair
    V = l3.vertex.mean
    np.testing.assert_array_equal(V, V.transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(V, V.transpose(1, 0, 2, 3))
    assert res.networks == 4096 and "relu" in repr(res.config.network.activation)


def test_same_seed_same_result_any_thread_count_and_seeds_differ(small_config):
    cfg = mcsim.load_config(small_config)
    try:
        set_threads(1)
        one = mcsim.simulate(cfg, progress="off")
        set_threads(2)
        two = mcsim.simulate(cfg, progress="off")
    finally:
        set_threads(1)
    stats_equal(one, two)
    other = mcsim.simulate(cfg.replace(seed=4), progress="off")
    assert not np.array_equal(one.layer(3).metric.mean, other.layer(3).metric.mean)


def test_block_moments_do_not_depend_on_the_blocks_per_sampler_call(small_config, monkeypatch):
    """The worker samples as many blocks per call as fit its cache-sized buffer (more with
    more threads): one block per call gives the same moment states, bitwise."""
    from mcsim.run import worker as worker_module
    from mcsim.stats.accumulator import accumulator_layout
    from mcsim.config import config_from_dict
    chi2 = config_from_dict({
        "network": {"input_dim": 3, "widths": [40] * 4, "activation": "relu", "C_W": 2.0},
        "inputs": {"generate": "fixed_norm", "count": 1, "seed": 1},
        "ensemble": {"networks": 64 * 16, "seed": 5, "block_size": 64},
        "output": {"statistics": ["metric", "vertex"]}})
    assert chi2.ensemble.sampler == "chi2"
    for cfg in (mcsim.load_config(small_config), chi2):
        w = worker_module.BlockWorker(cfg, accumulator_layout(cfg))
        assert w.chunk >= 8
        many = w.run(3, 8)
        monkeypatch.setattr(worker_module, "SAMPLE_BUFFER_BYTES_PER_THREAD", 1)
        assert w.chunk == 1
        one = w.run(3, 8)
        monkeypatch.undo()
        for a, b in zip(many, one):
            np.testing.assert_array_equal(a, b)


def test_hdf5_round_trip_and_plain_h5py(small_config, tmp_path):
    cfg = mcsim.load_config(small_config)
    out = tmp_path / "r.h5"
    res = mcsim.simulate(cfg, output=out, progress="off")
    back = mcsim.open_result(out)
    stats_equal(res, back)
    assert back.config.to_dict() == cfg.to_dict()
    with h5py.File(out, "r") as f:      # self-describing for plain h5py users
        assert f.attrs["format"] == "mcsim" and f.attrs["networks"] == 4096
        assert f.attrs["complete"] and f.attrs["seed"] == 3
        assert f["layers/2/vertex"].shape == (2, 2, 2, 2)
        assert f["layers/3/six_point_stderr"].shape == (2,) * 6
        assert f["layers/2/kurtosis"].shape == (2,)
        assert "numba_version" in f.attrs and "config_toml" in f.attrs
        assert f.attrs["runtime_seconds"] > 0 and f.attrs["networks_per_second"] > 0


def test_resume_and_extend_are_bitwise_equal_to_one_run(small_config, tmp_path):
    cfg = mcsim.load_config(small_config)
    direct = mcsim.simulate(cfg, output=tmp_path / "direct.h5", progress="off")
    out = tmp_path / "ext.h5"
    mcsim.simulate(cfg.replace(networks=1024), output=out, progress="off")
    assert read_run(out).accumulator.blocks == 8
    extended = mcsim.simulate(cfg, output=out, progress="off")
    stats_equal(direct, extended)
    before, mtime = digest(out), out.stat().st_mtime_ns
    again = mcsim.simulate(cfg, output=out, progress="off")        # complete: nothing to do
    stats_equal(direct, again)
    assert not again.written
    assert digest(out) == before and out.stat().st_mtime_ns == mtime   # nothing written
    with pytest.raises(ResumeError, match="more than"):
        mcsim.simulate(cfg.replace(networks=512), output=out, progress="off")
    assert digest(out) == before


def test_incompatible_resume_refused_and_file_unchanged(small_config, tmp_path):
    cfg = mcsim.load_config(small_config)
    out = tmp_path / "r.h5"
    mcsim.simulate(cfg.replace(networks=1024), output=out, progress="off")
    before = digest(out)
    with pytest.raises(ResumeError, match="ensemble.seed"):
        mcsim.simulate(cfg.replace(seed=99), output=out, progress="off")
    with pytest.raises(ResumeError, match="ensemble.sampler"):
        mcsim.simulate(cfg.replace(sampler="dense"), output=out, progress="off")
    assert digest(out) == before
    proc = run_cli("run", small_config, "-o", out, "--seed", "99")
    assert proc.returncode == 2 and "ensemble.seed" in proc.stderr
    assert digest(out) == before
    proc = run_cli("run", small_config, "-o", out, "--seed", "99", "--force", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert mcsim.open_result(out).config.ensemble.seed == 99


def test_damaged_and_foreign_files(tmp_path, small_config):
    cfg = mcsim.load_config(small_config)
    good = tmp_path / "good.h5"
    mcsim.simulate(cfg.replace(networks=512), output=good, progress="off")
    data = good.read_bytes()
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all" * 100)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    newer = tmp_path / "newer.h5"
    newer.write_bytes(data)
    with h5py.File(newer, "a") as f:
        f.attrs["format_version"] = 99
    for path, msg in ((trunc, "HDF5"), (garbage, "HDF5"), (foreign, "not an mcsim file"),
                      (newer, "newer mcsim")):
        with pytest.raises(ResultFileError, match=msg):
            mcsim.open_result(path)
        proc = run_cli("info", path)
        assert proc.returncode == 1 and msg in proc.stderr and "Traceback" not in proc.stderr
        before = digest(path)
        proc = run_cli("run", small_config, "-o", path, "--quiet")
        expected = 2 if path in (garbage, foreign) else 1       # not mcsim's: usage; damaged: 1
        assert proc.returncode == expected and msg in proc.stderr and "Traceback" not in proc.stderr
        assert digest(path) == before           # never clobbered without --force


def test_unwritable_location_fails_before_work(tmp_path, small_config):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        proc = run_cli("run", small_config, "-o", ro / "x.h5", "--quiet")
        import os
        if os.geteuid() == 0:                   # root ignores permissions: use a missing dir
            proc = run_cli("run", small_config, "-o", tmp_path / "missing" / "x.h5", "--quiet")
        assert proc.returncode == 1
        assert "cannot write" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        ro.chmod(0o700)


def test_full_disk_keeps_last_checkpoint(tmp_path, small_config, monkeypatch):
    """A write failing with ENOSPC mid-run raises a clear error; the last checkpoint survives."""
    import errno

    from mcsim.storage import hdf5 as hdf5io
    cfg = mcsim.load_config(small_config)
    out = tmp_path / "r.h5"
    mcsim.simulate(cfg.replace(networks=1024), output=out, progress="off")
    before = digest(out)
    real = hdf5io._h5py()

    class FullDisk:
        def File(self, name, mode="r", *a, **kw):
            if mode == "w":
                raise OSError(errno.ENOSPC, "No space left on device")
            return real.File(name, mode, *a, **kw)

    monkeypatch.setattr(hdf5io, "_h5py", lambda: FullDisk())
    with pytest.raises(ResultFileError, match="No space left"):
        mcsim.simulate(cfg, output=out, progress="off")
    monkeypatch.undo()
    assert digest(out) == before
    assert read_run(out).accumulator.blocks == 8
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
