"""The one place that sets Numba's JIT flags for mcsim's kernels.

Every ``@njit`` function in ``mcsim.kernels`` is decorated with one of

- ``kernel``          serial ``njit``: cached, ``nogil``, the fast-math flags below;
- ``parallel_kernel`` the same with ``parallel=True`` (for ``numba.prange`` loops);
- ``inline``          small scalar helpers, inlined into their callers at Numba-IR level
                      (``inline='always'``) so that a caller's loop body is one straight-line
                      block that LLVM can vectorise;
- ``ordered``         reductions whose summation order must not depend on the target
                      (``kernels/reduce.py``): the flags below without ``reassoc``, compiled
                      as functions of their own (not Numba-inlined), so that the order
                      survives LLVM inlining them into ``reassoc`` kernels (LLVM's fast-math
                      flags belong to each instruction);
- ``exact``           IEEE arithmetic (``fastmath=False``), for the few steps whose rounding
                      fast-math would let the vector width choose.

Every decorator here passes ``fastmath`` explicitly, ``False`` included: Numba compiles a
function whose decorator leaves ``fastmath`` unset with the fast-math flags of the kernel
that calls it (``Flags.inherit_if_not_set("fastmath")``), so an unset option is not "no
fast-math" (that made ``exact`` a no-op inside kernels until it said ``fastmath=False``).

Fast-math flags (LLVM per-instruction flags, see ``FASTMATH``):

- ``contract`` fuse ``a * b + c`` into FMA: faster and more accurate polynomials;
- ``arcp``     allow ``x / y -> x * (1 / y)``;
- ``reassoc``  allow reassociation, needed to vectorise floating-point reductions;
- ``nsz``      ignore the sign of zero;
- ``afn``      allow approximate ``sqrt`` / libm calls.

Deliberately *not* enabled: ``nnan`` and ``ninf`` (so NaN / inf still propagate and
``np.isnan`` / ``np.isfinite`` checks are not folded away), i.e. not ``fastmath=True``.

``error_model='numpy'``: division by zero gives inf / NaN (integer: 0) instead of raising,
so divisions carry no branch that would block vectorisation.

Caching: Numba keys its on-disk cache of a function on that function's own file only, so a
kernel calling a helper from another file would be loaded stale after the helper changed.
``kernel`` / ``parallel_kernel`` therefore add a digest of all ``mcsim.kernels`` sources to
the cache key (any edit in this package recompiles its cached kernels). Code outside this
package that inlines kernels and caches itself should use these decorators too.
"""

from __future__ import annotations

import hashlib
import pathlib

import numba

try:  # semi-internal but stable since numba 0.49; without it plain cache=True is used
    from numba.core.caching import FunctionCache as _FunctionCache
except ImportError:  # pragma: no cover
    _FunctionCache = None

__all__ = [
    "FASTMATH",
    "kernel",
    "parallel_kernel",
    "inline",
    "exact",
    "ordered",
    "ORDERED_FASTMATH",
    "set_threads",
    "get_threads",
    "threading_layer",
    "sources_digest",
]

#: LLVM fast-math flags used by every kernel (no ``nnan`` / ``ninf``: NaN and inf stay exact).
FASTMATH = frozenset({"contract", "arcp", "afn", "reassoc", "nsz"})

#: flags of ``ordered`` functions: no ``reassoc``, so sums keep the order written
ORDERED_FASTMATH = FASTMATH - {"reassoc"}

_COMMON = dict(fastmath=set(FASTMATH), nogil=True, error_model="numpy")


def sources_digest() -> str:
    """SHA-256 of the source files of ``mcsim.kernels`` (this directory's ``*.py``)."""
    h = hashlib.sha256()
    for path in sorted(pathlib.Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


_DIGEST = sources_digest()

if _FunctionCache is not None:

    class _KernelsCache(_FunctionCache):
        """Numba's on-disk cache with the kernels' sources digest in the index key.

        Numba keys a cached function on its own bytecode and its own file's timestamp only,
        so a caller compiled against an old version of a helper in another file (e.g. a
        sampler inlining ``rng.fill_normals``) would be loaded stale. Adding the digest of
        all kernel sources makes any edit there recompile every kernel that uses this cache.
        """

        def _index_key(self, sig, codegen):
            return super()._index_key(sig, codegen) + (_DIGEST,)


def _decorator(**defaults):
    # Works as @deco, @deco(**options) and @deco(signature(s), **options), like numba.njit.
    def decorate(fn=None, **options):
        options = {**defaults, **options}
        cache = options.pop("cache", False)
        sigs = None if fn is None or callable(fn) else fn

        def wrap(f):
            disp = numba.njit(**options)(f)
            if cache:
                if _FunctionCache is None:  # pragma: no cover
                    disp.enable_caching()
                else:
                    disp._cache = _KernelsCache(disp.py_func)
            if sigs is not None:  # eager compilation, after the cache is in place
                for sig in sigs if isinstance(sigs, (list, tuple)) else [sigs]:
                    disp.compile(sig)
                disp.disable_compile()
            return disp

        return wrap(fn) if callable(fn) else wrap

    return decorate


#: Serial kernel: ``@kernel`` or ``@kernel(**extra numba.njit options)``; cached on disk.
kernel = _decorator(cache=True, **_COMMON)

#: Parallel kernel (``parallel=True``): use ``numba.prange`` for the outer loop; cached.
parallel_kernel = _decorator(cache=True, parallel=True, **_COMMON)

#: Small scalar helper, inlined into the caller's Numba IR (``inline='always'``); it is
#: compiled into each caller, so it needs no cache entry of its own.
inline = _decorator(inline="always", **_COMMON)

#: Fixed-order reduction (``kernels/reduce.py``): not reassociated, not Numba-inlined; it is
#: compiled into each caller (no cache entry of its own), like ``inline``.
ordered = _decorator(fastmath=set(ORDERED_FASTMATH), nogil=True, error_model="numpy")

#: IEEE arithmetic, no fast-math at all: for the few steps where ``afn`` / ``arcp`` would let
#: the vector width choose the rounding (x / sqrt(c / n) becomes x * sqrt(n / c) in a vector
#: loop body and x / sqrt(c * (1 / n)) in its scalar remainder: ``dense._divide_by_root_mean``).
#: ``fastmath=False`` must be said: left unset, Numba would compile the function with the
#: calling kernel's flags (module docstring).
exact = _decorator(fastmath=False, nogil=True, error_model="numpy")


def set_threads(n: int | None) -> int:
    """Set the number of threads used by ``parallel_kernel`` functions.

    ``n=None`` means all threads Numba was started with (``NUMBA_NUM_THREADS``); otherwise
    ``n`` is clipped to ``1..numba.config.NUMBA_NUM_THREADS``. Returns the number set.
    The setting is per calling thread (Numba semantics).
    """
    max_n = numba.config.NUMBA_NUM_THREADS
    n = max_n if n is None else max(1, min(int(n), max_n))
    numba.set_num_threads(n)
    return n


def get_threads() -> int:
    """Number of threads ``parallel_kernel`` functions currently use."""
    return numba.get_num_threads()


def threading_layer() -> str:
    """Name of Numba's threading layer (``'omp'``, ``'tbb'`` or ``'workqueue'``).

    The layer is chosen lazily, at the first parallel launch; this runs a trivial parallel
    kernel first if none ran yet, so the answer is always the layer actually used.
    """
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        _touch_parallel(1)
        return numba.threading_layer()


@numba.njit(parallel=True)
def _touch_parallel(n):
    acc = 0
    for i in numba.prange(n):
        acc += i
    return acc
