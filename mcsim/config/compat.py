"""Which runs may be resumed, extended or merged into one another.

Two runs are compatible when everything that changes the statistics or the accumulator
layout is equal (`Config.fingerprint`); `merge_key` also lets the seed and the block range
differ. The accumulator layout itself is compared separately (`Layout.difference`).
Settings that only some quantities depend on (the NTK's learning rates ``network.lambda_b``,
``network.lambda_W``) are part of the fingerprint only when the run accumulates such a
quantity (``Quantity.settings``)."""
from __future__ import annotations

from ..errors import ResumeError

__all__ = ["first_difference", "check_compatible", "merge_key", "check_layout"]


def first_difference(a: dict, b: dict, prefix: str = "") -> str | None:
    """Dotted name of the first setting that differs between two nested dicts.

    At the top level the ``output`` section comes first: its statistics decide which other
    settings count (the NTK's learning rates), so a run with other statistics is named as such."""
    keys = sorted(set(a) | set(b))
    if not prefix and "output" in keys:
        keys.remove("output")
        keys.insert(0, "output")
    for key in keys:
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            found = first_difference(va, vb, f"{prefix}{key}.")
            if found:
                return found
        elif va != vb:
            return f"{prefix}{key}"
    return None


def check_compatible(cfg, other, what: str) -> None:
    """Raise ResumeError unless ``other`` (a stored config) describes the same ensemble."""
    diff = first_difference(cfg.fingerprint(), other.fingerprint())
    if diff:
        raise ResumeError(f"{what} was made with a different {diff}; refusing to mix ensembles "
                          "(the file is unchanged; use --force to overwrite it or another --output)")


def check_layout(expected, stored, what: str) -> None:
    """Raise ResumeError if a stored accumulator's layout differs from the expected one."""
    diff = expected.difference(stored)
    if diff:
        raise ResumeError(f"{what} holds an accumulator of another layout ({diff}); refusing to "
                          "mix them (the file is unchanged; use --force to start over)")


def merge_key(cfg) -> dict:
    """The fingerprint without the seed and the block range (which merged runs may differ in)."""
    d = cfg.fingerprint()
    for key in ("seed", "first_block"):
        d["ensemble"].pop(key, None)
    return d
