"""Running to a target error: `[ensemble] target`, the driver's stop, resume, `mcsim plan`.

The stopping point is checked against the stored estimates themselves (read with h5py, not
through the target code), and a stopped run against a plain run of the same number of
networks (bitwise)."""
from __future__ import annotations

import hashlib
import math

import h5py
import numpy as np
import pytest

import mcsim
from mcsim.config import ConfigError, config_from_dict
from mcsim.config.target import parse_target_text
from mcsim.run.plan import plan
from mcsim.run.target import evaluate_target
from tests.conftest import run_cli, write_config

BASE = {
    "network": {"input_dim": 3, "widths": [6, 5, 4], "activation": "relu", "C_W": 2.0, "C_b": 0.1},
    "inputs": {"values": [[1.0, 0.0, 0.5], [0.2, 0.9, -0.4]]},
    "ensemble": {"networks": 4_000_000, "seed": 3, "block_size": 128, "jackknife_bins": 16},
    "output": {"statistics": ["metric", "vertex"], "checkpoint_interval": 0.05},
}
TARGET = {"statistic": "vertex", "layer": 3, "relative_stderr": 0.03}


def cfg_with(target=TARGET, **ensemble):
    raw = {k: dict(v) for k, v in BASE.items()}
    raw["ensemble"].update(ensemble)
    if target is not None:
        raw["ensemble"]["target"] = dict(target)
    return config_from_dict(raw)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def worst_relative_error(path, layer, entries):
    """max over entries of stderr / |mean| of the stored vertex (independent of mcsim.run.target)."""
    with h5py.File(path, "r") as f:
        v, e = f[f"layers/{layer}/vertex"][()], f[f"layers/{layer}/vertex_stderr"][()]
    return max(e[i] / abs(v[i]) for i in entries)


# -- configuration -------------------------------------------------------------------------
def test_target_config_is_validated_and_round_trips():
    cfg = cfg_with()
    t = cfg.ensemble.target
    assert (t.statistic, t.layer, t.relative_stderr, t.stderr, t.entry) == ("vertex", 3, 0.03, None, None)
    again = config_from_dict(cfg.to_dict())
    assert again.ensemble.target == t
    assert "target = { statistic = \"vertex\"" in cfg.to_toml()
    # the target is not part of the ensemble's identity (resume with another target is fine)
    assert cfg.fingerprint() == cfg_with(target=None).fingerprint()
    # layer defaults to the last recorded layer
    assert cfg_with({"statistic": "metric", "stderr": 1e-3}).ensemble.target.layer == 3
    bad = [({"statistic": "six_point", "layer": 3, "relative_stderr": 0.1}, "not computed"),
           ({"statistic": "nope", "layer": 3, "relative_stderr": 0.1}, "not a statistic"),
           ({"statistic": "vertex", "layer": 1, "relative_stderr": 0.1}, "layer 1 is exact"),
           ({"statistic": "vertex", "layer": 3}, "exactly one"),
           ({"statistic": "vertex", "layer": 3, "stderr": 1, "relative_stderr": 1}, "exactly one"),
           ({"statistic": "vertex", "layer": 3, "relative_stderr": -0.1}, "positive"),
           ({"statistic": "vertex", "layer": 3, "relative_stderr": 0.1, "entry": "V[(13)(13)]"},
            "not an entry"),
           ({"statistic": "vertex", "layer": 3, "relative_stderr": 0.1, "when": 1}, "unknown key")]
    for target, message in bad:
        with pytest.raises(ConfigError, match=message):
            cfg_with(target)
    assert parse_target_text("statistic=vertex,layer=10,relative_stderr=0.01") == \
        {"statistic": "vertex", "layer": 10, "relative_stderr": 0.01}
    assert parse_target_text('{ statistic = "metric", stderr = 1e-4, entry = "G[12]" }') == \
        {"statistic": "metric", "stderr": 1e-4, "entry": "G[12]"}
    with pytest.raises(ConfigError):
        parse_target_text("vertex")


# -- the driver ------------------------------------------------------------------------------
def test_run_stops_at_its_target_and_matches_a_fixed_run(tmp_path):
    cfg = cfg_with()
    out = tmp_path / "t.h5"
    res = mcsim.simulate(cfg, output=out, progress="off")
    cap = cfg.ensemble.blocks * cfg.ensemble.block_size
    assert res.complete and res.networks < cap
    assert res.networks % cfg.ensemble.block_size == 0
    diagonal = [(0, 0, 0, 0), (1, 1, 1, 1)]
    achieved = worst_relative_error(out, 3, diagonal)
    assert achieved <= 0.03
    assert res.attrs["target_reached"] and res.attrs["target_achieved"] == pytest.approx(achieved)
    assert res.attrs["networks_requested"] == cap
    # the same estimates as a plain run of that many networks (stopping changes nothing else)
    plain = tmp_path / "plain.h5"
    mcsim.simulate(cfg_with(target=None, networks=res.networks), output=plain, progress="off")
    with h5py.File(out, "r") as a, h5py.File(plain, "r") as b:
        for l in ("2", "3"):
            for name in a[f"layers/{l}"]:
                assert np.array_equal(a[f"layers/{l}/{name}"][()], b[f"layers/{l}/{name}"][()])
    # running again: complete, nothing sampled or written
    before, mtime = digest(out), out.stat().st_mtime_ns
    again = mcsim.simulate(cfg, output=out, progress="off")
    assert not again.written and digest(out) == before and out.stat().st_mtime_ns == mtime
    # a tighter target extends the same file
    tighter = cfg_with({**TARGET, "relative_stderr": 0.015})
    more = mcsim.simulate(tighter, output=out, progress="off")
    assert more.networks > res.networks and more.attrs["target_reached"]
    assert worst_relative_error(out, 3, diagonal) <= 0.015


