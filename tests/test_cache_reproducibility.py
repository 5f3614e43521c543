"""Bitwise reproducibility between a process that JIT-compiles the kernels and processes
that load them from Numba's cache (a rank with a cold cache must not change the result)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

SCRIPT = """
import sys, numpy as np, mcsim
from mcsim.config import config_from_dict
cfg = config_from_dict({
    "network": {"input_dim": 3, "widths": [40, 33, 20, 1], "activation": "tanh", "C_W": 1.7, "C_b": 0.1},
    "inputs": {"values": [[1.0, 0.5, 0.2], [0.3, -0.4, 0.9], [0.1, 0.1, -1.0]]},
    "ensemble": {"networks": 512, "seed": 3, "block_size": 64, "sampler": sys.argv[2]},
    "output": {"statistics": ["metric", "vertex", "six_point"]}})
res = mcsim.simulate(cfg, progress="off")
arrays = [np.ravel(getattr(res.layer(l), s).mean) for l in res.layers for s in ("metric", "vertex", "six_point")]
np.save(sys.argv[1], np.concatenate(arrays))
"""


def test_compiled_and_cached_kernels_agree_bitwise(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), NUMBA_NUM_THREADS="1")
    for sampler in ("markov", "dense"):
        outs = []
        for i in range(2):      # the first compiles into the empty cache, the second loads
            out = tmp_path / f"{sampler}{i}.npy"
            subprocess.run([sys.executable, "-c", SCRIPT, str(out), sampler], env=env, check=True)
            outs.append(np.load(out))
        np.testing.assert_array_equal(outs[0], outs[1])
