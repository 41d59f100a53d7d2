"""Online runs in real time: requests are injected at their wall-clock arrival times and the
real engine runs the policy's batches back to back, with no simulated clock anywhere.

The loop is the simulator's, with the event kernel replaced by ``time.perf_counter``: at each
iteration boundary it admits every request whose arrival time has passed (so an arrival during an
iteration is seen at the next boundary, spec section 1), asks the policy for a plan, executes it
as one forward pass and logs the boundary times it read from the clock. An idle engine sleeps
until the next arrival. The result is a :class:`RealResult`, a :class:`~llmqueue.sim.SimResult`
with the same tables, so :func:`llmqueue.sim.output.write_run` writes the same files.

Batches depend on the timing, so two real runs of one trace differ slightly; the tokens each
request computes do not (greedy decoding of seeded prompts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..engine.batch_time import BatchTimeModel
from ..engine.request import Request
from ..policies.base import Policy
from ..sim.engine import IterationLog, RequestLog
from ..sim.simulate import SimResult
from .ledger import Ledger


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


def serve(policy: Policy, requests: Iterable[Request], runner, *, horizon: float | None = None,
          record_composition: bool = False, validate: bool = True,
          clock: Callable[[], float] = time.perf_counter, what: str = "real engine") -> RealResult:
    """Run ``requests`` (sorted by arrival) through ``runner`` in real time.

    Stops when every request has completed, or at the first iteration boundary at or after
    ``horizon`` seconds (the iteration running then is completed and kept). ``runner`` is a
    :class:`~llmqueue.real.runner.ModelRunner` (anything with ``add``, ``execute``, ``release``).
    """
    if horizon is not None and not horizon > 0:
        raise ValueError(f"horizon must be > 0 seconds, got {horizon}")
    ledger = Ledger(policy, keep_plans=record_composition, validate=validate)
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
            ledger.admit(nxt, nxt.arrival_time)
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
        if not ledger.states:
            busy_since = None
            if nxt is None:
                break
            wake = nxt.arrival_time if horizon is None else min(nxt.arrival_time, horizon)
            if wake > now:
                time.sleep(wake - now)
            continue
        details.append(step(ledger, runner, boundary, lambda: clock() - t0))
        busy_since = ledger.iteration_log.columns["end_time"][-1]
    end_time = max(now, horizon) if horizon is not None else now
    admit_until(end_time)
    ledger.flush_unfinished()
    return _result(ledger, policy, labels, details, end_time, what)


def step(ledger: Ledger, runner, start: float, clock: Callable[[], float]) -> tuple[int, float, float]:
    """One iteration from boundary ``start``: plan, execute, log it as ``[start, end]``, apply it
    and release the requests that completed. Returns (context tokens, scheduling seconds, forward
    seconds). The profiler times this same function, so profiles and online runs measure one
    code path."""
    t = clock()
    plan = ledger.plan(start)
    ctx = ledger.context_after(plan)
    t1 = clock()
    runner.execute(plan)
    end = clock()
    for req in ledger.finish(plan, start, end):
        runner.release(req.request_id)
    return ctx, t1 - t, end - t1


def _result(ledger: Ledger, policy: Policy, labels: dict, details: list, end_time: float,
            what: str) -> RealResult:
    req_df = pd.DataFrame(ledger.request_log.rows, columns=list(RequestLog.COLUMNS))
    req_df = req_df.sort_values("request_id", kind="stable").reset_index(drop=True)
    cols = ledger.iteration_log.columns
    it_df = pd.DataFrame({c: np.frombuffer(v, dtype=np.float64 if v.typecode == "d" else np.int64)
                          if len(v) else np.array([], dtype=np.float64 if v.typecode == "d" else np.int64)
                          for c, v in cols.items()})[list(IterationLog.COLUMNS)]
    det = pd.DataFrame(details, columns=["context_tokens", "schedule_s", "forward_s"])
    return RealResult(
        requests=req_df, iterations=it_df, itl=np.frombuffer(ledger.itl, dtype=np.float64).copy(),
        end_time=end_time, tokens_arrived=ledger.tokens_arrived,
        tokens_processed=ledger.tokens_processed, tokens_left=ledger.backlog_tokens,
        policy=policy, batch_time=WallClock(what), compositions=ledger.iteration_log.plans,
        labels=labels, details=det)
