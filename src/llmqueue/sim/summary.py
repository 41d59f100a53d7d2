"""The typed summary of a run: what every command writes to summary.json and ``report`` reads.

:class:`RunSummary` (one engine) and :class:`NetworkSummary` (a network) are frozen dataclasses;
``to_dict()`` gives summary.json's flat keys, in their order (latencies under vLLM's names,
``mean_ttft_ms`` ...), and ``from_dict()`` reads one back, refusing a malformed one with a
:class:`SummaryError`. Keys a command adds (``scenario``, ``capacity``, ``engine`` ...) are kept in
``extra``. For reading code, a summary also answers ``s["p99_ttft_ms"]``, ``s.get(key)`` and
``key in s`` by its flat key names.

:class:`RunTotals` is the identity and totals every single-engine result shares (the in-memory
:class:`~llmqueue.sim.simulate.SimResult` and the streamed
:class:`~llmqueue.sim.fast.result.StreamedResult`); :func:`run_summary` is the one place a
:class:`RunSummary` is computed from them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..engine.batch_time import BatchTimeModel
from ..errors import LLMQueueError
from ..policies.base import Policy
from .metrics import PERCENTILES, latency_stats


class SummaryError(LLMQueueError, ValueError):
    """A summary.json that is not a run's summary (a missing key or a value of the wrong type)."""


def _need(d: dict, key: str, what: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise SummaryError(f"{what}: missing key {key!r}")
    return d[key]


class _FlatKeys:
    """``s[key]``, ``s.get(key)``, ``key in s``, ``s.keys()`` and ``dict(s)`` by summary.json's flat
    key names (read-only)."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def keys(self):
        return self.to_dict().keys()

    def items(self):
        return self.to_dict().items()

    def __iter__(self):
        return iter(self.to_dict())


@dataclass(frozen=True)
class LatencyStats:
    """mean/p50/p90/p99 of a latency sample, in ms; None when there was no sample."""

    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None

    @classmethod
    def of(cls, seconds: np.ndarray) -> LatencyStats:
        """The stats of a sample in seconds (non-finite values dropped)."""
        return cls.from_dict(latency_stats("x", seconds), "x")

    def to_dict(self, name: str) -> dict[str, float | None]:
        out = {f"mean_{name}_ms": self.mean}
        for p in PERCENTILES:
            out[f"p{p}_{name}_ms"] = getattr(self, f"p{p}")
        return out

    @classmethod
    def from_dict(cls, d: dict, name: str) -> LatencyStats:
        keys = [f"mean_{name}_ms"] + [f"p{p}_{name}_ms" for p in PERCENTILES]
        vals = [_need(d, k, "latency") for k in keys]
        for k, v in zip(keys, vals):
            if v is not None and not isinstance(v, (int, float)):
                raise SummaryError(f"{k} must be a number or null, got {v!r}")
        return cls(*[None if v is None else float(v) for v in vals])


def _typed(cls, d: dict, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The plain fields of dataclass ``cls`` read from ``d`` (checked against the field types)."""
    out: dict[str, Any] = {}
    kinds: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "bool": bool, "str": str}
    for f in dataclasses.fields(cls):
        if f.name in skip or f.name == "extra":
            continue
        if f.default is not dataclasses.MISSING and f.name not in d:
            continue
        v = _need(d, f.name, cls.__name__)
        base = str(f.type).split(" | ")[0]
        if v is None and "None" in str(f.type):
            out[f.name] = v
            continue
        if base in kinds and (not isinstance(v, kinds[base]) or (base != "bool" and isinstance(v, bool))):
            raise SummaryError(f"{f.name} must be of type {base}, got {v!r}")
        out[f.name] = v
    return out


@dataclass(frozen=True)
class MemoryStats:
    """The KV-memory keys of a run with memory; the prefix-cache ones are None without prefix caching."""

    tokens_recomputed: int
    kv_capacity_tokens: int
    peak_kv_tokens: int
    mean_kv_tokens: float
    preemptions: int
    preemptions_recompute: int
    preemptions_swap: int
    requests_preempted: int
    swap_time_s: float
    tokens_cached: int | None = None
    prefix_cache_hit_tokens: int | None = None
    prefix_cache_queries: int | None = None
    prefix_cache_hit_rate: float | None = None

    PREFIX: ClassVar[tuple[str, ...]] = ("tokens_cached", "prefix_cache_hit_tokens", "prefix_cache_queries",
                                         "prefix_cache_hit_rate")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.prefix_cache_hit_tokens is None:
            for k in self.PREFIX:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MemoryStats:
        return cls(**_typed(cls, d))