def test_cap_before_target_and_absolute_target_on_one_entry(tmp_path):
    # the cap comes first: complete, target not reached, all networks done
    cfg = cfg_with({**TARGET, "relative_stderr": 1e-4}, networks=4096)
    res = mcsim.simulate(cfg, progress="off")
    assert res.complete and res.networks == 4096 and not res.attrs["target_reached"]
    # an absolute target on one off-diagonal entry, in memory (no file, no checkpoints)
    target = {"statistic": "metric", "layer": 2, "stderr": 2e-3, "entry": "G[12]"}
    res = mcsim.simulate(cfg_with(target), progress="off")
    assert res.networks < 4_000_000 and res.attrs["target_entry"] == "G[12]"
    assert res.layer(2).metric.stderr[0, 1] <= 2e-3


def test_evaluate_target_needs_every_bin_and_picks_the_worst_entry():
    cfg = cfg_with(networks=128 * 8)          # 8 blocks < 16 bins
    from mcsim.run.driver import BlockWorker
    from mcsim.stats.accumulator import accumulator_layout, new_accumulator
    worker, acc = BlockWorker(cfg, accumulator_layout(cfg)), new_accumulator(cfg)
    acc.add_blocks(0, *worker.run(0, 8))
    status = evaluate_target(cfg, acc)
    assert not status.reached and math.isinf(status.achieved)
    acc.add_blocks(8, *worker.run(8, 24))
    status = evaluate_target(cfg, acc)
    res = mcsim.simulate(cfg_with(target=None, networks=128 * 32), progress="off")
    v = res.layer(3).vertex
    ratios = {lab: v.stderr[i] / abs(v.mean[i]) for lab, i in
              (("V[(11)(11)]", (0, 0, 0, 0)), ("V[(22)(22)]", (1, 1, 1, 1)))}
    worst = max(ratios, key=ratios.get)
    assert status.entry == worst and status.achieved == pytest.approx(ratios[worst], rel=1e-12)


# -- mcsim plan -------------------------------------------------------------------------------
def test_plan_predicts_the_networks_a_target_needs():
    cfg = cfg_with(target=None, jackknife_bins=64, block_size=256)
    target = {"statistic": "vertex", "layer": 3, "relative_stderr": 0.01}
    # pilot_seconds=0: the pilot is exactly one block per jackknife bin (64 x 256 networks)
    # on any machine; a timed pilot on a fast machine can sample past the target itself
    p = plan(cfg, target, pilot_seconds=0.0, announce=False)
    assert p.pilot_networks == 64 * 256 and p.rate > 0
    assert p.networks_needed > p.pilot_networks            # 1% needs more than the pilot
    assert "needed: about" in p.text() and "networks/s" in p.text()
    # check the extrapolation against an independent run of ~the planned size:
    # stderr * sqrt(N) is what the plan assumes constant
    n = int(math.ceil(p.networks_needed / 256)) * 256
    res = mcsim.simulate(cfg.replace(networks=n), progress="off")
    v = res.layer(3).vertex
    achieved = max(v.stderr[i] / abs(v.mean[i]) for i in ((0, 0, 0, 0), (1, 1, 1, 1)))
    # both error estimates come from 64 jackknife bins (about 9% each): allow 4 sigma
    assert achieved == pytest.approx(0.01, rel=0.5)


def test_cli_plan_and_run_with_target(tmp_path):
    path = write_config(tmp_path, f"""
        [network]
        input_dim = 2
        widths = [4, 4, 4]
        activation = "tanh"
        [inputs]
        values = [[1.0, 0.0], [0.6, 0.8]]
        [ensemble]
        networks = 2_000_000
        seed = 1
        block_size = 128
        jackknife_bins = 8
        target = {{ statistic = "kurtosis", layer = 3, relative_stderr = 0.05 }}
        [output]
        statistics = ["metric"]
        checkpoint_interval = 0.05
        """)
    proc = run_cli("plan", path, "--pilot-seconds", "0.2")
    assert proc.returncode == 0, proc.stderr
    assert "target: kurtosis at layer 3" in proc.stdout and "needed: about" in proc.stdout
    proc = run_cli("plan", path, "--target", "statistic=six_point,layer=3,relative_stderr=0.1")
    assert proc.returncode == 2 and "not computed" in proc.stderr
    out = tmp_path / "r.h5"
    proc = run_cli("run", path, "-o", out, "--progress", "log")
    assert proc.returncode == 0, proc.stderr
    assert "target reached: kurtosis at layer 3" in proc.stderr
    proc = run_cli("info", out)
    assert "stopped at its target error" in proc.stdout and "target      kurtosis" in proc.stdout
