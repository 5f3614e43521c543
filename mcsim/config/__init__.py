"""What an ensemble is: the run configuration (TOML in, validated frozen dataclasses out),
its inputs, and the TOML writer used to store it.

    schema    Config, NetworkConfig, EnsembleConfig, OutputConfig; load_config, config_from_dict
    inputs    explicit / file / generated inputs
    tomlw     a small TOML writer (the resolved config is stored as TOML in every file)
"""
from ..errors import ConfigError
from .schema import (Config, EnsembleConfig, NetworkConfig, OutputConfig, activation_names,
                     config_from_dict, load_config)

__all__ = ["Config", "ConfigError", "NetworkConfig", "EnsembleConfig", "OutputConfig",
           "load_config", "config_from_dict", "activation_names"]
