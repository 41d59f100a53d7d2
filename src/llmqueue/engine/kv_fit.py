"""Making a batch fit in KV memory: admission, preemption (recompute or swap) and prefix hits.

The engine core (:mod:`.core`) owns one :class:`KVFit` when it has a memory. The policy still
decides the batch (a pure function of a :class:`~llmqueue.engine.view.MemoryView`); :meth:`KVFit.fit`
then makes it fit in the KV manager's blocks:

1. *running* requests of the plan (their KV is resident) reserve the blocks their step adds, in
   plan order (decode tokens, then prefill chunks). When one cannot grow, resident requests are
   preempted in the policy's ``victim_order(view)`` (optional; default: latest arrival first,
   vLLM's FCFS choice) until it fits, possibly itself;
2. then, only if nothing was preempted in this step, *waiting* requests of the plan are
   admitted in plan order while their step (plus a swapped request's KV) fits; the first that
   does not fit stops admission (FCFS: no overtaking of a large head request). A waiting request
   with a prefix-cache hit starts with the cached blocks and its chunk shrinks to what is left.

If that leaves an empty batch while work waits, the policy is asked again with the resident
requests only, then with everything on an empty cache, so a memory-unaware policy never freezes.
Every preemption is recorded (:attr:`KVFit.preemptions`). Blocks, block tables, the prefix cache
and eviction are the KV manager's (:class:`llmqueue.engine.kv.KVManager`).
"""

from __future__ import annotations

from array import array
from types import MappingProxyType
from typing import Any, Protocol

from ..errors import KVCacheError
from .kv import KVManager
from .logs import MEMORY_ITERATION_COLUMNS
from .plan import BatchPlan, validate_plan
from .progress import RequestTimes
from .request import Request
from .state import EngineView, RequestState
from .view import MemoryView


class MemorySpec(Protocol):
    """What the core reads of a memory configuration (:class:`llmqueue.memory.config.MemoryConfig`,
    named structurally: the engine is the lowest layer and imports nothing above it)."""

    @property
    def capacity_tokens(self) -> int: ...
    @property
    def block_size(self) -> int: ...
    @property
    def preemption(self) -> str: ...
    @property
    def swap_s_per_token(self) -> float: ...
    @property
    def host_capacity_tokens(self) -> int | None: ...
    @property
    def prefix_caching(self) -> bool: ...
    @property
    def num_blocks(self) -> int: ...
    @property
    def eviction(self) -> str: ...
    @property
    def ttl_s(self) -> float: ...
    @property
    def host_blocks(self) -> int: ...


#: A memory event of a step: (kind, request id, tokens, block table or None); see
#: :class:`~llmqueue.engine.core.Step`.
Event = tuple[str, int, int, "list[int] | None"]


class CoreBooks(Protocol):
    """What :class:`KVFit` uses of its engine core (:class:`~llmqueue.engine.core.EngineCore`)."""

    states: dict[int, RequestState]
    times: dict[int, RequestTimes]
    validate: bool

    @property
    def policy(self) -> Any: ...
    def view(self, now: float, requests: tuple[RequestState, ...] | None = None) -> EngineView: ...
    def backlog_change(self, rid: int, delta: int) -> None: ...


