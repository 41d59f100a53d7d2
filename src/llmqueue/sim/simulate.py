"""Simulate one engine under a policy on a stream of requests: the single entry point.

:func:`simulate` feeds arrivals lazily from an iterable (so a long workload is never held in
memory twice), runs until every request has completed or until ``horizon`` seconds, and
returns a :class:`SimResult` with per-request and per-iteration tables. With ``memory`` (a
:class:`~llmqueue.memory.config.MemoryConfig`) the engine core models the KV cache and the
result also carries the preemptions table and the memory columns per iteration. Token
conservation then reads ``tokens_arrived + tokens_recomputed == tokens_processed +
tokens_cached + tokens_left`` (``tokens_cached``: prompt tokens served by the prefix cache, 0
without prefix caching). With prefix caching the requests table gets a
``prefix_cache_hit_tokens`` column and ``memory_iterations`` a ``kv_cached_tokens`` one
(unreferenced cached blocks); without it the tables are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from ..engine.batch_time import BatchTimeModel
from ..engine.request import Request
from ..errors import FastPathUnavailable
from ..memory.config import MemoryConfig
from ..policies.base import Policy
from .diverging import DivergenceRule
from .engine import IterationLog, RequestLog, SimEngine
from .kernel import ARRIVAL, Kernel
from .result import SimResult, core_fields

if TYPE_CHECKING:  # pandas is imported by the run that builds the tables, not by importing this
    pass


class _Feeder:
    """Schedules arrivals one at a time from a sorted iterator."""

    def __init__(self, kernel: Kernel, engine: SimEngine, requests: Iterator[Request],
                 labels: dict[int, str]) -> None:
        self.kernel, self.engine, self.it, self.labels = kernel, engine, requests, labels
        self.last_time = 0.0
        self._next()

    def _next(self) -> None:
        req = next(self.it, None)
        if req is None:
            return
        if req.arrival_time < self.last_time:
            raise ValueError(f"requests must be sorted by arrival time: request {req.request_id} "
                             f"arrives at {req.arrival_time} after one at {self.last_time}")
        self.last_time = req.arrival_time
        if req.label is not None:
            self.labels[req.request_id] = req.label
        self.kernel.schedule(req.arrival_time, lambda: self._arrive(req), ARRIVAL)

    def _arrive(self, req: Request) -> None:
        self.engine.submit(req)
        self._next()


class ClosedLoopSource(Protocol):
    """A workload source whose arrivals depend on completions (sessions: :class:`~llmqueue.
    workload.sessions.SessionSource`): ``next_start()`` gives the next open arrival (None: no
    more), ``completed(request, time)`` hears of every completion and may return a follow-up
    request (its arrival time >= ``time``)."""

    def next_start(self) -> Request | None: ...
    def completed(self, request: Request, time: float) -> Request | None: ...


class _LoopFeeder:
    """Schedules a closed-loop source's arrivals on the same kernel: open arrivals one at a time
    in time order, follow-ups when the engine reports a completion (the engine's
    ``on_complete`` hook); the engine loop is the one :class:`SimEngine`'s."""

    def __init__(self, kernel: Kernel, engine: SimEngine, source: ClosedLoopSource,
                 labels: dict[int, str]) -> None:
        self.kernel, self.engine, self.source, self.labels = kernel, engine, source, labels
        engine.on_complete = self._completed
        self._next_start()

    def _schedule(self, req: Request) -> None:
        if req.arrival_time < self.kernel.now:
            raise ValueError(f"request {req.request_id} arrives at {req.arrival_time}, before now "
                             f"({self.kernel.now})")
        if req.label is not None:
            self.labels[req.request_id] = req.label
        self.kernel.schedule(req.arrival_time, lambda: self.engine.submit(req), ARRIVAL)

    def _next_start(self) -> None:
        req = self.source.next_start()
        if req is not None:
            if req.label is not None:
                self.labels[req.request_id] = req.label
            self.kernel.schedule(req.arrival_time, lambda: self._start(req), ARRIVAL)

    def _start(self, req: Request) -> None:
        self.engine.submit(req)
        self._next_start()

    def _completed(self, req: Request, time: float) -> None:
        follow = self.source.completed(req, time)
        if follow is not None:
            self._schedule(follow)


