"""No silent wrong numbers: non-finite per-network values, moments and estimates.

Floating-point overflow in a deep or strongly amplifying network (ReLU with C_W = 50: the
metric grows by 25x per layer) turns Ghat into inf, then NaN, and the layers after it into
exact zeros, which would be stored as if measured. The driver therefore checks

- every sampler buffer (`check_samples`: one vectorised pass, `kernels.finite`), and names
  the first layer where a network's values overflow;
- every block's moment sums (`check_moments`): finite values whose powers overflow (third
  moments of values ~1e103 and up);
- the estimators' arithmetic (`mcsim.stats.estimators` evaluates them with floating-point
  overflow raised).

All raise `NumericalOverflow`, which names the layer and says what to change. Estimates that
are *undefined* rather than overflowing (too few networks or jackknife bins, 0/0 of an
identically zero metric) are stored as NaN; `undefined_reason` says why (`mcsim info`,
`mcsim compare` print it).
"""
from __future__ import annotations

import numpy as np

from ..errors import NumericalOverflow

__all__ = ["first_nonfinite", "check_samples", "check_moments", "nonfinite_entries",
           "undefined_reason", "ADVICE"]

#: what to change when values overflow
ADVICE = ("lower network.C_W (the metric grows by about C_W times the activation's mean squared "
          "slope per layer; the critical value keeps it of order one: see `mcsim theory`), use "
          "fewer layers, or smaller inputs / C_b")


def first_nonfinite(x: np.ndarray) -> tuple[int, int]:
    """(row, column) of the first inf / NaN of x viewed as (x.shape[0], -1); (-1, -1) if none."""
    from ..kernels.finite import first_nonfinite as kernel
    if x.size == 0:
        return -1, -1
    rows = np.ascontiguousarray(x).reshape(x.shape[0], -1)
    r, c = kernel(rows)
    return int(r), int(c)


def _quantity_at(layout, column: int) -> str:
    for name in layout.names:
        s = layout.slice(name)
        if s.start <= column < s.stop:
            return name
    return "value"


def check_samples(out: np.ndarray, first_block: int, layout, first_layer: int = 2,
                  recorded=None) -> None:
    """Raise NumericalOverflow if a sampler buffer ``out`` (n_blocks, block_size, S, W) holds
    inf or NaN; the message names the first network (in block order) and the first layer of it
    whose values left float64. ``layout``: the buffer's quantity layout (width W).
    ``recorded``: the stochastic layers s whose quantities are used (default: all); in the
    others only the Ghat columns are checked (the NTK kernels fill the NTK columns of layers
    that are not recorded with NaN, so that no estimate can use them by mistake)."""
    nb, N, S, W = out.shape
    if recorded is not None and len(recorded) < S and "gram" in layout.names:
        g = layout.slice("gram")
        if g.stop - g.start < W:         # quantities beyond Ghat: check them where recorded
            check_samples(out[..., g], first_block, layout, first_layer)
            mask = np.zeros(S, dtype=bool)
            mask[np.asarray(recorded, dtype=np.int64)] = True
            masked = np.where(mask[None, None, :, None], out, 0.0)
            return check_samples(masked, first_block, layout, first_layer)
    r, c = first_nonfinite(out.reshape(nb * N, S * W))
    if r < 0:
        return
    block, network = first_block + r // N, r % N
    s, w = divmod(c, W)
    layer = first_layer + s
    values = out[r // N, network]
    value = values[s, w]
    before = ""
    if s > 0:
        prev = np.abs(values[s - 1])
        before = f"; at layer {layer - 1} it was {prev.max():.3g}"
    name = _quantity_at(layout, w)
    raise NumericalOverflow(
        f"the preactivations overflow float64 at layer {layer}: {name} of network {network} of "
        f"block {block} is {value} there{before}. No result with non-finite values is written. "
        f"To fix it, {ADVICE}")


def check_moments(arrays: dict, first_block: int, layers, what: str = "block") -> None:
    """Raise NumericalOverflow if moment arrays (mean (n, S, M), m2 (n, S, M, M),
    m3 (n, S, T)) of n blocks from ``first_block`` are not finite; ``layers``: the network
    layer of each of the S recorded layers."""
    order = {"mean": "means", "m2": "second moments", "m3": "third moments"}
    S = len(layers)
    for name in ("mean", "m2", "m3"):
        a = arrays[name]
        if a.size == 0 or S == 0:
            continue
        r, _ = first_nonfinite(a.reshape(a.shape[0] * S, -1))
        if r >= 0:
            block, layer = first_block + r // S, layers[r % S]
            hint = (" (third moments need values below about 1e100: drop six_point from "
                    "output.statistics, or record fewer layers with output.layers)" if name == "m3" else "")
            raise NumericalOverflow(
                f"the {order[name]} of the per-network values overflow float64 at layer {layer} "
                f"({what} {block}){hint}. No result with non-finite values is written. To fix it, "
                f"{ADVICE}")


def nonfinite_entries(arrays: dict) -> int:
    """How many entries of the arrays are inf or NaN."""
    return int(sum(np.size(a) - np.count_nonzero(np.isfinite(a)) for a in arrays.values()))


def undefined_reason(statistic: str, networks: int, blocks: int, bins: int, stderr: bool = False,
                     metric_diag=None) -> str:
    """Why a stored estimate is NaN (legitimately undefined), in a few words."""
    from .statistics import STATISTICS
    stat = STATISTICS.get(statistic)
    order = max(stat.needs.values()) if stat is not None else 2
    if networks < order:
        return f"needs at least {order} networks, the file holds {networks}"
    if stderr:
        filled = min(blocks, bins)
        if filled < 2:
            return "error bars need networks in at least 2 jackknife bins"
    if metric_diag is not None and np.any(np.asarray(metric_diag) == 0):
        return "0/0: the metric G_aa is exactly 0 (the preactivations are identically zero)"
    return "not finite for this ensemble (0/0)"
