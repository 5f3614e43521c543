"""Configuration: every bad value gets one clear error naming the key; good ones resolve."""
from __future__ import annotations

import numpy as np
import pytest

from mcsim.config import ConfigError, config_from_dict, load_config
from tests.conftest import run_cli, write_config


def base(**over):
    cfg = {
        "network": {"input_dim": 2, "widths": [4, 4, 1], "activation": "relu", "C_W": 2.0, "C_b": 0.0},
        "inputs": {"values": [[1.0, 0.0], [0.0, 1.0]]},
        "ensemble": {"networks": 100, "seed": 1},
        "output": {"path": "x.h5"},
    }
    for dotted, value in over.items():
        section, key = dotted.split("__")
        if value is DELETE:
            cfg[section].pop(key, None)
        else:
            cfg[section][key] = value
    return cfg


DELETE = object()


def test_example_config_loads():
    cfg = load_config("data/examples/relu-critical.toml")
    assert cfg.network.widths == (64, 64, 64, 1)
    assert cfg.network.C_W == (2.0,) * 4 and cfg.k == 2
    assert cfg.ensemble.sampler == "markov" and cfg.ensemble.networks == 1_000_000
    assert cfg.layers == (1, 2, 3, 4)


def test_width_depth_form_and_per_layer_lists():
    cfg = config_from_dict(base(network__widths=DELETE, network__width=8, network__depth=3,
                                network__output_dim=2, network__C_W=[1.0, 2.0, 3.0]))
    assert cfg.network.widths == (8, 8, 2)
    assert cfg.network.C_W == (1.0, 2.0, 3.0)
    assert cfg.network.fan_in(1) == 2 and cfg.network.fan_in(3) == 8


def test_round_trip_through_toml_text(tmp_path):
    cfg = config_from_dict(base(network__activation={"name": "leaky_relu", "slope": 0.2}))
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    again = load_config(path)
    assert again.to_dict() == cfg.to_dict()
    assert again.fingerprint() == cfg.fingerprint()


@pytest.mark.parametrize("over, key", [
    (dict(network__widths=[4, 0, 1]), "network.widths[1]"),
    (dict(network__widths=[]), "network.widths"),
    (dict(network__activation="nope"), "network.activation"),
    (dict(network__C_W=-1.0), "network.C_W"),
    (dict(network__C_W=0.0), "network.C_W"),
    (dict(network__C_b=-0.5), "network.C_b"),
    (dict(network__C_W=[1.0, 2.0]), "network.C_W"),
    (dict(network__C_W=float("nan")), "network.C_W"),
    (dict(network__input_dim=0), "network.input_dim"),
    (dict(network__bogus=1), "network.bogus"),
    (dict(inputs__values=[[1.0, float("nan")]]), "inputs"),
    (dict(inputs__values=[[1.0, 2.0, 3.0]]), "inputs"),
    (dict(inputs__values=[[1.0], [1.0, 2.0]]), "inputs.values"),
    (dict(inputs__generate="weird"), "inputs"),
    (dict(ensemble__sampler="gibbs"), "ensemble.sampler"),
    (dict(ensemble__weights="uniform", ensemble__sampler="markov"), "ensemble.weights"),
    (dict(ensemble__weights="cauchy", ensemble__sampler="dense"), "ensemble.weights"),
    (dict(ensemble__networks=0), "ensemble.networks"),
    (dict(ensemble__networks=1.5), "ensemble.networks"),
    (dict(ensemble__seed=-3), "ensemble.seed"),
    (dict(ensemble__block_size=0), "ensemble.block_size"),
    (dict(ensemble__jackknife_bins=1), "ensemble.jackknife_bins"),
    (dict(output__statistics=["metric", "eight_point"]), "output.statistics"),
    (dict(output__layers=[7]), "output.layers"),
    (dict(output__checkpoint_interval=0), "output.checkpoint_interval"),
])
def test_bad_values_name_the_key(over, key):
    with pytest.raises(ConfigError) as err:
        config_from_dict(base(**over))
    assert key in str(err.value)


def test_unknown_section_and_both_width_forms():
    bad = base()
    bad["network_typo"] = {}
    with pytest.raises(ConfigError, match="network_typo"):
        config_from_dict(bad)
    with pytest.raises(ConfigError, match="not both"):
        config_from_dict(base(network__width=4, network__depth=2))


def test_inputs_generated_and_from_files(tmp_path):
    for kind in ("gaussian", "fixed_norm", "circle"):
        cfg = config_from_dict(base(inputs__values=DELETE, inputs__generate=kind,
                                    inputs__count=5, inputs__seed=7))
        assert cfg.inputs.shape == (5, 2) and np.all(np.isfinite(cfg.inputs))
        if kind != "gaussian":
            np.testing.assert_allclose(np.linalg.norm(cfg.inputs, axis=1), np.sqrt(2))
    x = np.arange(6.0).reshape(3, 2)
    np.save(tmp_path / "x.npy", x)
    cfg = config_from_dict(base(inputs__values=DELETE, inputs__file="x.npy"), base_dir=tmp_path)
    np.testing.assert_array_equal(cfg.inputs, x)
    import h5py
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["data/x"] = x
    cfg = config_from_dict(base(inputs__values=DELETE, inputs__file="x.h5", inputs__dataset="data/x"),
                           base_dir=tmp_path)
    np.testing.assert_array_equal(cfg.inputs, x)
    with pytest.raises(ConfigError, match="inputs.file"):
        config_from_dict(base(inputs__values=DELETE, inputs__file="missing.npy"), base_dir=tmp_path)


def test_cli_bad_config_exits_2_and_writes_nothing(tmp_path):
    path = write_config(tmp_path, """
        [network]
        input_dim = 2
        widths = [4, 0]
        [ensemble]
        networks = 10
    """)
    out = tmp_path / "out.h5"
    proc = run_cli("run", path, "-o", out)
    assert proc.returncode == 2
    assert "network.widths[1]" in proc.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [path]


def test_cli_missing_output_path(tmp_path):
    path = write_config(tmp_path, """
        [network]
        input_dim = 2
        widths = [4, 1]
    """)
    proc = run_cli("run", path)
    assert proc.returncode == 2 and "output.path" in proc.stderr
