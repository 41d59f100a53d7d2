"""Networks whose engines have KV memory: each engine's core admits, preempts and recomputes
on its own cache, and tokens are conserved with recomputation (issue 12: networks had no memory)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from llmqueue import paper_staircase, simulate
from llmqueue.memory.config import MemoryConfig
from llmqueue.network import JobClass, NetEngine, Network, Poisson, Step, Workflow, simulate_network
from llmqueue.policies.memory_aware import VLLMV1
from llmqueue.workload import Geometric, PoissonArrivals, Uniform, Workload


def _pipeline(memory_e, memory_f, rate=6.0):
    e = NetEngine("e", VLLMV1(512), paper_staircase(), memory=memory_e)
    f = NetEngine("f", VLLMV1(512), paper_staircase(), memory=memory_f)
    wf = Workflow.chain(Step("e", Uniform(20, 400), Geometric(80), name="plan"),
                        Step("f", Uniform(20, 300), Geometric(60), name="act"))
    return Network((e, f), (JobClass("C", PoissonArrivals(rate), wf),))


@pytest.mark.parametrize("mode", ["recompute", "swap"])
def test_engines_with_memory_preempt_and_conserve_tokens(mode):
    small = MemoryConfig(2048, preemption=mode, swap_s_per_token=1e-6)
    res = simulate_network(_pipeline(small, MemoryConfig(4096)), 2, duration=40.0)
    s = res.summary()
    t = res.tokens
    assert t["e"]["preemptions"] > 0                           # the small cache does press
    for name in ("e", "f"):
        x = t[name]
        assert x["arrived"] + x["recomputed"] == x["processed"] + x["cached"] + x["left"]
    if mode == "recompute":
        assert t["e"]["recomputed"] > 0
    assert s["tokens_conserved"] and s["jobs_completed"] == s["jobs_arrived"]
    assert s["engines"]["e"]["preemptions"] == t["e"]["preemptions"]
    # the backlog board stays in step with the engines' own books, and ends at zero
    assert (res.backlog["total_tokens"] >= 0).all() and res.backlog["total_tokens"].iloc[-1] == 0
    assert res.backlog["e"].iloc[-1] == 0 and res.backlog["f"].iloc[-1] == 0


def test_memory_is_per_engine_and_large_memory_changes_nothing():
    plain = simulate_network(_pipeline(None, None), 4, duration=30.0)
    big = simulate_network(_pipeline(MemoryConfig(10 ** 9), MemoryConfig(10 ** 9)), 4, duration=30.0)
    pd.testing.assert_frame_equal(plain.visits, big.visits)
    for n in ("e", "f"):
        pd.testing.assert_frame_equal(plain.iterations[n], big.iterations[n])
    assert big.tokens["e"]["preemptions"] == 0 and "recomputed" not in plain.tokens["e"]


def test_one_engine_network_with_memory_equals_the_single_engine_run():
    pol, bt = VLLMV1(512), paper_staircase()
    mem = MemoryConfig(2048)
    arrivals, prompt, decode = PoissonArrivals(8.0), Poisson(200), Geometric(80)
    net = Network((NetEngine("e", pol, bt, memory=mem),),
                  (JobClass("default", arrivals, Workflow.chain(Step("e", prompt, decode))),))
    res = simulate_network(net, 5, horizon=60.0)
    wl = Workload(arrival=arrivals, prompt_tokens=prompt, decode_tokens=decode, duration_s=100.0)
    single = simulate(pol, bt, wl.requests(np.random.SeedSequence(5, spawn_key=(0,))), memory=mem, horizon=60.0)
    assert len(single.preemptions) > 0
    pd.testing.assert_frame_equal(res.engine_requests("e"), single.requests)
    pd.testing.assert_frame_equal(res.iterations["e"], single.iterations)
    assert res.tokens["e"]["recomputed"] == single.tokens_recomputed


def test_bad_memory_is_one_clear_error():
    with pytest.raises(ValueError, match="memory must be a MemoryConfig"):
        NetEngine("e", VLLMV1(512), paper_staircase(), memory=dataclasses.asdict(MemoryConfig(2048)))
