"""Routing rules: which replica serves a visit addressed to a router.

- ``round_robin``: replicas in turn.
- ``jsq`` (join the shortest queue): fewest requests in the engine (queued or running).
- ``least_tokens``: fewest unprocessed tokens (least outstanding work).
- ``power_of_two``: two distinct replicas drawn at random, the one with fewer requests.

Ties go to the replica listed first (power of two: the one drawn first), so a run is
deterministic given the router's random stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..sim.engine import SimEngine


class RouterState:
    """A router during one run: its engines, its rule, its turn counter and random stream."""

    def __init__(self, rule: str, engines: Sequence[SimEngine], rng: np.random.Generator) -> None:
        self.rule = rule
        self.engines = list(engines)
        self.rng = rng
        self._turn = 0
        self.choose = {"round_robin": self._round_robin, "jsq": self._jsq,
                       "least_tokens": self._least_tokens, "power_of_two": self._two}[rule]

    def _round_robin(self) -> SimEngine:
        e = self.engines[self._turn]
        self._turn = (self._turn + 1) % len(self.engines)
        return e

    def _jsq(self) -> SimEngine:
        return min(self.engines, key=lambda e: e.num_in_system)

    def _least_tokens(self) -> SimEngine:
        return min(self.engines, key=lambda e: e.backlog_tokens)

    def _two(self) -> SimEngine:
        i, j = self.rng.choice(len(self.engines), 2, replace=False)
        a, b = self.engines[int(i)], self.engines[int(j)]
        return b if b.num_in_system < a.num_in_system else a
