"""A paged KV cache: fixed-size blocks of token slots, and one block table per request.

Keys and values of every layer live in two tensors of shape ``[layers, kv_heads, slots,
head_dim]``, ``slots = num_blocks * block_size``: head-major, so that gathering a request's
blocks copies whole ``block_size x head_dim`` tiles and leaves each head's context contiguous for
the attention matmuls (on the CPU that halves the cost of decode attention against a token-major
layout). A request's tokens occupy the slots its block table lists, in order: token ``i`` is
slot ``table[i // block_size] * block_size + i % block_size``. Blocks are handed out lowest id first
and given back when a request leaves, so a run is reproducible. The paper's model has no memory
limit, so by default the pool doubles when it runs out (a copy; rare); with ``growable=False``
running out raises :class:`KVCacheFull`.
"""

from __future__ import annotations

import heapq

import numpy as np
import torch

from ..errors import KVCacheFull
from .config import ModelConfig


class PagedKVCache:
    """Block pool, block tables and the key/value tensors of every layer."""

    def __init__(self, cfg: ModelConfig, *, block_size: int = 16, num_blocks: int = 256,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 growable: bool = True) -> None:
        if block_size < 1 or num_blocks < 1:
            raise ValueError(f"KV cache needs block_size >= 1 and num_blocks >= 1, got {block_size}, {num_blocks}")
        self.cfg, self.block_size, self.growable = cfg, block_size, growable
        self.device, self.dtype = torch.device(device), dtype
        self.num_blocks = 0
        shape = (cfg.num_hidden_layers, cfg.num_key_value_heads, 0, cfg.head_dim)
        self.k = torch.zeros(shape, device=self.device, dtype=dtype)
        self.v = torch.zeros(shape, device=self.device, dtype=dtype)
        self._free: list[int] = []
        self._tables: dict[int, list[int]] = {}
        self._lengths: dict[int, int] = {}
        self._grow_to(num_blocks)

    # -- pool ---------------------------------------------------------------------------------
    def _grow_to(self, num_blocks: int) -> None:
        old = self.num_blocks
        extra = (num_blocks - old) * self.block_size
        pad = (self.cfg.num_hidden_layers, self.cfg.num_key_value_heads, extra, self.cfg.head_dim)
        zeros = torch.zeros(pad, device=self.device, dtype=self.dtype)
        self.k = torch.cat([self.k, zeros], dim=2)
        self.v = torch.cat([self.v, zeros.clone()], dim=2)
        for b in range(old, num_blocks):
            heapq.heappush(self._free, b)
        self.num_blocks = num_blocks

    @property
    def free_blocks(self) -> int:
        return len(self._free)

    @property
    def used_tokens(self) -> int:
        return sum(self._lengths.values())

    def _take_block(self) -> int:
        if not self._free:
            if not self.growable:
                raise KVCacheFull(f"KV cache full: all {self.num_blocks} blocks of {self.block_size} "
                                  f"tokens are in use; give more blocks or let the pool grow")
            self._grow_to(2 * self.num_blocks)
        return heapq.heappop(self._free)

    # -- requests -----------------------------------------------------------------------------
    def length(self, rid: int) -> int:
        """Tokens of request ``rid`` in the cache (0 if it has none)."""
        return self._lengths.get(rid, 0)

    def append(self, rid: int, n: int) -> np.ndarray:
        """Reserve slots for the next ``n`` tokens of ``rid``; returns their slot indices (int64)."""
        table = self._tables.setdefault(rid, [])
        start = self._lengths.get(rid, 0)
        end = start + n
        while len(table) * self.block_size < end:
            table.append(self._take_block())
        self._lengths[rid] = end
        return self._slots(table, start, end)

    def slots(self, rid: int, end: int | None = None) -> np.ndarray:
        """Slot indices of tokens 0 .. end-1 of ``rid`` (all of its tokens by default)."""
        n = self._lengths.get(rid, 0) if end is None else end
        return self._slots(self._tables.get(rid, []), 0, n)

    def _slots(self, table: list[int], start: int, end: int) -> np.ndarray:
        pos = np.arange(start, end, dtype=np.int64)
        blocks = np.asarray(table, dtype=np.int64)[pos // self.block_size]
        return blocks * self.block_size + pos % self.block_size

    def release(self, rid: int) -> None:
        """Give the blocks of a finished request back to the pool."""
        for b in self._tables.pop(rid, []):
            heapq.heappush(self._free, b)
        self._lengths.pop(rid, None)

    def requests(self) -> list[int]:
        return list(self._tables)

    def block_table(self, rid: int) -> list[int]:
        """The blocks of ``rid`` in token order (read-only use)."""
        return self._tables.get(rid, [])
