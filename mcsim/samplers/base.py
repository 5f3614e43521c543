"""The sampler interface and registry (see ``mcsim.samplers``)."""
from __future__ import annotations

import numpy as np

from ..stats.quantities import Layout, get_quantity

__all__ = ["Sampler", "SAMPLERS", "AUTO", "register_sampler", "get_sampler", "make_sampler",
           "choose_sampler"]

#: the ``ensemble.sampler`` value that lets mcsim pick the backend (``choose_sampler``)
AUTO = "auto"


class Sampler:
    """Fills per-network quantities for consecutive blocks of networks.

    Subclasses set ``name``, ``weights`` / ``biases`` (the laws they sample exactly), ``description``
    and implement ``fills(cfg)`` (the quantities they can fill for a configuration, in buffer
    order) and ``sample``. The buffer has shape ``(n_blocks, block_size, L - 1, width)``:
    axis 2 is the stochastic layer s (layer l = s + 2), axis 3 the concatenated quantities
    of ``layout``. Random numbers depend only on (seed, block, network in block, position):
    never on ranks, threads or how blocks are grouped into calls.
    """
    name = ""
    description = ""
    weights: tuple[str, ...] = ("gaussian",)
    biases: tuple[str, ...] = ("gaussian",)     # bias laws it samples exactly
    #: rank among the backends ``sampler = "auto"`` may pick (highest first); None: never
    auto_priority: int | None = None
    #: version of this backend's numbers, recorded in every file (root attribute
    #: ``sampler_version``); a backend whose numbers change gets a new version, and its old
    #: kernel stays registered under another name so that older files resume bitwise
    version = 1
    #: a small network this backend applies to (activation, inputs), for warming the cache
    example = {"activation": "relu", "inputs": [[1.0, 0.0], [0.6, 0.8]]}

    @classmethod
    def exact_for(cls, cfg) -> bool:
        """Whether this backend samples the ensemble of ``cfg`` exactly (subclasses that
        apply to some networks only add their conditions)."""
        return cfg.ensemble.weights in cls.weights and cfg.ensemble.biases in cls.biases

    def __init__(self, cfg, quantities):
        self.cfg = cfg
        fills = self.fills(cfg)
        missing = [q for q in quantities if q not in fills]
        if missing:
            raise ValueError(f"sampler {self.name!r} cannot fill {missing} for this configuration "
                             f"(it fills {list(fills)})")
        if cfg.ensemble.weights not in self.weights:
            raise ValueError(f"sampler {self.name!r} samples only {', '.join(self.weights)} weights")
        if getattr(cfg.ensemble, "biases", "gaussian") not in self.biases:
            raise ValueError(f"sampler {self.name!r} samples only {', '.join(self.biases)} biases")
        # the buffer holds the quantities asked for, in the backend's order
        names = tuple(q for q in fills if q in quantities)
        self.layout = Layout(names, tuple(int(get_quantity(q).length(cfg)) for q in names),
                             (2,) * len(names))

    @classmethod
    def fills(cls, cfg) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def width(self) -> int:
        return self.layout.width

    def columns(self, layout: Layout) -> np.ndarray:
        """(M,) int64: for each entry of the accumulator's ``layout``, its index in this
        sampler's buffer."""
        cols = [np.arange(o, o + n) for q in layout.names
                for o, n in [(self.layout.offsets[self.layout.index(q)], self.layout.lengths[self.layout.index(q)])]]
        return np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, dtype=np.int64)

    def sample(self, first_block: int, n_blocks: int, out: np.ndarray) -> None:
        raise NotImplementedError


SAMPLERS: dict[str, type[Sampler]] = {}


def register_sampler(cls: type[Sampler]) -> type[Sampler]:
    if not cls.name:
        raise ValueError("a sampler needs a name")
    SAMPLERS[cls.name] = cls
    return cls


def get_sampler(name: str) -> type[Sampler]:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise KeyError(f"unknown sampler {name!r}; registered: {', '.join(SAMPLERS)}") from None


def choose_sampler(cfg) -> str:
    """The backend ``sampler = "auto"`` runs for ``cfg``: among the backends with an
    ``auto_priority`` that are exact for it and fill the quantities its statistics need,
    the one of highest priority (the reduced samplers where they apply, else markov for
    Gaussian weights, else dense)."""
    from ..stats.statistics import computed, required_quantities
    needed = required_quantities(computed(cfg.output.statistics))
    able = [cls for cls in SAMPLERS.values()
            if cls.auto_priority is not None and cls.exact_for(cfg)
            and all(q in cls.fills(cfg) for q in needed)]
    if not able:
        raise ValueError(f"no sampler applies to {cfg.ensemble.weights} weights with "
                         f"quantities {sorted(needed)}")
    return max(able, key=lambda cls: cls.auto_priority).name


def make_sampler(cfg, quantities) -> Sampler:
    """The backend named by ``cfg.ensemble.sampler``, set up to fill ``quantities``."""
    return get_sampler(cfg.ensemble.sampler)(cfg, tuple(quantities))
