"""Sampler backends: one object per sampler, the same interface, chosen by name.

    sampler = make_sampler(cfg, layout_names)        # the backend named by ensemble.sampler
    buffer_layout = sampler.layout                   # quantities it fills, in buffer order
    sampler.sample(first_block, n_blocks, out)       # out: (n_blocks, block_size, L-1, width)

A backend is a subclass of `Sampler` registered with ``@register_sampler`` in a module of its
own (``markov.py``, ``dense.py``, ``reduced.py``); a new backend (a GPU sampler, say) is one new file plus its
import below.
``sampler = "auto"`` (the default of new configurations) runs ``choose_sampler(cfg)``: the
exact reduced samplers (``chi2``, ``wishart``) where they apply, else markov, else dense. Backends import their Numba kernels lazily, so reading the registry (config
validation, ``--help``) stays cheap.
"""
from .base import AUTO, SAMPLERS, Sampler, choose_sampler, get_sampler, make_sampler, register_sampler
from . import markov, dense, reduced  # noqa: F401,E402  (registration)

__all__ = ["AUTO", "SAMPLERS", "Sampler", "choose_sampler", "get_sampler", "make_sampler",
           "register_sampler"]
