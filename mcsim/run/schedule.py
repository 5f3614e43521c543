"""How many blocks each rank samples in the next round, from the speeds measured so far.

The root merges blocks in block order whatever the shares are, so the shares change only
the time a run takes, never its numbers. A round is balanced when every rank finishes at the
same moment: rank r gets about ``rate_r * round_seconds`` blocks, where ``rate_r`` (blocks
per second) is what it achieved in the last round. That covers nodes of different speed
(AVX2 next to AVX-512 nodes), ranks that share a core and stragglers that appear mid-run
(they get less from the next round on). Shares grow at most 4x per round (the first rounds
measure the speed with one block each) and are never below one block, so a slow rank keeps
being measured.

The root also keeps, per rank, the blocks it sampled and its busy time this session
(`RankTimes`): ``session_rank_efficiency`` = sum of busy time / (ranks x wall time of the
rounds) is the share of the allocation's capacity that went into sampling.
"""
from __future__ import annotations

import math
import os

__all__ = ["next_shares", "RankTimes", "simulated_slowdown"]

GROWTH = 4                  # at most this factor between consecutive shares of a rank


def next_shares(shares, done, round_seconds: float) -> list[int]:
    """Shares of the next round. shares: this round's (one int per rank); done: per rank
    (blocks sampled, seconds taken) this round, in rank order."""
    out = []
    for share, (n, seconds) in zip(shares, done):
        if n <= 0:                      # nothing left for this rank at the end of the run
            out.append(share)
            continue
        rate = n / max(seconds, 1e-6)
        out.append(int(min(GROWTH * share, max(1, math.floor(rate * round_seconds)))))
    return out


class RankTimes:
    """Per rank: blocks sampled and busy seconds this session; wall time of the rounds."""

    def __init__(self, size: int):
        self.blocks = [0] * size
        self.busy = [0.0] * size
        self.wall = 0.0

    def record(self, done, round_wall: float) -> None:
        for r, (n, seconds) in enumerate(done):
            self.blocks[r] += int(n)
            self.busy[r] += float(seconds)
        self.wall += round_wall

    @property
    def efficiency(self) -> float:
        size = len(self.busy)
        return sum(self.busy) / (size * self.wall) if self.wall > 0 else float("nan")

    def attrs(self) -> dict:
        return {"session_rank_blocks": list(self.blocks),
                "session_rank_seconds": [round(s, 6) for s in self.busy],
                "session_rank_efficiency": self.efficiency}


def simulated_slowdown(rank: int) -> float:
    """Test-only: ``MCSIM_TEST_SLOW_RANK="RANK:FACTOR"`` makes that rank take FACTOR times as
    long per block (it sleeps after sampling), to stand for a slower node. 1.0 otherwise."""
    spec = os.environ.get("MCSIM_TEST_SLOW_RANK", "")
    if not spec:
        return 1.0
    try:
        r, factor = spec.split(":")
        return max(1.0, float(factor)) if int(r) == rank else 1.0
    except ValueError:
        return 1.0
