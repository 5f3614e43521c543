"""Bad inputs of every kind give one clear line and the documented exit status, never a
traceback, a wrong number or a lost file (issue: hardening).

Table-driven: damaged and hostile result files against every command that reads them
(info, compare, merge, resume), bad configurations against `mcsim run`, and the numerical
guards (overflow, undefined estimates, jackknife bins)."""
from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
import pytest

import mcsim
from mcsim.cli.app import main
from mcsim.errors import NumericalOverflow
from tests.conftest import write_config

BASE = """
[network]
input_dim = 2
widths = [5, 4, 3]
activation = "tanh"
C_W = 1.5
C_b = 0.1

[inputs]
values = [[1.0, 0.5], [-0.3, 0.8]]

[ensemble]
networks = 1024
seed = 3
block_size = 64
jackknife_bins = 8

[output]
statistics = ["metric", "vertex", "six_point"]
"""


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A valid small result file, its config, and a second file of another seed (merge)."""
    d = tmp_path_factory.mktemp("good")
    cfg_path = write_config(d, BASE)
    cfg = mcsim.load_config(cfg_path)
    mcsim.simulate(cfg, output=d / "a.h5", progress="off")
    mcsim.simulate(cfg.replace(seed=4), output=d / "b.h5", progress="off")
    return d, cfg_path


def _set_attr(path, name, value, where="/"):
    with h5py.File(path, "r+") as f:
        f[where].attrs[name] = value


def _replace(path, name, data, **kw):
    with h5py.File(path, "r+") as f:
        attrs = dict(f[name].attrs) if name in f else {}
        del f[name]
        d = f.create_dataset(name, data=data, **kw) if data is not None else f.create_dataset(name, **kw)
        d.attrs.update(attrs)


def _config_json(path, edit):
    with h5py.File(path, "r+") as f:
        raw = json.loads(f.attrs["config_json"])
        edit(raw)
        f.attrs["config_json"] = json.dumps(raw)


def _scribble(path):
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    mid = len(data) // 3
    data[mid: mid + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _nan_in_accumulator(path):
    with h5py.File(path, "r+") as f:
        m2 = f["accumulator/m2"]
        v = m2[()]
        v[0, 0, 0, 0] = np.nan
        m2[...] = v


#: name -> damage applied to a copy of a good result file
DAMAGE = {
    "format_version_99": lambda p: _set_attr(p, "format_version", 99),
    "format_version_array": lambda p: _set_attr(p, "format_version", np.array([1, 2])),
    "config_json_int": lambda p: _set_attr(p, "config_json", 5),
    "config_json_garbage": lambda p: _set_attr(p, "config_json", "{not json"),
    "config_json_list": lambda p: _set_attr(p, "config_json", "[1, 2]"),
    "config_names_input_file": lambda p: _config_json(p, lambda raw: raw.__setitem__(
        "inputs", {"file": "/no/such/secret.npy"})),
    "networks_string": lambda p: _set_attr(p, "networks", "many"),
    "runtime_string": lambda p: _set_attr(p, "runtime_seconds", "long"),
    "block_ranges_garbage": lambda p: _set_attr(p, "block_ranges", '[{"seed": "x"}]'),
    "blocks_negative": lambda p: _set_attr(p, "blocks", -5, "/accumulator"),
    "block_size_zero": lambda p: _set_attr(p, "block_size", 0, "/accumulator"),
    "lengths_negative": lambda p: _set_attr(p, "lengths", np.array([-3]), "/accumulator"),
    "mean_wrong_shape": lambda p: _replace(p, "accumulator/mean", np.zeros((3, 3))),
    "m2_strings": lambda p: _replace(p, "accumulator/m2", np.array([b"a", b"b"])),
    "count_negative": lambda p: _replace(p, "accumulator/count", -np.ones(8)),
    "nan_in_accumulator": _nan_in_accumulator,
    "exabyte_shape": lambda p: _replace(p, "accumulator/m3", None, shape=(2**40, 2**20), dtype="f8",
                                        chunks=(1, 1024)),
    "metric_strings": lambda p: _replace(p, "layers/2/metric", np.array([b"x"])),
    "metric_wrong_shape": lambda p: _replace(p, "layers/2/metric", np.zeros(7)),
    "layer_not_a_number": lambda p: h5py.File(p, "r+").__enter__().create_group("layers/abc"),
    "scribbled": _scribble,
    "truncated": _truncate,
    "not_hdf5": lambda p: p.write_bytes(b"hello world\n" * 100),
}

#: commands that refuse a file with a one-line error; the "merged" run never reads layers
COMMANDS = {
    "info": lambda f, other, cfg, tmp: ["info", f],
    "compare": lambda f, other, cfg, tmp: ["compare", f],
    "merge": lambda f, other, cfg, tmp: ["merge", f, other, "-o", tmp / "merged.h5"],
    "resume": lambda f, other, cfg, tmp: ["run", cfg, "-o", f, "--networks", "2048", "-q"],
}

#: damage a command may legitimately not notice (it does not read that part)
IGNORES = {
    ("merge", "metric_strings"), ("merge", "metric_wrong_shape"), ("merge", "layer_not_a_number"),
    ("resume", "metric_strings"), ("resume", "metric_wrong_shape"), ("resume", "layer_not_a_number"),
    ("info", "nan_in_accumulator"), ("compare", "nan_in_accumulator"),
    ("info", "blocks_negative"), ("compare", "blocks_negative"), ("info", "block_size_zero"),
    ("compare", "block_size_zero"), ("info", "lengths_negative"), ("compare", "lengths_negative"),
    ("info", "mean_wrong_shape"), ("compare", "mean_wrong_shape"), ("info", "m2_strings"),
    ("compare", "m2_strings"), ("info", "count_negative"), ("compare", "count_negative"),
    ("info", "exabyte_shape"), ("compare", "exabyte_shape"), ("compare", "runtime_string"),
    ("info", "block_ranges_garbage"), ("compare", "block_ranges_garbage"),
    ("resume", "block_ranges_garbage"),
    # bytes scribbled over parts merge / resume do not read (no checksums: see the README)
    ("merge", "scribbled"), ("resume", "scribbled"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_damaged_file_one_clear_line(good, tmp_path, capsys, command, damage):
    d, cfg_path = good
    f = tmp_path / "a.h5"
    shutil.copy(d / "a.h5", f)
    DAMAGE[damage](f)
    before = f.read_bytes()
    code = main([str(a) for a in COMMANDS[command](f, d / "b.h5", cfg_path, tmp_path)])
    err = capsys.readouterr().err
    if (command, damage) in IGNORES and code == 0:
        return
    expected = 2 if (command, damage) == ("resume", "not_hdf5") else 1   # not mcsim's at all: usage
    assert code == expected, (code, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(f) in err or "a.h5" in err
    assert f.read_bytes() == before                      # the damaged file is left as it was
    assert not (tmp_path / "merged.h5").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name or p.name.endswith(".lock")]
    if damage == "config_names_input_file":
        assert "secret" not in err or "stores its inputs as values" in err


def test_reading_never_opens_paths_from_the_file(good, tmp_path, capsys):
    """The message is the same whether the named input file exists or not."""
    d, _ = good
    messages = []
    for exists in (False, True):
        f = tmp_path / f"x{exists}.h5"
        shutil.copy(d / "a.h5", f)
        secret = tmp_path / "secret.npy"
        if exists:
            np.save(secret, np.ones((2, 2)))
        _config_json(f, lambda raw: raw.__setitem__("inputs", {"file": str(secret)}))
        assert main(["info", str(f)]) == 1
        messages.append(capsys.readouterr().err.replace(str(f), "FILE"))
    assert messages[0] == messages[1]


# -- numbers --------------------------------------------------------------------------------
OVERFLOW = """
[network]
input_dim = 2
width = 16
depth = 300
activation = "relu"
C_W = 50.0

