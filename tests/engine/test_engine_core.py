"""The clock-free engine core: driven by hand it gives the simulator's results exactly; it is the
only code that changes a RequestState; one stall error; memory decisions come with the step."""

import ast
from pathlib import Path

import pandas as pd
import pytest

from llmqueue.engine import EngineCore, Request, paper_staircase
from llmqueue.errors import EngineStalled
from llmqueue.memory.config import MemoryConfig
from llmqueue.policies import make_policy
from llmqueue.policies.memory_aware import VLLMV1
from llmqueue.sim import simulate
from llmqueue.sim.engine import RequestLog
from llmqueue.workload import Geometric, PoissonArrivals, Uniform, Workload

SRC = Path(__file__).resolve().parents[2] / "src" / "llmqueue"


def drive(core, requests):
    """A driver in ten lines: arrivals are seen at the next boundary, iterations back to back."""
    pending, now = list(requests), 0.0
    while pending or core.states:
        while pending and pending[0].arrival_time <= now:
            r = pending.pop(0)
            core.add(r, r.arrival_time)
        if not core.states:
            now = pending[0].arrival_time
            continue
        step = core.schedule(now)
        end = now + core.duration(step)
        core.begin(step, now, end)
        core.complete(step, end)
        now = end
    return core


@pytest.mark.parametrize("memory", [None, MemoryConfig(2048, preemption="swap", swap_s_per_token=1e-6)])
def test_driven_by_hand_it_is_the_simulator(memory):
    wl = Workload(arrival=PoissonArrivals(10.0), prompt_tokens=Uniform(1, 300), decode_tokens=Geometric(50),
                  num_requests=150)
    reqs = list(wl.requests(4))
    pol, bt = VLLMV1(256), paper_staircase()
    core = drive(EngineCore(pol, bt, memory=memory), reqs)
    sim = simulate(pol, bt, reqs, memory=memory, engine="generic")
    rows = pd.DataFrame(core.request_log.rows, columns=list(RequestLog.COLUMNS))
    pd.testing.assert_frame_equal(rows.sort_values("request_id").reset_index(drop=True), sim.requests[rows.columns])
    assert list(core.iteration_log.columns["end_time"]) == sim.iterations["end_time"].tolist()
    if memory is not None:
        assert len(core.mem.preemptions) == len(sim.preemptions) > 0
        assert sum(core.mem.columns["swap_tokens"]) > 0


def test_one_stall_error():
    core = EngineCore(make_policy("vllm", 8), paper_staircase(), name="e1")
    core.add(Request(0, 0.0, 20, 2), 0.0)
    step = core.schedule(0.0)
    assert step.plan.is_empty and step.events == []
    with pytest.raises(EngineStalled, match=r"e1: .* forms no batch .*\(head request 0 has 20 prompt tokens"):
        raise core.stalled(0.0)


def test_steps_carry_their_memory_events_and_swap_time():
    mem = MemoryConfig(128, block_size=16, preemption="swap", swap_s_per_token=1e-3)
    core = EngineCore(VLLMV1(64), paper_staircase(), memory=mem)
    core.add(Request(0, 0.0, 30, 40), 0.0)
    core.add(Request(1, 0.0, 30, 40), 0.0)
    events, t = [], 0.0
    while core.states:
        step = core.schedule(t)
        events += step.events
        d = core.duration(step)
        assert d == pytest.approx(paper_staircase().load_time(step.plan.tokens) + step.swap_tokens * 1e-3)
        core.begin(step, t, t + d)
        core.complete(step, t + d)
        t += d
    kinds = [e[0] for e in events]
    assert "swap_out" in kinds and "swap_in" in kinds
    assert core.kv.used_blocks == 0 and core.backlog_tokens == 0


def test_only_the_engine_changes_request_states():
    """RequestState internals are written by llmqueue.engine only (issue 12: three modules did)."""
    offenders = []
    for f in SRC.rglob("*.py"):
        if f.parent.name == "engine" and f.parent.parent == SRC:
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            for t in targets:
                if isinstance(t, ast.Attribute) and t.attr in ("_prefill_left", "_decode_left"):
                    offenders.append(f"{f.relative_to(SRC)}:{node.lineno}")
    assert offenders == []
