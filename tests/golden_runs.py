"""Golden runs: the SHA-256 of every numeric dataset of a few small runs.

Run as a script (``python tests/golden_runs.py OUT.json``) in a process whose kernels are
compiled for one fixed CPU target (see ``tests/test_golden.py``), so that the hashes do not
depend on the vector width of the machine that runs the test suite. The configurations
cover both samplers, k = 1 and k = 3, unequal widths, per-layer C_W / C_b and the six-point
accumulator; the runs pinned before ``ensemble.generator`` existed name the generator of that
time (philox53), and six of them are pinned again with the default generator (philox32); the
NTK and dNTK runs (``NTK``: both samplers, default generator) cover those kernels. Datasets hashed: everything under /layers and /accumulator and /inputs (the
attributes hold timestamps and versions and are not hashed).
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

#: the runs pinned before ``ensemble.generator`` existed, with the generator of that time
LEGACY = {
    "markov_k1_relu": {
        "network": {"input_dim": 3, "widths": [7, 5, 6, 1], "activation": "relu",
                    "C_W": 2.0, "C_b": 0.05},
        "inputs": {"values": [[1.0, -0.5, 0.25]]},
        "ensemble": {"networks": 2048, "seed": 11, "block_size": 128, "jackknife_bins": 8,
                     "sampler": "markov"},
        "output": {"statistics": ["metric", "vertex", "six_point"]},
    },
    "markov_k3_tanh": {
        "network": {"input_dim": 2, "widths": [9, 4, 8, 3], "activation": "tanh",
                    "C_W": [1.5, 1.0, 1.2, 0.9], "C_b": [0.0, 0.1, 0.2, 0.0]},
        "inputs": {"values": [[1.0, 0.0], [0.6, 0.8], [-0.3, 0.4]]},
        "ensemble": {"networks": 1536, "seed": 5, "block_size": 256, "jackknife_bins": 4,
                     "sampler": "markov"},
        "output": {"statistics": ["metric", "vertex", "six_point"]},
    },
    "dense_k1_tanh": {
        "network": {"input_dim": 4, "widths": [6, 6, 2], "activation": "tanh",
                    "C_W": 1.0, "C_b": 0.0},
        "inputs": {"values": [[0.5, 1.0, -1.0, 0.0]]},
        "ensemble": {"networks": 1024, "seed": 2, "block_size": 64, "jackknife_bins": 8,
                     "sampler": "dense"},
        "output": {"statistics": ["metric", "vertex", "six_point"]},
    },
    "dense_k3_relu_uniform": {
        "network": {"input_dim": 3, "widths": [5, 7, 4], "activation": "relu",
                    "C_W": 2.0, "C_b": 0.1},
        "inputs": {"values": [[1.0, 0.0, 0.5], [0.2, 0.9, -0.4], [1.0, 0.0, 0.5]]},
        "ensemble": {"networks": 1024, "seed": 9, "block_size": 128, "jackknife_bins": 4,
                     "sampler": "dense", "weights": "uniform"},
        "output": {"statistics": ["metric", "vertex", "six_point"], "layers": [2, 3]},
    },
    "dense_k2_tanh_student_t_rademacher_biases": {
        "network": {"input_dim": 2, "widths": [5, 3, 2], "activation": "tanh",
                    "C_W": 1.5, "C_b": 0.2},
        "inputs": {"values": [[1.0, 0.3], [-0.4, 0.9]]},
        "ensemble": {"networks": 1024, "seed": 6, "block_size": 128, "jackknife_bins": 4,
                     "sampler": "dense", "weights": {"name": "student_t", "nu": 7},
                     "biases": "rademacher"},
        "output": {"statistics": ["metric", "vertex", "z_four_point"]},
    },
    "markov_k2_metric_only": {
        "network": {"input_dim": 2, "widths": [8, 8, 8, 8, 1], "activation": "gelu",
                    "C_W": 1.3, "C_b": 0.0},
        "inputs": {"values": [[1.0, 0.0], [0.0, 1.0]]},
        "ensemble": {"networks": 1024, "seed": 4, "block_size": 128, "jackknife_bins": 4},
        "output": {"statistics": ["metric"]},
    },
}

for _raw in LEGACY.values():
    _raw["ensemble"]["generator"] = "philox53"

#: the default generator of new runs (philox32; no generator named)
DEFAULT = {
    "markov_k1_relu_philox32": LEGACY["markov_k1_relu"],
    "markov_k3_tanh_philox32": LEGACY["markov_k3_tanh"],
    "dense_k1_tanh_philox32": LEGACY["dense_k1_tanh"],
    "dense_k3_relu_uniform_philox32": LEGACY["dense_k3_relu_uniform"],
    "markov_k2_metric_only_philox32": LEGACY["markov_k2_metric_only"],
    # pinned when the Student-t draws became the same bits on every target (issue 12 item 3)
    "dense_k2_tanh_student_t_rademacher_biases_philox32":
        LEGACY["dense_k2_tanh_student_t_rademacher_biases"],
}
DEFAULT = {name: {**raw, "ensemble": {k: v for k, v in raw["ensemble"].items() if k != "generator"}}
           for name, raw in DEFAULT.items()}

#: the NTK and dNTK kernels (issue 12 item 3), default generator: k = 2, widths 5-9 (the
#: 8-lane bodies of ``kernels.reduce`` and their remainders) and one of 21 (long enough for
#: the vector bodies LLVM makes of a loop on AVX2 and on AVX-512), per-layer learning rates
_NTK_NETWORK = {"input_dim": 3, "widths": [7, 9, 21, 6, 3], "activation": "tanh",
                "C_W": [1.0, 1.2, 0.9, 1.1, 1.0], "C_b": [0.1, 0.0, 0.2, 0.05, 0.1],
                "lambda_b": [1.0, 0.5, 0.8, 1.2, 0.7], "lambda_W": [1.0, 2.0, 0.5, 1.5, 1.0]}
_DNTK_NETWORK = {"input_dim": 2, "widths": [6, 9, 21, 5, 2], "activation": "tanh",
                 "C_W": [1.0, 1.3, 0.9, 1.1, 1.0], "C_b": [0.0, 0.1, 0.0, 0.2, 0.05],
                 "lambda_b": [0.5, 1.0, 0.7, 1.1, 0.9], "lambda_W": [1.5, 1.0, 2.0, 0.8, 1.2]}
_NTK_INPUTS = {"values": [[1.0, -0.5, 0.25], [0.3, 0.8, -0.6]]}
_DNTK_INPUTS = {"values": [[1.0, 0.2], [-0.4, 0.9]]}
NTK = {
    f"{kind}_{sampler}_k2_tanh": {
        "network": _NTK_NETWORK if kind == "ntk" else _DNTK_NETWORK,
        "inputs": _NTK_INPUTS if kind == "ntk" else _DNTK_INPUTS,
        "ensemble": {"networks": 384, "seed": 13, "block_size": 128, "jackknife_bins": 3,
                     "sampler": sampler},
        "output": {"statistics": ["metric", "ntk", "ntk_A", "ntk_B", "ntk_D", "ntk_F"]
                   + (["dntk_P", "dntk_Q"] if kind == "dntk" else [])},
    }
    for kind in ("ntk", "dntk") for sampler in ("markov", "dense")
}

#: the reduced sampler chi2 (version 3: alias-table binomials for 128 < n, paired
#: chi-squared draws), chi2_v2 (its version 2, the batch kernel: BTRS for n > 128; its pins
#: are those chi2 had as version 2) and chi2_v1 (the chi2 of earlier versions, which
#: resumes their files): bit-count binomials, chi-squared of both kinds, ReLU, leaky ReLU
#: and perceptron
_CHI2_RELU = {
    "network": {"input_dim": 3, "widths": [300, 5, 40, 2], "activation": "relu",
                "C_W": [2.0, 1.5, 2.5, 1.0], "C_b": [0.1, 0.0, 0.3, 0.2]},
    "inputs": {"values": [[1.0, -0.5, 0.25]]},
    "ensemble": {"networks": 1000, "seed": 13, "block_size": 100, "jackknife_bins": 5},
    "output": {"statistics": ["metric", "vertex", "six_point"]},
}
_CHI2_LEAKY = {
    "network": {"input_dim": 2, "widths": [150, 6, 3], "activation": {"name": "leaky_relu", "slope": -0.2},
                "C_W": 1.9, "C_b": 0.1},
    "inputs": {"values": [[0.5, 1.0]]},
    "ensemble": {"networks": 768, "seed": 3, "block_size": 256, "jackknife_bins": 3},
    "output": {"statistics": ["metric", "vertex"]},
}
_CHI2_PERCEPTRON = {      # (three table layers: the second takes the first counter's spare word)
    "network": {"input_dim": 2, "widths": [200, 300, 129, 4], "activation": "perceptron",
                "C_W": 1.0, "C_b": 0.2},
    "inputs": {"values": [[0.7, -0.4]]},
    "ensemble": {"networks": 768, "seed": 5, "block_size": 256, "jackknife_bins": 3},
    "output": {"statistics": ["metric", "vertex"]},
}
#: the reduced sampler wishart (version 3: chi-squared and normal draws in pairs),
#: wishart_v2 (its version 2, the batch kernel; its pins are those wishart had as version 2)
#: and wishart_v1 (the wishart of earlier versions): Bartlett (n >= k) and eps^T (n < k)
#: layers, a repeated input
_WISHART = {
    "network": {"input_dim": 3, "widths": [5, 2, 40, 3], "activation": "linear",
                "C_W": [1.0, 1.3, 0.9, 1.1], "C_b": [0.0, 0.1, 0.05, 0.2]},
    "inputs": {"values": [[1.0, -0.5, 0.25], [0.3, 0.8, -0.6], [1.0, -0.5, 0.25]]},
    "ensemble": {"networks": 1000, "seed": 17, "block_size": 100, "jackknife_bins": 5},
    "output": {"statistics": ["metric", "vertex", "six_point"]},
}
REDUCED = {
    "wishart_k3_linear": {**_WISHART, "ensemble": {**_WISHART["ensemble"], "sampler": "wishart"}},
    "wishart_v2_k3_linear": {**_WISHART, "ensemble": {**_WISHART["ensemble"], "sampler": "wishart_v2"}},
    "wishart_v1_k3_linear": {**_WISHART, "ensemble": {**_WISHART["ensemble"], "sampler": "wishart_v1"}},
    "chi2_k1_relu": {**_CHI2_RELU, "ensemble": {**_CHI2_RELU["ensemble"], "sampler": "chi2"}},
    "chi2_k1_leaky_relu": {**_CHI2_LEAKY, "ensemble": {**_CHI2_LEAKY["ensemble"], "sampler": "chi2"}},
    "chi2_k1_perceptron": {**_CHI2_PERCEPTRON, "ensemble": {**_CHI2_PERCEPTRON["ensemble"], "sampler": "chi2"}},
    "chi2_v2_k1_relu": {**_CHI2_RELU, "ensemble": {**_CHI2_RELU["ensemble"], "sampler": "chi2_v2"}},
    "chi2_v2_k1_leaky_relu": {**_CHI2_LEAKY, "ensemble": {**_CHI2_LEAKY["ensemble"], "sampler": "chi2_v2"}},
    "chi2_v1_k1_relu": {**_CHI2_RELU, "ensemble": {**_CHI2_RELU["ensemble"], "sampler": "chi2_v1"}},
}
CONFIGS = {**LEGACY, **DEFAULT, **NTK, **REDUCED}


def dataset_hashes(path) -> dict[str, str]:
    """{name: sha256 of the C-ordered bytes (with dtype and shape)} for every dataset under
    /layers, /accumulator and /inputs."""
    import h5py
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and name.split("/")[0] in ("layers", "accumulator", "inputs"):
            arr = np.ascontiguousarray(obj[()])
            h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(arr.tobytes())
            out[name] = h.hexdigest()

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


def run_all(names=None) -> dict[str, dict[str, str]]:
    """Hashes of the runs ``names`` (default: all of ``CONFIGS``)."""
    import mcsim
    from mcsim.config import config_from_dict
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or CONFIGS:
            raw = CONFIGS[name]
            path = Path(tmp) / f"{name}.h5"
            mcsim.simulate(config_from_dict(raw), output=path, progress="off")
            result[name] = dataset_hashes(path)
    return result


def split_by_sampler(names, jobs: int) -> list[list[str]]:
    """``names`` in at most ``jobs`` groups, the runs of one sampler (the same kernels) in one
    group, groups of about equal numbers of runs: each group can then compile its kernels in a
    process of its own without compiling another group's."""
    from mcsim.config import config_from_dict
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(config_from_dict(CONFIGS[name]).ensemble.sampler, []).append(name)
    groups: list[list[str]] = [[] for _ in range(max(1, jobs))]
    for runs in sorted(families.values(), key=len, reverse=True):
        min(groups, key=len).extend(runs)
    return [g for g in groups if g]


