"""Strict priority by job class around any inner policy.

Classes are served in the order given: the inner policy fills the batch from the first class's
requests, then what budget and slots remain go to the next class, and so on. Within a class the
inner policy's own rule (for example Sarathi's decodes-first FCFS) applies. Used by the network
scenarios (spec section 5: priority to the class that leaves versus the reverse).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..engine.plan import BatchPlan
from ..engine.state import EngineView, RequestState
from .base import InnerPolicy


@dataclass(frozen=True)
class ClassPriority(InnerPolicy):
    """Strict priority over ``class_order``; classes not listed come last, in FCFS order."""

    class_order: tuple[str, ...] = field(default_factory=tuple)

    name = "priority"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.inner is None:
            raise ValueError("ClassPriority needs an inner policy")

    def __call__(self, view: EngineView) -> BatchPlan:
        rank = {c: i for i, c in enumerate(self.class_order)}
        last = len(rank)
        groups: dict[int, list[RequestState]] = {}
        for s in view.requests:
            groups.setdefault(rank.get(s.job_class, last), []).append(s)
        budget, slots = self.token_budget, self.slots
        prefill: list[tuple[int, int]] = []
        decode: list[int] = []
        for key in sorted(groups):
            if budget <= 0 or slots <= 0:
                break
            inner = dataclasses.replace(self.base, token_budget=budget,
                                        max_batch_size=None if slots >= 1 << 62 else slots)
            plan = inner(EngineView(view.now, groups[key], view.free_kv_tokens))
            prefill.extend(plan.prefill)
            decode.extend(plan.decode)
            budget -= plan.tokens
            slots -= plan.num_requests
        return BatchPlan(prefill=tuple(prefill), decode=tuple(decode))

    def describe(self) -> str:
        return f"strict class priority {list(self.class_order)} over {self.base.describe()}"
