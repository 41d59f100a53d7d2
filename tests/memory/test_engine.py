"""The KV-memory engine: exact agreement with no memory pressure, conservation and safety under an overload burst."""

from __future__ import annotations

import pandas as pd
import pytest

from llmqueue.engine import paper_staircase
from llmqueue.engine.request import Request
from llmqueue.errors import KVCacheError
from llmqueue.memory.config import MemoryConfig
from llmqueue.policies import make_policy
from llmqueue.policies.memory_aware import VLLMV1, ThresholdAdmission
from llmqueue.sim import simulate
from llmqueue.workload import Geometric, PoissonArrivals, Uniform, Workload

BT = paper_staircase()


def _requests(rate=12.0, n=200, seed=1):
    wl = Workload(arrival=PoissonArrivals(rate), prompt_tokens=Uniform(20, 240),
                  decode_tokens=Geometric(60), num_requests=n)
    return list(wl.requests(seed))


@pytest.mark.parametrize("name", ["sarathi", "orca", "vllm", "fastertransformer"])
def test_large_memory_equals_generic_engine(name):
    reqs = _requests(n=120)
    pol = make_policy(name, 512)
    a = simulate(pol, BT, reqs, engine="generic")
    b = simulate(pol, BT, reqs, memory=MemoryConfig(10 ** 9))
    pd.testing.assert_frame_equal(a.requests, b.requests)
    pd.testing.assert_frame_equal(a.iterations, b.iterations)
    assert (a.end_time, a.tokens_processed, a.tokens_left) == (b.end_time, b.tokens_processed, b.tokens_left)
    assert b.summary()["preemptions"] == 0


def _burst():
    """Steady load at 0.5x, a burst at 2x the memory capacity, then nothing: every request must finish."""
    calm = Workload(arrival=PoissonArrivals(3.0), prompt_tokens=Uniform(20, 240),
                    decode_tokens=Geometric(60), duration_s=10.0)
    burst = Workload(arrival=PoissonArrivals(16.0), prompt_tokens=Uniform(20, 240),
                     decode_tokens=Geometric(60), duration_s=5.0)
    reqs = list(calm.requests(2)) + [Request(10_000 + r.request_id, r.arrival_time + 10.0, r.prompt_tokens,
                                             r.decode_tokens) for r in burst.requests(3)]
    return sorted(reqs, key=lambda r: r.arrival_time)


@pytest.mark.parametrize("mode", ["recompute", "swap"])
@pytest.mark.parametrize("policy", [make_policy("sarathi", 512), VLLMV1(512)])
def test_overload_burst_keeps_working(mode, policy):
    reqs = _burst()
    mem = MemoryConfig(2048, preemption=mode, swap_s_per_token=2e-6)
    res = simulate(policy, BT, reqs, memory=mem)
    s = res.summary()
    assert s["completed"] == len(reqs) == res.requests["request_id"].nunique()
    assert s["preemptions"] > 0                       # the burst does press on memory
    assert res.memory_iterations["kv_used_tokens"].max() <= 2048
    assert s["tokens_left"] == 0 and s["tokens_conserved"]
    assert res.tokens_arrived + res.tokens_recomputed == res.tokens_processed
    if mode == "swap":
        assert res.tokens_recomputed == 0 and s["swap_time_s"] > 0
    # every request's output tokens were all produced, in order
    done = res.requests
    assert (done["completion_time"] >= done["arrival_time"]).all()


def test_declared_threshold_never_preempts():
    res = simulate(ThresholdAdmission(512), BT, _burst(), memory=MemoryConfig(2048))
    s = res.summary()
    assert s["preemptions"] == 0 and s["completed"] == len(_burst()) and s["tokens_conserved"]


def test_vllm_v1_without_memory_is_sarathi():
    reqs = _requests(n=80)
    a = simulate(make_policy("sarathi", 256), BT, reqs, engine="generic")
    b = simulate(VLLMV1(256), BT, reqs, engine="generic")
    pd.testing.assert_frame_equal(a.requests, b.requests)


def test_request_larger_than_memory_is_one_clear_error():
    with pytest.raises(KVCacheError, match="more than the whole KV cache"):
        simulate(VLLMV1(512), BT, [Request(0, 0.0, 4000, 10)], memory=MemoryConfig(1024))


def test_bad_memory_config():
    with pytest.raises(ValueError, match="preemption"):
        MemoryConfig(1024, preemption="drop")
    with pytest.raises(ValueError, match="capacity_tokens"):
        MemoryConfig(8)
