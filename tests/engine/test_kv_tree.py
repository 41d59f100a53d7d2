"""The KV manager's prefix tree keyed by block hashes (Request.block_hashes): sharing a common
start and diverging, reference counts, eviction of unreferenced leaves, the KV-block mapping."""

from llmqueue.engine import Request, RequestState
from llmqueue.engine.kv import KVManager, block_keys, hash_block_ends, shared_tokens


def hashed(rid, prompt, hashes, size=8):
    return RequestState(Request(rid, 0.0, prompt, 3, block_hashes=tuple(hashes), hash_block_tokens=size), rid)


def run_prefill(kv, s):
    """Admit ``s`` with what the cache holds, compute its whole prompt, publish it."""
    hit, _ = kv.probe(s)
    kv.admit_hit(s.request_id, s.request, hit)
    if hit:
        s.skip_prefill(hit)
    kv.grow(s.request_id, s.request.prompt_tokens)
    s.start_at(s.prefill_left)
    kv.publish(s.request_id, s)
    kv.check()
    return hit


def test_kv_blocks_are_shared_only_where_a_hash_determines_their_whole_content():
    r = Request(0, 0.0, 20, 1, block_hashes=(7, 8, 9), hash_block_tokens=8)   # last hash: tokens 16..20
    assert shared_tokens(r) == 20
    assert block_keys(r, 4, 5) == ((7, 0), (7, 1), (8, 2), (8, 3), (9, 4))
    assert block_keys(r, 6, 3) == ((7, 0), (8, 1), (9, 2))     # block 1 (6..12) straddles: hash 8 covers it
    assert hash_block_ends(r, 4) == [2, 4, 5] and hash_block_ends(r, 16) == [0, 1, 1]
    short = Request(1, 0.0, 20, 1, block_hashes=(7,), hash_block_tokens=8)
    assert shared_tokens(short) == 8


def test_requests_share_the_first_block_then_diverge_into_a_tree():
    kv = KVManager(40, 4, prefix_caching=True)
    a = hashed(0, 24, [1, 2, 3])
    assert run_prefill(kv, a) == 0 and kv.cached_blocks == 6
    b = hashed(1, 24, [1, 4, 5])                 # shares hash 1 (blocks 0, 1) with a, then its own
    assert run_prefill(kv, b) == 8 and kv.cached_blocks == 10
    c = hashed(2, 20, [1, 4, 6])                 # shares 1 and 4 with b; hash 6 covers 16..20
    assert kv.lookup_hash_blocks(c.request) == 2
    assert run_prefill(kv, c) == 16 and kv.cached_blocks == 11
    root = kv._cached[(1, 0)]
    assert root.refs == 3 and kv._cached[(1, 1)].children == 2      # the branch point
    for s in (a, b, c):
        kv.free(s.request_id)
        kv.check()
    assert kv.cached_free_blocks == 11 and kv.free_blocks == 40
    d = hashed(3, 24, [1, 2, 3])                 # a's whole prompt: all but the last token's block
    assert kv.lookup_hash_blocks(d.request) == 3 and kv.probe(d) == (20, 5)


def test_eviction_takes_unreferenced_leaves_and_never_a_referenced_block():
    kv = KVManager(12, 4, prefix_caching=True)
    a, b = hashed(0, 16, [1, 2]), hashed(1, 16, [1, 3])
    run_prefill(kv, a)
    run_prefill(kv, b)                           # b holds blocks (1,0),(1,1) shared, (3,2),(3,3) its own
    kv.free(0)                                   # a's branch (2,2),(2,3) unreferenced; (1,*) held by b
    assert kv.cached_free_blocks == 2
    kv.grow(9, 4 * 8)                            # needs 8 blocks: 6 free + a's two leaves
    kv.check()
    assert (2, 2) not in kv._cached and (2, 3) not in kv._cached and (1, 1) in kv._cached
    assert kv.free_blocks == 0
    kv.free(1)                                   # b's blocks all unreferenced: its leaf first
    kv.grow(10, 4)
    kv.check()
    assert (3, 3) not in kv._cached and (3, 2) in kv._cached


