"""Moments, estimators and the registries of quantities and statistics.

    quantities    per-network quantities (what a sampler fills) and their packed `Layout`
    statistics    per-layer statistics: needs, shape, units, estimator, prediction
    indexing      pair / triple tables of packed symmetric tensors
    accumulator   mergeable central-moment states in jackknife bins
    estimators    estimates with delete-one-bin jackknife errors, for any statistic
    results       `Estimate`, `LayerEstimates`, `Result`

Importing this package registers every built-in quantity and statistic.
"""
from . import quantities, statistics  # noqa: F401  (registration)
