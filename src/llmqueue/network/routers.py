"""Routing rules: which replica serves a visit addressed to a router.

- ``round_robin``: replicas in turn.
- ``jsq`` (join the shortest queue): fewest requests in the engine (queued or running).
- ``least_tokens``: fewest unprocessed tokens (least outstanding work).
- ``power_of_two``: two distinct replicas drawn at random, the one with fewer requests.
- ``cache_aware``: the replica that holds the longest prefix of the request's blocks in its
  prefix cache, balanced against load, as vLLM's and SGLang's routers do: the score of a
  replica is the prompt tokens its cache would serve (:meth:`KVManager.prefix_match_tokens`)
  minus ``load_weight`` times its unprocessed tokens, the highest wins. With ``load_weight`` 1
  (the default) that is the replica where this request's uncached prompt plus the work already
  queued is least: ``least_tokens`` with a credit for what the cache holds, so a replica holding
  the prefix wins while its queue is shorter than the prefill it saves. A replica without
  prefix caching, or a request without a prefix or block hashes, matches nothing.

Ties go to the replica listed first (power of two: the one drawn first), so a run is
deterministic given the router's random stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..engine.request import Request
from ..sim.engine import SimEngine


class RouterState:
    """A router during one run: its engines, its rule, its turn counter and random stream."""

    def __init__(self, rule: str, engines: Sequence[SimEngine], rng: np.random.Generator, *,
                 load_weight: float = 1.0) -> None:
        self.rule = rule
        self.engines = list(engines)
        self.rng = rng
        self.load_weight = load_weight
        self._turn = 0
        self._choose: Callable[[], SimEngine] | None = {
            "round_robin": self._round_robin, "jsq": self._jsq, "least_tokens": self._least_tokens,
            "power_of_two": self._two, "cache_aware": None}[rule]

    def choose(self, request: Request) -> SimEngine:
        """The replica that serves ``request``."""
        if self._choose is not None:
            return self._choose()
        return self._cache_aware(request)

    def _cache_aware(self, request: Request) -> SimEngine:
        best, best_score = self.engines[0], -float("inf")
        w = self.load_weight
        for e in self.engines:
            kv = e.core.kv
            matched = kv.prefix_match_tokens(request) if kv is not None else 0
            score = matched - w * e.backlog_tokens
            if score > best_score:
                best, best_score = e, score
        return best

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
