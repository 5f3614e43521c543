"""Run configuration: TOML in, validated frozen dataclasses out.

Every bad value raises :class:`ConfigError` whose message starts with the dotted key
(``network.widths: ...``) and says what is allowed. The resolved configuration is
canonical: ``Config.to_dict()`` has explicit per-layer lists and the input matrix, so that
two configurations describing the same ensemble compare equal and can be stored in HDF5.
"""
from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..activations import get_activation, names as activation_names
from ..errors import ConfigError
from ..laws import LAWS, Law, parse_law
from ..samplers import AUTO, SAMPLERS, choose_sampler, get_sampler
from ..stats.statistics import STATISTICS as _STATISTICS
from ..training.config import TRAINING_KEYS, parse_training
from .inputs import resolve_inputs
from .target import Target, parse_target
from .tomlw import dumps as toml_dumps

WEIGHTS = tuple(LAWS)
#: computed in addition to output.statistics when the weights or biases are not Gaussian
Z_STATISTICS = ("z_kurtosis",)
#: the default of output.statistics
DEFAULT_STATISTICS = ("metric", "vertex", "six_point")
DEFAULT_BLOCK_SIZE = 1024
DEFAULT_BINS = 64
DEFAULT_CHECKPOINT_INTERVAL = 10.0

_ALLOWED = {
    "network": {"input_dim", "widths", "width", "depth", "output_dim", "activation", "C_W", "C_b",
                "lambda_b", "lambda_W"},
    "inputs": {"values", "file", "dataset", "generate", "count", "seed", "norm"},
    "ensemble": {"networks", "seed", "sampler", "weights", "biases", "block_size", "jackknife_bins",
                 "first_block", "target"},
    "output": {"path", "statistics", "layers", "checkpoint_interval"},
    "training": TRAINING_KEYS,             # optional: mcsim.training.config
}


@dataclass(frozen=True)
class NetworkConfig:
    input_dim: int
    widths: tuple[int, ...]
    activation: dict            # {"name": ..., **parameters}, as accepted by get_activation
    C_W: tuple[float, ...]      # one per layer, entry l-1 belongs to layer l
    C_b: tuple[float, ...]
    lambda_b: tuple[float, ...] = ()    # NTK learning rates of the biases, one per layer
    lambda_W: tuple[float, ...] = ()    # ... of the weights (times 1/n_{l-1}), one per layer

    def __post_init__(self):
        for name in ("lambda_b", "lambda_W"):       # default: 1.0 for every layer
            if not getattr(self, name):
                object.__setattr__(self, name, (1.0,) * len(self.widths))

    @property
    def depth(self) -> int:
        return len(self.widths)

    def fan_in(self, layer: int) -> int:
        """n_{l-1} for layer l = 1..L."""
        return self.input_dim if layer == 1 else self.widths[layer - 2]


