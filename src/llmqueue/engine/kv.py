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
- Prefix caching (vLLM's automatic prefix caching, in block terms): every *whole* block of a
  request's shareable prompt prefix has a key (:func:`block_keys`) that determines its content
  and everything before it, so equal keys mean equal contents. A computed block is published
  under its key (:meth:`publish`); a later request whose leading keys are cached starts with
  those blocks in its table (:meth:`admit_hit`) and skips computing them.
- The cached blocks form a **prefix tree** (a forest): a block's parent is the cached block
  before it in the prompt. Requests share a common start and then diverge (every Mooncake
  conversation request shares block 0, say), so one root may carry many branches. Each cached
  block has a reference count (requests whose table holds it); a request references a leading
  run of its keys, so a parent is referenced at least as often as each child. A request extends
  the cache only from the end of the run of cached blocks it holds, and only when the next key
  is not cached yet (else its copies stay private duplicates), so the tree is prefix-closed.
- Cached blocks nobody references are *evictable*: they count as free (:attr:`free_blocks`) and
  are reclaimed only when no truly free block is left, before any preemption is considered:
  the least recently used tree first (a tree is "used" when a request hits it, publishes into it
  or drops a reference to it), and within it the unreferenced leaf that became evictable first;
  evicting a leaf may make its parent an evictable leaf. With one chain per root (a
  ``prefix_id`` workload) this is the least recently used chain, from its tail.
- Retention beyond LRU: :meth:`pin` keeps a finished request's prefix referenced until a time
  (TTL: the blocks are not free memory); :meth:`pin_prefix` marks a chain a driver knows will be
  wanted again (a network workflow's next step): marked blocks stay free memory, but eviction
  takes every unmarked evictable block first.

Keys: a request with ``block_hashes`` (a Mooncake trace, a session's turns) shares the KV blocks
whose whole content its hashes determine: hash ``j`` stands for prompt tokens
``0 .. min((j+1)*H, prompt)`` (``H = hash_block_tokens``), so KV block ``i`` (tokens
``i*B .. (i+1)*B``) is shareable when ``(i+1)*B <= min(len(hashes)*H, prompt)`` and its key is
``(hashes[j], i)`` with ``j`` the first hash whose tokens cover it. A request with only
``prefix_id`` / ``prefix_tokens`` is the special case of generated chained hashes: block ``j`` of
prefix ``p`` hashes ``(parent hash, p, j)`` (:func:`prefix_block_hashes`), which gives exactly the
results of the chain-per-prefix cache this tree replaced.
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


def shared_tokens(request: Request) -> int:
    """Leading prompt tokens of ``request`` whose content its hashes (or prefix) determine."""
    h = request.block_hashes
    if h is not None:
        return min(len(h) * request.hash_block_tokens, request.prompt_tokens)
    return request.prefix_tokens if request.prefix_id is not None else 0


def block_keys(request: Request, block_size: int, blocks: int) -> tuple[Hashable, ...]:
    """Keys of the first ``blocks`` KV blocks of ``request`` (all within :func:`shared_tokens`)."""
    h = request.block_hashes
    if h is None:
        assert request.prefix_id is not None
        return prefix_block_hashes(request.prefix_id, blocks)
    size = request.hash_block_tokens
    return tuple((h[((i + 1) * block_size - 1) // size], i) for i in range(blocks))


def hash_block_ends(request: Request, block_size: int) -> list[int]:
    """For each hash ``j`` of ``request``: the number of leading KV blocks a cache must hold for
    the whole content of hash ``j`` (its own whole KV blocks and all before it) to be cached."""
    h = request.block_hashes
    assert h is not None
    size, p = request.hash_block_tokens, request.prompt_tokens
    return [min((j + 1) * size, p) // block_size for j in range(len(h))]


class _Node:
    """One cached block: its id, how many tables hold it, its tree's root key, its parent's key
    and how many cached children it has."""

    __slots__ = ("block", "refs", "root", "parent", "children")

    def __init__(self, block: int, root: Hashable, parent: Hashable | None) -> None:
        self.block, self.refs, self.root, self.parent, self.children = block, 1, root, parent, 0


class KVManager:
    """Blocks of ``block_size`` tokens, ``num_blocks`` of them; see the module docstring.

    ``growable`` (the real engine without a memory model): when nothing is free the pool doubles
    instead of failing; otherwise running out raises :class:`KVCacheFull` (the engine core never
    lets that happen: it checks :attr:`free_blocks` before it grows a table).
    """

    def __init__(self, num_blocks: int, block_size: int, *, prefix_caching: bool = False,
                 growable: bool = False, host_blocks: int = 0) -> None:
        if block_size < 1 or num_blocks < 1 or host_blocks < 0:
            raise ValueError(f"KV cache needs block_size >= 1 and num_blocks >= 1, got {block_size}, {num_blocks}")
        self.block_size, self.num_blocks = block_size, num_blocks
        self.prefix_caching, self.growable = prefix_caching, growable
        # free blocks: ids given back (a heap) and the ids never handed out, [_fresh, num_blocks);
        # every given-back id is below _fresh, so the smallest free id is the heap's top, else
        # _fresh: the pool costs memory for the blocks in use, not for the capacity
        self._free: list[int] = []
        self._fresh = 0
        self._tables: dict[int, list[int]] = {}
        self._shared: dict[int, int] = {}                       # rid -> leading cached blocks it holds
        self._cached: dict[Hashable, _Node] = {}                # block key -> cached block
        self._hash_of: dict[int, Hashable] = {}                 # cached block id -> its key
        # root key -> (nodes in the tree, its evictable leaves in the order they became so); LRU order
        self._trees: OrderedDict[Hashable, tuple[list[int], dict[Hashable, None]]] = OrderedDict()
        self._evictable = 0
        self._empty_hashes: set[Hashable] = set()              # hashes that own no whole KV block, seen
        self._pins: list[tuple[float, int, list[Hashable]]] = []    # (until, seq, keys): a heap
        self._pin_seq = 0
        # pin_prefix: evicted last. key -> marks, tag -> (seq, keys), heap of (until, seq, tag)
        self._soft: dict[Hashable, int] = {}
        self._soft_pins: dict[Hashable, tuple[int, tuple[Hashable, ...]]] = {}
        self._soft_until: list[tuple[float, int, Hashable]] = []
        self.host_blocks = host_blocks                         # second tier: evicted keys kept in host memory
        self._host: OrderedDict[Hashable, None] = OrderedDict()
        self._noted: set[int] = set()                          # requests whose empty hashes are noted
        self._key_memo: dict[int, tuple[Request, tuple[Hashable, ...]]] = {}
        self._held: dict[int, int] = {}                        # rid -> len(its table), for views
        self.held_counts: Mapping[int, int] = MappingProxyType(self._held)

    # -- sizes --------------------------------------------------------------------------------
    def blocks_for(self, tokens: int) -> int:
        """Blocks a KV cache of ``tokens`` tokens occupies."""
        return -(-tokens // self.block_size)

    @property
    def free_blocks(self) -> int:
        """Blocks a request may take now: truly free plus evictable cached ones."""
        return len(self._free) + (self.num_blocks - self._fresh) + self._evictable

    @property
    def used_blocks(self) -> int:
        """Blocks held by requests (their own and the cached blocks they reference)."""
        return self.num_blocks - self.free_blocks

    @property
    def cached_free_blocks(self) -> int:
        """Cached blocks no request references (evictable; counted in :attr:`free_blocks`)."""
        return self._evictable

    @property
    def cached_blocks(self) -> int:
        """All cached blocks, referenced or not."""
        return len(self._cached)

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
        self._noted.discard(rid)
        self._key_memo.pop(rid, None)
        k = self._shared.pop(rid, 0)
        for b in table[k:]:
            heapq.heappush(self._free, b)
        if k:
            self._unref([self._hash_of[b] for b in table[:k]])
        return table

    def _unref(self, keys: list[Hashable]) -> None:
        """Drop one reference to each of ``keys`` (a leading run of one path); a block nobody
        references any more becomes evictable."""
        cached = self._cached
        root = cached[keys[0]].root
        leaves = self._trees[root][1]
        for key in reversed(keys):               # deepest first: leaves become evictable in order
            c = cached[key]
            c.refs -= 1
            if c.refs == 0:
                self._evictable += 1
                if c.children == 0:
                    leaves[key] = None
        self._trees.move_to_end(root)

    # -- retention beyond LRU -----------------------------------------------------------------
    def pin(self, rid: int, until: float) -> None:
        """Keep the cached blocks ``rid`` references until time ``until`` (a reference that
        :meth:`expire` drops then): TTL retention of a finished request's prefix, e.g. while its
        session waits for a tool call. Call before :meth:`free`."""
        k = self._shared.get(rid, 0)
        if not k:
            return
        keys = [self._hash_of[b] for b in self._tables[rid][:k]]
        for h in keys:
            self._cached[h].refs += 1             # rid still holds them: never from 0
        self._pin_seq += 1
        heapq.heappush(self._pins, (until, self._pin_seq, keys))

    @property
    def pinned(self) -> int:
        """Pins not yet expired."""
        return len(self._pins)

    def pin_prefix(self, request: Request, until: float, tag: Hashable) -> int:
        """Mark the leading cached blocks of ``request``'s keys (its prompt's shared prefix, whether
        or not a request holds them now) as wanted again soon, until ``until`` or :meth:`unpin` of
        ``tag`` (a tag's earlier mark is replaced): the hint of a driver that knows a request
        continuing this chain will come (a network workflow's next step on this engine).

        Unlike :meth:`pin`, this takes no memory from anyone: the blocks stay free memory, but
        eviction takes every unmarked evictable block first (workflow retention). A tag should
        own its chain (another tag marking the same blocks may lose its mark when the first tag's
        is dropped after an eviction). Returns the blocks marked."""
        self.unpin(tag)
        if not self.prefix_caching or (request.prefix_id is None and request.block_hashes is None):
            return 0
        keys = block_keys(request, self.block_size, shared_tokens(request) // self.block_size)
        cached, soft = self._cached, self._soft
        k = 0
        while k < len(keys) and keys[k] in cached:
            k += 1
        if not k:
            return 0
        run = keys[:k]
        for h in run:
            soft[h] = soft.get(h, 0) + 1
        self._pin_seq += 1
        self._soft_pins[tag] = (self._pin_seq, run)
        if until < float("inf"):
            heapq.heappush(self._soft_until, (until, self._pin_seq, tag))
        return k

    def unpin(self, tag: Hashable) -> None:
        """Drop the mark of ``tag`` (:meth:`pin_prefix`), if it has one."""
        pin = self._soft_pins.pop(tag, None)
        if pin is None:
            return
        soft = self._soft
        for h in pin[1]:
            n = soft.get(h)
            if n is not None:               # (an evicted block lost its mark)
                if n > 1:
                    soft[h] = n - 1
                else:
                    del soft[h]

    @property
    def marked(self) -> int:
        """Marks of :meth:`pin_prefix` in force."""
        return len(self._soft_pins)

    def expire_first(self) -> None:
        """Drop the pin that expires first, now (when pins would stall the engine)."""
        if self._pins:
            self._unref(heapq.heappop(self._pins)[2])

    def expire(self, now: float) -> None:
        """Drop the pins whose time has come (all of them with ``now = inf``)."""
        pins = self._pins
        while pins and pins[0][0] <= now:
            self._unref(heapq.heappop(pins)[2])
        marks = self._soft_until
        while marks and marks[0][0] <= now:
            _, seq, tag = heapq.heappop(marks)
            pin = self._soft_pins.get(tag)
            if pin is not None and pin[0] == seq:
                self.unpin(tag)

    def _take(self) -> int:
        if self._free:
            return heapq.heappop(self._free)
        if self._fresh < self.num_blocks:
            self._fresh += 1
            return self._fresh - 1
        if self._evictable:
            return self._evict_one()
        if not self.growable:
            raise KVCacheFull(f"KV cache full: all {self.num_blocks} blocks of {self.block_size} "
                              f"tokens are in use; give more blocks or let the pool grow")
        self.num_blocks *= 2
        self._fresh += 1
        return self._fresh - 1

    def _evict_one(self) -> int:
        """Reclaim an unreferenced leaf of the least recently used tree that has one; with marks
        (:meth:`pin_prefix`), an unmarked one if there is any."""
        soft = self._soft
        if soft:
            for root, (_, leaves) in self._trees.items():
                for key in leaves:
                    if key not in soft:
                        return self._evict(root, key)
        for root, (_, leaves) in self._trees.items():
            if leaves:
                return self._evict(root, next(iter(leaves)))
        raise AssertionError("evictable count out of step with the cache")   # pragma: no cover

    def _evict(self, root: Hashable, key: Hashable) -> int:
        size, leaves = self._trees[root]
        del leaves[key]
        self._soft.pop(key, None)
        c = self._cached.pop(key)
        del self._hash_of[c.block]
        size[0] -= 1
        if c.parent is not None:
            p = self._cached[c.parent]
            p.children -= 1
            if p.children == 0 and p.refs == 0:
                leaves[c.parent] = None
        if not size[0]:
            del self._trees[root]
        self._evictable -= 1
        if self.host_blocks:                  # the second tier keeps a copy (LRU)
            host = self._host
            host[key] = None
            if len(host) > self.host_blocks:
                host.popitem(last=False)
        return c.block

    # -- prefix caching -----------------------------------------------------------------------
    def _keys(self, request: Request, blocks: int) -> tuple[Hashable, ...]:
        """The keys of ``request``'s first ``blocks`` blocks (computed once per request)."""
        memo = self._key_memo.get(request.request_id)
        if memo is None or memo[0] is not request:
            if len(self._key_memo) > 1024:          # requests looked up but never admitted here
                self._key_memo.clear()
            memo = self._key_memo[request.request_id] = (
                request, block_keys(request, self.block_size, shared_tokens(request) // self.block_size))
        return memo[1][:blocks]

    def matched_blocks(self, request: Request, limit: int) -> tuple[int, int]:
        """(leading blocks of ``request``'s first ``limit`` keys that are cached, how many of
        them nobody references).

        Two binary searches: the tree is prefix-closed along a request's keys (a cached block's
        parent is the cached block before it, whose key is the request's previous key, since
        equal keys mean equal prefixes), and references never grow along the path."""
        keys = self._keys(request, limit)
        cached = self._cached
        if not keys or keys[0] not in cached:
            return 0, 0
        lo, hi = 1, len(keys)                  # the largest k with keys[k - 1] cached
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if keys[mid - 1] in cached:
                lo = mid
            else:
                hi = mid - 1
        k, lo = lo, 0
        hi = k                                 # the first of them nobody references
        while lo < hi:
            mid = (lo + hi) // 2
            if cached[keys[mid]].refs == 0:
                hi = mid
            else:
                lo = mid + 1
        return k, k - lo

    def prefix_match_tokens(self, request: Request) -> int:
        """Prompt tokens of ``request`` (whole blocks) its cached prefix holds now, uncapped: what
        a cache-aware router compares across replicas."""
        if not self.prefix_caching or (request.prefix_id is None and request.block_hashes is None):
            return 0
        return self.matched_blocks(request, shared_tokens(request) // self.block_size)[0] * self.block_size

    def probe(self, state: RequestState) -> tuple[int, int]:
        """(prompt tokens of waiting request ``state`` the cache holds now, whole blocks; blocks
        of that hit nobody references, which leave the evictable pool if it is admitted).

        The one prefix-hit rule: only a request with a prefix (or block hashes), nothing computed
        and no blocks (not resident, not swapped) looks up the cache; at least one prompt token is
        always left to compute (as in vLLM), so the hit is at most ``prefill_left - 1`` tokens."""
        if not self.prefix_caching:
            return 0, 0
        r = state.request
        if (r.prefix_id is None and r.block_hashes is None) or state.context_tokens or r.request_id in self._tables:
            return 0, 0
        cap = min(shared_tokens(r), state.prefill_left - 1) // self.block_size
        if cap <= 0:
            return 0, 0
        k, revive = self.matched_blocks(r, cap)
        fetch = self._host_run(r, k, cap)
        return (k + fetch) * self.block_size, revive + fetch

    def _host_run(self, request: Request, start: int, limit: int) -> int:
        """Blocks ``start ..`` (before ``limit``) of ``request`` held in host memory, a run."""
        host = self._host
        if not host or start >= limit:
            return 0
        keys = self._keys(request, limit)
        i = start
        while i < limit and keys[i] in host:
            i += 1
        return i - start

    def lookup_hash_blocks(self, request: Request) -> int:
        """Leading hashes of ``request`` (a request with ``block_hashes``) whose whole content the
        cache holds now, without the compute-one-token cap of :meth:`probe`: the prefix-cache hit
        counted in the trace's own blocks. A hash whose tokens fill no whole KV block of its own
        (a short last block) counts when an earlier request computed it."""
        ends = hash_block_ends(request, self.block_size)
        if not self.prefix_caching or not ends:
            return 0
        k, _ = self.matched_blocks(request, ends[-1])
        k += self._host_run(request, k, ends[-1])
        hashes = request.block_hashes
        assert hashes is not None
        n, prev = 0, 0
        for j, e in enumerate(ends):
            if e > k or (e == prev and hashes[j] not in self._empty_hashes):
                break
            n, prev = n + 1, e
        return n

    def admit_hit(self, rid: int, request: Request, hit_tokens: int) -> int:
        """Start ``rid``'s table with the cached blocks of its ``hit_tokens``-token hit
        (:meth:`probe`), referencing them; the part of the hit held in host memory is fetched
        back into new blocks, cached again. Returns the tokens fetched from host memory."""
        k = hit_tokens // self.block_size
        if rid in self._tables:
            raise ValueError(f"request {rid} already holds KV blocks")
        table: list[int] = []
        fetch = 0
        if k:
            keys = self._keys(request, k)
            gpu = self.matched_blocks(request, k)[0]
            fetch = k - gpu
            if gpu:
                root = self._cached[keys[0]].root
                leaves = self._trees[root][1]
                for h in keys[:gpu]:
                    c = self._cached[h]
                    if c.refs == 0:
                        self._evictable -= 1
                        leaves.pop(h, None)
                    c.refs += 1
                    table.append(c.block)
                self._trees.move_to_end(root)
            if fetch:
                for h in keys[gpu:]:
                    del self._host[h]
                self._tables[rid] = table
                self._shared[rid] = gpu
                for _ in range(fetch):
                    table.append(self._take())
                self._attach(keys, table, gpu, k)
        self._tables[rid] = table
        self._held[rid] = k
        self._shared[rid] = k
        return fetch * self.block_size

    def _attach(self, keys: tuple[Hashable, ...], table: list[int], k: int, j: int) -> None:
        """Cache blocks ``table[k:j]`` under ``keys[k:j]``, below the cached run ``keys[:k]``
        (a new tree when ``k`` is 0); each referenced once, by the request that holds them."""
        cached = self._cached
        if k:
            parent: Hashable | None = keys[k - 1]
            root = cached[keys[k - 1]].root
        else:
            parent, root = None, keys[0]
            self._trees[root] = ([0], {})
        for i in range(k, j):
            h, b = keys[i], table[i]
            if parent is not None:
                cached[parent].children += 1
            cached[h] = _Node(b, root, parent)
            self._hash_of[b] = h
            self._host.pop(h, None)
            parent = h
        self._trees[root][0][0] += j - k
        self._trees.move_to_end(root)

    def publish(self, rid: int, state: RequestState) -> None:
        """Cache the whole shareable blocks ``rid`` has computed beyond its cached run, when
        the next one is not cached yet (else its copies stay private duplicates)."""
        r = state.request
        table = self._tables.get(rid)
        if not self.prefix_caching or (r.prefix_id is None and r.block_hashes is None) or table is None:
            return
        shared = shared_tokens(r)
        done = min(state.context_tokens, shared)
        if r.block_hashes is not None and done == shared and rid not in self._noted:
            self._noted.add(rid)
            self._note_empty_hashes(r, done)
        j = done // self.block_size
        k = self._shared.get(rid, 0)
        if j <= k:
            return
        hashes = self._keys(r, j)
        if hashes[k] in self._cached:
            return                                          # a private duplicate of cached blocks
        self._attach(hashes, table, k, j)
        self._shared[rid] = j

    def _note_empty_hashes(self, r: Request, done: int) -> None:
        """Remember the computed hashes of ``r`` that own no whole KV block (their content is
        known once computed, and costs no memory)."""
        hashes, size, b = r.block_hashes, r.hash_block_tokens, self.block_size
        assert hashes is not None
        prev = 0
        for j, h in enumerate(hashes):
            end = min((j + 1) * size, r.prompt_tokens)
            if end > done:
                break
            if end // b == prev:
                self._empty_hashes.add(h)
            prev = end // b

    # -- checks -------------------------------------------------------------------------------
    def check(self) -> None:
        """Assert the accounting: own + cached + truly free blocks = all blocks, reference counts
        equal the tables holding each cached block, the trees prefix-closed with parents
        referenced at least as often as their children, the evictable leaves exactly the
        unreferenced childless blocks, nothing handed out twice (tests call this between
        iterations)."""
        assert self._held == {rid: len(t) for rid, t in self._tables.items()}
        seen: list[int] = list(self._free) + list(range(self._fresh, self.num_blocks))
        refs: dict[int, int] = {}
        for rid, table in self._tables.items():
            k = self._shared.get(rid, 0)
            assert k <= len(table)
            for i, b in enumerate(table[:k]):
                assert b in self._hash_of and self._hash_of[b] not in self._host
                if i:
                    assert self._cached[self._hash_of[b]].parent == self._hash_of[table[i - 1]]
                refs[b] = refs.get(b, 0) + 1
            seen += table[k:]
        for _, _, keys in self._pins:
            for h in keys:
                b = self._cached[h].block
                refs[b] = refs.get(b, 0) + 1
        seen += list(self._hash_of)
        assert sorted(seen) == list(range(self.num_blocks)), "a block is lost or handed out twice"
        children: dict[Hashable, int] = {}
        count: dict[Hashable, int] = {}
        for h, c in self._cached.items():
            assert c.refs == refs.get(c.block, 0) and self._hash_of[c.block] == h
            count[c.root] = count.get(c.root, 0) + 1
            if c.parent is None:
                assert c.root == h
            else:
                p = self._cached[c.parent]
                assert p.root == c.root and p.refs >= c.refs, "references are not leading runs"
                children[c.parent] = children.get(c.parent, 0) + 1
        assert set(self._trees) == set(count)
        for root, (size, leaves) in self._trees.items():
            assert size[0] == count[root]
            assert set(leaves) == {h for h, c in self._cached.items()
                                   if c.root == root and c.refs == 0 and not children.get(h, 0)}
        for h, c in self._cached.items():
            assert c.children == children.get(h, 0)
        evictable = sum(c.refs == 0 for c in self._cached.values())
        assert evictable == self._evictable and len(self._cached) == len(self._hash_of)
        assert len(self._host) <= self.host_blocks
        assert set(self._soft) <= set(self._cached), "a mark on a block that is not cached"