def run_parallel(out: Path, names, jobs: int) -> dict[str, dict[str, str]]:
    """``run_all(names)`` in ``jobs`` processes of this script (this process's environment:
    the same compile target and cache), merged; see ``split_by_sampler``."""
    import subprocess
    groups = split_by_sampler(list(names or CONFIGS), jobs)
    parts = [out.with_name(f"{out.stem}.part{i}.json") for i in range(len(groups))]
    procs = [subprocess.Popen([sys.executable, __file__, str(part), *group])
             for part, group in zip(parts, groups)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"golden_runs.py: a worker failed (exit codes {codes})")
    result = {}
    for part in parts:
        result.update(json.loads(part.read_text()))
        part.unlink()
    return result


if __name__ == "__main__":
    # python tests/golden_runs.py OUT.json [-j N] [RUN ...]: all runs, or the ones named; with
    # -j N in N processes (Numba compiles on one core: the golden kernels' compilation is most
    # of the suite's time)
    args = sys.argv[2:]
    jobs = 1
    if args[:1] == ["-j"]:
        jobs, args = int(args[1]), args[2:]
    out = Path(sys.argv[1])
    hashes = run_parallel(out, args, jobs) if jobs > 1 else run_all(args)
    out.write_text(json.dumps(hashes, indent=1, sort_keys=True))
