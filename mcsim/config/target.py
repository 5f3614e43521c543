"""`ensemble.target`: run until one statistic reaches a standard error (``networks`` is the cap).

    [ensemble]
    networks = 100_000_000        # the cap
    target = { statistic = "vertex", layer = 10, relative_stderr = 0.01 }
    # optional: entry = "V[(12)(12)]" (one entry, by its label); stderr = 1e-4 (absolute)

The target is met when the jackknife standard error of the chosen entries, divided by their
magnitude for ``relative_stderr``, is at most the value given, for every chosen entry. By
default the entries are the diagonal ones (all indices equal: ``V[(11)(11)]``,
``V[(22)(22)]``, ...) for ``relative_stderr`` (off-diagonal entries may vanish) and every
distinct entry for ``stderr``. ``layer`` defaults to the last recorded layer. The driver
checks the target at checkpoints (``mcsim.run.target``); what stopping on the error does to
the estimate is explained there.

The target is not part of the ensemble's identity (like ``networks``): a run may be resumed
or extended with another target.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Target", "parse_target", "parse_target_text"]

_KEYS = ("statistic", "layer", "relative_stderr", "stderr", "entry")


@dataclass(frozen=True)
class Target:
    statistic: str
    layer: int
    relative_stderr: float | None = None
    stderr: float | None = None
    entry: str | None = None          # one entry's label; None: see the module docstring

    @property
    def relative(self) -> bool:
        return self.relative_stderr is not None

    @property
    def value(self) -> float:
        return self.relative_stderr if self.relative else self.stderr

    def to_dict(self) -> dict:
        d = {"statistic": self.statistic, "layer": self.layer}
        d["relative_stderr" if self.relative else "stderr"] = self.value
        if self.entry:
            d["entry"] = self.entry
        return d

    def describe(self) -> str:
        what = f"relative standard error <= {self.value:g}" if self.relative else \
            f"standard error <= {self.value:g}"
        entries = self.entry or ("the diagonal entries" if self.relative else "every entry")
        return f"{self.statistic} at layer {self.layer} ({entries}): {what}"


def parse_target(raw, *, k: int, recorded_layers, computed_statistics, key="ensemble.target") -> Target:
    """Validate a target table against the run's inputs, recorded layers and statistics."""
    from ..stats.statistics import STATISTICS
    if isinstance(raw, Target):
        raw = raw.to_dict()
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: must be a table like {{ statistic = \"vertex\", layer = 10, "
                          "relative_stderr = 0.01 }")
    bad = sorted(set(raw) - set(_KEYS))
    if bad:
        raise ConfigError(f"{key}.{bad[0]}: unknown key; allowed: {', '.join(_KEYS)}")
    stat = raw.get("statistic")
    if stat not in STATISTICS:
        raise ConfigError(f"{key}.statistic: {stat!r} is not a statistic; allowed: {', '.join(STATISTICS)}")
    if stat not in computed_statistics:
        raise ConfigError(f"{key}.statistic: {stat!r} is not computed by this run; add it to "
                          "output.statistics")
    stochastic = [l for l in recorded_layers if l >= 2]
    if not stochastic:
        raise ConfigError(f"{key}: the run records no sampled layer (layer 1 is exact)")
    layer = raw.get("layer", stochastic[-1])
    if isinstance(layer, bool) or not isinstance(layer, int) or layer not in stochastic:
        raise ConfigError(f"{key}.layer: must be a recorded layer >= 2 (layer 1 is exact); "
                          f"recorded: {', '.join(map(str, stochastic))}; got {layer!r}")
    given = [name for name in ("relative_stderr", "stderr") if name in raw]
    if len(given) != 1:
        raise ConfigError(f"{key}: give exactly one of relative_stderr and stderr")
    value = raw[given[0]]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ConfigError(f"{key}.{given[0]}: must be a positive number, got {value!r}")
    entry = raw.get("entry")
    if entry is not None:
        s = STATISTICS[stat]
        labels = [s.label(idx) for idx in s.distinct(k)]
        if entry not in labels:
            shown = ", ".join(labels[:8]) + (" ..." if len(labels) > 8 else "")
            raise ConfigError(f"{key}.entry: {entry!r} is not an entry of {stat} with {k} inputs; "
                              f"entries: {shown}")
    return Target(stat, int(layer), float(value) if given[0] == "relative_stderr" else None,
                  float(value) if given[0] == "stderr" else None, entry)


def parse_target_text(text: str) -> dict:
    """A target from the command line: TOML inline-table syntax
    (``{ statistic = "vertex", layer = 10, relative_stderr = 0.01 }``) or comma-separated
    ``key=value`` pairs (``statistic=vertex,layer=10,relative_stderr=0.01``)."""
    import tomllib
    text = text.strip()
    if text.startswith("{"):
        try:
            return tomllib.loads(f"t = {text}")["t"]
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--target: not a TOML inline table: {exc}") from None
    out: dict = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"--target: {part!r} is not key=value (e.g. "
                              "statistic=vertex,layer=10,relative_stderr=0.01)")
        name, value = name.strip(), value.strip()
        if name == "layer":
            try:
                out[name] = int(value)
            except ValueError:
                raise ConfigError(f"--target: layer must be an integer, got {value!r}") from None
        elif name in ("relative_stderr", "stderr"):
            try:
                out[name] = float(value)
            except ValueError:
                raise ConfigError(f"--target: {name} must be a number, got {value!r}") from None
        else:
            out[name] = value
    return out
