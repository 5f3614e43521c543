"""Sweep expansion, task configs, manifest, job script, dry run, resubmission and collect,
without SLURM (a fake sbatch stands in where one is needed)."""
from __future__ import annotations

import json
import os
import stat
import textwrap
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest

from mcsim.cluster import sweep as sw
from mcsim.cli import main
from mcsim.config import load_config

BASE = """
[network]
input_dim = 2
widths = [8, 8, 1]
activation = "relu"
C_W = 2.0

[inputs]
values = [[1.0, 0.0], [0.6, 0.8]]

[ensemble]
networks = 1024
seed = 1
block_size = 128
jackknife_bins = 4

[output]
statistics = ["metric", "vertex"]
"""


def make_sweep(tmp_path: Path, body: str, base: str = BASE) -> Path:
    (tmp_path / "relu.toml").write_text(textwrap.dedent(base))
    path = tmp_path / "sweep.toml"
    path.write_text(textwrap.dedent(body))
    return path


PRODUCT = """
base = "relu.toml"
mode = "product"
[vary]
"network.width" = [4, 8, 16]
"ensemble.seed" = [1, 2]
"""


# ---------------------------------------------------------------------------------------
# expansion
def test_product_order_last_key_fastest(tmp_path):
    sweep = sw.load_sweep(make_sweep(tmp_path, PRODUCT))
    combos = sw.combinations(sweep)
    assert combos == [{"network.width": w, "ensemble.seed": s} for w in (4, 8, 16) for s in (1, 2)]


def test_zip_pairs_values(tmp_path):
    sweep = sw.load_sweep(make_sweep(tmp_path, """
        base = "relu.toml"
        mode = "zip"
        [vary]
        "network.width" = [4, 8]
        "network.C_W" = [1.5, 2.0]
        """))
    assert sw.combinations(sweep) == [{"network.width": 4, "network.C_W": 1.5},
                                      {"network.width": 8, "network.C_W": 2.0}]


@pytest.mark.parametrize("body, message", [
    ('base = "relu.toml"\nmode = "zip"\n[vary]\n"network.width" = [4, 8]\n"ensemble.seed" = [1]\n',
     "equally long"),
    ('base = "relu.toml"\nmode = "grid"\n[vary]\n"network.width" = [4]\n', "mode"),
    ('base = "relu.toml"\n[vary]\n"width" = [4]\n', "section.key"),
    ('base = "relu.toml"\n[vary]\n"network.width" = []\n', "non-empty"),
    ('base = "relu.toml"\n[vary]\n"output.path" = ["a.h5"]\n', "output.path"),
    ('mode = "product"\n[vary]\n"network.width" = [4]\n', "base"),
    ('base = "missing.toml"\n[vary]\n"network.width" = [4]\n', "missing.toml"),
    ('base = "relu.toml"\nvary = {}\n', "vary"),
    ('base = "relu.toml"\nwidths = [1]\n[vary]\n"network.width" = [4]\n', "unknown key"),
    ('base = "relu.toml"\n[vary]\n"network.width" = [4]\n[slurm]\narray = "0-3"\n', "slurm.array"),
])
def test_bad_sweep_files_are_refused(tmp_path, body, message):
    with pytest.raises(sw.SweepError, match=message):
        sw.load_sweep(make_sweep(tmp_path, body))


def test_width_rewrites_explicit_widths(tmp_path):
    sweep = sw.load_sweep(make_sweep(tmp_path, PRODUCT))
    tasks = sw.build_tasks(sweep, tmp_path / "out")
    net = tasks[2].config["network"]
    assert "widths" not in net and (net["width"], net["depth"], net["output_dim"]) == (8, 3, 1)
    # the run config loader sees the same architecture with the new width
    cfg_path = tmp_path / "t.toml"
    from mcsim.config.tomlw import dumps
    cfg_path.write_text(dumps(tasks[4].config))
    assert load_config(cfg_path).network.widths == (16, 16, 1)


def test_depth_and_uniform_widths(tmp_path):
    base = BASE.replace("widths = [8, 8, 1]", "widths = [8, 8, 8]")
    sweep = sw.load_sweep(make_sweep(tmp_path, """
        base = "relu.toml"
        [vary]
        "network.depth" = [2, 5]
        """, base))
    tasks = sw.build_tasks(sweep, tmp_path / "out")
    assert [t.config["network"]["depth"] for t in tasks] == [2, 5]
    assert "output_dim" not in tasks[0].config["network"]   # last layer followed the width


def test_nonuniform_widths_cannot_take_width(tmp_path):
    base = BASE.replace("widths = [8, 8, 1]", "widths = [8, 16, 1]")
    sweep = sw.load_sweep(make_sweep(tmp_path, PRODUCT, base))
    with pytest.raises(sw.SweepError, match="hidden layers differ"):
        sw.build_tasks(sweep, tmp_path / "out")


