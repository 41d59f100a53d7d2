"""The one KV-cache manager: block ids, per-request block tables, prefix caching and eviction.

It is part of the engine core (the lowest layer, so every driver and the real engine's cache can
use it without importing anything above the engine).

Every engine's KV memory is a :class:`KVManager`: the simulated engine reserves blocks through it
and only counts them, the real engine (:mod:`llmqueue.real.kv_cache`) writes keys and values into
the very blocks it hands out. So admission, preemption and prefix caching are one piece of code
whatever runs the model.

- Blocks are ids ``0 .. num_blocks-1``; free ones are handed out lowest id first (a heap), so a
  run is reproducible.
- A request's block table lists its blocks in token order; :meth:`grow` extends it to cover a
  number of tokens, :meth:`free` gives it back.
- Prefix caching (vLLM's automatic prefix caching, in block terms): every *full* block of a
  request's shared prefix has a hash that chains its parent's hash (:func:`prefix_block_hashes`),
  so equal hashes mean equal contents and equal everything before. A computed block is
  published under its hash (:meth:`publish`); a later request whose leading hashes are cached
  starts with those blocks in its table (:meth:`admit_hit`) and skips computing them. Each cached
  block has a reference count (requests whose table holds it); a request extends the cache only
  from the end of the run of cached blocks it holds, so the blocks a request references are
  always a leading run of its chain and a chain's cached blocks are prefix-closed (no holes).
- Cached blocks nobody references are *evictable*: they count as free (:attr:`free_blocks`) and
  are reclaimed only when no truly free block is left, least recently used chain first and from
  its tail (its deepest block first), before any preemption is considered. A chain is "used"
  when a request hits it, publishes into it or drops a reference to it.

Today a request's hashes come from ``Request.prefix_id`` and ``prefix_tokens`` (block ``j`` of
prefix ``p`` hashes ``(parent hash, p, j)``); a trace that carries an explicit per-block hash
list only needs another :func:`prefix_block_hashes`.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from types import MappingProxyType

from ..errors import KVCacheFull
from .request import Request
from .state import RequestState

_MEMO: dict[str, tuple[int, ...]] = {}


def prefix_block_hashes(prefix_id: str, blocks: int) -> tuple[int, ...]:
    """Hashes of the first ``blocks`` full blocks of prefix ``prefix_id``, each chaining its parent's.

    Deterministic within a run (only equality of hashes matters, never their values)."""
    _memo = _MEMO
    known = _memo.get(prefix_id, ())
    if len(known) < blocks:
        out = list(known)
        parent: int | None = out[-1] if out else None
        for j in range(len(out), blocks):
            h = hash((parent, prefix_id, j))
            out.append(h)
            parent = h
        known = _memo[prefix_id] = tuple(out)
        if len(_memo) > 100_000:            # many distinct prefixes: do not grow without bound
            _memo.clear()
    return known[:blocks]


class _Cached:
    """One cached block: its id, how many tables hold it, and the chain (root hash) it is in."""

    __slots__ = ("block", "refs", "root")

    def __init__(self, block: int, root: Hashable) -> None:
        self.block, self.refs, self.root = block, 1, root


class KVManager:
    """Blocks of ``block_size`` tokens, ``num_blocks`` of them; see the module docstring.

    ``growable`` (the real engine without a memory model): when nothing is free the pool doubles
    instead of failing; otherwise running out raises :class:`KVCacheFull` (the engine core never
    lets that happen: it checks :attr:`free_blocks` before it grows a table).
    """

    def __init__(self, num_blocks: int, block_size: int, *, prefix_caching: bool = False,
                 growable: bool = False) -> None:
        if block_size < 1 or num_blocks < 1:
            raise ValueError(f"KV cache needs block_size >= 1 and num_blocks >= 1, got {block_size}, {num_blocks}")
        self.block_size, self.num_blocks = block_size, num_blocks
        self.prefix_caching, self.growable = prefix_caching, growable
        self._free: list[int] = list(range(num_blocks))        # a heap (sorted is a heap)
        self._tables: dict[int, list[int]] = {}
        self._shared: dict[int, int] = {}                       # rid -> leading cached blocks it holds
        self._cached: dict[Hashable, _Cached] = {}              # block hash -> cached block
        self._hash_of: dict[int, Hashable] = {}                 # cached block id -> its hash
        self._chains: OrderedDict[Hashable, list[Hashable]] = OrderedDict()   # root -> hashes, LRU order
        self._evictable = 0
        self._held: dict[int, int] = {}                        # rid -> len(its table), for views
        self.held_counts: Mapping[int, int] = MappingProxyType(self._held)

    # -- sizes --------------------------------------------------------------------------------
    def blocks_for(self, tokens: int) -> int:
        """Blocks a KV cache of ``tokens`` tokens occupies."""
        return -(-tokens // self.block_size)

    @property
    def free_blocks(self) -> int:
        """Blocks a request may take now: truly free plus evictable cached ones."""
        return len(self._free) + self._evictable

    @property
    def used_blocks(self) -> int:
        """Blocks held by requests (their own and the cached blocks they reference)."""
        return self.num_blocks - self.free_blocks

    @property
    def cached_free_blocks(self) -> int:
        """Cached blocks no request references (evictable; counted in :attr:`free_blocks`)."""
        return self._evictable

    # -- tables -------------------------------------------------------------------------------
    def holds(self, rid: int) -> bool:
        return rid in self._tables

    def held(self, rid: int) -> int:
        t = self._tables.get(rid)
        return 0 if t is None else len(t)

    def table(self, rid: int) -> list[int]:
        """The blocks of ``rid`` in token order (read-only use; empty if it holds none)."""
        return self._tables.get(rid, [])

    def grow(self, rid: int, tokens: int) -> None:
        """Extend ``rid``'s table (created if needed) to cover ``tokens`` tokens."""
        table = self._tables.get(rid)
        if table is None:
            table = self._tables[rid] = []
        for _ in range(self.blocks_for(tokens) - len(table)):
            table.append(self._take())
        self._held[rid] = len(table)

    def free(self, rid: int) -> list[int]:
        """Give back what ``rid`` holds: its own blocks to the free pool, and its references to
        cached blocks (a block nobody references any more becomes evictable). Returns the table
        it held (its blocks' contents stay valid until they are next written)."""
        table = self._tables.pop(rid)
        del self._held[rid]
        k = self._shared.pop(rid, 0)
        for b in table[k:]:
            heapq.heappush(self._free, b)
        if k:
            for b in table[:k]:
                c = self._cached[self._hash_of[b]]
                c.refs -= 1
                if c.refs == 0:
                    self._evictable += 1
            self._chains.move_to_end(self._cached[self._hash_of[table[0]]].root)
        return table

    def _take(self) -> int:
        if self._free:
            return heapq.heappop(self._free)
        if self._evictable:
            return self._evict_one()
        if not self.growable:
            raise KVCacheFull(f"KV cache full: all {self.num_blocks} blocks of {self.block_size} "
                              f"tokens are in use; give more blocks or let the pool grow")
        self._free = list(range(self.num_blocks, 2 * self.num_blocks))
        self.num_blocks *= 2
        return heapq.heappop(self._free)

    def _evict_one(self) -> int:
        """Reclaim the tail block of the least recently used chain that has an unreferenced one."""
        for root, chain in self._chains.items():
            last = self._cached[chain[-1]]
            if last.refs == 0:
                h = chain.pop()
                del self._cached[h]
                del self._hash_of[last.block]
                if not chain:
                    del self._chains[root]
                self._evictable -= 1
                return last.block
        raise AssertionError("evictable count out of step with the cache")   # pragma: no cover

    # -- prefix caching -----------------------------------------------------------------------
    def _hashes(self, request: Request, blocks: int) -> tuple[int, ...]:
        assert request.prefix_id is not None
        return prefix_block_hashes(request.prefix_id, blocks)

    def probe(self, state: RequestState) -> tuple[int, int]:
        """(prompt tokens of waiting request ``state`` the cache holds now, whole blocks; blocks
        of that hit nobody references, which leave the evictable pool if it is admitted).

        The one prefix-hit rule: only a request with a prefix, nothing computed and no blocks
        (not resident, not swapped) looks up the cache; at least one prompt token is always left
        to compute (as in vLLM), so the hit is at most ``prefill_left - 1`` tokens."""
        if not self.prefix_caching:
            return 0, 0
        r = state.request
        if r.prefix_id is None or state.context_tokens or r.request_id in self._tables:
            return 0, 0
        cap = min(r.prefix_tokens, state.prefill_left - 1) // self.block_size
        if cap <= 0:
            return 0, 0
        k = revive = 0
        cached = self._cached
        for h in self._hashes(r, cap):
            c = cached.get(h)
            if c is None:
                break
            k += 1
            if c.refs == 0:
                revive += 1
        return k * self.block_size, revive

    def admit_hit(self, rid: int, request: Request, hit_tokens: int) -> None:
        """Start ``rid``'s table with the cached blocks of its ``hit_tokens``-token hit
        (:meth:`probe`), referencing them."""
        k = hit_tokens // self.block_size
        if rid in self._tables:
            raise ValueError(f"request {rid} already holds KV blocks")
        table = []
        for h in self._hashes(request, k):
            c = self._cached[h]
            if c.refs == 0:
                self._evictable -= 1
            c.refs += 1
            table.append(c.block)
        self._tables[rid] = table
        self._held[rid] = k
        self._shared[rid] = k
        if k:
            self._chains.move_to_end(self._cached[self._hashes(request, 1)[0]].root)

    def publish(self, rid: int, state: RequestState) -> None:
        """Cache the full prefix blocks ``rid`` has computed beyond its cached run, when its run
        ends where the chain's cached blocks end (else its copies stay private duplicates)."""
        r = state.request
        table = self._tables.get(rid)
        if not self.prefix_caching or r.prefix_id is None or table is None:
            return
        j = min(state.context_tokens, r.prefix_tokens) // self.block_size
        k = self._shared.get(rid, 0)
        if j <= k:
            return
        hashes = self._hashes(r, j)
        if hashes[k] in self._cached:
            return                                          # a private duplicate of cached blocks
        root = hashes[0]
        chain = self._chains.get(root)
        if chain is None:
            chain = self._chains[root] = []
        for i in range(k, j):
            h, b = hashes[i], table[i]
            self._cached[h] = _Cached(b, root)
            self._hash_of[b] = h
            chain.append(h)
        self._shared[rid] = j
        self._chains.move_to_end(root)

    # -- checks -------------------------------------------------------------------------------
    def check(self) -> None:
        """Assert the accounting: own + cached + truly free blocks = all blocks, reference counts
        equal the tables holding each cached block, chains prefix-closed and referenced as
        leading runs, nothing handed out twice (tests call this between iterations)."""
        assert self._held == {rid: len(t) for rid, t in self._tables.items()}
        seen: list[int] = list(self._free)
        refs: dict[int, int] = {}
        for rid, table in self._tables.items():
            k = self._shared.get(rid, 0)
            assert k <= len(table)
            for b in table[:k]:
                assert b in self._hash_of
                refs[b] = refs.get(b, 0) + 1
            seen += table[k:]
        seen += list(self._hash_of)
        assert sorted(seen) == list(range(self.num_blocks)), "a block is lost or handed out twice"
        evictable = 0
        for root, chain in self._chains.items():
            assert chain and chain[0] == root
            counts = [self._cached[h].refs for h in chain]
            assert counts == sorted(counts, reverse=True), "references are not leading runs"
            for h in chain:
                c = self._cached[h]
                assert c.refs == refs.get(c.block, 0) and c.root == root and self._hash_of[c.block] == h
                evictable += c.refs == 0
        assert evictable == self._evictable and len(self._cached) == len(self._hash_of)
