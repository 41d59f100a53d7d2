"""The policy interface, the base of wrapping policies, and the batch-filling loops the real-system policies share.

A policy is a pure function of an :class:`~llmqueue.engine.EngineView`: same view, same plan.
Policies are frozen dataclasses so that their parameters (token budget, k_max) travel with them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from ..engine.plan import BatchPlan
from ..engine.state import EngineView, RequestState


@dataclass(frozen=True)
class Policy(ABC):
    """A batch scheduling policy with a token budget (b_max) and an optional k_max."""

    token_budget: int
    max_batch_size: int | None = None

    #: Short name used in scenario files and on the command line.
    name = "policy"
    #: Whether the policy schedules prompts only whole (a prompt larger than the budget freezes it).
    whole_prefill = False
    #: Whether the policy is work-conserving in the sense of spec section 2 (without k_max).
    work_conserving = False
    #: Whether one batch may hold prompt chunks and decode tokens together.
    mixes_prefill_decode = False
    #: Whether the policy reads free KV memory when the engine models it.
    memory_aware = False
    #: Display name and one-line description of one batch (the registry's and the docs' table).
    label = "policy"
    description = ""

    def __post_init__(self) -> None:
        if not isinstance(self.token_budget, int) or self.token_budget < 1:
            raise ValueError(f"token_budget must be a positive integer, got {self.token_budget!r}")
        if self.max_batch_size is not None and (not isinstance(self.max_batch_size, int)
                                                or self.max_batch_size < 1):
            raise ValueError(f"max_batch_size must be a positive integer or null, got {self.max_batch_size!r}")

    @abstractmethod
    def __call__(self, view: EngineView) -> BatchPlan:
        """The batch for the next iteration."""

    @property
    def slots(self) -> int:
        """How many requests a batch may hold (k_max, or unlimited)."""
        return self.max_batch_size if self.max_batch_size is not None else 1 << 62

    def describe(self) -> str:
        k = f", max_batch_size {self.max_batch_size}" if self.max_batch_size is not None else ""
        return f"{self.name} (token budget {self.token_budget}{k})"


@dataclass(frozen=True)
class InnerPolicy(Policy):
    """A policy that orders or filters the requests and lets an ``inner`` policy fill the batch
    (class priority, max-pressure): whole-prompt scheduling and work conservation are the
    inner policy's."""

    inner: Policy | None = None

    @property
    def base(self) -> Policy:
        """The inner policy (never None after construction)."""
        assert self.inner is not None
        return self.inner

    @property
    def work_conserving(self) -> bool:  # type: ignore[override]
        return self.base.work_conserving

    @property
    def whole_prefill(self) -> bool:  # type: ignore[override]
        return self.base.whole_prefill


def fill_decodes(states: Iterable[RequestState], budget: int, slots: int) -> list[int]:
    """One decode token per decode-eligible request, in the given order, while budget and slots last."""
    out: list[int] = []
    if budget <= 0 or slots <= 0:
        return out
    limit = min(budget, slots)
    for s in states:
        if s.decode_eligible:
            out.append(s.request_id)
            if len(out) == limit:
                break
    return out


def fill_chunks(states: Iterable[RequestState], budget: int, slots: int) -> list[tuple[int, int]]:
    """Prefill chunks in order, as much as possible from each request before the next."""
    out: list[tuple[int, int]] = []
    if budget <= 0 or slots <= 0:
        return out
    for s in states:
        p = s.prefill_left
        if p > 0:
            n = p if p < budget else budget
            out.append((s.request_id, n))
            budget -= n
            if budget == 0 or len(out) == slots:
                break
    return out


def fill_whole_prefills(states: Iterable[RequestState], budget: int, slots: int) -> list[tuple[int, int]]:
    """Whole prefills in order while each fits whole; stop at the first that does not fit."""
    out: list[tuple[int, int]] = []
    if slots <= 0:
        return out
    for s in states:
        p = s.prefill_left
        if p > 0:
            if p > budget:
                break
            out.append((s.request_id, p))
            budget -= p
            if len(out) == slots:
                break
    return out
