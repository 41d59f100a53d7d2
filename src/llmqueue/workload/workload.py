"""A workload: the stream of requests one simulation run sees, reproducible from a seed.

Either generated (an arrival process plus prompt and decode length distributions, stopped after
``num_requests`` requests or at ``duration_s``) or a replayed trace, in both cases preceded by
``initial`` requests present at time 0 (the paper's Fig. 8 A, B, C). Randomness: one
SeedSequence per run and three child streams (arrivals, prompt lengths, decode lengths), each a
PCG64 generator, so that changing one distribution does not change the other streams.
An optional shared prefix (``prefix``) draws each generated request's prefix group from a fourth
child stream, so adding it leaves arrivals and lengths exactly as they were.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import islice

import numpy as np

from ..engine.request import Request
from .arrivals import CHUNK, ArrivalProcess
from .lengths import LengthDistribution, _count


def child_generators(seed: int | np.random.SeedSequence, n: int = 3) -> list[np.random.Generator]:
    """The generators of children 0..n-1 of ``seed`` (like ``ss.spawn(n)`` on a fresh SeedSequence,
    but without advancing the caller's SeedSequence, so the same object always gives the same)."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        ss.entropy, spawn_key=(*ss.spawn_key, i), pool_size=ss.pool_size))) for i in range(n)]


def _lengths(dist: LengthDistribution, rng: np.random.Generator) -> Iterator[int]:
    while True:
        yield from dist.sample(rng, CHUNK).tolist()


def _groups(n: int, rng: np.random.Generator) -> Iterator[int]:
    while True:
        yield from rng.integers(0, n, size=CHUNK).tolist()


@dataclass(frozen=True)
class SharedPrefix:
    """Shared prompt prefixes (system prompts): ``groups`` prefixes of ``tokens`` tokens each.

    Every generated request draws a group g uniformly and gets ``prefix_id = f"p{g}"`` and
    ``prefix_tokens = min(tokens, its prompt)``; the KV engine with prefix caching reuses it."""

    groups: int
    tokens: int

    def __post_init__(self) -> None:
        for name in ("groups", "tokens"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 1):
                raise ValueError(f"prefix.{name} must be an integer >= 1, got {v!r}")


@dataclass(frozen=True)
class Workload:
    """Requests for one run. See the module docstring; ``trace`` overrides arrival and lengths.

    ``initial`` holds ``(prompt_tokens, decode_tokens)`` or ``(prompt_tokens, decode_tokens,
    label)`` tuples (stored as 3-tuples, label None if not given): they get ids 0.. and arrival
    time 0.0, and are not counted in ``num_requests``. Generated requests get class
    ``job_class``; replayed ones keep their ``job_class`` and ``label`` but are renumbered after
    the initial ones. ``num_requests`` and ``duration_s`` (arrivals after it are dropped) also
    truncate a replayed trace. ``prefix`` (a :class:`SharedPrefix`, generated workloads only)
    gives the generated requests shared prompt prefixes; a trace carries its own
    ``prefix_id,prefix_tokens`` columns instead.
    """

    arrival: ArrivalProcess | None = None
    prompt_tokens: LengthDistribution | None = None
    decode_tokens: LengthDistribution | None = None
    trace: tuple[Request, ...] | None = None
    initial: tuple[tuple, ...] = ()
    num_requests: int | None = None
    duration_s: float | None = None
    job_class: str = "default"
    prefix: SharedPrefix | None = None

    def __post_init__(self) -> None:
        initial = []
        for i, r in enumerate(self.initial):
            r = tuple(r)
            if len(r) not in (2, 3):
                raise ValueError(f"initial request {i}: expected (prompt_tokens, decode_tokens[, label]), "
                                 f"got {r!r}")
            r = (_count(f"initial request {i} prompt_tokens", r[0]),
                 _count(f"initial request {i} decode_tokens", r[1]), r[2] if len(r) == 3 else None)
            Request(i, 0.0, r[0], r[1], self.job_class, r[2])  # validates: at least one token
            initial.append(r)
        object.__setattr__(self, "initial", tuple(initial))
        if self.num_requests is not None and not (isinstance(self.num_requests, (int, np.integer))
                                                  and self.num_requests >= 0):
            raise ValueError(f"num_requests must be an integer >= 0 (or None), got {self.num_requests!r}")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s >= 0):
            raise ValueError(f"duration_s must be a finite number of seconds >= 0 (or None), "
                             f"got {self.duration_s!r}")
        if self.prefix is not None and not isinstance(self.prefix, SharedPrefix):
            raise TypeError(f"prefix must be a SharedPrefix(groups, tokens), got {type(self.prefix).__name__}")
        if self.prefix is not None and self.arrival is None:
            raise ValueError("prefix applies to generated requests (an arrival process); a trace gives "
                             "prefixes in its prefix_id,prefix_tokens columns")
        if self.trace is not None:
            trace = tuple(self.trace)
            for a, b in zip(trace, trace[1:]):
                if b.arrival_time < a.arrival_time:
                    raise ValueError(f"trace is not sorted by arrival time: request {b.request_id} "
                                     f"({b.arrival_time} s) comes after {a.request_id} ({a.arrival_time} s)")
            object.__setattr__(self, "trace", trace)
        elif self.arrival is not None:
            if self.prompt_tokens is None or self.decode_tokens is None:
                raise ValueError("a workload with an arrival process needs prompt_tokens and decode_tokens "
                                 "length distributions")
            if self.num_requests is None and self.duration_s is None:
                raise ValueError("a generated workload never ends: give num_requests or duration_s (or both)")
            if self.prompt_tokens.min_value + self.decode_tokens.min_value < 1:
                raise ValueError("prompt_tokens and decode_tokens can both be 0, and a request needs at "
                                 "least one token: make the minimum of one of them >= 1")
        elif not initial:
            raise ValueError("empty workload: give an arrival process, a trace or initial requests")

    def requests(self, seed: int | np.random.SeedSequence) -> Iterator[Request]:
        """All requests in nondecreasing arrival order, ids 0, 1, 2, ...; same seed, same requests."""
        for i, r in enumerate(self.initial):
            yield Request(i, 0.0, r[0], r[1], self.job_class, r[2])
        rid = len(self.initial)
        if self.trace is not None:
            for q in self._replayed:
                yield Request(rid, q.arrival_time, q.prompt_tokens, q.decode_tokens, q.job_class, q.label,
                              q.prefix_id, q.prefix_tokens)
                rid += 1
            return
        if self.arrival is None:
            return
        assert self.prompt_tokens is not None and self.decode_tokens is not None  # checked on construction
        rng_t, rng_p, rng_d, rng_g = child_generators(seed, 4)
        stream = zip(self.arrival.times(rng_t), _lengths(self.prompt_tokens, rng_p),
                     _lengths(self.decode_tokens, rng_d))
        pre = self.prefix
        groups = _groups(pre.groups, rng_g) if pre is not None else None
        for t, p, d in islice(stream, self.num_requests):
            if self.duration_s is not None and t > self.duration_s:
                return
            if groups is None or pre is None:
                yield Request(rid, t, p, d, self.job_class)
            else:
                yield Request(rid, t, p, d, self.job_class, None, f"p{next(groups)}", min(pre.tokens, p))
            rid += 1

    @cached_property
    def _replayed(self) -> tuple[Request, ...]:
        """The part of the trace that is replayed (num_requests and duration_s applied)."""
        assert self.trace is not None
        trace = self.trace[: self.num_requests] if self.num_requests is not None else self.trace
        if self.duration_s is not None:
            trace = tuple(r for r in trace if r.arrival_time <= self.duration_s)
        return trace

    # Properties of the arriving stream, for the capacity theory. Initial requests are excluded:
    # they are a transient, not load. A workload with no arriving stream has rate 0 and means 0.

    @property
    def arrival_rate(self) -> float:
        """Requests/s. For a trace: (n - 1) / (last - first arrival) of the replayed part, the
        inverse of the mean gap (0 with fewer than 2 requests, inf if all arrive at once)."""
        if self.trace is not None:
            n = len(self._replayed)
            if n < 2:
                return 0.0
            span = self._replayed[-1].arrival_time - self._replayed[0].arrival_time
            return (n - 1) / span if span > 0 else math.inf
        return self.arrival.mean_rate if self.arrival is not None else 0.0

    @property
    def mean_prompt_tokens(self) -> float:
        """Mean prompt of an arriving request (trace: mean over the replayed part)."""
        return self._mean("prompt_tokens")

    @property
    def mean_decode_tokens(self) -> float:
        """Mean decode tokens of an arriving request (trace: mean over the replayed part)."""
        return self._mean("decode_tokens")

    def _mean(self, attr: str) -> float:
        if self.trace is not None:
            return float(np.mean([getattr(r, attr) for r in self._replayed])) if self._replayed else 0.0
        return getattr(self, attr).mean if self.arrival is not None else 0.0

    @property
    def max_prompt_tokens(self) -> int | None:
        """Largest prompt any request of this workload can have, initial ones included (None if
        unbounded): a prompt larger than a whole-prefill policy's budget freezes it."""
        sizes = [r[0] for r in self.initial]
        if self.trace is not None:
            sizes += [r.prompt_tokens for r in self._replayed]
        elif self.arrival is not None and self.prompt_tokens is not None:
            if self.prompt_tokens.max_value is None:
                return None
            sizes.append(self.prompt_tokens.max_value)
        return max(sizes, default=0)
