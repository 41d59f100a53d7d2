"""The simulated engine with a KV-cache memory: admission, preemption, recompute and swap.

:class:`MemorySimEngine` is a :class:`~llmqueue.sim.engine.SimEngine` that overrides its three
hooks. The policy still decides the batch (a pure function of a :class:`MemoryView`); the engine
then makes the batch fit in memory (:meth:`_admit`):

1. *running* requests of the plan (their KV is resident) reserve the blocks their step adds, in
   plan order (decode tokens, then prefill chunks). When one cannot grow, the engine preempts
   the latest-arrived resident request (vLLM's victim choice) until it fits, possibly itself;
2. then, only if nothing was preempted in this step, *waiting* requests of the plan are
   admitted in plan order while their step (plus a swapped request's KV) fits; the first that
   does not fit stops admission (FCFS: no overtaking of a large head request).

If that leaves an empty batch while work waits, the engine asks the policy again with the
resident requests only, then with everything on an empty cache, so a memory-unaware policy
never freezes. Every preemption is recorded (:attr:`preemptions`).
"""

from __future__ import annotations

from array import array
from types import MappingProxyType

from ..engine.plan import BatchPlan, validate_plan
from ..engine.request import Request
from ..engine.state import EngineView
from ..sim.engine import SimEngine
from .config import MemoryConfig
from .view import MemoryView

#: Columns of the preemptions table (one row per preemption).
PREEMPTION_COLUMNS = ("time", "iteration", "request_id", "mode", "kv_tokens", "for_request_id")
#: Extra per-iteration columns the memory engine records.
MEMORY_ITERATION_COLUMNS = ("kv_used_tokens", "preemptions", "swap_tokens", "swap_time")


class KVCacheError(ValueError):
    """A request that can never run: its whole KV cache is larger than the memory."""