class KVFit:
    """The memory side of one engine core: its KV manager, swap space and memory records."""

    def __init__(self, core: CoreBooks, memory: MemorySpec, kv: KVManager | None = None) -> None:
        self.core, self.memory = core, memory
        self.kv = kv if kv is not None else KVManager(memory.num_blocks, memory.block_size,
                                                      prefix_caching=memory.prefix_caching,
                                                      host_blocks=memory.host_blocks)
        self.ttl = memory.ttl_s if memory.eviction == "ttl" else 0.0
        self.host_fetched_tokens = 0               # prompt tokens a hit fetched from the host tier
        if (self.kv.num_blocks, self.kv.block_size) != (memory.num_blocks, memory.block_size):
            raise ValueError("the KV manager's blocks differ from the memory configuration")
        self.swapped: dict[int, int] = {}          # request -> KV tokens in host memory
        self.host_used = 0
        self.kept_prefill_end: dict[int, float] = {}
        self.tokens_recomputed = 0
        self.tokens_cached = 0
        self.prefix_queries = 0                    # prompt tokens looked up in the cache at admission
        self.prefix_hits: dict[int, int] = {}      # request -> prompt tokens served by the cache
        # requests with block hashes, at their first admission: prompt hash blocks looked up, and
        # the leading ones the cache held whole (KVManager.lookup_hash_blocks: no one-token cap)
        self.hash_blocks = 0
        self.hash_block_hits = 0
        self._looked_up: set[int] = set()
        self.preemptions: list[tuple[float, int, int, str, int, int]] = []
        self.preemption_count: dict[int, int] = {}
        self.peak_blocks = 0
        self.columns: dict[str, array[Any]] = {c: array("d" if c == "swap_time" else "q")
                                               for c in MEMORY_ITERATION_COLUMNS}
        if memory.prefix_caching:
            self.columns["kv_cached_tokens"] = array("q")
        # what the step being scheduled did (read by the drivers through the core's Step)
        self.step_events: list[Event] = []
        self.step_preempt = 0
        self.step_swap_tokens = 0

    # -- admission into the engine ------------------------------------------------------------
    def check_fits(self, request: Request, name: str) -> None:
        need = self.kv.blocks_for(request.total_tokens)
        if need > self.memory.num_blocks:
            raise KVCacheError(
                f"{name}: request {request.request_id} needs {request.total_tokens} KV tokens "
                f"({need} blocks) at its end, more than the whole KV cache "
                f"({self.memory.num_blocks} blocks of {self.memory.block_size}): it can never run. "
                f"Raise memory.capacity_tokens or cap prompt + decode tokens.")

    def view(self, now: float, requests: tuple[RequestState, ...]) -> MemoryView:
        kv, b = self.kv, self.memory.block_size
        return MemoryView(now=now, requests=requests, free_kv_tokens=kv.free_blocks * b, block_size=b,
                          capacity_blocks=self.memory.num_blocks, kv_blocks=kv.held_counts,
                          swapped_tokens=MappingProxyType(self.swapped),
                          prefix_caching=self.memory.prefix_caching, cache=kv)

    # -- one step -----------------------------------------------------------------------------
    def fit(self, plan: BatchPlan, now: float) -> BatchPlan:
        """The part of the policy's (validated) ``plan`` that runs, with its blocks reserved."""
        self.step_events, self.step_preempt, self.step_swap_tokens = [], 0, 0
        core = self.core
        if self.kv.pinned or self.kv.marked:
            self.kv.expire(now)
        kept = self._fit(plan, now, allow_new=True)
        if kept.is_empty and core.states:
            residents = tuple(s for s in core.states.values() if self.kv.holds(s.request_id))
            if residents:
                kept = self._fit(self._ask(self.view(now, residents)), now, True)
            while kept.is_empty and self.kv.pinned:   # pins never stall the engine: the oldest goes
                self.kv.expire_first()
                kept = self._fit(self._ask(core.view(now)), now, allow_new=True)
            if kept.is_empty and not len(self.kv.held_counts):
                kept = self._fit(self._ask(core.view(now)), now, allow_new=True, force=True)
        return kept

    def _ask(self, view: EngineView) -> BatchPlan:
        core = self.core
        plan: BatchPlan = core.policy(view)
        if core.validate:
            validate_plan(plan, view, core.policy.token_budget, core.policy.max_batch_size)
        return plan

    def _fit(self, plan: BatchPlan, now: float, allow_new: bool, force: bool = False) -> BatchPlan:
        kv, states = self.kv, self.core.states
        steps = [(rid, 1) for rid in plan.decode] + list(plan.prefill)
        kept: set[int] = set()
        clipped: dict[int, int] = {}
        preempted = False
        victims = None
        held, bs = kv.held_counts, kv.block_size
        for rid, n in steps:
            h = held.get(rid)
            if h is None:
                continue
            s = states[rid]
            while h is not None:
                tokens = s.context_tokens + n
                extra = -(-tokens // bs) - h
                if extra <= 0:                       # the step fits in the blocks it holds
                    kept.add(rid)
                    break
                if extra <= kv.free_blocks:
                    kv.grow(rid, tokens)
                    kept.add(rid)
                    break
                if victims is None:
                    victims = self._victim_ranking(now)
                victim = next(v for v in victims if v in held)
                self._preempt(victim, rid, now)
                kept.discard(victim)
                preempted = True
                h = held.get(rid)
        if allow_new and (force or not preempted):
            caching, b = self.memory.prefix_caching, self.memory.block_size
            for rid, n in steps:
                if rid in kept or rid in held:
                    continue
                s = states[rid]
                host = self.swapped.get(rid, 0)
                fresh = caching and not host and not s.context_tokens     # looks up the cache
                hit, revive = kv.probe(s) if fresh else (0, 0)
                if hit:                              # the chunk shrinks to what is left to compute
                    n = min(n, s.prefill_left - hit)
                own = kv.blocks_for(s.context_tokens + hit + n) - hit // b
                if own + revive > kv.free_blocks:
                    break
                if fresh:
                    self._apply_hit(s, hit)
                if hit:
                    clipped[rid] = n
                kv.grow(rid, s.context_tokens + n)
                kept.add(rid)
                if host:
                    del self.swapped[rid]
                    self.host_used -= host
                    self.step_swap_tokens += host
                    self.step_events.append(("swap_in", rid, host, None))
        if len(kept) == len(steps) and not clipped:
            return plan
        return BatchPlan(prefill=tuple((r, clipped.get(r, n)) for r, n in plan.prefill if r in kept),
                         decode=tuple(r for r in plan.decode if r in kept))

    def _victim_ranking(self, now: float) -> list[int]:
        """Resident requests in preemption order: the policy's ``victim_order(view)`` if it has
        one (requests it leaves out follow, latest arrival first), else latest arrival first."""
        states, held = self.core.states, self.kv.held_counts
        default = sorted(held, key=lambda r: states[r].order, reverse=True)
        order = getattr(self.core.policy, "victim_order", None)
        if order is None:
            return default
        ranked = [r for r in order(self.core.view(now)) if r in held]
        seen = set(ranked)
        return ranked + [r for r in default if r not in seen]

    def _apply_hit(self, s: RequestState, hit: int) -> None:
        """Admit ``s`` with ``hit`` prompt tokens from the cache: they are not prefilled, and
        ``s`` references the blocks that hold them."""
        rid = s.request_id
        self.prefix_queries += s.prefill_left
        r = s.request
        if r.block_hashes is not None and rid not in self._looked_up:
            self._looked_up.add(rid)
            self.hash_blocks += len(r.block_hashes)
            self.hash_block_hits += self.kv.lookup_hash_blocks(r)
        if not hit:
            return
        s.skip_prefill(hit)
        self.core.backlog_change(rid, -hit)
        self.tokens_cached += hit
        self.prefix_hits[rid] = self.prefix_hits.get(rid, 0) + hit
        fetched = self.kv.admit_hit(rid, s.request, hit)
        self.step_events.append(("hit", rid, hit, None))
        if fetched:                                  # from the host tier: costs its transfer time
            self.host_fetched_tokens += fetched
            self.step_swap_tokens += fetched
            self.step_events.append(("host_fetch", rid, fetched, None))

    def _preempt(self, victim: int, for_rid: int, now: float) -> None:
        """Take ``victim``'s KV out of GPU memory: to host (swap) or away (recompute)."""
        core = self.core
        s = core.states[victim]
        kv = s.context_tokens
        table = self.kv.free(victim)
        cfg = self.memory
        host_cap = cfg.host_capacity_tokens
        if cfg.preemption == "swap" and (host_cap is None or self.host_used + kv <= host_cap):
            mode = "swap"
            if kv:
                self.swapped[victim] = kv
                self.host_used += kv
                self.step_swap_tokens += kv
        else:
            mode = "recompute"
            lv = core.times[victim]
            if lv.prefill_end == lv.prefill_end and victim not in self.kept_prefill_end:
                self.kept_prefill_end[victim] = lv.prefill_end
            s.requeue(kv)                        # re-prefill prompt + generated tokens
            core.backlog_change(victim, kv)
            self.tokens_recomputed += kv
        self.preemption_count[victim] = self.preemption_count.get(victim, 0) + 1
        self.preemptions.append((now, len(self.columns["preemptions"]), victim, mode, kv, for_rid))
        self.step_preempt += 1
        self.step_events.append(("swap_out" if mode == "swap" else mode, victim, kv, table))

    # -- records and the end of a step --------------------------------------------------------
    def swap_time(self) -> float:
        return self.step_swap_tokens * self.memory.swap_s_per_token

    def record(self) -> None:
        """The memory columns of the iteration that starts now."""
        c, kv, b = self.columns, self.kv, self.memory.block_size
        used = kv.used_blocks
        self.peak_blocks = max(self.peak_blocks, used)
        c["kv_used_tokens"].append(used * b)
        c["preemptions"].append(self.step_preempt)
        c["swap_tokens"].append(self.step_swap_tokens)
        c["swap_time"].append(self.swap_time())
        if self.memory.prefix_caching:
            c["kv_cached_tokens"].append(kv.cached_free_blocks * b)

    def after_step(self, plan: BatchPlan, stepped: dict[int, RequestState] | None, end: float = 0.0) -> None:
        """After the step (ending at ``end``) is applied: publish computed prefix blocks, free the
        blocks of the requests that completed (with TTL retention, pinning their cached prefix
        for ``ttl_s`` first), and keep a recomputed request's first prefill end."""
        core, kv = self.core, self.kv
        states, times = core.states, core.times
        for rid in plan.request_ids():
            if stepped is not None:
                kv.publish(rid, stepped[rid])
            if rid not in states:                 # completed in this iteration: free its blocks
                if self.ttl:
                    kv.pin(rid, end + self.ttl)
                kv.free(rid)
                self.kept_prefill_end.pop(rid, None)
                self._looked_up.discard(rid)
            elif rid in self.kept_prefill_end and states[rid].prefill_left == 0:
                times[rid].prefill_end = self.kept_prefill_end.pop(rid)   # recompute is not a new prefill
