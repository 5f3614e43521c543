"""mcsim: Monte Carlo ensembles of randomly initialised MLPs.

    cfg = mcsim.load_config("relu.toml")
    res = mcsim.simulate(cfg)                 # or mcsim.open_result("relu.h5")
    res.layer(3).vertex.mean, res.layer(3).vertex.stderr     # (k, k, k, k)
"""
__version__ = "0.1.0"


def __getattr__(name):
    # lazy: `import mcsim` stays cheap (no Numba/h5py import) for CLI help and tools
    if name in ("load_config", "Config", "ConfigError", "config_from_dict"):
        from . import config
        return getattr(config, name)
    if name in ("simulate", "Interrupted", "ResumeError"):
        from . import driver
        return getattr(driver, name)
    if name in ("open_result", "ResultFileError"):
        from . import hdf5io
        return getattr(hdf5io, name)
    if name in ("Estimate", "LayerEstimates", "Result"):
        from . import results
        return getattr(results, name)
    raise AttributeError(f"module 'mcsim' has no attribute {name!r}")


__all__ = ["load_config", "simulate", "open_result", "Config", "ConfigError", "Result",
           "Estimate", "LayerEstimates", "Interrupted", "ResumeError", "ResultFileError"]
