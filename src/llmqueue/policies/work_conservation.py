"""Check whether a policy is work-conserving (spec section 2, v3 eqs. 8-9), on random states.

A batch is work-conserving when it holds ``min(token_budget, D)`` tokens, with
``D = sum_i (p_i + 1{p_i = 0 and decode left})``. With a batch-size limit k_max the most a
batch can hold is the sum of the k_max largest per-request demands, capped by the budget; the
check uses that bound (it equals the spec's without k_max).

:func:`check_work_conserving` searches engine states with hypothesis and returns the smallest
counterexample it finds (hypothesis shrinks it), or None. hypothesis is imported when a check
runs, not with the package (it costs a second at start-up).

:func:`find_idle_budget_witness` looks for the non-work-conserving step that matters in
practice (the paper's vanilla vLLM): a state where every prompt fits the budget, the policy's
batch is not empty, decode-eligible requests wait outside it, and token budget is left idle.
It searches small states exhaustively (a prompt that never fits, the trivial stall, is not one).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
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


@dataclass(frozen=True)
class IdleBudgetWitness:
    """A state where the policy's batch leaves ``idle_tokens`` of the budget unused (that a valid
    batch could have filled) while the
    decode-eligible requests ``waiting_decodes`` are left out of it (every prompt fits the budget)."""

    view: EngineView
    plan: BatchPlan
    token_budget: int
    idle_tokens: int
    waiting_decodes: tuple[int, ...]

    def __str__(self) -> str:
        lines = [f"batch of {self.plan.tokens} tokens leaves {self.idle_tokens} of the budget "
                 f"{self.token_budget} idle while request(s) {list(self.waiting_decodes)} wait to decode "
                 f"(every prompt fits the budget: not the stall of an oversized prompt)", "state (FCFS order):"]
        for s in self.view.requests:
            kind = "prompt waiting" if s.prefill_left > 0 else "decode-eligible"
            lines.append(f"  request {s.request_id}: prefill_left={s.prefill_left}, "
                         f"decode_left={s.decode_left} ({kind})")
        lines.append(f"plan: prefill={list(self.plan.prefill)} decode={list(self.plan.decode)}")
        return "\n".join(lines)


def _small_views(token_budget: int, max_requests: int) -> Iterator[EngineView]:
    """Every state of up to ``max_requests`` requests whose prompts and decodes take a few sizes
    below the budget (1, half and the whole budget), each prefilled or not, smallest first."""
    sizes = sorted({1, max(1, token_budget // 2), token_budget})
    rows = [(p, d, started) for p in sizes for d in (1, 2) for started in (False, True)]
    for n in range(1, max_requests + 1):
        for combo in itertools.product(rows, repeat=n):
            states = []
            for i, (p, d, started) in enumerate(combo):
                req = Request(request_id=i, arrival_time=0.0, prompt_tokens=p, decode_tokens=d)
                states.append(RequestState.make(req, i, prefill_left=0 if started else p))
            yield EngineView(now=0.0, requests=tuple(states))


def find_idle_budget_witness(policy: Policy, max_requests: int = 3) -> IdleBudgetWitness | None:
    """The first small state (exhaustive search, :func:`_small_views`) on which ``policy`` forms a
    non-empty valid batch that leaves budget idle while decode-eligible requests wait outside it,
    or None when there is none."""
    b = policy.token_budget
    for view in _small_views(b, max_requests):
        try:
            plan = policy(view)
            validate_plan(plan, view, b, policy.max_batch_size)
        except PlanError:
            continue
        want = max_batch_tokens(view, b, policy.max_batch_size)
        if plan.tokens == 0 or plan.tokens >= want:
            continue
        in_plan = {rid for rid, _ in plan.prefill} | set(plan.decode)
        waiting = tuple(s.request_id for s in view.requests if s.decode_eligible and s.request_id not in in_plan)
        if waiting:
            return IdleBudgetWitness(view, plan, b, want - plan.tokens, waiting)
    return None


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
