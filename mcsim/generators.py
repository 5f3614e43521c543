"""The random-number generators a run can use (``ensemble.generator``); no Numba here.

Both are counter-based Philox4x32-10 streams keyed by (seed, block, network, position)
(``mcsim.kernels.rng``) and differ only in how standard normals are made from the stream:

- ``philox53``: two 53-bit uniforms per pair of normals, float64 Box-Muller; tails to
  |z| = 8.57. The only generator of earlier mcsim versions: a file without a
  ``generator`` attribute was made with it.
- ``philox32``: one 32-bit word per uniform, float32 Box-Muller widened to float64; tails to
  |z| = 6.66, moments through E[z^6] equal to the exact ones far below the statistical
  error of 10^12 normals (docs/performance.md). 2-2.4x faster per normal on AVX2.

Every file records ``generator`` and ``generator_version``; a run resumed or extended
without an explicit ``generator`` keeps the file's (``mcsim.run.driver``), bitwise.
"""
from __future__ import annotations

#: name -> version (a version changes when a generator's numbers change)
GENERATORS = {"philox53": 1, "philox32": 1}
#: the generator of new runs that do not name one
DEFAULT_GENERATOR = "philox32"
#: the generator of files written before the setting existed (no ``generator`` attribute)
LEGACY_GENERATOR = "philox53"
AUTO = "auto"

__all__ = ["GENERATORS", "DEFAULT_GENERATOR", "LEGACY_GENERATOR", "AUTO", "generator_attrs"]


def generator_attrs(name: str) -> dict:
    """The HDF5 root attributes that record ``name``."""
    return {"generator": name, "generator_version": GENERATORS[name]}
