"""The simulated engine with a KV-cache memory: admission, preemption, recompute and swap.

:class:`MemorySimEngine` is a :class:`~llmqueue.sim.engine.SimEngine` that overrides its three
hooks. The policy still decides the batch (a pure function of a :class:`MemoryView`); the engine
then makes the batch fit in memory (:meth:`_admit`):

1. *running* requests of the plan (their KV is resident) reserve the blocks their step adds, in
   plan order (decode tokens, then prefill chunks). When one cannot grow, the engine preempts
   resident requests in the policy's ``victim_order(view)`` (optional; default: latest arrival
   first, vLLM's FCFS choice) until it fits, possibly itself;
2. then, only if nothing was preempted in this step, *waiting* requests of the plan are
   admitted in plan order while their step (plus a swapped request's KV) fits; the first that
   does not fit stops admission (FCFS: no overtaking of a large head request).

If that leaves an empty batch while work waits, the engine asks the policy again with the
resident requests only, then with everything on an empty cache, so a memory-unaware policy
never freezes. Every preemption is recorded (:attr:`preemptions`).

Prefix caching (``MemoryConfig.prefix_caching``): the whole blocks of a shared prefix
(``Request.prefix_id``) are kept once, with a reference count per block (block j's count is the
number of resident requests whose reference covers it). A request publishes the prefix blocks its
prefill has passed, unless another request already published them (then its copy stays
private). A waiting request is admitted with the published blocks as its cache hit: those tokens
are not prefilled (``tokens_cached``) and not allocated again. Blocks nobody references stay
cached and are evicted, least recently used prefix first and from its tail, when memory is
needed (before any preemption: they count as free). Preempting or completing a request only
drops its references.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from types import MappingProxyType
from typing import Any, cast

from ..engine.plan import BatchPlan, validate_plan
from ..engine.request import Request
from ..engine.state import EngineView
from ..errors import KVCacheError
from ..sim.engine import SimEngine
from .config import MemoryConfig
from .view import MemoryView

#: Columns of the preemptions table (one row per preemption).
PREEMPTION_COLUMNS = ("time", "iteration", "request_id", "mode", "kv_tokens", "for_request_id")
#: Extra per-iteration columns the memory engine records.
MEMORY_ITERATION_COLUMNS = ("kv_used_tokens", "preemptions", "swap_tokens", "swap_time")


class _Prefix:
    """One shared prefix in memory: ``blocks`` whole blocks, ``users`` = resident request ->
    blocks it references (a leading run), ``pinned`` = the most any user references; blocks
    ``pinned..blocks-1`` are referenced by nobody and evictable."""

    __slots__ = ("blocks", "users", "pinned")

    def __init__(self) -> None:
        self.blocks, self.pinned = 0, 0
        self.users: dict[int, int] = {}


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
        self.mem_columns: dict[str, array[Any]] = {c: array("d" if c == "swap_time" else "q")
                                                   for c in MEMORY_ITERATION_COLUMNS}
        self.peak_blocks = 0
        self._step_preempt = 0
        self._step_swap_tokens = 0
        # prefix caching: prefix id -> _Prefix in LRU order; resident request -> (prefix id, blocks)
        self._prefixes: OrderedDict[str, _Prefix] = OrderedDict()
        self._refs: dict[int, tuple[str, int]] = {}
        self._evictable = 0                      # cached blocks nobody references (inside free_blocks)
        self.tokens_cached = 0
        self.prefix_queries = 0                  # prompt tokens looked up in the cache at admission
        self.prefix_hits: dict[int, int] = {}    # request -> prompt tokens served by the cache
        if memory.prefix_caching:
            self.mem_columns["kv_cached_tokens"] = array("q")

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
    def _make_view(self, now: float) -> MemoryView:
        return self._view(now, tuple(self._states.values()), self.free_blocks)

    def _view(self, now: float, requests: tuple, free_blocks: int) -> MemoryView:
        b = self.memory.block_size
        cache: dict[str, Any] = {}
        if self.memory.prefix_caching:
            cache = dict(prefix_caching=True,
                         prefix_blocks={k: p.blocks for k, p in self._prefixes.items()},
                         prefix_pinned={k: p.pinned for k, p in self._prefixes.items()})
        return MemoryView(now=now, requests=requests, free_kv_tokens=free_blocks * b, block_size=b,
                          capacity_blocks=self.memory.num_blocks,
                          kv_blocks=MappingProxyType(self._held),
                          swapped_tokens=MappingProxyType(self._swapped), **cache)

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
        if self.memory.prefix_caching:
            c["kv_cached_tokens"].append(self._evictable * self.memory.block_size)
        base = super()._iteration_time(plan)
        return base + swap_s if swap_s else base

    def _finish(self, plan: BatchPlan) -> None:
        caching = self.memory.prefix_caching
        stepped = {rid: self._states[rid] for rid in plan.request_ids()} if caching else None
        super()._finish(plan)
        states, live = self._states, self._live
        for rid in plan.request_ids():
            if stepped is not None:
                self._publish(stepped[rid])
            if rid not in states:                 # completed in this iteration: free its blocks
                self._free(rid)
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
        held, states, cfg = self._held, self._states, self.memory
        steps = [(rid, 1) for rid in plan.decode] + list(plan.prefill)
        kept: set[int] = set()
        clipped: dict[int, int] = {}
        preempted = False
        victims = None
        for rid, n in steps:
            if rid not in held:
                continue
            s = states[rid]
            while rid in held:
                extra = cfg.blocks_for(s.context_tokens + n) - held[rid]
                if extra <= self.free_blocks:
                    self._take(extra)
                    held[rid] += extra
                    kept.add(rid)
                    break
                if victims is None:
                    victims = self._victim_ranking()
                victim = next(v for v in victims if v in held)
                self._preempt(victim, rid)
                kept.discard(victim)
                preempted = True
        if allow_new and (force or not preempted):
            for rid, n in steps:
                if rid in held or rid in kept:
                    continue
                s = states[rid]
                host = self._swapped.get(rid, 0)
                fresh = cfg.prefix_caching and not host and not s.context_tokens   # looks up the cache
                hit = self._hit(s) if fresh else 0
                k = hit // cfg.block_size
                if hit:                              # the chunk shrinks to what is left to compute
                    n = min(n, s.prefill_left - hit)
                own = cfg.blocks_for(s.context_tokens + hit + n) - k
                revive = max(0, k - self._prefixes[cast(str, s.request.prefix_id)].pinned) if hit else 0
                if own + revive > self.free_blocks:
                    break
                if fresh:
                    self._apply_hit(s, hit)          # pins the hit's blocks (the revive part)
                if hit:
                    clipped[rid] = n
                self._take(own)
                held[rid] = k + own
                kept.add(rid)
                if host:
                    del self._swapped[rid]
                    self._host_used -= host
                    self._step_swap_tokens += host
        if len(kept) == len(steps) and not clipped:
            return plan
        return BatchPlan(prefill=tuple((r, clipped.get(r, n)) for r, n in plan.prefill if r in kept),
                         decode=tuple(r for r in plan.decode if r in kept))

    def _victim_ranking(self) -> list[int]:
        """Resident requests in preemption order: the policy's ``victim_order(view)`` if it has
        one (requests it leaves out follow, latest arrival first), else latest arrival first."""
        states = self._states
        default = sorted(self._held, key=lambda r: states[r].order, reverse=True)
        order = getattr(self.policy, "victim_order", None)
        if order is None:
            return default
        ranked = [r for r in order(self._make_view(self.kernel.now)) if r in self._held]
        seen = set(ranked)
        return ranked + [r for r in default if r not in seen]

    # -- blocks and the prefix cache ----------------------------------------------------------
    def _take(self, blocks: int) -> None:
        """Allocate ``blocks`` free blocks, evicting unreferenced cached prefix blocks if needed."""
        self.free_blocks -= blocks
        short = self._evictable - self.free_blocks      # blocks missing from the truly free ones
        if short > 0:
            for pid in list(self._prefixes):             # least recently used first
                p = self._prefixes[pid]
                t = min(p.blocks - p.pinned, short)
                p.blocks -= t
                short -= t
                self._evictable -= t
                if not p.blocks:
                    del self._prefixes[pid]
                if not short:
                    break

    def _free(self, rid: int) -> None:
        """Give back what ``rid`` holds: its own blocks, and its reference to a shared prefix."""
        held = self._held.pop(rid)
        ref = self._refs.pop(rid, None)
        if ref is None:
            self.free_blocks += held
            return
        pid, k = ref
        self.free_blocks += held - k
        p = self._prefixes[pid]
        del p.users[rid]
        self._pin(pid, p, max(p.users.values(), default=0))

    def _pin(self, pid: str, p: _Prefix, pinned: int) -> None:
        """Set how many of prefix ``pid``'s blocks are referenced; the rest are evictable (free)."""
        delta = pinned - p.pinned
        p.pinned = pinned
        self._evictable -= delta
        self.free_blocks -= delta
        self._prefixes.move_to_end(pid)                  # most recently used

    def _hit(self, s) -> int:
        """Prompt tokens of waiting request ``s`` the cache holds (same rule as the view's)."""
        r = s.request
        p = self._prefixes.get(r.prefix_id) if r.prefix_id is not None else None
        if p is None:
            return 0
        return max(0, min(p.blocks, min(r.prefix_tokens, s.prefill_left - 1) // self.memory.block_size)) \
            * self.memory.block_size

    def _apply_hit(self, s, hit: int) -> None:
        """Admit ``s`` with ``hit`` prompt tokens from the cache: they are not prefilled, and
        ``s`` references the blocks that hold them."""
        rid = s.request_id
        self.prefix_queries += s.prefill_left
        if not hit:
            return
        s._prefill_left -= hit
        self.backlog_tokens -= hit
        self.tokens_cached += hit
        self.prefix_hits[rid] = self.prefix_hits.get(rid, 0) + hit
        pid, k = s.request.prefix_id, hit // self.memory.block_size
        p = self._prefixes[pid]
        p.users[rid] = k
        self._refs[rid] = (pid, k)
        self._pin(pid, p, max(p.pinned, k))

    def _publish(self, s) -> None:
        """Share the whole prefix blocks ``s`` has computed, if it extends the published prefix."""
        r, rid = s.request, s.request_id
        if r.prefix_id is None or rid not in self._held:
            return
        b = self.memory.block_size
        j = min(s.context_tokens, r.prefix_tokens) // b
        p = self._prefixes.get(r.prefix_id)
        k = self._refs[rid][1] if rid in self._refs else 0
        if j <= k or (p is not None and p.blocks != k):
            return                                       # nothing new, or a private duplicate
        if p is None:
            p = self._prefixes[r.prefix_id] = _Prefix()
        p.blocks = p.pinned = j                          # the blocks move from s's own to shared
        p.users[rid] = j
        self._refs[rid] = (r.prefix_id, j)
        self._prefixes.move_to_end(r.prefix_id)

    def _preempt(self, victim: int, for_rid: int) -> None:
        """Take ``victim``'s KV out of GPU memory: to host (swap) or away (recompute)."""
        s = self._states[victim]
        kv = s.context_tokens
        self._free(victim)
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
