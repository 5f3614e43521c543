"""mcsim: Monte Carlo ensembles of randomly initialised MLPs.

    cfg = mcsim.load_config("relu.toml")
    res = mcsim.simulate(cfg)                 # or mcsim.open_result("relu.h5")
    res.to_xarray(), res.to_pandas()          # Dataset (layer, input_a, ...) / tidy table
    res.layer(3).vertex.mean, res.layer(3).vertex.stderr     # (k, k, k, k)
    res.layer(3)["vertex"]                                  # the same, by name

The package, stage by stage (docs/architecture.md):

    config/     what the ensemble is: TOML -> validated Config, inputs
    samplers/   sampler backends (markov, dense) filling per-network quantities
    stats/      the registries of quantities and statistics, moment accumulators,
                jackknife estimators, Result objects
    run/        the driver (blocks, rounds, checkpoints, resume), MPI, signals, progress
    storage/    HDF5 writer and the one reader, merge
    analysis/   mcsim info tables, comparison with the theory, plots
    theory/     the 1/n expansion: kernels, vertices, corrections, criticality
    cluster/    SLURM sweeps and their collection
    cli/        the command line
"""
__version__ = "0.2.0"

_API = {
    "load_config": "config", "Config": "config", "ConfigError": "errors",
    "config_from_dict": "config",
    "simulate": "run.driver", "Interrupted": "errors", "ResumeError": "errors",
    "open_result": "storage.reader", "open_sweep": "storage.reader", "ResultFileError": "errors",
    "Estimate": "stats.results", "LayerEstimates": "stats.results", "Result": "stats.results",
}


def __getattr__(name):
    # lazy: `import mcsim` stays cheap (no Numba/h5py import) for CLI help and tools
    if name in _API:
        import importlib
        return getattr(importlib.import_module(f"mcsim.{_API[name]}"), name)
    raise AttributeError(f"module 'mcsim' has no attribute {name!r}")


__all__ = list(_API)
