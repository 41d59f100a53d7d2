"""The four real-system policies of the paper's section 4, as the spec's table states them.

Each is FCFS over the engine's requests (the view's order). "Decode-eligible" means prefill
done and decode left.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.plan import BatchPlan
from ..engine.state import EngineView
from .base import Policy, fill_chunks, fill_decodes, fill_whole_prefills


@dataclass(frozen=True)
class FasterTransformer(Policy):
    """Decode-only batches while anything decodes; else whole prefills that fit (not mixed)."""

    name = "fastertransformer"
    whole_prefill = True

    def __call__(self, view: EngineView) -> BatchPlan:
        reqs = view.requests
        if any(s.decode_eligible for s in reqs):
            return BatchPlan(decode=tuple(fill_decodes(reqs, self.token_budget, self.slots)))
        return BatchPlan(prefill=tuple(fill_whole_prefills(reqs, self.token_budget, self.slots)))


@dataclass(frozen=True)
class VanillaVLLM(Policy):
    """Whole prefills first whenever any prompt is waiting; else decode-only (not mixed)."""

    name = "vllm"
    whole_prefill = True

    def __call__(self, view: EngineView) -> BatchPlan:
        reqs = view.requests
        if any(s.prefill_left > 0 for s in reqs):
            return BatchPlan(prefill=tuple(fill_whole_prefills(reqs, self.token_budget, self.slots)))
        return BatchPlan(decode=tuple(fill_decodes(reqs, self.token_budget, self.slots)))


@dataclass(frozen=True)
class Orca(Policy):
    """Prefill chunks first (FCFS, chunking the last), then decode tokens into what is left."""

    name = "orca"
    work_conserving = True

    def __call__(self, view: EngineView) -> BatchPlan:
        reqs = view.requests
        prefill = fill_chunks(reqs, self.token_budget, self.slots)
        used = sum(n for _, n in prefill)
        decode = fill_decodes(reqs, self.token_budget - used, self.slots - len(prefill))
        return BatchPlan(prefill=tuple(prefill), decode=tuple(decode))


@dataclass(frozen=True)
class SarathiServe(Policy):
    """Decode tokens first (FCFS), then prefill chunks into what is left (stall-free batching)."""

    name = "sarathi"
    work_conserving = True

    def __call__(self, view: EngineView) -> BatchPlan:
        reqs = view.requests
        decode = fill_decodes(reqs, self.token_budget, self.slots)
        prefill = fill_chunks(reqs, self.token_budget - len(decode), self.slots - len(decode))
        return BatchPlan(prefill=tuple(prefill), decode=tuple(decode))