def test_widths_lists_activation_tables_and_per_layer_C_W(tmp_path):
    sweep = sw.load_sweep(make_sweep(tmp_path, """
        base = "relu.toml"
        mode = "zip"
        [vary]
        "network.widths" = [[4, 4, 1], [6, 6, 1]]
        "network.activation" = ["tanh", { name = "leaky_relu", slope = 0.1 }]
        "network.C_W" = [1.0, [2.0, 2.0, 1.0]]
        """))
    tasks = sw.build_tasks(sweep, tmp_path / "out")
    assert tasks[1].config["network"]["widths"] == [6, 6, 1]
    assert tasks[1].config["network"]["activation"] == {"name": "leaky_relu", "slope": 0.1}


def test_invalid_combination_names_the_task(tmp_path):
    sweep = sw.load_sweep(make_sweep(tmp_path, """
        base = "relu.toml"
        [vary]
        "network.C_W" = [2.0, -1.0]
        """))
    with pytest.raises(sw.SweepError, match=r"task 1 \(network.C_W = -1.0\): network.C_W"):
        sw.build_tasks(sweep, tmp_path / "out")


def test_relative_input_file_made_absolute(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1.0, 0.5], [0.0, 1.0]]))
    base = BASE.replace("values = [[1.0, 0.0], [0.6, 0.8]]", 'file = "x.npy"')
    sweep = sw.load_sweep(make_sweep(tmp_path, PRODUCT, base))
    tasks = sw.build_tasks(sweep, tmp_path / "out")
    assert tasks[0].config["inputs"]["file"] == str((tmp_path / "x.npy").resolve())


def test_varying_the_input_source_replaces_it(tmp_path):
    sweep = sw.load_sweep(make_sweep(tmp_path, """
        base = "relu.toml"
        [vary]
        "inputs.generate" = ["gaussian", "circle"]
        """))
    tasks = sw.build_tasks(sweep, tmp_path / "out")
    assert "values" not in tasks[0].config["inputs"]


# ---------------------------------------------------------------------------------------
# the sweep folder and the CLI
def test_sweep_writes_configs_manifest_and_job_script(tmp_path, capsys):
    path = make_sweep(tmp_path, PRODUCT + '[slurm]\ntime = "00:10:00"\npartition = "short"\n'
                      'ntasks = 2\nmax_parallel = 3\nexclusive = true\n')
    d = tmp_path / "sw"
    assert main(["sweep", str(path), "-d", str(d)]) == 0
    out = capsys.readouterr().out
    assert "submit with: sbatch --array=0-5%3" in out
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["keys"] == ["network.width", "ensemble.seed"] and manifest["mode"] == "product"
    assert len(manifest["tasks"]) == 6
    t5 = manifest["tasks"][5]
    assert t5 == {"index": 5, "params": {"network.width": 16, "ensemble.seed": 2},
                  "config": "tasks/5/config.toml", "output": "tasks/5/result.h5"}
    cfg = load_config(d / t5["config"])
    assert cfg.network.widths == (16, 16, 1) and cfg.ensemble.seed == 2
    assert Path(cfg.output.path) == (d / "tasks/5/result.h5").resolve()
    assert (d / "sweep.toml").read_text() == path.read_text()
    assert (d / "logs").is_dir()
    script = (d / "job.sbatch").read_text()
    assert os.access(d / "job.sbatch", os.X_OK)
    lines = script.splitlines()
    for expected in ("#SBATCH --time=00:10:00", "#SBATCH --partition=short", "#SBATCH --ntasks=2",
                     "#SBATCH --array=0-5%3", "#SBATCH --exclusive",
                     f"#SBATCH --output={d.resolve()}/logs/%A_%a.out", "#SBATCH --requeue",
                     "#SBATCH --signal=B:USR1@120"):
        assert expected in lines, expected
    assert "#SBATCH --time=01:00:00" not in lines and "##SBATCH --partition=compute" not in lines
    assert f"SWEEP_DIR=${{1:-{d.resolve()}}}" in lines
    # every #SBATCH line comes before the first command, or sbatch ignores it
    first_command = next(i for i, l in enumerate(lines) if l and not l.startswith("#"))
    assert max(i for i, l in enumerate(lines) if l.startswith("#SBATCH")) < first_command


