"""What a crash leaves behind: checkpoints say they are partial, and writes reach the disk.

`complete` is what `sweep --submit` (tests/test_sweep.py) and resume rely on to tell a
finished task from a checkpoint, so every file written before the end of a run must say
complete = False (a kill -9 can leave any of them). The atomic writer must fsync the
temporary file before renaming it over the target, and then the directory (the rename).
"""
from __future__ import annotations

import os
import stat

import h5py

import mcsim
from mcsim.run import driver
from mcsim.storage import hdf5 as hdf5io


def test_every_checkpoint_before_the_end_says_incomplete(small_config, tmp_path, monkeypatch):
    cfg = mcsim.load_config(small_config).replace(networks=32 * 128)
    writes = []
    real = driver.write_run

    def spy(path, cfg_, acc, estimates, attrs, **kw):
        real(path, cfg_, acc, estimates, attrs, **kw)
        with h5py.File(path, "r") as f:          # what a kill -9 right now would leave
            writes.append((int(f["accumulator"].attrs["blocks"]), bool(f.attrs["complete"])))

    monkeypatch.setattr(driver, "write_run", spy)
    # every round takes >= 2 ms (so rounds stay at one block) and checkpoint_interval is 1 ms:
    # a checkpoint after every round, whatever the speed of the machine
    import time
    real_run = driver.BlockWorker.run

    def slow_run(self, first, n):
        time.sleep(0.002)
        return real_run(self, first, n)

    monkeypatch.setattr(driver.BlockWorker, "run", slow_run)
    cfg = mcsim.config_from_dict({**cfg.to_dict(), "output": {**cfg.to_dict()["output"],
                                                              "checkpoint_interval": 0.001}})
    mcsim.simulate(cfg, output=tmp_path / "r.h5", progress="off")
    assert len(writes) >= 10, writes                      # the empty start file, checkpoints, final
    *partial, final = writes
    assert final == (cfg.ensemble.blocks, True)
    assert all(not complete for _, complete in partial), writes
    assert all(blocks < cfg.ensemble.blocks for blocks, _ in partial), writes


def test_atomic_write_fsyncs_the_file_before_the_rename_and_then_the_directory(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        mode = os.fstat(fd).st_mode
        events.append("dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other")
        return real_fsync(fd)

    def replace(a, b):
        events.append("rename")
        return real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    hdf5io.atomic_write(tmp_path / "x.h5", lambda f: f.create_dataset("a", data=[1.0]))
    assert events == ["file", "rename", "dir"], events
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert f["a"][0] == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["x.h5"]


def test_running_again_on_a_file_marked_partial_completes_it(small_config, tmp_path):
    """A file that holds every requested block but says complete = False (whatever left it so)
    is finished by running again: afterwards it says complete, or `sweep --submit` would
    resubmit the task for ever. The numbers stay those of the one run."""
    cfg = mcsim.load_config(small_config).replace(networks=1024)
    out = tmp_path / "r.h5"
    first = mcsim.simulate(cfg, output=out, progress="off")
    with h5py.File(out, "a") as f:
        f.attrs["complete"] = False
    again = mcsim.simulate(cfg, output=out, progress="off")
    with h5py.File(out, "r") as f:
        assert bool(f.attrs["complete"]) and int(f["accumulator"].attrs["blocks"]) == cfg.ensemble.blocks
    for l in first.layers:
        assert (again.layer(l).metric.mean == first.layer(l).metric.mean).all()
