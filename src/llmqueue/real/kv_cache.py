"""The real engine's paged KV cache: key/value tensors whose blocks are the KV manager's.

Keys and values of every layer live in two tensors of shape ``[layers, kv_heads, slots,
head_dim]``, ``slots = num_blocks * block_size``: head-major, so that gathering a request's
blocks copies whole ``block_size x head_dim`` tiles and leaves each head's context contiguous for
the attention matmuls (on the CPU that halves the cost of decode attention against a token-major
layout). A request's tokens occupy the slots its block table lists, in order: token ``i`` is
slot ``table[i // block_size] * block_size + i % block_size``.

Block ids and block tables are not kept here: they are a :class:`~llmqueue.engine.kv.KVManager`'s,
the same class the simulated engine uses. Given the engine core's manager (``kv``), the cache
only writes where the core reserved (admission, preemption and prefix caching are the core's);
on its own (profiling, tests, a run without a memory model) it makes a private manager whose pool
doubles when it runs out (``growable``, the paper's model has no memory limit) or raises
:class:`KVCacheFull`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..engine.kv import KVManager
from ..errors import KVCacheFull
from .config import ModelConfig

__all__ = ["KVCacheFull", "PagedKVCache"]


class PagedKVCache:
    """The key/value tensors of every layer and how many tokens each request has in them."""

    def __init__(self, cfg: ModelConfig, *, block_size: int = 16, num_blocks: int = 256,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 growable: bool = True, kv: KVManager | None = None) -> None:
        self._owns = kv is None
        self.kv = kv if kv is not None else KVManager(num_blocks, block_size, growable=growable)
        self.cfg, self.block_size = cfg, self.kv.block_size
        self.device, self.dtype = torch.device(device), dtype
        self._blocks = 0                             # blocks the tensors hold
        shape = (cfg.num_hidden_layers, cfg.num_key_value_heads, 0, cfg.head_dim)
        self.k = torch.zeros(shape, device=self.device, dtype=dtype)
        self.v = torch.zeros(shape, device=self.device, dtype=dtype)
        self._lengths: dict[int, int] = {}
        self._sync()

    # -- pool ---------------------------------------------------------------------------------
    def _sync(self) -> None:
        """Grow the tensors to the manager's pool (it doubles when a private pool runs out)."""
        n = self.kv.num_blocks
        if n == self._blocks:
            return
        extra = (n - self._blocks) * self.block_size
        pad = (self.cfg.num_hidden_layers, self.cfg.num_key_value_heads, extra, self.cfg.head_dim)
        zeros = torch.zeros(pad, device=self.device, dtype=self.dtype)
        self.k = torch.cat([self.k, zeros], dim=2)
        self.v = torch.cat([self.v, zeros.clone()], dim=2)
        self._blocks = n

    @property
    def num_blocks(self) -> int:
        return self.kv.num_blocks

    @property
    def growable(self) -> bool:
        return self.kv.growable

    @property
    def free_blocks(self) -> int:
        return self.kv.free_blocks

    @property
    def used_tokens(self) -> int:
        return sum(self._lengths.values())

    # -- requests -----------------------------------------------------------------------------
    def length(self, rid: int) -> int:
        """Tokens of request ``rid`` in the cache (0 if it has none)."""
        return self._lengths.get(rid, 0)

    def append(self, rid: int, n: int) -> np.ndarray:
        """Slots for the next ``n`` tokens of ``rid`` (int64). The engine core reserved their
        blocks already; on a private manager they are taken here."""
        start = self._lengths.get(rid, 0)
        end = start + n
        if self.kv.held(rid) * self.block_size < end:
            if not self._owns:
                raise KVCacheFull(f"request {rid}: {end} tokens written but the engine reserved only "
                                  f"{self.kv.held(rid)} blocks of {self.block_size}")
            self.kv.grow(rid, end)
            self._sync()
        self._lengths[rid] = end
        return self._slots(self.kv.table(rid), start, end)

    def cached(self, rid: int, tokens: int) -> None:
        """The first ``tokens`` tokens of ``rid`` are already in its blocks (a prefix-cache hit)."""
        self._lengths[rid] = tokens

    def slots(self, rid: int, end: int | None = None) -> np.ndarray:
        """Slot indices of tokens 0 .. end-1 of ``rid`` (all of its tokens by default)."""
        n = self._lengths.get(rid, 0) if end is None else end
        return self._slots(self.kv.table(rid), 0, n)

    def slots_in(self, table: list[int], n: int) -> np.ndarray:
        """Slot indices of the first ``n`` tokens of a request whose blocks are ``table``."""
        return self._slots(table, 0, n)

    def _slots(self, table: list[int], start: int, end: int) -> np.ndarray:
        pos = np.arange(start, end, dtype=np.int64)
        blocks = np.asarray(table, dtype=np.int64)[pos // self.block_size]
        return blocks * self.block_size + pos % self.block_size

    def release(self, rid: int) -> None:
        """Forget ``rid``'s tokens; on a private manager also give its blocks back (the engine
        core frees its own manager's blocks itself, when the request completes or is preempted)."""
        self._lengths.pop(rid, None)
        if self._owns and self.kv.holds(rid):
            self.kv.free(rid)

    def requests(self) -> list[int]:
        return list(self._lengths)

    def block_table(self, rid: int) -> list[int]:
        """The blocks of ``rid`` in token order (read-only use)."""
        return self.kv.table(rid)
