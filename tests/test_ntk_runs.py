"""NTK statistics through the whole pipeline: kernels bitwise independent of threads, of block
grouping and of the recorded layers; resume and merge bitwise; HDF5 datasets, the reader,
`mcsim info`; bad input (learning rates, the perceptron, resume with other settings)."""
from __future__ import annotations

import dataclasses

import h5py
import numba
import numpy as np
import pytest

import mcsim
from mcsim.config import config_from_dict
from mcsim.errors import ConfigError, ResumeError
from mcsim.storage.merge import merge_files
from tests.conftest import run_cli, write_config

NTK = ["ntk", "ntk_A", "ntk_B", "ntk_D", "ntk_F"]


def raw_config(sampler="markov", statistics=("metric", *NTK), **network):
    net = {"input_dim": 3, "widths": [5, 4, 3], "activation": "tanh", "C_W": [1.5, 1.2, 1.0],
           "C_b": [0.1, 0.0, 0.2], "lambda_b": [0.5, 1.0, 2.0], "lambda_W": 1.3}
    net.update(network)
    return {"network": net, "inputs": {"values": [[1.0, 0.5, -0.2], [0.3, -1.0, 0.4]]},
            "ensemble": {"networks": 2048, "seed": 7, "sampler": sampler, "block_size": 128,
                         "jackknife_bins": 8},
            "output": {"statistics": list(statistics)}}