@dataclass(frozen=True)
class EnsembleConfig:
    networks: int
    seed: int
    sampler: str = "markov"     # the backend that runs (never "auto": that is resolved)
    weights: str = "gaussian"
    block_size: int = DEFAULT_BLOCK_SIZE
    jackknife_bins: int = DEFAULT_BINS
    first_block: int = 0        # blocks first_block, first_block+1, ... (split one seed over jobs)
    target: Target | None = None   # stop when this standard error is reached (networks: the cap)
    biases: str = "gaussian"    # law names (mcsim.laws); nu: Student-t degrees of freedom
    weights_nu: int = 0
    biases_nu: int = 0

    @property
    def weight_law(self) -> Law:
        return Law(self.weights, self.weights_nu)

    @property
    def bias_law(self) -> Law:
        return Law(self.biases, self.biases_nu)

    @property
    def gaussian(self) -> bool:
        """Gaussian weights and biases (the statistics of Ghat are those of z)."""
        return self.weights == "gaussian" and self.biases == "gaussian"
    auto: bool = False          # the sampler was chosen by sampler = "auto" (not stored)

    @property
    def blocks(self) -> int:
        """Whole blocks needed for `networks` (the run rounds up to whole blocks)."""
        return -(-self.networks // self.block_size)


@dataclass(frozen=True)
class OutputConfig:
    path: str | None = None
    statistics: tuple[str, ...] = DEFAULT_STATISTICS
    layers: tuple[int, ...] = ()       # recorded layers; () means all
    checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL


@dataclass(frozen=True, eq=False)
class Config:
    network: NetworkConfig
    inputs: np.ndarray                  # (k, n_0), read-only
    ensemble: EnsembleConfig
    output: OutputConfig
    inputs_source: dict = field(default_factory=dict)
    source_path: str | None = None
    training: Any = None                # mcsim.training.config.TrainingConfig or None

    @property
    def k(self) -> int:
        return self.inputs.shape[0]

    @property
    def layers(self) -> tuple[int, ...]:
        """Recorded layers, 1-based, sorted."""
        return self.output.layers or tuple(range(1, self.network.depth + 1))

    @property
    def stochastic_layers(self) -> list[int]:
        """Recorded layers l >= 2 (layer 1 is deterministic and needs no sampling)."""
        return [l for l in self.layers if l >= 2]

    def to_dict(self) -> dict:
        """Canonical nested dict (plain Python types), loadable by `config_from_dict`."""
        net = dataclasses.asdict(self.network)
        for key in ("widths", "C_W", "C_b", "lambda_b", "lambda_W"):
            net[key] = list(net[key])
        out = dataclasses.asdict(self.output)
        out["statistics"], out["layers"] = list(out["statistics"]), list(self.layers)
        if out["path"] is None:
            del out["path"]
        ens = dataclasses.asdict(self.ensemble)
        del ens["auto"]
        ens["target"] = self.ensemble.target.to_dict() if self.ensemble.target else None
        if ens["target"] is None:
            del ens["target"]
        # laws: as written in TOML; Gaussian biases are not written (unchanged configs)
        del ens["weights_nu"], ens["biases_nu"]
        ens["weights"] = self.ensemble.weight_law.spec()
        if self.ensemble.biases == "gaussian":
            del ens["biases"]
        else:
            ens["biases"] = self.ensemble.bias_law.spec()
        return {
            "network": net,
            "inputs": {"values": self.inputs.tolist()},
            "ensemble": ens,
            "output": out,
        } | ({"training": self.training.to_dict()} if self.training is not None else {})

    def to_toml(self) -> str:
        return toml_dumps(self.to_dict())

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def fingerprint(self) -> dict:
        """Everything that changes the statistics or the accumulator layout.

        Two runs can be resumed, extended or merged into one another exactly when their
        fingerprints are equal (the seed is compared separately by `merge`)."""
        d = self.to_dict()
        d["ensemble"] = {k: v for k, v in d["ensemble"].items() if k not in ("networks", "target")}
        d["output"] = {k: d["output"][k] for k in ("statistics", "layers")}
        # statistics computed in every run (metric, kurtosis) change nothing whether listed or not
        d["output"]["statistics"] = [s for s in d["output"]["statistics"] if not _STATISTICS[s].always]
        # settings that only some quantities depend on (the NTK's learning rates) count only
        # when the run accumulates such a quantity
        for key in sorted(_optional_settings() - _used_settings(self.output.statistics)):
            section, name = key.split(".", 1)
            d[section].pop(name, None)
        return d

    def replace(self, *, networks=None, seed=None, sampler=None, path=None, target=None) -> "Config":
        """A copy with the given settings changed (None: unchanged; ``target=False`` removes
        the target)."""
        ens, out = self.ensemble, self.output
        if networks is not None:
            ens = dataclasses.replace(ens, networks=_networks(networks))
        if seed is not None:
            ens = dataclasses.replace(ens, seed=_seed("ensemble.seed", seed))
        if sampler is not None and sampler != AUTO:
            ens = dataclasses.replace(ens, sampler=sampler, auto=False)
            _check_sampler_weights(ens)
        if path is not None:
            out = dataclasses.replace(out, path=str(path))
        if target is False:
            ens = dataclasses.replace(ens, target=None)
        elif target is not None:
            ens = dataclasses.replace(ens, target=_target(target, self.network, out, self.k))
        new = dataclasses.replace(self, ensemble=ens, output=out)
        if sampler == AUTO:
            return _resolve_auto(new)
        return _check_applies(new) if sampler is not None else new


# ---------------------------------------------------------------------------------------
def load_config(path) -> Config:
    """Read and validate a TOML run configuration. Relative input files resolve against
    the config file's folder."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a TOML text file: byte {exc.start} is not UTF-8 "
                          "(TOML files are UTF-8 text)") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return config_from_dict(raw, base_dir=path.parent, source_path=str(path))


def config_from_dict(raw: dict, base_dir=".", source_path=None) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError("config must be a table")
    unknown = set(raw) - set(_ALLOWED)
    if unknown:
        raise ConfigError(f"{sorted(unknown)[0]}: unknown section; allowed: {', '.join(_ALLOWED)}")
    for section, allowed in _ALLOWED.items():
        sec = raw.get(section, {})
        if not isinstance(sec, dict):
            raise ConfigError(f"{section}: must be a table")
        bad = set(sec) - allowed
        if bad:
            raise ConfigError(f"{section}.{sorted(bad)[0]}: unknown key; allowed: {', '.join(sorted(allowed))}")
    if "network" not in raw:
        raise ConfigError("network: section missing")
    network = _network(raw["network"])
    try:
        inputs, source = resolve_inputs(raw.get("inputs", {}), network.input_dim, Path(base_dir))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    ensemble = _ensemble(raw.get("ensemble", {}))
    output = _output(raw.get("output", {}), network.depth)
    _check_derivative(network, output)
    if not ensemble.gaussian:          # report the statistics of z itself (not only of Ghat)
        wanted = set(output.statistics) | set(Z_STATISTICS)
        output = dataclasses.replace(output, statistics=tuple(s for s in _STATISTICS if s in wanted))
    _check_ntk_laws(ensemble, output)
    if "target" in raw.get("ensemble", {}):
        target = _target(raw["ensemble"]["target"], network, output, inputs.shape[0])
        ensemble = dataclasses.replace(ensemble, target=target)
    training = parse_training(raw["training"], network, inputs.shape[0], Path(base_dir)) \
        if "training" in raw else None
    cfg = Config(network, inputs, ensemble, output, source, source_path, training)
    return _resolve_auto(cfg) if ensemble.sampler == AUTO else _check_applies(cfg)


def _check_applies(cfg: Config) -> Config:
    backend = get_sampler(cfg.ensemble.sampler)
    if not backend.exact_for(cfg):
        raise ConfigError(f"ensemble.sampler: {cfg.ensemble.sampler!r} applies only to "
                          f"{getattr(backend, 'applies', 'other networks')}; use \"auto\", "
                          "\"markov\" or \"dense\"")
    _check_fills(cfg, backend)
    return cfg


def _check_fills(cfg: Config, backend) -> None:
    """The backend must fill every quantity the requested statistics need (the dNTK
    statistics, for one, are measured by the dense sampler only: docs/dntk.md)."""
    from ..stats.statistics import computed, get_statistic
    fills = backend.fills(cfg)
    for name in computed(cfg.output.statistics):
        missing = [q for q in get_statistic(name).needs if q not in fills]
        if missing:
            able = [n for n, b in SAMPLERS.items() if all(q in b.fills(cfg) for q in missing)]
            raise ConfigError(f"ensemble.sampler: {cfg.ensemble.sampler!r} cannot measure "
                              f"output.statistics {name!r}; use sampler = "
                              f"{' or '.join(map(repr, able + [AUTO]))}")


def _resolve_auto(cfg: Config) -> Config:
    """``sampler = "auto"``: the backend ``choose_sampler`` picks, marked ``auto`` (a resume
    then keeps the sampler recorded in the file, see ``mcsim.run.driver``)."""
    ens = dataclasses.replace(cfg.ensemble, sampler=AUTO, auto=False)
    try:
        name = choose_sampler(dataclasses.replace(cfg, ensemble=ens))
    except ValueError as exc:
        raise ConfigError(f"ensemble.sampler: {exc}") from None
    return dataclasses.replace(cfg, ensemble=dataclasses.replace(ens, sampler=name, auto=True))


def _target(raw, network: NetworkConfig, output: OutputConfig, k: int) -> Target:
    from ..stats.statistics import computed
    layers = output.layers or tuple(range(1, network.depth + 1))
    return parse_target(raw, k=k, recorded_layers=layers, computed_statistics=computed(output.statistics))


def _network(sec: dict) -> NetworkConfig:
    n0 = _positive_int("network.input_dim", _require(sec, "network", "input_dim"))
    if "widths" in sec:
        for key in ("width", "depth", "output_dim"):
            if key in sec:
                raise ConfigError(f"network.{key}: give either widths or width + depth, not both")
        widths = sec["widths"]
        if not isinstance(widths, list) or not widths:
            raise ConfigError("network.widths: must be a non-empty list of positive integers")
        widths = tuple(_positive_int(f"network.widths[{i}]", w) for i, w in enumerate(widths))
    elif "width" in sec or "depth" in sec:
        width = _positive_int("network.width", _require(sec, "network", "width"))
        depth = _positive_int("network.depth", _require(sec, "network", "depth"))
        out = _positive_int("network.output_dim", sec.get("output_dim", width))
        widths = (width,) * (depth - 1) + (out,)
    else:
        raise ConfigError("network.widths: missing (give widths = [...] or width + depth)")
    spec = sec.get("activation", "relu")
    try:
        act = get_activation(spec)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"network.activation: {exc}") from None
    # canonical spec: the registry's name plus the parameters the user gave
    activation = {"name": act.name}
    if isinstance(spec, dict):
        activation.update({k: v for k, v in spec.items() if k != "name"})
    L = len(widths)
    C_W = _per_layer("network.C_W", sec.get("C_W", 1.0), L, strictly_positive=True)
    C_b = _per_layer("network.C_b", sec.get("C_b", 0.0), L, strictly_positive=False)
    lam_b = _per_layer("network.lambda_b", sec.get("lambda_b", 1.0), L, strictly_positive=False,
                       what="it is a learning rate")
    lam_W = _per_layer("network.lambda_W", sec.get("lambda_W", 1.0), L, strictly_positive=False,
                       what="it is a learning rate")
    return NetworkConfig(n0, widths, activation, C_W, C_b, lam_b, lam_W)


def _optional_settings() -> set[str]:
    from ..stats.quantities import QUANTITIES
    return {key for q in QUANTITIES.values() for key in q.settings}


def _used_settings(statistics) -> set[str]:
    from ..stats.quantities import get_quantity
    from ..stats.statistics import computed, required_quantities
    return {key for q in required_quantities(computed(statistics)) for key in get_quantity(q).settings}


def _check_ntk_laws(ensemble, output: OutputConfig) -> None:
    """The NTK statistics are measured for Gaussian weights and biases, and not together with
    the z statistics (their kernels do not fill the unit cumulants those need)."""
    ntk = [s for s in output.statistics if s.startswith(("ntk", "dntk"))]
    if not ntk:
        return
    if not ensemble.gaussian:
        raise ConfigError(
            f"output.statistics: {ntk[0]!r} is measured for Gaussian weights and biases only "
            f"(ensemble.weights = {ensemble.weight_law}, ensemble.biases = {ensemble.bias_law}); "
            "measure the NTK of a non-Gaussian law in a later version")
    z = [s for s in output.statistics if s.startswith("z_")]
    if z:
        raise ConfigError(f"output.statistics: the NTK statistics and {', '.join(z)} are not "
                          "computed in one run yet; run them separately")


def _check_derivative(network: NetworkConfig, output: OutputConfig) -> None:
    """Statistics of quantities that backpropagate need sigma' without delta functions."""
    from ..stats.quantities import get_quantity
    from ..stats.statistics import get_statistic
    act = get_activation(network.activation)
    if not act.kinks:
        return
    for name in output.statistics:
        if any(get_quantity(q).needs_derivative for q in get_statistic(name).needs):
            if act.jumps:
                raise ConfigError(
                    f"output.statistics: {name!r} needs the derivative of the activation, but "
                    f"network.activation = {act.name!r} jumps (its derivative is a delta "
                    "function, the NTK is infinite); use a continuous activation")


#: counts are float64 in the accumulator: exact below 2**53
MAX_NETWORKS = 2**53
#: jackknife bins (each holds a full moment state)
MAX_BINS = 2**16


def _networks(value) -> int:
    n = _positive_int("ensemble.networks", value)
    if n > MAX_NETWORKS:
        raise ConfigError(f"ensemble.networks: at most 2**53 = {MAX_NETWORKS:,} (counts are exact "
                          f"float64 only below that), got {n:.3g}")
    return n


def _ensemble(sec: dict) -> EnsembleConfig:
    networks = _networks(sec.get("networks", 100_000))
    seed = _seed("ensemble.seed", sec.get("seed", 0))
    sampler = sec.get("sampler", AUTO)
    if not isinstance(sampler, str) or (sampler not in SAMPLERS and sampler != AUTO):
        raise ConfigError(f"ensemble.sampler: {sampler!r} is not allowed; allowed: "
                          f"{', '.join((AUTO,) + tuple(SAMPLERS))}")
    laws = {}
    for key in ("weights", "biases"):
        try:
            laws[key] = parse_law(sec.get(key, "gaussian"))
        except ValueError as exc:
            raise ConfigError(f"ensemble.{key}: {exc}") from None
    block_size = _positive_int("ensemble.block_size", sec.get("block_size", DEFAULT_BLOCK_SIZE))
    if block_size > 2**31:       # the network index within a block is one 32-bit counter word
        raise ConfigError(f"ensemble.block_size: at most 2**31 networks per block, got {block_size}")
    bins = _positive_int("ensemble.jackknife_bins", sec.get("jackknife_bins", DEFAULT_BINS))
    if bins < 2:
        raise ConfigError("ensemble.jackknife_bins: must be at least 2 (error bars need two groups)")
    if bins > MAX_BINS:
        raise ConfigError(f"ensemble.jackknife_bins: at most {MAX_BINS:,} (each bin keeps a full "
                          f"moment state; 32 to 256 are plenty), got {bins:,}")
    first_block = sec.get("first_block", 0)
    if isinstance(first_block, bool) or not isinstance(first_block, int) or not 0 <= first_block < 2**40:
        raise ConfigError(f"ensemble.first_block: must be an integer in [0, 2**40), got {first_block!r}")
    ens = EnsembleConfig(networks, seed, sampler, laws["weights"].name, block_size, bins, first_block,
                         biases=laws["biases"].name, weights_nu=laws["weights"].nu,
                         biases_nu=laws["biases"].nu)
    if sampler != AUTO:
        _check_sampler_weights(ens)
    return ens


def _check_sampler_weights(ens: EnsembleConfig) -> None:
    if ens.sampler not in SAMPLERS:
        raise ConfigError(f"ensemble.sampler: {ens.sampler!r} is not allowed; allowed: {', '.join(SAMPLERS)}")
    backend = get_sampler(ens.sampler)
    if ens.weights not in backend.weights:
        able = [name for name, cls in SAMPLERS.items() if ens.weights in cls.weights]
        raise ConfigError(
            f"ensemble.weights: {ens.weights!r} needs sampler = {' or '.join(map(repr, able))}; the "
            f"{ens.sampler} sampler is exact only for {', '.join(backend.weights)} weights")
    if ens.biases not in backend.biases:
        able = [name for name, cls in SAMPLERS.items() if ens.biases in cls.biases]
        raise ConfigError(
            f"ensemble.biases: {ens.biases!r} needs sampler = {' or '.join(map(repr, able))}; the "
            f"{ens.sampler} sampler is exact only for {', '.join(backend.biases)} biases")


def _output(sec: dict, depth: int) -> OutputConfig:
    path = sec.get("path")
    if path is not None and (not isinstance(path, str) or not path):
        raise ConfigError("output.path: must be a non-empty string")
    stats = sec.get("statistics", list(DEFAULT_STATISTICS))
    allowed = ", ".join(_STATISTICS)
    if not isinstance(stats, list) or not stats:
        raise ConfigError(f"output.statistics: must be a non-empty list from {allowed}")
    for s in stats:
        if not isinstance(s, str) or s not in _STATISTICS:
            raise ConfigError(f"output.statistics: {s!r} is not allowed; allowed: {allowed}")
    stats = tuple(s for s in _STATISTICS if s in stats)          # canonical (registry) order
    layers = sec.get("layers", "all")
    if layers == "all":
        layers = ()
    elif isinstance(layers, list) and layers:
        layers = tuple(sorted({_positive_int("output.layers", v) for v in layers}))
        if layers[-1] > depth:
            raise ConfigError(f"output.layers: layer {layers[-1]} does not exist; layers are 1..{depth}")
    else:
        raise ConfigError(f"output.layers: must be \"all\" or a list of layer numbers 1..{depth}")
    interval = sec.get("checkpoint_interval", DEFAULT_CHECKPOINT_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0 \
            or not math.isfinite(interval):
        raise ConfigError("output.checkpoint_interval: must be a positive number of seconds")
    return OutputConfig(path, stats, layers, float(interval))


# ---------------------------------------------------------------------------------------
def _require(sec: dict, section: str, key: str) -> Any:
    if key not in sec:
        raise ConfigError(f"{section}.{key}: missing")
    return sec[key]


def _positive_int(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{key}: must be a positive integer, got {value!r}")
    return int(value)


def _seed(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 2**63:
        raise ConfigError(f"{key}: must be an integer in [0, 2**63), got {value!r}")
    return int(value)


def _per_layer(key: str, value, depth: int, strictly_positive: bool,
               what: str = "it is a variance") -> tuple[float, ...]:
    values = value if isinstance(value, list) else [value] * depth
    if len(values) != depth:
        raise ConfigError(f"{key}: needs one value per layer ({depth}), got {len(values)}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{key}: must be a finite number or a list of them, got {v!r}")
        if v < 0 or (strictly_positive and v == 0):
            bound = "> 0" if strictly_positive else ">= 0"
            raise ConfigError(f"{key}: must be {bound} ({what}), got {v!r}")
        out.append(float(v))
    return tuple(out)


__all__ = ["Config", "ConfigError", "load_config", "config_from_dict", "activation_names"]