def test_dry_run_writes_nothing(tmp_path, capsys):
    path = make_sweep(tmp_path, PRODUCT)
    d = tmp_path / "sw"
    assert main(["sweep", str(path), "-d", str(d), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not d.exists()
    assert "6 tasks" in out and "would run: sbatch --array=0-5" in out
    assert "network.width = 16, ensemble.seed = 2" in out


def test_default_folder_is_beside_the_sweep_file(tmp_path, capsys):
    path = make_sweep(tmp_path, PRODUCT)
    assert main(["sweep", str(path), "--dry-run"]) == 0
    assert f"in {tmp_path / 'sweep'}" in capsys.readouterr().out


def test_bad_sweep_exits_2(tmp_path, capsys):
    path = make_sweep(tmp_path, 'base = "relu.toml"\n[vary]\n"network.C_W" = [-1.0]\n')
    assert main(["sweep", str(path), "-d", str(tmp_path / "sw")]) == 2
    assert "network.C_W" in capsys.readouterr().err
    assert not (tmp_path / "sw").exists()


def fake_result(path: Path, complete: bool, networks: int = 1024) -> None:
    """A minimal measurement file as far as sweep/collect look at it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs.update(format="mcsim", format_version=1, kind="measurement", complete=complete,
                       networks=networks, networks_requested=1024, seed=1)
        g = f.create_group("layers/2")
        g.attrs["width"] = 8
        g.create_dataset("metric", data=np.eye(2) * networks)


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    """An `sbatch` on PATH that records its arguments and answers like --parsable."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "sbatch.args"
    for name, body in (("sbatch", f'echo "$@" >> {log}\necho "4242;cluster"\n'),
                       ("squeue", "exit 0\n")):
        script = bindir / name
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_submit_prints_job_id_last_and_skips_finished_tasks(tmp_path, capsys, fake_sbatch):
    path = make_sweep(tmp_path, PRODUCT)
    d = tmp_path / "sw"
    assert main(["sweep", str(path), "-d", str(d), "--submit", "--sbatch=--qos=debug"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "4242"
    args = fake_sbatch.read_text().split()
    assert args[:3] == ["--parsable", "--array=0-5", "--qos=debug"]
    assert args[3:] == [str((d / "job.sbatch").resolve()), str(d.resolve())]
    # tasks 0, 1, 2 finish, 3 stopped with a checkpoint: only 3-5 are submitted again
    for i in (0, 1, 2):
        fake_result(d / f"tasks/{i}/result.h5", complete=True)
    fake_result(d / "tasks/3/result.h5", complete=False, networks=256)
    assert main(["sweep", str(path), "-d", str(d), "--submit"]) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "partial" in out
    assert fake_sbatch.read_text().splitlines()[-1].split()[1] == "--array=3-5"
    assert [s["array"] for s in sw.read_manifest(d)["submissions"]] == ["0-5", "3-5"]
    for i in (3, 4, 5):
        fake_result(d / f"tasks/{i}/result.h5", complete=True)
    assert main(["sweep", str(path), "-d", str(d), "--submit"]) == 0
    assert "nothing to submit" in capsys.readouterr().out
    assert len(fake_sbatch.read_text().splitlines()) == 2


def test_submit_refused_while_the_sweep_is_queued(tmp_path, capsys, fake_sbatch):
    path = make_sweep(tmp_path, PRODUCT)
    d = tmp_path / "sw"
    assert main(["sweep", str(path), "-d", str(d), "--submit"]) == 0
    (tmp_path / "bin" / "squeue").write_text('#!/bin/sh\necho "4242_[0-5]"\n')
    assert main(["sweep", str(path), "-d", str(d), "--submit"]) == 2
    assert "still queued or running as job 4242" in capsys.readouterr().err


def test_changed_sweep_with_results_is_refused(tmp_path, capsys):
    path = make_sweep(tmp_path, PRODUCT)
    d = tmp_path / "sw"
    assert main(["sweep", str(path), "-d", str(d)]) == 0
    fake_result(d / "tasks/1/result.h5", complete=True)
    path.write_text(PRODUCT.replace("[4, 8, 16]", "[32, 8, 16]"))
    assert main(["sweep", str(path), "-d", str(d)]) == 2
    assert "task 1 has another config" in capsys.readouterr().err
    # the same sweep again is fine (configs rewritten identically, results kept)
    path.write_text(PRODUCT)
    assert main(["sweep", str(path), "-d", str(d)]) == 0
    assert (d / "tasks/1/result.h5").exists()


def test_array_spec():
    assert sw.array_spec([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert sw.array_spec([3]) == "3"
    assert sw.array_spec(range(10), 4) == "0-9%4"


def test_job_script_template_is_the_shipped_one():
    text = sw.read_template()
    assert "SWEEP_DIR=" in text and "#SBATCH --requeue" in text
    assert "scontrol requeue" in text and "SLURM_ARRAY_TASK_ID" in text


# ---------------------------------------------------------------------------------------
# collect
def test_collect_lists_partial_failed_and_missing(tmp_path, capsys):
    path = make_sweep(tmp_path, PRODUCT)
    d = tmp_path / "sw"
    assert main(["sweep", str(path), "-d", str(d)]) == 0
    fake_result(d / "tasks/0/result.h5", complete=True)
    fake_result(d / "tasks/1/result.h5", complete=True)
    fake_result(d / "tasks/2/result.h5", complete=False, networks=512)    # stopped, resumable
    (d / "tasks/3/exit_status").write_text("1\n")                         # failed, no file
    (d / "tasks/4/result.h5").write_bytes(b"not hdf5")                    # damaged
    # task 5 never ran
    out = tmp_path / "sweep.h5"
    assert main(["collect", str(d), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "2 complete, 1 partial, 2 failed, 1 missing" in captured.out
    assert "failed tasks: 3 4" in captured.err and "missing tasks: 5" in captured.err
    assert main(["collect", str(d), "-o", str(out), "--strict"]) == 1
    with h5py.File(out, "r") as f:
        assert f.attrs["kind"] == "sweep" and f.attrs["format"] == "mcsim"
        assert not f.attrs["complete"]
        assert json.loads(f.attrs["swept"]) == ["network.width", "ensemble.seed"]
        assert list(f.attrs["tasks_complete"]) == [0, 1]
        assert list(f.attrs["tasks_partial"]) == [2]
        assert list(f.attrs["tasks_failed"]) == [3, 4]
        assert list(f.attrs["tasks_missing"]) == [5]
        assert sorted(f["tasks"], key=int) == ["0", "1", "2"]
        g = f["tasks/2"]
        assert g.attrs["status"] == "partial" and g.attrs["network.width"] == 8
        assert g.attrs["ensemble.seed"] == 1 and g.attrs["networks"] == 512
        assert np.array_equal(g["layers/2/metric"][()], np.eye(2) * 512)
        table = f["manifest"][()]
        assert list(table["index"]) == list(range(6))
        assert list(table["network.width"]) == [4, 4, 8, 8, 16, 16]
        assert [s.decode() for s in table["status"]] == ["complete", "complete", "partial",
                                                         "failed", "failed", "missing"]
        assert f.attrs["sweep_toml"] == path.read_text()


def test_collect_of_a_non_sweep_folder(tmp_path, capsys):
    assert main(["collect", str(tmp_path), "-o", str(tmp_path / "x.h5")]) == 2
    assert "not a sweep folder" in capsys.readouterr().err


def test_collect_real_results(tmp_path, capsys):
    """Tasks run by `mcsim run` itself (no SLURM): data copied unchanged."""
    from tests.conftest import run_cli
    path = make_sweep(tmp_path, """
        base = "relu.toml"
        mode = "zip"
        [vary]
        "network.width" = [4, 6]
        "network.activation" = ["relu", { name = "leaky_relu", slope = 0.2 }]
        """)
    d = tmp_path / "sw"
    assert main(["sweep", str(path), "-d", str(d)]) == 0
    for i in (0, 1):
        proc = run_cli("run", d / f"tasks/{i}/config.toml", "-o", d / f"tasks/{i}/result.h5", "--quiet")
        assert proc.returncode == 0, proc.stderr
    out = tmp_path / "sweep.h5"
    assert main(["collect", str(d), "-o", str(out), "--strict"]) == 0
    with h5py.File(out, "r") as f, h5py.File(d / "tasks/1/result.h5", "r") as src:
        g = f["tasks/1"]
        assert json.loads(g.attrs["network.activation"]) == {"name": "leaky_relu", "slope": 0.2}
        assert g.attrs["complete"] and g.attrs["kind"] == "measurement"
        for l in src["layers"]:
            assert g[f"layers/{l}"].attrs["width"] == src[f"layers/{l}"].attrs["width"]
            for name in src[f"layers/{l}"]:
                assert np.array_equal(g[f"layers/{l}/{name}"][()], src[f"layers/{l}/{name}"][()])
        assert [json.loads(s) for s in f["manifest"]["network.activation"]] == \
            ["relu", {"name": "leaky_relu", "slope": 0.2}]
        assert tomllib.loads(f.attrs["base_toml"])["network"]["widths"] == [8, 8, 1]


def test_missing_template_writes_nothing(tmp_path, capsys):
    path = make_sweep(tmp_path, PRODUCT)
    d = tmp_path / "sw"
    assert main(["sweep", str(path), "-d", str(d), "--template", str(tmp_path / "nope.sbatch")]) == 2
    assert "nope.sbatch not found" in capsys.readouterr().err
    assert not d.exists()
