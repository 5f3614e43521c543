"""Pinned numbers: a refactor must change no number mcsim produces.

The SHA-256 of every dataset (estimates, standard errors, the accumulator) of the runs in
`golden_runs.py`, computed with the kernels compiled for one fixed target (Haswell: AVX2 +
FMA, runs on every node of this kind), were recorded in `golden_hashes.json` before the
registry refactor, and re-pinned once on purpose when every reduction got a fixed order
(issue 12: the last bits of sums changed; the Haswell and AVX-512 builds now agree, see
``test_isa_bits.py``). The runs of that time name their generator (philox53) explicitly since
``ensemble.generator`` exists, and kept their pins; five of them were pinned a second time
(``*_philox32``) with the default generator of new runs. The GELU run
(``markov_k2_metric_only``, both generators) was re-pinned on purpose when erfc got its
round-two kernel (issue 12 item 4: the last bits of erfc changed, both within their ulp bounds),
and again for round three (erfc as t exp(-x^2 + C0 + 2u) (1 + D(u)); same bounds, the
AVX-512 build gives the same hashes) and for round four (D by three Horner chains, a 10-term
exp, GELU's Phi without erfc's selects; same bounds, same hashes on the AVX-512 build). The
Student-t run (``dense_k2_tanh_student_t_rademacher_biases``) was re-pinned on purpose when
``jit.exact`` got ``fastmath=False`` (issue 12 item 3: its draws became the IEEE
z / sqrt(chi / nu), the same on AVX2 and AVX-512 builds; the last bits changed), and pinned
then a second time with the default generator (``*_philox32``). The NTK and dNTK runs
(``ntk_*``, ``dntk_*``) were first pinned when their kernels' sums got the fixed order of
``kernels/reduce.py`` (issue 12 item 3; no other pin changed then). The wishart runs
(``wishart_k3_linear``: version 2, the batch kernel; ``wishart_v1_k3_linear``: version 1)
were first pinned when wishart got its version 2 (no other pin changed then); when wishart
got its version 3 (draws in pairs), ``wishart_k3_linear`` was re-pinned and version 2's pins
moved to ``wishart_v2_k3_linear`` unchanged (no other pin changed then). Any change of a number, of a dataset's shape or dtype, or a dataset
missing or added fails this test, naming the run and dataset.

To re-pin after a change that is *meant* to change numbers (say why in the commit):
    python tests/test_golden.py --update
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PINNED = HERE / "golden_hashes.json"
CACHE = HERE.parent / ".venv" / "numba-cache-haswell"   # kept between runs; keyed by source


def compute(out: Path) -> dict:
    sys.path.insert(0, str(HERE))
    from isa import golden_command, haswell_env
    subprocess.run(golden_command(out), env=haswell_env(CACHE), check=True, timeout=1800)
    return json.loads(out.read_text())


def test_golden_dataset_hashes(tmp_path):
    pinned = json.loads(PINNED.read_text())
    got = compute(tmp_path / "hashes.json")
    problems = []
    for run in sorted(set(pinned) | set(got)):
        a, b = pinned.get(run, {}), got.get(run, {})
        for name in sorted(set(a) | set(b)):
            if name not in b:
                problems.append(f"{run}: dataset {name} missing")
            elif name not in a:
                problems.append(f"{run}: unexpected new dataset {name}")
            elif a[name] != b[name]:
                problems.append(f"{run}: {name} changed")
    assert not problems, "numbers changed:\n" + "\n".join(problems)


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        hashes = compute(Path(tmp) / "h.json")
    PINNED.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINNED}")
