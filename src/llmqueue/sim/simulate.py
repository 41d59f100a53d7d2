"""Simulate one engine under a policy on a stream of requests.

:func:`simulate` feeds arrivals lazily from an iterable (so a long workload is never held in
memory twice), runs until every request has completed or until ``horizon`` seconds, and
returns a :class:`SimResult` with per-request and per-iteration tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..engine.batch_time import BatchTimeModel
from ..engine.plan import BatchPlan
from ..engine.request import Request
from ..policies.base import Policy
from .engine import IterationLog, RequestLog, SimEngine
from .kernel import ARRIVAL, Kernel

if TYPE_CHECKING:  # pandas is imported by the run that builds the tables, not by importing this
    import pandas as pd


@dataclass
class SimResult:
    """What one run produced. Times in seconds; NaN where an event has not happened."""

    requests: pd.DataFrame
    iterations: pd.DataFrame
    itl: np.ndarray
    end_time: float
    tokens_arrived: int
    tokens_processed: int
    tokens_left: int
    policy: Policy
    batch_time: BatchTimeModel
    compositions: list[BatchPlan] | None = None
    labels: dict[int, str] = field(default_factory=dict)

    def summary(self) -> dict:
        from .metrics import summarize
        return summarize(self)


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


def simulate(policy: Policy, batch_time: BatchTimeModel, requests: Iterable[Request], *,
             horizon: float | None = None, record_composition: bool = False,
             validate: bool = True, engine: str = "auto") -> SimResult:
    """Run one engine until all requests complete (or until ``horizon`` seconds).

    ``engine``: "generic" is the reference event-driven engine (any policy, any batch-time
    model; ``validate`` checks every plan); "fast" is the fast core (``llmqueue.sim.fast``:
    the four built-in policies with a load-only batch time, same results, plans valid by
    construction), an error for anything else; "auto" takes the fast core when it applies.
    """
    if horizon is not None and not horizon > 0:
        raise ValueError(f"horizon must be > 0 seconds, got {horizon}")
    from .fast import simulate_fast, use_fast_core
    if use_fast_core(engine, policy, batch_time):
        return simulate_fast(policy, batch_time, requests, horizon=horizon,
                             record_composition=record_composition)
    kernel = Kernel()
    rlog, ilog = RequestLog(), IterationLog(keep_plans=record_composition)
    sim = SimEngine(kernel, policy, batch_time, request_log=rlog, iteration_log=ilog, validate=validate)
    labels: dict[int, str] = {}
    _Feeder(kernel, sim, iter(requests), labels)
    kernel.run(until=horizon)
    sim.flush_unfinished()
    if ilog.plans is not None and len(ilog.plans) > len(ilog.columns["start_time"]):
        ilog.plans = ilog.plans[: len(ilog.columns["start_time"])]
    import pandas as pd

    req_df = pd.DataFrame(rlog.rows, columns=list(RequestLog.COLUMNS))
    req_df = req_df.sort_values("request_id", kind="stable").reset_index(drop=True)
    it_df = pd.DataFrame({c: np.frombuffer(v, dtype=np.float64 if v.typecode == "d" else np.int64)
                          if len(v) else np.array([], dtype=np.float64 if v.typecode == "d" else np.int64)
                          for c, v in ilog.columns.items()})
    # An iteration still running at the horizon has not ended: drop it from the log.
    if horizon is not None and len(it_df) and it_df["end_time"].iloc[-1] > horizon:
        it_df = it_df.iloc[:-1]
        if ilog.plans is not None:
            ilog.plans = ilog.plans[:-1]
    return SimResult(
        requests=req_df, iterations=it_df, itl=np.frombuffer(sim.itl, dtype=np.float64).copy(),
        end_time=kernel.now, tokens_arrived=sim.tokens_arrived,
        tokens_processed=sim.tokens_processed, tokens_left=sim.backlog_tokens,
        policy=policy, batch_time=batch_time, compositions=ilog.plans, labels=labels)
