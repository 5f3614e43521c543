"""The issue's bad-input list for [training], through the command line: every case exits 2
with one message naming the key, and writes nothing (`mcsim run` and `mcsim theory -o`)."""
from __future__ import annotations

import pytest

from mcsim.cli import main
from mcsim.config import tomlw
from tests.test_training import BAD, raw_config

MORE = [
    ({"learning_rate": -0.1}, "training.learning_rate"),
    ({"learning_rate": "0.1"}, "training.learning_rate"),
    ({"record": []}, "training.record"),
    ({"record": [0, 0]}, "training.record"),
    ({"record": [0.5]}, "training.record"),
    ({"steps": -1}, "training.steps"),
    ({"targets": {"values": [[float("nan")], [0.3], [-0.6]]}}, "training.targets"),
    ({"targets": {"file": "missing.npy"}}, "training.targets"),
    ({"bogus": 1}, "training.bogus"),
]


@pytest.mark.parametrize("command", ["run", "theory"])
def test_every_bad_training_input_exits_2_naming_the_key(tmp_path, capsys, command):
    for i, (change, key) in enumerate(BAD + MORE):
        raw = raw_config(**change)
        cfg = tmp_path / f"c{i}.toml"
        cfg.write_text(tomlw.dumps(raw))
        capsys.readouterr()
        rc = main([command, str(cfg), "-o", str(tmp_path / f"o{i}.h5")]
                  + (["--progress", "off"] if command == "run" else []))
        err = capsys.readouterr().err
        assert rc == 2, (change, err)
        assert key in err and err.count("error:") == 1, (change, err)
    assert not list(tmp_path.glob("*.h5"))