class MemorySimEngine(SimEngine):
    """A :class:`SimEngine` whose requests' KV caches live in a paged memory of ``memory``."""

    def __init__(self, *args, memory: MemoryConfig, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.memory = memory
        self.free_blocks = memory.num_blocks
        self._held: dict[int, int] = {}          # resident request -> blocks held
        self._swapped: dict[int, int] = {}       # request -> KV tokens in host memory
        self._host_used = 0
        self._kept_prefill_end: dict[int, float] = {}
        self.tokens_recomputed = 0
        self.preemptions: list[tuple] = []
        self.preemption_count: dict[int, int] = {}
        self.mem_columns = {c: array("d" if c == "swap_time" else "q") for c in MEMORY_ITERATION_COLUMNS}
        self.peak_blocks = 0
        self._step_preempt = 0
        self._step_swap_tokens = 0

    # -- arrivals -----------------------------------------------------------------------------
    def submit(self, request: Request) -> None:
        need = self.memory.blocks_for(request.total_tokens)
        if need > self.memory.num_blocks:
            raise KVCacheError(
                f"{self.name}: request {request.request_id} needs {request.total_tokens} KV tokens "
                f"({need} blocks) at its end, more than the whole KV cache "
                f"({self.memory.num_blocks} blocks of {self.memory.block_size}): it can never run. "
                f"Raise memory.capacity_tokens or cap prompt + decode tokens.")
        super().submit(request)

    # -- hooks --------------------------------------------------------------------------------
    def _make_view(self, now: float) -> EngineView:
        return self._view(now, tuple(self._states.values()), self.free_blocks)

    def _view(self, now: float, requests: tuple, free_blocks: int) -> MemoryView:
        b = self.memory.block_size
        return MemoryView(now=now, requests=requests, free_kv_tokens=free_blocks * b, block_size=b,
                          capacity_blocks=self.memory.num_blocks,
                          kv_blocks=MappingProxyType(self._held),
                          swapped_tokens=MappingProxyType(self._swapped))

    def _admit(self, plan: BatchPlan, view: EngineView) -> BatchPlan:
        self._step_preempt = 0
        self._step_swap_tokens = 0
        kept = self._fit(plan, allow_new=True)
        if kept.is_empty and self._states:
            residents = tuple(s for s in self._states.values() if s.request_id in self._held)
            if residents:
                kept = self._fit(self._ask(self._view(view.now, residents, self.free_blocks)), True)
            if kept.is_empty and not self._held:
                kept = self._fit(self._ask(self._make_view(view.now)), allow_new=True, force=True)
        return kept

    def _iteration_time(self, plan: BatchPlan) -> float:
        swap_s = self._step_swap_tokens * self.memory.swap_s_per_token
        c = self.mem_columns
        used = self.memory.num_blocks - self.free_blocks
        self.peak_blocks = max(self.peak_blocks, used)
        c["kv_used_tokens"].append(used * self.memory.block_size)
        c["preemptions"].append(self._step_preempt)
        c["swap_tokens"].append(self._step_swap_tokens)
        c["swap_time"].append(swap_s)
        base = super()._iteration_time(plan)
        return base + swap_s if swap_s else base

    def _finish(self, plan: BatchPlan) -> None:
        super()._finish(plan)
        states, live = self._states, self._live
        for rid in plan.request_ids():
            if rid not in states:                 # completed in this iteration: free its blocks
                self.free_blocks += self._held.pop(rid)
                self._kept_prefill_end.pop(rid, None)
            elif rid in self._kept_prefill_end and states[rid].prefill_left == 0:
                live[rid].prefill_end = self._kept_prefill_end.pop(rid)   # recompute is not a new prefill

    # -- making a plan fit --------------------------------------------------------------------
    def _ask(self, view: MemoryView) -> BatchPlan:
        plan = self.policy(view)
        if self.validate:
            validate_plan(plan, view, self.policy.token_budget, self.policy.max_batch_size)
        return plan

    def _fit(self, plan: BatchPlan, allow_new: bool, force: bool = False) -> BatchPlan:
        """Reserve blocks for ``plan``'s steps; return the part of it that runs."""
        held, states = self._held, self._states
        steps = [(rid, 1) for rid in plan.decode] + list(plan.prefill)
        kept: set[int] = set()
        preempted = False
        for rid, n in steps:
            if rid not in held:
                continue
            s = states[rid]
            while rid in held:
                extra = self.memory.blocks_for(s.context_tokens + n) - held[rid]
                if extra <= self.free_blocks:
                    self.free_blocks -= extra
                    held[rid] += extra
                    kept.add(rid)
                    break
                victim = max(held, key=lambda r: states[r].order)
                self._preempt(victim, rid)
                kept.discard(victim)
                preempted = True
        if allow_new and (force or not preempted):
            for rid, n in steps:
                if rid in held or rid in kept:
                    continue
                s = states[rid]
                host = self._swapped.get(rid, 0)
                need = self.memory.blocks_for(s.context_tokens + n)
                if need > self.free_blocks:
                    break
                self.free_blocks -= need
                held[rid] = need
                kept.add(rid)
                if host:
                    del self._swapped[rid]
                    self._host_used -= host
                    self._step_swap_tokens += host
        if len(kept) == len(steps):
            return plan
        return BatchPlan(prefill=tuple((r, n) for r, n in plan.prefill if r in kept),
                         decode=tuple(r for r in plan.decode if r in kept))

    def _preempt(self, victim: int, for_rid: int) -> None:
        """Take ``victim``'s KV out of GPU memory: to host (swap) or away (recompute)."""
        s = self._states[victim]
        kv = s.context_tokens
        self.free_blocks += self._held.pop(victim)
        cfg = self.memory
        host_cap = cfg.host_capacity_tokens
        if cfg.preemption == "swap" and (host_cap is None or self._host_used + kv <= host_cap):
            mode = "swap"
            if kv:
                self._swapped[victim] = kv
                self._host_used += kv
                self._step_swap_tokens += kv
        else:
            mode = "recompute"
            lv = self._live[victim]
            if lv.prefill_end == lv.prefill_end and victim not in self._kept_prefill_end:
                self._kept_prefill_end[victim] = lv.prefill_end
            s._prefill_left += kv               # re-prefill prompt + generated tokens
            self.backlog_tokens += kv
            self.tokens_recomputed += kv
        self._step_preempt += 1
        self.preemption_count[victim] = self.preemption_count.get(victim, 0) + 1
        self.preemptions.append((self.kernel.now, len(self.mem_columns["preemptions"]), victim, mode,
                                 kv, for_rid))

    @property
    def used_blocks(self) -> int:
        return self.memory.num_blocks - self.free_blocks
