"""Cheap non-finite flags for sampler output and moment states.

``first_nonfinite(x)`` looks at a C-contiguous array viewed as rows (R, W) (a sampler buffer
``(n_blocks, block_size, S, W)`` reshaped to ``(n_blocks * block_size * S, W)``, or a block of
moment sums) and returns the first row that holds an inf or a NaN, or -1. The fast path is
one vectorised pass that sums ``x * 0`` per row (0 for finite x, NaN for inf / NaN: the
kernels' fast-math flags leave out ``nnan`` / ``ninf``, so this is not folded away); only a
flagged row is searched entry by entry. The arrays are only read.
"""

from __future__ import annotations

import numpy as np

from .jit import kernel

__all__ = ["first_nonfinite"]


@kernel
def first_nonfinite(x):
    """First row r of x (R, W) with a non-finite entry, and that entry's column: (r, c);
    (-1, -1) when every entry is finite."""
    R, W = x.shape
    for r in range(R):
        acc = 0.0
        for c in range(W):              # vectorised: x * 0 is NaN exactly for inf / NaN
            acc += x[r, c] * 0.0
        if acc != 0.0:
            for c in range(W):
                if not np.isfinite(x[r, c]):
                    return r, c
    return -1, -1
