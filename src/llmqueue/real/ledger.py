"""Engine bookkeeping without a clock: the requests in the engine, their progress, and the logs.

This is the part of :class:`llmqueue.sim.engine.SimEngine` that does not depend on simulated
time, rewritten for an owner that reads the time from a wall clock: admit a request, show the
policy an :class:`~llmqueue.engine.EngineView` in FCFS order, check its plan, apply a finished
iteration (mutating each :class:`~llmqueue.engine.RequestState` as the simulator does) and log
request and iteration times in the simulator's own :class:`~llmqueue.sim.engine.RequestLog` and
:class:`~llmqueue.sim.engine.IterationLog`, so that runs of both engines have the same tables.
It imports no torch.
"""

from __future__ import annotations

from array import array

from ..engine.plan import BatchPlan, validate_plan
from ..engine.progress import RequestTimes, apply_plan, context_after
from ..engine.request import Request
from ..engine.state import EngineView, RequestState
from ..policies.base import Policy
from ..sim.engine import IterationLog, RequestLog, stalled

_NAN = float("nan")


class Ledger:
    """Requests in an engine and what happened to them; times are whatever the owner passes."""

    def __init__(self, policy: Policy, *, keep_plans: bool = False, validate: bool = True) -> None:
        self.policy = policy
        self.validate = validate
        self.request_log = RequestLog()
        self.iteration_log = IterationLog(keep_plans=keep_plans)
        self.itl = array("d")
        self.states: dict[int, RequestState] = {}
        self._times: dict[int, RequestTimes] = {}
        self._seq = 0
        self.backlog_tokens = 0
        self.tokens_arrived = 0
        self.tokens_processed = 0

    def admit(self, request: Request, now: float, prefill_done: int = 0) -> None:
        """The request enters the engine (seen by the next decision). ``prefill_done`` admits it
        with that much of its prompt already processed (the profiler's decoding requests)."""
        rid = request.request_id
        if rid in self.states:
            raise ValueError(f"request {rid} submitted twice")
        state = RequestState(request, self._seq)
        state._prefill_left -= prefill_done
        if state._prefill_left < 0:
            raise ValueError(f"request {rid}: prefill_done {prefill_done} exceeds its prompt")
        self.states[rid] = state
        self._seq += 1
        self._times[rid] = RequestTimes(now if state._prefill_left == 0 else _NAN)
        left = request.total_tokens - prefill_done
        self.backlog_tokens += left
        self.tokens_arrived += left

    def plan(self, now: float) -> BatchPlan:
        """Ask the policy for the next batch, check it, and refuse an empty one when work waits."""
        view = EngineView(now=now, requests=tuple(self.states.values()))
        plan = self.policy(view)
        if self.validate:
            validate_plan(plan, view, self.policy.token_budget, self.policy.max_batch_size, self.states)
        if plan.is_empty:
            head = next(iter(self.states.values()))
            raise stalled("real engine", self.policy.describe(), now, len(self.states), head.request_id,
                          head.prefill_left)
        return plan

    def context_after(self, plan: BatchPlan) -> int:
        """Total KV context of the batch after the step (the affine model's context term)."""
        return context_after(plan, self.states)

    def finish(self, plan: BatchPlan, start: float, end: float) -> list[Request]:
        """Log the iteration ``[start, end]`` and apply it; returns the requests that completed."""
        self.iteration_log.add(start, end, plan, self.backlog_tokens, len(self.states))
        states, times = self.states, self._times
        done = apply_plan(plan, states, times, end, self.itl)
        self.backlog_tokens -= plan.tokens
        self.tokens_processed += plan.tokens
        out = []
        for rid in done:
            s = states.pop(rid)
            t = times.pop(rid)
            self.request_log.add(s.request, t.prefill_end, t.first_token, end)
            out.append(s.request)
        return out

    def flush_unfinished(self) -> None:
        """Log the requests still in the engine, with NaN for what has not happened."""
        for rid, s in self.states.items():
            t = self._times[rid]
            self.request_log.add(s.request, t.prefill_end, t.first_token, _NAN)