def test_a_hash_without_a_whole_block_counts_once_computed():
    kv = KVManager(20, 8, prefix_caching=True)
    a = hashed(0, 20, [1, 2, 3])                 # hash 3: tokens 16..20, no whole 8-token block
    run_prefill(kv, a)
    b = hashed(1, 20, [1, 2, 3])
    assert kv.lookup_hash_blocks(b.request) == 3
    assert kv.probe(b) == (16, 0)                # the hit itself stays whole blocks, one token left
    other = hashed(2, 20, [1, 2, 4])
    assert kv.lookup_hash_blocks(other.request) == 2


def test_a_pin_keeps_a_finished_prefix_until_it_expires():
    kv = KVManager(10, 4, prefix_caching=True)
    a = hashed(0, 16, [1, 2])
    run_prefill(kv, a)
    kv.pin(0, until=5.0)
    kv.free(0)
    kv.check()
    assert kv.cached_free_blocks == 0 and kv.free_blocks == 6      # pinned: not evictable
    kv.expire(4.9)
    assert kv.pinned == 1 and kv.free_blocks == 6
    kv.expire(5.0)
    kv.check()
    assert kv.pinned == 0 and kv.cached_free_blocks == 4 and kv.free_blocks == 10


def test_evicted_blocks_come_back_from_the_host_tier():
    kv = KVManager(6, 4, prefix_caching=True, host_blocks=8)
    a = hashed(0, 16, [1, 2])
    run_prefill(kv, a)
    kv.free(0)
    kv.grow(5, 24)                              # all 6 blocks: a's 4 cached ones are evicted to host
    kv.check()
    assert kv.cached_blocks == 0 and len(kv._host) == 4
    kv.free(5)
    b = hashed(1, 20, [1, 2, 3])
    hit, revive = kv.probe(b)
    assert (hit, revive) == (16, 4)             # 4 blocks to fetch, each taking a free block
    assert kv.lookup_hash_blocks(b.request) == 2
    assert kv.admit_hit(1, b.request, hit) == 16
    kv.check()
    assert kv.cached_blocks == 4 and not kv._host and kv._cached[(2, 3)].refs == 1


def test_ttl_and_host_tier_keep_a_conversation_that_lru_evicts():
    from llmqueue.engine import paper_staircase
    from llmqueue.memory import VLLMV1
    from llmqueue.memory.config import MemoryConfig
    from llmqueue.sim import simulate

    # a conversation: turn k's prompt extends turn k-1's, 4 s apart; two unrelated requests
    # arrive 1 s after each turn and need the memory its cached prefix occupies
    reqs = []
    for k in range(4):
        reqs.append(Request(len(reqs), 4.0 * k, 512 * (k + 1), 2, block_hashes=tuple(range(k + 1)),
                            hash_block_tokens=512))
        reqs += [Request(len(reqs) + i, 4.0 * k + 1.0, 1000, 30) for i in range(2)]
    results = {}
    for name, extra in (("lru", {}), ("ttl", {"eviction": "ttl", "ttl_s": 10.0}),
                        ("host", {"host_cache_tokens": 4096, "swap_s_per_token": 1e-6})):
        mem = MemoryConfig(3072, prefix_caching=True, **extra)
        res = simulate(VLLMV1(1024), paper_staircase(), reqs, memory=mem)
        assert res.summary()["tokens_conserved"]
        results[name] = res
    hits = {n: r.hash_block_hits for n, r in results.items()}
    assert hits == {"lru": 3, "ttl": 6, "host": 6}          # 6 = 0 + 1 + 2 + 3: every earlier turn
    ttft = {n: r.summary()["mean_ttft_ms"] for n, r in results.items()}
    assert ttft["ttl"] > ttft["lru"] > ttft["host"]          # pinned memory makes the others wait
    assert results["host"].memory_iterations["swap_time"].sum() > 0
    assert results["lru"].memory_iterations["swap_time"].sum() == 0