def simulate(policy: Policy, batch_time: BatchTimeModel, requests: Iterable[Request] | ClosedLoopSource, *,
             memory: MemoryConfig | None = None, horizon: float | None = None,
             record_composition: bool = False, validate: bool = True, engine: str = "auto",
             stop: DivergenceRule | None = None,
             progress: Callable[[float], None] | None = None) -> SimResult:
    """Run one engine until all requests complete (or until ``horizon`` seconds).

    ``memory``: the engine's KV cache (None: not modelled). ``engine``: "generic" is the
    reference event-driven engine core (any policy, any batch-time model, any memory;
    ``validate`` checks every plan); "fast" is the fast core (``llmqueue.sim.fast``: the four
    built-in policies with a load-only batch time and no memory model, same results, plans valid
    by construction), an error for anything else; "auto" takes the fast core when it applies.
    With a memory large enough that nothing waits for it, the result's tables equal the run
    without memory exactly (tested).

    ``requests`` may instead be a closed-loop source (:class:`ClosedLoopSource`, e.g. a session
    workload's): its follow-up arrivals are produced as the engine reports completions, on the
    engine core (the fast core refuses it). Its ``tables()`` (sessions and turns), when it has
    them, go into the result's ``sessions`` table and the requests' ``session_id``/``turn``. ``stop`` (a
    :class:`~llmqueue.sim.diverging.DivergenceRule`) ends a runaway run early, as a horizon would at
    the time it fires. ``progress(now)`` hears the simulated time every few thousand events (the
    fast core: every epoch), for a progress bar; it changes nothing in the run.
    """
    if horizon is not None and not horizon > 0:
        raise ValueError(f"horizon must be > 0 seconds, got {horizon}")
    if memory is not None and not isinstance(memory, MemoryConfig):
        raise TypeError(f"memory must be a MemoryConfig, got {type(memory).__name__}")
    from .fast import simulate_fast, use_fast_core
    loop = hasattr(requests, "completed") and hasattr(requests, "next_start")
    if loop and engine == "fast":
        raise FastPathUnavailable("engine='fast' is not available: a closed-loop (session) workload's "
                                  "arrivals depend on completions; use engine='generic' (or 'auto')")
    if memory is not None or loop:
        if engine == "fast":
            raise FastPathUnavailable("engine='fast' is not available: the fast core has no KV memory "
                                      "model; use engine='generic' (or 'auto')")
        use_fast_core(engine, policy, batch_time)           # checks the engine name
    elif use_fast_core(engine, policy, batch_time):
        return simulate_fast(policy, batch_time, requests, horizon=horizon,  # type: ignore[arg-type]
                             record_composition=record_composition, stop=stop, progress=progress)
    kernel = Kernel()
    rlog, ilog = RequestLog(), IterationLog(keep_plans=record_composition)
    sim = SimEngine(kernel, policy, batch_time, memory=memory, request_log=rlog, iteration_log=ilog,
                    validate=validate)
    labels: dict[int, str] = {}
    if loop:
        _LoopFeeder(kernel, sim, requests, labels)  # type: ignore[arg-type]
    else:
        _Feeder(kernel, sim, iter(requests), labels)  # type: ignore[arg-type]
    stopped = kernel.run(until=horizon, stop=_after_event(kernel, sim, stop, progress))
    cut = kernel.now if stopped else horizon
    sim.flush_unfinished()
    fields = core_fields(sim.core)
    plans = sim.core.iteration_log.plans
    # An iteration still running at the horizon (or the stop) has not ended: drop it from the log.
    it_df = fields["iterations"]
    if cut is not None and len(it_df) and it_df["end_time"].iloc[-1] > cut:
        fields["iterations"] = it_df.iloc[:-1]
        if sim.core.mem is not None:
            fields["memory_iterations"] = fields["memory_iterations"].iloc[:-1]
    if plans is not None and len(plans) > len(fields["iterations"]):
        plans = plans[: len(fields["iterations"])]
    if loop and hasattr(requests, "tables"):
        sessions, turns = requests.tables()
        req = fields["requests"]
        by_id = turns.set_index("request_id")
        req["session_id"] = req["request_id"].map(by_id["session_id"]).astype("int64")
        req["turn"] = req["request_id"].map(by_id["turn"]).astype("int64")
        fields["sessions"] = sessions
    return SimResult(end_time=kernel.now, policy=policy, batch_time=batch_time, compositions=plans, labels=labels,
                     **fields)


def _after_event(kernel: Kernel, sim: SimEngine, stop: DivergenceRule | None,
                 progress: Callable[[float], None] | None) -> Callable[[], bool] | None:
    """What the kernel asks after every event: the stop rule, and the progress callback every
    4096 events (None when there is neither)."""
    if stop is None and progress is None:
        return None
    events = 0

    def after() -> bool:
        nonlocal events
        if progress is not None:
            events += 1
            if not events & 4095:
                progress(kernel.now)
        return stop is not None and stop.check(kernel.now, sim.backlog_tokens)
    return after
