"""Check whether a policy is work-conserving (spec section 2, v3 eqs. 8-9), on random states.

A batch is work-conserving when it holds ``min(token_budget, D)`` tokens, with
``D = sum_i (p_i + 1{p_i = 0 and decode left})``. With a batch-size limit k_max the most a
batch can hold is the sum of the k_max largest per-request demands, capped by the budget; the
check uses that bound (it equals the spec's without k_max).

:func:`check_work_conserving` searches engine states with hypothesis and returns the smallest
counterexample it finds (hypothesis shrinks it), or None. hypothesis is imported when a check
runs, not with the package (it costs a second at start-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engine.plan import BatchPlan, validate_plan
from ..engine.request import Request
from ..engine.state import EngineView, RequestState
from ..errors import PlanError

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
from .base import Policy


def max_batch_tokens(view: EngineView, token_budget: int, max_batch_size: int | None) -> int:
    """The most tokens any valid batch can hold in this state."""
    demands = sorted((s.demand for s in view.requests), reverse=True)
    if max_batch_size is not None:
        demands = demands[:max_batch_size]
    return min(token_budget, sum(demands))


def is_work_conserving_plan(plan: BatchPlan, view: EngineView, token_budget: int,
                            max_batch_size: int | None = None) -> bool:
    return plan.tokens == max_batch_tokens(view, token_budget, max_batch_size)


@dataclass(frozen=True)
class Counterexample:
    """An engine state on which a policy's batch is invalid or not full."""

    view: EngineView
    plan: BatchPlan | None
    reason: str

    def __str__(self) -> str:
        lines = [self.reason, "state (FCFS order):"]
        for s in self.view.requests:
            lines.append(f"  request {s.request_id}: prefill_left={s.prefill_left}, decode_left={s.decode_left}")
        if self.plan is not None:
            lines.append(f"plan: prefill={list(self.plan.prefill)} decode={list(self.plan.decode)}")
        return "\n".join(lines)


def _state_strategy(max_tokens: int, max_requests: int) -> SearchStrategy[EngineView]:
    from hypothesis import strategies as st
    one = st.tuples(st.integers(0, max_tokens), st.integers(0, max_tokens), st.booleans())

    def build(rows: list[tuple[int, int, bool]]) -> EngineView:
        states = []
        for i, (p, d, started) in enumerate(rows):
            if p + d == 0:
                d = 1
            # "started" requests have finished their prefill (possibly with decode left).
            req = Request(request_id=i, arrival_time=0.0, prompt_tokens=p, decode_tokens=d)
            states.append(RequestState.make(req, i, prefill_left=0 if started else p))
        return EngineView(now=0.0, requests=tuple(s for s in states if s.demand > 0))

    return st.lists(one, min_size=0, max_size=max_requests).map(build)


def _failure(policy: Policy, view: EngineView) -> str | None:
    try:
        plan = policy(view)
        validate_plan(plan, view, policy.token_budget, policy.max_batch_size)
    except PlanError as e:
        return f"invalid plan: {e}"
    want = max_batch_tokens(view, policy.token_budget, policy.max_batch_size)
    if plan.tokens != want:
        return f"batch holds {plan.tokens} tokens where {want} could be scheduled"
    return None


def check_work_conserving(policy: Policy, max_examples: int = 2000, max_requests: int = 8,
                          max_tokens: int | None = None) -> Counterexample | None:
    """Return a (shrunk) counterexample state, or None if every state tried was work-conserving."""
    from hypothesis import HealthCheck, find, settings
    from hypothesis.errors import NoSuchExample
    if max_tokens is None:
        max_tokens = max(2, 2 * policy.token_budget)
    cfg = settings(max_examples=max_examples, database=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))
    try:
        view = find(_state_strategy(max_tokens, max_requests),
                    lambda v: _failure(policy, v) is not None, settings=cfg)
    except NoSuchExample:
        return None
    try:
        plan = policy(view)
    except Exception:  # noqa: BLE001 - the reason already says what went wrong
        plan = None
    return Counterexample(view=view, plan=plan, reason=_failure(policy, view) or "")
