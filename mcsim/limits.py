"""Size limits shared by the configuration, the run and the reader (no other mcsim imports).

    memory_limit()       bytes a process may use: --max-memory, else MCSIM_MAX_MEMORY ("64G"),
                         else 80 % of this machine's physical memory
    parse_size("64G")    -> bytes;  format_size(bytes) -> "64 GiB"
"""
from __future__ import annotations

import os
import re

from .errors import ConfigError

__all__ = ["parse_size", "format_size", "physical_memory", "memory_limit"]


def parse_size(text) -> int:
    """'64G', '500M', '1.5T', '123456' (bytes) -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtTpP]?)i?[bB]?\s*", str(text))
    if not m:
        raise ConfigError(f"not a size: {text!r} (e.g. 64G, 500M)")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def format_size(n: float) -> str:
    for unit, scale in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} bytes"


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit(override=None) -> tuple[int | None, str]:
    """(bytes, where the limit comes from)."""
    if override:
        return parse_size(override), "--max-memory"
    env = os.environ.get("MCSIM_MAX_MEMORY")
    if env:
        return parse_size(env), "MCSIM_MAX_MEMORY"
    phys = physical_memory()
    return (int(0.8 * phys), "80% of this machine's memory") if phys else (None, "")
