"""Network simulation: a one-engine network is the single-engine simulator request for request;
runs are deterministic and conserve tokens; fork-join, DAG, routing loops, repeats and routers
behave as declared; max-pressure is a pure function of the view and the backlog snapshot."""

import numpy as np
import pandas as pd
import pytest

from llmqueue import make_policy, paper_staircase, simulate
from llmqueue.engine import ConstantBatchTime, EngineView, Request, RequestState
from llmqueue.network import (
    JobClass,
    MaxPressure,
    NetEngine,
    Network,
    Poisson,
    Step,
    Workflow,
    replicas,
    simulate_network,
)
from llmqueue.network.examples import agent_pipeline
from llmqueue.policies import SarathiServe
from llmqueue.workload import Fixed, Geometric, PoissonArrivals, Workload


@pytest.mark.parametrize("policy", ["sarathi", "orca", "vllm"])
def test_single_engine_network_gives_exactly_the_single_engine_results(policy):
    pol, bt = make_policy(policy, 512), paper_staircase()
    arrivals, prompt, decode = PoissonArrivals(12.0), Poisson(129), Geometric(112)
    net = Network((NetEngine("e", pol, bt),),
                  (JobClass("default", arrivals, Workflow.chain(Step("e", prompt, decode))),))
    res = simulate_network(net, 5, horizon=120.0)
    wl = Workload(arrival=arrivals, prompt_tokens=prompt, decode_tokens=decode, duration_s=200.0)
    single = simulate(pol, bt, wl.requests(np.random.SeedSequence(5, spawn_key=(0,))), horizon=120.0)
    pd.testing.assert_frame_equal(res.engine_requests("e"), single.requests)
    pd.testing.assert_frame_equal(res.iterations["e"], single.iterations)
    jobs = res.jobs.dropna()
    v = res.visits.set_index("job_id").loc[jobs["job_id"]]
    np.testing.assert_allclose(jobs["completion_time"].to_numpy(), v["completion_time"].to_numpy())


def _loop_network():
    e = NetEngine("e", SarathiServe(256), ConstantBatchTime(0.05))
    f = NetEngine("f", SarathiServe(256), ConstantBatchTime(0.05))
    wf = Workflow.routing("a", [Step("e", Poisson(30), Poisson(5), name="a", next={"b": 0.6}),
                                Step("f", Poisson(20), Poisson(3), name="b", next={"a": 1.0}, repeat=0.25)])
    return Network((e, f), (JobClass("C", PoissonArrivals(3.0), wf),))


def test_same_seed_same_run_and_tokens_are_conserved():
    a = simulate_network(_loop_network(), 3, duration=400.0)
    b = simulate_network(_loop_network(), 3, duration=400.0)
    pd.testing.assert_frame_equal(a.visits, b.visits)
    pd.testing.assert_frame_equal(a.jobs, b.jobs)
    pd.testing.assert_frame_equal(a.backlog, b.backlog)
    c = simulate_network(_loop_network(), 4, duration=400.0)
    assert not a.jobs["arrival_time"].equals(c.jobs["arrival_time"])
    s = a.summary()
    assert s["tokens_conserved"] and s["jobs_in_system_at_end"] == 0 and s["final_backlog_tokens"] == 0
    for name, it in a.iterations.items():
        assert int((it["prefill_tokens"] + it["decode_tokens"]).sum()) == a.tokens[name]["processed"]
    # visits per job: a = 1 / 0.4 = 2.5, b = 1.5 / 0.75 = 2 (routing loop and repeats)
    per = a.visits.groupby(["job_id", "step"]).size().unstack(fill_value=0)
    for step, expected in (("a", 2.5), ("b", 2.0)):
        x = per[step]
        assert abs(x.mean() - expected) < 4 * x.std() / np.sqrt(len(x)), (step, x.mean())
    assert set(a.visits["label"]) == {"C.a", "C.b"}


def test_fork_join_and_dag_order():
    res = simulate_network(agent_pipeline(0.5), 2, duration=200.0)
    v = res.visits.dropna(subset=["completion_time"])
    done = v.set_index(["job_id", "step"])
    for (_jid, cls), g in v.groupby(["job_id", "job_class"]):
        d = g.set_index("step")
        if "writer" not in d.index:
            continue
        if cls == "fj":
            assert d.loc["search", "arrival_time"] == d.loc["code", "arrival_time"] == d.loc["planner",
                                                                                             "completion_time"]
            assert d.loc["writer", "arrival_time"] == max(d.loc["search", "completion_time"], d.loc["code",
                                                                                                    "completion_time"])
        else:
            assert d.loc["test", "arrival_time"] == d.loc["code", "completion_time"]
            assert d.loc["writer", "arrival_time"] == max(d.loc["search", "completion_time"], d.loc["test",
                                                                                                    "completion_time"])
    jobs = res.jobs.dropna()
    last = done.groupby(level=0)["completion_time"].max()
    np.testing.assert_allclose(jobs.set_index("job_id")["completion_time"], last.loc[jobs["job_id"]])
    assert (jobs["visits"] == jobs["job_class"].map({"fj": 4, "dag": 5})).all()


