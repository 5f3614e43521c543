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


#: k = 8 inputs with six-point statistics (8,436 third moments per layer): the case whose
#: moment kernel runs threaded; argv: output .npy, threads
SCRIPT_K8 = """
import sys, numpy as np, mcsim
from mcsim.config import config_from_dict
x = np.random.default_rng(5).standard_normal((8, 3)).round(3).tolist()
cfg = config_from_dict({
    "network": {"input_dim": 3, "widths": [12, 10, 1], "activation": "tanh", "C_W": 1.5, "C_b": 0.05},
    "inputs": {"values": x},
    "ensemble": {"networks": 192, "seed": 11, "block_size": 64, "sampler": "markov"},
    "output": {"statistics": ["metric", "vertex", "six_point"]}})
res = mcsim.simulate(cfg, progress="off", threads=int(sys.argv[2]))
arrays = [np.ravel(getattr(res.layer(l), s).mean) for l in res.layers for s in ("metric", "vertex", "six_point")]
arrays += [np.ravel(getattr(res.layer(l), s).stderr) for l in res.layers for s in ("metric", "vertex", "six_point")]
np.save(sys.argv[1], np.concatenate(arrays))
"""


def test_k8_six_point_same_bits_at_1_and_2_threads_compiled_and_cached(tmp_path):
    # fresh compile at 2 threads, then from the cache at 1 and at 2 threads
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), NUMBA_NUM_THREADS="2")
    outs = []
    for i, threads in enumerate((2, 1, 2)):
        out = tmp_path / f"k8_{i}.npy"
        subprocess.run([sys.executable, "-c", SCRIPT_K8, str(out), str(threads)], env=env,
                       check=True)
        outs.append(np.load(out))
    assert outs[0].size > 2 * 8436 and np.all(np.isfinite(outs[0]))
    for other in outs[1:]:
        np.testing.assert_array_equal(outs[0], other)
