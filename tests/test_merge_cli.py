"""`mcsim merge` and `mcsim info`."""
from __future__ import annotations

import numpy as np
import pytest

import mcsim
from mcsim.errors import ResumeError
from mcsim.storage.merge import merge_files
from tests.conftest import run_cli


def run(cfg, path, **kw):
    return mcsim.simulate(cfg.replace(**kw), output=path, progress="off")


def test_merge_of_block_ranges_equals_one_run(small_config, tmp_path):
    """Disjoint block ranges of one seed merge to the single run over the union (to rounding)."""
    import dataclasses
    cfg = mcsim.load_config(small_config)
    whole = run(cfg, tmp_path / "whole.h5")
    first = cfg.replace(networks=2048)
    second = dataclasses.replace(first, ensemble=dataclasses.replace(first.ensemble, first_block=16))
    mcsim.simulate(first, output=tmp_path / "a.h5", progress="off")
    mcsim.simulate(second, output=tmp_path / "b.h5", progress="off")
    merged = merge_files([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "ab.h5")
    assert merged.networks == whole.networks
    for l in whole.layers:
        for name in ("metric", "vertex", "six_point", "kurtosis"):
            x, y = getattr(whole.layer(l), name), getattr(merged.layer(l), name)
            np.testing.assert_allclose(y.mean, x.mean, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(y.stderr, x.stderr, rtol=1e-12, atol=1e-14)
    # overlapping ranges of one seed are refused
    with pytest.raises(ResumeError, match="counted twice"):
        merge_files([tmp_path / "a.h5", tmp_path / "whole.h5"], tmp_path / "bad.h5")
    # a merged file cannot be resumed
    with pytest.raises(ResumeError, match="merge"):
        mcsim.simulate(cfg.replace(networks=8192), output=tmp_path / "ab.h5", progress="off")


def test_merge_seeds_associative_and_refusals(small_config, tmp_path):
    cfg = mcsim.load_config(small_config).replace(networks=1024)
    paths = []
    for seed in (1, 2, 3):
        p = tmp_path / f"s{seed}.h5"
        run(cfg, p, seed=seed)
        paths.append(p)
    a, b, c = paths
    ab = merge_files([a, b], tmp_path / "ab.h5")
    left = merge_files([tmp_path / "ab.h5", c], tmp_path / "ab_c.h5")
    merge_files([b, c], tmp_path / "bc.h5")
    right = merge_files([a, tmp_path / "bc.h5"], tmp_path / "a_bc.h5")
    assert ab.networks == 2048 and left.networks == right.networks == 3072
    for l in left.layers:
        for name in ("metric", "vertex", "six_point", "kurtosis"):
            x, y = getattr(left.layer(l), name), getattr(right.layer(l), name)
            # associative up to floating-point rounding of the Chan/Pebay updates
            np.testing.assert_allclose(x.mean, y.mean, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(x.stderr, y.stderr, rtol=1e-10, atol=1e-13)
    other = tmp_path / "other.h5"
    mcsim.simulate(cfg.replace(seed=9, sampler="dense"), output=other, progress="off")
    proc = run_cli("merge", a, other, "-o", tmp_path / "x.h5")
    assert proc.returncode == 2 and "ensemble.sampler" in proc.stderr
    assert not (tmp_path / "x.h5").exists()
    proc = run_cli("merge", a, b, "-o", tmp_path / "ab.h5")
    assert proc.returncode == 2 and "--force" in proc.stderr


def test_info_prints_table(small_config, tmp_path):
    out = tmp_path / "r.h5"
    proc = run_cli("run", small_config, "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("info", out)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "layer 3" in text and "G[11]" in text and "V[(11)(11)]" in text and "+-" in text
    assert "deterministic" in text and "4,096" in text
    proc = run_cli("info", out, "--layer", "2", "--all")
    assert "layer 3" not in proc.stdout and "six_point" in proc.stdout


def test_help_is_complete():
    proc = run_cli("--help")
    for cmd in ("run", "info", "merge"):
        assert cmd in proc.stdout
    proc = run_cli("run", "--help")
    for flag in ("--output", "--networks", "--seed", "--threads", "--quiet", "--force", "75"):
        assert flag in proc.stdout


def test_merge_records_blocks_and_completeness_and_refuses_any_overlap(small_config, tmp_path):
    """The merged file holds the sum of the blocks (and the matching number of networks), is
    complete only if every input is, and ranges of one seed that overlap in either order
    (one starting inside the other) are refused."""
    import dataclasses

    import h5py

    from mcsim.storage.reader import read_run
    cfg = mcsim.load_config(small_config).replace(networks=1024)           # 8 blocks of 128

    def at(first_block):
        return dataclasses.replace(cfg, ensemble=dataclasses.replace(cfg.ensemble, first_block=first_block))

    mcsim.simulate(cfg, output=tmp_path / "a.h5", progress="off")          # blocks 0..7
    mcsim.simulate(at(4), output=tmp_path / "b.h5", progress="off")        # 4..11: overlaps a
    mcsim.simulate(at(8), output=tmp_path / "c.h5", progress="off")        # 8..15
    for pair in (("a", "b"), ("b", "a")):
        with pytest.raises(ResumeError, match="counted twice"):
            merge_files([tmp_path / f"{p}.h5" for p in pair], tmp_path / "bad.h5")
    merge_files([tmp_path / "a.h5", tmp_path / "c.h5"], tmp_path / "ac.h5")
    ac = read_run(tmp_path / "ac.h5")
    assert ac.complete and ac.accumulator.blocks == 16 and ac.accumulator.networks == 2048
    assert ac.config.ensemble.networks == 2048
    with h5py.File(tmp_path / "c.h5", "a") as f:                          # as a checkpoint says
        f.attrs["complete"] = False
    merge_files([tmp_path / "a.h5", tmp_path / "c.h5"], tmp_path / "ac2.h5")
    assert not read_run(tmp_path / "ac2.h5").complete
