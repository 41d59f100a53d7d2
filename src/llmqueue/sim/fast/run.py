"""The fast core's driver: epochs of the loop, each followed by its records, input and trimming.

:func:`run_core` feeds any sink (:mod:`.sinks`); :func:`simulate_fast` returns the same
:class:`~llmqueue.sim.result.SimResult` as the generic engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ...engine.batch_time import BatchTimeModel
from ...engine.plan import BatchPlan
from ...engine.request import Request
from ...errors import FastPathUnavailable
from ...policies.base import Policy
from ..diverging import DivergenceRule
from .core import EpochBuffer, run_epoch
from .feed import RequestFeed
from .finalize import (
    Snapshot,
    drain_arrivals,
    finalize_epoch,
    first_open,
    flush_unfinished,
    trim_memory,
)
from .itl import ItlHistogram
from .sinks import MemorySink
from .state import CoreState, PolicySpec, fast_path_reason

#: Iterations per epoch: bounds the raw per-iteration buffers (4 columns x 8 bytes each).
EPOCH_ITERATIONS = 1 << 16
#: Requests read from the input at a time.
CHUNK_REQUESTS = 1 << 16
#: Iterations per epoch when a stop rule is checked (it is asked once per epoch).
STOP_EPOCH_ITERATIONS = 1 << 10
#: Finished requests (and decode steps) to accumulate before their columns are dropped.
TRIM_MIN = 1 << 15


@dataclass
class CoreRun:
    """What a run of the core leaves besides the sink's records."""

    end_time: float
    tokens_arrived: int
    tokens_left: int
    itl: ItlHistogram
    labels: dict[int, str]
    plans: list[BatchPlan] | None = field(default=None)

    @property
    def tokens_processed(self) -> int:
        return self.tokens_arrived - self.tokens_left


def use_fast_core(engine: str, policy: Policy, batch_time: BatchTimeModel) -> bool:
    """Whether ``engine`` ("auto", "fast" or "generic") means the fast core for this engine;
    "fast" for one the core cannot run exactly raises :class:`FastPathUnavailable`."""
    if engine not in ("auto", "fast", "generic"):
        raise ValueError(f"engine must be 'auto', 'fast' or 'generic', got {engine!r}")
    if engine == "generic":
        return False
    reason = fast_path_reason(policy, batch_time)
    if reason is not None and engine == "fast":
        raise FastPathUnavailable(f"engine='fast' is not available: {reason}; use engine='generic' "
                                  f"(or 'auto', which picks the generic engine for it)")
    return reason is None


def run_core(policy: Policy, batch_time: BatchTimeModel, requests: Iterable[Request], sink, *,
             horizon: float | None = None, record_composition: bool = False,
             chunk_requests: int = CHUNK_REQUESTS, epoch_iterations: int = EPOCH_ITERATIONS,
             trim_min: int = TRIM_MIN, stop: DivergenceRule | None = None,
             progress: Callable[[float], None] | None = None) -> CoreRun:
    """Run one engine with the fast core, sending records to ``sink``.

    ``stop`` (a :class:`~llmqueue.sim.diverging.DivergenceRule`) is asked after every epoch (of
    at most :data:`STOP_EPOCH_ITERATIONS` iterations then) whether the run diverges; if so the run
    ends there, as at a horizon, with the requests in the system recorded as unfinished.
    ``progress(now)`` hears the simulated time after every epoch (for a progress bar).

    ``chunk_requests``, ``epoch_iterations`` and ``trim_min`` tune memory against overhead;
    results do not depend on them (tests run with tiny values to exercise every boundary)."""
    use_fast_core("fast", policy, batch_time)
    if horizon is not None and not horizon > 0:
        raise ValueError(f"horizon must be > 0 seconds, got {horizon}")
    if stop is not None:
        epoch_iterations = min(epoch_iterations, STOP_EPOCH_ITERATIONS)
    P = PolicySpec.of(policy, batch_time, horizon)
    F = RequestFeed(requests, chunk_requests)
    F.refill()
    S = CoreState()
    buf = EpochBuffer()
    itl = ItlHistogram()
    plans: list[BatchPlan] | None = [] if record_composition else None
    text = policy.describe()
    release = getattr(sink, "release", None)
    while True:
        snap = Snapshot.of(S)
        run_epoch(S, F, P, buf, epoch_iterations, text, plans)
        if S.finished and horizon is not None:
            drain_arrivals(S, F, horizon)
        finalize_epoch(S, F, buf, snap, sink, itl)
        buf.clear()
        if progress is not None:
            progress(S.now)
        if release is not None:
            release(F.watermark(first_open(S, F)))
        if F.poison is not None and S.ai > F.poison:
            raise ValueError(F.poison_msg)
        if S.finished:
            break
        if stop is not None and stop.check(S.now, F.cumtot[S.ai - F.abase] - S.processed):
            break
        if S.ai >= F.loaded:
            F.refill()
        trim_memory(S, F, trim_min)
    flush_unfinished(S, F, sink)
    return CoreRun(end_time=S.now if horizon is None or not S.finished else float(horizon),
                   tokens_arrived=F.cumtot[S.ai - F.abase],
                   tokens_left=F.cumtot[S.ai - F.abase] - S.processed, itl=itl,
                   labels=F.label_dict(S.ai), plans=plans)


def simulate_fast(policy: Policy, batch_time: BatchTimeModel, requests: Iterable[Request], *,
                  horizon: float | None = None, record_composition: bool = False,
                  stop: DivergenceRule | None = None, progress: Callable[[float], None] | None = None,
                  **tuning):
    """The fast core with every record kept in memory: the generic engine's SimResult.
    ``tuning``: see :func:`run_core`."""
    from ..result import SimResult

    sink = MemorySink()
    run = run_core(policy, batch_time, requests, sink, horizon=horizon,
                   record_composition=record_composition, stop=stop, progress=progress, **tuning)
    return SimResult(requests=sink.requests_frame(), iterations=sink.iterations_frame(),
                     itl=run.itl.expand(), end_time=run.end_time, tokens_arrived=run.tokens_arrived,
                     tokens_processed=run.tokens_processed, tokens_left=run.tokens_left,
                     policy=policy, batch_time=batch_time, compositions=run.plans,
                     labels=run.labels)
