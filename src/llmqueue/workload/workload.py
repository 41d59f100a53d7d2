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

import numpy as np

from ..engine.request import Request
from .arrays import RequestArrays, RequestStream
from .arrivals import CHUNK, ArrivalProcess
from .lengths import LengthDistribution, _count


def child_generators(seed: int | np.random.SeedSequence, n: int = 3) -> list[np.random.Generator]:
    """The generators of children 0..n-1 of ``seed`` (like ``ss.spawn(n)`` on a fresh SeedSequence,
    but without advancing the caller's SeedSequence, so the same object always gives the same)."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        ss.entropy, spawn_key=(*ss.spawn_key, i), pool_size=ss.pool_size))) for i in range(n)]


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
    trace: tuple[Request, ...] | RequestArrays | None = None
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
            trace = self.trace if isinstance(self.trace, RequestArrays) else tuple(self.trace)
            cols = trace if isinstance(trace, RequestArrays) else RequestArrays.from_requests(trace)
            back = np.flatnonzero(cols.arrival_time[1:] < cols.arrival_time[:-1])
            if back.size:
                a, b = int(back[0]), int(back[0]) + 1
                ids, t = cols.request_id, cols.arrival_time
                raise ValueError(f"trace is not sorted by arrival time: request {ids[b]} "
                                 f"({t[b]} s) comes after {ids[a]} ({t[a]} s)")
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

    def requests(self, seed: int | np.random.SeedSequence) -> RequestStream:
        """All requests in nondecreasing arrival order, ids 0, 1, 2, ...; same seed, same requests.

        An iterator of :class:`Request` objects that the fast core reads as numpy blocks instead
        (:meth:`RequestStream.array_batches`): both views are the same requests."""
        return RequestStream(self._blocks(seed))

    def arrays(self, seed: int | np.random.SeedSequence) -> RequestArrays:
        """All requests of :meth:`requests` as one block of columns."""
        return self.requests(seed).arrays()

    def _blocks(self, seed: int | np.random.SeedSequence) -> Iterator[RequestArrays]:
        n0 = len(self.initial)
        if n0:
            labels = [r[2] for r in self.initial]
            yield RequestArrays(
                np.arange(n0, dtype=np.int64), np.zeros(n0),
                np.array([r[0] for r in self.initial], dtype=np.int64),
                np.array([r[1] for r in self.initial], dtype=np.int64), self.job_class,
                np.array(labels + [None], dtype=object)[:n0] if labels.count(None) != n0 else None)
        if self.trace is not None:
            yield self._replayed.with_ids(n0)
        elif self.arrival is not None:
            yield from self._generated(seed, n0)

    def _generated(self, seed: int | np.random.SeedSequence, rid: int) -> Iterator[RequestArrays]:
        """Generated requests, CHUNK at a time from each child stream (so exactly the values the
        per-request stream drew one by one): arrivals, prompts, decodes, prefix groups."""
        assert self.arrival is not None and self.prompt_tokens is not None and self.decode_tokens is not None
        rng_t, rng_p, rng_d, rng_g = child_generators(seed, 4)
        pre, left, end = self.prefix, self.num_requests, self.duration_s
        times = self.arrival.time_chunks(rng_t)
        while left is None or left > 0:
            t = next(times)
            p = self.prompt_tokens.sample(rng_p, CHUNK)
            d = self.decode_tokens.sample(rng_d, CHUNK)
            g = rng_g.integers(0, pre.groups, size=CHUNK) if pre is not None else None
            n = CHUNK if left is None else min(CHUNK, left)
            if end is not None:
                over = np.flatnonzero(t[:n] > end)
                if over.size:
                    n = left = int(over[0])
            if n == 0:
                return
            p = p[:n]
            yield RequestArrays(
                np.arange(rid, rid + n, dtype=np.int64), t[:n], p, d[:n], self.job_class, None,
                None if g is None else np.array([f"p{x}" for x in g[:n].tolist()], dtype=object),
                None if g is None or pre is None else np.minimum(p, pre.tokens))
            rid += n
            if left is not None:
                left -= n

    @cached_property
    def _replayed(self) -> RequestArrays:
        """The part of the trace that is replayed (num_requests and duration_s applied)."""
        assert self.trace is not None
        tr = self.trace if isinstance(self.trace, RequestArrays) else RequestArrays.from_requests(self.trace)
        n = len(tr) if self.num_requests is None else min(len(tr), self.num_requests)
        if self.duration_s is not None:
            n = min(n, int(np.searchsorted(tr.arrival_time[:n], self.duration_s, "right")))
        return tr.slice(0, n)

    # Properties of the arriving stream, for the capacity theory. Initial requests are excluded:
    # they are a transient, not load. A workload with no arriving stream has rate 0 and means 0.

    @property
    def arrival_rate(self) -> float:
        """Requests/s. For a trace: (n - 1) / (last - first arrival) of the replayed part, the
        inverse of the mean gap (0 with fewer than 2 requests, inf if all arrive at once)."""
        if self.trace is not None:
            t = self._replayed.arrival_time
            n = t.size
            if n < 2:
                return 0.0
            span = float(t[-1]) - float(t[0])
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
            col = getattr(self._replayed, attr)
            return float(np.mean(col)) if col.size else 0.0
        return getattr(self, attr).mean if self.arrival is not None else 0.0

    @property
    def max_prompt_tokens(self) -> int | None:
        """Largest prompt any request of this workload can have, initial ones included (None if
        unbounded): a prompt larger than a whole-prefill policy's budget freezes it."""
        sizes = [r[0] for r in self.initial]
        if self.trace is not None:
            sizes += self._replayed.prompt_tokens.tolist()
        elif self.arrival is not None:
            assert self.prompt_tokens is not None  # __post_init__: an arrival process comes with lengths
            top = self.prompt_tokens.max_value
            if top is None:
                return None
            sizes.append(top)
        return max(sizes, default=0)