def _pool(rule, n=3, rate=30.0):
    copies, router = replicas(NetEngine("llm", SarathiServe(512), paper_staircase()), n, rule)
    wf = Workflow.chain(Step("llm", Fixed(100), Fixed(20)))
    return Network(copies, (JobClass("C", PoissonArrivals(rate), wf),), (router,))


def test_routers():
    rr = simulate_network(_pool("round_robin"), 1, duration=30.0).visits
    assert (rr["engine"].to_numpy() == np.array([f"llm[{i % 3}]" for i in range(len(rr))])).all()
    for rule in ("jsq", "least_tokens", "power_of_two"):
        v = simulate_network(_pool(rule), 1, duration=60.0).visits
        counts = v["engine"].value_counts()
        assert len(counts) == 3 and counts.min() > 0.25 * len(v), rule
    a = simulate_network(_pool("power_of_two"), 1, duration=30.0).visits
    b = simulate_network(_pool("power_of_two"), 1, duration=30.0).visits
    assert a["engine"].equals(b["engine"])
    # JSQ: every visit joins a replica with the fewest requests in it (ties: the first listed)
    v = simulate_network(_pool("jsq", n=3, rate=40.0), 1, duration=20.0).visits
    t, done, eng = v["arrival_time"].to_numpy(), v["completion_time"].to_numpy(), v["engine"].to_numpy()
    for i in range(len(v)):
        counts = [int(np.sum((eng[:i] == f"llm[{k}]") & (done[:i] > t[i]))) for k in range(3)]
        assert eng[i] == f"llm[{int(np.argmin(counts))}]", (i, counts, eng[i])


def test_errors():
    net = _loop_network()
    with pytest.raises(ValueError, match="horizon .* or a duration"):
        simulate_network(net, 1)
    with pytest.raises(ValueError, match="horizon must be a finite number > 0"):
        simulate_network(net, 1, horizon=-1)
    with pytest.raises(ValueError, match="seed must be an integer"):
        simulate_network(net, -2, horizon=10)


def _view(rows):
    """rows: (label, prefill_left, decode_left) in FCFS order."""
    states = [RequestState.make(Request(i, 0.0, p + 1, d + 1, lab), i, prefill_left=p, decode_left=d + (p == 0))
              for i, (lab, p, d) in enumerate(rows)]
    return EngineView(0.0, tuple(states))


def test_max_pressure_is_a_pure_function_of_view_and_snapshot():
    mp = MaxPressure(64).bind({"A1": (("A2", 1.0),), "B2": ()}, {"A1": 64.0, "A2": 544.0, "B2": 544.0}, None)
    view = _view([("A1", 40, 5), ("B2", 50, 5), ("A1", 30, 5)])
    # weighting "tokens": pressure(A1) = (W_A1 - W_A2) / 64, pressure(B2) = W_B2 / 544
    p = mp.pressures(view, {"A2": 0})
    assert p["A1"] == pytest.approx(80 / 64) and p["B2"] == pytest.approx(55 / 544)
    plan = mp.plan(view, {"A2": 0})
    assert [rid for rid, _ in plan.prefill][:2] == [0, 2]          # A1 first
    assert mp.plan(view, {"A2": 0}) == plan                         # same inputs, same plan
    congested = mp.plan(view, {"A2": 10_000})
    assert [rid for rid, _ in congested.prefill] == [1]              # A1's pressure < 0: not served
    assert mp.plan(_view([("A1", 40, 5)]), {"A2": 10_000}).is_empty  # idles on purpose
    wc = MaxPressure(64, serve_nonpositive=True).bind(mp.routes, mp.visit_tokens, None)
    assert [rid for rid, _ in wc.plan(view, {"A2": 10_000}).prefill] == [1, 0]
    assert mp.may_idle and not wc.may_idle and wc.work_conserving
    with pytest.raises(ValueError, match="unknown weighting"):
        MaxPressure(64, weighting="bytes")


def test_engine_idle_wait_hook():
    """An engine given idle_wait looks again after it when its policy idles on purpose; without it an
    empty plan with work waiting is a stall, as before."""
    from dataclasses import dataclass

    from llmqueue.engine import BatchPlan
    from llmqueue.sim import EngineStalled, Kernel, SimEngine

    @dataclass(frozen=True)
    class WaitUntilOne(SarathiServe):
        def __call__(self, view):
            return BatchPlan() if view.now < 1.0 else super().__call__(view)

    for wait in (0.3, None):
        k = Kernel()
        e = SimEngine(k, WaitUntilOne(64), ConstantBatchTime(0.1), idle_wait=wait)
        e.submit(Request(0, 0.0, 10, 2))
        if wait is None:
            with pytest.raises(EngineStalled):
                k.run()
            continue
        k.run()
        it = e.iteration_log.columns["start_time"]
        assert list(it) == pytest.approx([1.2, 1.3, 1.4])     # looked at 0, 0.3, 0.6, 0.9, then served
    with pytest.raises(ValueError, match="idle_wait must be > 0"):
        SimEngine(Kernel(), SarathiServe(64), ConstantBatchTime(0.1), idle_wait=0)
