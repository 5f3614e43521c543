"""The registry of per-network quantities, and the packed layout that carries them.

A *quantity* is a vector that one sampled network contributes for each stochastic layer
l = 2..L (layer 1 is deterministic), for example the packed stochastic metric Ghat^(l)
(``gram``). Samplers fill quantities into a buffer of shape
``(n_blocks, block_size, L - 1, width)``; the accumulator keeps the moments of the
concatenation of the quantities that the requested statistics need (``Layout``); statistics
read their quantities' blocks of those moments by name. Nothing downstream of the sampler
knows what a quantity means beyond its registry entry.

Adding a quantity: one ``register_quantity(Quantity(...))`` call (here, or in the module that
defines it), a sampler that fills it (``mcsim.samplers``), and statistics that use it
(``mcsim.stats.statistics``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .indexing import n_pairs, n_quads, n_triples, triples as triples_table, unpack_matrix, unpack_quads

__all__ = ["Quantity", "QUANTITIES", "register_quantity", "get_quantity", "Layout"]


@dataclass(frozen=True)
class Quantity:
    """One per-network, per-layer vector.

    name: registry key (also its name in ``/accumulator`` of the HDF5 files).
    description: what one network contributes for layer l, with its index convention.
    length: ``length(cfg) -> int``, the packed length per layer (a function of k and of any
        other setting).
    unpack: ``unpack(packed (..., length), k) -> (..., *shape)``, the packed vector as the
        tensor it stands for.
    samplers: names of the samplers that can fill it (for error messages; each sampler
        declares what it fills, and the test suite checks the two agree).
    settings: dotted config keys, beyond those every quantity depends on, that change it
        (e.g. the learning rates for the NTK); runs that accumulate it may be resumed or merged
        only when these agree (``Config.fingerprint``), others ignore them.
    needs_derivative: the quantity needs sigma' (backpropagation): activations whose
        derivative has a delta function (the perceptron) are refused.
    """
    name: str
    description: str
    length: Callable
    unpack: Callable
    samplers: tuple[str, ...] = ("markov", "dense")
    settings: tuple[str, ...] = ()
    needs_derivative: bool = False


QUANTITIES: dict[str, Quantity] = {}


def register_quantity(q: Quantity) -> Quantity:
    if q.name in QUANTITIES and QUANTITIES[q.name] is not q:
        raise ValueError(f"quantity {q.name!r} is registered already")
    QUANTITIES[q.name] = q
    return q


def get_quantity(name: str) -> Quantity:
    try:
        return QUANTITIES[name]
    except KeyError:
        raise KeyError(f"unknown quantity {name!r}; registered: {', '.join(QUANTITIES)}") from None


register_quantity(Quantity(
    name="gram",
    description="stochastic metric Ghat^(l)_ab = C_b + C_W/n_{l-1} sum_j sigma_{j;a} sigma_{j;b}, "
                "packed pairs a <= b (lexicographic)",
    length=lambda cfg: n_pairs(cfg.k),
    unpack=unpack_matrix, samplers=("markov", "dense", "chi2", "chi2_v2", "chi2_v1", "wishart", "wishart_v2", "wishart_v1")))

# The same-unit fourth cumulant that non-Gaussian weight and bias laws add (zero for Gaussian
# ones): given layer l-1, z_{i;a} = b_i + sum_j W_ij s_{j;a} (s = sigma(z^(l-1))) has the joint
# fourth cumulant kappa4_W (C_W/n_{l-1})^2 sum_j s_a1 s_a2 s_a3 s_a4 + kappa4_b C_b^2 over
# inputs, with kappa4 the laws' standardised fourth cumulants (mcsim.laws).
_CUMULANT = ("conditional fourth joint cumulant of one unit's preactivations given layer l-1: "
             "kappa4_W (C_W/n_{l-1})^2 sum_j s_{j;a1} s_{j;a2} s_{j;a3} s_{j;a4} + kappa4_b C_b^2 "
             "(s = sigma(z^(l-1)); kappa4 the standardised fourth cumulants of the weight and bias "
             "laws, 0 for Gaussian ones)")

register_quantity(Quantity(
    name="unit_cumulant_diag",
    description=_CUMULANT + ", diagonal a1 = a2 = a3 = a4 = a, one entry per input a",
    length=lambda cfg: cfg.k,
    unpack=lambda packed, k: packed))

register_quantity(Quantity(
    name="unit_cumulant",
    description=_CUMULANT + ", packed sorted quadruples a1 <= a2 <= a3 <= a4 (lexicographic)",
    length=lambda cfg: n_quads(cfg.k),
    unpack=unpack_quads))


def _unpack_square(packed, k):
    packed = np.asarray(packed)
    return packed.reshape(packed.shape[:-1] + (int(k), int(k)))


# The NTK of layer l, Hhat^(l)_{i1i2;ab} (learning rates lambda_b^(l') for biases and
# lambda_W^(l')/n_{l'-1} for weights of layers l' <= l), of two distinct units 1, 2 of layer l
# drawn from the same previous layers (kernels/ntk_common.py). Filled together, in this order.
_NTK_SETTINGS = ("network.lambda_b", "network.lambda_W")
for _name, _desc, _length, _unpack in (
        ("ntk_11", "NTK Hhat^(l)_{11;ab} of unit 1 of layer l, packed pairs a <= b (lexicographic)",
         lambda cfg: n_pairs(cfg.k), unpack_matrix),
        ("ntk_22", "NTK Hhat^(l)_{22;ab} of a second unit 2 of layer l (same previous layers), "
                   "packed pairs a <= b", lambda cfg: n_pairs(cfg.k), unpack_matrix),
        ("ntk_12", "off-diagonal NTK Hhat^(l)_{12;ab} of units 1 and 2, entry a k + b",
         lambda cfg: cfg.k ** 2, _unpack_square),
        ("ntk_zz", "z^(l)_{1;a} z^(l)_{2;b} of units 1 and 2 (those of ntk_12), entry a k + b",
         lambda cfg: cfg.k ** 2, _unpack_square)):
    register_quantity(Quantity(name=_name, description=_desc, length=_length, unpack=_unpack,
                               settings=_NTK_SETTINGS, needs_derivative=True))


@dataclass(frozen=True)
class Layout:
    """Where each quantity sits in a packed per-network vector, and which moment order the
    accumulator keeps for it.

    names, lengths: the quantities in order, concatenated (offsets follow).
    orders: per quantity, 2 (mean and covariance with every other quantity) or 3 (also the
        third central moments among the order-3 quantities' entries).
    The third moments run over ``triples``: sorted column triples (p <= q <= r, lexicographic)
    of the order-3 columns, as indices into the whole vector.
    """
    names: tuple[str, ...]
    lengths: tuple[int, ...]
    orders: tuple[int, ...]
    offsets: tuple[int, ...] = field(init=False)

    def __post_init__(self):
        if not (len(self.names) == len(self.lengths) == len(self.orders)):
            raise ValueError("layout: names, lengths and orders differ in length")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"layout: a quantity appears twice in {self.names}")
        offsets, o = [], 0
        for n in self.lengths:
            offsets.append(o)
            o += int(n)
        object.__setattr__(self, "offsets", tuple(offsets))

    @classmethod
    def build(cls, cfg, orders: dict[str, int]) -> "Layout":
        """The layout of the quantities in ``orders`` (name -> moment order), in registry
        order."""
        names = tuple(n for n in QUANTITIES if n in orders)
        unknown = set(orders) - set(names)
        if unknown:
            raise KeyError(f"unknown quantities {sorted(unknown)}")
        return cls(names, tuple(int(QUANTITIES[n].length(cfg)) for n in names),
                   tuple(max(2, int(orders[n])) for n in names))

    @property
    def width(self) -> int:
        """M: the total packed length."""
        return sum(self.lengths)

    @property
    def order(self) -> int:
        return max(self.orders, default=2)

    def slice(self, name: str) -> slice:
        i = self.index(name)
        return slice(self.offsets[i], self.offsets[i] + self.lengths[i])

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"quantity {name!r} is not accumulated (layout: {', '.join(self.names)})") from None

    def third_columns(self) -> np.ndarray:
        cols = [np.arange(o, o + n) for o, n, r in zip(self.offsets, self.lengths, self.orders) if r >= 3]
        return np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, dtype=np.int64)

    def triples(self) -> np.ndarray:
        """(T, 3) int64 column triples of the third moments (T = 0 without order-3 entries)."""
        cols = self.third_columns()
        if not cols.size:
            return np.zeros((0, 3), dtype=np.int64)
        return cols[triples_table(cols.size)]

    @property
    def n_triples(self) -> int:
        return n_triples(self.third_columns().size)

    def triples_of(self, name: str) -> np.ndarray:
        """Indices into the third-moment axis of the triples within quantity ``name`` (in the
        lexicographic order of that quantity's own triples)."""
        s = self.slice(name)
        t = self.triples()
        inside = np.all((t >= s.start) & (t < s.stop), axis=1)
        if self.orders[self.index(name)] < 3:
            raise KeyError(f"third moments of {name!r} are not accumulated")
        return np.flatnonzero(inside)

    def to_attrs(self) -> dict:
        """HDF5 attributes of ``/accumulator`` describing the layout."""
        return {"quantities": np.array(self.names, dtype=object), "offsets": np.array(self.offsets, dtype=np.int64),
                "lengths": np.array(self.lengths, dtype=np.int64), "orders": np.array(self.orders, dtype=np.int64)}

    def difference(self, other: "Layout") -> str | None:
        """None if equal, else a sentence naming the first difference."""
        if self.names != other.names:
            return f"quantities {list(self.names)} vs {list(other.names)}"
        for n, a, b in zip(self.names, self.lengths, other.lengths):
            if a != b:
                return f"length of {n!r}: {a} vs {b}"
        for n, a, b in zip(self.names, self.orders, other.orders):
            if a != b:
                return f"moment order of {n!r}: {a} vs {b}"
        return None
