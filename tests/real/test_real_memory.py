"""The real engine with KV memory: the engine core's KV manager hands out the cache's blocks, the
engine preempts under memory pressure (recompute or swap), loses no request, and every greedy
output equals the run without memory pressure; the simulated engine makes the same decisions on
the same requests (issue 12: the real engine never preempted and had its own allocator)."""

import dataclasses

import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from llmqueue.engine import ConstantBatchTime, EngineCore, Request  # noqa: E402
from llmqueue.memory.config import MemoryConfig  # noqa: E402
from llmqueue.policies import make_policy  # noqa: E402
from llmqueue.policies.memory_aware import VLLMV1  # noqa: E402
from llmqueue.real.config import preset  # noqa: E402
from llmqueue.real.model import build_model  # noqa: E402
from llmqueue.real.runner import ModelRunner  # noqa: E402
from llmqueue.real.serve import serve  # noqa: E402
from llmqueue.sim import simulate  # noqa: E402

# all at t = 0: every request is admitted at the first boundary, so the batches (and the
# preemptions) do not depend on the wall clock
REQUESTS = [Request(i, 0.0, p, d) for i, (p, d) in enumerate(
    [(23, 14), (0, 9), (9, 17), (40, 6), (1, 12), (17, 15), (31, 8), (12, 16)])]
SMALL = 96              # KV tokens: far less than the requests need together


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return build_model(preset("tiny"), seed=3)


def run(model, policy, requests, memory=None):
    runner = ModelRunner(model, block_size=4, num_blocks=8)
    res = serve(policy, requests, runner, memory=memory, record_composition=True)
    return res, runner


@pytest.fixture(scope="module")
def unconstrained(model):
    return {name: run(model, pol, REQUESTS)[1].outputs
            for name, pol in (("vllm-v1", VLLMV1(32)), ("sarathi", make_policy("sarathi", 32)))}


@pytest.mark.parametrize("mode", ["recompute", "swap"])
@pytest.mark.parametrize("name", ["vllm-v1", "sarathi"])
def test_preempts_under_a_small_cache_and_outputs_do_not_change(model, unconstrained, mode, name):
    pol = VLLMV1(32) if name == "vllm-v1" else make_policy("sarathi", 32)
    mem = MemoryConfig(SMALL, block_size=4, preemption=mode)
    res, runner = run(model, pol, REQUESTS, mem)
    s = res.summary()
    assert s["preemptions"] > 0 and s["preemptions_" + mode] == s["preemptions"]
    assert s["completed"] == len(REQUESTS) and s["tokens_conserved"] and res.tokens_left == 0
    if mode == "recompute":
        assert res.tokens_recomputed > 0
    assert res.memory_iterations["kv_used_tokens"].max() <= SMALL
    assert runner.cache.num_blocks == SMALL // 4 and runner.cache.kv.used_blocks == 0
    assert runner.outputs == unconstrained[name]                  # same greedy tokens, none lost
    assert all(len(runner.outputs[r.request_id]) == r.decode_tokens + (r.prompt_tokens > 0) for r in REQUESTS)


def test_prefix_cache_hits_are_exact_in_the_real_engine(model):
    reqs = [dataclasses.replace(r, prompt_tokens=r.prompt_tokens + 16, prefix_id="sys", prefix_tokens=16,
                                arrival_time=0.0) for r in REQUESTS]
    base = run(model, VLLMV1(32), reqs)[1].outputs
    mem = MemoryConfig(4096, block_size=4, prefix_caching=True)
    res, runner = run(model, VLLMV1(32), reqs, mem)
    assert res.tokens_cached > 0 and res.summary()["tokens_conserved"]
    assert runner.outputs == base


def test_simulated_and_real_engines_take_the_same_memory_decisions(model, monkeypatch):
    """One request sequence, one memory: the simulated engine and the real one make the same
    batches, preempt the same requests at the same iterations and hand out the same block ids."""
    tables = []
    orig = EngineCore.begin

    def snap(self, step, start, end):
        tables.append({rid: list(self.kv.table(rid)) for rid in self.kv.held_counts})
        return orig(self, step, start, end)

    monkeypatch.setattr(EngineCore, "begin", snap)
    mem = MemoryConfig(SMALL, block_size=4)
    sim = simulate(VLLMV1(32), ConstantBatchTime(0.01), REQUESTS, memory=mem, record_composition=True)
    sim_tables, tables[:] = list(tables), []
    real, runner = run(model, VLLMV1(32), REQUESTS, mem)
    assert len(sim.preemptions) > 0
    assert real.compositions == sim.compositions
    cols = ["iteration", "request_id", "mode", "kv_tokens", "for_request_id"]
    pd.testing.assert_frame_equal(real.preemptions[cols], sim.preemptions[cols])
    pd.testing.assert_frame_equal(real.memory_iterations, sim.memory_iterations)
    assert tables == sim_tables


def test_bind_refuses_a_runner_in_use(model):
    runner = ModelRunner(model, block_size=4, num_blocks=8)
    runner.add(Request(0, 0.0, 3, 1))
    with pytest.raises(ValueError, match="before adding"):
        runner.bind(EngineCore(VLLMV1(32), memory=MemoryConfig(64, block_size=4)).kv)