[ensemble]
networks = 256
seed = 1
block_size = 64
jackknife_bins = 4
sampler = "markov"      # (auto would pick chi2, whose first network overflows a few layers later)

[output]
statistics = ["metric", "vertex"]
layers = [250, 300]
"""


def _first_overflow_layer_range(replicates=200, seed=12345):
    """Range of the first layer whose metric overflows, from an independent NumPy simulation
    of the same law (one input, ReLU, C_b = 0, width 16: given layer l, the n units of layer
    l+1 are iid N(0, C_W/n sum_j relu(z_j)^2); layer 1 has variance C_W |x|^2 / n_0).

    The scan reports the first network it meets with a non-finite value (network 0 of
    block 0) at that network's first overflowing layer, so the range is that of one network:
    the 0.05% to 99.95% quantiles over ``replicates`` x 256 NumPy networks, widened by one
    layer for where the scan meets the infinity (the gram of layer l or the sum feeding
    layer l + 1). A wrong layer index, or a scan that misses layers, falls outside."""
    rng = np.random.default_rng(seed)
    n, cw, depth = 16, 50.0, 300
    firsts = np.full((replicates, 256), depth + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        var = np.full((replicates, 256), cw * 2.0 / 2.0)
        for layer in range(1, depth + 1):
            z = np.sqrt(var)[..., None] * rng.standard_normal((replicates, 256, n))
            gram = np.mean(z * z, axis=-1)
            hit = ~np.isfinite(gram) & (firsts > depth)
            firsts[hit] = layer
            var = cw / n * np.sum(np.maximum(z, 0.0) ** 2, axis=-1)
    overflowed = firsts[firsts <= depth]     # ~0.4% die instead (all 16 units inactive once)
    low, high = np.quantile(overflowed, [0.0005, 0.9995])
    return int(low) - 1, int(high) + 1


def test_overflow_is_an_error_naming_the_first_layer(tmp_path, capsys):
    """ReLU with C_W = 50 grows the metric by 25x per layer: float64 overflows near layer
    l = 1 + 308 / log10(25) ~ 221 (G^(1) = 50). The recorded layers 250 and 300 would hold
    G = 0 with stderr 0 (the factor of an infinite metric is 0): never written."""
    cfg = write_config(tmp_path, OVERFLOW)
    out = tmp_path / "o.h5"
    assert main(["run", str(cfg), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    layer = int(err.split("at layer ")[1].split(":")[0])
    low, high = _first_overflow_layer_range()
    assert low <= layer <= high, (err, low, high)
    assert "C_W" in err and "Traceback" not in err
    assert not out.exists()                              # no 0-network file left behind
    assert not list(tmp_path.glob(".o.h5*"))


@pytest.mark.parametrize("body, key", [
    ("C_W = 1e308", "layer 2"),          # G^(1) = 1e308 is finite; G^(2) is not
    ("values = [[1e300, 1e300]]", "layer 1"),
])
def test_overflow_at_layer_one(tmp_path, capsys, body, key):
    text = OVERFLOW.replace("C_W = 50.0", body if body.startswith("C_W") else "C_W = 1.0")
    if body.startswith("values"):
        text += "\n[inputs]\n" + body + "\n"
    cfg = write_config(tmp_path, text.replace('layers = [250, 300]', 'layers = "all"'))
    assert main(["run", str(cfg), "-o", str(tmp_path / "o.h5"), "-q"]) == 2
    assert key in capsys.readouterr().err


def test_third_moment_overflow_is_an_error(tmp_path):
    cfg = mcsim.config_from_dict({
        "network": {"input_dim": 2, "width": 16, "depth": 40, "activation": "relu", "C_W": 1000.0},
        "ensemble": {"networks": 256, "seed": 1, "block_size": 64, "jackknife_bins": 4},
        "output": {"statistics": ["metric", "vertex", "six_point"]}})
    with pytest.raises(NumericalOverflow, match="third moments"):
        mcsim.simulate(cfg, progress="off")


def test_single_block_refused_and_few_blocks_warned(tmp_path, capsys):
    cfg = write_config(tmp_path, BASE.replace("block_size = 64", "block_size = 1024")
                       .replace("jackknife_bins = 8", "jackknife_bins = 64"))
    assert main(["run", str(cfg), "-o", str(tmp_path / "o.h5"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "at least 2 blocks" in err and "block_size" in err
    assert not (tmp_path / "o.h5").exists()
    cfg = write_config(tmp_path, BASE.replace("jackknife_bins = 8", "jackknife_bins = 64"))
    assert main(["run", str(cfg), "-o", str(tmp_path / "o.h5")]) == 0
    assert "16 blocks for 64 jackknife bins" in capsys.readouterr().err
    res = mcsim.open_result(tmp_path / "o.h5")
    assert np.all(np.isfinite(res.layer(3).metric.stderr))


def test_undefined_estimates_are_stored_nan_and_printed_with_reason(tmp_path, capsys):
    """ReLU with C_b = 0 on the zero input: every preactivation is exactly 0, so the
    kurtosis 3 Var / G^2 is 0/0: stored NaN, printed "undefined (why)", never dropped."""
    cfg = write_config(tmp_path, BASE.replace('activation = "tanh"', 'activation = "relu"')
                       .replace("C_b = 0.1", "C_b = 0.0")
                       .replace("values = [[1.0, 0.5], [-0.3, 0.8]]", "values = [[0.0, 0.0]]"))
    out = tmp_path / "z.h5"
    assert main(["run", str(cfg), "-o", str(out), "-q"]) == 0
    with h5py.File(out) as f:
        assert np.isnan(f["layers/3/kurtosis"][()]).all()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "kurtosis" in text and "undefined (" in text and "G_aa is exactly 0" in text


# -- configurations ---------------------------------------------------------------------------
BAD_CONFIGS = {
    "binary": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "UTF-8"),
    "latin1": ("[network]\ninput_dim = 2\nwidth = 4\ndepth = 2\n# caf\xe9\n".encode("latin-1"), "UTF-8"),
    "networks_1e30": (BASE.replace("networks = 1024", "networks = 1000000000000000000000000000000"), "ensemble.networks"),
    "networks_2_64": (BASE.replace("networks = 1024", f"networks = {2**64 - 1}"), "ensemble.networks"),
    "width_1e9": (BASE.replace("widths = [5, 4, 3]", "widths = [1000000000, 4, 3]"), "memory"),
    "block_size_1e9": (BASE.replace("block_size = 64", "block_size = 1000000000")
                       .replace("networks = 1024", "networks = 4000000000"), "memory"),
    "bins_1e9": (BASE.replace("jackknife_bins = 8", "jackknife_bins = 1000000000"), "jackknife_bins"),
    "depth_1e6": (BASE.replace("widths = [5, 4, 3]", "width = 5\ndepth = 1000000"), "memory"),
    "input_dim_1e12": (BASE.replace("input_dim = 2", "input_dim = 1000000000000")
                       .replace("values = [[1.0, 0.5], [-0.3, 0.8]]", 'generate = "gaussian"\ncount = 2'),
                       "input"),
    "k64_six_point": (BASE.replace("values = [[1.0, 0.5], [-0.3, 0.8]]", 'generate = "gaussian"\ncount = 64'),
                      "memory"),
    "bool_values": (BASE.replace("values = [[1.0, 0.5], [-0.3, 0.8]]", "values = [[true, false]]"), "inputs.values"),
    "string_values": (BASE.replace("values = [[1.0, 0.5], [-0.3, 0.8]]", 'values = [["1", "2"]]'), "inputs.values"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_one_line_exit_2(tmp_path, capsys, monkeypatch, name):
    monkeypatch.setenv("MCSIM_MAX_MEMORY", "4G")
    text, key = BAD_CONFIGS[name]
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "o.h5"
    code = main(["run", str(cfg), "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert key in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert list(tmp_path.iterdir()) == [cfg]          # nothing written, no temporary


def _inputs_file(tmp_path, kind):
    if kind == "strings":
        with h5py.File(tmp_path / "x.h5", "w") as f:
            f["x"] = np.array([b"a", b"b"])
        return 'file = "x.h5"\ndataset = "x"'
    if kind == "group":
        with h5py.File(tmp_path / "x.h5", "w") as f:
            f.create_group("x")
        return 'file = "x.h5"\ndataset = "x"'
    if kind == "complex":
        np.save(tmp_path / "x.npy", np.array([[1 + 2j, 3 + 0j]]))
        return 'file = "x.npy"'
    if kind == "bool_npy":
        np.save(tmp_path / "x.npy", np.array([[True, False]]))
        return 'file = "x.npy"'
    if kind == "text":
        (tmp_path / "x.txt").write_text("1 2\n3 4\n")
        return 'file = "x.txt"'
    raise ValueError(kind)


@pytest.mark.parametrize("kind, needle", [("strings", "numbers"), ("group", "not a dataset"),
                                          ("complex", "complex"), ("bool_npy", "bool"),
                                          ("text", "not an HDF5")])
def test_bad_inputs_file(tmp_path, capsys, kind, needle):
    spec = _inputs_file(tmp_path, kind)
    cfg = write_config(tmp_path, BASE.replace("values = [[1.0, 0.5], [-0.3, 0.8]]", spec))
    code = main(["run", str(cfg), "-o", str(tmp_path / "o.h5"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err, err


def test_output_is_a_directory(tmp_path, capsys):
    cfg = write_config(tmp_path, BASE)
    (tmp_path / "out").mkdir()
    assert main(["run", str(cfg), "-o", str(tmp_path / "out"), "-q"]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "out")]) == 1
    assert "is a directory" in capsys.readouterr().err


def test_foreign_file_at_output_is_usage_error(tmp_path, capsys):
    """The README: an existing output that is not a resumable mcsim run: exit 2, unchanged."""
    cfg = write_config(tmp_path, BASE)
    out = tmp_path / "o.h5"
    out.write_text("my thesis\n")
    assert main(["run", str(cfg), "-o", str(out), "-q"]) == 2
    assert out.read_text() == "my thesis\n"
    assert "--force" in capsys.readouterr().err


def test_symlink_output_writes_the_target(tmp_path):
    cfg = write_config(tmp_path, BASE)
    target = tmp_path / "store" / "real.h5"
    target.parent.mkdir()
    link = tmp_path / "link.h5"
    link.symlink_to(target)
    assert main(["run", str(cfg), "-o", str(link), "--networks", "512", "-q"]) == 0
    assert link.is_symlink() and target.exists()
    assert main(["run", str(cfg), "-o", str(link), "--networks", "1024", "-q"]) == 0   # resume via link
    assert link.is_symlink() and mcsim.open_result(target).networks == 1024


def test_merge_never_leaves_temporaries(good, tmp_path, capsys):
    d, _ = good
    bad = tmp_path / "bad.h5"
    shutil.copy(d / "a.h5", bad)
    _nan_in_accumulator(bad)
    assert main(["merge", str(d / "a.h5"), str(bad), "-o", str(tmp_path / "m.h5")]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5"]
    assert main(["merge", str(d / "a.h5"), str(d / "a.h5"), "-o", str(d / "a.h5"), "--force"]) == 2
    capsys.readouterr()


def test_max_memory_override(tmp_path, capsys):
    cfg = write_config(tmp_path, BASE)
    assert main(["run", str(cfg), "-o", str(tmp_path / "o.h5"), "-q", "--max-memory", "1M"]) == 2
    err = capsys.readouterr().err
    assert "more than the limit of 1 MiB" in err and "--max-memory" in err
    assert main(["run", str(cfg), "-o", str(tmp_path / "o.h5"), "-q", "--max-memory", "10G"]) == 0


def test_documented_exit_codes_are_the_table():
    """README and `mcsim --help` list the statuses the table produces."""
    from mcsim.cli import status
    readme = (os.path.dirname(os.path.dirname(__file__)) + "/README.md")
    text = open(readme, encoding="utf-8").read()
    for code in (status.EXIT_OK, status.EXIT_FAILURE, status.EXIT_USAGE, status.EXIT_INTERRUPTED):
        assert f"| {code} " in text or f"`{code}`" in text


def test_collect_uses_the_one_reader_and_locks_its_output(tmp_path, capsys):
    """format_version = 99, a non-numeric count or string data make a task "failed", never
    "complete"; a locked output is refused (exit 2)."""
    from mcsim.storage.lock import OutputLock
    from tests.test_sweep import PRODUCT, fake_result, make_sweep
    d = tmp_path / "sw"
    assert main(["sweep", str(make_sweep(tmp_path, PRODUCT)), "-d", str(d)]) == 0
    for i in range(6):
        fake_result(d / f"tasks/{i}/result.h5", complete=True)
    _set_attr(d / "tasks/1/result.h5", "format_version", 99)
    _set_attr(d / "tasks/2/result.h5", "networks", "many")
    _replace(d / "tasks/3/result.h5", "layers/2/metric", np.array([b"x"]))
    _replace(d / "tasks/4/result.h5", "layers/2/metric", None, shape=(2**40, 2**20), dtype="f8", chunks=(1, 8))
    out = tmp_path / "sweep.h5"
    assert main(["collect", str(d), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "2 complete, 4 failed" in captured.out, captured
    assert "Traceback" not in captured.err
    with h5py.File(out) as f:
        assert list(f.attrs["tasks_failed"]) == [1, 2, 3, 4]
    with OutputLock(out, "someone else"):
        assert main(["collect", str(d), "-o", str(out)]) == 2
    assert "in use by" in capsys.readouterr().err


def test_accumulator_with_nan_is_never_resumed_or_merged(good, tmp_path, capsys):
    d, cfg_path = good
    f = tmp_path / "a.h5"
    shutil.copy(d / "a.h5", f)
    _nan_in_accumulator(f)
    assert main(["run", str(cfg_path), "-o", str(f), "--networks", "2048", "-q"]) == 1
    assert "inf or NaN" in capsys.readouterr().err
    from mcsim.storage.hdf5 import check_finite_result
    from mcsim.storage.reader import read_run
    acc = read_run(d / "a.h5").accumulator
    acc.m3[0, 0, 0] = np.inf
    with pytest.raises(NumericalOverflow):
        check_finite_result(acc, {}, "x.h5")


def test_surprising_file_size_is_announced(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MCSIM_WARN_FILE_SIZE", "4K")
    cfg = write_config(tmp_path, BASE)
    assert main(["run", str(cfg), "-o", str(tmp_path / "o.h5")]) == 0
    err = capsys.readouterr().err
    assert "the output file" in err and "will be about" in err
    from mcsim.run.sizes import estimate_run
    size = estimate_run(mcsim.load_config(cfg)).file
    actual = (tmp_path / "o.h5").stat().st_size
    assert 0.3 < actual / size < 3, (actual, size)       # the estimate is the right size
