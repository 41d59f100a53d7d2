"""Network model: workflows (chain, fork-join, DAG, routing, repeats), their traffic equations,
network validation, routers, and the Poisson token distribution. Each bad input: one clear error."""

import numpy as np
import pytest

from llmqueue.engine import ConstantBatchTime
from llmqueue.network import JobClass, NetEngine, Network, Parallel, Poisson, Router, Step, Workflow, replicas
from llmqueue.policies import SarathiServe
from llmqueue.workload import Fixed, PoissonArrivals


def step(engine="e", name="", **kw):
    return Step(engine, Fixed(10), Fixed(5), name=name, **kw)


def engine(name="e", budget=64):
    return NetEngine(name, SarathiServe(budget), ConstantBatchTime(0.1))


def test_poisson_lengths():
    d = Poisson(32)
    x = d.sample(np.random.default_rng(0), 200_000)
    assert x.dtype == np.int64 and x.min() >= 0
    assert abs(x.mean() - 32) < 0.1 and abs(x.var() - 32) < 0.5
    assert d.mean == 32.0 and d.min_value == 0 and d.max_value is None
    for bad in (0, -1, float("nan"), "a"):
        with pytest.raises(ValueError, match="Poisson.mean"):
            Poisson(bad)


def test_chain_with_parallel_stage_is_a_fork_join_dag():
    wf = Workflow.chain(step(name="plan"), Parallel(step("a"), step("b")), step(name="join"))
    assert wf.kind == "dag" and wf.entry == ("plan",)
    names = [s.name for s in wf.steps]
    assert names == ["plan", "s1.0", "s1.1", "join"]
    assert wf.steps[1].after == ("plan",) and set(wf.steps[3].after) == {"s1.0", "s1.1"}
    assert list(wf.visits_per_job()) == [1, 1, 1, 1]
    assert wf.with_labels("C").steps[0].label == "C.plan"


def test_visits_per_job_with_repeats_and_routing_loops():
    wf = Workflow.dag([step(name="a", repeat=0.75), step(name="b", after=("a",))])
    np.testing.assert_allclose(wf.visits_per_job(), [4.0, 1.0])
    # agent -> tool (0.6) -> agent ..., else summary; summary repeats with 0.2
    loop = Workflow.routing("agent", [step("llm", "agent", next={"tool": 0.6, "summary": 0.4}),
                                      step("tool", "tool", next={"agent": 1.0}),
                                      step("llm", "summary", repeat=0.2)])
    np.testing.assert_allclose(loop.visits_per_job(), [2.5, 1.5, 1.25])


@pytest.mark.parametrize("make,match", [
    (lambda: Workflow.dag([step(name="a", after=("b",)), step(name="b", after=("a",))]), "cycle"),
    (lambda: Workflow.dag([step(name="a", after=("x",))]), "refers to 'x'"),
    (lambda: Workflow.dag([step(name="a"), step(name="a")]), "two steps are named"),
    (lambda: Workflow.dag([step(name="a"), step(name="b", after=("a",), next={"a": 0.5})]), "cannot use 'next'"),
    (lambda: Workflow.routing("a", [step(name="a", next={"a": 1.0})]), "never lets a job leave"),
    (lambda: Workflow.routing("a", [step(name="a"), step(name="b")]), "never be reached"),
    (lambda: Workflow.routing("x", [step(name="a")]), "entry step 'x'"),
    (lambda: step(name="a", repeat=1.0), "repeat must be a probability in \\[0, 1\\)"),
    (lambda: step(name="a", next={"b": 0.7, "c": 0.6}), "add up to 1.3 > 1"),
    (lambda: Step("e", Fixed(1), 5), "decode_tokens must be a length distribution"),
    (lambda: Workflow.chain(), "at least one step"),
])
def test_bad_workflows_get_one_clear_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_network_validation():
    wf = Workflow.chain(step("e", label="X"))
    cls = JobClass("A", PoissonArrivals(1.0), wf)
    Network((engine(),), (cls,))
    with pytest.raises(ValueError, match="neither an engine nor a router"):
        Network((engine("f"),), (cls,))
    with pytest.raises(ValueError, match="label 'X' is used by"):
        Network((engine(),), (cls, JobClass("B", PoissonArrivals(1.0), wf)))
    with pytest.raises(ValueError, match="used twice"):
        Network((engine(), engine()), (cls,))
    with pytest.raises(ValueError, match="refers to 'zz'"):
        Network((engine(),), (cls,), (Router("r", ("zz",)),))
    with pytest.raises(ValueError, match="unknown rule"):
        Router("r", ("e",), "random")
    with pytest.raises(ValueError, match="power_of_two needs at least 2"):
        Router("r", ("e",), "power_of_two")
    with pytest.raises(ValueError, match="two job classes"):
        Network((engine(),), (cls, JobClass("A", PoissonArrivals(1.0), Workflow.chain(step("e", label="Y")))))


def test_replicas_and_scaling():
    copies, router = replicas(engine("llm"), 3, "jsq")
    assert [e.name for e in copies] == ["llm[0]", "llm[1]", "llm[2]"]
    assert router.name == "llm" and router.rule == "jsq"
    net = Network(copies, (JobClass("A", PoissonArrivals(2.0), Workflow.chain(step("llm"))),), (router,))
    assert net.members("llm") == router.engines
    assert net.scaled(1.5).classes[0].rate == 3.0
    assert net.labels() == ["A.s0"]
    with pytest.raises(ValueError, match="load scale must be > 0"):
        net.scaled(0)
