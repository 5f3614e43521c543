"""Compile mcsim's kernels for a fixed x86-64 target in a subprocess.

Numba compiles for the host CPU unless NUMBA_CPU_NAME and NUMBA_CPU_FEATURES say otherwise
(without NUMBA_CPU_FEATURES it would take the host's feature list, AVX-512 included, under
any CPU name). Code built for Haswell (AVX2 + FMA) runs on every AVX2 and AVX-512 node, so
numbers computed under `haswell_env` are the same on both kinds of CI node. Each target gets
its own Numba cache directory (the host build may use Numba's default cache: entries are keyed
by CPU name and features, so targets never mix there either).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HASWELL_FEATURES = ("+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+f16c,+fma,+fxsr,+lzcnt,"
                    "+mmx,+movbe,+pclmul,+popcnt,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,"
                    "+xsave,-avx512f,-avx512dq,-avx512bw,-avx512vl,-avx512cd")


#: an AVX-512 target (Skylake-SP features); run it only where the host has AVX-512
AVX512_FEATURES = HASWELL_FEATURES.replace(
    "-avx512f,-avx512dq,-avx512bw,-avx512vl,-avx512cd", "+avx512f,+avx512dq,+avx512bw,+avx512vl,+avx512cd")


def host_has_avx512() -> bool:
    """Whether this machine runs AVX-512F code (LLVM's view of the host)."""
    import llvmlite.binding as llvm
    feats = llvm.get_host_cpu_features()
    return bool(feats.get("avx512f", False))


def host_env(cache_dir=None) -> dict:
    """Numba's default target: this machine's CPU name and all its features. Without
    ``cache_dir``, Numba's default cache (beside the kernel sources, or the caller's
    NUMBA_CACHE_DIR): the one ``mcsim compile`` filled in set-up, so the host build is loaded,
    not compiled again (Numba keys cache entries by CPU name and features, so other targets'
    entries never mix with it)."""
    env = dict(os.environ)
    env.pop("NUMBA_CPU_NAME", None)
    env.pop("NUMBA_CPU_FEATURES", None)
    env.update(NUMBA_NUM_THREADS="1")
    if cache_dir is not None:
        env.update(NUMBA_CACHE_DIR=str(cache_dir))
    return env


def target_env(cpu_name: str, features: str, cache_dir) -> dict:
    env = dict(os.environ)
    env.update(NUMBA_CPU_NAME=cpu_name, NUMBA_CPU_FEATURES=features,
               NUMBA_CACHE_DIR=str(cache_dir), NUMBA_NUM_THREADS="1")
    return env


def haswell_env(cache_dir) -> dict:
    return target_env("haswell", HASWELL_FEATURES, Path(cache_dir))


def golden_command(out) -> list[str]:
    """The command that writes the golden runs' hashes to ``out`` (``golden_runs.py``), in
    one process per core up to 2 (the compilation of their kernels dominates; each process
    compiles the kernels of other samplers)."""
    jobs = max(1, min(2, len(os.sched_getaffinity(0))))
    return [sys.executable, str(Path(__file__).resolve().parent / "golden_runs.py"), str(out),
            "-j", str(jobs)]
