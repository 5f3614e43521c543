"""Shared fixtures: small configs and a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def write_config(tmp_path: Path, body: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


SMALL = """
[network]
input_dim = 3
widths = [6, 5, 4]
activation = "relu"
C_W = 2.0
C_b = 0.1

[inputs]
values = [[1.0, 0.0, 0.5], [0.2, 0.9, -0.4]]

[ensemble]
networks = 4096
seed = 3
block_size = 128
jackknife_bins = 16

[output]
statistics = ["metric", "vertex", "six_point"]
checkpoint_interval = 0.2
"""


@pytest.fixture
def small_config(tmp_path):
    return write_config(tmp_path, SMALL)


def run_cli(*args, env=None, timeout=300, **kw) -> subprocess.CompletedProcess:
    """Run `mcsim ARGS` as a subprocess (the installed console script)."""
    full_env = dict(os.environ)
    full_env.setdefault("NUMBA_NUM_THREADS", "1")
    full_env.update(env or {})
    return subprocess.run([str(VENV_BIN / "mcsim"), *map(str, args)], capture_output=True,
                          text=True, env=full_env, timeout=timeout, **kw)
