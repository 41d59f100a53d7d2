"""The paged KV cache: block tables map tokens to slots, blocks are reused lowest first, the pool
grows when allowed and says so plainly when it cannot."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from llmqueue.real.config import preset  # noqa: E402
from llmqueue.real.kv_cache import KVCacheFull, PagedKVCache  # noqa: E402


def test_slots_follow_the_block_table():
    c = PagedKVCache(preset("tiny"), block_size=4, num_blocks=8)
    a = c.append(0, 6)                      # blocks 0, 1
    b = c.append(1, 3)                      # block 2
    a2 = c.append(0, 3)                     # rest of block 1, then block 3
    assert a.tolist() == [0, 1, 2, 3, 4, 5]
    assert b.tolist() == [8, 9, 10]
    assert a2.tolist() == [6, 7, 12]
    assert c.block_table(0) == [0, 1, 3] and c.length(0) == 9
    assert c.slots(0).tolist() == a.tolist() + a2.tolist()
    assert c.used_tokens == 12


def test_release_reuses_lowest_blocks_first_and_is_deterministic():
    c = PagedKVCache(preset("tiny"), block_size=2, num_blocks=6)
    for rid in range(3):
        c.append(rid, 4)                    # 2 blocks each
    c.release(1)                            # frees blocks 2, 3
    assert c.free_blocks == 2
    assert c.append(9, 3).tolist() == [4, 5, 6]
    assert c.block_table(9) == [2, 3]


def test_pool_grows_or_raises():
    c = PagedKVCache(preset("tiny"), block_size=4, num_blocks=2)
    c.append(0, 8)
    k_before = c.k[:, :, :8].clone()
    c.append(1, 1)                          # needs a third block: the pool doubles
    assert c.num_blocks == 4 and torch.equal(c.k[:, :, :8], k_before)
    fixed = PagedKVCache(preset("tiny"), block_size=4, num_blocks=1, growable=False)
    fixed.append(0, 4)
    with pytest.raises(KVCacheFull, match="all 1 blocks"):
        fixed.append(0, 1)


def test_bad_sizes():
    with pytest.raises(ValueError, match="block_size"):
        PagedKVCache(preset("tiny"), block_size=0)


def test_layout_is_layers_heads_slots_dim():
    cfg = preset("tiny")
    c = PagedKVCache(cfg, block_size=4, num_blocks=3)
    assert tuple(c.k.shape) == (cfg.num_hidden_layers, cfg.num_key_value_heads, 12, cfg.head_dim)
    assert np.array_equal(c.slots(42), np.zeros(0, dtype=np.int64))


def test_decode_groups_minimise_padding():
    from llmqueue.real.batch import group_by_length
    assert group_by_length([1, 1, 2, 3], 4) == [2, 1, 1]               # free groups: one per length
    assert group_by_length([1, 1, 2, 3], 4, group_cost=100) == [4]      # costly groups: one
    sizes = group_by_length([1] * 10 + [2] * 10 + [3] + [9] * 5, 2)
    assert sizes == [20, 6]              # 20 x 2 + 6 x 9 = 94 beats 21 x 3 + 5 x 9 = 108
    nb = sorted([1, 2, 2, 3, 5, 5, 6, 8, 9, 9, 9])
    best = group_by_length(nb, 3)
    assert sum(best) == len(nb) and len(best) == 3

    def padded(sizes):
        total, i = 0, 0
        for s in sizes:
            total += s * nb[i + s - 1]
            i += s
        return total
    import itertools
    brute = min(padded([a, b - a, len(nb) - b]) for a, b in itertools.combinations(range(1, len(nb)), 2))
    assert padded(best) == brute
