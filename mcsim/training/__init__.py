"""Trained ensembles: every network trained by full-batch gradient descent (book ch. 10-11).

    config      the [training] section (TrainingConfig, parse_training, learning rates)
    accumulate  training blocks of networks, their mergeable moments, the estimates with
                jackknife errors, the HDF5 group /training
The kernel is ``mcsim.kernels.training``; the infinite-width prediction is
``mcsim.theory.training``.
"""
from .config import TrainingConfig, equivalence_rates, learning_rates, parse_training

__all__ = ["TrainingConfig", "parse_training", "learning_rates", "equivalence_rates"]