_LATENCIES = ("ttft", "tpot", "e2el", "itl")


@dataclass(frozen=True)
class RunSummary(_FlatKeys):
    """The summary of a single-engine run (times in s, latencies in ms, throughputs per s)."""

    policy: str
    batch_time: str
    duration_s: float
    num_requests: int
    completed: int
    in_system_at_end: int
    num_iterations: int
    tokens_arrived: int
    tokens_processed: int
    tokens_left: int
    tokens_conserved: bool
    token_throughput: float
    output_throughput: float
    request_throughput: float
    busy_fraction: float
    mean_batch_tokens: float
    max_backlog_tokens: int
    final_backlog_tokens: int
    max_num_in_system: int
    ttft: LatencyStats
    tpot: LatencyStats
    e2el: LatencyStats
    itl: LatencyStats
    memory: MemoryStats | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def with_extra(self, extra: dict | None) -> RunSummary:
        return dataclasses.replace(self, extra={**self.extra, **(extra or {})})

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in _LATENCIES:
                d.update(getattr(self, f.name).to_dict(f.name))
            elif f.name == "memory":
                if self.memory is not None:
                    d.update(self.memory.to_dict())
            elif f.name != "extra":
                d[f.name] = getattr(self, f.name)
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunSummary:
        if not isinstance(d, dict):
            raise SummaryError(f"a run summary is a JSON object, got {type(d).__name__}")
        kw = _typed(cls, d, skip=_LATENCIES + ("memory",))
        kw.update({n: LatencyStats.from_dict(d, n) for n in _LATENCIES})
        kw["memory"] = MemoryStats.from_dict(d) if "kv_capacity_tokens" in d else None
        known = set(cls(**kw).to_dict())
        return cls(**kw, extra={k: v for k, v in d.items() if k not in known})


@dataclass(kw_only=True)
class RunTotals:
    """A single-engine run's identity and totals, shared by every result type of one engine.

    Token conservation reads ``tokens_arrived + tokens_recomputed == tokens_processed +
    tokens_cached + tokens_left`` (the last two terms are 0 without KV memory)."""

    end_time: float
    tokens_arrived: int
    tokens_processed: int
    tokens_left: int
    policy: Policy
    batch_time: BatchTimeModel
    labels: dict[int, str] = field(default_factory=dict)
    tokens_recomputed: int = 0
    tokens_cached: int = 0

    def summary(self) -> RunSummary:
        return run_summary(self, self.counts(), self.memory_stats())

    def counts(self) -> RunCounts:
        raise NotImplementedError

    def memory_stats(self) -> MemoryStats | None:
        return None


@dataclass(frozen=True)
class RunCounts:
    """What a result counts from its tables (in memory or streamed) for :func:`run_summary`."""

    num_requests: int
    completed: int
    output_tokens: int
    num_iterations: int
    busy_s: float
    mean_batch_tokens: float
    max_backlog_tokens: int
    max_num_in_system: int
    ttft: LatencyStats
    tpot: LatencyStats
    e2el: LatencyStats
    itl: LatencyStats


def run_summary(run: RunTotals, c: RunCounts, memory: MemoryStats | None = None) -> RunSummary:
    """The summary of a run from its totals and its counts: the one place it is computed."""
    span = run.end_time
    return RunSummary(
        policy=run.policy.describe(), batch_time=run.batch_time.describe(), duration_s=span,
        num_requests=c.num_requests, completed=c.completed, in_system_at_end=c.num_requests - c.completed,
        num_iterations=c.num_iterations, tokens_arrived=run.tokens_arrived,
        tokens_processed=run.tokens_processed, tokens_left=run.tokens_left,
        tokens_conserved=(run.tokens_arrived + run.tokens_recomputed
                          == run.tokens_processed + run.tokens_cached + run.tokens_left),
        token_throughput=run.tokens_processed / span if span > 0 else 0.0,
        output_throughput=c.output_tokens / span if span > 0 else 0.0,
        request_throughput=c.completed / span if span > 0 else 0.0,
        busy_fraction=c.busy_s / span if span > 0 else 0.0,
        mean_batch_tokens=c.mean_batch_tokens, max_backlog_tokens=c.max_backlog_tokens,
        final_backlog_tokens=run.tokens_left, max_num_in_system=c.max_num_in_system,
        ttft=c.ttft, tpot=c.tpot, e2el=c.e2el, itl=c.itl, memory=memory)


