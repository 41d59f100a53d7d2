"""A request: prompt (prefill) tokens, decode tokens, an arrival time and an optional class.

Token convention (spec section 7): a request's prefill is finished by the iteration that
processes its last prompt token; ``decode_tokens`` counts the decode iterations after it, each
of which emits one output token. A request with ``prompt_tokens == 0`` is already decoding
when it arrives (the paper's Fig. 8 requests A, B, C).

``prefix_id`` / ``prefix_tokens`` (optional) say that the first ``prefix_tokens`` prompt tokens
are a prefix shared by every request with the same ``prefix_id`` (a system prompt, say); only the
KV-memory engine with prefix caching uses them (docs/memory.md).

``block_hashes`` / ``hash_block_tokens`` (optional) describe the prompt as a chain of block
hashes, as Mooncake's traces and vLLM's automatic prefix caching do: ``block_hashes[j]`` stands
for the content of prompt tokens ``0 .. (j+1) * hash_block_tokens`` (the last block may be
partial), so two requests with equal hashes at position ``j`` share that whole prefix.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Request:
    request_id: int
    arrival_time: float
    prompt_tokens: int
    decode_tokens: int
    job_class: str = "default"
    label: str | None = None
    prefix_id: str | None = None
    prefix_tokens: int = 0
    block_hashes: tuple[int, ...] | None = None
    hash_block_tokens: int = 0

    def __post_init__(self) -> None:
        if self.prompt_tokens < 0 or self.decode_tokens < 0:
            raise ValueError(
                f"request {self.request_id}: token counts must be >= 0 "
                f"(prompt_tokens={self.prompt_tokens}, decode_tokens={self.decode_tokens})"
            )
        if self.prompt_tokens + self.decode_tokens == 0:
            raise ValueError(f"request {self.request_id}: has no tokens at all (prompt 0 and decode 0)")
        if not self.arrival_time >= 0:
            raise ValueError(f"request {self.request_id}: arrival_time must be >= 0, got {self.arrival_time}")
        if not 0 <= self.prefix_tokens <= self.prompt_tokens:
            raise ValueError(f"request {self.request_id}: prefix_tokens must be in 0..prompt_tokens "
                             f"({self.prompt_tokens}), got {self.prefix_tokens}")
        if self.prefix_tokens > 0 and self.prefix_id is None:
            raise ValueError(f"request {self.request_id}: prefix_tokens > 0 needs a prefix_id")
        if self.block_hashes is not None:
            if self.hash_block_tokens < 1:
                raise ValueError(f"request {self.request_id}: block_hashes need hash_block_tokens >= 1")
            most = -(-self.prompt_tokens // self.hash_block_tokens)
            if len(self.block_hashes) > most:
                raise ValueError(f"request {self.request_id}: {len(self.block_hashes)} block hashes for a "
                                 f"{self.prompt_tokens}-token prompt (at most {most} blocks of "
                                 f"{self.hash_block_tokens} tokens)")

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.decode_tokens

    @property
    def name(self) -> str:
        """Short display name: the label if given, else the id."""
        return self.label if self.label is not None else str(self.request_id)