def kernel_call(sampler, first_block, n_blocks, flags=None, cfg=None):
    from mcsim.kernels import ntk_dense, ntk_markov, rng
    from mcsim.samplers.markov import kernel_arguments, ntk_arguments
    cfg = cfg or config_from_dict(raw_config(sampler))
    k, L = cfg.k, cfg.network.depth
    out = np.full((n_blocks, 16, L - 1, 3 * k * (k + 1) // 2 + 2 * k * k), -1.0)
    lam_W, lam_b, default_flags = ntk_arguments(cfg)
    flags = default_flags if flags is None else np.asarray(flags, dtype=np.int64)
    args = kernel_arguments(cfg)
    key = rng.seed_key(5)
    if sampler == "markov":
        ntk_markov.sample_markov_ntk(key, np.uint64(first_block), n_blocks, 16, *args, lam_W,
                                     lam_b, flags, out)
    else:
        ntk_dense.sample_dense_ntk(key, np.uint64(first_block), n_blocks, 16, *args, np.int64(0),
                                   lam_W, lam_b, flags, out)
    return out


@pytest.mark.parametrize("sampler", ["markov", "dense"])
def test_kernels_bitwise_independent_of_threads_grouping_and_recorded_layers(sampler):
    results = {}
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            results[threads] = kernel_call(sampler, 4, 3)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(results[1], results[2])
    one_by_one = np.concatenate([kernel_call(sampler, 4 + i, 1) for i in range(3)])
    np.testing.assert_array_equal(results[1], one_by_one)
    assert np.isfinite(results[1]).all()
    # recording only layer 3: the same numbers for it, NaN for the NTK part of layer 2
    only3 = kernel_call(sampler, 4, 3, flags=[0, 1])
    np.testing.assert_array_equal(only3[:, :, 1], results[1][:, :, 1])
    assert np.isnan(only3[:, :, 0, 3:]).all()
    np.testing.assert_array_equal(only3[:, :, 0, :3], results[1][:, :, 0, :3])


@pytest.mark.parametrize("sampler", ["markov", "dense"])
def test_metric_part_equals_the_metric_only_kernel(sampler):
    """The NTK kernels sample the same networks as the metric-only kernels: the same Ghat."""
    from mcsim.kernels import dense, markov, rng
    from mcsim.samplers.markov import kernel_arguments
    cfg = config_from_dict(raw_config(sampler))
    ntk = kernel_call(sampler, 2, 2, cfg=cfg)
    out = np.empty(ntk.shape[:3] + (3,))
    key = rng.seed_key(5)
    if sampler == "markov":
        markov.sample_markov(key, np.uint64(2), 2, 16, *kernel_arguments(cfg), out)
    else:
        dense.sample_dense(key, np.uint64(2), 2, 16, *kernel_arguments(cfg), np.int64(0), out)
    np.testing.assert_allclose(ntk[..., :3], out, rtol=1e-13, atol=0)


def file_arrays(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) and name.split("/")[0] in ("layers", "accumulator")
                     else None)
    return out


def test_resume_and_merge_bitwise(tmp_path):
    cfg = config_from_dict(raw_config())
    whole = tmp_path / "whole.h5"
    mcsim.simulate(cfg, output=whole, progress="off")
    # resume: a run of half the networks, extended
    part = tmp_path / "part.h5"
    mcsim.simulate(cfg.replace(networks=1024), output=part, progress="off")
    mcsim.simulate(cfg, output=part, progress="off")
    a, b = file_arrays(whole), file_arrays(part)
    assert a.keys() == b.keys() and "layers/3/ntk_F_stderr" in a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    # merge: two block ranges of the same seed
    first = cfg.replace(networks=1024)
    second = dataclasses.replace(first, ensemble=dataclasses.replace(first.ensemble, first_block=8))
    mcsim.simulate(first, output=tmp_path / "a.h5", progress="off")
    mcsim.simulate(second, output=tmp_path / "b.h5", progress="off")
    merged = merge_files([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "ab.h5")
    ref = mcsim.open_result(whole)
    for l in ref.layers:
        for name in NTK:
            np.testing.assert_array_equal(merged.layer(l)[name].mean, ref.layer(l)[name].mean)
            np.testing.assert_array_equal(merged.layer(l)[name].stderr, ref.layer(l)[name].stderr)


def test_hdf5_reader_and_info(tmp_path):
    cfg = config_from_dict(raw_config("dense"))
    path = tmp_path / "r.h5"
    res = mcsim.simulate(cfg, output=path, progress="off")
    k = cfg.k
    with h5py.File(path, "r") as f:
        for l in (1, 2, 3):
            g = f[f"layers/{l}"]
            assert g["ntk"].shape == (k, k) and g["ntk_stderr"].shape == (k, k)
            for name in NTK[1:]:
                assert g[name].shape == (k,) * 4 and g[name + "_stderr"].shape == (k,) * 4
                assert g[name].attrs["description"] and g[name].attrs["units"]
        assert "lambda_W" in f.attrs["config_toml"]
    back = mcsim.open_result(path)
    for l in (2, 3):
        np.testing.assert_array_equal(back.layer(l).ntk.mean, res.layer(l).ntk.mean)
        np.testing.assert_array_equal(back.layer(l)["ntk_A"].stderr, res.layer(l)["ntk_A"].stderr)
    assert back.config.network.lambda_b == (0.5, 1.0, 2.0)
    # symmetries of the estimates: A under a<->b, c<->d, (ab)<->(cd); B, F under the unit swap
    A, B, F = (res.layer(3)[n].mean for n in ("ntk_A", "ntk_B", "ntk_F"))
    np.testing.assert_array_equal(A, A.transpose(1, 0, 2, 3))
    np.testing.assert_allclose(A, A.transpose(2, 3, 0, 1), rtol=1e-12)
    np.testing.assert_allclose(B, B.transpose(2, 3, 0, 1), rtol=1e-12)
    np.testing.assert_allclose(F, F.transpose(2, 3, 0, 1), rtol=1e-12)
    proc = run_cli("info", path)
    assert proc.returncode == 0, proc.stderr
    assert "ntk_A: A[a,b,c,d]" in proc.stdout and "A[(11)(12)]" in proc.stdout
    assert "ntk[12]" in proc.stdout and "F[(11)(12)]" in proc.stdout


@pytest.mark.parametrize("key,value,match", [
    ("lambda_b", -0.5, "network.lambda_b: must be >= 0"),
    ("lambda_W", float("nan"), "network.lambda_W: must be a finite number"),
    ("lambda_W", float("inf"), "network.lambda_W: must be a finite number"),
    ("lambda_W", [1.0, 2.0], "network.lambda_W: needs one value per layer"),
    ("lambda_b", "fast", "network.lambda_b: must be a finite number"),
])
def test_bad_learning_rates(key, value, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(raw_config(**{key: value}))


def test_perceptron_refused_with_ntk_only():
    with pytest.raises(ConfigError, match="output.statistics: 'ntk_B' needs the derivative.*perceptron"):
        config_from_dict(raw_config(statistics=["metric", "ntk_B"], activation="perceptron"))
    config_from_dict(raw_config(statistics=["metric", "vertex"], activation="perceptron"))
    config_from_dict(raw_config(statistics=["ntk"], activation="relu"))      # kinked, continuous


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path):
    for name, body in (("neg", 'lambda_W = [1.0, -2.0, 1.0]\nactivation = "tanh"'),
                       ("inf", 'lambda_b = inf\nactivation = "tanh"'),
                       ("perc", 'activation = "perceptron"')):
        cfg = write_config(tmp_path, f"""
            [network]
            input_dim = 2
            widths = [3, 3, 2]
            {body}
            [inputs]
            values = [[1.0, 0.5]]
            [ensemble]
            networks = 64
            block_size = 32
            [output]
            statistics = ["metric", "ntk"]
            """.replace("{body}", body), name=f"{name}.toml")
        out = tmp_path / f"{name}.h5"
        proc = run_cli("run", cfg, "-o", out, "-q")
        assert proc.returncode == 2, (name, proc.stderr)
        key = {"neg": "network.lambda_W", "inf": "network.lambda_b", "perc": "output.statistics"}[name]
        assert key in proc.stderr, (name, proc.stderr)
        assert not out.exists() and not list(tmp_path.glob(f".{name}.h5*"))


def test_resume_refuses_other_ntk_settings(tmp_path):
    metric_only = tmp_path / "m.h5"
    cfg_m = config_from_dict(raw_config(statistics=["metric", "vertex"])).replace(networks=256)
    mcsim.simulate(cfg_m, output=metric_only, progress="off")
    # the NTK asked of a file without it
    with pytest.raises(ResumeError, match="output.statistics"):
        mcsim.simulate(config_from_dict(raw_config()).replace(networks=256), output=metric_only,
                       progress="off")
    # learning rates do not change a metric-only run: resuming with others is fine
    other = config_from_dict(raw_config(statistics=["metric", "vertex"], lambda_W=3.0))
    mcsim.simulate(other.replace(networks=256), output=metric_only, progress="off")
    # ... but they change the NTK statistics
    ntk = tmp_path / "n.h5"
    mcsim.simulate(config_from_dict(raw_config()).replace(networks=256), output=ntk, progress="off")
    with pytest.raises(ResumeError, match="network.lambda_W"):
        mcsim.simulate(config_from_dict(raw_config(lambda_W=2.0)).replace(networks=512), output=ntk,
                       progress="off")
    # configs without learning rates mean 1.0 each (old files and configs read unchanged)
    raw = raw_config(statistics=["metric", "ntk"])
    del raw["network"]["lambda_b"], raw["network"]["lambda_W"]
    plain = config_from_dict(raw)
    assert plain.network.lambda_b == plain.network.lambda_W == (1.0, 1.0, 1.0)
    explicit = config_from_dict(raw_config(statistics=["metric", "ntk"], lambda_b=1.0, lambda_W=1.0))
    assert plain.fingerprint() == explicit.fingerprint()


@pytest.mark.parametrize("sampler", ["markov", "dense"])
def test_repeated_inputs_give_equal_entries(sampler):
    """Two identical inputs: every NTK entry is the same for (1,1), (1,2), (2,2) (the
    semidefinite factorisations copy rows), and finite."""
    raw = raw_config(sampler, activation="relu")
    raw["inputs"]["values"] = [[1.0, 0.5, -0.2], [1.0, 0.5, -0.2]]
    res = mcsim.simulate(config_from_dict(raw).replace(networks=512), progress="off")
    for l in res.layers:
        for name in NTK:
            x = res.layer(l)[name].mean
            assert np.isfinite(x).all()
            np.testing.assert_allclose(x, np.full_like(x, x.flat[0]), rtol=1e-12, atol=1e-14)