def _rows(cls, d: Any, what: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise SummaryError(f"{what} must be an object of rows, got {d!r}")
    return {str(k): cls.from_dict(v) for k, v in d.items()}


@dataclass(frozen=True)
class ClassRow:
    """One job class of a network run."""

    arrival_rate: float
    jobs: int
    completed: int
    throughput_jobs_per_s: float
    mean_visits: float | None
    e2el: LatencyStats

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "e2el"}
        return {**d, **self.e2el.to_dict("e2el")}

    @classmethod
    def from_dict(cls, d: dict) -> ClassRow:
        return cls(**_typed(cls, d, skip=("e2el",)), e2el=LatencyStats.from_dict(d, "e2el"))


@dataclass(frozen=True)
class EngineRow:
    """One engine of a network run; the memory keys are None for an engine without KV memory."""

    policy: str
    batch_time: str
    capacity_tokens_per_s: float
    rho: float
    token_throughput: float
    utilization: float
    busy_fraction: float
    num_iterations: int
    mean_batch_tokens: float
    max_backlog_tokens: int
    final_backlog_tokens: int
    preemptions: int | None = None
    tokens_recomputed: int | None = None
    prefix_cache_hit_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.preemptions is None:
            for k in ("preemptions", "tokens_recomputed", "prefix_cache_hit_tokens"):
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EngineRow:
        return cls(**_typed(cls, d))


@dataclass(frozen=True)
class LabelRow:
    """The visits of one step label (``<class>.<step>``) of a network run."""

    engines: list[str]
    visits: int
    completed: int
    mean_tokens: float
    ttft: LatencyStats
    e2el: LatencyStats

    def to_dict(self) -> dict[str, Any]:
        return {"engines": list(self.engines), "visits": self.visits, "completed": self.completed,
                "mean_tokens": self.mean_tokens, **self.ttft.to_dict("ttft"), **self.e2el.to_dict("e2el")}

    @classmethod
    def from_dict(cls, d: dict) -> LabelRow:
        kw = _typed(cls, d, skip=("ttft", "e2el"))
        if not isinstance(kw["engines"], list):
            raise SummaryError(f"engines must be a list, got {kw['engines']!r}")
        return cls(**kw, ttft=LatencyStats.from_dict(d, "ttft"), e2el=LatencyStats.from_dict(d, "e2el"))


@dataclass(frozen=True)
class NetworkSummary(_FlatKeys):
    """The summary of a network run: totals, the jobs' e2el, and rows per class, engine and label."""

    duration_s: float
    seed: int
    stopped_early: bool
    jobs_arrived: int
    jobs_completed: int
    jobs_in_system_at_end: int
    max_backlog_tokens: int
    final_backlog_tokens: int
    backlog_slope_tokens_per_s: float
    tokens_conserved: bool
    e2el: LatencyStats
    classes: dict[str, ClassRow]
    engines: dict[str, EngineRow]
    labels: dict[str, LabelRow]
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    _ROWS: ClassVar[dict[str, type]] = {"classes": ClassRow, "engines": EngineRow, "labels": LabelRow}

    def with_extra(self, extra: dict | None) -> NetworkSummary:
        return dataclasses.replace(self, extra={**self.extra, **(extra or {})})

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "e2el":
                d.update(v.to_dict("e2el"))
            elif f.name in self._ROWS:
                d[f.name] = {k: row.to_dict() for k, row in v.items()}
            elif f.name != "extra":
                d[f.name] = v
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> NetworkSummary:
        if not isinstance(d, dict):
            raise SummaryError(f"a network summary is a JSON object, got {type(d).__name__}")
        kw = _typed(cls, d, skip=("e2el", *cls._ROWS))
        kw["e2el"] = LatencyStats.from_dict(d, "e2el")
        kw.update({k: _rows(row, _need(d, k, cls.__name__), k) for k, row in cls._ROWS.items()})
        known = set(cls(**kw).to_dict())
        return cls(**kw, extra={k: v for k, v in d.items() if k not in known})
