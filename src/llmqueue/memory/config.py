"""The memory model of one engine: a paged KV cache and how it preempts.

Conventions (docs/memory.md): a request's KV cache is its processed prompt plus its generated
tokens (``RequestState.context_tokens``). Memory is allocated in blocks of ``block_size``
tokens; a request holds ``ceil(kv / block_size)`` blocks. Blocks are reserved when a step is
scheduled, for the tokens the step adds (a prefill chunk of n tokens adds n, a decode token 1),
and freed when the request completes or is preempted.
"""

from __future__ import annotations

from dataclasses import dataclass

PREEMPTION_MODES = ("recompute", "swap")
EVICTION_POLICIES = ("lru", "ttl", "workflow")


@dataclass(frozen=True)
class MemoryConfig:
    """KV capacity (tokens), block size, and the preemption mode.

    ``preemption``: "recompute" drops a victim's KV (it re-prefills prompt + generated tokens
    later); "swap" moves it to host memory, costing ``swap_s_per_token`` seconds per token each
    way, added to the iteration that moves it. ``host_capacity_tokens`` bounds the swap space
    (None: unbounded); a victim that does not fit there is recomputed instead.
    ``prefix_caching``: requests with the same ``prefix_id`` (or equal ``block_hashes``) share the
    whole KV blocks of their prefix (docs/memory.md); off by default, and off the engine behaves
    exactly as without it. Retention of cached blocks (docs/agentic.md): ``eviction`` "lru"
    (unreferenced blocks are evicted least recently used first) or "ttl" (a finished request's
    cached prefix is pinned for ``ttl_s`` seconds first, as while its session waits on a tool
    call) or "workflow" (a network run pins the cached prompt of a job whose workflow will
    visit this engine again, until the job's next visit here completes, the job ends, or
    ``ttl_s`` seconds pass when ``ttl_s`` > 0; pins are dropped before any preemption and
    whenever nothing could run); ``host_cache_tokens`` > 0 keeps evicted blocks in a host-memory tier of that size
    (LRU), from which a later hit fetches them back at ``swap_s_per_token`` seconds per token,
    added to the iteration, instead of recomputing them.
    """

    capacity_tokens: int
    block_size: int = 16
    preemption: str = "recompute"
    swap_s_per_token: float = 0.0
    host_capacity_tokens: int | None = None
    prefix_caching: bool = False
    eviction: str = "lru"
    ttl_s: float = 0.0
    host_cache_tokens: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise ValueError(f"memory.block_size must be a positive integer, got {self.block_size!r}")
        if not isinstance(self.capacity_tokens, int) or self.capacity_tokens < self.block_size:
            raise ValueError(f"memory.capacity_tokens must be an integer of at least one block "
                             f"({self.block_size} tokens), got {self.capacity_tokens!r}")
        if self.preemption not in PREEMPTION_MODES:
            raise ValueError(f"memory.preemption must be one of {', '.join(PREEMPTION_MODES)}, "
                             f"got {self.preemption!r}")
        if not self.swap_s_per_token >= 0:
            raise ValueError(f"memory.swap_s_per_token must be >= 0, got {self.swap_s_per_token}")
        if self.eviction not in EVICTION_POLICIES:
            raise ValueError(f"memory.eviction must be one of {', '.join(EVICTION_POLICIES)}, got {self.eviction!r}")
        if not (self.ttl_s >= 0 and self.ttl_s < float("inf")):
            raise ValueError(f"memory.ttl_s must be a finite number >= 0, got {self.ttl_s}")
        if self.eviction == "ttl" and not self.ttl_s > 0:
            raise ValueError("memory.eviction 'ttl' needs ttl_s > 0 (seconds a finished request's prefix is kept)")
        if not isinstance(self.host_cache_tokens, int) or self.host_cache_tokens < 0:
            raise ValueError(f"memory.host_cache_tokens must be an integer >= 0, got {self.host_cache_tokens!r}")
        if (self.eviction != "lru" or self.host_cache_tokens) and not self.prefix_caching:
            raise ValueError("memory.eviction 'ttl' / 'workflow' and host_cache_tokens retain prefix-cache blocks: "
                             "they need prefix_caching: true")
        if self.host_capacity_tokens is not None and self.host_capacity_tokens < 0:
            raise ValueError(f"memory.host_capacity_tokens must be >= 0, got {self.host_capacity_tokens}")

    @property
    def host_blocks(self) -> int:
        """Whole blocks of the host-memory cache tier."""
        return self.host_cache_tokens // self.block_size

    @property
    def num_blocks(self) -> int:
        """Whole blocks that fit in the capacity (a partial block is unusable)."""
        return self.capacity_tokens // self.block_size

    def blocks_for(self, tokens: int) -> int:
        """Blocks a KV cache of ``tokens`` tokens occupies."""
        return -(-tokens // self.block_size)

    def describe(self) -> str:
        swap = (f", swap at {self.swap_s_per_token * 1e6:.4g} us/token" if self.preemption == "swap" else "")
        cache = ", prefix caching" if self.prefix_caching else ""
        if self.eviction == "ttl":
            cache += f" (TTL {self.ttl_s:g} s)"
        elif self.eviction == "workflow":
            cache += " (workflow retention" + (f", at most {self.ttl_s:g} s)" if self.ttl_s else ")")
        if self.host_cache_tokens:
            cache += f", host cache {self.host_cache_tokens} tokens"
        return (f"KV cache {self.num_blocks * self.block_size} tokens ({self.num_blocks} blocks of "
                f"{self.block_size}), preemption by {self.preemption}{swap}{cache}")
