"""The one KV manager (llmqueue.engine.kv): block ids lowest first, tables, hashed prefix blocks
with reference counts, LRU eviction of unreferenced cached blocks from a chain's tail."""

import pytest

from llmqueue.engine import Request, RequestState
from llmqueue.engine.kv import KVManager, prefix_block_hashes
from llmqueue.errors import KVCacheFull


def state(rid, prompt, prefix=None, tokens=0, done=0):
    s = RequestState(Request(rid, 0.0, prompt, 5, prefix_id=prefix, prefix_tokens=tokens), rid)
    if done:
        s.start_at(done)
    return s


def test_tables_take_lowest_free_blocks_and_give_them_back():
    kv = KVManager(6, 4)
    kv.grow(0, 6)                         # 2 blocks
    kv.grow(1, 3)
    kv.grow(0, 9)                         # a third
    assert kv.table(0) == [0, 1, 3] and kv.table(1) == [2]
    assert kv.free_blocks == 2 and kv.held_counts == {0: 3, 1: 1}
    assert kv.free(0) == [0, 1, 3]
    kv.grow(2, 8)
    assert kv.table(2) == [0, 1] and kv.used_blocks == 3
    kv.check()


def test_out_of_blocks_raises_or_grows():
    kv = KVManager(1, 4)
    kv.grow(0, 4)
    with pytest.raises(KVCacheFull, match="all 1 blocks"):
        kv.grow(0, 5)
    g = KVManager(2, 4, growable=True)
    g.grow(0, 12)
    assert g.num_blocks == 4 and g.table(0) == [0, 1, 2]
    g.check()


def test_hashes_chain_their_parents():
    a, b = prefix_block_hashes("sys", 4), prefix_block_hashes("other", 4)
    assert len(set(a)) == 4 and not set(a) & set(b)
    assert prefix_block_hashes("sys", 2) == a[:2]


def test_publish_hit_reference_counts_and_eviction():
    kv = KVManager(10, 4, prefix_caching=True)
    a = state(0, 20, "sys", 12)
    kv.grow(0, 20)
    a.start_at(20)                        # a computed its prompt
    kv.publish(0, a)                      # its 3 full prefix blocks are cached
    b = state(1, 20, "sys", 12)
    assert kv.probe(b) == (12, 0)         # all 3 cached, all referenced by a
    kv.admit_hit(1, b.request, 12)
    kv.grow(1, 17)
    assert kv.table(1)[:3] == kv.table(0)[:3] and kv.table(1)[3:] != kv.table(0)[3:]
    kv.check()
    kv.free(0)
    kv.free(1)                            # the 3 cached blocks stay, evictable (counted as free)
    assert kv.cached_free_blocks == 3 and kv.free_blocks == 10
    c = state(2, 20, "sys", 12)
    assert kv.probe(c) == (12, 3)         # a hit on unreferenced blocks revives them
    # a short prompt leaves its last token to compute; a resident or started request does not look up
    assert kv.probe(state(3, 8, "sys", 8)) == (4, 1)
    assert kv.probe(state(4, 20, "sys", 12, done=1)) == (0, 0)
    kv.check()
    # taking every free block evicts the cached ones, from the tail
    kv.grow(5, 4 * 7)
    assert kv.cached_free_blocks == 3
    kv.grow(5, 4 * 8)
    assert kv.cached_free_blocks == 2 and kv.probe(c) == (8, 2)
    kv.check()


def test_a_private_duplicate_does_not_extend_the_cache():
    kv = KVManager(20, 4, prefix_caching=True)
    a, b = state(0, 16, "p", 16), state(1, 16, "p", 16)
    for s in (a, b):
        kv.grow(s.request_id, 8)
        s.start_at(8)
    kv.publish(0, a)                      # a caches blocks 0, 1
    kv.publish(1, b)                      # b's copies are private duplicates
    for s in (a, b):
        kv.grow(s.request_id, 16)
        s.start_at(8)
    kv.publish(1, b)                      # b's run of cached blocks is empty: it cannot extend
    kv.publish(0, a)                      # a extends its chain to 4 blocks
    assert kv.probe(state(2, 30, "p", 16)) == (16, 0)
    assert kv.table(1)[:2] != kv.table(0)[:2]
    kv.check()


def test_least_recently_used_chain_is_evicted_first():
    kv = KVManager(4, 4, prefix_caching=True)
    for rid, pid in ((0, "x"), (1, "y")):
        s = state(rid, 9, pid, 8)
        kv.grow(rid, 8)
        s.start_at(8)
        kv.publish(rid, s)
    kv.free(0)                            # x released first ...
    kv.free(1)                            # ... then y: x is the least recently used
    kv.grow(9, 4)
    assert kv.probe(state(2, 9, "x", 8)) == (4, 1) and kv.probe(state(3, 9, "y", 8)) == (8, 2)
    kv.check()
