"""Sampler backends: one object per sampler, the same interface, chosen by name.

    sampler = make_sampler(cfg, layout_names)        # the backend named by ensemble.sampler
    buffer_layout = sampler.layout                   # quantities it fills, in buffer order
    sampler.sample(first_block, n_blocks, out)       # out: (n_blocks, block_size, L-1, width)

A backend is a subclass of `Sampler` registered with ``@register_sampler`` in a module of its
own (``markov.py``, ``dense.py``); a new backend (a GPU sampler, say) is one new file plus its
import below. Backends import their Numba kernels lazily, so reading the registry (config
validation, ``--help``) stays cheap.
"""
from .base import SAMPLERS, Sampler, get_sampler, make_sampler, register_sampler
from . import markov, dense  # noqa: F401,E402  (registration)

__all__ = ["SAMPLERS", "Sampler", "get_sampler", "make_sampler", "register_sampler"]
