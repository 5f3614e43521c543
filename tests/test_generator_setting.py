"""``ensemble.generator``: the setting, the file attributes, and resumes that keep a file's
generator bitwise (mcsim.generators; the generators themselves: test_rng.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import mcsim
from mcsim.config import config_from_dict
from mcsim.errors import ConfigError, ResumeError
from mcsim.generators import DEFAULT_GENERATOR, GENERATORS, LEGACY_GENERATOR

REF = Path(__file__).resolve().parents[1] / "data" / "reference"


def raw(networks=512, generator=None, sampler="markov"):
    ens = {"networks": networks, "seed": 3, "block_size": 64, "jackknife_bins": 4, "sampler": sampler}
    if generator is not None:
        ens["generator"] = generator
    return {"network": {"input_dim": 2, "widths": [6, 5, 4, 1], "activation": "relu",
                        "C_W": 2.0, "C_b": 0.1},
            "inputs": {"values": [[1.0, -0.5]]}, "ensemble": ens,
            "output": {"statistics": ["metric", "vertex", "six_point"]}}


def datasets(path) -> dict:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) and name.split("/")[0] in ("layers", "accumulator")
                     else None)
    return out


def assert_bitwise_equal(a, b):
    x, y = datasets(a), datasets(b)
    assert x.keys() == y.keys()
    for name in x:
        np.testing.assert_array_equal(x[name], y[name], err_msg=name)


def attrs(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f.attrs[k] for k in ("generator", "generator_version")}


def test_setting_default_explicit_and_bad_value():
    cfg = config_from_dict(raw())
    assert cfg.ensemble.generator == DEFAULT_GENERATOR == "philox32" and cfg.ensemble.generator_auto
    assert config_from_dict(raw(generator="auto")).ensemble.generator_auto
    for name in GENERATORS:
        c = config_from_dict(raw(generator=name))
        assert c.ensemble.generator == name and not c.ensemble.generator_auto
        assert c.to_dict()["ensemble"]["generator"] == name
    for bad in ("mt19937", 3, ""):
        with pytest.raises(ConfigError, match=r"^ensemble\.generator: .*allowed: auto, philox53, philox32"):
            config_from_dict(raw(generator=bad))


@pytest.mark.parametrize("generator", [None, "philox53", "philox32"])
def test_every_file_records_its_generator(tmp_path, generator):
    out = tmp_path / "g.h5"
    mcsim.simulate(config_from_dict(raw(128, generator)), output=out, progress="off")
    name = generator or DEFAULT_GENERATOR
    assert attrs(out) == {"generator": name, "generator_version": GENERATORS[name]}
    assert mcsim.open_result(out).config.ensemble.generator == name


def test_generators_give_different_networks(tmp_path):
    a = mcsim.simulate(config_from_dict(raw(128, "philox53")), output=None, progress="off")
    b = mcsim.simulate(config_from_dict(raw(128, "philox32")), output=None, progress="off")
    assert not np.array_equal(a.layer(4)["metric"].mean, b.layer(4)["metric"].mean)


@pytest.mark.parametrize("sampler", ["markov", "dense"])
def test_philox53_file_resumed_without_a_generator_continues_it_bitwise(tmp_path, sampler):
    # started with the older generator; resumed and extended by a config that names none
    # (which would pick philox32 for a new file): equal to one uninterrupted philox53 run
    ref = tmp_path / "ref.h5"
    mcsim.simulate(config_from_dict(raw(1024, "philox53", sampler)), output=ref, progress="off")
    part = tmp_path / "part.h5"
    mcsim.simulate(config_from_dict(raw(384, "philox53", sampler)), output=part, progress="off")
    mcsim.simulate(config_from_dict(raw(704, None, sampler)), output=part, progress="off")
    mcsim.simulate(config_from_dict(raw(1024, None, sampler)), output=part, progress="off")
    assert attrs(part) == {"generator": "philox53", "generator_version": 1}
    assert_bitwise_equal(ref, part)


def test_explicit_other_generator_refuses_to_resume(tmp_path):
    out = tmp_path / "a.h5"
    mcsim.simulate(config_from_dict(raw(128, "philox53")), output=out, progress="off")
    before = out.read_bytes()
    with pytest.raises(ResumeError, match="ensemble.generator"):
        mcsim.simulate(config_from_dict(raw(256, "philox32")), output=out, progress="off")
    assert out.read_bytes() == before


def test_file_of_an_earlier_version_is_the_legacy_generator(tmp_path):
    # format-v1.h5 (mcsim 0.1.0) has no generator attribute: read as philox53, and extended
    # with it (the file then records it)
    with h5py.File(REF / "format-v1.h5", "r") as f:
        assert "generator" not in f.attrs
    assert mcsim.open_result(REF / "format-v1.h5").config.ensemble.generator == LEGACY_GENERATOR
    old = tmp_path / "old.h5"
    shutil.copy(REF / "format-v1.h5", old)
    cfg = mcsim.load_config(REF / "format-v1.toml")
    assert cfg.ensemble.generator_auto
    mcsim.simulate(cfg, output=old, progress="off")
    assert attrs(old) == {"generator": "philox53", "generator_version": 1}


def test_files_of_different_generators_do_not_merge(tmp_path):
    from mcsim.storage.merge import merge_files
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    mcsim.simulate(config_from_dict(raw(128, "philox53")), output=a, progress="off")
    other = raw(128, "philox32")
    other["ensemble"]["seed"] = 4
    mcsim.simulate(config_from_dict(other), output=b, progress="off")
    with pytest.raises(ResumeError, match="differ in ensemble.generator"):
        merge_files([a, b], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_info_names_the_generator(tmp_path):
    from tests.conftest import run_cli
    proc = run_cli("info", REF / "format-v1.h5")
    assert proc.returncode == 0, proc.stderr
    assert "generator=philox53" in proc.stdout
