"""Prefix caching in the KV-memory engine, and priority-aware preemption (docs/memory.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from llmqueue.engine import paper_staircase
from llmqueue.engine.core import EngineCore
from llmqueue.engine.request import Request
from llmqueue.memory.config import MemoryConfig
from llmqueue.policies import make_policy
from llmqueue.policies.memory_aware import VLLMV1
from llmqueue.sim import simulate
from llmqueue.workload import Geometric, PoissonArrivals, SharedPrefix, Uniform, Workload

BT = paper_staircase()
B = 16


def _prefixed(rate, n=None, duration=None, prompt=(600, 1000), groups=1, tokens=512, seed=1, decode=100):
    wl = Workload(arrival=PoissonArrivals(rate), prompt_tokens=Uniform(*prompt), decode_tokens=Geometric(decode),
                  num_requests=n, duration_s=duration, prefix=SharedPrefix(groups, tokens))
    return list(wl.requests(seed))


def _strip(reqs):
    return [dataclasses.replace(r, prefix_id=None, prefix_tokens=0) for r in reqs]


@pytest.fixture
def checked_engine(monkeypatch):
    """Check the block accounting before every iteration (KVManager.check): own + cached + truly
    free blocks = capacity, reference counts equal the tables holding each cached block, cached
    chains prefix-closed and referenced as leading runs, nothing handed out twice."""
    orig = EngineCore.begin
    calls = [0]

    def check(self, step, start, end):
        if self.kv is not None:
            self.kv.check()
            assert self.kv.used_blocks <= self.memory.num_blocks
            calls[0] += 1
        return orig(self, step, start, end)

    monkeypatch.setattr(EngineCore, "begin", check)
    return calls


@pytest.mark.parametrize("mode", ["recompute", "swap"])
def test_off_or_without_prefixes_nothing_changes(mode):
    reqs = _prefixed(14.0, n=300, prompt=(20, 600), groups=3, tokens=200)
    mem = MemoryConfig(4096, preemption=mode, swap_s_per_token=1e-6)
    base = simulate(VLLMV1(512), BT, _strip(reqs), memory=mem)
    assert base.summary()["preemptions"] > 0                       # memory is under pressure
    off = simulate(VLLMV1(512), BT, reqs, memory=mem)        # prefixes given, caching off
    on = simulate(VLLMV1(512), BT, _strip(reqs), memory=dataclasses.replace(mem, prefix_caching=True))
    for res in (off, on):
        pd.testing.assert_frame_equal(base.requests, res.requests.drop(columns="prefix_cache_hit_tokens",
                                                                       errors="ignore"))
        pd.testing.assert_frame_equal(base.iterations, res.iterations)
        pd.testing.assert_frame_equal(base.preemptions, res.preemptions)
        assert res.tokens_cached == 0
    assert "tokens_cached" not in off.summary() and on.summary()["prefix_cache_hit_tokens"] == 0


def test_shared_system_prompt_hits_what_theory_says(checked_engine):
    reqs = _prefixed(3.0, n=300)
    off = simulate(VLLMV1(512), BT, reqs, memory=MemoryConfig(10 ** 6))
    on = simulate(VLLMV1(512), BT, reqs, memory=MemoryConfig(10 ** 6, prefix_caching=True))
    s = on.summary()
    hits = (len(reqs) - 1) * (512 // B) * B         # everyone but the first finds the 32 blocks
    assert s["prefix_cache_hit_tokens"] == on.tokens_cached == hits
    assert off.tokens_processed - on.tokens_processed == hits
    assert on.requests["prefix_cache_hit_tokens"].tolist() == [0] + [512] * (len(reqs) - 1)
    assert s["tokens_conserved"] and s["completed"] == len(reqs) and s["preemptions"] == 0
    assert s["prefix_cache_hit_rate"] == pytest.approx(hits / sum(r.prompt_tokens for r in reqs))
    assert s["mean_ttft_ms"] < 0.5 * off.summary()["mean_ttft_ms"]
    assert checked_engine[0] > 0


def test_partial_blocks_are_not_shared():
    reqs = [Request(i, 10.0 * i, 300, 5, prefix_id="sys", prefix_tokens=100) for i in range(3)]
    res = simulate(VLLMV1(512), BT, reqs, memory=MemoryConfig(4096, prefix_caching=True))
    assert res.requests["prefix_cache_hit_tokens"].tolist() == [0, 96, 96]     # floor(100 / 16) blocks
    # the whole prompt cached still leaves its last token to compute
    reqs = [Request(i, 10.0 * i, 64, 5, prefix_id="sys", prefix_tokens=64) for i in range(2)]
    res = simulate(VLLMV1(512), BT, reqs, memory=MemoryConfig(4096, prefix_caching=True))
    assert res.requests["prefix_cache_hit_tokens"].tolist() == [0, 48]


def test_cache_raises_throughput_near_overload():
    """1.7 req/s without the cache (memory-bound), about 4.5 with it, at 5 req/s offered."""
    reqs = _prefixed(5.0, duration=120.0)
    done = {}
    for pc in (False, True):
        res = simulate(VLLMV1(512), BT, reqs, memory=MemoryConfig(16384, prefix_caching=pc), horizon=120.0)
        done[pc] = int((res.requests["completion_time"] <= 120.0).sum()) / 120.0
        assert res.summary()["tokens_conserved"]
    assert done[True] > 2.0 * done[False]


def _burst():
    """Calm load, then a burst at twice what the memory holds, three system prompts."""
    calm = _prefixed(3.0, duration=10.0, prompt=(20, 400), groups=3, tokens=256, seed=2, decode=60)
    burst = _prefixed(16.0, duration=5.0, prompt=(20, 400), groups=3, tokens=256, seed=3, decode=60)
    reqs = calm + [dataclasses.replace(r, request_id=10_000 + r.request_id, arrival_time=r.arrival_time + 10.0)
                   for r in burst]
    return sorted(reqs, key=lambda r: r.arrival_time)


@pytest.mark.parametrize("mode", ["recompute", "swap"])
@pytest.mark.parametrize("policy", [VLLMV1(512), make_policy("sarathi", 512)])
def test_burst_with_prefix_cache_completes(mode, policy, checked_engine):
    reqs = [r for r in _burst() if r.total_tokens <= 2048]
    res = simulate(policy, BT, reqs, memory=MemoryConfig(2048, preemption=mode, swap_s_per_token=2e-6,
                                                              prefix_caching=True))
    s = res.summary()
    assert s["completed"] == len(reqs) and s["tokens_left"] == 0 and s["tokens_conserved"]
    assert s["preemptions"] > 0 and s["prefix_cache_hit_tokens"] > 0
    assert res.tokens_arrived + res.tokens_recomputed == res.tokens_processed + res.tokens_cached
    m = res.memory_iterations
    assert (m["kv_used_tokens"] + m["kv_cached_tokens"]).max() <= 2048
    assert (res.requests["prefix_cache_hit_tokens"] % B == 0).all()


def test_priority_preemption_takes_the_lowest_class_first():
    """Two low-priority requests arrive first, then two high-priority ones; memory runs out.
    FCFS preempts the latest arrival (a high one); with class_order the latest low one goes."""
    reqs = [Request(0, 0.0, 100, 400, "low"), Request(1, 0.0, 100, 400, "low"),
            Request(2, 0.01, 100, 400, "high"), Request(3, 0.01, 100, 400, "high")]
    mem = MemoryConfig(1024)
    fcfs = simulate(VLLMV1(512), BT, reqs, memory=mem).preemptions
    prio = simulate(VLLMV1(512, class_order=("high", "low")), BT, reqs, memory=mem).preemptions
    assert fcfs["request_id"].iloc[0] == 3
    assert prio["request_id"].iloc[0] == 1
    assert set(prio["request_id"]) <= {0, 1}                      # a high one is never a victim
    done = simulate(VLLMV1(512, class_order=("high", "low")), BT, reqs, memory=mem).requests
    assert done["completion_time"][2:].max() < done["completion_time"][:2].min()


def test_workload_prefix_stream_is_separate():
    kw = dict(arrival=PoissonArrivals(5.0), prompt_tokens=Uniform(1, 900), decode_tokens=Geometric(50),
              num_requests=4000)
    plain = list(Workload(**kw).requests(7))
    pre = list(Workload(**kw, prefix=SharedPrefix(4, 512)).requests(7))
    assert _strip(pre) == plain                                  # arrivals and lengths unchanged
    assert all(r.prefix_tokens == min(512, r.prompt_tokens) for r in pre)
    counts = np.bincount([int(r.prefix_id[1:]) for r in pre], minlength=4)
    assert len(counts) == 4 and counts.min() > 900               # uniform over p0..p3
    assert pre == list(Workload(**kw, prefix=SharedPrefix(4, 512)).requests(7))
    with pytest.raises(ValueError, match="groups"):
        SharedPrefix(0, 5)
    with pytest.raises(ValueError, match="prefix_tokens"):
        Request(0, 0.0, 10, 1, prefix_id="a", prefix_tokens=11)
    with pytest.raises(ValueError, match="needs a prefix_id"):
        Request(0, 0.0, 10, 1, prefix_tokens=5)


def test_trace_prefix_columns_round_trip_and_errors(tmp_path):
    from llmqueue.workload import TraceError, read_trace, write_trace
    reqs = _prefixed(4.0, n=50, prompt=(1, 900), groups=2, tokens=300)
    reqs[3] = dataclasses.replace(reqs[3], prefix_id=None, prefix_tokens=0)
    write_trace(tmp_path / "t.csv", reqs)
    assert (tmp_path / "t.csv").read_text().splitlines()[0].endswith(",prefix_id,prefix_tokens")
    assert read_trace(tmp_path / "t.csv") == reqs
    assert Workload(trace=tuple(reqs)).requests(0).__next__() == reqs[0]
    write_trace(tmp_path / "plain.csv", _strip(reqs))              # no prefixes: the old columns only
    header = (tmp_path / "plain.csv").read_text().splitlines()[0]
    assert header == "arrival_time,prompt_tokens,decode_tokens,class,label"
    head = "arrival_time,prompt_tokens,decode_tokens,prefix_id,prefix_tokens\n"
    for body, needle in [("0,10,1,a,11\n", r":2:5 \(prefix_tokens\): expected an integer from 0 to prompt_tokens"),
                         ("0,10,1,,4\n", r":2:5 \(prefix_tokens\): prefix_tokens > 0 needs a prefix_id"),
                         ("0,10,1,a,x\n", r":2:5 \(prefix_tokens\)")]:
        (tmp_path / "bad.csv").write_text(head + body)
        with pytest.raises(TraceError, match=needle):
            read_trace(tmp_path / "bad.csv")


SCENARIO = """
engine:
  policy: vllm-v1
  token_budget: 512
  memory: {{capacity_tokens: 16384, prefix_caching: {pc}}}
