"""Online runs in real time: requests are injected at their wall-clock arrival times and the
real engine runs the policy's batches back to back, with no simulated clock anywhere.

The loop drives the same :class:`~llmqueue.engine.core.EngineCore` as the simulator, with the
event kernel replaced by ``time.perf_counter``: at each iteration boundary it admits every request
whose arrival time has passed (so an arrival during an iteration is seen at the next boundary,
spec section 1), asks the core for a step, replays the step's memory events on the runner's cache
(preemptions, swaps, prefix hits: with ``memory`` the core's KV manager hands out the cache's
blocks), executes the plan as one forward pass and logs the boundary times it read from the
clock. An idle engine sleeps until the next arrival. The result is a :class:`RealResult`, a
:class:`~llmqueue.sim.SimResult` with the same tables (and the same memory tables with
``memory``), so :func:`llmqueue.sim.output.write_run` writes the same files.

Batches depend on the timing, so two real runs of one trace differ slightly; the tokens each
request computes do not (greedy decoding of seeded prompts), preempted or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pandas as pd

from ..engine.batch_time import BatchTimeModel
from ..engine.core import EngineCore
from ..engine.request import Request
from ..memory.config import MemoryConfig
from ..policies.base import Policy
from ..sim.result import SimResult, core_fields


@dataclass(frozen=True)
class WallClock(BatchTimeModel):
    """Stands in for a batch-time model in a real run's result: the times were measured."""

    what: str = "real engine"
    load_only = True

    def duration(self, prefill_tokens: int, decode_tokens: int, context_tokens: int = 0) -> float:
        raise TypeError("a real run's batch times were measured, not modelled; load a profile "
                        "(llmqueue.real.profiles.load_profile) to predict them")

    def describe(self) -> str:
        return f"measured wall clock ({self.what})"


@dataclass
class RealResult(SimResult):
    """A real run: the simulator's tables plus per-iteration measurements (``details``:
    ``context_tokens``, ``schedule_s`` policy and plan check, ``forward_s`` the forward pass)."""

    details: pd.DataFrame = field(default_factory=pd.DataFrame)


def serve(policy: Policy, requests: Iterable[Request], runner, *, memory: MemoryConfig | None = None,
          horizon: float | None = None,
          record_composition: bool = False, validate: bool = True,
          clock: Callable[[], float] = time.perf_counter, what: str = "real engine") -> RealResult:
    """Run ``requests`` (sorted by arrival) through ``runner`` in real time.

    Stops when every request has completed, or at the first iteration boundary at or after
    ``horizon`` seconds (the iteration running then is completed and kept). ``runner`` is a
    :class:`~llmqueue.real.runner.ModelRunner` (anything with ``add``, ``execute``, ``release``;
    with ``memory`` also ``bind`` and ``apply_events``). ``memory`` (None: the cache grows as
    needed, nothing is preempted) is the engine's KV memory, managed by the engine core.
    """
    if horizon is not None and not horizon > 0:
        raise ValueError(f"horizon must be > 0 seconds, got {horizon}")
    if memory is not None and memory.host_cache_tokens:
        raise ValueError("the real engine has no host-memory cache tier: memory.host_cache_tokens is for "
                         "simulation only (set it to 0)")
    core = EngineCore(policy, memory=memory, validate=validate, keep_plans=record_composition,
                      name="real engine")
    if memory is not None:
        runner.bind(core.kv)
    stream = iter(requests)
    nxt = next(stream, None)
    labels: dict[int, str] = {}
    last_arrival = 0.0
    details: list[tuple[int, float, float]] = []
    t0 = clock()

    def admit_until(t: float) -> Request | None:
        nonlocal nxt, last_arrival
        while nxt is not None and nxt.arrival_time <= t:
            if nxt.arrival_time < last_arrival:
                raise ValueError(f"requests must be sorted by arrival time: request {nxt.request_id} "
                                 f"arrives at {nxt.arrival_time} after one at {last_arrival}")
            last_arrival = nxt.arrival_time
            if nxt.label is not None:
                labels[nxt.request_id] = nxt.label
            runner.add(nxt)
            core.add(nxt, nxt.arrival_time)
            nxt = next(stream, None)
        return nxt

    now, busy_since = 0.0, None
    while True:
        now = clock() - t0
        if horizon is not None and now >= horizon:
            break
        # back to back, the next boundary is where the previous iteration ended: the bookkeeping
        # between two passes is part of the cycle the batch-time model must describe, and a
        # request arriving during it is seen at the boundary after (as in the simulator)
        boundary = now if busy_since is None else busy_since
        admit_until(boundary)
        if not core.states:
            busy_since = None
            if nxt is None:
                break
            wake = nxt.arrival_time if horizon is None else min(nxt.arrival_time, horizon)
            if wake > now:
                time.sleep(wake - now)
            continue
        details.append(step(core, runner, boundary, lambda: clock() - t0))
        busy_since = core.iteration_log.columns["end_time"][-1]
    end_time = max(now, horizon) if horizon is not None else now
    admit_until(end_time)
    core.flush_unfinished()
    return _result(core, policy, labels, details, end_time, what)


def step(core: EngineCore, runner, start: float, clock: Callable[[], float]) -> tuple[int, float, float]:
    """One iteration from boundary ``start``: the core's step (refused if empty while work
    waits), its memory events replayed on the runner, the forward pass, then the iteration logged
    as ``[start, end]`` and applied, and the completed requests released. Returns (context
    tokens, scheduling seconds, forward seconds). The profiler times this same function, so
    profiles and online runs measure one code path."""
    t = clock()
    st = core.schedule(start)
    if st.plan.is_empty:
        raise core.stalled(start)
    if st.events:
        runner.apply_events(st.events)
    ctx = core.context_after(st.plan)
    t1 = clock()
    runner.execute(st.plan)
    end = clock()
    core.begin(st, start, end)
    for req in core.complete(st, end):
        runner.release(req.request_id)
    return ctx, t1 - t, end - t1


def _result(core: EngineCore, policy: Policy, labels: dict, details: list, end_time: float,
            what: str) -> RealResult:
    det = pd.DataFrame(details, columns=["context_tokens", "schedule_s", "forward_s"])
    return RealResult(end_time=end_time, policy=policy, batch_time=WallClock(what),
                      compositions=core.iteration_log.plans, labels=labels, details=det, **core_fields(core))
