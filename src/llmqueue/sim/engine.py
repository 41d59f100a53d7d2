"""One simulated LLM engine: it asks its policy for a batch at every iteration boundary,
checks the plan, advances the clock by the batch time and applies the plan.

The engine is a component on a :class:`~llmqueue.sim.kernel.Kernel`, so the single-engine
simulator and the network simulator drive the same code. Requests still being served are
kept in admission (FCFS) order, which is the order policies see.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

from ..engine.batch_time import BatchTimeModel
from ..engine.plan import BatchPlan, validate_plan
from ..engine.progress import RequestTimes, apply_plan, context_after
from ..engine.request import Request
from ..engine.state import EngineView, RequestState
from ..errors import EngineStalled
from ..policies.base import Policy
from .kernel import DECIDE, ITERATION_END, Kernel


def stalled(name: str, policy_text: str, now: float, waiting: int, head_id: int,
            head_prefill_left: int) -> EngineStalled:
    """The error for an engine whose policy forms no batch while ``waiting`` requests wait
    (one message for the generic engine, the fast core and the real engine)."""
    return EngineStalled(
        f"{name}: {policy_text} forms no batch at t={now:.6g}s although {waiting} request(s) wait "
        f"(head request {head_id} has {head_prefill_left} prompt tokens left). A whole-prefill "
        f"policy cannot schedule a prompt larger than its token budget: raise token_budget or use "
        f"a chunking policy (orca, sarathi).")


class RequestLog:
    """Per-request times, as parallel columns (cheap to append, easy to turn into a DataFrame)."""

    COLUMNS = ("request_id", "arrival_time", "prompt_tokens", "decode_tokens", "prefill_end_time",
               "first_token_time", "completion_time")

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, req: Request, prefill_end: float, first_token: float, completion: float) -> None:
        self.rows.append((req.request_id, req.arrival_time, req.prompt_tokens, req.decode_tokens,
                          prefill_end, first_token, completion))


class IterationLog:
    """Per-iteration columns, plus the batch plans when asked for."""

    COLUMNS = ("start_time", "end_time", "prefill_tokens", "decode_tokens", "num_requests",
               "backlog_tokens", "num_in_system")

    def __init__(self, keep_plans: bool = False) -> None:
        self.columns: dict[str, array[Any]] = {c: array("d" if c.endswith("time") else "q") for c in self.COLUMNS}
        self.plans: list[BatchPlan] | None = [] if keep_plans else None

    def add(self, start: float, end: float, plan: BatchPlan, backlog: int, in_system: int) -> None:
        c = self.columns
        c["start_time"].append(start)
        c["end_time"].append(end)
        c["prefill_tokens"].append(plan.prefill_tokens)
        c["decode_tokens"].append(len(plan.decode))
        c["num_requests"].append(plan.num_requests)
        c["backlog_tokens"].append(backlog)
        c["num_in_system"].append(in_system)
        if self.plans is not None:
            self.plans.append(plan)


class SimEngine:
    """An engine on a kernel. ``submit`` a request; ``on_complete(request, time)`` is called when it leaves.

    ``idle_wait`` (seconds, default None) is for policies that may idle on purpose (network
    max-pressure): when set, an empty plan while work waits makes the engine decide again after
    ``idle_wait`` instead of raising :class:`EngineStalled`.
    """

    def __init__(self, kernel: Kernel, policy: Policy, batch_time: BatchTimeModel, *,
                 request_log: RequestLog | None = None, iteration_log: IterationLog | None = None,
                 on_complete: Callable[[Request, float], None] | None = None,
                 validate: bool = True, name: str = "engine", idle_wait: float | None = None) -> None:
        self.kernel = kernel
        self.policy = policy
        self.batch_time = batch_time
        self.request_log = request_log if request_log is not None else RequestLog()
        self.iteration_log = iteration_log if iteration_log is not None else IterationLog()
        self.on_complete = on_complete
        self.validate = validate
        self.name = name
        if idle_wait is not None and not idle_wait > 0:
            raise ValueError(f"{name}: idle_wait must be > 0 seconds, got {idle_wait!r}")
        self.idle_wait = idle_wait
        self._states: dict[int, RequestState] = {}
        self._live: dict[int, RequestTimes] = {}
        self._seq = 0
        self._busy = False            # an iteration is running or a decision is scheduled
        self.backlog_tokens = 0       # unprocessed tokens of requests in this engine
        self.tokens_arrived = 0
        self.tokens_processed = 0
        self.itl = array("d")         # every gap between consecutive output tokens of a request

    # -- arrivals -----------------------------------------------------------------------------
    def submit(self, request: Request) -> None:
        """A request enters the engine now; it is seen at the next iteration boundary."""
        rid = request.request_id
        if rid in self._states:
            raise ValueError(f"{self.name}: request {rid} submitted twice")
        self._states[rid] = RequestState(request, self._seq)
        self._seq += 1
        self._live[rid] = RequestTimes(self.kernel.now if request.prompt_tokens == 0 else float("nan"))
        self.backlog_tokens += request.total_tokens
        self.tokens_arrived += request.total_tokens
        if not self._busy:
            self._busy = True
            self.kernel.schedule(self.kernel.now, self._decide, DECIDE)

    @property
    def num_in_system(self) -> int:
        return len(self._states)

    # -- one iteration ------------------------------------------------------------------------
    def _decide(self) -> None:
        if not self._states:
            self._busy = False
            return
        now = self.kernel.now
        view = self._make_view(now)
        plan = self.policy(view)
        if self.validate:
            validate_plan(plan, view, self.policy.token_budget, self.policy.max_batch_size,
                          self._states)
        plan = self._admit(plan, view)
        if plan.is_empty and self.idle_wait is not None:
            self.kernel.schedule(now + self.idle_wait, self._decide, DECIDE)   # idle on purpose, look again
            return
        if plan.is_empty:
            head = next(iter(self._states.values()))
            raise stalled(self.name, self.policy.describe(), now, len(self._states), head.request_id,
                          head.prefill_left)
        end = now + self._iteration_time(plan)
        self.iteration_log.add(now, end, plan, self.backlog_tokens, len(self._states))
        self.kernel.schedule(end, lambda: self._finish(plan), ITERATION_END)

    # -- hooks a subclass may override (the memory engine, llmqueue.memory, does) -------------
    def _make_view(self, now: float) -> EngineView:
        """The view the policy decides on: every request with work, in admission order."""
        return EngineView(now=now, requests=tuple(self._states.values()))

    def _admit(self, plan: BatchPlan, view: EngineView) -> BatchPlan:
        """The plan actually run, after the policy's plan is validated; here the plan itself."""
        return plan

    def _iteration_time(self, plan: BatchPlan) -> float:
        """Seconds the iteration running ``plan`` takes (the batch-time model)."""
        if self.batch_time.load_only:
            return self.batch_time.load_time(plan.tokens)
        return self.batch_time.duration(plan.prefill_tokens, len(plan.decode), context_after(plan, self._states))

    def _finish(self, plan: BatchPlan) -> None:
        now = self.kernel.now
        states, live = self._states, self._live
        done = apply_plan(plan, states, live, now, self.itl)
        n_tokens = plan.tokens
        self.backlog_tokens -= n_tokens
        self.tokens_processed += n_tokens
        for rid in done:
            s = states.pop(rid)
            lv = live.pop(rid)
            self.request_log.add(s.request, lv.prefill_end, lv.first_token, now)
            if self.on_complete is not None:
                self.on_complete(s.request, now)
        self.kernel.schedule(now, self._decide, DECIDE)

    # -- end of run ---------------------------------------------------------------------------
    def flush_unfinished(self) -> None:
        """Log the requests still in the engine, with empty (NaN) times for what has not happened."""
        nan = float("nan")
        for rid, s in self._states.items():
            lv = self._live[rid]
            self.request_log.add(s.request, lv.prefill_end, lv.first_token, nan)

    def remaining(self) -> list[RequestState]:
        return list(self._states.values())
