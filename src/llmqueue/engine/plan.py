"""Batch plans: what one iteration processes, and the check of the spec's constraints (6a)-(6d).

A plan is produced by a policy and executed by an engine (the simulator or the real PyTorch
engine); both run :func:`validate_plan` first, so a policy that breaks a rule fails loudly at
the iteration where it does, with the constraint named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import PlanError
from .state import EngineView, RequestState


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """Prefill chunks ``(request_id, tokens)`` and decode tokens ``request_id`` for one iteration."""

    prefill: tuple[tuple[int, int], ...] = ()
    decode: tuple[int, ...] = ()

    @property
    def prefill_tokens(self) -> int:
        return sum(n for _, n in self.prefill)

    @property
    def decode_tokens(self) -> int:
        return len(self.decode)

    @property
    def tokens(self) -> int:
        """Token load b of the batch."""
        return self.prefill_tokens + len(self.decode)

    @property
    def num_requests(self) -> int:
        return len(self.prefill) + len(self.decode)

    @property
    def is_empty(self) -> bool:
        return not self.prefill and not self.decode

    def request_ids(self) -> list[int]:
        return [rid for rid, _ in self.prefill] + list(self.decode)


EMPTY_PLAN = BatchPlan()


def _scheduled_once(states: Mapping[int, RequestState], seen: set[int], rid: int, rule: str,
                    what: str) -> RequestState:
    """The state of ``rid``, which the plan gives one ``what`` (constraint ``rule``): it must be in
    the engine and not be in ``seen`` yet (it is added)."""
    s = states.get(rid)
    if s is None:
        raise PlanError(f"plan schedules request {rid}, which is not in the engine")
    if rid in seen:
        raise PlanError(f"{rule} request {rid} gets more than one {what} in one batch")
    seen.add(rid)
    return s


def validate_plan(plan: BatchPlan, view: EngineView, token_budget: int,
                  max_batch_size: int | None = None,
                  states: Mapping[int, RequestState] | None = None) -> None:
    """Raise :class:`PlanError` naming the first constraint ``plan`` breaks in ``view``.

    ``states`` (request id -> state of the view's requests) saves rebuilding that index when
    the caller keeps one.
    """
    if states is None:
        states = view.by_id()
    seen: set[int] = set()
    for rid, n in plan.prefill:
        s = _scheduled_once(states, seen, rid, "(6b)", "prefill chunk")
        if not isinstance(n, int) or n <= 0:
            raise PlanError(f"prefill chunk for request {rid} must be a positive integer, got {n!r}")
        if n > s.prefill_left:
            raise PlanError(f"(6b) prefill chunk of {n} tokens for request {rid} exceeds its "
                            f"remaining prefill of {s.prefill_left}")
    decode_seen: set[int] = set()
    for rid in plan.decode:
        s = _scheduled_once(states, decode_seen, rid, "(6c)", "decode token")
        if s.prefill_left > 0 or rid in seen:
            raise PlanError(f"(6a) request {rid} takes a decode token while {s.prefill_left} "
                            f"prefill tokens are left")
        if s.decode_left <= 0:
            raise PlanError(f"request {rid} takes a decode token but has no decode tokens left")
    if plan.tokens > token_budget:
        raise PlanError(f"(6d) batch holds {plan.tokens} tokens, more than the token budget {token_budget}")
    if max_batch_size is not None and plan.num_requests > max_batch_size:
        raise PlanError(f"(k_max) batch holds {plan.num_requests} requests, more than "
                        f"max_batch_size {max_batch_size}")