workload:
  arrival: {{process: poisson, rate: 3}}
  prompt_tokens: {{dist: uniform, low: 600, high: 1000}}
  decode_tokens: {{dist: geometric, mean: 100}}
  num_requests: 200
  prefix: {{groups: 1, tokens: 512}}
seed: 1
"""


def test_scenario_keys(tmp_path):
    import json

    from typer.testing import CliRunner

    from llmqueue.cli import app
    from llmqueue.config import ScenarioError, load_scenario
    out = {}
    for pc in ("false", "true"):
        p = tmp_path / f"{pc}.yaml"
        p.write_text(SCENARIO.format(pc=pc))
        r = CliRunner().invoke(app, ["simulate", str(p), "--out", str(tmp_path / pc)])
        assert r.exit_code == 0, r.output
        out[pc] = json.loads((tmp_path / pc / "summary.json").read_text())
    assert out["true"]["prefix_cache_hit_tokens"] == 199 * 512 and "prefix cache:" in r.output
    assert "prefix_cache_hit_tokens" not in out["false"]
    f, t = out["false"], out["true"]
    assert (f["tokens_processed"] - f["tokens_recomputed"]) - (t["tokens_processed"] - t["tokens_recomputed"]) \
        == 199 * 512
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCENARIO.format(pc="true").replace("tokens: 512}", "tokens: 0}"))
    with pytest.raises(ScenarioError, match="workload.prefix.tokens"):
        load_scenario(bad)
