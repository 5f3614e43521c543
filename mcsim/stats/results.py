"""Result objects: small dataclasses with `mean`, `stderr` and a readable repr.

A `Result` holds one `LayerEstimates` per recorded layer; a `LayerEstimates` holds one
`Estimate` per statistic, by name: ``res.layer(3)["vertex"]`` or ``res.layer(3).vertex``.
Shapes (k = number of inputs) are those of the statistics registry
(`mcsim.stats.statistics`), e.g.

    metric     (k, k)          G_ab
    vertex     (k, k, k, k)    V_(a1a2)(a3a4)
    six_point  (k,)*6          n^2 kappa_3(Ghat_a1a2, Ghat_a3a4, Ghat_a5a6)
    kurtosis   (k,)            excess kurtosis of z_{i;a}

A registered statistic that was not measured reads as None by attribute (``.six_point``) and
raises KeyError by item.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .statistics import STATISTICS

__all__ = ["Estimate", "LayerEstimates", "Result", "layer_estimates", "build_result"]


@dataclass(frozen=True, eq=False)
class Estimate:
    """An estimated array with its standard error (same shape)."""
    mean: np.ndarray
    stderr: np.ndarray
    name: str = ""

    @property
    def shape(self) -> tuple[int, ...]:
        return self.mean.shape

    def __getitem__(self, index) -> "Estimate":
        return Estimate(np.asarray(self.mean[index]), np.asarray(self.stderr[index]), self.name)

    def __float__(self) -> float:
        return float(self.mean)

    def __repr__(self) -> str:
        label = f"{self.name} " if self.name else ""
        if self.mean.size <= 4:
            vals = ", ".join(f"{m:.6g} +- {s:.2g}" for m, s in zip(self.mean.ravel(), self.stderr.ravel()))
            return f"Estimate({label}{vals})" if self.mean.ndim == 0 else \
                f"Estimate({label}shape={self.mean.shape}: [{vals}])"
        rel = np.nanmax(np.abs(self.stderr)) if self.stderr.size else float("nan")
        return f"Estimate({label}shape={self.mean.shape}, max stderr {rel:.2g})"


@dataclass(frozen=True, eq=False)
class LayerEstimates:
    """The estimates of one layer l, by statistic name."""
    layer: int                      # l = 1..L
    width: int                      # n_l
    fan_in: int                     # n_{l-1}
    stochastic: bool                # False for layer 1 (Ghat^(1) is fixed)
    stats: dict = field(default_factory=dict)     # {name: Estimate}

    def __getitem__(self, name: str) -> Estimate:
        try:
            return self.stats[name]
        except KeyError:
            raise KeyError(f"layer {self.layer} has no {name!r}; it has {', '.join(self.stats)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.stats

    def __getattr__(self, name: str):
        # only called when normal lookup fails: statistics by attribute
        stats = self.__dict__.get("stats", {})
        if name in stats:
            return stats[name]
        if name in STATISTICS:
            return None                 # registered, not measured in this run
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def names(self) -> list[str]:
        return list(self.stats)

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={e!r}" for n, e in self.stats.items() if n in ("metric", "vertex"))
        return (f"LayerEstimates(layer={self.layer}, width={self.width}, fan_in={self.fan_in}, "
                f"{shown}; statistics: {', '.join(self.stats)})")


@dataclass(eq=False)
class Result:
    """Per-layer estimates of one ensemble (from `simulate` or `open_result`)."""
    config: object                  # mcsim.config.Config
    networks: int
    estimates: dict[int, LayerEstimates]
    attrs: dict = field(default_factory=dict)   # run metadata (seed, runtime, versions, ...)
    path: str | None = None
    written: bool = False                       # simulate() wrote `path` in this call
    training: dict = field(default_factory=dict)   # [training] runs: {name: Estimate} (mcsim.training)

    @property
    def layers(self) -> list[int]:
        return sorted(self.estimates)

    @property
    def complete(self) -> bool:
        return bool(self.attrs.get("complete", True))

    def layer(self, l: int) -> LayerEstimates:
        try:
            return self.estimates[l]
        except KeyError:
            raise KeyError(f"layer {l} was not recorded; recorded layers: {self.layers}") from None

    def to_xarray(self):
        """An ``xarray.Dataset``: dims layer, input_a, input_b, ...; ``<stat>`` and
        ``<stat>_stderr`` variables; config and versions as attributes
        (``mcsim.stats.frames``; needs xarray)."""
        from .frames import result_to_xarray
        return result_to_xarray(self)

    def to_pandas(self, entries: str = "distinct", statistics=None):
        """A tidy ``pandas.DataFrame``, one row per layer, statistic and entry (the distinct
        entries, or every index tuple with ``entries="all"``): layer, width, fan_in,
        statistic, entry, input_a.., mean, stderr (``mcsim.stats.frames``; needs pandas)."""
        from .frames import result_to_pandas
        return result_to_pandas(self, entries=entries, statistics=statistics)

    def __repr__(self) -> str:
        where = f", path={self.path!r}" if self.path else ""
        return (f"Result(networks={self.networks}, k={self.config.k}, layers={self.layers}, "
                f"sampler={self.config.ensemble.sampler!r}{where})")


def layer_estimates(layer, width, fan_in, stochastic, stats: dict) -> LayerEstimates:
    """A LayerEstimates from {name: (mean, stderr)}."""
    est = {name: Estimate(np.asarray(m), np.asarray(s), name) for name, (m, s) in stats.items()}
    return LayerEstimates(layer, width, fan_in, stochastic, est)


def build_result(cfg, estimates: dict, attrs: dict, path=None) -> Result:
    """A Result from ``compute_estimates`` output and the run's attributes."""
    net = cfg.network
    layers = {l: layer_estimates(l, net.widths[l - 1], net.fan_in(l), l > 1, stats)
              for l, stats in estimates.items()}
    return Result(cfg, int(attrs.get("networks", 0)), layers, attrs, str(path) if path else None)
