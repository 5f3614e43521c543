"""Size checks before anything is allocated (filled in below)."""
from __future__ import annotations


def check_run_size(cfg, output=None) -> None:
    """Refuse a run whose memory or output file would exceed the limits."""
    return None
