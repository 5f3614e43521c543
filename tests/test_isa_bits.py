"""The same bits on every x86-64 node with FMA (AVX2 or AVX-512).

The golden runs (``golden_runs.py``: markov and dense, k = 1 and 3, second and third
moments, with both generators: philox53 and the float32 Box-Muller of philox32, whose
float32 loops run 8 lanes on AVX2 and 16 on AVX-512) are recomputed with the kernels compiled for this machine's own CPU (its full
feature list: AVX-512 where it has it, or an AVX2 CPU other than Haswell, whose cost model
picks other vector widths and unrolling) and, where the machine has AVX-512, for an explicit
AVX-512 target; every dataset must equal, bitwise, the hashes pinned with the Haswell (AVX2)
build in ``golden_hashes.json``. Before the fixed-order sums of ``kernels/reduce.py`` the
vectorised reductions rounded differently per vector width; before ``jit.exact`` said
``fastmath=False`` explicitly, the Student-t run (dense laws kernel) differed in the last
bits of its draws (an unset option inherits the calling kernel's fast-math flags in Numba).
Before their sums went through ``kernels/reduce.py`` too, the NTK and dNTK runs (``ntk_*``,
``dntk_*``, both samplers) differed in 20 of 75 (NTK) and 29 and 33 of 95 (dNTK) datasets.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PINNED = HERE / "golden_hashes.json"
ROOT = HERE.parent

sys.path.insert(0, str(HERE))
from isa import AVX512_FEATURES, golden_command, host_env, host_has_avx512, target_env  # noqa: E402

TARGETS = ["host"] + (["skylake-avx512"] if host_has_avx512() else [])

@pytest.mark.parametrize("target", TARGETS)
def test_golden_runs_bitwise_equal_to_the_haswell_build(target, tmp_path):
    # host: the set-up's cache (a fresh compile for the host is what test_golden's Haswell
    # build already does for another target; compiling every golden kernel once more per
    # target is most of the suite's time)
    env = host_env() if target == "host" else \
        target_env(target, AVX512_FEATURES, ROOT / ".venv" / f"numba-cache-{target}")
    out = tmp_path / "hashes.json"
    subprocess.run(golden_command(out), env=env, check=True, timeout=1800)
    got, pinned = json.loads(out.read_text()), json.loads(PINNED.read_text())
    differ = [f"{run}: {name}" for run in pinned for name in pinned[run]
              if got.get(run, {}).get(name) != pinned[run][name]]
    assert not differ, f"{target} build differs from the Haswell build in:\n" + "\n".join(differ)
