"""What a memory-aware policy sees: the engine view plus the state of the KV cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..engine.state import EngineView, RequestState



@dataclass(frozen=True)
class MemoryView(EngineView):
    """An :class:`EngineView` with the KV cache: free memory, block size, who holds what.

    ``kv_blocks`` maps every *resident* request (its KV is in GPU memory) to the blocks it
    holds; ``swapped_tokens`` maps every request whose KV is in host memory to its size.
    A request in neither is *waiting*: not yet admitted, or preempted by recomputation.
    """

    block_size: int = 16
    capacity_blocks: int = 0
    kv_blocks: Mapping[int, int] = field(default_factory=dict)
    swapped_tokens: Mapping[int, int] = field(default_factory=dict)

    @property
    def free_blocks(self) -> int:
        return (self.free_kv_tokens or 0) // self.block_size

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def is_resident(self, s: RequestState) -> bool:
        return s.request_id in self.kv_blocks

    def extra_blocks(self, s: RequestState, step_tokens: int) -> int:
        """Blocks the engine must find for ``s`` to take a step of ``step_tokens`` tokens now."""
        rid = s.request_id
        held = self.kv_blocks.get(rid)
        if held is not None:
            return max(0, self.blocks_for(s.context_tokens + step_tokens) - held)
        return self.blocks_for(self.swapped_tokens.get(rid, 0) + step_tokens)
