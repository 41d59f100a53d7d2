"""The cache-aware router: longest cached prefix balanced against load, over replicas with
prefix caches (network/routers.py, network/routed.py)."""

import pandas as pd

from llmqueue.engine import Request, paper_staircase
from llmqueue.memory import VLLMV1
from llmqueue.memory.config import MemoryConfig
from llmqueue.network import JobClass, NetEngine, Network, Step, Workflow, replicas, simulate_network
from llmqueue.network.routed import simulate_routed
from llmqueue.policies import SarathiServe
from llmqueue.workload import Fixed, PoissonArrivals

MEM = MemoryConfig(1 << 15, prefix_caching=True)


def conv(rid, t, turns, prompt=1024, base=0):
    """A conversation's turn: ``turns`` blocks of 512 tokens of its own chain (ids base+0 ...)."""
    return Request(rid, t, prompt * turns // 2, 4, block_hashes=tuple(range(base, base + turns)),
                   hash_block_tokens=512)


def test_a_turn_follows_its_conversation_to_the_replica_holding_its_prefix():
    # two conversations, each turn extending the previous; arrivals far apart (idle replicas)
    reqs = [conv(0, 0.0, 2, base=0), conv(1, 10.0, 2, base=100), conv(2, 20.0, 4, base=0),
            conv(3, 30.0, 4, base=100), conv(4, 40.0, 6, base=0), conv(5, 50.0, 6, base=100)]
    run = simulate_routed(VLLMV1(2048), paper_staircase(), reqs, replicas=3, rule="cache_aware", memory=MEM)
    s = run.served_by
    assert s[0] == s[2] == s[4] and s[1] == s[3] == s[5]
    assert sum(r.hash_block_hits for r in run.replicas) == 2 + 4 + 2 + 4
    # the same turns, arriving while the other conversation's turn is still running
    close = [conv(i, 0.2 * i, (2, 2, 4, 4, 6, 6)[i], base=(0, 100)[i % 2])
             for i in range(6)]
    run = simulate_routed(VLLMV1(2048), paper_staircase(), close, replicas=3, rule="cache_aware", memory=MEM)
    jsq = simulate_routed(VLLMV1(2048), paper_staircase(), close, replicas=3, rule="jsq", memory=MEM)
    hits = [sum(r.hash_block_hits for r in x.replicas) for x in (run, jsq)]
    assert hits[0] > hits[1]
    for run_ in (run, jsq):
        assert all(r.summary()["tokens_conserved"] for r in run_.replicas)


def test_load_outweighs_a_short_match():
    # replica 0 holds a 2-block prefix, then gets a long request; a request sharing that prefix
    # goes to the empty replica 1 when replica 0's queue exceeds the tokens it would save
    first, long = conv(0, 0.0, 2, base=0), Request(1, 5.0, 8000, 4)
    nxt = conv(2, 5.0, 4, base=0)
    run = simulate_routed(VLLMV1(512), paper_staircase(), [first, long, nxt], replicas=2, rule="cache_aware",
                          memory=MEM)
    assert run.served_by == {0: 0, 1: 0, 2: 1}     # ties go to the first; then 8004 queued > 1024 saved
    light = [first, Request(1, 5.0, 500, 4), nxt]
    run = simulate_routed(VLLMV1(512), paper_staircase(), light, replicas=2, rule="cache_aware", memory=MEM)
    assert run.served_by == {0: 0, 1: 0, 2: 0}     # 504 queued < 1024 saved: the prefix wins


def test_without_hashes_cache_aware_is_least_tokens():
    def pool(rule):
        copies, router = replicas(NetEngine("llm", SarathiServe(512), paper_staircase()), 3, rule)
        wf = Workflow.chain(Step("llm", Fixed(100), Fixed(20)))
        return Network(copies, (JobClass("C", PoissonArrivals(30.0), wf),), (router,))
    a = simulate_network(pool("cache_aware"), 1, duration=20.0)
    b = simulate_network(pool("least_tokens"), 1, duration=20.0)
    pd.testing.assert_frame_equal(a.visits, b.visits)
