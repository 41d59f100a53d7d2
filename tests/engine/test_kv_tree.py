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
