"""Memory-aware policies: a vLLM-v1-style scheduler and a threshold admission rule.

They read the KV cache (free blocks, who is resident) when the engine models memory; the policy
package does not import the memory model at module level (the view type is only needed at run
time, when an engine with memory hands one over). Both are pure functions of the view. On a
:class:`MemoryView` they plan memory the way the engine will reserve it; on a plain
:class:`EngineView` (no memory) every request counts as running and :class:`VLLMV1` plans
exactly what Sarathi-Serve plans.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..engine.plan import BatchPlan
from ..engine.state import EngineView, RequestState
from ..engine.view import MemoryView
from .base import Policy


def _memory_view(view: EngineView) -> MemoryView | None:
    """``view`` when it carries the KV cache (a MemoryView), else None."""
    return view if isinstance(view, MemoryView) else None


@dataclass(frozen=True)
class VLLMV1(Policy):
    """vLLM v1's scheduler, stylised: one token budget for prefill and decode, chunked prefill.

    Order: decode tokens of running requests, then prefill chunks of running requests, then
    waiting requests (new, or preempted) while their next step fits in free memory; the first
    waiting request that does not fit stops admission (FCFS). ``max_batch_size`` is vLLM's
    max-num-seqs. ``class_order`` (highest first) gives priority scheduling; empty is FCFS.
    With prefix caching a waiting request is planned with its cache hit already subtracted
    (``MemoryView.prefix_hit_tokens``). When running requests cannot grow, the engine preempts
    in :meth:`victim_order`: the lowest-priority resident request, latest arrival first.
    """

    class_order: tuple[str, ...] = ()
    name = "vllm-v1"
    label = "vLLM v1"
    description = ("decode tokens of running requests, their prompt chunks, then waiting requests while their "
                   "next step fits in free KV memory (FCFS, or by class priority); without memory, as sarathi")
    work_conserving = True
    mixes_prefill_decode = True
    memory_aware = True

    def _ordered(self, view: EngineView) -> list[RequestState]:
        reqs = list(view.requests)
        if self.class_order:
            rank = {c: i for i, c in enumerate(self.class_order)}
            reqs.sort(key=lambda s: (rank.get(s.job_class, len(rank)), s.order))
        return reqs

    def victim_order(self, view: MemoryView) -> list[int]:
        """Resident requests in the order the engine should preempt them (first = first victim):
        lowest priority class first, and within a class the latest arrival first, as vLLM's
        priority scheduling does; with no ``class_order``, simply latest arrival first."""
        rank = {c: i for i, c in enumerate(self.class_order)}
        resident = [s for s in view.requests if view.is_resident(s)]
        resident.sort(key=lambda s: (rank.get(s.job_class, len(rank)), s.order), reverse=True)
        return [s.request_id for s in resident]

    def gate(self, view: MemoryView) -> Callable[[RequestState], bool] | None:
        """Extra admission test for waiting requests, as a function ``ok(state) -> bool`` that is
        called in admission order and may count what it admitted; None: no extra test."""
        return None

    def __call__(self, view: EngineView) -> BatchPlan:
        reqs = self._ordered(view)
        mem = _memory_view(view)
        budget, slots = self.token_budget, self.slots
        running = reqs if mem is None else [s for s in reqs if mem.is_resident(s)]
        decode: list[int] = []
        prefill: list[tuple[int, int]] = []
        free = mem.free_blocks if mem is not None else 0
        for s in running:
            if budget == 0 or len(decode) == slots:
                break
            if s.decode_eligible:
                decode.append(s.request_id)
                budget -= 1
                if mem is not None:
                    free -= mem.extra_blocks(s, 1)
        for s in running:
            if budget == 0 or len(decode) + len(prefill) == slots:
                break
            if s.prefill_left > 0:
                n = min(s.prefill_left, budget)
                prefill.append((s.request_id, n))
                budget -= n
                if mem is not None:
                    free -= mem.extra_blocks(s, n)
        if mem is not None and free >= 0:
            ok = self.gate(mem)
            for s in reqs:
                if budget == 0 or len(decode) + len(prefill) == slots:
                    break
                if mem.is_resident(s):
                    continue
                n = 1 if s.decode_eligible else min(s.prefill_left - mem.prefix_hit_tokens(s), budget)
                need = mem.extra_blocks(s, n)
                if need > free or (ok is not None and not ok(s)):
                    break
                free -= need
                if s.decode_eligible:
                    decode.append(s.request_id)
                else:
                    prefill.append((s.request_id, n))
                budget -= n
        return BatchPlan(prefill=tuple(prefill), decode=tuple(decode))


@dataclass(frozen=True)
class ThresholdAdmission(VLLMV1):
    """Admit a waiting request only while the *projected* KV of the admitted ones stays under a threshold.

    Each resident request is projected to its final size, prompt + reserve decode tokens (at
    least its current KV); a waiting request is admitted only if the projected total, with it,
    is at most ``threshold`` x capacity. ``reserve``: "declared" uses the request's own decode
    length (a known max-tokens bound) and with ``threshold`` 1 guarantees that no request is ever
    preempted; "mean" uses ``mean_decode`` for every request (no length knowledge), which keeps
    memory fuller at the price of rare preemptions. In the spirit of WAIT (Ao et al.) and of
    flow control (Dong and Cao), spec section 6.
    """

    threshold: float = 1.0
    reserve: str = "declared"
    mean_decode: float = 0.0
    name = "threshold"
    label = "threshold admission"
    description = ("as vllm-v1, but a waiting request is admitted only while the projected KV of the admitted "
                   "ones stays under a threshold of the memory (no preemption storms)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.reserve not in ("declared", "mean"):
            raise ValueError(f"reserve must be 'declared' or 'mean', got {self.reserve!r}")
        if self.reserve == "mean" and not self.mean_decode > 0:
            raise ValueError("reserve 'mean' needs mean_decode > 0 (the mean decode length)")

    def _final_blocks(self, s: RequestState, view: MemoryView) -> int:
        r = s.request
        reserve = r.decode_tokens if self.reserve == "declared" else self.mean_decode
        final = max(s.context_tokens, r.prompt_tokens + int(round(reserve)))
        return view.blocks_for(min(final, r.total_tokens) if self.reserve == "declared" else final)

    def gate(self, view: MemoryView) -> Callable[[RequestState], bool] | None:
        by_id = {x.request_id: x for x in view.requests}
        projected = [sum(max(held, self._final_blocks(by_id[rid], view))
                         for rid, held in view.kv_blocks.items() if rid in by_id)]
        limit = self.threshold * view.capacity_blocks

        def ok(s: RequestState) -> bool:
            need = self._final_blocks(s, view)
            if projected[0] + need > limit:
                return False
            projected[0] += need
            return True
        return ok

    def describe(self) -> str:
        return f"{super().describe()[:-1]}, admit under {self.threshold:g} x KV, reserve {self.reserve})"
