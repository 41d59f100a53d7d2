"""What a memory-aware policy sees: the engine view plus the state of the engine's KV cache.

It lives in the engine package (not in :mod:`llmqueue.memory`) so that policies read memory
through the engine's view only, as they read everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .state import EngineView, RequestState


class PrefixProbe(Protocol):
    """The read-only part of the KV manager a view needs (:meth:`llmqueue.engine.kv.KVManager.probe`)."""

    def probe(self, state: RequestState) -> tuple[int, int]: ...


@dataclass(frozen=True)
class MemoryView(EngineView):
    """An :class:`EngineView` with the KV cache: free memory, block size, who holds what.

    ``kv_blocks`` maps every *resident* request (its KV is in GPU memory) to the blocks it
    holds; ``swapped_tokens`` maps every request whose KV is in host memory to its size.
    A request in neither is *waiting*: not yet admitted, or preempted by recomputation.

    With prefix caching (``prefix_caching``), ``free_kv_tokens`` counts the cached blocks that no
    resident request references (they are evicted when needed). A waiting request is admitted
    with :meth:`prefix_hit_tokens` of its prompt already computed, so a policy plans its chunk
    from ``prefill_left - prefix_hit_tokens(s)``; the engine applies the same hit (the KV
    manager's one rule, ``cache.probe``) when it admits the request, before the batch runs.
    """

    block_size: int = 16
    capacity_blocks: int = 0
    kv_blocks: Mapping[int, int] = field(default_factory=dict)
    swapped_tokens: Mapping[int, int] = field(default_factory=dict)
    prefix_caching: bool = False
    cache: PrefixProbe | None = None

    @property
    def free_blocks(self) -> int:
        return (self.free_kv_tokens or 0) // self.block_size

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def is_resident(self, s: RequestState) -> bool:
        return s.request_id in self.kv_blocks

    def _probe(self, s: RequestState) -> tuple[int, int]:
        if not self.prefix_caching or self.cache is None:
            return 0, 0
        return self.cache.probe(s)

    def prefix_hit_tokens(self, s: RequestState) -> int:
        """Prompt tokens of waiting request ``s`` the prefix cache holds now (whole blocks).

        At least one prompt token is always left to compute (as in vLLM), so the hit is at most
        ``prefill_left - 1``. 0 without prefix caching, for resident or swapped requests, and for
        requests without a prefix."""
        return self._probe(s)[0]

    def extra_blocks(self, s: RequestState, step_tokens: int) -> int:
        """Blocks the engine must find for ``s`` to take a step of ``step_tokens`` tokens now
        (for a waiting request with a prefix hit: its new blocks plus the cached blocks of the
        hit that no resident request references, which leave the evictable pool)."""
        rid = s.request_id
        held = self.kv_blocks.get(rid)
        if held is not None:
            return max(0, self.blocks_for(s.context_tokens + step_tokens) - held)
        hit, revive = self._probe(s)
        if hit:
            return self.blocks_for(step_tokens) + revive
        return self.blocks_for(self.swapped_tokens.get(rid, 0) + step_tokens)
