"""The four real-system policies of the paper's section 4, as the spec's table states them.

Each is FCFS over the engine's requests (the view's order). "Decode-eligible" means prefill
done and decode left. They come in two families that differ only in which kind of work goes
first: FasterTransformer and vanilla vLLM never mix prefill and decode in one batch
(:class:`_Unmixed`), Orca and Sarathi-Serve fill one kind and give what is left to the other
(:class:`_Mixed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..engine.plan import BatchPlan
from ..engine.state import EngineView, RequestState
from .base import Policy, fill_chunks, fill_decodes, fill_whole_prefills


def _decodes(reqs: Sequence[RequestState], budget: int, slots: int) -> BatchPlan:
    return BatchPlan(decode=tuple(fill_decodes(reqs, budget, slots)))


def _chunks(reqs: Sequence[RequestState], budget: int, slots: int) -> BatchPlan:
    return BatchPlan(prefill=tuple(fill_chunks(reqs, budget, slots)))


@dataclass(frozen=True)
class _Unmixed(Policy):
    """Decode-only or whole-prefill batches, never both.

    ``decode_first``: a decode-only batch whenever anything is decode-eligible, else whole
    prefills; otherwise whole prefills whenever any prompt is waiting, else decode-only.
    """

    whole_prefill = True
    decode_first: ClassVar[bool]

    def __call__(self, view: EngineView) -> BatchPlan:
        reqs = view.requests
        if self.decode_first:
            decode = any(s.decode_eligible for s in reqs)
        else:
            decode = not any(s.prefill_left > 0 for s in reqs)
        if decode:
            return _decodes(reqs, self.token_budget, self.slots)
        return BatchPlan(prefill=tuple(fill_whole_prefills(reqs, self.token_budget, self.slots)))


@dataclass(frozen=True)
class _Mixed(Policy):
    """Prefill chunks (FCFS, chunking the last) and decode tokens in one batch: the first kind
    (decodes if ``decode_first``, else chunks) fills the budget and slots, the other what is left."""

    work_conserving = True
    mixes_prefill_decode = True
    decode_first: ClassVar[bool]

    def __call__(self, view: EngineView) -> BatchPlan:
        reqs = view.requests
        first, then = (_decodes, _chunks) if self.decode_first else (_chunks, _decodes)
        a = first(reqs, self.token_budget, self.slots)
        b = then(reqs, self.token_budget - a.tokens, self.slots - a.num_requests)
        return BatchPlan(prefill=a.prefill + b.prefill, decode=a.decode + b.decode)


@dataclass(frozen=True)
class FasterTransformer(_Unmixed):
    """Decode-only batches while anything decodes; else whole prefills that fit (not mixed)."""

    name = "fastertransformer"
    label = "FasterTransformer"
    description = ("if anything is decode-eligible, a decode-only batch (one token each); otherwise whole "
                   "prompts while each fits, stopping at the first that does not")
    decode_first = True


@dataclass(frozen=True)
class VanillaVLLM(_Unmixed):
    """Whole prefills first whenever any prompt is waiting; else decode-only (not mixed)."""

    name = "vllm"
    label = "vanilla vLLM"
    description = "if any prompt is waiting, whole prompts while each fits; otherwise a decode-only batch"
    decode_first = False


@dataclass(frozen=True)
class Orca(_Mixed):
    """Prefill chunks first (FCFS, chunking the last), then decode tokens into what is left."""

    name = "orca"
    label = "Orca"
    description = ("prompt chunks first (as much of each prompt as fits, in order), then one decode token per "
                   "decode-eligible request into what is left")
    decode_first = False


@dataclass(frozen=True)
class SarathiServe(_Mixed):
    """Decode tokens first (FCFS), then prefill chunks into what is left (stall-free batching)."""

    name = "sarathi"
    label = "Sarathi-Serve"
    description = "one decode token per decode-eligible request first, then prompt chunks into what is left"
    decode_first = True
